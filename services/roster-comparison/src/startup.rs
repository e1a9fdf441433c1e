//! Settings and the `Application` of the roster comparison: migrations,
//! topics, the inbox of both rosters' events (its view), the outbox relay of
//! finished runs, the monthly run, and the gRPC server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::events::ops::Ops;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::ServerBuilder;
use dibao_platform::runtime::settings::{
    self, DatabaseSettings, KafkaSettings, PlatformSettings, RunSettings, ServerSettings, TelemetrySettings,
    TlsSettings, Validate,
};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::tls::{AccessPolicy, TlsMaterial};
use dibao_platform::{events::kafka, runtime::workers, store::db};
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::comparison::v1::comparison_service_server::ComparisonServiceServer;
use dibao_proto::topics;
use serde::Deserialize;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::run::Runs;
use crate::service::Comparison;
use crate::view::RosterEvents;

pub const SERVICE: &str = "roster-comparison";

pub const MIGRATIONS: &[db::Migration] = &[("0001_comparison", include_str!("../migrations/0001_comparison.sql"))];

/// The platform's settings (not flattened: the settings loader's string
/// values only convert to numbers field by field) and the comparison's own.
#[derive(Debug, Clone, Deserialize)]
pub struct ComparisonSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub kafka: KafkaSettings,
    pub tls: TlsSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub access: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub run: RunSettings,
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
    /// snapshots `RebuildView` reads; unset, the rebuild is refused.
    pub civil_affairs: Option<String>,
    pub civil_affairs_server_name: String,
    pub poverty_alleviation: Option<String>,
    pub poverty_alleviation_server_name: String,
}

impl ComparisonSettings {
    pub fn platform(&self) -> PlatformSettings {
        PlatformSettings {
            server: self.server.clone(),
            database: self.database.clone(),
            kafka: self.kafka.clone(),
            tls: self.tls.clone(),
            telemetry: self.telemetry.clone(),
            access: self.access.clone(),
            run: self.run.clone(),
        }
    }

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

impl Validate for ComparisonSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.platform().validate();
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

pub fn load_settings() -> Result<ComparisonSettings, settings::SettingsError> {
    settings::load(SERVICE, &format!("{}{DEFAULTS}", settings::PLATFORM_DEFAULTS))
}

pub struct Application {
    pub addr: SocketAddr,
    pub server: JoinHandle<Result<(), tonic::transport::Error>>,
    pub relay: Option<JoinHandle<()>>,
    pub inbox: Option<JoinHandle<anyhow::Result<()>>>,
    pub schedule: Option<JoinHandle<()>>,
}

impl Application {
    pub async fn build(
        settings: ComparisonSettings,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Self> {
        let roles = settings.full_identity_roles().map_err(anyhow::Error::msg)?;
        let platform = settings.platform();
        let pool = db::connect_and_migrate(&settings.database, MIGRATIONS).await?;
        kafka::check_reachable(&settings.kafka, Duration::from_secs(10)).await?;
        let own = kafka::topic(&settings.kafka, topics::COMPARISON_RUN.0);
        let civil = kafka::topic(&settings.kafka, topics::CIVIL_AFFAIRS_HOUSEHOLD.0);
        let poverty = kafka::topic(&settings.kafka, topics::POVERTY_ALLEVIATION_HOUSEHOLD.0);
        kafka::ensure_topics(
            &settings.kafka,
            &[
                (own.clone(), topics::COMPARISON_RUN.1),
                (civil.clone(), topics::CIVIL_AFFAIRS_HOUSEHOLD.1),
                (poverty.clone(), topics::POVERTY_ALLEVIATION_HOUSEHOLD.1),
            ],
        )
        .await?;
        let inbox_topics = vec![civil, poverty];
        let workers = workers::spawn(&pool, &platform, RosterEvents::default(), inbox_topics.clone(), &shutdown);
        let ops = Ops::new(pool.clone()).with_inbox(settings.kafka.clone(), inbox_topics);
        let runs = Arc::new(Runs { pool: pool.clone(), clock: clock.clone(), topic: own });
        let tls = TlsMaterial::load(&settings.tls)?;
        let channel = |addr: &Option<String>, name: &str| -> anyhow::Result<Option<Channel>> {
            addr.as_ref()
                .map(|addr| {
                    Ok(tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
                        .tls_config(tls.client_config(name))?
                        .connect_timeout(Duration::from_secs(2))
                        .connect_lazy())
                })
                .transpose()
        };
        let section = &settings.comparison;
        let service = Comparison {
            pool: pool.clone(),
            clock: clock.clone(),
            runs,
            full_identity_roles: Arc::new(roles),
            running: Arc::new(Mutex::new(())),
            civil: channel(&section.civil_affairs, &section.civil_affairs_server_name)?,
            poverty: channel(&section.poverty_alleviation, &section.poverty_alleviation_server_name)?,
        };
        let schedule = (settings.comparison.monthly_run_day > 0)
            .then(|| tokio::spawn(monthly(service.clone(), settings.comparison.monthly_run_day, shutdown.clone())));
        let mut access = settings.access.clone();
        access
            .entry("/dibao.comparison.v1.ComparisonService/RunComparison".to_owned())
            .or_insert_with(|| vec!["gateway".to_owned(), "ops".to_owned()]);
        access
            .entry("/dibao.comparison.v1.ComparisonService/RebuildView".to_owned())
            .or_insert_with(|| vec!["ops".to_owned()]);
        access
            .entry("/dibao.comparison.v1.ComparisonService/*".to_owned())
            .or_insert_with(|| vec!["gateway".to_owned()]);
        let running = ServerBuilder::new(tls, AccessPolicy::from_map(&access), Some(ops))
            .add_service(ComparisonServiceServer::new(service))
            .start(settings.server.listen, shutdown)
            .await?;
        Ok(Self { addr: running.addr, server: running.handle, relay: workers.relay, inbox: workers.inbox, schedule })
    }
}

/// The monthly full comparison (R-CMP-1): from `day` of each month on, once
/// a month, whenever the service is up — a service that was down on the day
/// runs it when it comes back.
async fn monthly(service: Comparison, day: u8, mut shutdown: Shutdown) {
    loop {
        let now = service.clock.now();
        if now.day() >= day {
            let month_start = now.date().replace_day(1).unwrap_or(now.date());
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
