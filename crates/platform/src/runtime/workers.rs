//! The background workers a service runs beside its gRPC server: the outbox
//! relay and the inbox consumer, each unless the settings (`run.relay`,
//! `run.inbox`) give it to a process of its own.

use deadpool_postgres::Pool;
use tokio::task::JoinHandle;

use crate::events::inbox::{self, Handler, InboxConfig};
use crate::events::outbox;
use crate::runtime::settings::PlatformSettings;
use crate::runtime::shutdown::Shutdown;

pub struct Workers {
    pub relay: Option<JoinHandle<()>>,
    pub inbox: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Workers {
    /// None: a service without a broker (the adapters).
    pub fn none() -> Self {
        Self { relay: None, inbox: None }
    }
}

/// Starts the relay of the service's outbox and its inbox on `inbox_topics`
/// with `handler`, as the settings say.
pub fn spawn<H: Handler>(
    pool: &Pool,
    settings: &PlatformSettings,
    handler: H,
    inbox_topics: Vec<String>,
    shutdown: &Shutdown,
) -> anyhow::Result<Workers> {
    let kafka = settings.kafka()?;
    let relay = spawn_relay(pool, settings, shutdown)?.relay;
    let inbox = settings.run.inbox.then(|| {
        tokio::spawn(inbox::run_inbox(
            pool.clone(),
            kafka.clone(),
            handler,
            InboxConfig { topics: inbox_topics, max_batch: 500 },
            shutdown.clone(),
        ))
    });
    Ok(Workers { relay, inbox })
}

/// The relay alone, as the settings say: a service that consumes nothing.
pub fn spawn_relay(pool: &Pool, settings: &PlatformSettings, shutdown: &Shutdown) -> anyhow::Result<Workers> {
    let kafka = settings.kafka()?;
    let relay = settings.run.relay.then(|| {
        tokio::spawn(outbox::run_relay(pool.clone(), kafka.clone(), outbox::RelayConfig::default(), shutdown.clone()))
    });
    Ok(Workers { relay, inbox: None })
}
