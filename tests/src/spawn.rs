//! One way to start any service of the mesh in a test: [`TestEnv`] holds
//! what a test's services share (a fresh database, a Tansu broker of the
//! test's own, a development CA with every mesh identity's certificate, a
//! random topic prefix, one stop for all), [`spawn`] starts a service on it
//! on port 0 through the same `Service::build` its binary runs, and a
//! [`Desk`] calls a service as an officer: every call carries a fresh
//! assertion the test's gateway key signed, as the gateway's would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::runtime::clock::{Clock, SystemClock};
use dibao_platform::runtime::server::{CallerChannel, Credentials, connect};
use dibao_platform::runtime::service::{Service, Started};
use dibao_platform::runtime::settings::{Settings, env_prefix};
use dibao_platform::runtime::shutdown::{Shutdown, ShutdownTrigger};
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::trust::officer::{Claims, METADATA_KEY, OfficerSigner};
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::types::DivisionCode;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Broker, TestDb, random_prefix};

/// Every identity of the mesh a test may call as or start a service as.
pub const IDENTITIES: &[&str] = &[
    "civil-affairs",
    "poverty-alleviation",
    "verification-hub",
    "roster-comparison",
    "gateway",
    "ops",
    "social-assistance",
    "poverty-information-system",
    "adapter-public-security",
    "adapter-human-resources",
    "adapter-housing",
    "adapter-commerce",
    "adapter-bank",
    "adapter-tax",
    "adapter-disability-federation",
    "adapter-medical-insurance",
    "department-frontend",
];

/// What a test's services share.
pub struct TestEnv {
    pub db: TestDb,
    pub broker: Broker,
    pub certs: PathBuf,
    pub prefix: String,
    /// The gateway's officer-assertion key, which every service trusts.
    pub issuer: Arc<OfficerSigner>,
    stop: ShutdownTrigger,
    shutdown: Shutdown,
}

impl TestEnv {
    /// A fresh database, a broker, certificates and a topic prefix.
    pub async fn start() -> Self {
        let broker = Broker::start().await.expect("broker");
        let db = TestDb::create().await.expect("database");
        let certs = std::env::temp_dir().join(format!("dibao-test-certs-{}", uuid::Uuid::new_v4().simple()));
        DevCa::generate("dibao-mesh test CA").expect("ca").write_all(&certs, IDENTITIES).expect("certificates");
        Self::on(db, broker, certs, random_prefix())
    }

    /// Services started again on what an earlier environment left (its
    /// database, broker, certificates and topics), with a stop of their own.
    pub fn on(db: TestDb, broker: Broker, certs: PathBuf, prefix: String) -> Self {
        let (stop, shutdown) = Shutdown::new();
        let issuer = Arc::new(dibao_ops_tools::devpki::officer_issuer(&certs).expect("officer issuer key"));
        Self { db, broker, certs, prefix, issuer, stop, shutdown }
    }

    /// Stops every service started on this environment, gracefully.
    pub fn stop(&self) {
        self.stop.trigger();
    }

    /// The stop every service of this environment watches.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// What an environment leaves for [`TestEnv::on`] once its services stopped.
    pub fn into_parts(self) -> (TestDb, Broker, PathBuf, String) {
        (self.db, self.broker, self.certs, self.prefix)
    }

    /// The environment of `service` on this database (schema: its name with
    /// `_`), broker and certificates, as its binary reads it.
    pub fn vars(&self, service: &str) -> HashMap<String, String> {
        crate::service_env(service, &self.db, &service.replace('-', "_"), &self.broker, &self.prefix, &self.certs)
            .into_iter()
            .chain([
                (format!("{}__SERVER__LISTEN", env_prefix(service)), "127.0.0.1:0".to_owned()),
                // Every service a test starts serves its metrics, as deployed.
                (format!("{}__SERVER__METRICS_LISTEN", env_prefix(service)), "127.0.0.1:0".to_owned()),
            ])
            .collect()
    }

    /// A desk calling `audience` (a service's name) as an officer of `role`
    /// serving `division`, on the system clock.
    pub fn desk(&self, audience: &str, role: OfficerRole, division: &str) -> Desk {
        Desk::new(self.issuer.clone(), audience, claims(role, division))
    }

    /// A channel to `addr` as the gateway, every call made at `desk`.
    pub async fn officer_channel(&self, addr: SocketAddr, desk: Desk) -> OfficerChannel {
        self.desk_channel("gateway", addr, desk).await
    }

    /// A channel to `addr` as system `identity`, every call made at `desk`.
    pub async fn desk_channel(&self, identity: &str, addr: SocketAddr, desk: Desk) -> OfficerChannel {
        InterceptedService::new(self.channel(identity, addr).await, desk.credentials())
    }

    /// The certificate and key of `identity`, with the CA.
    pub fn tls(&self, identity: &str) -> TlsMaterial {
        tls_in(&self.certs, identity)
    }

    /// An mTLS channel to `addr` as `identity`.
    pub async fn channel(&self, identity: &str, addr: SocketAddr) -> Channel {
        connect(&self.tls(identity), &addr.to_string(), "localhost").await.expect("channel")
    }

    /// The full name of topic `name` in this environment.
    pub fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }
}

/// The certificate and key of `identity` in `certs`, with the CA.
pub fn tls_in(certs: &Path, identity: &str) -> TlsMaterial {
    let read = |f: &str| std::fs::read_to_string(certs.join(f)).expect("pem");
    TlsMaterial::from_pem(&read("ca.pem"), &read(&format!("{identity}.pem")), &read(&format!("{identity}.key")))
}

/// How [`spawn_with`] starts a service beyond [`TestEnv::vars`].
pub struct Spawn {
    /// Variables set or replaced, as `<SERVICE>__SECTION__KEY`.
    pub vars: Vec<(String, String)>,
    pub clock: Arc<dyn Clock>,
}

impl Default for Spawn {
    fn default() -> Self {
        Self { vars: Vec::new(), clock: Arc::new(SystemClock) }
    }
}

impl Spawn {
    /// Sets `<SERVICE>__{key}` (`key` as `SECTION__KEY`) for service `S`.
    pub fn var<S: Service>(mut self, key: &str, value: impl Into<String>) -> Self {
        self.vars.push((format!("{}__{key}", env_prefix(S::NAME)), value.into()));
        self
    }

    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }
}

/// A service started in this process.
pub struct TestApp {
    pub addr: SocketAddr,
    pub started: Started,
}

impl TestApp {
    /// An mTLS channel to it as `identity`.
    pub async fn channel(&self, env: &TestEnv, identity: &str) -> Channel {
        env.channel(identity, self.addr).await
    }
}

/// Starts service `S` on `env` with its defaults and the system clock.
pub async fn spawn<S: Service>(env: &TestEnv) -> TestApp {
    spawn_with::<S>(env, Spawn::default()).await
}

/// Starts service `S` on `env` as `how` says.
pub async fn spawn_with<S: Service>(env: &TestEnv, how: Spawn) -> TestApp {
    let settings = settings_of::<S>(env, &how.vars);
    let started = S::build(settings, how.clock, env.shutdown()).await.unwrap_or_else(|e| panic!("{}: {e:#}", S::NAME));
    TestApp { addr: started.addr, started }
}

/// The settings `S` would start with on `env`, with `vars` set or replaced.
pub fn settings_of<S: Service>(env: &TestEnv, vars: &[(String, String)]) -> Settings<S::Own> {
    let mut all = env.vars(S::NAME);
    all.extend(vars.iter().cloned());
    S::settings_from(&all).unwrap_or_else(|e| panic!("settings of {}: {e}", S::NAME))
}

/// What the gateway would assert of an officer of `role` serving
/// `division`: one officer per role and division.
pub fn claims(role: OfficerRole, division: &str) -> Claims {
    Claims {
        officer_id: format!("{}-{division}", role.as_str_name().trim_start_matches("OFFICER_ROLE_").to_lowercase()),
        name: "张经办".to_owned(),
        roles: vec![role],
        division: DivisionCode::parse(division).expect("a division code"),
        session_id: "test-session".to_owned(),
        identity_number: None,
    }
}

/// `message` as a call of the officer `claims` names, whatever the desk's own.
pub fn by<T>(claims: Claims, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(claims);
    request
}

/// `message` as a call of an officer of `role` serving `division`.
pub fn officer<T>(role: OfficerRole, division: &str, message: T) -> tonic::Request<T> {
    by(claims(role, division), message)
}

/// A channel whose calls carry an officer's assertion.
pub type OfficerChannel = CallerChannel;

/// Where an officer works: each call it makes carries a fresh assertion,
/// signed with the test's gateway key, for its audience — about its own
/// officer, or the one a call names ([`officer`], [`by`]).
#[derive(Clone)]
pub struct Desk {
    signer: Arc<OfficerSigner>,
    audience: String,
    claims: Arc<Claims>,
    clock: Arc<dyn Clock>,
}

impl Desk {
    /// A desk signing with `signer` for `audience`, as the officer `claims` names, on the system clock.
    pub fn new(signer: Arc<OfficerSigner>, audience: &str, claims: Claims) -> Self {
        Self { signer, audience: audience.to_owned(), claims: Arc::new(claims), clock: Arc::new(SystemClock) }
    }

    /// The same desk on `clock` (the service's, when the test moves it).
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// The same desk for another officer.
    pub fn claims(self, claims: Claims) -> Self {
        Self { claims: Arc::new(claims), ..self }
    }

    /// The encoded assertion a call of `claims` carries now.
    pub fn assertion(&self, claims: &Claims) -> Vec<u8> {
        let minted = self.signer.mint(claims, &self.audience, self.clock.now(), std::time::Duration::from_secs(120));
        OfficerSigner::encode(&minted)
    }
}

impl Desk {
    /// What each call made at this desk carries.
    pub fn credentials(self) -> Credentials {
        Credentials::from_fn(move |metadata, extensions| {
            let bytes = match extensions.get::<Claims>() {
                Some(claims) => self.assertion(claims),
                None => self.assertion(&self.claims),
            };
            metadata.insert_bin(METADATA_KEY, tonic::metadata::MetadataValue::from_bytes(&bytes));
        })
    }
}
