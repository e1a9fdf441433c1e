//! Civil affairs' household events applied to the poverty office's view of
//! the dibao roster, and the dibao-registered-poor flag its enrolments and
//! exits set or clear on every registered household sharing a member,
//! recorded as the sync's (R-SYNC-1, R-SYNC-2); the office records the
//! flag too, and keeps what it recorded until the next enrolment or exit
//! touching the household (R-ROSTER-2, see [`Flags`]).
//!
//! Each event is applied in the inbox's transaction with its event id, so a
//! redelivery is dropped; events of one household arrive in order (keyed by
//! household), and the view keeps the last aggregate version applied, so a
//! replayed or older event changes nothing (R-SYNC-3).

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::events::inbox::{Handler, HandlerError};
use dibao_platform::store::db::cached;
use dibao_platform::store::rebuild::{self, Part, View, ViewRow};
use dibao_proto::civil_affairs::v1::{Household, HouseholdStatus};
use dibao_proto::events::v1::{
    DibaoFlagChanged, EventEnvelope, HouseholdAmountChanged, PaidAfterDeath, RosterMember, event_envelope::Payload,
};
use dibao_proto::sync::v1::{RebuildDibaoViewRequest, RebuildDibaoViewResponse, rebuild_dibao_view_request};
use dibao_proto::types::DivisionCode;
use tokio_postgres::types::ToSql;

use crate::households::publish;

pub struct DibaoEvents {
    /// This service's own topic, where flag changes are published.
    pub topic: String,
}

fn ids(members: &[RosterMember]) -> Vec<String> {
    members
        .iter()
        .filter_map(|m| m.person.as_ref()?.identity_number.as_ref().map(|i| i.value.to_ascii_uppercase()))
        .collect()
}

/// What the view holds of a household, locked: its version and members.
/// `None` when the household is not in the view yet.
async fn current(tx: &Transaction<'_>, id: &str) -> Result<Option<(i64, Vec<String>)>, HandlerError> {
    let row = cached::query_opt(
        tx,
        "SELECT version, array(SELECT identity_number FROM dibao_member m WHERE m.dibao_household_id = d.dibao_household_id)
         FROM dibao_household d WHERE dibao_household_id = $1 FOR UPDATE",
        &[&id],
    )
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// The household as the view holds it when the event is newer; `Ok(None)`
/// when the event is a replay or older.
async fn must_be_newer(tx: &Transaction<'_>, id: &str, version: i64) -> Result<Option<Vec<String>>, HandlerError> {
    match current(tx, id).await? {
        Some((held, members)) => Ok((version > held).then_some(members)),
        None => Err(unknown(id)),
    }
}

const DELETE_MEMBERS: &str = "DELETE FROM dibao_member WHERE dibao_household_id = $1";
const INSERT_MEMBERS: &str =
    "INSERT INTO dibao_member (identity_number, dibao_household_id) SELECT DISTINCT unnest($1::text[]), $2";

/// Sets the household's members (the view rebuild's way: one by one).
async fn replace_members(tx: &Transaction<'_>, id: &str, members: &[String]) -> Result<(), tokio_postgres::Error> {
    cached::pipeline(tx, &[(DELETE_MEMBERS, &[&id]), (INSERT_MEMBERS, &[&members, &id])]).await?;
    Ok(())
}

/// What a recomputation may change on a registered household.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flags {
    /// A dibao enrolment or exit (a household enrolled, exited, its members
    /// changed, a member dead, or the view rebuilt): the flag is set or
    /// cleared as the dibao roster now says, recorded as the sync's
    /// (R-SYNC-2), with the households and category that say so.
    Sync,
    /// Anything else (a category change, the office's own registration):
    /// only the dibao households sharing a member and their category; the
    /// flag stays as the office or the sync last recorded it (R-ROSTER-2),
    /// so where they disagree the comparison's list (e) reports it.
    Matches,
}

/// Runs `writes`, then recomputes, for every registered household with a
/// live member among `identity_numbers`, the enrolled dibao households
/// sharing a member and their category, and with [`Flags::Sync`] the flag:
/// set while any enrolled dibao household shares a member with it, cleared
/// otherwise. Each change is published (`DibaoFlagChanged`) under the
/// household's next version. Returns how many households changed.
///
/// The recomputation is one statement: it starts from the affected members
/// and reaches every other table through an index (member -> household ->
/// its live members -> their dibao households), so its cost follows the
/// households touched, not the size of either roster, and only rows that
/// change are written.
///
/// Two transactions touching one person from both sides (an enrolment
/// arriving while the office registers or changes a household with the
/// same member) would each miss the other's uncommitted rows and both leave
/// the flag unset. A lock per person, taken in a statement of its own before
/// the recomputation, makes the later one wait, and its recomputation (a new
/// statement, a new snapshot) sees the earlier one.
///
/// With statistics taken while a roster was still small (a fresh system, a
/// bulk import) the planner prefers scanning whole tables, and a cached plan
/// keeps doing so as they grow; hash and merge joins and sequential scans
/// are off for the rest of the transaction (SET LOCAL), so the plan is index
/// lookups whatever the statistics say.
///
/// The writes, the settings, the locks and the recomputation go to the
/// server in one round trip (pipelined); it runs them in that order.
pub async fn refresh_flags(
    tx: &Transaction<'_>,
    topic: &str,
    identity_numbers: &[String],
    writes: &[(&str, &[&(dyn ToSql + Sync)])],
    flags: Flags,
) -> Result<usize, tokio_postgres::Error> {
    let persons: [&(dyn ToSql + Sync); 1] = [&identity_numbers];
    let recompute = match flags {
        Flags::Sync => RECOMPUTE_BY_SYNC,
        Flags::Matches => RECOMPUTE_MATCHES,
    };
    let mut statements = writes.to_vec();
    statements.extend_from_slice(&[
        (
            "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
                    set_config('enable_seqscan', 'off', true)",
            &[],
        ),
        (
            "SELECT pg_advisory_xact_lock(hashtextextended('person:' || id, 0))
             FROM (SELECT DISTINCT id FROM unnest($1::text[]) AS id ORDER BY id) AS persons",
            &persons,
        ),
        (recompute, &persons),
    ]);
    let rows = cached::pipeline(tx, &statements).await?.pop().unwrap_or_default();
    for row in &rows {
        let id: uuid::Uuid = row.get(0);
        let (flag, category, matched, version): (bool, i32, Vec<String>, i64) =
            (row.get(1), row.get(2), row.get(3), row.get(4));
        let payload = Payload::DibaoFlagChanged(DibaoFlagChanged {
            household_id: id.to_string(),
            dibao_registered_poor: flag,
            category,
            dibao_household_ids: matched,
        });
        publish(tx, topic, &id.to_string(), version, payload).await?;
        tracing::info!(household_id = %id, dibao_registered_poor = flag, ?flags, "dibao flag or matches changed");
    }
    Ok(rows.len())
}

/// The enrolled dibao households sharing a live member with each affected
/// registered household ($1: the persons), and their lowest category.
macro_rules! matched {
    () => {
        "WITH affected AS (
             SELECT DISTINCT household_id FROM poor_member WHERE live AND identity_number = ANY($1)
         ), matched AS (
             SELECT p.household_id,
                    array_agg(DISTINCT d.dibao_household_id ORDER BY d.dibao_household_id) AS ids,
                    coalesce(min(d.category) FILTER (WHERE d.category > 0), 0) AS category
             FROM affected a
             JOIN poor_member p ON p.household_id = a.household_id AND p.live
             JOIN dibao_member m ON m.identity_number = p.identity_number
             JOIN dibao_household d ON d.dibao_household_id = m.dibao_household_id AND d.enrolled
             GROUP BY p.household_id
         ), target AS (
             SELECT a.household_id, coalesce(m.ids, '{}') AS ids, coalesce(m.category, 0) AS category
             FROM affected a LEFT JOIN matched m USING (household_id)
         ) "
    };
}

const RECOMPUTE_BY_SYNC: &str = concat!(
    matched!(),
    "UPDATE poor_household h
     SET dibao_registered_poor = cardinality(t.ids) > 0, dibao_category = t.category,
         dibao_household_ids = t.ids, version = h.version + 1,
         flag_recorded_by = CASE WHEN h.dibao_registered_poor = (cardinality(t.ids) > 0) THEN h.flag_recorded_by
                                 ELSE 'sync' END,
         flag_recorded_at = CASE WHEN h.dibao_registered_poor = (cardinality(t.ids) > 0) THEN h.flag_recorded_at
                                 ELSE now() END,
         flag_basis = CASE WHEN h.dibao_registered_poor = (cardinality(t.ids) > 0) THEN h.flag_basis
                           WHEN cardinality(t.ids) > 0 THEN '民政低保（特困）纳入'
                           ELSE '民政低保（特困）退出' END
     FROM target t
     WHERE h.household_id = t.household_id
       AND (h.dibao_registered_poor, h.dibao_category, h.dibao_household_ids)
           IS DISTINCT FROM (cardinality(t.ids) > 0, t.category, t.ids)
     RETURNING h.household_id, h.dibao_registered_poor, h.dibao_category, h.dibao_household_ids, h.version"
);

const RECOMPUTE_MATCHES: &str = concat!(
    matched!(),
    "UPDATE poor_household h
     SET dibao_category = t.category, dibao_household_ids = t.ids, version = h.version + 1
     FROM target t
     WHERE h.household_id = t.household_id
       AND (h.dibao_category, h.dibao_household_ids) IS DISTINCT FROM (t.category, t.ids)
     RETURNING h.household_id, h.dibao_registered_poor, h.dibao_category, h.dibao_household_ids, h.version"
);

impl Handler for DibaoEvents {
    async fn apply(&self, tx: &Transaction<'_>, event: &EventEnvelope) -> Result<(), HandlerError> {
        let version = event.aggregate_version;
        let topic = self.topic.as_str();
        match &event.payload {
            Some(Payload::HouseholdEnrolled(e)) => {
                let id = e.household_id.as_str();
                let village = e.village.as_ref().map(|v| v.code.clone()).unwrap_or_default();
                let before = match current(tx, id).await? {
                    Some((held, _)) if version <= held => return Ok(()),
                    Some((_, members)) => members,
                    None => Vec::new(),
                };
                let now = ids(&e.members);
                let affected: Vec<String> = before.into_iter().chain(now.iter().cloned()).collect();
                let writes: [(&str, &[&(dyn ToSql + Sync)]); 3] = [
                    (
                        "INSERT INTO dibao_household (dibao_household_id, village, programme, category, enrolled, version)
                         VALUES ($1, $2, $3, $4, true, $5)
                         ON CONFLICT (dibao_household_id) DO UPDATE
                         SET village = $2, programme = $3, category = $4, enrolled = true, version = $5",
                        &[&id, &village, &e.programme, &e.category, &version],
                    ),
                    (DELETE_MEMBERS, &[&id]),
                    (INSERT_MEMBERS, &[&now, &id]),
                ];
                refresh_flags(tx, topic, &affected, &writes, Flags::Sync).await?;
            }
            Some(Payload::HouseholdCompositionChanged(e)) => {
                let id = e.household_id.as_str();
                let Some(before) = must_be_newer(tx, id, version).await? else { return Ok(()) };
                let now = ids(&e.members);
                let affected: Vec<String> = before.into_iter().chain(now.iter().cloned()).collect();
                let writes: [(&str, &[&(dyn ToSql + Sync)]); 3] = [
                    ("UPDATE dibao_household SET version = $2 WHERE dibao_household_id = $1", &[&id, &version]),
                    (DELETE_MEMBERS, &[&id]),
                    (INSERT_MEMBERS, &[&now, &id]),
                ];
                refresh_flags(tx, topic, &affected, &writes, Flags::Sync).await?;
            }
            Some(Payload::HouseholdCategoryChanged(e)) => {
                let id = e.household_id.as_str();
                let Some(members) = must_be_newer(tx, id, version).await? else { return Ok(()) };
                let writes: [(&str, &[&(dyn ToSql + Sync)]); 1] = [(
                    "UPDATE dibao_household SET category = $2, version = $3 WHERE dibao_household_id = $1",
                    &[&id, &e.category, &version],
                )];
                refresh_flags(tx, topic, &members, &writes, Flags::Matches).await?;
            }
            Some(Payload::HouseholdExited(e)) => {
                let id = e.household_id.as_str();
                let Some(members) = must_be_newer(tx, id, version).await? else { return Ok(()) };
                let writes: [(&str, &[&(dyn ToSql + Sync)]); 1] = [(
                    "UPDATE dibao_household SET enrolled = false, version = $2 WHERE dibao_household_id = $1",
                    &[&id, &version],
                )];
                refresh_flags(tx, topic, &members, &writes, Flags::Sync).await?;
            }
            // The amount and what was overpaid after a death are not on
            // this roster; the version still moves.
            Some(Payload::HouseholdAmountChanged(HouseholdAmountChanged { household_id, .. }))
            | Some(Payload::PaidAfterDeath(PaidAfterDeath { household_id, .. })) => {
                cached::execute(
                    tx,
                    "UPDATE dibao_household SET version = greatest(version, $2) WHERE dibao_household_id = $1",
                    &[household_id, &version],
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
                let writes: [(&str, &[&(dyn ToSql + Sync)]); 3] = [
                    // The death is the household's next version on the dibao roster.
                    (
                        "UPDATE dibao_household SET version = greatest(version, $2) WHERE dibao_household_id = $1",
                        &[&e.household_id, &version],
                    ),
                    // Recorded on this roster too; not published back, civil affairs already knows.
                    (
                        "UPDATE poor_member SET died_on = $2 WHERE identity_number = $1 AND died_on IS NULL",
                        &[&person, &died_on],
                    ),
                    (
                        "DELETE FROM dibao_member WHERE identity_number = $1 AND dibao_household_id = $2",
                        &[&person, &e.household_id],
                    ),
                ];
                refresh_flags(tx, topic, std::slice::from_ref(&person), &writes, Flags::Sync).await?;
            }
            // The comparison's run: kept so the candidate list can point at
            // its list (b) and (e), the office's to decide (R-CMP-3).
            Some(Payload::ComparisonCompleted(e)) => {
                let division = e.division.as_ref().map(|d| d.code.clone()).unwrap_or_default();
                let scope = match e.division.as_ref().filter(|d| !d.code.is_empty()) {
                    None => String::new(),
                    Some(d) => dibao_proto::types::DivisionCode::try_from(d)
                        .map_err(|err| HandlerError::Permanent(format!("ComparisonCompleted {}: {err}", e.run_id)))?
                        .prefix()
                        .to_owned(),
                };
                let completed_at = e
                    .completed_at
                    .as_ref()
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                    .ok_or_else(|| {
                        HandlerError::Permanent(format!("ComparisonCompleted {} without a time", e.run_id))
                    })?;
                let size = |letter: &str| e.list_sizes.get(letter).copied().unwrap_or(0);
                tx.execute(
                    "INSERT INTO comparison_run (run_id, division, scope, completed_at, dibao_not_poor, flag_mismatches)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO NOTHING",
                    &[&e.run_id, &division, &scope, &completed_at, &size("b"), &size("e")],
                )
                .await?;
            }
            // Other events on the topic (from later contract versions) are not ours to apply.
            _ => {}
        }
        Ok(())
    }
}

fn unknown(id: &str) -> HandlerError {
    HandlerError::Permanent(format!(
        "dibao household {id} is not in this view (its enrolment was never received); resync the view"
    ))
}

/// This side's view of the dibao roster, rebuilt from civil affairs'
/// snapshot (R-SYNC-3) on the platform's rebuild; the flags that follow
/// from it are recomputed in the same transaction.
pub struct DibaoView;

/// A dibao household as the view holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DibaoViewRow {
    pub village: String,
    pub programme: i32,
    pub category: i32,
    pub enrolled: bool,
    pub version: i64,
    /// Living members, sorted.
    pub members: Vec<String>,
}

impl DibaoViewRow {
    /// The row a household of civil affairs' snapshot should be; `None`
    /// for households never enrolled (applying, refused): they are not on
    /// the roster the events build.
    pub fn of(h: Household) -> Option<(String, Self)> {
        let enrolled = [HouseholdStatus::Enrolled as i32, HouseholdStatus::GradualExit as i32].contains(&h.status);
        if !enrolled && h.status != HouseholdStatus::Exited as i32 {
            return None;
        }
        let dead: Vec<String> = h.deceased.iter().map(|i| i.value.to_ascii_uppercase()).collect();
        let mut members: Vec<String> = h
            .members
            .iter()
            .filter_map(|m| m.person.as_ref()?.identity_number.as_ref().map(|i| i.value.to_ascii_uppercase()))
            .filter(|i| !dead.contains(i))
            .collect();
        members.sort();
        members.dedup();
        let village = h.village.map(|v| v.code).unwrap_or_default();
        let row = Self { village, programme: h.programme, category: h.category, enrolled, version: h.version, members };
        Some((h.household_id, row))
    }
}

impl ViewRow for DibaoViewRow {
    fn differences(&self, held: &Self) -> Vec<&'static str> {
        let mut what = Vec::new();
        if held.enrolled != self.enrolled {
            what.push("在保状态");
        }
        if (held.programme, held.category) != (self.programme, self.category) {
            what.push("保障类型或类别");
        }
        if held.members != self.members {
            what.push("家庭成员");
        }
        if held.village != self.village {
            what.push("所在村");
        }
        what
    }

    fn members(&self) -> &[String] {
        &self.members
    }
}

impl View for DibaoView {
    type Row = DibaoViewRow;
    const HOUSEHOLD: &'static str = "低保户";
    const ROSTER: &'static str = "民政名单";

    async fn held(
        &self,
        tx: &Transaction<'_>,
        division: &DivisionCode,
    ) -> Result<HashMap<String, DibaoViewRow>, Error> {
        Ok(tx
            .query(
                "SELECT dibao_household_id, village, programme, category, enrolled, version,
                        array(SELECT identity_number FROM dibao_member m
                              WHERE m.dibao_household_id = d.dibao_household_id ORDER BY 1) AS members
                 FROM dibao_household d WHERE village LIKE $1 || '%' FOR UPDATE",
                &[&division.prefix()],
            )
            .await?
            .iter()
            .map(|r| {
                let row = DibaoViewRow {
                    village: r.get("village"),
                    programme: r.get("programme"),
                    category: r.get("category"),
                    enrolled: r.get("enrolled"),
                    version: r.get("version"),
                    members: r.get("members"),
                };
                (r.get("dibao_household_id"), row)
            })
            .collect())
    }

    async fn put(&self, tx: &Transaction<'_>, id: &str, row: &DibaoViewRow) -> Result<(), Error> {
        tx.execute(
            "INSERT INTO dibao_household (dibao_household_id, village, programme, category, enrolled, version)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (dibao_household_id) DO UPDATE
             SET village = $2, programme = $3, category = $4, enrolled = $5, version = $6",
            &[&id, &row.village, &row.programme, &row.category, &row.enrolled, &row.version],
        )
        .await?;
        replace_members(tx, id, &row.members).await?;
        Ok(())
    }

    async fn remove(&self, tx: &Transaction<'_>, id: &str) -> Result<(), Error> {
        tx.execute("DELETE FROM dibao_member WHERE dibao_household_id = $1", &[&id]).await?;
        tx.execute("DELETE FROM dibao_household WHERE dibao_household_id = $1", &[&id]).await?;
        Ok(())
    }
}

/// Rebuilds the view of a division from civil affairs' snapshot, streamed
/// by the operator's resync, then the flags that follow from it.
pub async fn rebuild(
    pool: &deadpool_postgres::Pool,
    topic: &str,
    reader: &dibao_platform::runtime::access::Reader,
    stream: tonic::Streaming<RebuildDibaoViewRequest>,
) -> Result<RebuildDibaoViewResponse, Error> {
    let (division, snapshot) = rebuild::read(
        stream,
        |m| match m.item? {
            rebuild_dibao_view_request::Item::Division(d) => Some(Part::Division(d)),
            rebuild_dibao_view_request::Item::Household(h) => Some(Part::Household(h)),
        },
        |h| h.household.and_then(DibaoViewRow::of),
    )
    .await?;
    // The operator's division must hold the one rebuilt.
    reader.must_cover(&division, "division")?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let (mut report, affected) = rebuild::rebuild(&DibaoView, &tx, &division, &snapshot).await?;
    report.flags_changed = refresh_flags(&tx, topic, &affected, &[], Flags::Sync).await? as i64;
    tx.commit().await?;
    tracing::info!(division = %division, flags_changed = report.flags_changed, "dibao view rebuilt");
    Ok(RebuildDibaoViewResponse { report: Some(report) })
}
