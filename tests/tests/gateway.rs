//! The gateway in front of civil affairs, all real: officers log in with a
//! password and an authenticator code over HTTPS (or an ID token of the
//! province's identity platform), their calls are forwarded with the
//! gateway's officer assertion and refused by the table where they must be;
//! administrators manage the registry inside their division; departmental
//! systems come in with certificates of their own CA and their own
//! officers' assertions.

use std::sync::Arc;

use dibao_gateway::client;
use dibao_platform::runtime::clock::{Clock, ManualClock};
use dibao_platform::runtime::server::CallerChannel;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, OfficerRole};
use dibao_proto::gateway::v1 as pb;
use dibao_test_mesh::gateway::{self, Enrolled, Gateway};
use dibao_tests::{Spawn, TestApp, TestEnv, spawn_with};
use tonic::Code;

type Civil = dibao_civil_affairs::Application;

const COUNTY: &str = "220581";
const TOWNSHIP: &str = "220581101";

/// Civil affairs and the gateway in front of it, on one clock the test
/// moves; the gateway's metrics on `metrics`.
async fn start_with_metrics(metrics: u16) -> (TestEnv, TestApp, Gateway, ManualClock) {
    let env = TestEnv::start().await;
    let clock = ManualClock::at(time::OffsetDateTime::now_utc());
    let civil = spawn_with::<Civil>(&env, Spawn::default().clock(Arc::new(clock.clone()))).await;
    let how = gateway::spawn_vars(&env, &[("civil-affairs", civil.addr)])
        .var::<dibao_gateway::Application>("SERVER__METRICS_LISTEN", format!("127.0.0.1:{metrics}"))
        .clock(Arc::new(clock.clone()));
    let gw = gateway::start_with(&env, how).await;
    (env, civil, gw, clock)
}

async fn start() -> (TestEnv, TestApp, Gateway, ManualClock) {
    start_with_metrics(dibao_tests::free_port()).await
}

/// The Prometheus text the gateway serves on `port`.
async fn metrics(port: u16) -> String {
    dibao_tests::metrics(([127, 0, 0, 1], port).into()).await
}

fn list(division: &str) -> ca::ListHouseholdsRequest {
    ca::ListHouseholdsRequest { division: Some(DivisionCode { code: division.into() }), page: None }
}

/// The status `GET /api/session` answers `token` with.
async fn session(gw: &Gateway, token: &str) -> u16 {
    let url = format!("https://{}/api/session", gw.addr);
    let (status, _) =
        dibao_gateway::https::request_json(http::Method::GET, &url, Some(&gw.ca), &serde_json::json!({}), Some(token))
            .await
            .expect("gateway answers");
    status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_takes_two_factors_locks_out_and_sessions_end() {
    let (_env, _civil, gw, clock) = start().await;
    let officer = gw.enrol("caseworker-101", "刘志强", &[OfficerRole::TownshipCaseworker], TOWNSHIP).await;
    let addr = gw.addr.to_string();
    let now = || clock.now().unix_timestamp();

    // A wrong password, then a wrong authenticator code: the same answer, no hint which.
    let code = officer.code(now());
    let wrong =
        client::login(&addr, &gw.ca, &officer.officer_id, "not-the-password", &code).await.expect_err("wrong password");
    assert_eq!(wrong.0, 401, "{wrong:?}");
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let wrong =
        client::login(&addr, &gw.ca, &officer.officer_id, &officer.password, wrong_code).await.expect_err("wrong code");
    assert_eq!(wrong.0, 401, "{wrong:?}");
    assert_eq!(wrong.1, "账号、口令或动态口令不正确");
    // An unknown officer gets the same.
    let unknown = client::login(&addr, &gw.ca, "nobody", "whatever", "123456").await.expect_err("unknown");
    assert_eq!(unknown, wrong);

    // Five failures lock the account: the right credentials are refused until an administrator resets them.
    for _ in 0..3 {
        let _ = client::login(&addr, &gw.ca, &officer.officer_id, "not-the-password", &officer.code(now())).await;
    }
    let locked = gw.login(&officer).await.expect_err("locked");
    assert_eq!(locked.0, 423, "{locked:?}");
    assert!(locked.1.contains("已锁定"), "{}", locked.1);
    let reset = gw
        .admin()
        .await
        .reset_credentials(pb::ResetCredentialsRequest { account: officer.officer_id.clone() })
        .await
        .expect("reset")
        .into_inner()
        .credentials
        .expect("credentials");
    let officer = Enrolled::new(&officer.officer_id, &reset.one_time_password, &reset.totp_secret);
    let token = gw.login(&officer).await.expect("login after reset");

    // The session opens the township's data through the gateway.
    let mut civil = CivilAffairsServiceClient::new(gw.channel(&token).await);
    civil.list_households(list(TOWNSHIP)).await.expect("own township");
    assert_eq!(session(&gw, &token).await, 200);
    // An authenticator code is used once.
    let mut replayed = Enrolled::new(&officer.officer_id, &officer.password, &officer.totp_secret);
    replayed.reuse_last_step_of(&officer);
    assert_eq!(gw.login(&replayed).await.expect_err("code used twice").0, 401);

    // Idle for longer than 15 minutes: the session is over.
    clock.advance(time::Duration::minutes(16));
    let e = civil.list_households(list(TOWNSHIP)).await.expect_err("idle");
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("长时间未操作"), "{}", e.message());

    // Active all along, a session still ends after 8 hours.
    let token = gw.login(&officer).await.expect("login");
    let mut civil = CivilAffairsServiceClient::new(gw.channel(&token).await);
    for _ in 0..(8 * 60 / 14) {
        clock.advance(time::Duration::minutes(14));
        assert_eq!(session(&gw, &token).await, 200);
    }
    clock.advance(time::Duration::minutes(14));
    let e = civil.list_households(list(TOWNSHIP)).await.expect_err("absolute limit");
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("最长时限"), "{}", e.message());

    // Logout: the token opens nothing any more.
    let token = gw.login(&officer).await.expect("login");
    let mut civil = CivilAffairsServiceClient::new(gw.channel(&token).await);
    civil.list_households(list(TOWNSHIP)).await.expect("logged in");
    client::logout(&addr, &gw.ca, &token).await.expect("logout");
    let e = civil.list_households(list(TOWNSHIP)).await.expect_err("after logout");
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(session(&gw, &token).await, 401);
    assert!(client::logout(&addr, &gw.ca, &token).await.is_err(), "a session ends once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_officers_inside_their_division_and_every_change_is_recorded() {
    let (env, _civil, gw, _clock) = start().await;
    // The province's administrator appoints the county's.
    let county_admin = gw.enrol("admin-220581", "县管理员", &[OfficerRole::Administrator], COUNTY).await;
    let token = gw.login(&county_admin).await.expect("county administrator");
    let mut admin = dibao_proto::gateway::v1::officer_admin_service_client::OfficerAdminServiceClient::new(
        gw.channel(&token).await,
    );
    let officer = |id: &str, division: &str| pb::Officer {
        officer_id: id.into(),
        name: "新经办人".into(),
        roles: vec![OfficerRole::TownshipCaseworker as i32],
        division: Some(DivisionCode { code: division.into() }),
        ..Default::default()
    };
    admin
        .create_officer(pb::CreateOfficerRequest { officer: Some(officer("cw-1", TOWNSHIP)) })
        .await
        .expect("own county");
    let e = admin
        .create_officer(pb::CreateOfficerRequest { officer: Some(officer("cw-2", "220582101")) })
        .await
        .expect_err("another county");
    assert_eq!(e.code(), Code::PermissionDenied);
    // An officer of another county is not theirs even to see.
    let other = gw.enrol("cw-other", "外县经办人", &[OfficerRole::TownshipCaseworker], "220582101").await;
    let e = admin
        .update_officer(pb::UpdateOfficerRequest {
            officer: Some(officer(&other.officer_id, TOWNSHIP)),
            update_mask: vec!["division".into()],
        })
        .await
        .expect_err("another county's officer");
    assert_eq!(e.code(), Code::NotFound);
    // Nor may they move their own officer out of their county.
    let e = admin
        .update_officer(pb::UpdateOfficerRequest {
            officer: Some(officer("cw-1", "220582101")),
            update_mask: vec!["division".into()],
        })
        .await
        .expect_err("moved out");
    assert_eq!(e.code(), Code::PermissionDenied);
    // Bad input names the field.
    let e = admin
        .create_officer(pb::CreateOfficerRequest {
            officer: Some(pb::Officer { roles: vec![], ..officer("cw-3", TOWNSHIP) }),
        })
        .await
        .expect_err("no role");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("officer.roles"), "{}", e.message());

    // An officer who is not an administrator manages no one.
    let cw = gw.enrol("cw-4", "经办人", &[OfficerRole::TownshipCaseworker], TOWNSHIP).await;
    let cw_token = gw.login(&cw).await.expect("login");
    let mut as_caseworker = dibao_proto::gateway::v1::officer_admin_service_client::OfficerAdminServiceClient::new(
        gw.channel(&cw_token).await,
    );
    let e = as_caseworker
        .create_officer(pb::CreateOfficerRequest { officer: Some(officer("cw-5", TOWNSHIP)) })
        .await
        .expect_err("not admin");
    assert_eq!(e.code(), Code::PermissionDenied);

    // Disabling ends the officer's session at once and refuses their login.
    let mut civil = CivilAffairsServiceClient::new(gw.channel(&cw_token).await);
    civil.list_households(list(TOWNSHIP)).await.expect("before");
    admin
        .update_officer(pb::UpdateOfficerRequest {
            officer: Some(pb::Officer { status: pb::OfficerStatus::Disabled as i32, ..officer("cw-4", TOWNSHIP) }),
            update_mask: vec!["status".into()],
        })
        .await
        .expect("disabled");
    assert_eq!(civil.list_households(list(TOWNSHIP)).await.expect_err("disabled").code(), Code::Unauthenticated);
    assert_eq!(gw.login(&cw).await.expect_err("disabled").0, 403);

    // Every change is on record with who made it, the county's only.
    let changes = admin
        .list_officer_changes(pb::ListOfficerChangesRequest::default())
        .await
        .expect("changes")
        .into_inner()
        .changes;
    let made: Vec<(&str, &str)> = changes.iter().map(|c| (c.officer_id.as_str(), c.changed_by.as_str())).collect();
    assert!(made.contains(&("cw-1", "admin-220581")), "{made:?}");
    assert!(made.contains(&("cw-4", "admin-220581")), "{made:?}");
    assert!(changes.iter().any(|c| c.officer_id == "cw-4" && c.change == "停用"), "{changes:?}");
    assert!(!made.iter().any(|(id, _)| *id == "cw-other"), "another county's changes are not shown: {made:?}");
    // And that record cannot be rewritten.
    let db = env.db.client().await.expect("db");
    let rewrite = db.execute("UPDATE gateway.officer_change SET changed_by = 'nobody'", &[]).await;
    assert!(rewrite.is_err(), "the change record is append-only");
    let login_rewrite = db.execute("DELETE FROM gateway.login_event", &[]).await;
    assert!(login_rewrite.is_err(), "the login record is append-only");
}

/// A raw gRPC call of `path` with an empty message.
async fn call(channel: CallerChannel, path: &'static str) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(tonic::Request::new(()), http::uri::PathAndQuery::from_static(path), codec).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_through_with_the_officers_assertion_and_the_table_refuses_the_rest() {
    let port = dibao_tests::free_port();
    let (env, _civil, gw, _clock) = start_with_metrics(port).await;
    let caseworker = gw.officer("caseworker-101", &[OfficerRole::TownshipCaseworker], TOWNSHIP).await;
    let mut civil = CivilAffairsServiceClient::new(caseworker.clone());
    civil.list_households(list(TOWNSHIP)).await.expect("own township");
    // The service applies its own table to the officer the gateway asserts.
    let e = civil.list_households(list("220581102")).await.expect_err("another township");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = civil
        .save_policy(ca::SavePolicyRequest { policy: Some(ca::CountyPolicy::default()) })
        .await
        .expect_err("a caseworker saves no policy");
    assert_eq!(e.code(), Code::PermissionDenied);

    // No session, no call; a forged token neither.
    let ca_pem = std::fs::read(&gw.ca).expect("ca");
    let anonymous = client::channel(&gw.addr.to_string(), &ca_pem, "localhost", "0000").await.expect("channel");
    let e = CivilAffairsServiceClient::new(anonymous).list_households(list(TOWNSHIP)).await.expect_err("no session");
    assert_eq!(e.code(), Code::Unauthenticated);

    // Unknown methods, and the departments' adapters, are not reachable from outside.
    let e = call(caseworker.clone(), "/dibao.civil_affairs.v1.CivilAffairsService/DropEverything")
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), Code::Unimplemented);
    let e = call(caseworker.clone(), "/dibao.department.v1.DepartmentService/Query").await.expect_err("adapters");
    assert_eq!(e.code(), Code::PermissionDenied);
    // A method served by every service needs the service named.
    let e = call(caseworker.clone(), "/dibao.ops.v1.OpsService/GetPipelineStatus").await.expect_err("which service");
    assert_eq!(e.code(), Code::InvalidArgument);

    // Health answers anyone; reflection only operators.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
        .domain_name("localhost");
    let plain = tonic::transport::Endpoint::from_shared(format!("https://{}", gw.addr))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    let health = tonic_health::pb::health_client::HealthClient::new(plain)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let reflect = |channel: CallerChannel| async move {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await?
            .into_inner();
        stream.message().await.map(|m| m.is_some())
    };
    assert_eq!(reflect(caseworker.clone()).await.expect_err("caseworker").code(), Code::PermissionDenied);
    let operator = gw.officer("operator", &[OfficerRole::SystemOperator], "220000").await;
    assert!(reflect(operator.clone()).await.expect("operator"));

    // The operator names the service whose pipeline they look at.
    let token = gw.token("operator-2", &[OfficerRole::SystemOperator], "220000").await;
    let mut ops =
        dibao_proto::ops::v1::ops_service_client::OpsServiceClient::new(gw.channel_to(&token, "civil-affairs").await);
    ops.get_pipeline_status(dibao_proto::ops::v1::GetPipelineStatusRequest {}).await.expect("civil affairs' pipeline");
    let mut nowhere =
        dibao_proto::ops::v1::ops_service_client::OpsServiceClient::new(gw.channel_to(&token, "elsewhere").await);
    let e = nowhere
        .get_pipeline_status(dibao_proto::ops::v1::GetPipelineStatusRequest {})
        .await
        .expect_err("no such service");
    assert_eq!(e.code(), Code::InvalidArgument);

    // Prometheus counts every call by method and outcome.
    let text = metrics(port).await;
    for line in [
        "dibao_gateway_calls_total{method=\"/dibao.civil_affairs.v1.CivilAffairsService/ListHouseholds\",outcome=\"forwarded\"} 2",
        "dibao_gateway_calls_total{method=\"/dibao.civil_affairs.v1.CivilAffairsService/ListHouseholds\",outcome=\"unauthenticated\"} 1",
        "dibao_gateway_calls_total{method=\"/dibao.civil_affairs.v1.CivilAffairsService/DropEverything\",outcome=\"unknown_method\"} 1",
        "dibao_gateway_logins_total{outcome=\"ok\"}",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    drop(env);
}

/// A departmental system's channel to the gateway: its certificate from
/// `external` (or none), its own officers' assertions made at `desk` (or none).
async fn system_channel(
    gw: &Gateway,
    cert: Option<&dibao_ops_tools::devpki::PemPair>,
    credentials: dibao_platform::runtime::server::Credentials,
) -> Result<CallerChannel, tonic::transport::Error> {
    let ca_pem = std::fs::read(&gw.ca).expect("ca");
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
        .domain_name("localhost");
    if let Some(pair) = cert {
        tls = tls.identity(tonic::transport::Identity::from_pem(&pair.cert, &pair.key));
    }
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://{}", gw.addr))?.tls_config(tls)?.connect().await?;
    Ok(tonic::service::interceptor::InterceptedService::new(channel, credentials))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departmental_systems_come_with_their_own_ca_methods_division_rate_and_officers() {
    use dibao_ops_tools::devpki::DevCa;
    use dibao_platform::trust::officer::OfficerSigner;
    let env = TestEnv::start().await;
    // The provincial social-assistance system: a certificate from the
    // province's external CA, and its own key as an issuer of its officers'
    // assertions, for the county only.
    let external = DevCa::generate("省级部门系统CA").expect("external CA");
    std::fs::write(env.certs.join("external-ca.pem"), &external.pem.cert).expect("external ca");
    let system_cert = external.issue("social-assistance").expect("system certificate");
    let signer = Arc::new(
        OfficerSigner::from_pkcs8("social-assistance", "sa-1", &OfficerSigner::generate_pkcs8()).expect("system key"),
    );
    let issuers = env.certs.join("officer-issuers");
    let mut lines = std::fs::read_to_string(&issuers).expect("issuers");
    lines.push_str(&signer.trusted_issuer_line(COUNTY));
    std::fs::write(&issuers, lines).expect("issuers");
    let civil = spawn_with::<Civil>(&env, Spawn::default()).await;
    type App = dibao_gateway::Application;
    let how = gateway::spawn_vars(&env, &[("civil-affairs", civil.addr)])
        .var::<App>("PUBLIC__EXTERNAL_CA", env.certs.join("external-ca.pem").display().to_string())
        .var::<App>("SYSTEMS__SOCIAL__IDENTITY", "social-assistance")
        .var::<App>("SYSTEMS__SOCIAL__METHODS", "/dibao.civil_affairs.v1.CivilAffairsService/ListHouseholds")
        .var::<App>("SYSTEMS__SOCIAL__DIVISION", COUNTY)
        .var::<App>("SYSTEMS__SOCIAL__RATE_PER_SECOND", "5");
    let gw = gateway::start_with(&env, how).await;
    let desk = |division: &str, audience: &str| {
        dibao_tests::Desk::new(signer.clone(), audience, dibao_tests::claims(OfficerRole::TownshipCaseworker, division))
            .credentials()
    };

    // Its caseworker of the township lists the township.
    let mut system = CivilAffairsServiceClient::new(
        system_channel(&gw, Some(&system_cert), desk(TOWNSHIP, "civil-affairs")).await.expect("connects"),
    );
    system.list_households(list(TOWNSHIP)).await.expect("its officer, its method, its division");
    // A method it is not allowed.
    let e = system.get_household(ca::GetHouseholdRequest { household_id: uuid::Uuid::nil().to_string() }).await;
    assert_eq!(e.expect_err("not its method").code(), Code::PermissionDenied);
    // An officer outside its scope as an issuer, and an assertion for another service.
    let mut outside = CivilAffairsServiceClient::new(
        system_channel(&gw, Some(&system_cert), desk("220582101", "civil-affairs")).await.expect("connects"),
    );
    let e = outside.list_households(list("220582101")).await.expect_err("outside");
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("签发方无权"), "{}", e.message());
    let mut misaddressed = CivilAffairsServiceClient::new(
        system_channel(&gw, Some(&system_cert), desk(TOWNSHIP, "poverty-alleviation")).await.expect("connects"),
    );
    assert_eq!(misaddressed.list_households(list(TOWNSHIP)).await.expect_err("audience").code(), Code::Unauthenticated);
    // No officer at all.
    let none = dibao_platform::runtime::server::Credentials::none();
    let mut bare =
        CivilAffairsServiceClient::new(system_channel(&gw, Some(&system_cert), none).await.expect("connects"));
    assert_eq!(bare.list_households(list(TOWNSHIP)).await.expect_err("no officer").code(), Code::Unauthenticated);
    // A certificate of the external CA the gateway does not know.
    let stranger = external.issue("someone-else").expect("certificate");
    let mut unknown = CivilAffairsServiceClient::new(
        system_channel(&gw, Some(&stranger), desk(TOWNSHIP, "civil-affairs")).await.expect("connects"),
    );
    assert_eq!(unknown.list_households(list(TOWNSHIP)).await.expect_err("unregistered").code(), Code::PermissionDenied);
    // The mesh's own CA is not the external one: a mesh certificate gets no answer.
    let mesh_cert = dibao_ops_tools::devpki::PemPair {
        cert: std::fs::read_to_string(env.certs.join("civil-affairs.pem")).expect("pem"),
        key: std::fs::read_to_string(env.certs.join("civil-affairs.key")).expect("key"),
    };
    let refused = match system_channel(&gw, Some(&mesh_cert), desk(TOWNSHIP, "civil-affairs")).await {
        Err(_) => true,
        Ok(channel) => CivilAffairsServiceClient::new(channel).list_households(list(TOWNSHIP)).await.is_err(),
    };
    assert!(refused, "a certificate of the mesh CA is refused at the gateway");

    // Five calls a second: a burst beyond it is refused, not queued.
    let mut limited = 0;
    for _ in 0..12 {
        if let Err(e) = system.list_households(list(TOWNSHIP)).await {
            assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
            limited += 1;
        }
    }
    assert!(limited > 0, "the rate limit held");
}

/// An ES256 ID token of the test's identity platform.
fn id_token(key: &ring::signature::EcdsaKeyPair, kid: &str, claims: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let header = serde_json::json!({ "alg": "ES256", "kid": kid, "typ": "JWT" });
    let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = key.sign(&ring::rand::SystemRandom::new(), signed.as_bytes()).expect("sign");
    format!("{signed}.{}", b64(signature.as_ref()))
}

fn ec_key() -> ring::signature::EcdsaKeyPair {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_of_the_identity_platform_log_in_with_its_id_tokens() {
    use base64::Engine;
    use ring::signature::KeyPair;
    let env = TestEnv::start().await;
    // The identity platform's signing key, published in a JWKS the gateway reads.
    let key = ec_key();
    let point = key.public_key().as_ref();
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let jwks = serde_json::json!({ "keys": [
        { "kty": "EC", "crv": "P-256", "kid": "idp-1", "use": "sig", "alg": "ES256", "x": b64(&point[1..33]), "y": b64(&point[33..]) }
    ]});
    let jwks_path = env.certs.join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).expect("jwks");
    let civil = spawn_with::<Civil>(&env, Spawn::default()).await;
    type App = dibao_gateway::Application;
    let how = gateway::spawn_vars(&env, &[("civil-affairs", civil.addr)])
        .var::<App>("OIDC__ISSUER", "https://idp.gov.test")
        .var::<App>("OIDC__AUDIENCE", "dibao-gateway")
        .var::<App>("OIDC__JWKS_URL", format!("file://{}", jwks_path.display()));
    let gw = gateway::start_with(&env, how).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |aud: &str, exp: i64| {
        serde_json::json!({
            "iss": "https://idp.gov.test", "aud": aud, "sub": "u-12345", "name": "统一认证用户",
            "iat": now, "exp": exp, "dibao_roles": ["township_caseworker"], "dibao_division": TOWNSHIP
        })
    };
    let login = |token: String| {
        let url = format!("https://{}/api/oidc/login", gw.addr);
        let ca = gw.ca.clone();
        async move {
            let body = serde_json::json!({ "id_token": token });
            let (status, body) = dibao_gateway::https::post_json(&url, Some(&ca), &body, None).await.expect("answer");
            (status.as_u16(), serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default())
        }
    };

    let (status, session) = login(id_token(&key, "idp-1", claims("dibao-gateway", now + 300))).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["officer"]["officer_id"], "oidc:u-12345");
    assert_eq!(session["officer"]["division"], TOWNSHIP);
    let token = session["token"].as_str().expect("token").to_owned();
    let mut civil = CivilAffairsServiceClient::new(gw.channel(&token).await);
    civil.list_households(list(TOWNSHIP)).await.expect("the platform's caseworker in their township");
    assert_eq!(civil.list_households(list("220581102")).await.expect_err("elsewhere").code(), Code::PermissionDenied);

    // Another audience, an expired token, another key, a key the JWKS does not hold.
    assert_eq!(login(id_token(&key, "idp-1", claims("someone-else", now + 300))).await.0, 401);
    assert_eq!(login(id_token(&key, "idp-1", claims("dibao-gateway", now - 3600))).await.0, 401);
    assert_eq!(login(id_token(&ec_key(), "idp-1", claims("dibao-gateway", now + 300))).await.0, 401);
    let (status, body) = login(id_token(&key, "idp-9", claims("dibao-gateway", now + 300))).await;
    assert_eq!(status, 401, "{body}");
    // Nor is a token tampered with after signing accepted.
    let good = id_token(&key, "idp-1", claims("dibao-gateway", now + 300));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims("dibao-gateway", now + 300).to_string().replace(TOWNSHIP, "220581102").as_bytes());
    assert_eq!(login(parts.join(".")).await.0, 401);
}
