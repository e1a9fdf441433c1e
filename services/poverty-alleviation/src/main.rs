use std::sync::Arc;

use dibao_platform::clock::SystemClock;
use dibao_platform::shutdown::Shutdown;
use dibao_platform::telemetry;
use dibao_poverty_alleviation::startup::{self, Application};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match startup::load_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("poverty-alleviation: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let _telemetry = match telemetry::init(startup::SERVICE, &settings.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("poverty-alleviation: telemetry: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = match Application::build(settings, Arc::new(SystemClock), Shutdown::on_signals()).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("poverty-alleviation: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("poverty-alleviation listening on {}", app.addr);
    let served = app.server.await;
    // The relay flushes the producer once the stop signal reaches it.
    if let Some(relay) = app.relay {
        let _ = relay.await;
    }
    match served {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        other => {
            eprintln!("poverty-alleviation: server stopped: {other:?}");
            std::process::ExitCode::FAILURE
        }
    }
}
