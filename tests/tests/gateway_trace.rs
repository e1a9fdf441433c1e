//! Trace context crosses the gateway: an officer's call, made in a span of
//! the caller's, is forwarded with the caller's trace context, so the
//! gateway's span and the service's span are in the caller's trace.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_trace_goes_through_the_gateway_to_the_service() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    telemetry::install("gateway-trace-test", LogFormat::Pretty, Some(provider.clone())).expect("telemetry");
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
