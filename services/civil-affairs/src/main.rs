use std::sync::Arc;

use dibao_civil_affairs::startup::{self, Application};
use dibao_platform::clock::SystemClock;
use dibao_platform::shutdown::Shutdown;
use dibao_platform::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match startup::load_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("civil-affairs: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let _telemetry = match telemetry::init(startup::SERVICE, &settings.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("civil-affairs: telemetry: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = match Application::build(settings, Arc::new(SystemClock), Shutdown::on_signals()).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("civil-affairs: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("civil-affairs listening on {}", app.addr);
    let served = app.server.await;
    // The relay flushes the producer once the stop signal reaches it.
    if let Some(relay) = app.relay {
        let _ = relay.await;
    }
    match served {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        other => {
            eprintln!("civil-affairs: server stopped: {other:?}");
            std::process::ExitCode::FAILURE
        }
    }
}
