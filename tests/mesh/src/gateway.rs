//! The gateway in front of a test's services: started on the test's
//! environment with the services it forwards to, a province administrator
//! bootstrapped into its registry, officers enrolled through the registry's
//! RPC and logged in over HTTPS with their password and authenticator code,
//! as an officer does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dibao_gateway::client;
use dibao_platform::runtime::clock::{Clock, SystemClock};
use dibao_platform::runtime::server::CallerChannel;
use dibao_proto::common::v1::{DivisionCode, OfficerRole};
use dibao_proto::gateway::v1 as pb;
use dibao_proto::gateway::v1::officer_admin_service_client::OfficerAdminServiceClient;
use dibao_tests::{Spawn, TestEnv, spawn_with};

type App = dibao_gateway::Application;

/// An officer of the registry with their credentials.
pub struct Enrolled {
    pub officer_id: String,
    pub password: String,
    pub totp_secret: String,
    /// The last authenticator step used: a code is accepted once.
    last_step: AtomicI64,
}

impl Enrolled {
    pub fn new(officer_id: &str, password: &str, totp_secret: &str) -> Self {
        Self {
            officer_id: officer_id.into(),
            password: password.into(),
            totp_secret: totp_secret.into(),
            last_step: AtomicI64::new(0),
        }
    }

    /// The next code this officer makes will be the last one `other` used (a replay).
    pub fn reuse_last_step_of(&mut self, other: &Enrolled) {
        self.last_step.store(other.last_step.load(Ordering::SeqCst) - 1, Ordering::SeqCst);
    }

    /// A code not used yet, within the gateway's window around `now`.
    pub fn code(&self, now: i64) -> String {
        let step = (now.div_euclid(30) - 1).max(self.last_step.load(Ordering::SeqCst) + 1);
        self.last_step.store(step, Ordering::SeqCst);
        client::totp_code(&self.totp_secret, step * 30).expect("base32 secret")
    }
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub ca: std::path::PathBuf,
    pub clock: Arc<dyn Clock>,
    /// The province's administrator, logged in.
    pub admin_token: String,
    /// Where it serves its metrics.
    pub metrics: Option<SocketAddr>,
}

/// The settings a gateway on `env` needs beyond the environment's, forwarding to `upstreams`.
pub fn spawn_vars(env: &TestEnv, upstreams: &[(&str, SocketAddr)]) -> Spawn {
    let key = env.certs.join("gateway-secret.key");
    if !key.is_file() {
        std::fs::write(&key, dibao_gateway::secrets::random::<32>().expect("random")).expect("secret key");
    }
    let mut how = Spawn::default()
        .var::<App>("OFFICERS__SECRET_KEY", key.display().to_string())
        .var::<App>("ASSERTIONS__SIGNING_KEY", env.certs.join("officer-issuer.pk8").display().to_string())
        .var::<App>("PUBLIC__UPSTREAM_SERVER_NAME", "localhost");
    for (name, addr) in upstreams {
        how = how.var::<App>(&format!("UPSTREAM__{}", name.replace('-', "_").to_ascii_uppercase()), addr.to_string());
    }
    how
}

/// The gateway on `env`, forwarding to `upstreams`, as `how` (from [`spawn_vars`]) says.
pub async fn start_with(env: &TestEnv, how: Spawn) -> Gateway {
    let clock = how.clock.clone();
    let app = spawn_with::<App>(env, how).await;
    // The first administrator, as `dibao-officers bootstrap` makes them.
    let pool = dibao_platform::store::db::connect(&env.db.settings("gateway")).await.expect("gateway db");
    let key = dibao_gateway::secrets::SecretKey::load(&env.certs.join("gateway-secret.key")).expect("key");
    let admin = dibao_gateway::registry::Officer {
        officer_id: "admin-province".into(),
        name: "省级管理员".into(),
        roles: vec![OfficerRole::Administrator],
        division: dibao_proto::types::DivisionCode::parse("220000").expect("division"),
        status: dibao_gateway::registry::Status::Active,
        identity_number: None,
        oidc_subject: None,
        locked_until: None,
    };
    let creds = dibao_gateway::admin::create(&pool, &key, clock.now(), &admin, "bootstrap").await.expect("bootstrap");
    let mut gw = Gateway {
        addr: app.addr,
        ca: env.certs.join("ca.pem"),
        clock,
        admin_token: String::new(),
        metrics: app.started.metrics,
    };
    let enrolled = Enrolled::new(&admin.officer_id, &creds.one_time_password, &creds.totp_secret);
    gw.admin_token = gw.login(&enrolled).await.expect("administrator logs in");
    gw
}

/// The gateway on `env` forwarding to `upstreams`, on the system clock.
pub async fn start(env: &TestEnv, upstreams: &[(&str, SocketAddr)]) -> Gateway {
    start_with(env, spawn_vars(env, upstreams)).await
}

impl Gateway {
    /// Logs `officer` in; the session token, or the gateway's status and message.
    pub async fn login(&self, officer: &Enrolled) -> Result<String, (u16, String)> {
        let code = officer.code(self.clock.now().unix_timestamp());
        client::login(&self.addr.to_string(), &self.ca, &officer.officer_id, &officer.password, &code)
            .await
            .map(|l| l.token)
    }

    /// A channel through the gateway carrying `token`.
    pub async fn channel(&self, token: &str) -> CallerChannel {
        let ca = std::fs::read(&self.ca).expect("ca");
        client::channel(&self.addr.to_string(), &ca, "localhost", token).await.expect("gateway channel")
    }

    /// The same for the methods every service serves, naming `service`.
    pub async fn channel_to(&self, token: &str, service: &str) -> CallerChannel {
        let ca = std::fs::read(&self.ca).expect("ca");
        client::channel_to(&self.addr.to_string(), &ca, "localhost", token, service).await.expect("gateway channel")
    }

    /// The registry's RPC as the province's administrator.
    pub async fn admin(&self) -> OfficerAdminServiceClient<CallerChannel> {
        OfficerAdminServiceClient::new(self.channel(&self.admin_token).await)
    }

    /// Enrols an officer of `roles` serving `division` through the registry's RPC.
    pub async fn enrol(&self, officer_id: &str, name: &str, roles: &[OfficerRole], division: &str) -> Enrolled {
        self.enrol_with(pb::Officer {
            officer_id: officer_id.into(),
            name: name.into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
            division: Some(DivisionCode { code: division.into() }),
            ..Default::default()
        })
        .await
    }

    pub async fn enrol_with(&self, officer: pb::Officer) -> Enrolled {
        let id = officer.officer_id.clone();
        let created = self
            .admin()
            .await
            .create_officer(pb::CreateOfficerRequest { officer: Some(officer) })
            .await
            .expect("officer created")
            .into_inner();
        let creds = created.credentials.expect("credentials");
        Enrolled::new(&id, &creds.one_time_password, &creds.totp_secret)
    }

    /// Enrols and logs in: the officer's session token.
    pub async fn token(&self, officer_id: &str, roles: &[OfficerRole], division: &str) -> String {
        let enrolled = self.enrol(officer_id, "测试经办人", roles, division).await;
        self.login(&enrolled).await.expect("login")
    }

    /// Enrols and logs in: a channel for that officer.
    pub async fn officer(&self, officer_id: &str, roles: &[OfficerRole], division: &str) -> CallerChannel {
        let token = self.token(officer_id, roles, division).await;
        self.channel(&token).await
    }
}

/// The system clock, for a gateway whose test does not move time.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
