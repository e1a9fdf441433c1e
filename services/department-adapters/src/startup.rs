//! Settings and the `Application` of one department's adapter: its access
//! log, the trusted keys of the hub's assertions, the department's system,
//! and the gRPC server (mTLS; only the hub may call by default).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::access_log::{self, AccessLog};
use dibao_platform::assertion::AssertionVerifier;
use dibao_platform::clock::Clock;
use dibao_platform::db;
use dibao_platform::server::ServerBuilder;
use dibao_platform::settings::{self, DatabaseSettings, ServerSettings, TelemetrySettings, TlsSettings, Validate};
use dibao_platform::shutdown::Shutdown;
use dibao_platform::tls::{AccessPolicy, TlsMaterial};
use dibao_proto::department::v1::department_service_server::DepartmentServiceServer;
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::departments::bank::{Bank, Banks};
use crate::departments::{Kind, commerce, housing, human_resources, public_security, tax};
use crate::kit::{Connector, DepartmentTls, Kit};
use crate::service::Adapter;

pub const SERVICE: &str = "department-adapter";

#[derive(Debug, Clone, Deserialize)]
pub struct AdapterSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tls: TlsSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub access: HashMap<String, Vec<String>>,
    pub department: DepartmentSettings,
    pub assertion: TrustSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DepartmentSettings {
    /// `public_security`, `human_resources`, `housing`, `commerce`, `bank` or `tax`.
    pub kind: String,
    /// The department system's base URL (its front end inside its network).
    pub base_url: String,
    pub timeout_ms: u64,
    /// Retries of a transient failure, with exponential backoff.
    pub retries: u32,
    /// For `bank`: `code:name` pairs, comma-separated, one per bank asked.
    pub banks: String,
    /// For an `https://` base URL: PEM of the CA that signs the department
    /// system's certificate (the only one trusted).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The adapter's certificate and key (PEM), for a department whose
    /// front end checks its callers.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TrustSettings {
    /// Lines of `KEY_ID PUBLIC_KEY_HEX`: the hub's assertion keys this adapter trusts.
    pub trusted_keys: PathBuf,
}

impl DepartmentSettings {
    fn banks(&self) -> Vec<Bank> {
        self.banks
            .split(',')
            .filter_map(|b| b.split_once(':'))
            .map(|(c, n)| Bank { code: c.trim().to_owned(), name: n.trim().to_owned() })
            .collect()
    }
}

impl Validate for AdapterSettings {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.database.validate();
        problems.extend(self.tls.validate());
        if Kind::parse(&self.department.kind).is_none() {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            problems.push(format!("department.kind {:?} must be one of {}", self.department.kind, kinds.join(", ")));
        }
        if !self.department.base_url.starts_with("http://") && !self.department.base_url.starts_with("https://") {
            problems.push(format!("department.base_url {:?} must be an http(s) URL", self.department.base_url));
        }
        let d = &self.department;
        if d.base_url.starts_with("https://") && d.ca.is_none() {
            problems.push(
                "department.ca is required for an https base_url: the PEM of the CA that signs the department system's certificate"
                    .to_owned(),
            );
        }
        for (field, path) in [("ca", &d.ca), ("client_cert", &d.client_cert), ("client_key", &d.client_key)] {
            if let Some(path) = path.as_ref().filter(|p| !p.is_file()) {
                problems.push(format!("department.{field}: no file at {}", path.display()));
            }
        }
        if d.client_cert.is_some() != d.client_key.is_some() {
            problems.push("department.client_cert and department.client_key go together".to_owned());
        }
        if self.department.kind == "bank" && self.department.banks().is_empty() {
            problems.push("department.banks must name at least one bank as code:name".to_owned());
        }
        if !self.assertion.trusted_keys.is_file() {
            problems.push(format!("assertion.trusted_keys: no file at {}", self.assertion.trusted_keys.display()));
        }
        problems
    }
}

pub const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:0"

[database]
pool_size = 8

[telemetry]
log_format = "json"

[department]
timeout_ms = 3000
retries = 2
banks = "abc:中国农业银行,rcc:农村信用合作社,psbc:中国邮政储蓄银行,ccb:中国建设银行"

[access]
"/grpc.health.v1.Health/*" = ["*"]
"/grpc.reflection.v1.ServerReflection/*" = ["*"]
"/grpc.reflection.v1alpha.ServerReflection/*" = ["*"]
"/dibao.department.v1.DepartmentService/*" = ["verification-hub"]
"#;

pub fn load_settings() -> Result<AdapterSettings, settings::SettingsError> {
    settings::load(SERVICE, DEFAULTS)
}

pub struct Application {
    pub addr: SocketAddr,
    pub kind: Kind,
    pub server: JoinHandle<Result<(), tonic::transport::Error>>,
    pub access_log: AccessLog,
}

impl Application {
    pub async fn build(settings: AdapterSettings, clock: Arc<dyn Clock>, shutdown: Shutdown) -> anyhow::Result<Self> {
        let kind = Kind::parse(&settings.department.kind)
            .ok_or_else(|| anyhow::anyhow!("department.kind {:?} is not a department", settings.department.kind))?;
        let pool = db::connect(&settings.database).await?;
        access_log::migrate(&pool).await?;
        let verifier = AssertionVerifier::load(&settings.assertion.trusted_keys)?;
        let d = &settings.department;
        let tls = match &d.ca {
            Some(ca) => Some(DepartmentTls {
                ca_pem: std::fs::read_to_string(ca)?,
                client: match (&d.client_cert, &d.client_key) {
                    (Some(cert), Some(key)) => Some((std::fs::read_to_string(cert)?, std::fs::read_to_string(key)?)),
                    _ => None,
                },
            }),
            None => None,
        };
        let kit = Kit::new(&d.base_url, Duration::from_millis(d.timeout_ms), d.retries, tls.as_ref())?;
        let log = AccessLog::start(pool);
        let access_log = log.clone();
        let builder =
            ServerBuilder::new(TlsMaterial::load(&settings.tls)?, AccessPolicy::from_map(&settings.access), None);
        let builder = match kind {
            Kind::PublicSecurity => serve(builder, public_security::PublicSecurity, kit, verifier, log, clock),
            Kind::HumanResources => serve(builder, human_resources::HumanResources, kit, verifier, log, clock),
            Kind::Housing => serve(builder, housing::Housing, kit, verifier, log, clock),
            Kind::Commerce => serve(builder, commerce::Commerce, kit, verifier, log, clock),
            Kind::Bank => serve(builder, Banks { banks: d.banks() }, kit, verifier, log, clock),
            Kind::Tax => serve(builder, tax::Tax, kit, verifier, log, clock),
        };
        let running = builder.start(settings.server.listen, shutdown).await?;
        Ok(Self { addr: running.addr, kind, server: running.handle, access_log })
    }
}

fn serve<C: Connector>(
    builder: ServerBuilder,
    connector: C,
    kit: Kit,
    verifier: AssertionVerifier,
    log: AccessLog,
    clock: Arc<dyn Clock>,
) -> ServerBuilder {
    builder.add_service(DepartmentServiceServer::new(Adapter { connector, kit, verifier, log, clock }))
}
