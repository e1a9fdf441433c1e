//! The civil-affairs service as its binary and its tests start it: its
//! migrations, topics, the inbox of the poverty office's and the hub's
//! events, and who may call what.

use std::sync::Arc;

use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::service::{AccessDefaults, Base, Plan, Service, Started};
use dibao_platform::runtime::settings::{NoSection, Settings};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::store::db;
use dibao_proto::civil_affairs::v1::civil_affairs_service_server::CivilAffairsServiceServer;
use dibao_proto::sync::v1::poverty_roster_view_service_server::PovertyRosterViewServiceServer;
use dibao_proto::topics;

use crate::households::Roster;
use crate::service::{CivilAffairs, PovertyRosterView};
use crate::sync::PovertyEvents;

pub const SERVICE: &str = "civil-affairs";
/// Household events: enrolled, composition, category, amount, exit, death.
pub const HOUSEHOLD_TOPIC: &str = topics::CIVIL_AFFAIRS_HOUSEHOLD.0;

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

/// Who may call what unless the settings' `[access]` says otherwise.
pub const ACCESS: AccessDefaults = &[
    // Resync is the operator's: the rebuild, and the export it pipes in.
    ("/dibao.sync.v1.PovertyRosterViewService/*", &["ops"]),
    // The operator's resync, the hub's bulk campaigns (R-VER-5) and the comparison's rebuild.
    (
        "/dibao.civil_affairs.v1.CivilAffairsService/ExportRoster",
        &["gateway", "social-assistance", "ops", "verification-hub", "roster-comparison"],
    ),
    // The comparison checks that a decision's application is the entry's enrolment (R-CMP-3).
    (
        "/dibao.civil_affairs.v1.CivilAffairsService/GetApplication",
        &["gateway", "social-assistance", "roster-comparison"],
    ),
    // The hub holds reports against the county's property rules.
    ("/dibao.civil_affairs.v1.CivilAffairsService/GetPolicy", &["gateway", "social-assistance", "verification-hub"]),
    ("/dibao.civil_affairs.v1.CivilAffairsService/*", &["gateway", "social-assistance"]),
];

/// The civil-affairs service.
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
                writes: Some(topics::CIVIL_AFFAIRS_HOUSEHOLD),
                reads: &[topics::POVERTY_ALLEVIATION_HOUSEHOLD, topics::VERIFICATION_REPORT],
                access: ACCESS,
            },
        )
        .await?;
        let roster = Arc::new(Roster { pool: base.pool.clone(), clock: clock.clone(), topic: base.own_topic() });
        let workers = base.spawn_workers(PovertyEvents { topic: base.own_topic(), clock }, &shutdown)?;
        let running = base
            .server()?
            .add_service(CivilAffairsServiceServer::new(CivilAffairs(roster.clone())))
            .add_service(PovertyRosterViewServiceServer::new(PovertyRosterView(roster)))
            .start(settings.platform.server.listen, shutdown)
            .await?;
        Ok(Started::new(running.addr, running.handle, workers))
    }
}
