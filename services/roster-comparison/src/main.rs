use std::sync::Arc;

use dibao_platform::clock::SystemClock;
use dibao_platform::shutdown::Shutdown;
use dibao_platform::telemetry;
use dibao_roster_comparison::startup::{self, Application};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match startup::load_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roster-comparison: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let _telemetry = match telemetry::init(startup::SERVICE, &settings.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("roster-comparison: telemetry: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = match Application::build(settings, Arc::new(SystemClock), Shutdown::on_signals()).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("roster-comparison: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("roster-comparison listening on {}", app.addr);
    let served = app.server.await;
    if let Some(relay) = app.relay {
        let _ = relay.await;
    }
    match served {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        other => {
            eprintln!("roster-comparison: server stopped: {other:?}");
            std::process::ExitCode::FAILURE
        }
    }
}
