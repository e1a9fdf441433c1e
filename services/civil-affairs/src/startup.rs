//! The civil-affairs service as its binary and its tests start it: its
//! migrations, topics, the inbox of the poverty office's and the hub's
//! events, and who may call what.

use std::sync::Arc;

use dibao_platform::runtime::access::{Rule, Scope};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::lazy_channel;
use dibao_platform::runtime::service::{Base, Plan, Service, Started};
use dibao_platform::runtime::settings::{Settings, Validate};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::store::db;
use dibao_platform::trust::relatives;
use dibao_proto::civil_affairs::v1::civil_affairs_service_server::CivilAffairsServiceServer;
use dibao_proto::civil_affairs::v1::complaint_service_server::ComplaintServiceServer;
use dibao_proto::civil_affairs::v1::payment_service_server::PaymentServiceServer;
use dibao_proto::civil_affairs::v1::report_service_server::ReportServiceServer;
use dibao_proto::common::v1::OfficerRole::{self, *};
use dibao_proto::sync::v1::poverty_roster_view_service_server::PovertyRosterViewServiceServer;
use dibao_proto::topics;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use serde::Deserialize;

use crate::households::Roster;
use crate::report_gate::Reports;
use crate::service::{CivilAffairs, Complaints, Payments, PovertyRosterView, UpwardReports};
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
    ("0010_officers_and_evidence", include_str!("../migrations/0010_officers_and_evidence.sql")),
    ("0011_open_applications", include_str!("../migrations/0011_open_applications.sql")),
    ("0012_household_numbers", include_str!("../migrations/0012_household_numbers.sql")),
    ("0013_verification_reports_read", include_str!("../migrations/0013_verification_reports_read.sql")),
    ("0014_verification_findings", include_str!("../migrations/0014_verification_findings.sql")),
    ("0015_complaints", include_str!("../migrations/0015_complaints.sql")),
    ("0016_payments", include_str!("../migrations/0016_payments.sql")),
    ("0017_certificates", include_str!("../migrations/0017_certificates.sql")),
    ("0018_paid_after_death", include_str!("../migrations/0018_paid_after_death.sql")),
    ("0019_complaint_concerned_by_signature", include_str!("../migrations/0019_complaint_concerned_by_signature.sql")),
    ("0020_upward_reports", include_str!("../migrations/0020_upward_reports.sql")),
    ("0021_member_changes_and_imports", include_str!("../migrations/0021_member_changes_and_imports.sql")),
];

/// The system that comes for an officer: the gateway, the mesh's one
/// entrance (a departmental system acting for its own officers comes
/// through it too, its assertions verified here against its issuer's scope).
const OFFICERS: &[&str] = &["gateway"];
/// Who reads the roster's households.
const READERS: &[OfficerRole] =
    &[VillageCommittee, TownshipCaseworker, TownshipReviewer, CountyApprover, VerificationOfficer, ProvinceAuditor];

const fn officers(method: &'static str, roles: &'static [OfficerRole], scope: Scope) -> Rule {
    Rule { method, systems: &[], for_officers: OFFICERS, roles, scope }
}

/// Who may call what: every method, the roles it admits and where its
/// division is found (the handlers check it against the officer's).
pub const ACCESS: &[Rule] = &[
    // The hub reads the household it checks: its county and live members (R-VER-2).
    Rule {
        systems: &["verification-hub"],
        ..officers("/dibao.civil_affairs.v1.CivilAffairsService/GetHousehold", READERS, Scope::Data)
    },
    // The comparison checks that a decision's application is the entry's enrolment (R-CMP-3).
    Rule {
        systems: &["roster-comparison"],
        ..officers("/dibao.civil_affairs.v1.CivilAffairsService/GetApplication", READERS, Scope::Data)
    },
    officers("/dibao.civil_affairs.v1.CivilAffairsService/GetHistory", READERS, Scope::Data),
    officers("/dibao.civil_affairs.v1.CivilAffairsService/GetCertificate", READERS, Scope::Data),
    officers("/dibao.civil_affairs.v1.CivilAffairsService/ListApplications", READERS, Scope::Request),
    officers("/dibao.civil_affairs.v1.CivilAffairsService/ListHouseholds", READERS, Scope::Request),
    // The hub's campaigns (R-VER-5) and the comparison's rebuild read it whole; an operator's resync too.
    Rule {
        systems: &["verification-hub", "roster-comparison"],
        ..officers(
            "/dibao.civil_affairs.v1.CivilAffairsService/ExportRoster",
            &[CountyApprover, CountyOperator, ProvinceAuditor, SystemOperator],
            Scope::Request,
        )
    },
    officers("/dibao.civil_affairs.v1.CivilAffairsService/ImportRoster", &[CountyOperator], Scope::Request),
    officers("/dibao.civil_affairs.v1.CivilAffairsService/SavePolicy", &[CountyApprover], Scope::Request),
    // The hub holds reports against the county's property rules.
    Rule {
        systems: &["verification-hub"],
        ..officers(
            "/dibao.civil_affairs.v1.CivilAffairsService/GetPolicy",
            &[
                TownshipCaseworker,
                TownshipReviewer,
                CountyApprover,
                VerificationOfficer,
                CountyOperator,
                ProvinceAuditor,
            ],
            Scope::Request,
        )
    },
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/AssessHousehold",
        &[VillageCommittee, TownshipCaseworker, TownshipReviewer, CountyApprover, VerificationOfficer],
        Scope::Request,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/SubmitApplication",
        &[TownshipCaseworker, VillageCommittee],
        Scope::Request,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/SignStep",
        &[VillageCommittee, TownshipCaseworker, TownshipReviewer, CountyApprover, VerificationOfficer],
        Scope::Data,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/RecordObjection",
        &[TownshipCaseworker, TownshipReviewer, CountyApprover],
        Scope::Data,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/StartExit",
        &[TownshipCaseworker, CountyApprover],
        Scope::Data,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/RecordDeath",
        &[TownshipCaseworker, CountyOperator],
        Scope::Data,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/ChangeMembers",
        &[TownshipCaseworker, CountyOperator],
        Scope::Data,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/ListReviewsDue",
        &[TownshipCaseworker, TownshipReviewer, CountyApprover, ProvinceAuditor],
        Scope::Request,
    ),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/RecordReview",
        &[TownshipCaseworker, TownshipReviewer],
        Scope::Data,
    ),
    officers("/dibao.civil_affairs.v1.CivilAffairsService/ApplyMonth", &[CountyOperator], Scope::Request),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/ExportPublicNotice",
        &[VillageCommittee, TownshipCaseworker, TownshipReviewer, CountyApprover, ProvinceAuditor],
        Scope::Request,
    ),
    officers("/dibao.civil_affairs.v1.CivilAffairsService/DrawSample", &[CountyApprover], Scope::Request),
    officers(
        "/dibao.civil_affairs.v1.CivilAffairsService/ReproduceSample",
        &[CountyApprover, ProvinceAuditor],
        Scope::Data,
    ),
    // Resync is the operator's.
    officers("/dibao.sync.v1.PovertyRosterViewService/*", &[SystemOperator], Scope::Request),
    // Complaints (R-AUD-2): taken by the county or a township, assigned and
    // closed by the county, followed up by the township it is assigned to.
    officers(
        "/dibao.civil_affairs.v1.ComplaintService/FileComplaint",
        &[TownshipCaseworker, TownshipReviewer, CountyOperator, CountyApprover],
        Scope::Request,
    ),
    officers(
        "/dibao.civil_affairs.v1.ComplaintService/AssignComplaint",
        &[CountyOperator, CountyApprover],
        Scope::Data,
    ),
    officers(
        "/dibao.civil_affairs.v1.ComplaintService/AddComplaintStep",
        &[TownshipCaseworker, TownshipReviewer, CountyOperator, CountyApprover],
        Scope::Data,
    ),
    officers("/dibao.civil_affairs.v1.ComplaintService/CloseComplaint", &[CountyApprover], Scope::Data),
    officers(
        "/dibao.civil_affairs.v1.ComplaintService/GetComplaint",
        &[TownshipCaseworker, TownshipReviewer, CountyOperator, CountyApprover, ProvinceAuditor],
        Scope::Data,
    ),
    officers(
        "/dibao.civil_affairs.v1.ComplaintService/ListComplaints",
        &[TownshipCaseworker, TownshipReviewer, CountyOperator, CountyApprover, ProvinceAuditor],
        Scope::Request,
    ),
    // The payment roll (R-PROC-1): prepared and paid out by the county's
    // operator, signed by its approver.
    officers("/dibao.civil_affairs.v1.PaymentService/PrepareRoll", &[CountyOperator, CountyApprover], Scope::Request),
    officers("/dibao.civil_affairs.v1.PaymentService/SignRoll", &[CountyApprover], Scope::Data),
    officers(
        "/dibao.civil_affairs.v1.PaymentService/ExportDisbursement",
        &[CountyOperator, CountyApprover],
        Scope::Data,
    ),
    officers("/dibao.civil_affairs.v1.PaymentService/ImportBankReturn", &[CountyOperator], Scope::Data),
    officers(
        "/dibao.civil_affairs.v1.PaymentService/ListPayments",
        &[CountyOperator, CountyApprover, ProvinceAuditor],
        Scope::Data,
    ),
    officers("/dibao.civil_affairs.v1.PaymentService/GetPaymentHistory", READERS, Scope::Data),
    officers(
        "/dibao.civil_affairs.v1.PaymentService/ListOverpayments",
        &[CountyOperator, CountyApprover, ProvinceAuditor],
        Scope::Request,
    ),
    officers("/dibao.civil_affairs.v1.PaymentService/RecordRecovery", &[CountyOperator, CountyApprover], Scope::Data),
    // Upward reports (R-AUD-3): made and read by the county's offices for
    // their county, by the province's auditors for the province; a city's
    // or province's officer of these roles reads their whole division.
    officers("/dibao.civil_affairs.v1.ReportService/GenerateReport", REPORTERS, Scope::Request),
    officers("/dibao.civil_affairs.v1.ReportService/ListReports", REPORTERS, Scope::Request),
    officers("/dibao.civil_affairs.v1.ReportService/GetReport", REPORTERS, Scope::Data),
    officers("/dibao.civil_affairs.v1.ReportService/ExportReport", REPORTERS, Scope::Data),
];

/// Who makes and reads upward reports.
const REPORTERS: &[OfficerRole] = &[CountyApprover, CountyOperator, ProvinceAuditor];

/// Civil affairs' own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct CivilOwn {
    pub verification: VerificationSection,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSection {
    /// `host:port` of the verification hub, whose reports the verification
    /// step and county approval read (R-VER-2); without it no report is accepted.
    pub hub: Option<String>,
    pub hub_server_name: String,
}

impl Validate for CivilOwn {
    fn validate(&self) -> Vec<String> {
        match &self.verification.hub {
            Some(hub) if hub.trim().is_empty() => vec!["verification.hub must not be empty where set".to_owned()],
            _ => Vec::new(),
        }
    }
}

pub const DEFAULTS: &str = r#"
[verification]
hub_server_name = "verification-hub"
"#;

/// The civil-affairs service.
pub struct Application;

impl Service for Application {
    const NAME: &'static str = SERVICE;
    type Own = CivilOwn;
    const DEFAULTS: &'static str = DEFAULTS;

    async fn build(settings: Settings<CivilOwn>, clock: Arc<dyn Clock>, shutdown: Shutdown) -> anyhow::Result<Started> {
        let mut base = Base::prepare(
            &settings.platform,
            Plan {
                name: SERVICE,
                migrations: MIGRATIONS,
                also: &[("officials", relatives::MIGRATIONS)],
                writes: Some(topics::CIVIL_AFFAIRS_HOUSEHOLD),
                reads: &[topics::POVERTY_ALLEVIATION_HOUSEHOLD, topics::VERIFICATION_REPORT, topics::COMPARISON_RUN],
                access: ACCESS,
            },
            clock.clone(),
            &shutdown,
        )
        .await?;
        let log = base.access_log().await?;
        let own = &settings.own.verification;
        let hub = match &own.hub {
            Some(addr) => Some(VerificationServiceClient::new(lazy_channel(&base.tls, addr, &own.hub_server_name)?)),
            None => None,
        };
        let roster = Arc::new(Roster {
            pool: base.pool.clone(),
            clock: clock.clone(),
            topic: base.own_topic(),
            log: log.clone(),
            reports: Reports(hub),
        });
        let workers = base.spawn_workers(PovertyEvents { topic: base.own_topic(), clock }, &shutdown)?;
        tokio::spawn(crate::reports::run_schedule(roster.clone(), shutdown.clone()));
        let running = base
            .server()?
            .add_service(CivilAffairsServiceServer::new(CivilAffairs(roster.clone())))
            .add_service(ComplaintServiceServer::new(Complaints(roster.clone())))
            .add_service(PaymentServiceServer::new(Payments(roster.clone())))
            .add_service(ReportServiceServer::new(UpwardReports(roster.clone())))
            .add_service(PovertyRosterViewServiceServer::new(PovertyRosterView(roster)))
            .start(settings.platform.server.listen, shutdown)
            .await?;
        Ok(Started::new(running, workers).with_access_log(log))
    }
}
