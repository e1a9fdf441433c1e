//! Typed, layered settings.
//!
//! Layers, later wins: the defaults in the type, an environment file
//! (`KEY=VALUE` lines, path in `<SERVICE>_ENV_FILE`, default `.env` if
//! present), then the process environment. Keys are
//! `<SERVICE>__<SECTION>__<KEY>`, e.g. `CIVIL_AFFAIRS__DATABASE__URL`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the settings file {path}: {source}")]
    EnvFile { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: expected KEY=VALUE")]
    EnvFileSyntax { path: PathBuf, line: usize },
    #[error("invalid settings for {service}: {detail} (set {prefix}__SECTION__KEY in the environment or the env file)")]
    Invalid { service: String, prefix: String, detail: String },
}

/// A service's settings: the platform's sections and the service's own,
/// read from one set of layers by [`load_service`].
#[derive(Debug, Clone)]
pub struct Settings<S> {
    pub platform: PlatformSettings,
    pub own: S,
}

/// The own settings of a service that has none beyond the platform's.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NoSection {}

impl Validate for NoSection {
    fn validate(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Settings every service has.
#[derive(Debug, Clone, Deserialize)]
pub struct PlatformSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    /// Every service but the adapters has a broker ([`load_service`] checks).
    pub kafka: Option<KafkaSettings>,
    pub tls: TlsSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// Whose officer assertions the service trusts.
    #[serde(default)]
    pub trust: TrustSettings,
    #[serde(default)]
    pub run: RunSettings,
    #[serde(default)]
    pub divisions: DivisionSettings,
}

/// Where the provinces' township and village tables are (R-ROSTER-3).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DivisionSettings {
    /// A directory of `NN.csv` files, one per province (统计用区划代码;
    /// `proto/data/divisions` ships Jilin's and Guizhou's): its provinces'
    /// township and village codes are then checked and named. Without it,
    /// codes are checked down to the county (GB/T 2260, compiled in).
    pub dir: Option<PathBuf>,
}

impl Validate for DivisionSettings {
    fn validate(&self) -> Vec<String> {
        match &self.dir {
            Some(dir) if !dir.is_dir() => vec![format!("divisions.dir: no directory at {}", dir.display())],
            _ => Vec::new(),
        }
    }
}

impl DivisionSettings {
    /// Loads the directory's tables into the process's division checks.
    pub fn load(&self) -> anyhow::Result<()> {
        if let Some(dir) = &self.dir {
            for table in dibao_proto::divisions::load_dir(dir).map_err(|e| anyhow::anyhow!("divisions.dir: {e}"))? {
                tracing::info!(province = table.province, entries = table.entries, as_of = %table.as_of, "division table loaded");
            }
        }
        Ok(())
    }
}

/// The issuers of officer assertions a service trusts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TrustSettings {
    /// Lines of `ISSUER KEY_ID PUBLIC_KEY_HEX SCOPE` (SCOPE a division code,
    /// or `*`): the gateway, and departmental systems registered as issuers.
    pub officer_issuers: Option<PathBuf>,
}

impl Validate for TrustSettings {
    fn validate(&self) -> Vec<String> {
        match &self.officer_issuers {
            Some(path) if !path.is_file() => vec![format!("trust.officer_issuers: no file at {}", path.display())],
            _ => Vec::new(),
        }
    }
}

/// Which background workers this process runs beside its gRPC server. Both
/// by default; an operator may run the relay or the inbox in processes of
/// their own (each takes a Postgres advisory lock, so replicas wait their
/// turn rather than interleave), and the fault tests kill them one by one.
#[derive(Debug, Clone, Deserialize)]
pub struct RunSettings {
    #[serde(default = "yes")]
    pub relay: bool,
    #[serde(default = "yes")]
    pub inbox: bool,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self { relay: true, inbox: true }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Plain-HTTP `/metrics` for the cluster's scraper; off when unset.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// e.g. `postgres://user@127.0.0.1:5432/dibao`; may hold a password.
    pub url: SecretString,
    /// The service's own schema; created if absent.
    pub schema: String,
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// The schema owner's URL, for migrations alone: set, the service
    /// migrates as the owner, grants the role of `url` what it needs on the
    /// schema's tables (rows, no DDL) and serves as that role; unset, `url`'s
    /// role owns the schema and does both (development, CI).
    #[serde(default)]
    pub owner_url: Option<SecretString>,
    /// PEM file of the CA the server's certificate must chain to: set, every
    /// connection is TLS with the certificate and host name verified
    /// (libpq's `sslmode=verify-full`); unset, plain TCP (development, CI).
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
}

fn default_pool_size() -> usize {
    16
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers.
    pub brokers: String,
    /// Prefix of every topic name, e.g. `prod` gives `prod.civil-affairs.events`.
    pub topic_prefix: String,
    /// Consumer group of this service.
    pub group_id: String,
    /// TLS to the brokers, their certificates verified: set in production
    /// (Strimzi's listeners are TLS); unset, plaintext (development and CI:
    /// Tansu 0.6.0 does not serve TLS).
    #[serde(default)]
    pub tls: Option<KafkaTlsSettings>,
    /// SASL/SCRAM over that TLS, for clusters whose users log in with a
    /// password (Strimzi `KafkaUser` with `scram-sha-512`) rather than a
    /// client certificate.
    #[serde(default)]
    pub sasl: Option<KafkaSaslSettings>,
    /// Other librdkafka properties (tuning: `socket.keepalive.enable`, …).
    /// Not the security ones: those are `kafka.tls` and `kafka.sasl`, the
    /// one way to set them (see [`KAFKA_SECURITY_PROPERTIES`]).
    #[serde(default)]
    pub properties: HashMap<String, String>,
}

/// The librdkafka properties `kafka.tls` and `kafka.sasl` set; refused in
/// `kafka.properties`, where one could quietly weaken them.
pub const KAFKA_SECURITY_PROPERTIES: &[&str] = &[
    "security.protocol",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
];

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaTlsSettings {
    /// PEM file of the CA the brokers' certificates must chain to (Strimzi's
    /// cluster CA); each broker's host name is checked against its certificate.
    pub ca_cert: PathBuf,
    /// This service's certificate and key, for brokers that authenticate
    /// clients by certificate (Strimzi `KafkaUser` with `authentication: tls`):
    /// both or neither.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSaslSettings {
    #[serde(default)]
    pub mechanism: ScramMechanism,
    pub username: String,
    pub password: SecretString,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ScramMechanism {
    #[default]
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
}

impl ScramMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::ScramSha256 => "SCRAM-SHA-256",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TlsSettings {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TelemetrySettings {
    /// OTLP/gRPC collector endpoint; no export when absent.
    pub otlp_endpoint: Option<String>,
    /// `json` for machines, `pretty` for people.
    #[serde(default)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

/// Checks settings beyond their types, naming each bad key.
pub trait Validate {
    fn validate(&self) -> Vec<String>;
}

impl Validate for PlatformSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.database.validate();
        problems.extend(self.kafka.iter().flat_map(Validate::validate));
        problems.extend(self.tls.validate());
        problems.extend(self.trust.validate());
        problems.extend(self.divisions.validate());
        problems
    }
}

impl PlatformSettings {
    /// The broker, which every service but the adapters has ([`load_service`]
    /// refuses their settings without one).
    pub fn kafka(&self) -> anyhow::Result<&KafkaSettings> {
        self.kafka.as_ref().ok_or_else(|| {
            anyhow::anyhow!("kafka settings are required (kafka.brokers, kafka.topic_prefix, kafka.group_id)")
        })
    }
}

impl Validate for DatabaseSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let url = self.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            problems.push("database.url must be a postgres:// URL".to_owned());
        }
        if self.schema.is_empty()
            || !self.schema.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            problems.push(format!("database.schema {:?} must be lower-case letters, digits and _", self.schema));
        }
        if let Some(ca) = &self.ca_cert
            && !ca.is_file()
        {
            problems.push(format!("database.ca_cert: no file at {}", ca.display()));
        }
        if self.pool_size == 0 {
            problems.push("database.pool_size must be at least 1".to_owned());
        }
        problems
    }
}

impl Validate for KafkaSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.brokers.trim().is_empty() {
            problems.push("kafka.brokers must name at least one broker".to_owned());
        }
        if self.group_id.trim().is_empty() {
            problems.push("kafka.group_id must not be empty".to_owned());
        }
        if let Some(tls) = &self.tls {
            let files = [("kafka.tls.ca_cert", Some(&tls.ca_cert)), ("kafka.tls.cert", tls.cert.as_ref())];
            let files = files.into_iter().chain([("kafka.tls.key", tls.key.as_ref())]);
            for (name, path) in files {
                if let Some(path) = path.filter(|p| !p.is_file()) {
                    problems.push(format!("{name}: no file at {}", path.display()));
                }
            }
            if tls.cert.is_some() != tls.key.is_some() {
                problems.push("kafka.tls.cert and kafka.tls.key go together: give both or neither".to_owned());
            }
        }
        if let Some(sasl) = &self.sasl {
            match &self.tls {
                None => problems.push(
                    "kafka.sasl needs kafka.tls: the password and the events are not sent over plaintext".to_owned(),
                ),
                Some(tls) if tls.cert.is_some() => problems.push(
                    "kafka.sasl and kafka.tls.cert are two ways for the service to prove itself: give one".to_owned(),
                ),
                Some(_) => {}
            }
            if sasl.username.trim().is_empty() {
                problems.push("kafka.sasl.username must not be empty".to_owned());
            }
        }
        let mut reserved: Vec<&str> = (self.properties.keys())
            .filter(|k| KAFKA_SECURITY_PROPERTIES.contains(&k.as_str()))
            .map(String::as_str)
            .collect();
        reserved.sort_unstable();
        for key in reserved {
            problems.push(format!("kafka.properties.{key}: set it through kafka.tls or kafka.sasl"));
        }
        problems
    }
}

impl Validate for TlsSettings {
    fn validate(&self) -> Vec<String> {
        [("tls.ca_cert", &self.ca_cert), ("tls.cert", &self.cert), ("tls.key", &self.key)]
            .into_iter()
            .filter(|(_, path)| !path.is_file())
            .map(|(name, path)| format!("{name}: no file at {}", path.display()))
            .collect()
    }
}

/// Environment-variable prefix of a service: `civil-affairs` -> `CIVIL_AFFAIRS`.
pub fn env_prefix(service: &str) -> String {
    service.replace('-', "_").to_ascii_uppercase()
}

/// Loads settings of `service` from `defaults` (TOML), the env file and the
/// process environment, then validates them.
pub fn load<T: DeserializeOwned + Validate>(service: &str, defaults: &str) -> Result<T, SettingsError> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    load_from(service, defaults, &vars)
}

/// As [`load`], with the environment given (tests use this).
pub fn load_from<T: DeserializeOwned + Validate>(
    service: &str,
    defaults: &str,
    vars: &HashMap<String, String>,
) -> Result<T, SettingsError> {
    let invalid = invalid_for(service);
    let cfg = layers(service, &[defaults], vars)?;
    let settings: T =
        cfg.try_deserialize().map_err(|e| invalid(name_variable(&env_prefix(service), &e.to_string())))?;
    let problems = settings.validate();
    if !problems.is_empty() {
        return Err(invalid(problems.join("; ")));
    }
    Ok(settings)
}

/// The settings of a service of the mesh: the platform's sections (with
/// [`PLATFORM_DEFAULTS`]) and the service's own (`S`, with `own_defaults`
/// after the platform's), from one set of layers; a broker required when
/// `kafka` says the service has one.
pub fn load_service<S: DeserializeOwned + Validate>(
    service: &str,
    own_defaults: &str,
    kafka: bool,
    vars: &HashMap<String, String>,
) -> Result<Settings<S>, SettingsError> {
    let prefix = env_prefix(service);
    let invalid = invalid_for(service);
    let cfg = layers(service, &[PLATFORM_DEFAULTS, own_defaults], vars)?;
    // Two reads of one configuration, each straight from its values: a
    // flattened struct would lose the loader's conversion of strings to numbers.
    let platform: PlatformSettings =
        cfg.clone().try_deserialize().map_err(|e| invalid(name_variable(&prefix, &e.to_string())))?;
    let own: S = cfg.try_deserialize().map_err(|e| invalid(name_variable(&prefix, &e.to_string())))?;
    let mut problems = platform.validate();
    if kafka && platform.kafka.is_none() {
        problems.push(format!(
            "kafka is required: set {prefix}__KAFKA__BROKERS, {prefix}__KAFKA__TOPIC_PREFIX and {prefix}__KAFKA__GROUP_ID"
        ));
    }
    problems.extend(own.validate());
    if !problems.is_empty() {
        return Err(invalid(problems.join("; ")));
    }
    Ok(Settings { platform, own })
}

fn invalid_for(service: &str) -> impl Fn(String) -> SettingsError + '_ {
    move |detail| SettingsError::Invalid { service: service.to_owned(), prefix: env_prefix(service), detail }
}

/// Defaults (each a TOML text, later winning), the env file, the environment.
fn layers(service: &str, defaults: &[&str], vars: &HashMap<String, String>) -> Result<config::Config, SettingsError> {
    let prefix = env_prefix(service);
    let invalid = invalid_for(service);

    let env_file = match vars.get(&format!("{prefix}_ENV_FILE")) {
        Some(p) => Some(PathBuf::from(p)),
        None => Some(PathBuf::from(".env")).filter(|p| p.is_file()),
    };
    let mut file_vars = match env_file {
        Some(path) => read_env_file(&path)?,
        None => HashMap::new(),
    };
    let mut vars = vars.clone();
    // The environment's properties override the env file's.
    let mut properties = kafka_properties(&prefix, &mut file_vars);
    properties.extend(kafka_properties(&prefix, &mut vars));
    let env_source = |map: HashMap<String, String>| {
        config::Environment::with_prefix(&prefix).prefix_separator("__").separator("__").source(Some(map))
    };
    let mut cfg = config::Config::builder();
    for text in defaults {
        cfg = cfg.add_source(config::File::from_str(text, config::FileFormat::Toml));
    }
    let mut cfg = cfg.add_source(env_source(file_vars)).add_source(env_source(vars));
    if !properties.is_empty() {
        cfg = cfg.set_override("kafka.properties", properties).map_err(|e| invalid(e.to_string()))?;
    }
    cfg.build().map_err(|e| invalid(e.to_string()))
}

/// Takes `{PREFIX}__KAFKA__PROPERTIES__{KEY}` out of `vars` as librdkafka
/// properties. Their keys are dotted (`security.protocol`), and the
/// environment layer would split a dotted key into nested tables, so they
/// are set as one table instead; `_` stands for `.` because a shell cannot
/// export a dotted name (`…__PROPERTIES__SECURITY_PROTOCOL=SASL_SSL`).
fn kafka_properties(prefix: &str, vars: &mut HashMap<String, String>) -> HashMap<String, String> {
    let marker = format!("{prefix}__KAFKA__PROPERTIES__");
    let names: Vec<String> = vars
        .keys()
        .filter(|k| k.len() > marker.len() && k.to_ascii_uppercase().starts_with(&marker))
        .cloned()
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let value = vars.remove(&name)?;
            Some((name[marker.len()..].to_ascii_lowercase().replace('_', "."), value))
        })
        .collect()
}

/// Adds the environment variable to a message that names a key
/// (`missing configuration field "kafka.brokers"`), so the operator knows
/// exactly what to set.
fn name_variable(prefix: &str, message: &str) -> String {
    let key = message
        .split('"')
        .nth(1)
        .filter(|k| !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_'));
    match key {
        Some(key) => format!("{message} (variable {prefix}__{})", key.replace('.', "__").to_ascii_uppercase()),
        None => message.to_owned(),
    }
}

fn read_env_file(path: &Path) -> Result<HashMap<String, String>, SettingsError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| SettingsError::EnvFile { path: path.to_owned(), source })?;
    let mut map = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(SettingsError::EnvFileSyntax { path: path.to_owned(), line: i + 1 });
        };
        map.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
    }
    Ok(map)
}

/// Defaults shared by every service, in TOML; a service appends its own.
pub const PLATFORM_DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:0"

[database]
pool_size = 16

[telemetry]
log_format = "json"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn base_vars(dir: &Path) -> HashMap<String, String> {
        for f in ["ca.pem", "cert.pem", "key.pem", "none.env"] {
            // Contents do not matter to validation, which checks the files exist.
            std::fs::write(dir.join(f), "").expect("write");
        }
        [
            ("DEMO__DATABASE__URL", "postgres://u:hunter2@127.0.0.1/db".to_owned()),
            ("DEMO__DATABASE__SCHEMA", "demo".to_owned()),
            ("DEMO__KAFKA__BROKERS", "127.0.0.1:9092".to_owned()),
            ("DEMO__KAFKA__TOPIC_PREFIX", "t".to_owned()),
            ("DEMO__KAFKA__GROUP_ID", "demo".to_owned()),
            ("DEMO__TLS__CA_CERT", dir.join("ca.pem").display().to_string()),
            ("DEMO__TLS__CERT", dir.join("cert.pem").display().to_string()),
            ("DEMO__TLS__KEY", dir.join("key.pem").display().to_string()),
            ("DEMO_ENV_FILE", dir.join("none.env").display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dibao-settings-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn layers_defaults_env_file_and_environment() {
        let dir = tempdir("layers");
        let mut vars = base_vars(&dir);
        std::fs::write(
            dir.join("none.env"),
            "# comment\nDEMO__DATABASE__POOL_SIZE=4\nDEMO__SERVER__LISTEN=127.0.0.1:7000\n",
        )
        .expect("write");
        vars.insert("DEMO__SERVER__LISTEN".into(), "127.0.0.1:7001".into());
        let s = load_service::<NoSection>("demo", "", true, &vars).expect("valid").platform;
        assert_eq!(s.database.pool_size, 4, "env file overrides defaults");
        assert_eq!(s.server.listen.port(), 7001, "environment overrides env file");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "secrets never print: {printed}");
    }

    #[test]
    fn kafka_properties_come_from_the_environment_with_their_dotted_keys() {
        let dir = tempdir("properties");
        let mut vars = base_vars(&dir);
        std::fs::write(
            dir.join("none.env"),
            "DEMO__KAFKA__PROPERTIES__SOCKET_KEEPALIVE_ENABLE=false\nDEMO__KAFKA__PROPERTIES__STATISTICS_INTERVAL_MS=5000\n",
        )
        .expect("write");
        vars.insert("DEMO__KAFKA__PROPERTIES__SOCKET_KEEPALIVE_ENABLE".into(), "true".into());
        vars.insert("DEMO__KAFKA__PROPERTIES__client.rack".into(), "zone-a".into());
        let s = load_service::<NoSection>("demo", "", true, &vars).expect("valid").platform;
        let expected: HashMap<String, String> =
            [("socket.keepalive.enable", "true"), ("statistics.interval.ms", "5000"), ("client.rack", "zone-a")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(
            s.kafka().expect("kafka").properties,
            expected,
            "the environment overrides the env file, key by key"
        );
        assert_eq!(s.kafka().expect("kafka").brokers, "127.0.0.1:9092", "the other kafka settings still load");
    }

    #[test]
    fn kafka_tls_and_sasl_are_settings_of_their_own() {
        let dir = tempdir("kafka-tls");
        std::fs::write(dir.join("kafka-ca.pem"), "pem").expect("write");
        std::fs::write(dir.join("user.crt"), "pem").expect("write");
        std::fs::write(dir.join("user.key"), "pem").expect("write");
        let mut vars = base_vars(&dir);
        vars.insert("DEMO__KAFKA__TLS__CA_CERT".into(), dir.join("kafka-ca.pem").display().to_string());
        vars.insert("DEMO__KAFKA__TLS__CERT".into(), dir.join("user.crt").display().to_string());
        vars.insert("DEMO__KAFKA__TLS__KEY".into(), dir.join("user.key").display().to_string());
        let s = load_service::<NoSection>("demo", "", true, &vars).expect("valid").platform;
        let tls = s.kafka().expect("kafka").tls.clone().expect("tls");
        assert_eq!(tls.ca_cert, dir.join("kafka-ca.pem"));
        assert_eq!(tls.key, Some(dir.join("user.key")));

        // SCRAM over TLS, the mechanism defaulting to SHA-512; the password never printed.
        let mut scram = base_vars(&dir);
        scram.insert("DEMO__KAFKA__TLS__CA_CERT".into(), dir.join("kafka-ca.pem").display().to_string());
        scram.insert("DEMO__KAFKA__SASL__USERNAME".into(), "civil-affairs".into());
        scram.insert("DEMO__KAFKA__SASL__PASSWORD".into(), "hunter2".into());
        let s = load_service::<NoSection>("demo", "", true, &scram).expect("valid").platform;
        let sasl = s.kafka().expect("kafka").sasl.clone().expect("sasl");
        assert_eq!((sasl.mechanism, sasl.username.as_str()), (ScramMechanism::ScramSha512, "civil-affairs"));
        assert!(!format!("{s:?}").contains("hunter2"), "the SCRAM password never prints");
    }

    #[test]
    fn unsafe_or_incomplete_kafka_security_is_refused_by_name() {
        let dir = tempdir("kafka-refused");
        std::fs::write(dir.join("user.crt"), "pem").expect("write");
        let refused = |extra: &[(&str, &str)]| {
            let mut vars = base_vars(&dir);
            vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            load_service::<NoSection>("demo", "", true, &vars).expect_err("refused").to_string()
        };
        let e = refused(&[("DEMO__KAFKA__SASL__USERNAME", "u"), ("DEMO__KAFKA__SASL__PASSWORD", "p")]);
        assert!(e.contains("kafka.sasl needs kafka.tls"), "{e}");
        let ca = dir.join("missing-ca.pem").display().to_string();
        let cert = dir.join("user.crt").display().to_string();
        let e = refused(&[("DEMO__KAFKA__TLS__CA_CERT", &ca), ("DEMO__KAFKA__TLS__CERT", &cert)]);
        assert!(e.contains("kafka.tls.ca_cert: no file at"), "{e}");
        assert!(e.contains("kafka.tls.cert and kafka.tls.key go together"), "{e}");
        let e = refused(&[
            ("DEMO__KAFKA__PROPERTIES__SECURITY_PROTOCOL", "plaintext"),
            ("DEMO__KAFKA__PROPERTIES__ENABLE_SSL_CERTIFICATE_VERIFICATION", "false"),
        ]);
        assert!(e.contains("kafka.properties.enable.ssl.certificate.verification: set it through kafka.tls"), "{e}");
        assert!(e.contains("kafka.properties.security.protocol"), "{e}");
    }

    #[test]
    fn a_missing_required_setting_is_named() {
        let dir = tempdir("missing");
        let mut vars = base_vars(&dir);
        vars.remove("DEMO__DATABASE__URL");
        let e = load_service::<NoSection>("demo", "", true, &vars).expect_err("missing");
        let msg = e.to_string();
        assert!(msg.contains("DEMO__DATABASE__URL"), "{msg}");
    }

    #[test]
    fn an_invalid_setting_is_named() {
        let dir = tempdir("invalid");
        let mut vars = base_vars(&dir);
        vars.insert("DEMO__DATABASE__SCHEMA".into(), "Bad-Schema".into());
        vars.insert("DEMO__TLS__CERT".into(), "/nonexistent/cert.pem".into());
        vars.insert("DEMO__SERVER__LISTEN".into(), "not-an-address".into());
        let msg = load_service::<NoSection>("demo", "", true, &vars).expect_err("bad").to_string();
        assert!(msg.contains("listen"), "{msg}");
        vars.insert("DEMO__SERVER__LISTEN".into(), "127.0.0.1:0".into());
        let msg = load_service::<NoSection>("demo", "", true, &vars).expect_err("bad").to_string();
        assert!(msg.contains("database.schema") && msg.contains("tls.cert: no file at /nonexistent/cert.pem"), "{msg}");
    }

    /// A service's own section, as the hub's or the comparison's.
    #[derive(Debug, Clone, Deserialize)]
    struct Own {
        demo: DemoSection,
    }

    #[derive(Debug, Clone, Deserialize)]
    struct DemoSection {
        deadline_ms: u64,
        name: String,
    }

    impl Validate for Own {
        fn validate(&self) -> Vec<String> {
            if self.demo.deadline_ms == 0 { vec!["demo.deadline_ms must be above 0".to_owned()] } else { Vec::new() }
        }
    }

    #[test]
    fn a_service_reads_its_own_section_from_the_same_layers() {
        let dir = tempdir("own");
        let mut vars = base_vars(&dir);
        vars.insert("DEMO__DEMO__DEADLINE_MS".into(), "2500".into());
        let s =
            load_service::<Own>("demo", "[demo]\ndeadline_ms = 5000\nname = \"hub-1\"\n", true, &vars).expect("valid");
        assert_eq!(s.own.demo.deadline_ms, 2500, "a number from the environment's string");
        assert_eq!(s.own.demo.name, "hub-1", "the service's default");
        assert_eq!(s.platform.database.pool_size, 16, "the platform's default");
        vars.insert("DEMO__DEMO__DEADLINE_MS".into(), "0".into());
        let msg = load_service::<Own>("demo", "[demo]\nname = \"x\"\n", true, &vars).expect_err("bad").to_string();
        assert!(msg.contains("demo.deadline_ms must be above 0"), "{msg}");
    }

    #[test]
    fn a_broker_is_required_of_a_service_that_has_one_only() {
        let dir = tempdir("kafka");
        let mut vars = base_vars(&dir);
        vars.retain(|k, _| !k.contains("__KAFKA__"));
        let msg = load_service::<NoSection>("demo", "", true, &vars).expect_err("no broker").to_string();
        assert!(msg.contains("DEMO__KAFKA__BROKERS"), "{msg}");
        let adapter = load_service::<NoSection>("demo", "", false, &vars).expect("an adapter has no broker");
        assert!(adapter.platform.kafka.is_none());
    }
}
