//! One way to start any service of the mesh in a test: [`TestEnv`] holds
//! what a test's services share (a fresh database, a Tansu broker of the
//! test's own, a development CA with every mesh identity's certificate, a
//! random topic prefix, one stop for all), [`spawn`] starts a service on it
//! on port 0 through the same `Service::build` its binary runs, and
//! [`officer`] is the signature of an officer of a role and a division.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::runtime::clock::{Clock, SystemClock};
use dibao_platform::runtime::server::connect;
use dibao_platform::runtime::service::{Service, Started};
use dibao_platform::runtime::settings::{Settings, env_prefix};
use dibao_platform::runtime::shutdown::{Shutdown, ShutdownTrigger};
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_proto::common::v1::{DivisionCode, OfficerRole, OfficerSignature};
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
    "department-frontend",
];

/// What a test's services share.
pub struct TestEnv {
    pub db: TestDb,
    pub broker: Broker,
    pub certs: PathBuf,
    pub prefix: String,
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
        Self { db, broker, certs, prefix, stop, shutdown }
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
            .chain([(format!("{}__SERVER__LISTEN", env_prefix(service)), "127.0.0.1:0".to_owned())])
            .collect()
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

/// The signature of an officer of `role` serving `division`.
pub fn officer(role: OfficerRole, division: &str) -> Option<OfficerSignature> {
    Some(OfficerSignature {
        officer_id: format!("officer-{}", role as i32),
        officer_name: "张经办".into(),
        role: role as i32,
        division: Some(DivisionCode { code: division.into() }),
        signed_at: None,
    })
}
