//! The one test harness: what every test starts for real — a fresh
//! Postgres database per test, a Tansu broker process on a free port that
//! can be killed and restarted on its own data, a development CA, any
//! service of the mesh on port 0 — and the pipeline probe
//! (`pipeline-probe`) that writes and applies events through the platform's
//! outbox and inbox. It names no service (every service's own tests use
//! it); the tests that start several services live in `tests/tests/`, the
//! wiring they share in `tests/mesh`.
//!
//! Layout:
//! - [`spawn`]: the one way a test starts a service — [`TestEnv`], [`spawn()`] — and calls it as an officer ([`Desk`], [`officer`]);
//! - [`TestDb`]: a database with a random name, dropped by the next run's sweep;
//! - [`Broker`]: a Tansu process with SQLite storage (data survives SIGKILL);
//! - [`PrivatePostgres`]: a PostgreSQL server of a test's own, to crash and restart;
//! - [`service_binary`]: a binary of the workspace, for tests that run a service as a process;
//! - [`browser`]: Debian's Chromium over WebDriver, for the console's tests;
//! - [`probe`]: the probe's schema, writer and handler, shared by the binary and the benchmark;
//! - `tests/`: every test that starts more than one service, by concern
//!   (`sync`, `sync_faults`, `verification`, `campaign`, `comparison`,
//!   `comparison_planted`, `pipeline_faults`, `access_log`, `mtls`, `trace`, `startup`,
//!   `access_matrix`, `gateway`, `officers`, `commands`).

pub mod browser;
pub mod probe;
pub mod spawn;

pub use spawn::{Desk, OfficerChannel, Spawn, TestApp, TestEnv, by, claims, officer, spawn, spawn_with};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::runtime::settings::{DatabaseSettings, KafkaSettings};
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
        DatabaseSettings {
            url: SecretString::from(self.url.clone()),
            schema: schema.to_owned(),
            pool_size: 8,
            owner_url: None,
            ca_cert: None,
        }
    }

    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }
}

/// Peak resident memory of this process since it started or since the last
/// [`reset_peak_rss`], in MiB (Linux `VmHWM`; 0 elsewhere). For benchmarks.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts a new peak-memory window, so a benchmark can report each phase's
/// own peak (Linux: writing 5 to `/proc/self/clear_refs` resets `VmHWM`).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A free TCP port on 127.0.0.1 for a listener started a little later:
/// below the kernel's ephemeral range, so no connection's local port and no
/// listener on port 0 is given it in the meantime (the tests open hundreds
/// of connections at once).
pub fn free_port() -> u16 {
    use rand::Rng;
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32_768);
    let mut rng = rand::rng();
    for _ in 0..200 {
        let port = rng.random_range(10_000..low.max(10_001));
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// The Prometheus text a metrics listener at `addr` serves.
pub async fn metrics(addr: std::net::SocketAddr) -> String {
    http_get(addr, "/metrics").await
}

/// The whole answer (status line, headers, body) of a plain `GET path` to `addr`.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("listener");
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("answer");
    text
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

/// A binary of the workspace (a service, an import command), as the README's
/// test command builds them before the tests (`cargo build --workspace
/// --bins`): beside the test executable's own directory in the target dir.
pub fn service_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // Test executables live in target/<profile>/deps/.
    let dir = exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is not built: run `cargo build --workspace --bins` before the tests (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The environment of a service of the mesh under test: its own schema of
/// `db`, the broker with `prefix`, certificates `<service>.pem` and `.key`
/// beside `ca.pem` in `certs` and the officer issuers it trusts
/// (`officer-issuers`, see [`dibao_ops_tools::devpki::officer_issuer`]), the
/// shipped division tables, no env file. As the service's binary reads it, for tests that run the binary.
pub fn service_env(
    service: &str,
    db: &TestDb,
    schema: &str,
    broker: &Broker,
    prefix: &str,
    certs: &Path,
) -> Vec<(String, String)> {
    let env = service.to_ascii_uppercase().replace('-', "_");
    vec![
        (format!("{env}_ENV_FILE"), "/dev/null".to_owned()),
        (format!("{env}__DATABASE__URL"), db.url.clone()),
        (format!("{env}__DATABASE__SCHEMA"), schema.to_owned()),
        (format!("{env}__KAFKA__BROKERS"), broker.address()),
        (format!("{env}__KAFKA__TOPIC_PREFIX"), prefix.to_owned()),
        (format!("{env}__KAFKA__GROUP_ID"), service.to_owned()),
        (format!("{env}__TLS__CA_CERT"), certs.join("ca.pem").display().to_string()),
        (format!("{env}__TLS__CERT"), certs.join(format!("{service}.pem")).display().to_string()),
        (format!("{env}__TLS__KEY"), certs.join(format!("{service}.key")).display().to_string()),
        (format!("{env}__TRUST__OFFICER_ISSUERS"), certs.join("officer-issuers").display().to_string()),
        (format!("{env}__DIVISIONS__DIR"), division_tables().display().to_string()),
    ]
}

/// The shipped township and village tables (Jilin's and Guizhou's), which
/// every service under test loads, as a deployment does.
pub fn division_tables() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/data/divisions")
}

/// A real township of `county` from the shipped tables (its first), for
/// test data that needs one.
pub fn a_township_of(county: &str) -> String {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        dibao_proto::divisions::load_dir(&division_tables()).expect("the shipped division tables");
    });
    let townships = dibao_proto::divisions::townships_of(county);
    townships.into_iter().next().map(|(code, _)| code).unwrap_or_else(|| panic!("no township of {county} is shipped"))
}

/// A Tansu broker with SQLite storage in its own directory; with a TLS
/// listener in front ([`Broker::start_tls`]), reachable only over TLS.
pub struct Broker {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    front: Option<TlsFront>,
}

/// The TLS listener of a broker, as a production cluster's (Strimzi's)
/// listener is: its own certificate, and clients proven by a certificate of
/// the clients' CA. Tansu 0.6.0 takes `--cert`/`--key` but serves plaintext
/// (its broker builds the acceptor and leaves it unused), so the test run
/// terminates TLS in front of it and Tansu advertises this listener as the
/// broker's address: every connection a client makes, bootstrap and
/// partition leaders alike, goes through TLS.
struct TlsFront {
    port: u16,
    handshakes: Arc<std::sync::Mutex<Vec<Result<(), String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Broker {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("dibao-broker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut broker = Self { port: free_port(), dir, child: None, front: None };
        broker.spawn().await?;
        Ok(broker)
    }

    /// A broker clients reach only over TLS at `localhost`: its certificate
    /// `cert_pem`/`key_pem`, and a client certificate of `clients_ca_pem`
    /// required of every connection.
    pub async fn start_tls(cert_pem: &str, key_pem: &str, clients_ca_pem: &str) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(clients_ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?,
                PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?,
            )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let front_port = listener.local_addr()?.port();

        let dir = std::env::temp_dir().join(format!("dibao-broker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let port = free_port();
        let handshakes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let accepted = acceptor.accept(tcp).await;
                    if let Ok(mut guard) = seen.lock() {
                        guard.push(accepted.as_ref().map(|_| ()).map_err(ToString::to_string));
                    }
                    let (Ok(mut tls), Ok(mut plain)) =
                        (accepted, tokio::net::TcpStream::connect(("127.0.0.1", port)).await)
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        let front = TlsFront { port: front_port, handshakes, task };
        let mut broker = Self { port, dir, child: None, front: Some(front) };
        broker.spawn().await?;
        Ok(broker)
    }

    /// Where clients reach it: the TLS listener's name and port, if it has one.
    pub fn address(&self) -> String {
        match &self.front {
            Some(front) => format!("localhost:{}", front.port),
            None => format!("127.0.0.1:{}", self.port),
        }
    }

    /// The TLS handshakes its listener saw, in order: `Err` with why one failed.
    pub fn handshakes(&self) -> Vec<Result<(), String>> {
        let seen = self.front.as_ref().map(|f| f.handshakes.clone());
        seen.and_then(|h| h.lock().ok().map(|h| h.clone())).unwrap_or_default()
    }

    pub fn kafka_settings(&self, prefix: &str, group: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: self.address(),
            topic_prefix: prefix.to_owned(),
            group_id: group.to_owned(),
            tls: None,
            sasl: None,
            properties: Default::default(),
        }
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = match &self.front {
            Some(front) => format!("tcp://localhost:{}", front.port),
            None => url.clone(),
        };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("broker.log"))?;
        let child = Command::new(tansu_bin())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &advertised])
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

    /// A broker that lost every record, topic and producer id: killed, its
    /// storage deleted, started again empty on the same port.
    pub async fn wipe(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("tansu.db")) {
                std::fs::remove_file(&path)?;
            }
        }
        self.spawn().await
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(front) = &self.front {
            front.task.abort();
        }
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL server of the test's own (Debian's binaries, `initdb` in a
/// temporary directory, a free port, trust auth), so a fault test can stop
/// it hard and start it again without disturbing the machine's server or
/// other tests. Run as root, the server runs as the `postgres` user.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePostgres {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// A server that takes TLS connections only (`hostssl`), with this
    /// certificate and key (PEM); the admin's own connections go over its
    /// Unix socket.
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        Self::start_with(Some((cert_pem, key_pem))).await
    }

    async fn start_with(tls: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("pg_ctl").is_file())
            .max()
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL server binaries under /usr/lib/postgresql"))?;
        let dir = std::env::temp_dir().join(format!("dibao-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let pg = Self { port: free_port(), dir, bin };
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&pg.dir).status().await?;
            anyhow::ensure!(status.success(), "chown of {} to postgres failed", pg.dir.display());
        }
        let data = pg.dir.join("data");
        pg.run("initdb", &["-D", &data.display().to_string(), "-U", "postgres", "-A", "trust", "--no-sync"]).await?;
        // Durable enough for a test that stops the server, not the machine.
        let mut conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n\
             max_connections = 200\n",
            pg.port,
            pg.dir.display()
        );
        if let Some((cert, key)) = tls {
            std::fs::write(data.join("server.crt"), cert)?;
            std::fs::write(data.join("server.key"), key)?;
            std::fs::set_permissions(data.join("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            if is_root() {
                let status = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(data.join("server.crt"))
                    .arg(data.join("server.key"))
                    .status()
                    .await?;
                anyhow::ensure!(status.success(), "chown of the server's key to postgres failed");
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            // TCP only over TLS; the socket for the test's own administration.
            std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")?;
        }
        std::fs::write(data.join("postgresql.auto.conf"), conf)?;
        pg.ctl(&["start", "-w", "-t", "60"]).await?;
        Ok(pg)
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A client of the administrator over the server's Unix socket.
    pub async fn admin(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::Config::new()
            .host_path(&self.dir)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A database on this server, as [`TestDb`] (dropped with the server).
    pub async fn database(&self) -> anyhow::Result<TestDb> {
        let client = self.admin().await?;
        client.batch_execute("CREATE DATABASE dibao").await?;
        Ok(TestDb { name: "dibao".into(), url: format!("postgres://postgres@127.0.0.1:{}/dibao", self.port) })
    }

    /// Stops the server the hard way (every backend killed, no checkpoint,
    /// recovery from the WAL on start) and starts it again.
    pub async fn crash_and_restart(&self) -> anyhow::Result<()> {
        self.ctl(&["stop", "-m", "immediate", "-w"]).await?;
        self.ctl(&["start", "-w", "-t", "60"]).await
    }

    async fn ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let data = self.dir.join("data").display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let mut all = vec!["-D", &data, "-l", &log];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all).await
    }

    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = command.args(args).stdin(Stdio::null()).output().await?;
        anyhow::ensure!(
            out.status.success(),
            "{program} {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let ctl = self.bin.join("pg_ctl");
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&ctl);
            c
        } else {
            std::process::Command::new(&ctl)
        };
        let _ = command.arg("-D").arg(&data).args(["stop", "-m", "immediate"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `person`'s records in a service's access log once there are `n` of them:
/// outcome records are written after the answer leaves, so a test waits
/// for them (and, after 10 s, gets what there is, for its assertion to name).
pub async fn access_records(
    pool: &deadpool_postgres::Pool,
    person: &str,
    n: usize,
) -> Vec<dibao_platform::trust::access_log::AccessRecord> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let records =
            dibao_platform::trust::access_log::accesses_to(pool, person, None, 0, 10_000).await.expect("access log");
        if records.len() >= n || std::time::Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
