//! Mutual TLS on every server and client, the caller's identity from its
//! certificate, and the per-method access policy.
//!
//! A service's identity is the Common Name of its certificate's subject
//! (`civil-affairs`, `gateway`, `ops`); the access policy maps method
//! patterns (`/pkg.Service/Method` or `/pkg.Service/*`) to the identities
//! allowed, `*` meaning any caller holding a certificate of the mesh CA.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::Error;
use crate::runtime::settings::TlsSettings;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} at {path}: {source}")]
    Read { what: &'static str, path: String, source: std::io::Error },
}

/// PEM material of one service: the mesh CA and its own certificate and key.
#[derive(Clone)]
pub struct TlsMaterial {
    pub ca: Certificate,
    pub identity: Identity,
}

impl TlsMaterial {
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.display().to_string(), source })
        };
        let ca = Certificate::from_pem(read("tls.ca_cert", &settings.ca_cert)?);
        let identity = Identity::from_pem(read("tls.cert", &settings.cert)?, read("tls.key", &settings.key)?);
        Ok(Self { ca, identity })
    }

    pub fn from_pem(ca: &str, cert: &str, key: &str) -> Self {
        Self { ca: Certificate::from_pem(ca), identity: Identity::from_pem(cert, key) }
    }

    /// Server side: present our certificate, require one from the mesh CA.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity.clone()).client_ca_root(self.ca.clone())
    }

    /// Client side: trust only the mesh CA, present our certificate.
    pub fn client_config(&self, server_name: &str) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(self.ca.clone()).identity(self.identity.clone()).domain_name(server_name)
    }
}

/// The authenticated caller, put into every request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity(pub String);

/// Common Name of the subject of a DER certificate.
pub fn identity_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_owned();
    Some(cn)
}

/// Which identities may call which methods. Unlisted methods are refused.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    exact: HashMap<String, HashSet<String>>,
    by_service: HashMap<String, HashSet<String>>,
}

impl AccessPolicy {
    /// The `[access]` table of [`crate::runtime::settings::PLATFORM_DEFAULTS`]: health and
    /// reflection for any mesh identity, the ops service for `ops`.
    pub fn platform_defaults() -> Self {
        let access = config::Config::builder()
            .add_source(config::File::from_str(crate::runtime::settings::PLATFORM_DEFAULTS, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.get::<HashMap<String, Vec<String>>>("access"))
            // The defaults are a constant checked by this crate's tests.
            .unwrap_or_default();
        Self::from_map(&access)
    }

    pub fn from_map(map: &HashMap<String, Vec<String>>) -> Self {
        let mut policy = Self::default();
        for (pattern, identities) in map {
            policy.allow(pattern, identities.iter().map(String::as_str));
        }
        policy
    }

    /// Allows `identities` on `pattern` (`/pkg.Service/Method` or `/pkg.Service/*`).
    pub fn allow<'a>(&mut self, pattern: &str, identities: impl IntoIterator<Item = &'a str>) -> &mut Self {
        let set = match pattern.strip_suffix("/*") {
            Some(service) => self.by_service.entry(service.to_owned()).or_default(),
            None => self.exact.entry(pattern.to_owned()).or_default(),
        };
        set.extend(identities.into_iter().map(str::to_owned));
        self
    }

    pub fn permits(&self, path: &str, identity: &str) -> bool {
        let hit = |set: Option<&HashSet<String>>| set.is_some_and(|s| s.contains("*") || s.contains(identity));
        if let Some(set) = self.exact.get(path) {
            // An exact rule overrides the service-wide one.
            return hit(Some(set));
        }
        let service = path.rsplit_once('/').map_or(path, |(s, _)| s);
        hit(self.by_service.get(service))
    }
}

/// Tower layer that reads the caller's certificate, applies the policy and
/// passes the identity on; refusals never reach the service.
#[derive(Clone)]
pub struct AccessLayer {
    policy: Arc<AccessPolicy>,
}

impl AccessLayer {
    pub fn new(policy: AccessPolicy) -> Self {
        Self { policy: Arc::new(policy) }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = AccessService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessService { inner, policy: self.policy.clone() }
    }
}

#[derive(Clone)]
pub struct AccessService<S> {
    inner: S,
    policy: Arc<AccessPolicy>,
}

impl<S, B> tower::Service<http::Request<B>> for AccessService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        futures_util::future::Either<futures_util::future::Ready<Result<Self::Response, Self::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        use futures_util::future::{Either, ready};
        let identity = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs())
            .and_then(|certs| certs.first().and_then(|c| identity_of(c.as_ref())));
        let path = req.uri().path().to_owned();
        let Some(identity) = identity else {
            tracing::warn!(method = %path, "call without a client certificate refused");
            let status = tonic::Status::from(Error::Unauthenticated("需要有效的客户端证书".to_owned()));
            return Either::Left(ready(Ok(status.into_http())));
        };
        if !self.policy.permits(&path, &identity) {
            tracing::warn!(method = %path, caller = %identity, "call refused by access policy");
            let status = tonic::Status::from(Error::PermissionDenied(format!("调用方“{identity}”无权调用 {path}")));
            return Either::Left(ready(Ok(status.into_http())));
        }
        req.extensions_mut().insert(CallerIdentity(identity));
        Either::Right(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_rules_override_service_rules_and_unlisted_methods_are_refused() {
        let mut p = AccessPolicy::default();
        p.allow("/a.v1.S/*", ["gateway", "civil-affairs"]);
        p.allow("/a.v1.S/Admin", ["ops"]);
        p.allow("/grpc.health.v1.Health/*", ["*"]);
        assert!(p.permits("/a.v1.S/Get", "gateway"));
        assert!(!p.permits("/a.v1.S/Get", "poverty-alleviation"));
        assert!(p.permits("/a.v1.S/Admin", "ops"));
        assert!(!p.permits("/a.v1.S/Admin", "gateway"));
        assert!(p.permits("/grpc.health.v1.Health/Check", "anyone"));
        assert!(!p.permits("/b.v1.T/Get", "gateway"));
    }

    #[test]
    fn platform_defaults_open_health_and_reflection_and_keep_ops_for_operators() {
        let p = AccessPolicy::platform_defaults();
        assert!(p.permits("/grpc.health.v1.Health/Check", "gateway"));
        assert!(p.permits("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "gateway"));
        assert!(p.permits("/dibao.ops.v1.OpsService/ListDeadLetters", "ops"));
        assert!(!p.permits("/dibao.ops.v1.OpsService/ListDeadLetters", "gateway"));
    }
}
