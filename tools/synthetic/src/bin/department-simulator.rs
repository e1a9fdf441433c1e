//! Serves every department's API from synthetic records (see
//! `dibao_synthetic::simulator`). Settings: `DEPARTMENT_SIMULATOR__LISTEN`,
//! `DEPARTMENT_SIMULATOR__DATABASE__URL`, `…__DATABASE__SCHEMA`, and
//! optionally `…__GENERATE_HOUSEHOLDS` / `…__SEED` to load a province first
//! and `…__CERT` / `…__KEY` (PEM) to serve HTTPS.

use std::process::ExitCode;

use dibao_platform::{runtime::settings, store::db};
use dibao_synthetic::generator::Config;
use dibao_synthetic::simulator::{MIGRATIONS, Simulator};
use dibao_synthetic::{SIMULATOR_DEFAULTS, SimulatorSettings, generate_and_load};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("department-simulator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let s: SimulatorSettings = settings::load("department-simulator", SIMULATOR_DEFAULTS)?;
    let pool = db::connect(&s.database).await?;
    db::migrate(&pool, "simulator", MIGRATIONS).await?;
    if s.generate_households > 0 {
        let all = generate_and_load(&pool, Config::new(s.seed, s.generate_households)).await?;
        println!("loaded the department records of {} households (seed {})", all.len(), s.seed);
    }
    let sim = match (&s.cert, &s.key) {
        (Some(cert), Some(key)) => {
            Simulator::start_https(pool, s.listen, &std::fs::read_to_string(cert)?, &std::fs::read_to_string(key)?)
                .await?
        }
        _ => Simulator::start(pool, s.listen).await?,
    };
    println!("department-simulator listening on {}", sim.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
