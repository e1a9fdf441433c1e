//! Synthetic data for development, tests and benchmarks — never part of a
//! deployment: the departments' systems are real in production.
//!
//! Layout:
//! - [`generator`]: the seeded province — divisions, households, members
//!   with valid identity numbers, and their department records (the ground
//!   truth a verification report is checked against);
//! - [`simulator`]: every department's HTTP API served from those records,
//!   with configurable latency, errors and outages;
//! - [`rosters`]: the two rosters cut from the province with every kind of
//!   comparison case planted, and the entries a correct comparison reports.

pub mod generator;
pub mod rosters;
pub mod simulator;

use dibao_platform::runtime::settings::{DatabaseSettings, Validate};
use serde::Deserialize;

/// Settings of the `department-simulator` program (`DEPARTMENT_SIMULATOR__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct SimulatorSettings {
    pub listen: std::net::SocketAddr,
    pub database: DatabaseSettings,
    /// Generate and load this many households at start-up (0: serve what is loaded).
    #[serde(default)]
    pub generate_households: usize,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// PEM certificate chain and key: serve HTTPS, as a department's front
    /// end does (both or neither).
    #[serde(default)]
    pub cert: Option<std::path::PathBuf>,
    #[serde(default)]
    pub key: Option<std::path::PathBuf>,
}

fn default_seed() -> u64 {
    20261123
}

impl Validate for SimulatorSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.database.validate();
        if self.cert.is_some() != self.key.is_some() {
            problems.push("cert and key go together (both for HTTPS, neither for HTTP)".to_owned());
        }
        for (field, path) in [("cert", &self.cert), ("key", &self.key)] {
            if let Some(path) = path.as_ref().filter(|p| !p.is_file()) {
                problems.push(format!("{field}: no file at {}", path.display()));
            }
        }
        problems
    }
}

pub const SIMULATOR_DEFAULTS: &str = r#"
listen = "127.0.0.1:0"
[database]
pool_size = 16
"#;

/// Generates `households` with `seed` and loads their department records;
/// returns the generator's output for callers that need the ground truth.
pub async fn generate_and_load(
    pool: &deadpool_postgres::Pool,
    config: generator::Config,
) -> anyhow::Result<Vec<(generator::Household, Vec<generator::DeptRecord>)>> {
    let all: Vec<_> = generator::Generator::new(config).collect();
    let records: Vec<_> = all.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
    simulator::load(pool, &records).await?;
    Ok(all)
}
