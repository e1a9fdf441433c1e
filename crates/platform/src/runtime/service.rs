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
use crate::runtime::access::{Gate, OfficerTrust, Rule, Rules};
use crate::runtime::clock::Clock;
use crate::runtime::server::{RunningServer, ServerBuilder};
use crate::runtime::settings::{self, PlatformSettings, Settings, SettingsError, Validate};
use crate::runtime::shutdown::Shutdown;
use crate::runtime::tls::TlsMaterial;
use crate::runtime::workers::{self, Workers};
use crate::store::db::{self, Migration};
use crate::trust::access_log::{self, AccessLog};
use crate::trust::history::History;
use crate::trust::officer::{Issuers, ReplayGuard};

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
    /// Where its metrics are served, if they are.
    pub metrics: Option<SocketAddr>,
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
    /// A service serving as `running` says, with the workers it runs.
    pub fn new(running: RunningServer, workers: Workers) -> Self {
        Self {
            addr: running.addr,
            server: running.handle,
            metrics: running.metrics,
            relay: workers.relay,
            inbox: workers.inbox,
            detail: String::new(),
            access_log: None,
        }
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

/// What a service is made of, for [`Base::prepare`].
pub struct Plan<'a> {
    /// Its name: the audience its officer assertions must name.
    pub name: &'static str,
    pub migrations: &'a [Migration],
    /// Migrations of the platform's parts it keeps in its schema beyond the
    /// outbox, inbox and access log (the officials' registry).
    pub also: &'a [db::Component<'a>],
    /// The topic its outbox writes, if it publishes.
    pub writes: Option<Topic>,
    /// The topics its inbox reads.
    pub reads: &'a [Topic],
    /// Its access table: who may call each method.
    pub access: &'static [Rule],
}

/// What every service of the mesh starts from.
pub struct Base {
    pub pool: Pool,
    pub tls: TlsMaterial,
    pub settings: PlatformSettings,
    gate: Gate,
    own_topic: Option<String>,
    inbox_topics: Vec<String>,
    access_log: Option<AccessLog>,
}

impl Base {
    /// Connects and migrates, checks the broker and creates every topic up
    /// front (an inbox reads the others' even before they have written),
    /// reads the TLS material and the access policy.
    pub async fn prepare(
        settings: &PlatformSettings,
        plan: Plan<'_>,
        clock: Arc<dyn Clock>,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Self> {
        settings.divisions.load()?;
        let mut components = vec![("service", plan.migrations), ("access-log", access_log::MIGRATIONS)];
        components.extend_from_slice(plan.also);
        let pool = db::connect_and_migrate(&settings.database, &components).await?;
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
        let gate = Gate::new(
            Rules::new(plan.access),
            officer_trust(settings, plan.name, &pool, clock, shutdown, plan.access)?,
        );
        Ok(Self {
            pool,
            tls: TlsMaterial::load(&settings.tls)?,
            gate,
            settings: settings.clone(),
            own_topic,
            inbox_topics,
            access_log: None,
        })
    }

    /// The service's access log (migrated and its writer started); its
    /// server then also answers for a person's access history.
    pub async fn access_log(&mut self) -> anyhow::Result<AccessLog> {
        if let Some(log) = &self.access_log {
            return Ok(log.clone());
        }
        // The writer has a connection of its own: a handler awaits its
        // record while holding one of the service's, and with every one of
        // those held (as many readers at once as the pool is large) a writer
        // sharing the pool would wait for them, and they for it.
        let writer =
            db::connect(&crate::runtime::settings::DatabaseSettings { pool_size: 1, ..self.settings.database.clone() })
                .await?;
        let log = AccessLog::start(writer);
        self.access_log = Some(log.clone());
        Ok(log)
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
        let builder = ServerBuilder::new(self.tls.clone(), self.gate.clone(), Some(ops))
            .metrics(self.settings.server.metrics_listen);
        Ok(match &self.access_log {
            Some(log) => builder.add_service(History::server(self.pool.clone(), log.clone())),
            None => builder,
        })
    }
}

/// How a service proves officers: the issuers its settings name, its name
/// as the audience, the ids it has seen. A service whose table admits
/// officers must name its issuers.
pub fn officer_trust(
    settings: &PlatformSettings,
    name: &str,
    pool: &deadpool_postgres::Pool,
    clock: Arc<dyn Clock>,
    shutdown: &Shutdown,
    access: &[Rule],
) -> anyhow::Result<Option<OfficerTrust>> {
    let Some(path) = &settings.trust.officer_issuers else {
        anyhow::ensure!(
            access.iter().all(|r| r.for_officers.is_empty()),
            "trust.officer_issuers is required: {name} admits officers' calls, proven by their issuers' keys"
        );
        return Ok(None);
    };
    Ok(Some(OfficerTrust {
        issuers: Arc::new(Issuers::load(path)?),
        audience: name.to_owned(),
        replay: ReplayGuard::start(pool.clone(), shutdown.clone()),
        clock,
    }))
}
