//! What the comparison's tests and benchmarks share: civil affairs, the
//! poverty office and the comparison in this process, over mTLS, on a fresh
//! database and a Tansu broker of their own.
#![allow(dead_code)]

use std::sync::Arc;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::runtime::server::connect;
use dibao_platform::runtime::shutdown::{Shutdown, ShutdownTrigger};
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{Date, DivisionCode, OfficerRole, OfficerSignature};
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_roster_comparison::startup::{Application, ComparisonSection, ComparisonSettings};
use dibao_tests::{Broker, TestDb, random_prefix, service_settings};
use tonic::transport::Channel;

pub struct Mesh {
    pub civil: CivilAffairsServiceClient<Channel>,
    pub poverty: PovertyAlleviationServiceClient<Channel>,
    pub comparison: ComparisonServiceClient<Channel>,
    /// The comparison as an operator calls it.
    pub comparison_ops: ComparisonServiceClient<Channel>,
    pub db: TestDb,
    pub _broker: Broker,
    pub _stop: ShutdownTrigger,
}

pub async fn start() -> Mesh {
    start_with(0).await
}

/// The mesh with the comparison's monthly run on `monthly_run_day` (0: off).
pub async fn start_with(monthly_run_day: u8) -> Mesh {
    let broker = Broker::start().await.expect("broker");
    let db = TestDb::create().await.expect("db");
    let certs = std::env::temp_dir().join(format!("dibao-cmp-certs-{}", uuid::Uuid::new_v4().simple()));
    DevCa::generate("comparison test CA")
        .expect("ca")
        .write_all(&certs, &["civil-affairs", "poverty-alleviation", "roster-comparison", "gateway", "ops"])
        .expect("certs");
    let prefix = random_prefix();
    let (stop, shutdown) = Shutdown::new();
    let settings = |service, schema| service_settings(service, &db, schema, &broker, &prefix, &certs);
    let civil = dibao_civil_affairs::startup::Application::build(
        settings("civil-affairs", "civil_affairs"),
        Arc::new(SystemClock),
        shutdown.clone(),
    )
    .await
    .expect("civil affairs");
    let poverty = dibao_poverty_alleviation::startup::Application::build(
        settings("poverty-alleviation", "poverty_alleviation"),
        Arc::new(SystemClock),
        shutdown.clone(),
    )
    .await
    .expect("poverty alleviation");
    let p = settings("roster-comparison", "roster_comparison");
    let comparison = Application::build(
        ComparisonSettings {
            server: p.server,
            database: p.database,
            kafka: p.kafka,
            tls: p.tls,
            telemetry: p.telemetry,
            access: p.access,
            run: p.run,
            comparison: ComparisonSection {
                monthly_run_day,
                full_identity_roles: "township_caseworker,county_approver".into(),
                civil_affairs: Some(civil.addr.to_string()),
                civil_affairs_server_name: "civil-affairs".into(),
                poverty_alleviation: Some(poverty.addr.to_string()),
                poverty_alleviation_server_name: "poverty-alleviation".into(),
            },
        },
        Arc::new(SystemClock),
        shutdown,
    )
    .await
    .expect("comparison");
    let read = |f: &str| std::fs::read_to_string(certs.join(f)).expect("pem");
    let tls = TlsMaterial::from_pem(&read("ca.pem"), &read("gateway.pem"), &read("gateway.key"));
    let channel = |addr: std::net::SocketAddr| {
        let tls = tls.clone();
        async move { connect(&tls, &addr.to_string(), "localhost").await.expect("channel") }
    };
    Mesh {
        civil: CivilAffairsServiceClient::new(channel(civil.addr).await),
        poverty: PovertyAlleviationServiceClient::new(channel(poverty.addr).await),
        comparison: ComparisonServiceClient::new(channel(comparison.addr).await),
        comparison_ops: ComparisonServiceClient::new(
            connect(
                &TlsMaterial::from_pem(&read("ca.pem"), &read("ops.pem"), &read("ops.key")),
                &comparison.addr.to_string(),
                "localhost",
            )
            .await
            .expect("ops"),
        ),
        db,
        _broker: broker,
        _stop: stop,
    }
}

pub fn officer(role: OfficerRole, division: &str) -> Option<OfficerSignature> {
    Some(OfficerSignature {
        officer_id: format!("officer-{}", role as i32),
        officer_name: "李经办".into(),
        role: role as i32,
        division: Some(DivisionCode { code: division.into() }),
        signed_at: None,
    })
}

pub fn date(d: time::Date) -> Option<Date> {
    Some(Date { year: d.year(), month: d.month() as i32, day: i32::from(d.day()) })
}
