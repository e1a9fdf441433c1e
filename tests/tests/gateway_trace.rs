//! Trace context crosses the gateway and the mesh, carried by the clients
//! production runs: an officer's call, made in a span of the caller's, is
//! forwarded with the caller's trace context, so the gateway's span and the
//! service's span are in the caller's trace; a roster import through the
//! gateway reaches civil affairs, its event crosses Kafka and is applied by
//! poverty alleviation (and the comparison) in the same trace; a check
//! through the gateway reaches the hub and the hub's question the
//! department's adapter, in one trace.

use dibao_platform::runtime::server::Credentials;
use dibao_platform::runtime::settings::LogFormat;
use dibao_platform::runtime::telemetry;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, OfficerRole};
use dibao_test_mesh::gateway;
use dibao_tests::{TestEnv, spawn};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The process's one tracing subscriber, exporting to memory: the tests of
/// this file share it, each reading the spans of its own trace.
fn telemetry_once() -> (SdkTracerProvider, InMemorySpanExporter) {
    static ONCE: std::sync::OnceLock<(SdkTracerProvider, InMemorySpanExporter)> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        telemetry::install("gateway-trace-test", LogFormat::Pretty, Some(provider.clone())).expect("telemetry");
        (provider, exporter)
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_trace_goes_through_the_gateway_to_the_service() {
    let (provider, exporter) = telemetry_once();
    let env = TestEnv::start().await;
    let civil = spawn::<dibao_civil_affairs::Application>(&env).await;
    let gw = gateway::start(&env, &[("civil-affairs", civil.addr)]).await;
    let token = gw.token("caseworker", &[OfficerRole::TownshipCaseworker], "220581101").await;
    let ca_pem = std::fs::read(&gw.ca).expect("ca");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", gw.addr))
        .expect("endpoint")
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
                .domain_name("localhost"),
        )
        .expect("tls")
        .connect()
        .await
        .expect("gateway");
    let mut session = Credentials::bearer(&token);
    let mut civil_client = CivilAffairsServiceClient::with_interceptor(channel, move |r| {
        use tonic::service::Interceptor;
        session.call(telemetry::inject_grpc(r)?)
    });

    let root = tracing::info_span!("officer.list_households");
    let trace_id = root.context().span().span_context().trace_id();
    civil_client
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: "220581101".into() }),
            page: None,
        })
        .instrument(root.clone())
        .await
        .expect("listed");
    drop(root);

    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let in_trace: Vec<&str> =
        spans.iter().filter(|s| s.span_context.trace_id() == trace_id).map(|s| s.name.as_ref()).collect();
    assert!(in_trace.contains(&"gateway.forward"), "the gateway's span in the caller's trace: {in_trace:?}");
    assert!(in_trace.contains(&"grpc.server"), "the service's span in the caller's trace: {in_trace:?}");
}

/// The names of the spans of `trace_id`, with their `rpc.method` or `topic` when they have one.
fn spans_of(exporter: &InMemorySpanExporter, trace_id: opentelemetry::trace::TraceId) -> Vec<(String, String)> {
    exporter
        .get_finished_spans()
        .expect("spans")
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .map(|s| {
            let detail = s
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == "rpc.method" || kv.key.as_str() == "topic")
                .map(|kv| kv.value.to_string())
                .unwrap_or_default();
            (s.name.to_string(), detail)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_gateway_civil_affairs_kafka_poverty_and_gateway_hub_adapter() {
    use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient as Civil;
    use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;

    let (provider, exporter) = telemetry_once();
    let all = dibao_test_mesh::all::start().await;
    let upstreams: Vec<(&str, std::net::SocketAddr)> = all.addrs.iter().map(|(k, v)| (*k, *v)).collect();
    let gw = gateway::start(&all.env, &upstreams).await;
    let office =
        gw.officer("trace-office", &[OfficerRole::CountyApprover, OfficerRole::CountyOperator], "220581").await;
    let mut civil = Civil::new(office);
    civil
        .save_policy(ca::SavePolicyRequest { policy: Some(dibao_test_mesh::verification::policy("220581")) })
        .await
        .expect("policy");

    // Gateway → civil affairs → Kafka → poverty alleviation.
    let household = dibao_test_mesh::all::enrolled_pair(0, "TR-1", "220581101201", "19620202", "赵");
    let import = tracing::info_span!("officer.import_roster");
    let import_trace = import.context().span().span_context().trace_id();
    let rows = vec![ca::ImportRosterRequest { row: 1, household: Some(household) }];
    let imported = civil.import_roster(tokio_stream::iter(rows)).instrument(import.clone()).await.expect("import");
    assert!(imported.into_inner().errors.is_empty());
    drop(import);
    let civil_topic = all.env.topic(dibao_proto::topics::CIVIL_AFFAIRS_HOUSEHOLD.0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let applied = loop {
        provider.force_flush().expect("flush");
        let spans = spans_of(&exporter, import_trace);
        let applied =
            spans.iter().filter(|(name, topic)| name == "inbox.apply" && topic.contains(&civil_topic)).count();
        // Poverty alleviation and the roster comparison both consume civil affairs' topic.
        if applied >= 2 {
            break spans;
        }
        assert!(std::time::Instant::now() < deadline, "the event was not applied in the import's trace: {spans:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(applied.iter().any(|(n, _)| n == "gateway.forward"), "{applied:?}");
    assert!(
        applied.iter().any(|(n, m)| n == "grpc.server" && m.ends_with("CivilAffairsService/ImportRoster")),
        "{applied:?}"
    );

    // Gateway → hub → the department's adapter.
    let first = civil
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: "220581".into() }),
            page: None,
        })
        .await
        .expect("households")
        .into_inner()
        .households
        .remove(0);
    let members = dibao_test_mesh::all::members_of(&first);
    let checker = gw.officer("trace-checker", &[OfficerRole::VerificationOfficer], "220581").await;
    let check = tracing::info_span!("officer.verify_household");
    let check_trace = check.context().span().span_context().trace_id();
    dibao_test_mesh::verification::vehicles_checked(
        &mut VerificationServiceClient::new(checker),
        &first.household_id,
        &members,
        "低保复核",
    )
    .instrument(check.clone())
    .await;
    drop(check);
    provider.force_flush().expect("flush");
    let spans = spans_of(&exporter, check_trace);
    assert!(
        spans.iter().any(|(n, m)| n == "grpc.server" && m.ends_with("VerificationService/VerifyHousehold")),
        "{spans:?}"
    );
    assert!(
        spans.iter().any(|(n, m)| n == "grpc.server" && m.ends_with("DepartmentService/Query")),
        "the adapter's span in the check's trace: {spans:?}"
    );
}
