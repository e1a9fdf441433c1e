//! Settings and the `Application` of the verification hub: migrations, the
//! access log, the assertion key, the department links, the county-policy
//! client, the outbox relay of completed reports, and the gRPC server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::events::ops::Ops;
use dibao_platform::events::outbox::{self, RelayConfig};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::ServerBuilder;
use dibao_platform::runtime::settings::{
    self, DatabaseSettings, KafkaSettings, PlatformSettings, RunSettings, ServerSettings, TelemetrySettings,
    TlsSettings, Validate,
};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::tls::{AccessPolicy, TlsMaterial};
use dibao_platform::trust::access_log::{self, AccessLog};
use dibao_platform::trust::assertion::AssertionSigner;
use dibao_platform::{events::kafka, store::db};
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::topics;
use dibao_proto::verification::v1::verification_service_server::VerificationServiceServer;
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::campaign::Campaigns;
use crate::fanout::{DepartmentLimits, Departments};
use crate::service::{Hub, Policies};

pub const SERVICE: &str = "verification-hub";

pub const MIGRATIONS: &[db::Migration] = &[
    ("0001_consents_and_reports", include_str!("../migrations/0001_consents_and_reports.sql")),
    ("0002_campaigns", include_str!("../migrations/0002_campaigns.sql")),
    ("0003_consent_relatives", include_str!("../migrations/0003_consent_relatives.sql")),
];

/// The platform's settings (not flattened: the settings loader's string
/// values only convert to numbers field by field) and the hub's own.
#[derive(Debug, Clone, Deserialize)]
pub struct HubSettings {
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
    pub hub: HubSection,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HubSection {
    /// PKCS#8 Ed25519 key the hub signs consent assertions with.
    pub signing_key: PathBuf,
    pub key_id: String,
    pub assertion_ttl_secs: u64,
    /// A report arrives within this, whatever the departments do.
    pub report_deadline_ms: u64,
    /// `host:port` of civil affairs, for the county's property rules.
    pub civil_affairs: Option<String>,
    pub civil_affairs_server_name: String,
    /// Households a bulk campaign verifies at once.
    pub campaign_concurrency: usize,
    /// One entry per department: `public_security`, `human_resources`,
    /// `housing`, `commerce`, `bank`, `tax`.
    #[serde(default)]
    pub departments: HashMap<String, DepartmentLimits>,
}

impl HubSettings {
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
}

impl Validate for HubSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.platform().validate();
        if !self.hub.signing_key.is_file() {
            problems.push(format!("hub.signing_key: no file at {}", self.hub.signing_key.display()));
        }
        if self.hub.key_id.trim().is_empty() {
            problems.push("hub.key_id must not be empty".to_owned());
        }
        if self.hub.report_deadline_ms == 0 {
            problems.push("hub.report_deadline_ms must be above 0".to_owned());
        }
        problems
    }
}

pub const DEFAULTS: &str = r#"
[hub]
key_id = "hub-1"
assertion_ttl_secs = 300
report_deadline_ms = 5000
civil_affairs_server_name = "civil-affairs"
campaign_concurrency = 16
"#;

pub fn load_settings() -> Result<HubSettings, settings::SettingsError> {
    settings::load(SERVICE, &format!("{}{DEFAULTS}", settings::PLATFORM_DEFAULTS))
}

pub struct Application {
    pub addr: SocketAddr,
    pub server: JoinHandle<Result<(), tonic::transport::Error>>,
    pub relay: Option<JoinHandle<()>>,
    pub departments: Arc<Departments>,
    pub access_log: AccessLog,
}

impl Application {
    pub async fn build(settings: HubSettings, clock: Arc<dyn Clock>, shutdown: Shutdown) -> anyhow::Result<Self> {
        let pool = db::connect_and_migrate(&settings.database, MIGRATIONS).await?;
        access_log::migrate(&pool).await?;
        kafka::check_reachable(&settings.kafka, Duration::from_secs(10)).await?;
        let topic = kafka::topic(&settings.kafka, topics::VERIFICATION_REPORT.0);
        kafka::ensure_topics(&settings.kafka, &[(topic.clone(), topics::VERIFICATION_REPORT.1)]).await?;
        // The hub consumes nothing: the relay alone.
        let relay = settings.run.relay.then(|| {
            tokio::spawn(outbox::run_relay(
                pool.clone(),
                settings.kafka.clone(),
                RelayConfig::default(),
                shutdown.clone(),
            ))
        });

        let tls = TlsMaterial::load(&settings.tls)?;
        let signer = AssertionSigner::load(&settings.hub.key_id, &settings.hub.signing_key)?;
        let departments = Arc::new(Departments::new(
            &tls,
            &settings.hub.departments,
            signer,
            Duration::from_secs(settings.hub.assertion_ttl_secs),
        )?);
        let civil = match &settings.hub.civil_affairs {
            Some(addr) => {
                let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
                    .tls_config(tls.client_config(&settings.hub.civil_affairs_server_name))?
                    .connect_timeout(Duration::from_secs(2))
                    .connect_lazy();
                Some(CivilAffairsServiceClient::new(channel))
            }
            None => None,
        };
        let access_log = AccessLog::start(pool.clone());
        let hub = Hub {
            pool: pool.clone(),
            clock,
            departments: departments.clone(),
            policies: Arc::new(Policies::new(civil.clone())),
            campaigns: Campaigns::new(civil, settings.hub.campaign_concurrency),
            log: access_log.clone(),
            topic,
            report_deadline: Duration::from_millis(settings.hub.report_deadline_ms),
        };
        let mut access = settings.access.clone();
        access
            .entry("/dibao.verification.v1.VerificationService/GetReport".to_owned())
            .or_insert_with(|| vec!["gateway".to_owned(), "civil-affairs".to_owned()]);
        access
            .entry("/dibao.verification.v1.VerificationService/*".to_owned())
            .or_insert_with(|| vec!["gateway".to_owned()]);
        // Campaigns a hub left unfinished go on, here or in another replica.
        tokio::spawn(crate::campaign::resume_unfinished(hub.clone(), shutdown.clone()));
        let running = ServerBuilder::new(tls, AccessPolicy::from_map(&access), Some(Ops::new(pool)))
            .add_service(VerificationServiceServer::new(hub))
            .start(settings.server.listen, shutdown)
            .await?;
        Ok(Self { addr: running.addr, server: running.handle, relay, departments, access_log })
    }
}
