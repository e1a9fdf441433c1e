//! The poverty-alleviation service as its binary and its tests start it:
//! its migrations, topics, the inbox of civil affairs' and the comparison's
//! events, and who may call what.

use std::sync::Arc;

use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::service::{AccessDefaults, Base, Plan, Service, Started};
use dibao_platform::runtime::settings::{NoSection, Settings};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::store::db;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_server::PovertyAlleviationServiceServer;
use dibao_proto::sync::v1::dibao_roster_view_service_server::DibaoRosterViewServiceServer;
use dibao_proto::topics;

use crate::households::Roster;
use crate::service::{DibaoRosterView, PovertyAlleviation};
use crate::sync::DibaoEvents;

pub const SERVICE: &str = "poverty-alleviation";

pub const MIGRATIONS: &[db::Migration] = &[
    ("0001_registered_poor", include_str!("../migrations/0001_registered_poor.sql")),
    ("0002_member_by_household", include_str!("../migrations/0002_member_by_household.sql")),
    ("0003_comparison_runs", include_str!("../migrations/0003_comparison_runs.sql")),
];

/// Who may call what unless the settings' `[access]` says otherwise.
pub const ACCESS: AccessDefaults = &[
    // Resync is the operator's: the rebuild, and the export it pipes in.
    ("/dibao.sync.v1.DibaoRosterViewService/*", &["ops"]),
    (
        "/dibao.poverty_alleviation.v1.PovertyAlleviationService/ExportRoster",
        &["gateway", "poverty-information-system", "ops", "roster-comparison"],
    ),
    // The comparison checks that a list (b) decision names the registration it made (R-CMP-3).
    (
        "/dibao.poverty_alleviation.v1.PovertyAlleviationService/GetHousehold",
        &["gateway", "poverty-information-system", "roster-comparison"],
    ),
    ("/dibao.poverty_alleviation.v1.PovertyAlleviationService/*", &["gateway", "poverty-information-system"]),
];

/// The poverty-alleviation service.
pub struct Application;

impl Service for Application {
    const NAME: &'static str = SERVICE;
    type Own = NoSection;

    async fn build(
        settings: Settings<NoSection>,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Started> {
        let base = Base::prepare(
            &settings.platform,
            Plan {
                migrations: MIGRATIONS,
                writes: Some(topics::POVERTY_ALLEVIATION_HOUSEHOLD),
                reads: &[topics::CIVIL_AFFAIRS_HOUSEHOLD, topics::COMPARISON_RUN],
                access: ACCESS,
            },
        )
        .await?;
        let roster = Arc::new(Roster { pool: base.pool.clone(), clock, topic: base.own_topic() });
        let workers = base.spawn_workers(DibaoEvents { topic: base.own_topic() }, &shutdown)?;
        let running = base
            .server()?
            .add_service(PovertyAlleviationServiceServer::new(PovertyAlleviation(roster.clone())))
            .add_service(DibaoRosterViewServiceServer::new(DibaoRosterView(roster)))
            .start(settings.platform.server.listen, shutdown)
            .await?;
        Ok(Started::new(running.addr, running.handle, workers))
    }
}
