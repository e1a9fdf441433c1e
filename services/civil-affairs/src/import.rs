//! A county's dibao roster (花名册) imported household by household, on the
//! platform's import driver: a migration tool. A household new to the
//! roster is enrolled as the file says and its enrolment published
//! (R-SYNC-1); a row for a household already on the roster, or once on it,
//! is refused, naming the process that changes it (family members, review,
//! a new application), unless it is the same as stored (a file sent twice).
//! Each import is recorded with the officer who ran it (`roster_import`).

use deadpool_postgres::Transaction;
use dibao_benefit_engine::household::validate_composition;
use dibao_platform::Error;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::store::import::{ImportRow, Imported};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{DivisionCode as PbDivision, IdentityNumber as PbIdentity};
use dibao_proto::events::v1::{HouseholdEnrolled, Programme, event_envelope::Payload};
use dibao_proto::types::{InvalidField, date_to_pb};
use prost::Message;
use std::collections::{HashMap, HashSet};
use time::Date;
use tokio_postgres::Row;

use uuid::Uuid;

use crate::convert;
use crate::households::{self, Roster};

/// The roster's side of the import driver, for the county operator who
/// imports (a row outside their jurisdiction is refused), in the import
/// recorded under the id ([`begin`]).
pub struct RosterImport<'a>(pub &'a Roster, pub &'a Officer, pub Uuid);

/// Records an import begun by `officer`; its id stamps every household it adds.
pub async fn begin(roster: &Roster, officer: &Officer) -> Result<Uuid, Error> {
    let id = Uuid::now_v7();
    roster
        .pool
        .get()
        .await?
        .execute(
            "INSERT INTO roster_import (import_id, division, officer_id, officer_name, assertion_id, issuer, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &id,
                &officer.division.as_str(),
                &officer.officer_id,
                &officer.name,
                &officer.assertion_id,
                &officer.issuer,
                &roster.clock.now(),
            ],
        )
        .await?;
    Ok(id)
}

/// Records how the import ended.
pub async fn finish(roster: &Roster, id: Uuid, o: &dibao_platform::store::import::Outcome) -> Result<(), Error> {
    roster
        .pool
        .get()
        .await?
        .execute(
            "UPDATE roster_import SET finished_at = $2, applied = $3, unchanged = $4, refused = $5 WHERE import_id = $1",
            &[&id, &roster.clock.now(), &o.applied, &o.unchanged, &(o.errors.len() as i64)],
        )
        .await?;
    Ok(())
}

/// A household already imported under the row's number, locked.
struct Existing {
    body: Vec<u8>,
    category: i32,
    monthly_amount_fen: i64,
    status: i32,
}

impl Existing {
    fn read(row: &Row) -> Self {
        Self {
            body: row.get("body"),
            category: row.get("category"),
            monthly_amount_fen: row.get("monthly_amount_fen"),
            status: row.get("status"),
        }
    }
}

fn reject(field: impl Into<String>, reason: &str) -> Error {
    InvalidField::new(field, reason).into()
}

/// A roster row checked as far as the row alone says, to be decided
/// against what is stored under its number.
struct Prepared {
    source_id: String,
    county: String,
    village: String,
    programme: i32,
    category: i32,
    amount_fen: i64,
    enrolled_on: Date,
    /// What is stored in `body`: the household as given, identity numbers
    /// in canonical form, without the fields kept in columns.
    body: Vec<u8>,
    ids: Vec<String>,
    members: Vec<dibao_proto::events::v1::RosterMember>,
}

impl RosterImport<'_> {
    /// Checks one row by itself: fields, jurisdiction, composition.
    fn prepare(&self, row: &pb::ImportRosterRequest, now: time::OffsetDateTime) -> Result<Prepared, Error> {
        let h = row.household.as_ref().ok_or_else(|| reject("household", "必填项缺失"))?;
        let source_id = h.household_id.trim().to_owned();
        if source_id.is_empty() {
            return Err(reject("household.household_id", "请填写花名册中的户编号"));
        }
        let submitted = convert::household(h, "household")?;
        self.1.must_cover(&submitted.village, "household.village")?;
        validate_composition(&submitted.household, china_date(now))?;
        let category =
            submitted.category.ok_or_else(|| reject("household.category", "请填写保障类别（A类、B类或C类）"))?;
        let amount = convert::money(&h.monthly_amount, "household.monthly_amount")?;
        let enrolled_on = match &h.enrolled_on {
            Some(d) => Date::try_from(d).map_err(|e| e.within("household.enrolled_on"))?,
            None => china_date(now),
        };
        let county = submitted.village.county().ok_or_else(|| reject("household.village", "无法确定所属县"))?;
        let mut canonical = h.clone();
        canonical.household_id.clear();
        canonical.status = 0;
        canonical.category = 0;
        canonical.monthly_amount = None;
        canonical.enrolled_on = None;
        canonical.version = 0;
        canonical.deceased.clear();
        for (m, parsed) in canonical.members.iter_mut().zip(&submitted.household.members) {
            if let Some(p) = m.person.as_mut() {
                p.identity_number = Some(PbIdentity { value: parsed.identity.as_str().to_owned() });
            }
        }
        Ok(Prepared {
            source_id,
            county: county.as_str().to_owned(),
            village: submitted.village.as_str().to_owned(),
            programme: if h.programme == 0 { Programme::Dibao as i32 } else { h.programme },
            category: convert::category_to_pb(category) as i32,
            amount_fen: amount.0,
            enrolled_on,
            body: canonical.encode_to_vec(),
            ids: submitted.household.members.iter().map(|m| m.identity.as_str().to_owned()).collect(),
            members: households::roster_members(&canonical, &submitted.covered),
        })
    }
}

/// The households stored under the rows' numbers (locked), by county and
/// number, and where each of the rows' members lives now, by identity
/// number: two statements however many rows.
async fn lookup(tx: &Transaction<'_>, rows: &[&Prepared]) -> Result<(Stored, Holders), Error> {
    let counties: Vec<&str> = rows.iter().map(|p| p.county.as_str()).collect();
    let sources: Vec<&str> = rows.iter().map(|p| p.source_id.as_str()).collect();
    let ids: Vec<&str> = rows.iter().flat_map(|p| p.ids.iter().map(String::as_str)).collect();
    let stored = tx
        .query(
            "SELECT h.county, h.source_id, h.body, h.category, h.monthly_amount_fen, h.status
             FROM household h JOIN unnest($1::text[], $2::text[]) AS k (county, source_id)
               ON h.county = k.county AND h.source_id = k.source_id
             FOR UPDATE OF h",
            &[&counties, &sources],
        )
        .await?
        .iter()
        .map(|r| ((r.get("county"), r.get("source_id")), Existing::read(r)))
        .collect();
    let holders = tx
        .query(
            "SELECT m.identity_number, h.county, h.source_id
             FROM household_member m JOIN household h USING (household_id)
             WHERE m.live AND m.identity_number = ANY($1)",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| (r.get("identity_number"), (r.get("county"), r.get("source_id"))))
        .collect();
    Ok((stored, holders))
}

/// Households stored under a county's number.
type Stored = HashMap<(String, String), Existing>;
/// The county and number of the household each person lives in.
type Holders = HashMap<String, (String, Option<String>)>;

/// What becomes of a checked row, given what [`lookup`] found: `None` when
/// it is new, to be added. A member live in a household other than the one
/// under the row's own number is a clash.
fn decide(p: &Prepared, stored: &Stored, holders: &Holders) -> Result<Option<Imported>, Error> {
    let own = |(county, source): &(String, Option<String>)| {
        *county == p.county && source.as_deref() == Some(p.source_id.as_str())
    };
    let existing = stored.get(&(p.county.clone(), p.source_id.clone()));
    if let Some(taken) = p.ids.iter().find(|id| holders.get(*id).is_some_and(|h| !own(h))) {
        let i = p.ids.iter().position(|x| x == taken).unwrap_or(0);
        return Err(reject(
            format!("household.members[{i}].person.identity_number"),
            "该成员已在另一低保家庭中，同一人不得重复纳入，配偶和未成年子女不得分户（R-ROSTER-4）",
        ));
    }
    let Some(existing) = existing else { return Ok(None) };
    // A household already on the roster, or once on it, changes only
    // through the process that signs for it (issue 23, item 6): the same
    // row again changes nothing (a file sent twice), any other is refused,
    // naming what to use instead.
    let enrolled =
        [pb::HouseholdStatus::Enrolled as i32, pb::HouseholdStatus::GradualExit as i32].contains(&existing.status);
    if enrolled
        && existing.body == p.body
        && existing.category == p.category
        && existing.monthly_amount_fen == p.amount_fen
    {
        return Ok(Some(Imported::Unchanged));
    }
    let source_id = &p.source_id;
    Err(reject(
        "household.household_id",
        &if enrolled {
            format!(
                "户编号“{source_id}”的家庭已在册，导入只新增尚未在册的家庭：家庭成员变化请办理家庭成员变更或死亡登记，\
                 保障类别和金额请通过复核调整"
            )
        } else {
            format!("户编号“{source_id}”的家庭已退出或未获批准，导入不能重新纳入：请提交低保申请，经审核审批后纳入")
        },
    ))
}

impl ImportRow for RosterImport<'_> {
    type Row = pb::ImportRosterRequest;

    // Set-based: 1,000,000 households in about a minute at this size, at
    // most some 70 MiB held (benchmark `import_bench`).
    const BATCH: usize = 5000;

    fn row_number(row: &Self::Row) -> i64 {
        row.row
    }

    /// Applies one roster row: the household whole, or nothing.
    async fn apply(&self, tx: &Transaction<'_>, row: &Self::Row) -> Result<Imported, Error> {
        let now = self.0.clock.now();
        let p = self.prepare(row, now)?;
        let (stored, holders) = lookup(tx, &[&p]).await?;
        if let Some(done) = decide(&p, &stored, &holders)? {
            return Ok(done);
        }
        insert_all(tx, &self.0.topic, &[&p], self.2, now).await?;
        Ok(Imported::Applied)
    }

    /// A batch in a few statements: every row checked, the households under
    /// their numbers and the members' households read at once, the new ones
    /// added with their events in bulk. Rows of the batch sharing a number
    /// or a person go row by row, in order.
    async fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        rows: &[&Self::Row],
    ) -> Result<Option<Vec<Result<Imported, Error>>>, Error> {
        let now = self.0.clock.now();
        let prepared: Vec<Result<Prepared, Error>> = rows.iter().map(|r| self.prepare(r, now)).collect();
        let checked: Vec<&Prepared> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let (mut numbers, mut persons) = (HashSet::new(), HashSet::new());
        for p in &checked {
            if !numbers.insert((p.county.as_str(), p.source_id.as_str())) || !p.ids.iter().all(|id| persons.insert(id))
            {
                return Ok(None);
            }
        }
        let (stored, holders) = lookup(tx, &checked).await?;
        let mut results = Vec::with_capacity(rows.len());
        let mut new = Vec::new();
        for p in &prepared {
            let p = match p {
                Ok(p) => p,
                Err(_) => {
                    results.push(None);
                    continue;
                }
            };
            let decided = decide(p, &stored, &holders);
            if matches!(decided, Ok(None)) {
                new.push(p);
            }
            results.push(Some(decided.map(|d| d.unwrap_or(Imported::Applied))));
        }
        insert_all(tx, &self.0.topic, &new, self.2, now).await?;
        // The rows refused by themselves keep their own errors.
        Ok(Some(
            prepared
                .into_iter()
                .zip(results)
                .map(|(p, decided)| match (p, decided) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Some(decided)) => decided,
                    (Ok(_), None) => Err(Error::Unexpected(anyhow::anyhow!("an import row without an outcome"))),
                })
                .collect(),
        ))
    }
}

/// Adds the households new to the roster, enrolled as their rows say, with
/// their members and their `HouseholdEnrolled` events: a statement each,
/// however many.
#[tracing::instrument(skip_all, fields(households = rows.len()))]
async fn insert_all(
    tx: &Transaction<'_>,
    topic: &str,
    rows: &[&Prepared],
    import_id: Uuid,
    now: time::OffsetDateTime,
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let no_income = pb::AssessHouseholdRequest::default().encode_to_vec();
    let counties: Vec<&str> = rows.iter().map(|p| p.county.as_str()).collect();
    let villages: Vec<&str> = rows.iter().map(|p| p.village.as_str()).collect();
    let programmes: Vec<i32> = rows.iter().map(|p| p.programme).collect();
    let categories: Vec<i32> = rows.iter().map(|p| p.category).collect();
    let amounts: Vec<i64> = rows.iter().map(|p| p.amount_fen).collect();
    let enrolled: Vec<Date> = rows.iter().map(|p| p.enrolled_on).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|p| p.body.as_slice()).collect();
    let sources: Vec<&str> = rows.iter().map(|p| p.source_id.as_str()).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO household (household_id, county, village, status, programme, category, monthly_amount_fen,
                                    enrolled_on, body, income, created_at, source_id, import_id)
             SELECT id, county, village, $10, programme, category, amount, enrolled_on, body, $11, $12, source_id, $13
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bigint[], $7::date[],
                         $8::bytea[], $9::text[])
                  AS r (id, county, village, programme, category, amount, enrolled_on, body, source_id)",
        )
        .await?;
    tx.execute(
        &statement,
        &[
            &ids,
            &counties,
            &villages,
            &programmes,
            &categories,
            &amounts,
            &enrolled,
            &bodies,
            &sources,
            &(pb::HouseholdStatus::Enrolled as i32),
            &no_income,
            &now,
            &import_id,
        ],
    )
    .await?;
    let (persons, homes): (Vec<&str>, Vec<Uuid>) =
        rows.iter().zip(&ids).flat_map(|(p, id)| p.ids.iter().map(move |person| (person.as_str(), *id))).unzip();
    let statement = tx
        .prepare_cached(
            "INSERT INTO household_member (identity_number, household_id, live)
             SELECT person, home, true FROM unnest($1::text[], $2::uuid[]) AS m (person, home)",
        )
        .await?;
    tx.execute(&statement, &[&persons, &homes]).await?;
    let events = rows
        .iter()
        .zip(&ids)
        .map(|(p, id)| {
            let payload = Payload::HouseholdEnrolled(HouseholdEnrolled {
                household_id: id.to_string(),
                village: Some(PbDivision { code: p.village.clone() }),
                programme: p.programme,
                category: p.category,
                members: p.members.clone(),
                monthly_amount: Some(dibao_proto::common::v1::Money { fen: p.amount_fen }),
                effective_from: Some(date_to_pb(p.enrolled_on)),
                household_number: p.source_id.clone(),
            });
            (*id, 1, payload)
        })
        .collect();
    households::publish_all(tx, topic, events).await
}
