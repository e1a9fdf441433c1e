//! The gateway as its binary and its tests start it: its settings, the
//! registry's schema, its keys, the mesh's services it forwards to, the
//! departmental systems it admits, the identity platform, its listener.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::RunningServer;
use dibao_platform::runtime::service::{Service, Started};
use dibao_platform::runtime::settings::{Settings, Validate};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::workers::Workers;
use dibao_platform::store::db;
use dibao_platform::trust::officer::{Issuers, OfficerSigner};
use dibao_proto::gateway::v1::officer_admin_service_server::OfficerAdminServiceServer;
use dibao_proto::types::DivisionCode;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::gateway::{Gateway, Lockout, System};
use crate::oidc::{Oidc, OidcSettings};
use crate::routes::Methods;
use crate::secrets::SecretKey;
use crate::sessions::{Limits, Sessions};

pub const SERVICE: &str = "gateway";

pub const MIGRATIONS: &[db::Migration] = &[
    ("0001_officers_and_sessions", include_str!("../migrations/0001_officers_and_sessions.sql")),
    ("0002_divisions", include_str!("../migrations/0002_divisions.sql")),
];

/// The gateway's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayOwn {
    pub officers: OfficerSettings,
    pub assertions: AssertionSettings,
    #[serde(default)]
    pub public: PublicSettings,
    /// The mesh's services by name (`_` for `-`): `civil_affairs = "host:port"`.
    #[serde(default)]
    pub upstream: HashMap<String, String>,
    /// The departmental systems admitted, one table each.
    #[serde(default)]
    pub systems: HashMap<String, SystemSettings>,
    pub oidc: Option<OidcSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OfficerSettings {
    /// 32 bytes (or 64 hex characters) sealing the TOTP secrets.
    pub secret_key: PathBuf,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub session_recheck_ms: u64,
    pub lockout_failures: i32,
    pub lockout_minutes: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssertionSettings {
    /// PKCS#8 Ed25519 key the gateway signs officer assertions with.
    pub signing_key: PathBuf,
    pub issuer: String,
    pub key_id: String,
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PublicSettings {
    /// The certificate officers' browsers and departmental systems see;
    /// the mesh certificate (`tls.cert`) if none.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The CA of departmental systems' client certificates (not the mesh CA).
    pub external_ca: Option<PathBuf>,
    /// The name the mesh's services' certificates carry (their own names if unset).
    pub upstream_server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SystemSettings {
    /// Its certificate's name.
    pub identity: String,
    /// Comma-separated `/package.Service/Method` or `/package.Service/*`.
    pub methods: String,
    /// The division its officers must serve.
    pub division: String,
    #[serde(default)]
    pub rate_per_second: f64,
}

impl Validate for GatewayOwn {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (what, path) in [
            ("officers.secret_key", &self.officers.secret_key),
            ("assertions.signing_key", &self.assertions.signing_key),
        ] {
            if !path.is_file() {
                problems.push(format!("{what}: no file at {}", path.display()));
            }
        }
        if self.assertions.ttl_secs == 0 || self.assertions.ttl_secs > 300 {
            problems.push("assertions.ttl_secs must be 1..=300 (an assertion lives five minutes at most)".into());
        }
        if self.officers.session_idle_minutes <= 0 || self.officers.session_absolute_hours <= 0 {
            problems.push("officers.session_idle_minutes and session_absolute_hours must be above 0".into());
        }
        if self.officers.lockout_failures <= 0 {
            problems.push("officers.lockout_failures must be above 0".into());
        }
        if self.public.cert.is_some() != self.public.key.is_some() {
            problems.push("public.cert and public.key go together".into());
        }
        for (name, s) in &self.systems {
            if DivisionCode::parse(&s.division).is_err() {
                problems.push(format!("systems.{name}.division: {:?} is not a division code", s.division));
            }
            if s.identity.trim().is_empty() {
                problems.push(format!("systems.{name}.identity must name its certificate"));
            }
        }
        if !self.systems.is_empty() && self.public.external_ca.is_none() {
            problems.push("systems need public.external_ca, the CA of their certificates".into());
        }
        problems
    }
}

pub const DEFAULTS: &str = r#"
[officers]
session_idle_minutes = 15
session_absolute_hours = 8
session_recheck_ms = 2000
lockout_failures = 5
lockout_minutes = 15

[assertions]
issuer = "gateway"
key_id = "gateway-1"
ttl_secs = 60
"#;

/// The gateway.
pub struct Application;

impl Service for Application {
    const NAME: &'static str = SERVICE;
    type Own = GatewayOwn;
    const DEFAULTS: &'static str = DEFAULTS;
    const KAFKA: bool = false;

    async fn build(
        settings: Settings<GatewayOwn>,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Started> {
        let own = &settings.own;
        let platform = &settings.platform;
        platform.divisions.load()?;
        let pool = db::connect_and_migrate(&platform.database, &[("service", MIGRATIONS)]).await?;
        let tls = dibao_platform::runtime::tls::TlsMaterial::load(&platform.tls)?;
        let mut upstreams = HashMap::new();
        for (key, addr) in &own.upstream {
            let name = key.replace('_', "-");
            let server_name = own.public.upstream_server_name.clone().unwrap_or_else(|| name.clone());
            upstreams.insert(name, dibao_platform::runtime::server::lazy_channel(&tls, addr, &server_name)?);
        }
        let mut systems = HashMap::new();
        for s in own.systems.values() {
            let methods = s.methods.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect();
            let division = DivisionCode::parse(&s.division).map_err(|e| anyhow::anyhow!("{e}"))?;
            systems.insert(
                s.identity.clone(),
                Arc::new(System::new(s.identity.clone(), methods, division, s.rate_per_second)),
            );
        }
        let issuers = match &platform.trust.officer_issuers {
            Some(path) => Some(Arc::new(Issuers::load(path)?)),
            None => None,
        };
        let limits = Limits {
            idle: time::Duration::minutes(own.officers.session_idle_minutes),
            absolute: time::Duration::hours(own.officers.session_absolute_hours),
            recheck: Duration::from_millis(own.officers.session_recheck_ms),
        };
        let gw = Arc::new(Gateway {
            sessions: Sessions::new(pool.clone(), clock.clone(), limits),
            signer: OfficerSigner::load(&own.assertions.issuer, &own.assertions.key_id, &own.assertions.signing_key)?,
            assertion_ttl: Duration::from_secs(own.assertions.ttl_secs),
            secret_key: SecretKey::load(&own.officers.secret_key)?,
            lockout: Lockout {
                failures: own.officers.lockout_failures,
                duration: time::Duration::minutes(own.officers.lockout_minutes),
            },
            upstreams,
            systems,
            issuers,
            oidc: own.oidc.clone().map(Oidc::new),
            metrics: Default::default(),
            methods: Methods::from_descriptors(),
            campaigns: Default::default(),
            runs: Default::default(),
            divisions: Default::default(),
            pool,
            clock,
        });
        let names = gw.divisions.reload(&gw.pool).await?;
        tracing::info!(names, "division names loaded");
        // Read again every minute, so an import shows without a restart.
        let (reloading, mut stop) = (gw.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.wait() => break,
                    () = tokio::time::sleep(crate::divisions::RELOAD) => {
                        if let Err(e) = reloading.divisions.reload(&reloading.pool).await {
                            tracing::warn!(error = %e, "division names not reloaded");
                        }
                    }
                }
            }
        });
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()));
        let (cert, key) = match (&own.public.cert, &own.public.key) {
            (Some(c), Some(k)) => (read(c)?, read(k)?),
            _ => (read(&platform.tls.cert)?, read(&platform.tls.key)?),
        };
        let external_ca = own.public.external_ca.as_ref().map(read).transpose()?;
        let config = crate::server::tls_config(&cert, &key, external_ca.as_deref())?;
        let local = local_services(gw.clone())?;
        let metrics = match platform.server.metrics_listen {
            Some(listen) => {
                let source = crate::metrics::Metrics::source(gw.clone());
                let bound =
                    dibao_platform::runtime::metrics::serve(listen, None, vec![source], shutdown.clone()).await?;
                tracing::info!(%bound, "metrics listening");
                Some(bound)
            }
            None => None,
        };
        let listener = TcpListener::bind(platform.server.listen).await?;
        let addr = listener.local_addr()?;
        let handle = crate::server::serve(listener, config, gw, local, shutdown);
        Ok(Started::new(RunningServer { addr, handle, metrics }, Workers::none()))
    }
}

/// What the gateway serves itself: the officer registry, health, reflection.
fn local_services(gw: Arc<Gateway>) -> anyhow::Result<tonic::service::Routes> {
    let (reporter, health) = tonic_health::server::health_reporter();
    drop(reporter);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dibao_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dibao_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok(tonic::service::Routes::new(OfficerAdminServiceServer::new(Admin(gw)))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha))
}
