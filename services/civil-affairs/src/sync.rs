//! The poverty office's household events applied to civil affairs' view of
//! the registered-poor roster (R-SYNC-1, R-SYNC-2): registrations, exits and
//! returns to poverty (a return for illness, disability or sudden hardship
//! makes the matching households priority candidates for review, R-REV-2),
//! the dibao flag, and deaths, which reach the dibao roster; and the
//! verification hub's completed reports, which the verification step needs.
//!
//! Applied in the inbox's transaction with the event id (redeliveries
//! dropped); the view keeps the last aggregate version applied, so replayed
//! or older events change nothing (R-SYNC-3).

use deadpool_postgres::Transaction;
use dibao_platform::events::inbox::{Handler, HandlerError};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::store::db::cached;
use dibao_proto::common::v1::Relation;
use dibao_proto::events::v1::{EventEnvelope, RosterMember, event_envelope::Payload};
use dibao_proto::poverty_alleviation::v1::PovertyStatus;

use dibao_proto::sync::v1::poverty_roster_view_service_server::PovertyRosterViewService;
use dibao_proto::sync::v1::{
    RebuildPovertyViewRequest, RebuildPovertyViewResponse, RebuildReport, rebuild_poverty_view_request,
};

use crate::service::{db, invalid, mark_deceased};

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

async fn replace_members(tx: &Transaction<'_>, id: &str, members: &[String]) -> Result<(), HandlerError> {
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
                cached::execute(tx, "INSERT INTO poverty_household (poor_household_id, village, status, head_name, head_identity, version)
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
            // The hub's completed reports, for the verification step (R-VER-2).
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
            _ => {}
        }
        Ok(())
    }
}

/// Rebuilds this side's view of the registered-poor roster from the poverty
/// office's snapshot (R-SYNC-3), reporting every correction.
pub struct PovertyView {
    pub pool: deadpool_postgres::Pool,
}

/// A view row as it should be: village, status, exit year, return cause,
/// flag, head name and identity, version, members (sorted).
type PoorRow = (String, i32, Option<i32>, i32, bool, String, String, i64, Vec<String>);

#[tonic::async_trait]
impl PovertyRosterViewService for PovertyView {
    #[tracing::instrument(skip_all)]
    async fn rebuild_poverty_view(
        &self,
        request: tonic::Request<tonic::Streaming<RebuildPovertyViewRequest>>,
    ) -> Result<tonic::Response<RebuildPovertyViewResponse>, tonic::Status> {
        let mut stream = request.into_inner();
        let mut division = None;
        let mut snapshot: Vec<(String, PoorRow)> = Vec::new();
        while let Some(message) = stream.message().await? {
            match message.item {
                Some(rebuild_poverty_view_request::Item::Division(d)) if division.is_none() => {
                    division = Some(
                        dibao_proto::types::DivisionCode::try_from(&d)
                            .map_err(|e| invalid(vec![e.within("division")]))?,
                    )
                }
                Some(rebuild_poverty_view_request::Item::Household(h)) if division.is_some() => {
                    let Some(h) = h.household else { continue };
                    let mut members = ids(&h.members);
                    members.sort();
                    members.dedup();
                    let (name, identity) = head(&h.members);
                    let village = h.village.map(|v| v.code).unwrap_or_default();
                    let exit_year = (h.exit_year != 0).then_some(h.exit_year);
                    let row = (
                        village,
                        h.status,
                        exit_year,
                        h.return_cause,
                        h.dibao_registered_poor,
                        name,
                        identity,
                        h.version,
                        members,
                    );
                    snapshot.push((h.household_id, row));
                }
                _ => {
                    return Err(invalid(vec![dibao_proto::types::InvalidField::new(
                        "division",
                        "第一条消息应为快照所覆盖的行政区划，其后为各户",
                    )]));
                }
            }
        }
        let division =
            division.ok_or_else(|| invalid(vec![dibao_proto::types::InvalidField::new("division", "必填项缺失")]))?;
        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let current: std::collections::HashMap<String, PoorRow> = tx
            .query(
                "SELECT poor_household_id, village, status, exit_year, return_cause, dibao_registered_poor, head_name,
                        head_identity, version,
                        array(SELECT identity_number FROM poverty_member m
                              WHERE m.poor_household_id = p.poor_household_id ORDER BY 1)
                 FROM poverty_household p WHERE village LIKE $1 || '%' FOR UPDATE",
                &[&division.prefix()],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7), r.get(8), r.get(9)))
            })
            .collect();
        let mut report = RebuildReport { households_in_snapshot: snapshot.len() as i64, ..Default::default() };
        let note = |report: &mut RebuildReport, line: String| {
            if report.corrections.len() < 1000 {
                report.corrections.push(line);
            }
        };
        for (id, row) in &snapshot {
            let what = match current.get(id) {
                Some(old) if old == row => {
                    report.unchanged += 1;
                    continue;
                }
                Some(old) => {
                    report.updated += 1;
                    let mut what = Vec::new();
                    if old.1 != row.1 || old.2 != row.2 || old.3 != row.3 {
                        what.push("脱贫/返贫状态");
                    }
                    if old.4 != row.4 {
                        what.push("低保贫困户标识");
                    }
                    if old.8 != row.8 || old.5 != row.5 || old.6 != row.6 {
                        what.push("家庭成员");
                    }
                    if old.0 != row.0 {
                        what.push("所在村");
                    }
                    if what.is_empty() {
                        what.push("版本号");
                    }
                    format!("建档立卡户{id}：{}与扶贫名单不一致，已按扶贫名单更正", what.join("、"))
                }
                None => {
                    report.added += 1;
                    format!("建档立卡户{id}：视图中缺失，已按扶贫名单补入")
                }
            };
            note(&mut report, what);
            let (village, status, exit_year, cause, flag, name, identity, version, members) = row;
            tx.execute(
                "INSERT INTO poverty_household (poor_household_id, village, status, exit_year, return_cause,
                                                dibao_registered_poor, head_name, head_identity, version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (poor_household_id) DO UPDATE
                 SET village = $2, status = $3, exit_year = $4, return_cause = $5, dibao_registered_poor = $6,
                     head_name = $7, head_identity = $8, version = $9",
                &[id, village, status, exit_year, cause, flag, name, identity, version],
            )
            .await
            .map_err(db)?;
            replace_members(&tx, id, members).await.map_err(|e| db(anyhow::anyhow!("{e}")))?;
        }
        let kept: std::collections::HashSet<&String> = snapshot.iter().map(|(id, _)| id).collect();
        for id in current.keys().filter(|id| !kept.contains(id)) {
            tx.execute("DELETE FROM poverty_member WHERE poor_household_id = $1", &[id]).await.map_err(db)?;
            tx.execute("DELETE FROM poverty_household WHERE poor_household_id = $1", &[id]).await.map_err(db)?;
            report.removed += 1;
            note(&mut report, format!("建档立卡户{id}：扶贫名单中已无此户，已从视图删除"));
        }
        tx.commit().await.map_err(db)?;
        tracing::info!(
            division = %division,
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            "registered-poor view rebuilt"
        );
        Ok(tonic::Response::new(RebuildPovertyViewResponse { report: Some(report) }))
    }
}
