//! The poverty office's household events applied to civil affairs' view of
//! the registered-poor roster (R-SYNC-1, R-SYNC-2): registrations, exits and
//! returns to poverty (a return for illness, disability or sudden hardship
//! makes the matching households priority candidates for review, R-REV-2),
//! the dibao flag, and deaths, which reach the dibao roster.
//!
//! Applied in the inbox's transaction with the event id (redeliveries
//! dropped); the view keeps the last aggregate version applied, so replayed
//! or older events change nothing (R-SYNC-3).

use deadpool_postgres::Transaction;
use dibao_platform::clock::Clock;
use dibao_platform::inbox::{Handler, HandlerError};
use dibao_proto::common::v1::Relation;
use dibao_proto::events::v1::{EventEnvelope, RosterMember, event_envelope::Payload};
use dibao_proto::poverty_alleviation::v1::PovertyStatus;

use crate::service::mark_deceased;

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
        tx.query_opt("SELECT version FROM poverty_household WHERE poor_household_id = $1 FOR UPDATE", &[&id]).await?;
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

async fn replace_members(tx: &Transaction<'_>, id: &str, members: &[String]) -> Result<(), HandlerError> {
    tx.execute("DELETE FROM poverty_member WHERE poor_household_id = $1", &[&id]).await?;
    tx.execute(
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
                tx.execute(
                    "INSERT INTO poverty_household (poor_household_id, village, status, head_name, head_identity, version)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (poor_household_id) DO UPDATE
                     SET village = $2, status = $3, head_name = $4, head_identity = $5, version = $6",
                    &[&id, &village, &(PovertyStatus::InPoverty as i32), &name, &identity, &version],
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
                tx.execute(
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
                tx.execute(
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
                tx.execute(
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
                tx.execute(
                    "UPDATE poverty_household SET dibao_registered_poor = $2, version = $3 WHERE poor_household_id = $1",
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
                tx.execute(
                    "UPDATE poverty_household SET version = greatest(version, $2) WHERE poor_household_id = $1",
                    &[&e.household_id, &version],
                )
                .await?;
                // On the dibao roster only if the person is a live member
                // whose death is not yet recorded; otherwise nothing to do.
                let household = tx
                    .query_opt(
                        "SELECT m.household_id FROM household_member m
                         WHERE m.live AND m.identity_number = $1
                           AND NOT EXISTS (SELECT 1 FROM member_death d WHERE d.identity_number = $1)
                         FOR UPDATE",
                        &[&person],
                    )
                    .await?;
                if let Some(row) = household {
                    let source = format!("扶贫部门记录（建档立卡户{}）", e.household_id);
                    mark_deceased(
                        tx,
                        &self.topic,
                        &person,
                        row.get(0),
                        died_on,
                        &source,
                        &event.producer,
                        self.clock.now(),
                    )
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
