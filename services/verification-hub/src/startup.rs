//! The verification hub as its binary and its tests start it: its
//! settings, migrations and access log, the assertion key, the department
//! links, the county-policy client, the outbox relay of completed reports,
//! campaigns resumed, and who may call what.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::runtime::access::{Rule, Scope};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::lazy_channel;
use dibao_platform::runtime::service::{Base, Plan, Service, Started};
use dibao_platform::runtime::settings::{Settings, Validate};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::store::db;
use dibao_platform::trust::assertion::AssertionSigner;
use dibao_platform::trust::relatives;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::OfficerRole::{self, *};
use dibao_proto::topics;
use dibao_proto::verification::v1::verification_service_server::VerificationServiceServer;
use serde::Deserialize;

use crate::campaign::{self, Campaigns};
use crate::fanout::{DepartmentLimits, Departments};
use crate::service::Verification;
use crate::verify::{Hub, Policies};

pub const SERVICE: &str = "verification-hub";

pub const MIGRATIONS: &[db::Migration] = &[
    ("0001_consents_and_reports", include_str!("../migrations/0001_consents_and_reports.sql")),
    ("0002_campaigns", include_str!("../migrations/0002_campaigns.sql")),
    ("0003_consent_relatives", include_str!("../migrations/0003_consent_relatives.sql")),
    ("0004_consent_county", include_str!("../migrations/0004_consent_county.sql")),
    ("0005_replicas", include_str!("../migrations/0005_replicas.sql")),
    ("0006_consent_household", include_str!("../migrations/0006_consent_household.sql")),
    ("0007_consent_document", include_str!("../migrations/0007_consent_document.sql")),
];

const fn officers(method: &'static str, roles: &'static [OfficerRole], scope: Scope) -> Rule {
    Rule { method, systems: &[], for_officers: &["gateway"], roles, scope }
}

/// Who reads reports: those who check, review and approve; auditors.
pub const REPORT_READERS: &[OfficerRole] =
    &[VerificationOfficer, TownshipCaseworker, TownshipReviewer, CountyApprover, ProvinceAuditor];

/// Who may call what: every method, the roles it admits and where its
/// county is found (the handlers check it against the officer's).
pub const ACCESS: &[Rule] = &[
    // The division is the household's the consent names, read from civil affairs (R-VER-1).
    officers(
        "/dibao.verification.v1.VerificationService/RegisterConsent",
        &[VerificationOfficer, TownshipCaseworker],
        Scope::Data,
    ),
    officers(
        "/dibao.verification.v1.VerificationService/RevokeConsent",
        &[VerificationOfficer, CountyApprover],
        Scope::Data,
    ),
    // The division is the household's, read from civil affairs (R-VER-2).
    officers(
        "/dibao.verification.v1.VerificationService/VerifyHousehold",
        &[VerificationOfficer, TownshipCaseworker],
        Scope::Data,
    ),
    // Civil affairs holds a report against the county's rules on its own.
    Rule {
        systems: &["civil-affairs"],
        ..officers("/dibao.verification.v1.VerificationService/GetReport", REPORT_READERS, Scope::Data)
    },
    officers(
        "/dibao.verification.v1.VerificationService/StartCampaign",
        &[VerificationOfficer, CountyApprover],
        Scope::Request,
    ),
];

/// The hub's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct HubOwn {
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
    /// `housing`, `commerce`, `bank`, `tax`, `disability_federation`,
    /// `medical_insurance`.
    #[serde(default)]
    pub departments: HashMap<String, DepartmentLimits>,
}

impl Validate for HubOwn {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
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

/// The verification hub.
pub struct Application;

impl Service for Application {
    const NAME: &'static str = SERVICE;
    type Own = HubOwn;
    const DEFAULTS: &'static str = DEFAULTS;

    async fn build(settings: Settings<HubOwn>, clock: Arc<dyn Clock>, shutdown: Shutdown) -> anyhow::Result<Started> {
        let own = &settings.own.hub;
        let mut base = Base::prepare(
            &settings.platform,
            Plan {
                name: SERVICE,
                migrations: MIGRATIONS,
                also: &[("officials", relatives::MIGRATIONS)],
                writes: Some(topics::VERIFICATION_REPORT),
                // The officials' registry, for the separation of duties.
                reads: &[topics::COMPARISON_RUN],
                access: ACCESS,
            },
            clock.clone(),
            &shutdown,
        )
        .await?;
        let access_log = base.access_log().await?;
        let workers = base.spawn_workers(crate::verify::RegistryEvents, &shutdown)?;
        let signer = AssertionSigner::load(&own.key_id, &own.signing_key)?;
        let departments = Arc::new(Departments::new(
            &base.tls,
            &own.departments,
            signer,
            Duration::from_secs(own.assertion_ttl_secs),
        )?);
        // Each department's rate is shared with the other replicas.
        crate::replicas::join(base.pool.clone(), departments.clone(), shutdown.clone()).await?;
        let civil = match &own.civil_affairs {
            Some(addr) => {
                Some(CivilAffairsServiceClient::new(lazy_channel(&base.tls, addr, &own.civil_affairs_server_name)?))
            }
            None => None,
        };
        let hub = Hub {
            pool: base.pool.clone(),
            clock,
            departments,
            policies: Arc::new(Policies::new(civil.clone())),
            log: access_log.clone(),
            topic: base.own_topic(),
            report_deadline: Duration::from_millis(own.report_deadline_ms),
        };
        let campaigns = Campaigns::new(civil, own.campaign_concurrency);
        // Campaigns a hub left unfinished go on, here or in another replica.
        tokio::spawn(campaign::resume_unfinished(hub.clone(), campaigns.clone(), shutdown.clone()));
        let running = base
            .server()?
            .metrics_source(hub.departments.metrics())
            .metrics_source(campaign::metrics(base.pool.clone()))
            .add_service(VerificationServiceServer::new(Verification { hub, campaigns }))
            .start(settings.platform.server.listen, shutdown)
            .await?;
        Ok(Started::new(running, workers).with_access_log(access_log))
    }
}
