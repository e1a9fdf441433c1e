//! One trace id spans a gRPC call and the Kafka hop after it: an operator
//! retries a dead letter over mTLS, the handler writes to the outbox, the
//! relay carries the trace context in Kafka headers, and the inbox applies
//! the event as a child of the same trace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::events::inbox::{Handler, HandlerError};
use dibao_platform::runtime::access::{Gate, OfficerTrust, Rules};
use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::runtime::server::{ServerBuilder, connect};
use dibao_platform::runtime::settings::LogFormat;
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::trust::officer::{Issuers, OfficerSigner, ReplayGuard};
use dibao_platform::{events::inbox, events::kafka, events::outbox, runtime::telemetry, store::db};
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::events::v1::{EventEnvelope, PipelineProbe, event_envelope::Payload};
use dibao_proto::ops::v1::ops_service_client::OpsServiceClient;
use dibao_proto::ops::v1::{ListDeadLettersRequest, RetryDeadLetterRequest};
use dibao_tests::{Broker, Desk, TestDb, claims, random_prefix};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Refuses every event until the cause is fixed (`fixed` set), as a
/// consumer with a bug would until a new version is deployed.
struct RefuseUntilFixed {
    fixed: Arc<AtomicBool>,
    applied: Arc<AtomicUsize>,
}

impl Handler for RefuseUntilFixed {
    async fn apply(&self, _: &deadpool_postgres::Transaction<'_>, _: &EventEnvelope) -> Result<(), HandlerError> {
        if !self.fixed.load(Ordering::SeqCst) {
            return Err(HandlerError::Permanent("refused by the test until fixed".to_owned()));
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_the_grpc_call_and_the_kafka_hop() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    telemetry::install("trace-test", LogFormat::Pretty, Some(provider.clone())).expect("telemetry");

    let broker = Broker::start().await.expect("broker");
    let test_db = TestDb::create().await.expect("db");
    let pool = db::connect_and_migrate(&test_db.settings("svc"), &[]).await.expect("migrate");
    let ks = broker.kafka_settings(&random_prefix(), "trace-test");
    let topic = kafka::topic(&ks, "trace.events");
    kafka::ensure_topics(&ks, &[(topic.clone(), 1)]).await.expect("topic");

    let (stop, stopped) = Shutdown::new();
    let applied = Arc::new(AtomicUsize::new(0));
    let fixed = Arc::new(AtomicBool::new(false));
    let handler = RefuseUntilFixed { fixed: fixed.clone(), applied: applied.clone() };
    tokio::spawn(outbox::run_relay(pool.clone(), ks.clone(), Default::default(), stopped.clone()));
    tokio::spawn(inbox::run_inbox(
        pool.clone(),
        ks.clone(),
        handler,
        inbox::InboxConfig { topics: vec![topic.clone()], max_batch: 10 },
        stopped.clone(),
    ));

    // The first delivery is refused and dead-lettered.
    {
        let mut client = pool.get().await.expect("client");
        let tx = client.transaction().await.expect("tx");
        outbox::enqueue(
            &tx,
            outbox::NewEvent {
                topic: &topic,
                aggregate_type: "pipeline_probe",
                aggregate_key: "household-1",
                aggregate_version: 1,
                producer: "trace-test",
                payload: Payload::PipelineProbe(PipelineProbe { sequence: 1, body: vec![], written_at: None }),
            },
        )
        .await
        .expect("enqueue");
        tx.commit().await.expect("commit");
    }

    let ca = DevCa::generate("trace test CA").expect("ca");
    let server_pem = ca.issue("civil-affairs").expect("server");
    let issuer = std::sync::Arc::new(
        OfficerSigner::from_pkcs8("gateway", "gateway-1", &OfficerSigner::generate_pkcs8()).expect("issuer key"),
    );
    let trust = OfficerTrust {
        issuers: std::sync::Arc::new(Issuers::from_lines(&issuer.trusted_issuer_line("*"), "test").expect("issuers")),
        audience: "civil-affairs".to_owned(),
        replay: ReplayGuard::start(pool.clone(), stopped.clone()),
        clock: std::sync::Arc::new(SystemClock),
    };
    let server = ServerBuilder::new(
        TlsMaterial::from_pem(&ca.pem.cert, &server_pem.cert, &server_pem.key),
        Gate::new(Rules::new(&[]), Some(trust)),
        Some(dibao_platform::events::ops::Ops::new(pool.clone())),
    )
    .start("127.0.0.1:0".parse().expect("addr"), stopped.clone())
    .await
    .expect("server");
    let gateway_pem = ca.issue("gateway").expect("gateway cert");
    let channel = connect(
        &TlsMaterial::from_pem(&ca.pem.cert, &gateway_pem.cert, &gateway_pem.key),
        &server.addr.to_string(),
        "localhost",
    )
    .await
    .expect("connect");
    // An operator's calls through the gateway, each with its trace context.
    let mut operator = Desk::new(issuer, "civil-affairs", claims(OfficerRole::SystemOperator, "220000")).credentials();
    let mut ops = OpsServiceClient::with_interceptor(channel, move |r| {
        use tonic::service::Interceptor;
        operator.call(telemetry::inject_grpc(r)?)
    });

    let mut dead_id = 0;
    eventually("the dead letter", async || {
        let list = ops.list_dead_letters(ListDeadLettersRequest { limit: 10, include_retried: false }).await;
        match list.map(|r| r.into_inner().dead_letters) {
            Ok(dl) if !dl.is_empty() => {
                assert_eq!(dl[0].reason, "refused by the test until fixed");
                dead_id = dl[0].id;
                true
            }
            _ => false,
        }
    })
    .await;

    fixed.store(true, Ordering::SeqCst);
    // The operator's retry is the root of the trace we follow.
    let root = tracing::info_span!("officer.retry_dead_letter");
    let trace_id = root.context().span().span_context().trace_id();
    ops.retry_dead_letter(RetryDeadLetterRequest { id: dead_id }).instrument(root.clone()).await.expect("retry");
    drop(root);
    eventually("the retried event to be applied", async || applied.load(Ordering::SeqCst) == 1).await;

    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let in_trace: Vec<&str> =
        spans.iter().filter(|s| s.span_context.trace_id() == trace_id).map(|s| s.name.as_ref()).collect();
    assert!(in_trace.contains(&"grpc.server"), "gRPC server span in the trace: {in_trace:?}");
    assert!(in_trace.contains(&"inbox.apply"), "Kafka consumer span in the same trace: {in_trace:?}");
    let applies_in_trace = in_trace.iter().filter(|n| **n == "inbox.apply").count();
    assert_eq!(applies_in_trace, 1, "exactly the retried delivery is in the operator's trace");
    stop.trigger();
}
