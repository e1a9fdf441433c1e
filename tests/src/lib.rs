//! What the end-to-end tests and benchmarks start for real: a fresh
//! Postgres database per test, a Tansu broker process on a free port that
//! can be killed and restarted on its own data, a development CA, and the
//! pipeline probe (`pipeline-probe`) that writes and applies events through
//! the platform's outbox and inbox.
//!
//! Layout:
//! - [`TestDb`]: a database with a random name, dropped by the next run's sweep;
//! - [`Broker`]: a Tansu process with SQLite storage (data survives SIGKILL);
//! - [`probe`]: the probe's schema, writer and handler, shared by the binary and the benchmark.

pub mod probe;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use dibao_platform::settings::{DatabaseSettings, KafkaSettings};
use secrecy::SecretString;
use tokio::process::{Child, Command};

/// Admin URL of the test Postgres server (`DIBAO_TEST_PG_URL`, default the
/// local trust-auth server of the dev machine and CI).
pub fn pg_admin_url() -> String {
    std::env::var("DIBAO_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database with a random name; databases older than an hour are
/// dropped by the next test that creates one.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> anyhow::Result<Self> {
        let admin = pg_admin_url();
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        // The creation time in the name lets each run sweep what crashed
        // or finished runs left behind, without touching running ones.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        for row in client.query("SELECT datname FROM pg_database WHERE datname LIKE 'dibao_test_%'", &[]).await? {
            let old: String = row.get(0);
            let born = old.split('_').nth(2).and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
            if now - born > 3600 {
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)")).await;
            }
        }
        let name = format!("dibao_test_{now}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
        Ok(Self { url: format!("{base}/{name}"), name })
    }

    pub fn settings(&self, schema: &str) -> DatabaseSettings {
        DatabaseSettings { url: SecretString::from(self.url.clone()), schema: schema.to_owned(), pool_size: 8 }
    }

    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// A topic prefix no other test uses.
pub fn random_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Path of the Tansu binary (`TANSU_BIN`, else `tansu` on PATH or in ~/.cargo/bin).
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo = Path::new(&home).join(".cargo/bin/tansu");
    if cargo.is_file() { cargo } else { PathBuf::from("tansu") }
}

/// Settings for a service of the mesh under test: listening on port 0, its
/// own schema of `db`, the broker with `prefix`, certificates `<service>.pem`
/// and `.key` beside `ca.pem` in `certs`.
pub fn service_settings(
    service: &str,
    db: &TestDb,
    schema: &str,
    broker: &Broker,
    prefix: &str,
    certs: &Path,
) -> dibao_platform::settings::PlatformSettings {
    let env = service.to_ascii_uppercase().replace('-', "_");
    let vars: std::collections::HashMap<String, String> = [
        (format!("{env}_ENV_FILE"), "/dev/null".to_owned()),
        (format!("{env}__SERVER__LISTEN"), "127.0.0.1:0".to_owned()),
        (format!("{env}__DATABASE__URL"), db.url.clone()),
        (format!("{env}__DATABASE__SCHEMA"), schema.to_owned()),
        (format!("{env}__KAFKA__BROKERS"), broker.address()),
        (format!("{env}__KAFKA__TOPIC_PREFIX"), prefix.to_owned()),
        (format!("{env}__KAFKA__GROUP_ID"), service.to_owned()),
        (format!("{env}__TLS__CA_CERT"), certs.join("ca.pem").display().to_string()),
        (format!("{env}__TLS__CERT"), certs.join(format!("{service}.pem")).display().to_string()),
        (format!("{env}__TLS__KEY"), certs.join(format!("{service}.key")).display().to_string()),
    ]
    .into_iter()
    .collect();
    dibao_platform::settings::load_from(service, dibao_platform::settings::PLATFORM_DEFAULTS, &vars)
        .expect("settings of a service under test")
}

/// A Tansu broker with SQLite storage in its own directory.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("dibao-broker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut broker = Self { port: free_port(), dir, child: None };
        broker.spawn().await?;
        Ok(broker)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kafka_settings(&self, prefix: &str, group: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: self.address(),
            topic_prefix: prefix.to_owned(),
            group_id: group.to_owned(),
            properties: Default::default(),
        }
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("broker.log"))?;
        let child = Command::new(tansu_bin())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start the Tansu broker ({}): {e}", tansu_bin().display()))?;
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "the Tansu broker did not listen on {} within 5 s; see {}",
            self.port,
            self.dir.join("broker.log").display()
        )
    }

    /// SIGKILL: no flush, no goodbye.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.start_kill()?;
            c.wait().await?;
        }
        Ok(())
    }

    /// Starts again on the same port and data.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.spawn().await
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
