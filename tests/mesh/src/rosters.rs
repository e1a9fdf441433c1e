//! Civil affairs, the poverty office and the roster comparison in this
//! process, over mTLS, on one test environment: what the comparison's
//! tests and benchmarks start.

use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::Date;
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_tests::{Spawn, TestEnv, spawn, spawn_with};
use tonic::transport::Channel;

pub struct Mesh {
    pub civil: CivilAffairsServiceClient<Channel>,
    pub poverty: PovertyAlleviationServiceClient<Channel>,
    pub comparison: ComparisonServiceClient<Channel>,
    /// The comparison as an operator calls it.
    pub comparison_ops: ComparisonServiceClient<Channel>,
    pub env: TestEnv,
}

pub async fn start() -> Mesh {
    start_with(0).await
}

/// The mesh with the comparison's monthly run on `monthly_run_day` (0: off).
pub async fn start_with(monthly_run_day: u8) -> Mesh {
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
    Mesh {
        civil: CivilAffairsServiceClient::new(civil.channel(&env, "gateway").await),
        poverty: PovertyAlleviationServiceClient::new(poverty.channel(&env, "gateway").await),
        comparison: ComparisonServiceClient::new(comparison.channel(&env, "gateway").await),
        comparison_ops: ComparisonServiceClient::new(comparison.channel(&env, "ops").await),
        env,
    }
}

pub fn date(d: time::Date) -> Option<Date> {
    Some(Date { year: d.year(), month: d.month() as i32, day: i32::from(d.day()) })
}
