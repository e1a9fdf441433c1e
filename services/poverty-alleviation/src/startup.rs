//! The poverty-alleviation service as its binary and its tests start it:
//! its migrations, topics, the inbox of civil affairs' and the comparison's
//! events, and who may call what.

use std::sync::Arc;

use dibao_platform::runtime::access::{Rule, Scope};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::service::{Base, Plan, Service, Started};
use dibao_platform::runtime::settings::{NoSection, Settings};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::store::db;
use dibao_proto::common::v1::OfficerRole::{self, *};
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
    ("0004_household_numbers", include_str!("../migrations/0004_household_numbers.sql")),
    ("0005_office_flag", include_str!("../migrations/0005_office_flag.sql")),
    ("0006_member_change", include_str!("../migrations/0006_member_change.sql")),
];

/// The systems that come for an officer: the gateway, and the poverty
/// office's own information system (its officers proven by its assertions).
const OFFICERS: &[&str] = &["gateway"];

const fn officers(method: &'static str, roles: &'static [OfficerRole], scope: Scope) -> Rule {
    Rule { method, systems: &[], for_officers: OFFICERS, roles, scope }
}

/// Who may call what: every method, the roles it admits and where its
/// division is found (the handlers check it against the officer's).
pub const ACCESS: &[Rule] = &[
    officers(
        "/dibao.poverty_alleviation.v1.PovertyAlleviationService/RegisterHousehold",
        &[PovertyOfficer],
        Scope::Request,
    ),
    officers("/dibao.poverty_alleviation.v1.PovertyAlleviationService/ChangeStatus", &[PovertyOfficer], Scope::Data),
    officers("/dibao.poverty_alleviation.v1.PovertyAlleviationService/RecordDeath", &[PovertyOfficer], Scope::Data),
    officers("/dibao.poverty_alleviation.v1.PovertyAlleviationService/SetDibaoFlag", &[PovertyOfficer], Scope::Data),
    officers("/dibao.poverty_alleviation.v1.PovertyAlleviationService/ChangeMembers", &[PovertyOfficer], Scope::Data),
    officers("/dibao.poverty_alleviation.v1.PovertyAlleviationService/ImportRoster", &[PovertyOfficer], Scope::Request),
    // The comparison checks that a list (b) decision names the registration it made (R-CMP-3).
    Rule {
        systems: &["roster-comparison"],
        ..officers(
            "/dibao.poverty_alleviation.v1.PovertyAlleviationService/GetHousehold",
            &[PovertyOfficer, ProvinceAuditor],
            Scope::Data,
        )
    },
    officers(
        "/dibao.poverty_alleviation.v1.PovertyAlleviationService/ListCandidates",
        &[PovertyOfficer, ProvinceAuditor],
        Scope::Request,
    ),
    // The comparison's rebuild reads it whole; an operator's resync too.
    Rule {
        systems: &["roster-comparison"],
        ..officers(
            "/dibao.poverty_alleviation.v1.PovertyAlleviationService/ExportRoster",
            &[PovertyOfficer, ProvinceAuditor, SystemOperator],
            Scope::Request,
        )
    },
    // Resync is the operator's.
    officers("/dibao.sync.v1.DibaoRosterViewService/*", &[SystemOperator], Scope::Request),
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
        let mut base = Base::prepare(
            &settings.platform,
            Plan {
                name: SERVICE,
                migrations: MIGRATIONS,
                also: &[],
                writes: Some(topics::POVERTY_ALLEVIATION_HOUSEHOLD),
                reads: &[topics::CIVIL_AFFAIRS_HOUSEHOLD, topics::COMPARISON_RUN],
                access: ACCESS,
            },
            clock.clone(),
            &shutdown,
        )
        .await?;
        let log = base.access_log().await?;
        let roster = Arc::new(Roster { pool: base.pool.clone(), clock, topic: base.own_topic(), log: log.clone() });
        let workers = base.spawn_workers(DibaoEvents { topic: base.own_topic() }, &shutdown)?;
        let running = base
            .server()?
            .add_service(PovertyAlleviationServiceServer::new(PovertyAlleviation(roster.clone())))
            .add_service(DibaoRosterViewServiceServer::new(DibaoRosterView(roster)))
            .start(settings.platform.server.listen, shutdown)
            .await?;
        Ok(Started::new(running, workers).with_access_log(log))
    }
}
