//! The poverty office's household events applied to civil affairs' view of
//! the registered-poor roster (R-SYNC-1, R-SYNC-2): registrations, exits and
//! returns to poverty (a return for illness, disability or sudden hardship
//! makes the matching households priority candidates for review, R-REV-2),
//! the dibao flag, and deaths, which reach the dibao roster; and the
//! verification hub's announcements of completed reports (a step never
//! trusts them: it reads the report from the hub).
//!
//! Applied in the inbox's transaction with the event id (redeliveries
//! dropped); the view keeps the last aggregate version applied, so replayed
//! or older events change nothing (R-SYNC-3).

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::events::inbox::{Handler, HandlerError};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::store::db::cached;
use dibao_platform::store::rebuild::{self, Part, View, ViewRow};
use dibao_platform::trust::relatives;
use dibao_proto::common::v1::Relation;
use dibao_proto::events::v1::{EventEnvelope, RosterMember, event_envelope::Payload};
use dibao_proto::poverty_alleviation::v1::{PoorHousehold, PovertyStatus};
use dibao_proto::sync::v1::{RebuildPovertyViewRequest, RebuildPovertyViewResponse, rebuild_poverty_view_request};
use dibao_proto::types::DivisionCode;

use crate::households::{self, Death};

pub struct PovertyEvents {
    /// Civil affairs' own topic, where the deaths it learns are published.
    pub topic: String,
    pub clock: std::sync::Arc<dyn Clock>,
}

fn ids(members: &[RosterMember]) -> Vec<String> {
    members
        .iter()
        .filter_map(|m| m.person.as_ref()?.identity_number.as_ref().map(|i| i.value.to_ascii_uppercase()))
        .collect()
}

fn head(members: &[RosterMember]) -> (String, String) {
    members
        .iter()
        .find(|m| m.relation == Relation::Head as i32)
        .or(members.first())
        .and_then(|m| m.person.as_ref())
        .map(|p| (p.name.clone(), p.identity_number.as_ref().map(|i| i.value.to_ascii_uppercase()).unwrap_or_default()))
        .unwrap_or_default()
}

/// `Some(true)` when the event is newer than the view, `None` when the
/// household is not in the view.
async fn newer(tx: &Transaction<'_>, id: &str, version: i64) -> Result<Option<bool>, HandlerError> {
    let row =
        cached::query_opt(tx, "SELECT version FROM poverty_household WHERE poor_household_id = $1 FOR UPDATE", &[&id])
            .await?;
    Ok(row.map(|r| version > r.get::<_, i64>(0)))
}

async fn must_be_newer(tx: &Transaction<'_>, id: &str, version: i64) -> Result<bool, HandlerError> {
    match newer(tx, id, version).await? {
        Some(v) => Ok(v),
        None => Err(HandlerError::Permanent(format!(
            "registered-poor household {id} is not in this view (its registration was never received); resync the view"
        ))),
    }
}

async fn replace_members(tx: &Transaction<'_>, id: &str, members: &[String]) -> Result<(), tokio_postgres::Error> {
    cached::execute(tx, "DELETE FROM poverty_member WHERE poor_household_id = $1", &[&id]).await?;
    cached::execute(
        tx,
        "INSERT INTO poverty_member (identity_number, poor_household_id) SELECT DISTINCT unnest($1::text[]), $2",
        &[&members, &id],
    )
    .await?;
    Ok(())
}

impl Handler for PovertyEvents {
    async fn apply(&self, tx: &Transaction<'_>, event: &EventEnvelope) -> Result<(), HandlerError> {
        let version = event.aggregate_version;
        match &event.payload {
            Some(Payload::PoorHouseholdRegistered(e)) => {
                let id = e.household_id.as_str();
                if newer(tx, id, version).await? == Some(false) {
                    return Ok(());
                }
                let village = e.village.as_ref().map(|v| v.code.clone()).unwrap_or_default();
                let (name, identity) = head(&e.members);
                cached::execute(tx, "INSERT INTO poverty_household (poor_household_id, village, status, head_name, head_identity, version,
                                                   household_number, dibao_registered_poor)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (poor_household_id) DO UPDATE
                     SET village = $2, status = $3, head_name = $4, head_identity = $5, version = $6, household_number = $7,
                         dibao_registered_poor = $8",
                    &[&id, &village, &(PovertyStatus::InPoverty as i32), &name, &identity, &version, &e.household_number,
                      &e.dibao_registered_poor],
                )
                .await?;
                replace_members(tx, id, &ids(&e.members)).await?;
            }
            Some(Payload::PoorHouseholdCompositionChanged(e)) => {
                let id = e.household_id.as_str();
                if !must_be_newer(tx, id, version).await? {
                    return Ok(());
                }
                let (name, identity) = head(&e.members);
                cached::execute(
                    tx,
                    "UPDATE poverty_household SET head_name = $2, head_identity = $3, version = $4
                     WHERE poor_household_id = $1",
                    &[&id, &name, &identity, &version],
                )
                .await?;
                replace_members(tx, id, &ids(&e.members)).await?;
            }
            Some(Payload::PoorHouseholdExitedPoverty(e)) => {
                if !must_be_newer(tx, &e.household_id, version).await? {
                    return Ok(());
                }
                cached::execute(
                    tx,
                    "UPDATE poverty_household SET status = $2, exit_year = $3, return_cause = 0, version = $4
                     WHERE poor_household_id = $1",
                    &[&e.household_id, &(PovertyStatus::Exited as i32), &e.exit_year, &version],
                )
                .await?;
            }
            Some(Payload::PoorHouseholdReturnedToPoverty(e)) => {
                if !must_be_newer(tx, &e.household_id, version).await? {
                    return Ok(());
                }
                let returned_on = e.returned_on.as_ref().and_then(|d| time::Date::try_from(d).ok());
                cached::execute(
                    tx,
                    "UPDATE poverty_household SET status = $2, return_cause = $3, returned_on = $4, version = $5
                     WHERE poor_household_id = $1",
                    &[&e.household_id, &(PovertyStatus::Returned as i32), &e.cause, &returned_on, &version],
                )
                .await?;
            }
            Some(Payload::DibaoFlagChanged(e)) => {
                if !must_be_newer(tx, &e.household_id, version).await? {
                    return Ok(());
                }
                cached::execute(tx, "UPDATE poverty_household SET dibao_registered_poor = $2, version = $3 WHERE poor_household_id = $1",
                    &[&e.household_id, &e.dibao_registered_poor, &version],
                )
                .await?;
            }
            Some(Payload::MemberDeceased(e)) => {
                let Some(person) = e.identity_number.as_ref().map(|i| i.value.to_ascii_uppercase()) else {
                    return Err(HandlerError::Permanent("MemberDeceased without an identity number".into()));
                };
                let died_on = e.died_on.as_ref().and_then(|d| time::Date::try_from(d).ok()).ok_or_else(|| {
                    HandlerError::Permanent(format!(
                        "MemberDeceased of household {} without a valid date",
                        e.household_id
                    ))
                })?;
                cached::execute(
                    tx,
                    "UPDATE poverty_household SET version = greatest(version, $2) WHERE poor_household_id = $1",
                    &[&e.household_id, &version],
                )
                .await?;
                // On the dibao roster only if the person is a live member
                // whose death is not yet recorded; otherwise nothing to do.
                let household = cached::query_opt(
                    tx,
                    "SELECT m.household_id FROM household_member m
                         WHERE m.live AND m.identity_number = $1
                           AND NOT EXISTS (SELECT 1 FROM member_death d WHERE d.identity_number = $1)
                         FOR UPDATE",
                    &[&person],
                )
                .await?;
                if let Some(row) = household {
                    let source = format!("扶贫部门记录（建档立卡户{}）", e.household_id);
                    let death = Death {
                        person: &person,
                        household_id: row.get("household_id"),
                        died_on,
                        source: &source,
                        recorded_by: &event.producer,
                        now: self.clock.now(),
                    };
                    households::mark_deceased(tx, &self.topic, &death).await?;
                }
            }
            // The hub's announcement that a report is ready, kept as announced;
            // a step reads the report itself from the hub ([`crate::report_gate`]).
            Some(Payload::VerificationCompleted(e)) => {
                let completed_at = e
                    .completed_at
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                    .unwrap_or_else(|| self.clock.now());
                cached::execute(
                    tx,
                    "INSERT INTO verification_report (report_id, version, household_id, completed_at, complete, finding_count)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&e.report_id, &e.report_version, &e.household_id, &completed_at, &e.complete, &e.finding_count],
                )
                .await?;
            }
            // The officials' registry as the comparison keeps it: whom an
            // officer may not act for (优亲厚友, seed 001).
            Some(Payload::OfficialLinksChanged(e)) => relatives::apply(tx, e).await?,
            // A finished comparison run's list sizes, for the upward
            // reports (R-AUD-3): the run as published, once.
            Some(Payload::ComparisonCompleted(e)) => {
                let Some(completed_at) =
                    e.completed_at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                else {
                    return Err(HandlerError::Permanent("ComparisonCompleted without completed_at".into()));
                };
                let division = e.division.as_ref().map(|d| d.code.clone()).unwrap_or_default();
                let (lists, sizes): (Vec<String>, Vec<i64>) = e.list_sizes.iter().map(|(k, v)| (k.clone(), *v)).unzip();
                cached::execute(
                    tx,
                    "INSERT INTO comparison_completed (run_id, division, completed_at, lists, sizes)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&e.run_id, &division, &completed_at, &lists, &sizes],
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// This side's view of the registered-poor roster, rebuilt from the poverty
/// office's snapshot (R-SYNC-3) on the platform's rebuild.
pub struct PovertyView<'a>(pub &'a deadpool_postgres::Pool);

/// A registered-poor household as the view holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoorViewRow {
    pub village: String,
    pub status: i32,
    pub exit_year: Option<i32>,
    pub return_cause: i32,
    pub dibao_registered_poor: bool,
    pub head_name: String,
    pub head_identity: String,
    pub version: i64,
    /// Sorted.
    pub members: Vec<String>,
    /// The poverty office's number of the household (户编号).
    pub household_number: String,
}

impl PoorViewRow {
    /// The row a household of the office's snapshot should be.
    pub fn of(h: PoorHousehold) -> (String, Self) {
        let mut members = ids(&h.members);
        members.sort();
        members.dedup();
        let (head_name, head_identity) = head(&h.members);
        let row = Self {
            village: h.village.map(|v| v.code).unwrap_or_default(),
            status: h.status,
            exit_year: (h.exit_year != 0).then_some(h.exit_year),
            return_cause: h.return_cause,
            dibao_registered_poor: h.dibao_registered_poor,
            head_name,
            head_identity,
            version: h.version,
            members,
            household_number: h.household_number,
        };
        (h.household_id, row)
    }
}

impl ViewRow for PoorViewRow {
    fn differences(&self, held: &Self) -> Vec<&'static str> {
        let mut what = Vec::new();
        if (held.status, held.exit_year, held.return_cause) != (self.status, self.exit_year, self.return_cause) {
            what.push("脱贫/返贫状态");
        }
        if held.dibao_registered_poor != self.dibao_registered_poor {
            what.push("低保贫困户标识");
        }
        if (&held.members, &held.head_name, &held.head_identity)
            != (&self.members, &self.head_name, &self.head_identity)
        {
            what.push("家庭成员");
        }
        if held.village != self.village {
            what.push("所在村");
        }
        if held.household_number != self.household_number {
            what.push("户编号");
        }
        what
    }

    fn members(&self) -> &[String] {
        &self.members
    }
}

impl View for PovertyView<'_> {
    type Row = PoorViewRow;
    const HOUSEHOLD: &'static str = "建档立卡户";
    const ROSTER: &'static str = "扶贫名单";

    async fn held(&self, tx: &Transaction<'_>, division: &DivisionCode) -> Result<HashMap<String, PoorViewRow>, Error> {
        Ok(tx
            .query(
                "SELECT poor_household_id, village, status, exit_year, return_cause, dibao_registered_poor, head_name,
                        head_identity, version, household_number,
                        array(SELECT identity_number FROM poverty_member m
                              WHERE m.poor_household_id = p.poor_household_id ORDER BY 1) AS members
                 FROM poverty_household p WHERE village LIKE $1 || '%' FOR UPDATE",
                &[&division.prefix()],
            )
            .await?
            .iter()
            .map(|r| {
                let row = PoorViewRow {
                    village: r.get("village"),
                    status: r.get("status"),
                    exit_year: r.get("exit_year"),
                    return_cause: r.get("return_cause"),
                    dibao_registered_poor: r.get("dibao_registered_poor"),
                    head_name: r.get("head_name"),
                    head_identity: r.get("head_identity"),
                    version: r.get("version"),
                    members: r.get("members"),
                    household_number: r.get("household_number"),
                };
                (r.get("poor_household_id"), row)
            })
            .collect())
    }

    async fn put(&self, tx: &Transaction<'_>, id: &str, row: &PoorViewRow) -> Result<(), Error> {
        tx.execute(
            "INSERT INTO poverty_household (poor_household_id, village, status, exit_year, return_cause,
                                            dibao_registered_poor, head_name, head_identity, version, household_number)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (poor_household_id) DO UPDATE
             SET village = $2, status = $3, exit_year = $4, return_cause = $5, dibao_registered_poor = $6,
                 head_name = $7, head_identity = $8, version = $9, household_number = $10",
            &[
                &id,
                &row.village,
                &row.status,
                &row.exit_year,
                &row.return_cause,
                &row.dibao_registered_poor,
                &row.head_name,
                &row.head_identity,
                &row.version,
                &row.household_number,
            ],
        )
        .await?;
        replace_members(tx, id, &row.members).await?;
        Ok(())
    }

    async fn remove(&self, tx: &Transaction<'_>, id: &str) -> Result<(), Error> {
        tx.execute("DELETE FROM poverty_member WHERE poor_household_id = $1", &[&id]).await?;
        tx.execute("DELETE FROM poverty_household WHERE poor_household_id = $1", &[&id]).await?;
        Ok(())
    }
}

/// Rebuilds the view of a division from the office's snapshot, streamed by the operator's resync.
pub async fn rebuild(
    pool: &deadpool_postgres::Pool,
    reader: &dibao_platform::runtime::access::Reader,
    stream: tonic::Streaming<RebuildPovertyViewRequest>,
) -> Result<RebuildPovertyViewResponse, Error> {
    let (division, snapshot) = rebuild::read(
        stream,
        |m| match m.item? {
            rebuild_poverty_view_request::Item::Division(d) => Some(Part::Division(d)),
            rebuild_poverty_view_request::Item::Household(h) => Some(Part::Household(h)),
        },
        |h| h.household.map(PoorViewRow::of),
    )
    .await?;
    // The operator's division must hold the one rebuilt.
    reader.must_cover(&division, "division")?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let (report, _) = rebuild::rebuild(&PovertyView(pool), &tx, &division, &snapshot).await?;
    tx.commit().await?;
    Ok(RebuildPovertyViewResponse { report: Some(report) })
}
