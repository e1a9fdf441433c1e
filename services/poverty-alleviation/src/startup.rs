//! Settings and the `Application`: migrations, topics, outbox relay, the
//! inbox of civil affairs' events, and the gRPC server with health,
//! reflection and ops.

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
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_server::PovertyAlleviationServiceServer;
use dibao_proto::sync::v1::dibao_roster_view_service_server::DibaoRosterViewServiceServer;
use dibao_proto::topics;
use tokio::task::JoinHandle;

use crate::service::PovertyAlleviation;
use crate::sync::{DibaoEvents, DibaoView};

pub const SERVICE: &str = "poverty-alleviation";

pub const MIGRATIONS: &[db::Migration] = &[
    ("0001_registered_poor", include_str!("../migrations/0001_registered_poor.sql")),
    ("0002_member_by_household", include_str!("../migrations/0002_member_by_household.sql")),
    ("0003_comparison_runs", include_str!("../migrations/0003_comparison_runs.sql")),
];

/// Who may call this service unless the settings say otherwise.
const DEFAULT_CALLERS: &[&str] = &["gateway", "poverty-information-system"];

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
        let own = kafka::topic(&settings.kafka, topics::POVERTY_ALLEVIATION_HOUSEHOLD.0);
        let civil = kafka::topic(&settings.kafka, topics::CIVIL_AFFAIRS_HOUSEHOLD.0);
        let runs = kafka::topic(&settings.kafka, topics::COMPARISON_RUN.0);
        // Every topic up front: the inbox reads the others' even before they have written.
        kafka::ensure_topics(
            &settings.kafka,
            &[
                (own.clone(), topics::POVERTY_ALLEVIATION_HOUSEHOLD.1),
                (civil.clone(), topics::CIVIL_AFFAIRS_HOUSEHOLD.1),
                (runs.clone(), topics::COMPARISON_RUN.1),
            ],
        )
        .await?;
        let inbox_topics = vec![civil, runs];
        let workers =
            workers::spawn(&pool, &settings, DibaoEvents { topic: own.clone() }, inbox_topics.clone(), &shutdown);
        let ops = Ops::new(pool.clone()).with_inbox(settings.kafka.clone(), inbox_topics);
        let mut access = settings.access.clone();
        // Resync is the operator's: the rebuild, and the export it pipes in.
        access.entry("/dibao.sync.v1.DibaoRosterViewService/*".to_owned()).or_insert_with(|| vec!["ops".to_owned()]);
        access.entry("/dibao.poverty_alleviation.v1.PovertyAlleviationService/ExportRoster".to_owned()).or_insert_with(
            || DEFAULT_CALLERS.iter().chain(&["ops", "roster-comparison"]).map(|s| (*s).to_owned()).collect(),
        );
        // The comparison checks that a list (b) decision names the registration it made (R-CMP-3).
        access
            .entry("/dibao.poverty_alleviation.v1.PovertyAlleviationService/GetHousehold".to_owned())
            .or_insert_with(|| DEFAULT_CALLERS.iter().chain(&["roster-comparison"]).map(|s| (*s).to_owned()).collect());
        access
            .entry("/dibao.poverty_alleviation.v1.PovertyAlleviationService/*".to_owned())
            .or_insert_with(|| DEFAULT_CALLERS.iter().map(|s| (*s).to_owned()).collect());
        let service = PovertyAlleviation { pool: pool.clone(), clock, topic: own.clone() };
        let running = ServerBuilder::new(TlsMaterial::load(&settings.tls)?, AccessPolicy::from_map(&access), Some(ops))
            .add_service(PovertyAlleviationServiceServer::new(service))
            .add_service(DibaoRosterViewServiceServer::new(DibaoView { pool: pool.clone(), topic: own.clone() }))
            .start(settings.server.listen, shutdown)
            .await?;
        Ok(Self { addr: running.addr, server: running.handle, relay: workers.relay, inbox: workers.inbox })
    }
}
