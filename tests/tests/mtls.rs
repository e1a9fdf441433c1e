//! Every call is mutual TLS; the caller's identity comes from its
//! certificate, an officer's from the assertion the call carries, and the
//! access table decides. Health and reflection answer every mesh identity.

use std::net::SocketAddr;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::events::ops::Ops;
use dibao_platform::runtime::access::{Gate, OfficerTrust, Rules};
use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::runtime::server::{CallerChannel, Credentials, ServerBuilder, connect};
use dibao_platform::runtime::shutdown::{Shutdown, ShutdownTrigger};
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::store::db;
use dibao_platform::trust::officer::{Issuers, OfficerSigner, ReplayGuard};
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::ops::v1::GetPipelineStatusRequest;
use dibao_proto::ops::v1::ops_service_client::OpsServiceClient;
use dibao_tests::{Desk, TestDb, claims};
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

struct Running {
    ca: DevCa,
    addr: SocketAddr,
    issuer: std::sync::Arc<OfficerSigner>,
    _stop: ShutdownTrigger,
    _db: TestDb,
}

async fn start() -> Running {
    let ca = DevCa::generate("dibao-mesh test CA").expect("ca");
    let server = ca.issue("civil-affairs").expect("server cert");
    let tls = TlsMaterial::from_pem(&ca.pem.cert, &server.cert, &server.key);
    let test_db = TestDb::create().await.expect("db");
    let pool = db::connect_and_migrate(&test_db.settings("svc"), &[]).await.expect("migrate");
    let issuer = std::sync::Arc::new(
        OfficerSigner::from_pkcs8("gateway", "gateway-1", &OfficerSigner::generate_pkcs8()).expect("issuer key"),
    );
    let (stop, shutdown) = Shutdown::new();
    let trust = OfficerTrust {
        issuers: std::sync::Arc::new(Issuers::from_lines(&issuer.trusted_issuer_line("*"), "test").expect("issuers")),
        audience: "civil-affairs".to_owned(),
        replay: ReplayGuard::start(pool.clone(), shutdown.clone()),
        clock: std::sync::Arc::new(SystemClock),
    };
    // The platform's table alone: ops for an operator through the gateway.
    let gate = Gate::new(Rules::new(&[]), Some(trust));
    let running = ServerBuilder::new(tls, gate, Some(Ops::new(pool)))
        .start("127.0.0.1:0".parse().expect("addr"), shutdown)
        .await
        .expect("server");
    Running { ca, addr: running.addr, issuer, _stop: stop, _db: test_db }
}

/// The ops service as `identity`, each call for an officer of `role` when there is one.
async fn ops_client(r: &Running, identity: &str, role: Option<OfficerRole>) -> OpsServiceClient<CallerChannel> {
    let pem = r.ca.issue(identity).expect("client cert");
    let tls = TlsMaterial::from_pem(&r.ca.pem.cert, &pem.cert, &pem.key);
    let channel = connect(&tls, &r.addr.to_string(), "localhost").await.expect("connect");
    let credentials = match role {
        Some(role) => Desk::new(r.issuer.clone(), "civil-affairs", claims(role, "220000")).credentials(),
        None => Credentials::none(),
    };
    OpsServiceClient::new(InterceptedService::new(channel, credentials))
}

#[tokio::test]
async fn a_permitted_identity_succeeds() {
    let r = start().await;
    let mut client = ops_client(&r, "gateway", Some(OfficerRole::SystemOperator)).await;
    let status =
        client.get_pipeline_status(GetPipelineStatusRequest {}).await.expect("an operator may call").into_inner();
    assert_eq!(status.outbox_pending, 0);
    assert_eq!(status.dead_letters_open, 0);
}

#[tokio::test]
async fn an_identity_the_table_does_not_allow_gets_permission_denied() {
    let r = start().await;
    let mut client = ops_client(&r, "roster-comparison", Some(OfficerRole::SystemOperator)).await;
    let err = client.get_pipeline_status(GetPipelineStatusRequest {}).await.expect_err("a system may not");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("roster-comparison"), "{}", err.message());
    // The gateway without an officer's assertion, or for an officer of another role.
    let mut client = ops_client(&r, "gateway", None).await;
    let err = client.get_pipeline_status(GetPipelineStatusRequest {}).await.expect_err("no officer");
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut client = ops_client(&r, "gateway", Some(OfficerRole::CountyApprover)).await;
    let err = client.get_pipeline_status(GetPipelineStatusRequest {}).await.expect_err("not an operator");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let r = start().await;
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&r.ca.pem.cert)).domain_name("localhost");
    let result = async {
        let channel = Endpoint::from_shared(format!("https://{}", r.addr))?.tls_config(tls)?.connect().await?;
        let mut client = OpsServiceClient::new(channel);
        Ok::<_, Box<dyn std::error::Error>>(client.get_pipeline_status(GetPipelineStatusRequest {}).await?)
    }
    .await;
    assert!(result.is_err(), "a caller without a certificate must not get an answer");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let r = start().await;
    let other = DevCa::generate("someone else's CA").expect("ca");
    let pem = other.issue("ops").expect("cert");
    // Trusts the mesh CA for the server, but presents a foreign client certificate.
    let tls = TlsMaterial::from_pem(&r.ca.pem.cert, &pem.cert, &pem.key);
    let result = async {
        let channel = connect(&tls, &r.addr.to_string(), "localhost").await?;
        let mut client = OpsServiceClient::new(channel);
        Ok::<_, Box<dyn std::error::Error>>(client.get_pipeline_status(GetPipelineStatusRequest {}).await?)
    }
    .await;
    assert!(result.is_err(), "a certificate from another CA must not get an answer");
}

#[tokio::test]
async fn health_and_reflection_answer_any_mesh_identity() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let r = start().await;
    let pem = r.ca.issue("gateway").expect("cert");
    let tls = TlsMaterial::from_pem(&r.ca.pem.cert, &pem.cert, &pem.key);
    let channel = connect(&tls, &r.addr.to_string(), "localhost").await.expect("connect");

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "dibao.ops.v1.OpsService"] {
        let resp = health.check(HealthCheckRequest { service: service.to_owned() }).await.expect("health").into_inner();
        assert_eq!(resp.status, ServingStatus::Serving as i32, "health of {service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream =
        reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.expect("reflection").into_inner();
    let Some(ServerReflectionResponse { message_response: Some(MessageResponse::ListServicesResponse(list)), .. }) =
        stream.message().await.expect("message")
    else {
        panic!("reflection did not list services");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["grpc.health.v1.Health", "dibao.ops.v1.OpsService"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
}
