//! Bulk campaigns (集中核查, R-VER-5): every household of a county or
//! township on civil affairs' roster is verified, each under its own valid
//! consent (a household without one is not checked, and says so), within
//! every department's rate limit (the department links pace all queries,
//! single or bulk).
//!
//! The household list is taken from civil affairs' roster export and stored
//! in one transaction when the campaign starts; each household is marked
//! done in the transaction that stores its report. The campaign runs in the
//! hub, not in the caller's stream: a caller that goes away misses progress,
//! not work. One hub runs a campaign at a time — the one holding its
//! database lock, which is released if that hub dies; every hub looks for
//! unfinished campaigns at start and every half minute, so a campaign cut
//! short resumes by itself from what is still pending and never asks a
//! department again about a household already done.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dibao_platform::Error;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::runtime::server::MeshChannel;
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::{ExportRosterRequest, HouseholdStatus};
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::department::v1::Department;
use dibao_proto::types::{DivisionCode, DivisionLevel, IdentityNumber, Signature};
use dibao_proto::verification::v1::{DepartmentProgress, StartCampaignResponse};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::consent;
use crate::reports::departments_of;
use crate::verify::{Checked, Hub};

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("没有编号为“{0}”的批量核查")]
    NotFound(String),
    #[error("本平台未配置民政业务系统的地址，无法取得花名册")]
    NoCivilAffairs,
    #[error("无法从民政业务系统取得花名册：{0}")]
    RosterUnavailable(String),
    #[error("民政花名册导出中断：{0}")]
    RosterBroke(String),
    #[error("批量核查中断，可凭编号续查")]
    Interrupted,
}

impl Refusal for CampaignError {
    fn kind(&self) -> RefusalKind {
        match self {
            CampaignError::NotFound(_) => RefusalKind::NotFound,
            CampaignError::Interrupted => RefusalKind::Conflict,
            _ => RefusalKind::Unavailable,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            CampaignError::NotFound(_) => "CAMPAIGN_NOT_FOUND",
            CampaignError::NoCivilAffairs => "CIVIL_AFFAIRS_NOT_CONFIGURED",
            CampaignError::RosterUnavailable(_) => "ROSTER_UNAVAILABLE",
            CampaignError::RosterBroke(_) => "ROSTER_EXPORT_BROKE",
            CampaignError::Interrupted => "CAMPAIGN_INTERRUPTED",
        }
    }
}

/// Where a campaign stands.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub campaign_id: String,
    pub done: i64,
    pub failed: i64,
    pub remaining: i64,
    /// Per department: households answered, households with an item unavailable.
    pub departments: BTreeMap<i32, (i64, i64)>,
    pub with_findings: Vec<String>,
    pub finished: bool,
}

impl Progress {
    pub fn message(&self) -> StartCampaignResponse {
        StartCampaignResponse {
            campaign_id: self.campaign_id.clone(),
            households_done: self.done,
            households_failed: self.failed,
            households_remaining: self.remaining,
            departments: self
                .departments
                .iter()
                .map(|(d, (done, failed))| DepartmentProgress {
                    department: *d,
                    done: *done,
                    failed: *failed,
                    remaining: self.remaining,
                })
                .collect(),
            households_with_findings: if self.finished { self.with_findings.clone() } else { vec![] },
        }
    }
}

#[derive(Clone)]
pub struct Campaigns {
    pub civil: Option<CivilAffairsServiceClient<MeshChannel>>,
    /// Households verified at once within one campaign.
    pub concurrency: usize,
    running: Arc<Mutex<HashMap<uuid::Uuid, watch::Receiver<Progress>>>>,
}

struct Pending {
    household_id: String,
    county: String,
    persons: Vec<String>,
    consent_id: uuid::Uuid,
}

impl Campaigns {
    pub fn new(civil: Option<CivilAffairsServiceClient<MeshChannel>>, concurrency: usize) -> Self {
        Self { civil, concurrency: concurrency.max(1), running: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Fixes the household list of a new campaign over `division`.
    pub async fn create(
        &self,
        hub: &Hub,
        division: &DivisionCode,
        purpose: &str,
        officer: &Signature,
    ) -> Result<uuid::Uuid, Error> {
        let Some(mut civil) = self.civil.clone() else {
            return Err(CampaignError::NoCivilAffairs.into());
        };
        let mut stream = civil
            .export_roster(ExportRosterRequest { division: Some(division.into()) })
            .await
            .map_err(|s| CampaignError::RosterUnavailable(s.message().to_owned()))?
            .into_inner();
        let now = hub.clock.now();
        let today = china_date(now);
        let id = uuid::Uuid::now_v7();
        let mut client = hub.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO campaign (campaign_id, division, purpose, officer_id, officer_name, officer_role, officer_division, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &id,
                &division.as_str(),
                &purpose,
                &officer.officer_id,
                &officer.officer_name,
                &(officer.role as i32),
                &officer.division.as_str(),
                &now,
            ],
        )
        .await
        ?;
        let find_consent = tx
            .prepare(
                "SELECT c.consent_id FROM consent c
                 WHERE c.household_id = $3 AND c.revoked_at IS NULL AND c.signed_on <= $2 AND c.valid_until >= $2
                   AND c.consent_id IN (SELECT consent_id FROM consent_person WHERE identity_number = ($1::text[])[1])
                   AND NOT EXISTS (SELECT 1 FROM unnest($1::text[]) p(id)
                                   WHERE NOT EXISTS (SELECT 1 FROM consent_person cp
                                                     WHERE cp.consent_id = c.consent_id AND cp.identity_number = p.id))
                 ORDER BY c.registered_at DESC LIMIT 1",
            )
            .await?;
        let mut households = 0;
        while let Some(item) = stream.next().await {
            let item = item.map_err(|s| CampaignError::RosterBroke(s.message().to_owned()))?;
            let Some(h) = item.household else { continue };
            let status = HouseholdStatus::try_from(h.status).unwrap_or(HouseholdStatus::Unspecified);
            if !matches!(status, HouseholdStatus::Enrolled | HouseholdStatus::GradualExit | HouseholdStatus::Applying) {
                continue;
            }
            let deceased: Vec<&str> = h.deceased.iter().map(|d| d.value.as_str()).collect();
            let persons: Vec<String> = h
                .members
                .iter()
                .filter_map(|m| m.person.as_ref()?.identity_number.as_ref().map(|i| i.value.clone()))
                .filter(|p| !deceased.contains(&p.as_str()))
                .collect();
            let county = h.village.as_ref().map(|v| v.code.get(..6).unwrap_or_default().to_owned()).unwrap_or_default();
            let consent: Option<uuid::Uuid> =
                tx.query_opt(&find_consent, &[&persons, &today, &h.household_id]).await?.map(|r| r.get(0));
            let (status, reason) = match consent {
                Some(_) => ("pending", ""),
                None => ("failed", "没有覆盖全部家庭成员的有效授权书，未核对（R-VER-1）"),
            };
            tx.execute(
                "INSERT INTO campaign_household (campaign_id, household_id, county, persons, consent_id, status, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&id, &h.household_id, &county, &persons, &consent, &status, &reason],
            )
            .await
            ?;
            households += 1;
        }
        tx.commit().await?;
        tracing::info!(campaign_id = %id, division = %division, households, "campaign created");
        Ok(id)
    }

    /// Campaign `id`, if it covers a division inside the officer's
    /// jurisdiction; not found otherwise (its existence is not told).
    pub async fn must_see(&self, hub: &Hub, officer: &Officer, id: uuid::Uuid) -> Result<(), Error> {
        let client = hub.pool.get().await?;
        let division: Option<String> =
            client.query_opt("SELECT division FROM campaign WHERE campaign_id = $1", &[&id]).await?.map(|r| r.get(0));
        match division.and_then(|d| DivisionCode::parse(&d).ok()) {
            Some(d) if officer.covers(&d) => Ok(()),
            _ => Err(CampaignError::NotFound(id.to_string()).into()),
        }
    }

    /// Progress of campaign `id`, running it (again) unless it runs already
    /// or is finished. Where another hub runs it, its progress is read from
    /// the database, and this hub takes over if that one stops.
    pub async fn run(&self, hub: &Hub, id: uuid::Uuid) -> Result<watch::Receiver<Progress>, Error> {
        if let Some(rx) = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id) {
            return Ok(rx.clone());
        }
        let client = hub.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT purpose, officer_id, officer_name, officer_role, officer_division, finished_at IS NOT NULL
                 FROM campaign WHERE campaign_id = $1",
                &[&id],
            )
            .await?
            .ok_or_else(|| CampaignError::NotFound(id.to_string()))?;
        drop(client);
        let purpose: String = row.get(0);
        let officer_division: String = row.get(4);
        let officer = Signature {
            officer_id: row.get(1),
            officer_name: row.get(2),
            role: OfficerRole::try_from(row.get::<_, i32>(3)).unwrap_or(OfficerRole::VerificationOfficer),
            division: DivisionCode::parse(&officer_division)
                .map_err(|e| Error::stored(format!("campaign {id}: {e}")))?,
            signed_at: hub.clock.now(),
        };
        let finished: bool = row.get(5);
        let progress = self.progress(hub, id).await?;
        let (tx, rx) = watch::channel(Progress { finished, ..progress });
        if finished {
            return Ok(rx);
        }
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, rx.clone());
        let (this, hub) = (self.clone(), hub.clone());
        tokio::spawn(async move {
            if let Err(e) = this.run_or_follow(&hub, id, &purpose, &officer, &tx).await {
                tracing::error!(campaign_id = %id, error = %e, "campaign stopped");
            }
            this.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        });
        Ok(rx)
    }

    /// Runs the campaign while holding its lock; while another hub holds
    /// it, follows that hub's progress until the campaign finishes or the
    /// lock comes free.
    async fn run_or_follow(
        &self,
        hub: &Hub,
        id: uuid::Uuid,
        purpose: &str,
        officer: &Signature,
        progress: &watch::Sender<Progress>,
    ) -> Result<(), Error> {
        loop {
            if let Some(lock) = self.lock(hub, id).await? {
                let result = self.work(hub, id, purpose, officer, progress).await;
                // Closing the lock's connection releases the lock.
                drop(lock);
                return result;
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
            let client = hub.pool.get().await?;
            let finished: bool = client
                .query_one("SELECT finished_at IS NOT NULL FROM campaign WHERE campaign_id = $1", &[&id])
                .await?
                .get(0);
            drop(client);
            let now = self.progress(hub, id).await?;
            progress.send_replace(Progress { finished, ..now });
            if finished {
                return Ok(());
            }
        }
    }

    /// The campaign's lock, if no other hub holds it: a session lock whose
    /// connection is taken out of the pool, so that it is never handed to
    /// anyone else and is closed (releasing the lock) when the campaign ends
    /// or this hub dies. A connection that did not get the lock holds
    /// nothing and goes back to the pool.
    async fn lock(&self, hub: &Hub, id: uuid::Uuid) -> Result<Option<deadpool_postgres::ClientWrapper>, Error> {
        let client = hub.pool.get().await?;
        let key = format!("campaign:{id}");
        let locked: bool =
            client.query_one("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", &[&key]).await?.get(0);
        Ok(locked.then(|| deadpool_postgres::Object::take(client)))
    }

    async fn work(
        &self,
        hub: &Hub,
        id: uuid::Uuid,
        purpose: &str,
        officer: &Signature,
        progress: &watch::Sender<Progress>,
    ) -> Result<(), Error> {
        let client = hub.pool.get().await?;
        let pending: Vec<Pending> = client
            .query(
                "SELECT household_id, county, persons, consent_id FROM campaign_household
                 WHERE campaign_id = $1 AND status = 'pending' ORDER BY household_id",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| Pending { household_id: r.get(0), county: r.get(1), persons: r.get(2), consent_id: r.get(3) })
            .collect();
        drop(client);
        tracing::info!(campaign_id = %id, pending = pending.len(), "campaign running");
        let mut results = futures_util::stream::iter(pending)
            .map(|p| async move {
                let outcome = self.verify_one(hub, id, &p, purpose, officer).await;
                (p, outcome)
            })
            .buffer_unordered(self.concurrency);
        // Progress is counted here as households finish (read back from the
        // database only at start and end): reading it per household would
        // scan the whole campaign each time, quadratic over a county.
        let mut now = self.progress(hub, id).await?;
        while let Some((p, outcome)) = results.next().await {
            now.remaining -= 1;
            match outcome {
                // A household checked was marked with its report.
                Ok(report) => {
                    now.done += 1;
                    let (answered, failed) = departments_of(&report);
                    for d in answered.iter().chain(&failed).filter_map(|d| Department::from_str_name(d)) {
                        let tally = now.departments.entry(d as i32).or_default();
                        if failed.contains(&d.as_str_name()) { tally.1 += 1 } else { tally.0 += 1 }
                    }
                }
                Err(reason) => {
                    now.failed += 1;
                    self.record_failure(hub, id, &p, &reason).await?;
                }
            }
            progress.send_replace(now.clone());
        }
        let client = hub.pool.get().await?;
        client.execute("UPDATE campaign SET finished_at = $2 WHERE campaign_id = $1", &[&id, &hub.clock.now()]).await?;
        let mut last = self.progress(hub, id).await?;
        last.finished = true;
        tracing::info!(campaign_id = %id, done = last.done, failed = last.failed, "campaign finished");
        progress.send_replace(last);
        Ok(())
    }

    async fn verify_one(
        &self,
        hub: &Hub,
        id: uuid::Uuid,
        p: &Pending,
        purpose: &str,
        officer: &Signature,
    ) -> Result<dibao_proto::verification::v1::Report, String> {
        let county = DivisionCode::parse(&p.county).map_err(|e| format!("户籍县代码无效：{}", e.reason))?;
        let persons = p
            .persons
            .iter()
            .map(|x| IdentityNumber::parse(x).map_err(|e| format!("成员身份证号码无效：{}", e.reason)))
            .collect::<Result<Vec<_>, _>>()?;
        let checked = Checked {
            household_id: p.household_id.clone(),
            county,
            // The roster's members, as civil affairs exported them for the campaign.
            members: p.persons.iter().cloned().collect(),
            persons,
            items: None,
            purpose: purpose.to_owned(),
            officer: Signature {
                officer_id: officer.officer_id.clone(),
                officer_name: officer.officer_name.clone(),
                role: officer.role,
                division: officer.division.clone(),
                signed_at: hub.clock.now(),
            },
        };
        let client = hub.pool.get().await.map_err(|e| e.to_string())?;
        let consent = consent::load(&client, &p.consent_id.to_string()).await.map_err(|e| e.to_string())?;
        drop(client);
        // The campaign is the caller: its officer and id are on every record.
        hub.verify(&format!("campaign {id}"), &checked, &consent, "", Some(id))
            .await
            // The reason as the caller of a single check would read it.
            .map_err(|e| tonic::Status::from(e).message().to_owned())
    }

    async fn record_failure(&self, hub: &Hub, id: uuid::Uuid, p: &Pending, reason: &str) -> Result<(), Error> {
        let client = hub.pool.get().await?;
        client
            .execute(
                "UPDATE campaign_household SET status = 'failed', reason = $3 WHERE campaign_id = $1 AND household_id = $2",
                &[&id, &p.household_id, &reason],
            )
            .await
            ?;
        Ok(())
    }

    async fn progress(&self, hub: &Hub, id: uuid::Uuid) -> Result<Progress, Error> {
        let client = hub.pool.get().await?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed'),
                        count(*) FILTER (WHERE status = 'pending'),
                        coalesce(array_agg(household_id ORDER BY household_id) FILTER (WHERE findings > 0), '{}')
                 FROM campaign_household WHERE campaign_id = $1",
                &[&id],
            )
            .await?;
        let mut departments = BTreeMap::new();
        for r in client
            .query(
                "SELECT d, sum(ok), sum(bad) FROM (
                     SELECT unnest(departments_answered) AS d, 1 AS ok, 0 AS bad FROM campaign_household WHERE campaign_id = $1
                     UNION ALL
                     SELECT unnest(departments_failed), 0, 1 FROM campaign_household WHERE campaign_id = $1) x
                 GROUP BY d",
                &[&id],
            )
            .await
            ?
        {
            let d: String = r.get(0);
            let (ok, bad): (i64, i64) = (r.get(1), r.get(2));
            if let Some(d) = Department::from_str_name(&d) {
                departments.insert(d as i32, (ok, bad));
            }
        }
        Ok(Progress {
            campaign_id: id.to_string(),
            done: row.get(0),
            failed: row.get(1),
            remaining: row.get(2),
            departments,
            with_findings: row.get(3),
            finished: false,
        })
    }
}

/// A campaign's progress as the caller's stream: every change until it is
/// finished, or its interruption (resumable by the campaign's id).
pub fn stream(
    mut progress: watch::Receiver<Progress>,
) -> tokio_stream::wrappers::ReceiverStream<Result<StartCampaignResponse, tonic::Status>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let now = progress.borrow_and_update().clone();
            if tx.send(Ok(now.message())).await.is_err() || now.finished {
                return;
            }
            // Ends when the campaign's task is gone (finished or stopped).
            if progress.changed().await.is_err() {
                let last = progress.borrow().clone();
                if !last.finished {
                    let _ = tx.send(Err(Error::from(CampaignError::Interrupted).into())).await;
                }
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// How often a hub following another hub's campaign reads its progress.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How often a hub looks for unfinished campaigns to resume.
const RESUME_EVERY: Duration = Duration::from_secs(30);

/// Resumes every unfinished campaign, at start and every
/// [`RESUME_EVERY`]: a campaign whose hub died goes on by itself (in the
/// hub that takes its lock first).
pub async fn resume_unfinished(
    hub: Hub,
    campaigns: Campaigns,
    mut shutdown: dibao_platform::runtime::shutdown::Shutdown,
) {
    loop {
        match hub.pool.get().await {
            Ok(client) => match client.query("SELECT campaign_id FROM campaign WHERE finished_at IS NULL", &[]).await {
                Ok(rows) => {
                    drop(client);
                    for id in rows.iter().map(|r| r.get::<_, uuid::Uuid>(0)) {
                        if let Err(e) = campaigns.run(&hub, id).await {
                            tracing::warn!(campaign_id = %id, error = %e, "campaign not resumed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "unfinished campaigns not read"),
            },
            Err(e) => tracing::warn!(error = %e, "unfinished campaigns not read"),
        }
        tokio::select! {
            () = tokio::time::sleep(RESUME_EVERY) => {}
            () = shutdown.wait() => return,
        }
    }
}

/// Campaigns cover a county or a township.
pub fn check_division(d: &DivisionCode) -> Result<(), String> {
    match d.level() {
        DivisionLevel::County | DivisionLevel::Township => Ok(()),
        _ => Err(format!("批量核查按县或乡镇开展，“{d}”不是县级或乡镇级代码")),
    }
}

/// Campaigns still running and their households by status, read at each scrape.
pub fn metrics(pool: deadpool_postgres::Pool) -> dibao_platform::runtime::metrics::Source {
    use dibao_platform::runtime::metrics::Text;
    std::sync::Arc::new(move |mut text: Text| {
        let pool = pool.clone();
        Box::pin(async move {
            let rows = match pool.get().await {
                Ok(client) => client
                    .query(
                        "SELECT s.status, coalesce(n, 0) AS n
                         FROM unnest(ARRAY['pending', 'done', 'failed']) AS s(status)
                         LEFT JOIN (SELECT h.status, count(*) AS n FROM campaign_household h
                                    JOIN campaign c USING (campaign_id)
                                    WHERE c.finished_at IS NULL GROUP BY h.status) h USING (status)
                         UNION ALL
                         SELECT 'campaigns', count(*) FROM campaign WHERE finished_at IS NULL",
                        &[],
                    )
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match rows {
                Ok(rows) => {
                    text.family("dibao_campaigns_running", "gauge", "Campaigns started and not finished.");
                    text.family(
                        "dibao_campaign_households",
                        "gauge",
                        "Households of the running campaigns, by status (pending, done, failed).",
                    );
                    for row in rows {
                        let (status, n): (String, i64) = (row.get(0), row.get(1));
                        if status == "campaigns" {
                            text.sample("dibao_campaigns_running", &[], n);
                        } else {
                            text.sample("dibao_campaign_households", &[("status", &status)], n);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "campaign progress for the metrics"),
            }
            text
        })
    })
}
