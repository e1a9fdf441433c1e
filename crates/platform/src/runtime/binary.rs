//! What every service's binary does, in one place: read the settings, start
//! telemetry, build the application with the system clock and a stop on
//! SIGTERM/SIGINT, then wait for the gRPC server to stop and the outbox
//! relay and the access log to flush. `main.rs` only says how to build its application.

use std::process::ExitCode;
use std::sync::Arc;

use crate::runtime::clock::SystemClock;
use crate::runtime::service::Service;
use crate::runtime::shutdown::Shutdown;
use crate::runtime::telemetry;

/// Runs service `S` until its server stops. Every failure is printed with
/// the service's name; the exit code is success only for a clean stop.
pub async fn run<S: Service>() -> ExitCode {
    let service = S::NAME;
    let settings = match S::settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{service}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match telemetry::init(service, &settings.platform.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{service}: telemetry: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let started = match S::build(settings, Arc::new(SystemClock), Shutdown::on_signals()).await {
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
