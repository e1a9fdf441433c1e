//! A county's dibao roster (花名册) imported household by household, on the
//! platform's import driver: a household new to the roster is enrolled as
//! the file says, one already imported under the same number is brought to
//! what the file says, and every change publishes its event (R-SYNC-1).

use deadpool_postgres::Transaction;
use dibao_benefit_engine::household::validate_composition;
use dibao_platform::Error;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::store::import::{ImportRow, Imported};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{DivisionCode as PbDivision, IdentityNumber as PbIdentity};
use dibao_proto::events::v1::{
    HouseholdAmountChanged, HouseholdCategoryChanged, HouseholdCompositionChanged, HouseholdEnrolled, Programme,
    event_envelope::Payload,
};
use dibao_proto::types::{InvalidField, date_to_pb};
use prost::Message;
use time::Date;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::convert;
use crate::households::{self, Roster};

/// The roster's side of the import driver, for the county operator who
/// imports: a row outside their jurisdiction is refused.
pub struct RosterImport<'a>(pub &'a Roster, pub &'a Officer);

/// A household already imported under the row's number, locked.
struct Existing {
    household_id: Uuid,
    body: Vec<u8>,
    category: i32,
    monthly_amount_fen: i64,
    version: i64,
    status: i32,
}

impl Existing {
    fn read(row: &Row) -> Self {
        Self {
            household_id: row.get("household_id"),
            body: row.get("body"),
            category: row.get("category"),
            monthly_amount_fen: row.get("monthly_amount_fen"),
            version: row.get("version"),
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
            "SELECT household_id, body, category, monthly_amount_fen, version, status FROM household
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
        let household_id = existing.household_id;
        let enrolled = existing.status == pb::HouseholdStatus::Enrolled as i32;
        if existing.body == body && existing.category == category && existing.monthly_amount_fen == amount.0 && enrolled
        {
            return Ok(Imported::Unchanged);
        }
        let reason = "花名册导入更新".to_owned();
        let mut events = Vec::new();
        if existing.body != body {
            events.push(Payload::HouseholdCompositionChanged(HouseholdCompositionChanged {
                household_id: household_id.to_string(),
                members,
                reason: reason.clone(),
            }));
        }
        if existing.category != category {
            events.push(Payload::HouseholdCategoryChanged(HouseholdCategoryChanged {
                household_id: household_id.to_string(),
                category,
            }));
        }
        if existing.monthly_amount_fen != amount.0 {
            events.push(Payload::HouseholdAmountChanged(HouseholdAmountChanged {
                household_id: household_id.to_string(),
                monthly_amount: Some(amount.into()),
                effective_month: Some(dibao_proto::common::v1::YearMonth {
                    year: now.year(),
                    month: i32::from(now.month() as u8),
                }),
                reason: reason.clone(),
            }));
            record_amount(
                tx,
                household_id,
                existing.monthly_amount_fen,
                amount.0,
                households::first_of_month(now),
                &reason,
                now,
            )
            .await?;
        }
        replace_members(tx, household_id, &ids).await?;
        let mut version = existing.version;
        for payload in events {
            version += 1;
            households::publish(tx, &roster.topic, household_id, version, payload).await?;
        }
        tx.execute(
            "UPDATE household SET body = $2, category = $3, monthly_amount_fen = $4, status = $5, village = $6,
                                  enrolled_on = coalesce(enrolled_on, $7), version = $8
             WHERE household_id = $1",
            &[
                &household_id,
                &body,
                &category,
                &amount.0,
                &(pb::HouseholdStatus::Enrolled as i32),
                &submitted.village.as_str(),
                &enrolled_on,
                &version,
            ],
        )
        .await?;
        Ok(Imported::Applied)
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
}

#[tracing::instrument(skip_all, fields(household_id = %h.household_id))]
async fn insert(tx: &Transaction<'_>, h: &NewRow<'_>) -> Result<(), Error> {
    let no_income = pb::AssessHouseholdRequest::default().encode_to_vec();
    let household = tx
        .prepare_cached(
            "INSERT INTO household (household_id, county, village, status, programme, category,
                                    monthly_amount_fen, enrolled_on, body, income, created_at, source_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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

/// The household's live members become exactly `ids`.
#[tracing::instrument(skip(tx, ids))]
async fn replace_members(tx: &Transaction<'_>, household_id: Uuid, ids: &[String]) -> Result<(), Error> {
    tx.execute(
        "UPDATE household_member SET live = false WHERE household_id = $1 AND NOT (identity_number = ANY($2))",
        &[&household_id, &ids],
    )
    .await?;
    tx.execute(
        "INSERT INTO household_member (identity_number, household_id, live)
         SELECT unnest($1::text[]), $2, true
         ON CONFLICT (identity_number, household_id) DO UPDATE SET live = true",
        &[&ids, &household_id],
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip(tx, reason))]
async fn record_amount(
    tx: &Transaction<'_>,
    household_id: Uuid,
    from_fen: i64,
    to_fen: i64,
    month: Date,
    reason: &str,
    now: time::OffsetDateTime,
) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO amount_change (household_id, from_fen, to_fen, effective_month, reason, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&household_id, &from_fen, &to_fen, &month, &reason, &now],
    )
    .await?;
    Ok(())
}
