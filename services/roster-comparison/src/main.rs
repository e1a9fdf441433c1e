use dibao_platform::runtime::binary::{self, Started};
use dibao_roster_comparison::startup::{self, Application};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    binary::run(
        startup::SERVICE,
        startup::load_settings(),
        |s| &s.telemetry,
        |settings, clock, shutdown| async move {
            let app = Application::build(settings, clock, shutdown).await?;
            Ok(Started::new(app.addr, app.server, app.relay))
        },
    )
    .await
}
