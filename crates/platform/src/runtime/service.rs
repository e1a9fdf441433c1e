//! A deployable of the mesh as its binary and its tests start it: the
//! [`Service`] each service crate implements once, and the start-up every
//! service shares ([`Base`]): its schema migrated, its topics created, its
//! TLS and access policy read, its workers and its server.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::events::inbox::Handler;
use crate::events::kafka;
use crate::events::ops::Ops;
use crate::runtime::clock::Clock;
use crate::runtime::server::ServerBuilder;
use crate::runtime::settings::{self, PlatformSettings, Settings, SettingsError, Validate};
use crate::runtime::shutdown::Shutdown;
use crate::runtime::tls::{AccessPolicy, TlsMaterial};
use crate::runtime::workers::{self, Workers};
use crate::store::db::{self, Migration};
use crate::trust::access_log::AccessLog;

/// One deployable of the mesh.
pub trait Service: Send + 'static {
    /// Its name: the prefix of its settings' variables, the start of its log lines.
    const NAME: &'static str;
    /// Its own sections of settings beside the platform's.
    type Own: DeserializeOwned + Validate + Clone + Debug + Send + Sync + 'static;
    /// Their defaults, TOML, read after the platform's.
    const DEFAULTS: &'static str = "";
    /// Whether it has a broker (every service but the adapters).
    const KAFKA: bool = true;

    /// Builds and starts it: listening, its workers running, until `shutdown`.
    fn build(
        settings: Settings<Self::Own>,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> impl Future<Output = anyhow::Result<Started>> + Send;

    /// Its settings from `vars` (tests give them).
    fn settings_from(vars: &HashMap<String, String>) -> Result<Settings<Self::Own>, SettingsError> {
        settings::load_service(Self::NAME, Self::DEFAULTS, Self::KAFKA, vars)
    }

    /// Its settings from the process environment (and its env file).
    fn settings() -> Result<Settings<Self::Own>, SettingsError> {
        Self::settings_from(&std::env::vars().collect())
    }
}

/// A started service as its binary and its tests wait on it.
pub struct Started {
    pub addr: SocketAddr,
    pub server: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The outbox relay, when this process runs it: awaited after the
    /// server, so it flushes what the last calls wrote.
    pub relay: Option<JoinHandle<()>>,
    /// The inbox consumer, when this process runs it.
    pub inbox: Option<JoinHandle<anyhow::Result<()>>>,
    /// Said after the service's name in the "listening" line, e.g. which department.
    pub detail: String,
    /// The service's access log, when it keeps one: flushed last, so the
    /// outcomes of the last queries are not lost with the process.
    pub access_log: Option<AccessLog>,
}

impl Started {
    /// A service listening on `addr`, with the workers it runs.
    pub fn new(addr: SocketAddr, server: JoinHandle<Result<(), tonic::transport::Error>>, workers: Workers) -> Self {
        Self { addr, server, relay: workers.relay, inbox: workers.inbox, detail: String::new(), access_log: None }
    }

    pub fn with_detail(self, detail: String) -> Self {
        Self { detail, ..self }
    }

    pub fn with_access_log(self, log: AccessLog) -> Self {
        Self { access_log: Some(log), ..self }
    }
}

/// A topic as `dibao_proto::topics` names it, with its partitions.
pub type Topic = (&'static str, i32);

/// Who may call what unless the settings' `[access]` says otherwise:
/// method pattern (`/pkg.Service/Method` or `/pkg.Service/*`) and the
/// certificate identities admitted. Every service declares one.
pub type AccessDefaults = &'static [(&'static str, &'static [&'static str])];

/// What a service is made of, for [`Base::prepare`].
pub struct Plan<'a> {
    pub migrations: &'a [Migration],
    /// The topic its outbox writes, if it publishes.
    pub writes: Option<Topic>,
    /// The topics its inbox reads.
    pub reads: &'a [Topic],
    pub access: AccessDefaults,
}

/// What every service of the mesh starts from.
pub struct Base {
    pub pool: Pool,
    pub tls: TlsMaterial,
    pub settings: PlatformSettings,
    policy: AccessPolicy,
    own_topic: Option<String>,
    inbox_topics: Vec<String>,
}

impl Base {
    /// Connects and migrates, checks the broker and creates every topic up
    /// front (an inbox reads the others' even before they have written),
    /// reads the TLS material and the access policy.
    pub async fn prepare(settings: &PlatformSettings, plan: Plan<'_>) -> anyhow::Result<Self> {
        let pool = db::connect_and_migrate(&settings.database, plan.migrations).await?;
        let (mut own_topic, mut inbox_topics) = (None, Vec::new());
        if plan.writes.is_some() || !plan.reads.is_empty() {
            let kafka_settings = settings.kafka()?;
            kafka::check_reachable(kafka_settings, Duration::from_secs(10)).await?;
            own_topic = plan.writes.map(|(name, _)| kafka::topic(kafka_settings, name));
            inbox_topics = plan.reads.iter().map(|(name, _)| kafka::topic(kafka_settings, name)).collect();
            let all: Vec<(String, i32)> = plan
                .writes
                .iter()
                .chain(plan.reads)
                .map(|(name, partitions)| (kafka::topic(kafka_settings, name), *partitions))
                .collect();
            kafka::ensure_topics(kafka_settings, &all).await?;
        }
        Ok(Self {
            pool,
            tls: TlsMaterial::load(&settings.tls)?,
            policy: access_policy(&settings.access, plan.access),
            settings: settings.clone(),
            own_topic,
            inbox_topics,
        })
    }

    /// The full name of the topic this service writes.
    pub fn own_topic(&self) -> String {
        self.own_topic.clone().unwrap_or_default()
    }

    /// Its outbox relay and its inbox (with `handler`), as `run` in the settings says.
    pub fn spawn_workers<H: Handler>(&self, handler: H, shutdown: &Shutdown) -> anyhow::Result<Workers> {
        workers::spawn(&self.pool, &self.settings, handler, self.inbox_topics.clone(), shutdown)
    }

    /// Its outbox relay alone (a service that consumes nothing).
    pub fn spawn_relay(&self, shutdown: &Shutdown) -> anyhow::Result<Workers> {
        workers::spawn_relay(&self.pool, &self.settings, shutdown)
    }

    /// The server with mTLS, the access policy, health, reflection and ops
    /// (with the inbox's lag where the service has one); add its own services.
    pub fn server(&self) -> anyhow::Result<ServerBuilder> {
        let mut ops = Ops::new(self.pool.clone());
        if !self.inbox_topics.is_empty() {
            ops = ops.with_inbox(self.settings.kafka()?.clone(), self.inbox_topics.clone());
        }
        Ok(ServerBuilder::new(self.tls.clone(), self.policy.clone(), Some(ops)))
    }
}

/// The settings' `[access]` over a service's defaults: a pattern the
/// settings name replaces the default's identities for it.
pub fn access_policy(settings: &HashMap<String, Vec<String>>, defaults: AccessDefaults) -> AccessPolicy {
    let mut access = settings.clone();
    for (pattern, identities) in defaults {
        access.entry((*pattern).to_owned()).or_insert_with(|| identities.iter().map(|s| (*s).to_owned()).collect());
    }
    AccessPolicy::from_map(&access)
}
