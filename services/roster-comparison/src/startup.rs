//! The roster comparison as its binary and its tests start it: settings,
//! migrations, topics, the inbox of both rosters' events (its view), the
//! outbox relay of finished runs, the monthly run, and who may call what.

use std::sync::Arc;
use std::time::Duration;

use dibao_platform::runtime::access::{Rule, Scope};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::server::MeshChannel as Channel;
use dibao_platform::runtime::server::lazy_channel;
use dibao_platform::runtime::service::{Base, Plan, Service, Started};
use dibao_platform::runtime::settings::{Settings, Validate};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::store::db;
use dibao_proto::common::v1::OfficerRole::{self, *};
use dibao_proto::comparison::v1::comparison_service_server::ComparisonServiceServer;
use dibao_proto::topics;
use serde::Deserialize;
use tokio::sync::{Mutex, mpsc};

use crate::decisions::Rosters;
use crate::maintenance::RosterEvents;
use crate::run::Runs;
use crate::service::Comparison;

pub const SERVICE: &str = "roster-comparison";

pub const MIGRATIONS: &[db::Migration] = &[
    ("0001_comparison", include_str!("../migrations/0001_comparison.sql")),
    ("0002_entries_by_list_order", include_str!("../migrations/0002_entries_by_list_order.sql")),
    ("0003_household_numbers", include_str!("../migrations/0003_household_numbers.sql")),
    ("0004_paid_after_death", include_str!("../migrations/0004_paid_after_death.sql")),
];

const fn officers(method: &'static str, roles: &'static [OfficerRole], scope: Scope) -> Rule {
    Rule { method, systems: &[], for_officers: &["gateway"], roles, scope }
}

/// Who works the lists: both departments' officers who decide entries, and
/// the province's auditors, who read.
const LIST_READERS: &[OfficerRole] =
    &[TownshipCaseworker, TownshipReviewer, CountyApprover, CountyOperator, PovertyOfficer, ProvinceAuditor];

/// Who may call what: every method, the roles it admits and where its
/// division is found (the handlers check it against the officer's).
pub const ACCESS: &[Rule] = &[
    // An operator runs it too.
    officers(
        "/dibao.comparison.v1.ComparisonService/RunComparison",
        &[CountyApprover, CountyOperator, SystemOperator],
        Scope::Request,
    ),
    officers("/dibao.comparison.v1.ComparisonService/GetRun", LIST_READERS, Scope::Data),
    officers("/dibao.comparison.v1.ComparisonService/ListEntries", LIST_READERS, Scope::Request),
    officers(
        "/dibao.comparison.v1.ComparisonService/RecordDecision",
        &[TownshipCaseworker, TownshipReviewer, CountyApprover, PovertyOfficer],
        Scope::Data,
    ),
    officers("/dibao.comparison.v1.ComparisonService/ReportOpenItems", LIST_READERS, Scope::Request),
    officers("/dibao.comparison.v1.ComparisonService/ExportLists", LIST_READERS, Scope::Request),
    officers("/dibao.comparison.v1.ComparisonService/ImportDeathRegister", &[CountyOperator], Scope::Data),
    officers("/dibao.comparison.v1.ComparisonService/ImportOfficials", &[CountyOperator], Scope::Request),
    officers("/dibao.comparison.v1.ComparisonService/RebuildView", &[SystemOperator], Scope::Request),
];

/// The comparison's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct ComparisonOwn {
    pub comparison: ComparisonSection,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ComparisonSection {
    /// Day of the month the full comparison runs by itself (R-CMP-1); 0 turns it off.
    pub monthly_run_day: u8,
    /// Officer roles that see identity numbers in full in exports, comma-separated
    /// (`township_caseworker`, `township_reviewer`, `county_approver`,
    /// `verification_officer`, `poverty_officer`, `village_committee`).
    pub full_identity_roles: String,
    /// `host:port` of civil affairs and of the poverty office, whose full
    /// snapshots `RebuildView` reads and with which decisions are checked.
    pub civil_affairs: Option<String>,
    pub civil_affairs_server_name: String,
    pub poverty_alleviation: Option<String>,
    pub poverty_alleviation_server_name: String,
}

impl ComparisonOwn {
    pub fn full_identity_roles(&self) -> Result<Vec<OfficerRole>, String> {
        self.comparison
            .full_identity_roles
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                OfficerRole::from_str_name(&format!("OFFICER_ROLE_{}", s.to_ascii_uppercase()))
                    .ok_or_else(|| format!("comparison.full_identity_roles: unknown role {s:?}"))
            })
            .collect()
    }
}

impl Validate for ComparisonOwn {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.comparison.monthly_run_day > 28 {
            problems.push("comparison.monthly_run_day must be 0 (off) or 1..=28 (every month has it)".to_owned());
        }
        if let Err(e) = self.full_identity_roles() {
            problems.push(e);
        }
        problems
    }
}

pub const DEFAULTS: &str = r#"
[comparison]
monthly_run_day = 1
full_identity_roles = "township_caseworker,township_reviewer,county_approver,poverty_officer"
civil_affairs_server_name = "civil-affairs"
poverty_alleviation_server_name = "poverty-alleviation"
"#;

/// The roster comparison.
pub struct Application;

impl Service for Application {
    const NAME: &'static str = SERVICE;
    type Own = ComparisonOwn;
    const DEFAULTS: &'static str = DEFAULTS;

    async fn build(
        settings: Settings<ComparisonOwn>,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Started> {
        let roles = settings.own.full_identity_roles().map_err(anyhow::Error::msg)?;
        let mut base = Base::prepare(
            &settings.platform,
            Plan {
                name: SERVICE,
                migrations: MIGRATIONS,
                also: &[],
                writes: Some(topics::COMPARISON_RUN),
                reads: &[topics::CIVIL_AFFAIRS_HOUSEHOLD, topics::POVERTY_ALLEVIATION_HOUSEHOLD],
                access: ACCESS,
            },
            clock.clone(),
            &shutdown,
        )
        .await?;
        let log = base.access_log().await?;
        let workers = base.spawn_workers(RosterEvents::default(), &shutdown)?;
        let runs = Arc::new(Runs { pool: base.pool.clone(), clock: clock.clone(), topic: base.own_topic() });
        let channel = |addr: &Option<String>, name: &str| -> anyhow::Result<Option<Channel>> {
            Ok(addr.as_ref().map(|addr| lazy_channel(&base.tls, addr, name)).transpose()?)
        };
        let section = &settings.own.comparison;
        let service = Comparison {
            pool: base.pool.clone(),
            clock: clock.clone(),
            runs,
            full_identity_roles: Arc::new(roles),
            running: Arc::new(Mutex::new(())),
            rosters: Arc::new(Rosters {
                civil: channel(&section.civil_affairs, &section.civil_affairs_server_name)?,
                poverty: channel(&section.poverty_alleviation, &section.poverty_alleviation_server_name)?,
            }),
            log: log.clone(),
            topic: base.own_topic(),
            open_items: Default::default(),
        };
        if section.monthly_run_day > 0 {
            tokio::spawn(monthly(service.clone(), section.monthly_run_day, shutdown.clone()));
        }
        let running = base
            .server()?
            .metrics_source(crate::run::metrics(base.pool.clone()))
            .add_service(ComparisonServiceServer::new(service))
            .start(settings.platform.server.listen, shutdown)
            .await?;
        Ok(Started::new(running, workers).with_access_log(log))
    }
}

/// The monthly full comparison (R-CMP-1): from `day` of each month on, once
/// a month, whenever the service is up — a service that was down on the day
/// runs it when it comes back.
async fn monthly(service: Comparison, day: u8, mut shutdown: Shutdown) {
    loop {
        let now = service.clock.now();
        if now.day() >= day {
            let month_start = china_date(now).replace_day(1).unwrap_or(china_date(now));
            let done = match service.pool.get().await {
                Ok(client) => client
                    .query_opt(
                        "SELECT 1 FROM comparison_run WHERE division = '' AND reproduces IS NULL
                         AND finished_at IS NOT NULL AND as_of >= $1",
                        &[&month_start],
                    )
                    .await
                    .map(|r| r.is_some())
                    .unwrap_or(true),
                Err(_) => true,
            };
            if !done {
                let _one_at_a_time = service.running.lock().await;
                let (tx, _rx) = mpsc::channel(1);
                match service.runs.run(None, None, tx).await {
                    Ok(run_id) => tracing::info!(%run_id, "monthly comparison finished"),
                    Err(e) => tracing::error!(error = %e, "monthly comparison failed; retried within the hour"),
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = shutdown.wait() => return,
        }
    }
}
