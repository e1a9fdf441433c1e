//! One department's adapter as its binary and its tests start it: its
//! settings, its access log, the trusted keys of the hub's assertions, the
//! department's system, and the gRPC server (mTLS; only the hub may call
//! by default).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::runtime::access::{Gate, Rule, Rules};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::ServerBuilder;
use dibao_platform::runtime::service::{Service, Started, officer_trust};
use dibao_platform::runtime::settings::{Settings, Validate};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::runtime::workers::Workers;
use dibao_platform::store::db;
use dibao_platform::trust::access_log::{self, AccessLog};
use dibao_platform::trust::assertion::AssertionVerifier;
use dibao_platform::trust::history::History;
use dibao_platform::trust::officer::ReplayGuard;
use dibao_proto::department::v1::Department;
use dibao_proto::department::v1::department_service_server::DepartmentServiceServer;
use dibao_proto::departments;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::departments::bank::{Bank, Banks};
use crate::departments::{
    commerce, disability_federation, housing, human_resources, medical_insurance, public_security, tax,
};
use crate::kit::{Connector, DepartmentTls, Kit};
use crate::service::Adapter;

pub const SERVICE: &str = "department-adapter";

/// Connections an adapter keeps to a department's front-end database: the
/// department's DBA sizes its side for this.
const VIEW_CONNECTIONS: usize = 8;

/// Who may call what: the hub alone asks a department (and, as on every
/// service, the gateway reads a person's access history for an officer).
pub const ACCESS: &[Rule] = &[Rule::systems("/dibao.department.v1.DepartmentService/*", &["verification-hub"])];

/// An adapter's own settings: its department and whose assertions it trusts.
#[derive(Debug, Clone, Deserialize)]
pub struct AdapterOwn {
    pub department: DepartmentSettings,
    pub assertion: TrustSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DepartmentSettings {
    /// `public_security`, `human_resources`, `housing`, `commerce`, `bank`, `tax`,
    /// `disability_federation` or `medical_insurance`.
    pub kind: String,
    /// The department system's base URL (its front end inside its network);
    /// or, for a department that shares by database, `view_url`.
    #[serde(default)]
    pub base_url: String,
    /// The department's front-end database (前置库), `postgres://user:password@host/db`,
    /// for a department that keeps a view for the mesh instead of an API.
    #[serde(default)]
    pub view_url: Option<SecretString>,
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

impl Validate for AdapterOwn {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if departments::parse(&self.department.kind).is_none() {
            let kinds: Vec<&str> = departments::ALL.iter().map(|d| departments::name(*d)).collect();
            problems.push(format!("department.kind {:?} must be one of {}", self.department.kind, kinds.join(", ")));
        }
        let d = &self.department;
        match &d.view_url {
            None if !d.base_url.starts_with("http://") && !d.base_url.starts_with("https://") => {
                problems.push(format!("department.base_url {:?} must be an http(s) URL", d.base_url));
            }
            None => {}
            Some(_) if !d.base_url.is_empty() => problems.push(
                "department.base_url and department.view_url exclude each other: the department is reached by its API or by its front-end view".to_owned(),
            ),
            Some(url) => {
                let url = url.expose_secret();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    problems.push("department.view_url must be a postgres:// URL of the department's front-end database".to_owned());
                } else if let Err(e) = url.parse::<deadpool_postgres::tokio_postgres::Config>() {
                    problems.push(format!("department.view_url does not parse: {e}"));
                }
            }
        }
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
[database]
pool_size = 8

[department]
timeout_ms = 3000
retries = 2
banks = "abc:中国农业银行,rcc:农村信用合作社,psbc:中国邮政储蓄银行,ccb:中国建设银行"
"#;

/// One department's adapter (`department.kind` says which).
pub struct Application;

impl Service for Application {
    const NAME: &'static str = SERVICE;
    type Own = AdapterOwn;
    const DEFAULTS: &'static str = DEFAULTS;
    const KAFKA: bool = false;

    async fn build(
        settings: Settings<AdapterOwn>,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Started> {
        let d = &settings.own.department;
        let department = departments::parse(&d.kind)
            .ok_or_else(|| anyhow::anyhow!("department.kind {:?} is not a department", d.kind))?;
        // The platform's tables too: the officer assertions seen, for the history's readers.
        let pool =
            db::connect_and_migrate(&settings.platform.database, &[("access-log", access_log::MIGRATIONS)]).await?;
        let audience = departments::adapter_identity(department);
        let gate = Gate::new(
            Rules::new(ACCESS),
            officer_trust(&settings.platform, &audience, &pool, clock.clone(), &shutdown, ACCESS)?,
        );
        let verifier = AssertionVerifier::load(&settings.own.assertion.trusted_keys)?;
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
        let log = AccessLog::start(pool.clone());
        let access_log = log.clone();
        // The hub's consent assertions, each accepted once.
        let replay = ReplayGuard::start(pool.clone(), shutdown.clone());
        // An adapter has no outbox and no inbox: no ops service either.
        let builder = ServerBuilder::new(TlsMaterial::load(&settings.platform.tls)?, gate, None)
            .metrics(settings.platform.server.metrics_listen)
            .add_service(History::server(pool, log.clone()));
        let parts = (builder, d, tls.as_ref(), (verifier, replay), log, clock);
        let builder = match department {
            Department::PublicSecurity => serve(public_security::PublicSecurity, parts),
            Department::HumanResources => serve(human_resources::HumanResources, parts),
            Department::Housing => serve(housing::Housing, parts),
            Department::Commerce => serve(commerce::Commerce, parts),
            Department::Bank => serve(Banks { banks: d.banks() }, parts),
            Department::Tax => serve(tax::Tax, parts),
            Department::DisabilityFederation => serve(disability_federation::DisabilityFederation, parts),
            Department::MedicalInsurance => serve(medical_insurance::MedicalInsurance, parts),
            Department::Unspecified => anyhow::bail!("department.kind names no department"),
        }?;
        let running = builder.start(settings.platform.server.listen, shutdown).await?;
        Ok(Started::new(running, Workers::none())
            .with_detail(format!(" ({})", departments::name(department)))
            .with_access_log(access_log))
    }
}

/// What every department's server is built from.
type Parts<'a> = (
    ServerBuilder,
    &'a DepartmentSettings,
    Option<&'a DepartmentTls>,
    (AssertionVerifier, ReplayGuard),
    AccessLog,
    Arc<dyn Clock>,
);

/// `connector`'s service, reaching the department by its API or its view.
fn serve<C: Connector>(connector: C, parts: Parts<'_>) -> anyhow::Result<ServerBuilder> {
    let (builder, d, tls, (verifier, replay), log, clock) = parts;
    let timeout = Duration::from_millis(d.timeout_ms);
    let kit = match &d.view_url {
        Some(url) => {
            anyhow::ensure!(
                C::OFFERS_VIEW,
                "department.view_url: the {} adapter maps the department's API only; set department.base_url",
                C::DEPARTMENT.as_str_name()
            );
            Kit::view(url.expose_secret(), timeout, d.retries, VIEW_CONNECTIONS)?
        }
        None => Kit::new(&d.base_url, timeout, d.retries, tls)?,
    };
    Ok(builder.add_service(DepartmentServiceServer::new(Adapter { connector, kit, verifier, replay, log, clock })))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn detail(department: &[(&str, &str)]) -> String {
        let p = "DEPARTMENT_ADAPTER";
        let mut vars: HashMap<String, String> = [
            (format!("{p}_ENV_FILE"), "/dev/null"),
            (format!("{p}__DATABASE__URL"), "postgres://postgres@127.0.0.1/dibao"),
            (format!("{p}__DATABASE__SCHEMA"), "adapter_housing"),
            (format!("{p}__TLS__CA_CERT"), "/nonexistent/ca.pem"),
            (format!("{p}__TLS__CERT"), "/nonexistent/a.pem"),
            (format!("{p}__TLS__KEY"), "/nonexistent/a.key"),
            (format!("{p}__DEPARTMENT__KIND"), "housing"),
            (format!("{p}__ASSERTION__TRUSTED_KEYS"), "/nonexistent/keys"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        vars.extend(department.iter().map(|(k, v)| (format!("{p}__DEPARTMENT__{k}"), (*v).to_owned())));
        match Application::settings_from(&vars) {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        }
    }

    #[test]
    fn a_department_is_reached_by_its_api_or_its_view_never_both() {
        let both = detail(&[("BASE_URL", "http://127.0.0.1:9"), ("VIEW_URL", "postgres://reader@10.1.2.3/qzk")]);
        assert!(both.contains("department.base_url and department.view_url exclude each other"), "{both}");
        let neither = detail(&[]);
        assert!(neither.contains("department.base_url \"\" must be an http(s) URL"), "{neither}");
        let not_postgres = detail(&[("VIEW_URL", "mysql://reader@10.1.2.3/qzk")]);
        assert!(not_postgres.contains("department.view_url must be a postgres:// URL"), "{not_postgres}");
        let view = detail(&[("VIEW_URL", "postgres://reader:secret@10.1.2.3/qzk")]);
        assert!(!view.contains("department.") && !view.contains("secret"), "{view}");
    }
}
