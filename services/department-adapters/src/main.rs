use std::sync::Arc;

use dibao_department_adapters::startup::{self, Application};
use dibao_platform::clock::SystemClock;
use dibao_platform::shutdown::Shutdown;
use dibao_platform::telemetry;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match startup::load_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("department-adapter: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let _telemetry = match telemetry::init(startup::SERVICE, &settings.telemetry) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("department-adapter: telemetry: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = match Application::build(settings, Arc::new(SystemClock), Shutdown::on_signals()).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("department-adapter: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("department-adapter ({}) listening on {}", app.kind.name(), app.addr);
    match app.server.await {
        Ok(Ok(())) => std::process::ExitCode::SUCCESS,
        other => {
            eprintln!("department-adapter: server stopped: {other:?}");
            std::process::ExitCode::FAILURE
        }
    }
}
