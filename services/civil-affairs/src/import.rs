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
use time::Date;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
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

/// The household imported under `source_id` in `county`, and the first of
/// `ids` already live in another household: both in one round trip (the
/// connection pipelines them), with statements prepared once per connection.
#[tracing::instrument(skip_all)]
async fn existing_and_clash(
    tx: &Transaction<'_>,
    county: &str,
    source_id: &str,
    ids: &[String],
) -> Result<(Option<Existing>, Option<String>), Error> {
    let (find, clash) = futures_util::try_join!(
        tx.prepare_cached(
            "SELECT body, category, monthly_amount_fen, status FROM household
             WHERE county = $1 AND source_id = $2 FOR UPDATE",
        ),
        tx.prepare_cached(
            "SELECT identity_number FROM household_member
             WHERE live AND identity_number = ANY($1)
               AND household_id NOT IN (SELECT household_id FROM household WHERE county = $2 AND source_id = $3)
             ORDER BY array_position($1, identity_number) LIMIT 1",
        ),
    )?;
    let find_params: [&(dyn ToSql + Sync); 2] = [&county, &source_id];
    let clash_params: [&(dyn ToSql + Sync); 3] = [&ids, &county, &source_id];
    let (existing, clash) =
        futures_util::try_join!(tx.query_opt(&find, &find_params), tx.query_opt(&clash, &clash_params))?;
    Ok((existing.as_ref().map(Existing::read), clash.map(|r| r.get(0))))
}

impl ImportRow for RosterImport<'_> {
    type Row = pb::ImportRosterRequest;

    fn row_number(row: &Self::Row) -> i64 {
        row.row
    }

    /// Applies one roster row: the household whole, or nothing. A row equal
    /// to what is stored changes nothing.
    async fn apply(&self, tx: &Transaction<'_>, row: &Self::Row) -> Result<Imported, Error> {
        let roster = self.0;
        let now = roster.clock.now();
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
        // What is stored in `body`: the household as given, identity numbers
        // in canonical form, without the fields kept in columns.
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
        let body = canonical.encode_to_vec();
        let category = convert::category_to_pb(category) as i32;
        let programme = if h.programme == 0 { Programme::Dibao as i32 } else { h.programme };
        let ids: Vec<String> = submitted.household.members.iter().map(|m| m.identity.as_str().to_owned()).collect();

        let (existing, clash) = existing_and_clash(tx, county.as_str(), &source_id, &ids).await?;
        if let Some(taken) = clash {
            let i = ids.iter().position(|x| *x == taken).unwrap_or(0);
            return Err(reject(
                format!("household.members[{i}].person.identity_number"),
                "该成员已在另一低保家庭中，同一人不得重复纳入，配偶和未成年子女不得分户（R-ROSTER-4）",
            ));
        }
        let members = households::roster_members(&canonical, &submitted.covered);
        let Some(existing) = existing else {
            let household_id = Uuid::now_v7();
            insert(
                tx,
                &NewRow {
                    household_id,
                    county: county.as_str(),
                    village: submitted.village.as_str(),
                    programme,
                    category,
                    amount_fen: amount.0,
                    enrolled_on,
                    body: &body,
                    now,
                    source_id: &source_id,
                    members: &ids,
                    import_id: self.2,
                },
            )
            .await?;
            let payload = Payload::HouseholdEnrolled(HouseholdEnrolled {
                household_id: household_id.to_string(),
                village: Some(PbDivision { code: submitted.village.as_str().to_owned() }),
                programme,
                category,
                members,
                monthly_amount: Some(amount.into()),
                effective_from: Some(date_to_pb(enrolled_on)),
                household_number: source_id.clone(),
            });
            households::publish(tx, &roster.topic, household_id, 1, payload).await?;
            return Ok(Imported::Applied);
        };
        // A household already on the roster, or once on it, changes only
        // through the process that signs for it (issue 23, item 6): the
        // same row again changes nothing (a file sent twice), any other is
        // refused, naming what to use instead.
        let enrolled =
            [pb::HouseholdStatus::Enrolled as i32, pb::HouseholdStatus::GradualExit as i32].contains(&existing.status);
        if enrolled && existing.body == body && existing.category == category && existing.monthly_amount_fen == amount.0
        {
            return Ok(Imported::Unchanged);
        }
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
}

/// A household new to the roster, enrolled as its row says.
struct NewRow<'a> {
    household_id: Uuid,
    county: &'a str,
    village: &'a str,
    programme: i32,
    category: i32,
    amount_fen: i64,
    enrolled_on: Date,
    body: &'a [u8],
    now: time::OffsetDateTime,
    source_id: &'a str,
    members: &'a [String],
    import_id: Uuid,
}

#[tracing::instrument(skip_all, fields(household_id = %h.household_id))]
async fn insert(tx: &Transaction<'_>, h: &NewRow<'_>) -> Result<(), Error> {
    let no_income = pb::AssessHouseholdRequest::default().encode_to_vec();
    let household = tx
        .prepare_cached(
            "INSERT INTO household (household_id, county, village, status, programme, category,
                                    monthly_amount_fen, enrolled_on, body, income, created_at, source_id, import_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .await?;
    tx.execute(
        &household,
        &[
            &h.household_id,
            &h.county,
            &h.village,
            &(pb::HouseholdStatus::Enrolled as i32),
            &h.programme,
            &h.category,
            &h.amount_fen,
            &h.enrolled_on,
            &h.body,
            &no_income,
            &h.now,
            &h.source_id,
            &h.import_id,
        ],
    )
    .await?;
    let members = tx
        .prepare_cached(
            "INSERT INTO household_member (identity_number, household_id, live) SELECT unnest($1::text[]), $2, true",
        )
        .await?;
    tx.execute(&members, &[&h.members, &h.household_id]).await?;
    Ok(())
}
