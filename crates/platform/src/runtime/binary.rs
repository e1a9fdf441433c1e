//! What every service's binary does, in one place: read the settings, start
//! telemetry, build the application with the system clock and a stop on
//! SIGTERM/SIGINT, then wait for the gRPC server to stop and the outbox
//! relay and the access log to flush. `main.rs` only says how to build its application.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::runtime::clock::{Clock, SystemClock};
use crate::runtime::settings::{SettingsError, TelemetrySettings};
use crate::runtime::shutdown::Shutdown;
use crate::runtime::telemetry;

/// A built application as its binary waits on it.
pub struct Started {
    pub addr: SocketAddr,
    pub server: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The outbox relay, when this process runs it: awaited after the
    /// server, so it flushes what the last calls wrote.
    pub relay: Option<JoinHandle<()>>,
    /// Said after the service's name in the "listening" line, e.g. which department.
    pub detail: String,
    /// The service's access log, when it keeps one: flushed last, so the
    /// outcomes of the last queries are not lost with the process.
    pub access_log: Option<crate::trust::access_log::AccessLog>,
}

impl Started {
    /// A service listening on `addr`, with its outbox relay if it runs one.
    pub fn new(
        addr: SocketAddr,
        server: JoinHandle<Result<(), tonic::transport::Error>>,
        relay: Option<JoinHandle<()>>,
    ) -> Self {
        Self { addr, server, relay, detail: String::new(), access_log: None }
    }

    pub fn with_detail(self, detail: String) -> Self {
        Self { detail, ..self }
    }

    pub fn with_access_log(self, log: crate::trust::access_log::AccessLog) -> Self {
        Self { access_log: Some(log), ..self }
    }
}

/// Runs a service until its server stops. Every failure is printed with
/// the service's name; the exit code is success only for a clean stop.
pub async fn run<S, F, Fut>(
    service: &str,
    settings: Result<S, SettingsError>,
    telemetry_of: fn(&S) -> &TelemetrySettings,
    build: F,
) -> ExitCode
where
    F: FnOnce(S, Arc<dyn Clock>, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<Started>>,
{
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{service}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match telemetry::init(service, telemetry_of(&settings)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{service}: telemetry: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let started = match build(settings, Arc::new(SystemClock), Shutdown::on_signals()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{service}: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("{service}{} listening on {}", started.detail, started.addr);
    let served = started.server.await;
    if let Some(relay) = started.relay {
        let _ = relay.await;
    }
    if let Some(log) = started.access_log {
        match tokio::time::timeout(std::time::Duration::from_secs(10), log.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("{service}: access log not flushed: {e}"),
            Err(_) => eprintln!("{service}: access log not flushed within 10 s"),
        }
    }
    match served {
        Ok(Ok(())) => ExitCode::SUCCESS,
        other => {
            eprintln!("{service}: server stopped: {other:?}");
            ExitCode::FAILURE
        }
    }
}
