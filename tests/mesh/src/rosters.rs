//! Civil affairs, the poverty office and the roster comparison in this
//! process, over mTLS, on one test environment: what the comparison's
//! tests and benchmarks start. Each client calls as an officer of the
//! whole province who imports, approves and decides for both departments,
//! unless a call names another officer.

use dibao_platform::trust::officer::Claims;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::payment_service_client::PaymentServiceClient;
use dibao_proto::common::v1::{Date, OfficerRole};
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_tests::{OfficerChannel, Spawn, TestEnv, claims, spawn, spawn_with};

/// The generated province's code (the synthetic generator's default).
pub const PROVINCE: &str = "520000";

pub struct Mesh {
    pub civil: CivilAffairsServiceClient<OfficerChannel>,
    pub poverty: PovertyAlleviationServiceClient<OfficerChannel>,
    pub comparison: ComparisonServiceClient<OfficerChannel>,
    /// The comparison as a system operator calls it (through the gateway).
    pub comparison_ops: ComparisonServiceClient<OfficerChannel>,
    /// Civil affairs' payment rolls, as the province's officer.
    pub payments: PaymentServiceClient<OfficerChannel>,
    pub env: TestEnv,
}

pub async fn start() -> Mesh {
    start_with(0).await
}

/// The mesh with the comparison's monthly run on `monthly_run_day` (0: off).
pub async fn start_with(monthly_run_day: u8) -> Mesh {
    start_in(monthly_run_day, PROVINCE).await
}

/// An officer of all of `province` who imports, approves and decides.
pub fn province_officer(province: &str) -> Claims {
    Claims {
        roles: vec![OfficerRole::CountyOperator, OfficerRole::CountyApprover, OfficerRole::PovertyOfficer],
        ..claims(OfficerRole::CountyOperator, province)
    }
}

/// The mesh with its officers serving `province` (a 6-digit code).
pub async fn start_in(monthly_run_day: u8, province: &str) -> Mesh {
    type Comparison = dibao_roster_comparison::Application;
    let env = TestEnv::start().await;
    let civil = spawn::<dibao_civil_affairs::Application>(&env).await;
    let poverty = spawn::<dibao_poverty_alleviation::Application>(&env).await;
    let comparison = spawn_with::<Comparison>(
        &env,
        Spawn::default()
            .var::<Comparison>("COMPARISON__MONTHLY_RUN_DAY", monthly_run_day.to_string())
            .var::<Comparison>("COMPARISON__FULL_IDENTITY_ROLES", "township_caseworker,county_approver")
            .var::<Comparison>("COMPARISON__CIVIL_AFFAIRS", civil.addr.to_string())
            .var::<Comparison>("COMPARISON__POVERTY_ALLEVIATION", poverty.addr.to_string()),
    )
    .await;
    let officer = province_officer(province);
    let desk = |service: &str| env.desk(service, OfficerRole::CountyOperator, province).claims(officer.clone());
    let civil_desk = desk(dibao_civil_affairs::startup::SERVICE);
    let poverty_desk = desk(dibao_poverty_alleviation::startup::SERVICE);
    let comparison_desk = desk(dibao_roster_comparison::startup::SERVICE);
    let operator = env.desk(dibao_roster_comparison::startup::SERVICE, OfficerRole::SystemOperator, province);
    let ops = env.officer_channel(comparison.addr, operator).await;
    let civil_channel = env.officer_channel(civil.addr, civil_desk).await;
    Mesh {
        payments: PaymentServiceClient::new(civil_channel.clone()),
        civil: CivilAffairsServiceClient::new(civil_channel),
        poverty: PovertyAlleviationServiceClient::new(env.officer_channel(poverty.addr, poverty_desk).await),
        comparison: ComparisonServiceClient::new(env.officer_channel(comparison.addr, comparison_desk).await),
        comparison_ops: ComparisonServiceClient::new(ops),
        env,
    }
}

pub fn date(d: time::Date) -> Option<Date> {
    Some(Date { year: d.year(), month: d.month() as i32, day: i32::from(d.day()) })
}
