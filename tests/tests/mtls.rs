//! Every call is mutual TLS; the caller's identity comes from its
//! certificate and the per-method policy decides. Health and reflection
//! answer every mesh identity.

use std::net::SocketAddr;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::events::ops::Ops;
use dibao_platform::runtime::server::{ServerBuilder, connect};
use dibao_platform::runtime::shutdown::{Shutdown, ShutdownTrigger};
use dibao_platform::runtime::tls::{AccessPolicy, TlsMaterial};
use dibao_platform::store::db;
use dibao_proto::ops::v1::GetPipelineStatusRequest;
use dibao_proto::ops::v1::ops_service_client::OpsServiceClient;
use dibao_tests::TestDb;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

struct Running {
    ca: DevCa,
    addr: SocketAddr,
    _stop: ShutdownTrigger,
    _db: TestDb,
}

async fn start() -> Running {
    let ca = DevCa::generate("dibao-mesh test CA").expect("ca");
    let server = ca.issue("civil-affairs").expect("server cert");
    let tls = TlsMaterial::from_pem(&ca.pem.cert, &server.cert, &server.key);
    let test_db = TestDb::create().await.expect("db");
    let pool = db::connect_and_migrate(&test_db.settings("svc"), &[]).await.expect("migrate");
    let policy = AccessPolicy::platform_defaults();
    let (stop, shutdown) = Shutdown::new();
    let running = ServerBuilder::new(tls, policy, Some(Ops::new(pool)))
        .start("127.0.0.1:0".parse().expect("addr"), shutdown)
        .await
        .expect("server");
    Running { ca, addr: running.addr, _stop: stop, _db: test_db }
}

async fn ops_client(r: &Running, identity: &str) -> OpsServiceClient<tonic::transport::Channel> {
    let pem = r.ca.issue(identity).expect("client cert");
    let tls = TlsMaterial::from_pem(&r.ca.pem.cert, &pem.cert, &pem.key);
    OpsServiceClient::new(connect(&tls, &r.addr.to_string(), "localhost").await.expect("connect"))
}

#[tokio::test]
async fn a_permitted_identity_succeeds() {
    let r = start().await;
    let mut client = ops_client(&r, "ops").await;
    let status = client.get_pipeline_status(GetPipelineStatusRequest {}).await.expect("ops may call").into_inner();
    assert_eq!(status.outbox_pending, 0);
    assert_eq!(status.dead_letters_open, 0);
}

#[tokio::test]
async fn an_identity_the_policy_does_not_allow_gets_permission_denied() {
    let r = start().await;
    let mut client = ops_client(&r, "gateway").await;
    let err = client.get_pipeline_status(GetPipelineStatusRequest {}).await.expect_err("gateway may not");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("gateway"), "{}", err.message());
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
