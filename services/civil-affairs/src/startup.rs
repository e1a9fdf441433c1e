//! Settings and the `Application`: migrations, topics, outbox relay, the
//! inbox of the poverty office's events, and the gRPC server with health, reflection and ops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::events::ops::Ops;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::ServerBuilder;
use dibao_platform::runtime::settings::{self, PLATFORM_DEFAULTS, PlatformSettings};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::tls::{AccessPolicy, TlsMaterial};
use dibao_platform::{events::kafka, runtime::workers, store::db};
use dibao_proto::civil_affairs::v1::civil_affairs_service_server::CivilAffairsServiceServer;
use dibao_proto::sync::v1::poverty_roster_view_service_server::PovertyRosterViewServiceServer;
use dibao_proto::topics;
use tokio::task::JoinHandle;

use crate::service::CivilAffairs;
use crate::sync::{PovertyEvents, PovertyView};

pub const SERVICE: &str = "civil-affairs";
/// Household events: enrolled, composition, category, amount, exit, death.
pub const HOUSEHOLD_TOPIC: &str = dibao_proto::topics::CIVIL_AFFAIRS_HOUSEHOLD.0;

pub const MIGRATIONS: &[db::Migration] = &[
    ("0001_roster_and_process", include_str!("../migrations/0001_roster_and_process.sql")),
    ("0002_household_by_village", include_str!("../migrations/0002_household_by_village.sql")),
    ("0003_roster_import", include_str!("../migrations/0003_roster_import.sql")),
    ("0004_audit_sample", include_str!("../migrations/0004_audit_sample.sql")),
    ("0005_exits_and_deaths", include_str!("../migrations/0005_exits_and_deaths.sql")),
    ("0006_reviews_and_gradual_exit", include_str!("../migrations/0006_reviews_and_gradual_exit.sql")),
    ("0007_poverty_roster_view", include_str!("../migrations/0007_poverty_roster_view.sql")),
    ("0008_member_by_household", include_str!("../migrations/0008_member_by_household.sql")),
    ("0009_verification_reports", include_str!("../migrations/0009_verification_reports.sql")),
];

/// Who may call this service unless the settings say otherwise.
const DEFAULT_CALLERS: &[&str] = &["gateway", "social-assistance"];

pub fn load_settings() -> Result<PlatformSettings, settings::SettingsError> {
    settings::load(SERVICE, PLATFORM_DEFAULTS)
}

pub struct Application {
    pub addr: SocketAddr,
    pub server: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The outbox relay, unless the settings give it to another process.
    pub relay: Option<JoinHandle<()>>,
    /// The inbox consumer, unless the settings give it to another process.
    pub inbox: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Application {
    pub async fn build(settings: PlatformSettings, clock: Arc<dyn Clock>, shutdown: Shutdown) -> anyhow::Result<Self> {
        let pool = db::connect_and_migrate(&settings.database, MIGRATIONS).await?;
        kafka::check_reachable(&settings.kafka, Duration::from_secs(10)).await?;
        let topic = kafka::topic(&settings.kafka, HOUSEHOLD_TOPIC);
        let poverty = kafka::topic(&settings.kafka, topics::POVERTY_ALLEVIATION_HOUSEHOLD.0);
        let reports = kafka::topic(&settings.kafka, topics::VERIFICATION_REPORT.0);
        // Every topic up front: the inbox reads the others' even before they have written.
        kafka::ensure_topics(
            &settings.kafka,
            &[
                (topic.clone(), topics::CIVIL_AFFAIRS_HOUSEHOLD.1),
                (poverty.clone(), topics::POVERTY_ALLEVIATION_HOUSEHOLD.1),
                (reports.clone(), topics::VERIFICATION_REPORT.1),
            ],
        )
        .await?;
        let workers = workers::spawn(
            &pool,
            &settings,
            PovertyEvents { topic: topic.clone(), clock: clock.clone() },
            vec![poverty.clone(), reports.clone()],
            &shutdown,
        );
        let ops = Ops::new(pool.clone()).with_inbox(settings.kafka.clone(), vec![poverty, reports]);
        let mut access = settings.access.clone();
        // Resync is the operator's: the rebuild, and the export it pipes in.
        access.entry("/dibao.sync.v1.PovertyRosterViewService/*".to_owned()).or_insert_with(|| vec!["ops".to_owned()]);
        access.entry("/dibao.civil_affairs.v1.CivilAffairsService/ExportRoster".to_owned()).or_insert_with(|| {
            // The operator's resync, and the hub's bulk campaigns (R-VER-5).
            DEFAULT_CALLERS
                .iter()
                .chain(&["ops", "verification-hub", "roster-comparison"])
                .map(|s| (*s).to_owned())
                .collect()
        });
        // The comparison checks that a decision's application is the entry's enrolment (R-CMP-3).
        access
            .entry("/dibao.civil_affairs.v1.CivilAffairsService/GetApplication".to_owned())
            .or_insert_with(|| DEFAULT_CALLERS.iter().chain(&["roster-comparison"]).map(|s| (*s).to_owned()).collect());
        // The hub holds reports against the county's property rules.
        access
            .entry("/dibao.civil_affairs.v1.CivilAffairsService/GetPolicy".to_owned())
            .or_insert_with(|| DEFAULT_CALLERS.iter().chain(&["verification-hub"]).map(|s| (*s).to_owned()).collect());
        access
            .entry("/dibao.civil_affairs.v1.CivilAffairsService/*".to_owned())
            .or_insert_with(|| DEFAULT_CALLERS.iter().map(|s| (*s).to_owned()).collect());
        let service = CivilAffairs { pool: pool.clone(), clock, topic };
        let running = ServerBuilder::new(TlsMaterial::load(&settings.tls)?, AccessPolicy::from_map(&access), Some(ops))
            .add_service(CivilAffairsServiceServer::new(service))
            .add_service(PovertyRosterViewServiceServer::new(PovertyView { pool: pool.clone() }))
            .start(settings.server.listen, shutdown)
            .await?;
        Ok(Self { addr: running.addr, server: running.handle, relay: workers.relay, inbox: workers.inbox })
    }
}
