//! The binary as an operator runs it: health and reflection over mTLS,
//! ops for a system operator (through the gateway's certificate, with an
//! operator's assertion), a graceful stop.

use std::time::Duration;

use dibao_platform::runtime::server::connect;
use dibao_tests::TestEnv;

#[tokio::test]
async fn the_binary_answers_health_and_reflection_over_mtls() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let env = TestEnv::start().await;
    let port = dibao_tests::free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_civil-affairs"))
        .envs(env.vars("civil-affairs"))
        .env("CIVIL_AFFAIRS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn civil-affairs");
    let tls = env.tls("gateway");
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(c) = connect(&tls, &format!("127.0.0.1:{port}"), "localhost").await {
            channel = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = channel.expect("civil-affairs listening");
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: "dibao.civil_affairs.v1.CivilAffairsService".into() })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel.clone())
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("reflection")
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            stream.message().await.expect("message").and_then(|m| m.message_response)
        else {
            panic!("reflection did not list services");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.iter().any(|n| n == "dibao.civil_affairs.v1.CivilAffairsService"), "{names:?}");
    }
    let mut anonymous = dibao_proto::ops::v1::ops_service_client::OpsServiceClient::new(channel.clone());
    let refused = anonymous.get_pipeline_status(dibao_proto::ops::v1::GetPipelineStatusRequest {}).await;
    assert_eq!(refused.expect_err("no operator").code(), tonic::Code::Unauthenticated);
    let operator = env.desk("civil-affairs", dibao_proto::common::v1::OfficerRole::SystemOperator, "220000");
    let mut ops = dibao_proto::ops::v1::ops_service_client::OpsServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(channel, operator.credentials()),
    );
    let status = ops.get_pipeline_status(dibao_proto::ops::v1::GetPipelineStatusRequest {}).await.expect("ops");
    assert_eq!(status.into_inner().outbox_pending, 0);
    let pid = child.id().expect("pid");
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill").success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stops").expect("status");
    assert!(exit.success(), "graceful stop: {exit:?}");
}
