//! The household's certificate (低保证 for dibao, 特困供养证 for special
//! hardship; R-PROC-1 ends in "certificate and payment"): issued when the
//! household is enrolled, issued anew under a new number whenever what it
//! states — programme, category, monthly amount, living members — changes
//! (a review, a new standard, a death), withdrawn when the household exits.
//! Every certificate stays on record with the day it was superseded.
//!
//! Households imported from a county's old roster keep the paper
//! certificate they hold until their first change here.

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::china_date;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{Money, Relation};
use dibao_proto::events::v1::Programme;
use dibao_proto::labels::chinese_date;
use dibao_proto::types::{DivisionCode, Fen, date_to_pb};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::households::{self, HouseholdError, Roster};

/// What a certificate states.
#[derive(Debug, PartialEq, Eq)]
struct Stated {
    programme: i32,
    category: i32,
    amount_fen: i64,
    members: i32,
}

fn kind(programme: i32) -> (&'static str, &'static str) {
    if programme == Programme::SpecialHardship as i32 { ("TK", "特困供养证") } else { ("DB", "低保证") }
}

/// Brings the household's certificate in line with the household as `tx`
/// now holds it: a new one when none is current or what it states changed,
/// the current one withdrawn when the household is no longer enrolled.
/// Returns the current number, if any.
#[tracing::instrument(skip(tx))]
pub async fn reissue(
    tx: &Transaction<'_>,
    household_id: Uuid,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Option<String>, Error> {
    let row = tx
        .query_one(
            "SELECT county, status, programme, category, monthly_amount_fen,
                    (SELECT count(*) FROM household_member m WHERE m.household_id = h.household_id AND m.live)::int AS members
             FROM household h WHERE household_id = $1",
            &[&household_id],
        )
        .await?;
    let status: i32 = row.get("status");
    let now_states = Stated {
        programme: row.get("programme"),
        category: row.get("category"),
        amount_fen: row.get("monthly_amount_fen"),
        members: row.get("members"),
    };
    let current = tx
        .query_opt(
            "SELECT number, programme, category, amount_fen, members FROM certificate
             WHERE household_id = $1 AND superseded_on IS NULL FOR UPDATE",
            &[&household_id],
        )
        .await?;
    let today = china_date(now);
    let enrolled = [pb::HouseholdStatus::Enrolled as i32, pb::HouseholdStatus::GradualExit as i32].contains(&status);
    if let Some(c) = &current {
        let held = Stated {
            programme: c.get("programme"),
            category: c.get("category"),
            amount_fen: c.get("amount_fen"),
            members: c.get("members"),
        };
        if enrolled && held == now_states {
            return Ok(Some(c.get("number")));
        }
        tx.execute(
            "UPDATE certificate SET superseded_on = $2 WHERE number = $1",
            &[&c.get::<_, String>("number"), &today],
        )
        .await?;
    }
    if !enrolled {
        return Ok(None);
    }
    let county: String = row.get("county");
    let (code, _) = kind(now_states.programme);
    let next: i64 = tx
        .query_one(
            "INSERT INTO certificate_counter AS c (county, kind, year, last) VALUES ($1, $2, $3, 1)
             ON CONFLICT (county, kind, year) DO UPDATE SET last = c.last + 1 RETURNING last",
            &[&county, &code, &today.year()],
        )
        .await?
        .get(0);
    let number = format!("{county}-{code}-{}-{next:06}", today.year());
    tx.execute(
        "INSERT INTO certificate (number, household_id, programme, category, amount_fen, members, issued_on, issued_at, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &number,
            &household_id,
            &now_states.programme,
            &now_states.category,
            &now_states.amount_fen,
            &now_states.members,
            &today,
            &now,
            &reason,
        ],
    )
    .await?;
    tracing::info!(%household_id, number, "certificate issued");
    Ok(Some(number))
}

fn certificate_of(row: &Row) -> pb::Certificate {
    pb::Certificate {
        number: row.get("number"),
        programme: row.get("programme"),
        category: row.get("category"),
        monthly_amount: Some(Money { fen: row.get("amount_fen") }),
        members: row.get("members"),
        issued_on: Some(date_to_pb(row.get("issued_on"))),
        reason: row.get("reason"),
        superseded_on: row.get::<_, Option<time::Date>>("superseded_on").map(date_to_pb),
    }
}

/// The household's certificates as `reader` may read them, the current one
/// with the lines printed on it.
pub async fn get(
    roster: &Roster,
    reader: &Reader,
    req: &pb::GetCertificateRequest,
) -> Result<pb::GetCertificateResponse, Error> {
    let id = crate::convert::uuid(&req.household_id, "household_id", "家庭编号格式不正确")?;
    let client = roster.pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {}, village, county FROM household WHERE household_id = $1", households::COLUMNS),
            &[&id],
        )
        .await?;
    let Some(row) = row.filter(|r| DivisionCode::parse(r.get("village")).is_ok_and(|v| reader.covers(&v))) else {
        return Err(HouseholdError::NotFound(id).into());
    };
    let household = households::household_of(&row)?;
    let mut all: Vec<pb::Certificate> = client
        .query(
            "SELECT number, programme, category, amount_fen, members, issued_on, reason, superseded_on
             FROM certificate WHERE household_id = $1 ORDER BY issued_at DESC, number DESC",
            &[&id],
        )
        .await?
        .iter()
        .map(certificate_of)
        .collect();
    let current = all.iter().position(|c| c.superseded_on.is_none()).map(|i| all.remove(i));
    let printed = match &current {
        Some(c) => {
            let head = household
                .members
                .iter()
                .find(|m| m.relation == Relation::Head as i32)
                .or(household.members.first())
                .and_then(|m| m.person.as_ref())
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let issued =
                c.issued_on.as_ref().and_then(|d| time::Date::try_from(d).ok()).map(chinese_date).unwrap_or_default();
            // By name where the division tables have it (R-ROSTER-3).
            let village = DivisionCode::parse(row.get("village")).map(|v| v.place()).unwrap_or_default();
            let county: String = row.get("county");
            let issuer = match dibao_proto::divisions::name(&county) {
                Some(name) => format!("{name}民政局"),
                None => format!("{county}县（市、区）民政局"),
            };
            vec![
                kind(c.programme).1.to_owned(),
                format!("证号：{}", c.number),
                format!("户主：{head}"),
                format!("户编号：{}", household.household_number),
                format!("所在村（社区）：{village}"),
                format!("保障人口：{}人", c.members),
                format!("保障类别：{}", crate::notice::category_label(c.programme, c.category)),
                format!("月保障金：{}", Fen(c.monthly_amount.as_ref().map_or(0, |m| m.fen))),
                format!("发证日期：{issued}"),
                format!("发证机关：{issuer}"),
            ]
        }
        None => Vec::new(),
    };
    households::log_read(roster, reader, &household, "查阅低保证").await?;
    Ok(pb::GetCertificateResponse { current, printed, earlier: all })
}
