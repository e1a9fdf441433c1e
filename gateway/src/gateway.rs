//! What the gateway holds while it runs, and who a caller is: an officer
//! by their session, a departmental system by its certificate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::MeshChannel;
use dibao_platform::trust::officer::{Claims, Issuers, OfficerSigner};
use dibao_proto::types::DivisionCode;

use crate::metrics::Metrics;
use crate::oidc::Oidc;
use crate::routes::Methods;
use crate::secrets::SecretKey;
use crate::sessions::{Session, Sessions};

/// When repeated failures lock an account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub failures: i32,
    pub duration: time::Duration,
}

/// A departmental system registered at the gateway: the methods it may
/// call, the division its officers must serve, its rate.
#[derive(Debug)]
pub struct System {
    pub identity: String,
    /// `/package.Service/Method`, or `/package.Service/*`.
    pub methods: Vec<String>,
    pub division: DivisionCode,
    pub rate_per_second: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl System {
    pub fn new(identity: String, methods: Vec<String>, division: DivisionCode, rate_per_second: f64) -> Self {
        Self { identity, methods, division, rate_per_second, bucket: Mutex::new((rate_per_second, Instant::now())) }
    }

    pub fn allows(&self, path: &str) -> bool {
        self.methods.iter().any(|m| match m.strip_suffix("/*") {
            Some(service) => path.strip_prefix(service).is_some_and(|rest| rest.starts_with('/')),
            None => m == path,
        })
    }

    /// Takes one call from its token bucket (a second's worth of burst);
    /// false when it is empty.
    pub fn admit(&self) -> bool {
        if self.rate_per_second <= 0.0 {
            return true;
        }
        let mut bucket = self.bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = *bucket;
        let now = Instant::now();
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.rate_per_second).min(self.rate_per_second);
        if tokens < 1.0 {
            *bucket = (tokens, now);
            return false;
        }
        *bucket = (tokens - 1.0, now);
        true
    }
}

/// Who is calling through the gateway.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A logged-in officer.
    Officer(Session),
    /// A departmental system, by its certificate from the external CA.
    System(String),
}

pub struct Gateway {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    pub sessions: Sessions,
    pub signer: OfficerSigner,
    pub assertion_ttl: Duration,
    pub secret_key: SecretKey,
    pub lockout: Lockout,
    /// The services of the mesh by name, over mTLS.
    pub upstreams: HashMap<String, MeshChannel>,
    pub systems: HashMap<String, Arc<System>>,
    /// The issuers the services trust, for a system's own officers' assertions.
    pub issuers: Option<Arc<Issuers>>,
    pub oidc: Option<Oidc>,
    pub metrics: Metrics,
    pub methods: Methods,
    /// The verification campaigns officers started at the console, held here.
    pub campaigns: crate::console::campaign::Campaigns,
    /// The comparison runs officers started at the console, held here.
    pub runs: crate::console::comparison::Runs,
    /// Division names beside their codes on the console.
    pub divisions: crate::divisions::Divisions,
}

impl Gateway {
    /// A fresh assertion about `claims` for one call to `audience`.
    pub fn assertion(&self, claims: &Claims, audience: &str) -> Vec<u8> {
        OfficerSigner::encode(&self.signer.mint(claims, audience, self.clock.now(), self.assertion_ttl))
    }

    /// `message` for a call the gateway itself makes to `service` for the
    /// officer of `claims` (the console's pages, a person's access history),
    /// with that officer's assertion for that service alone.
    pub fn request<T>(&self, claims: &Claims, service: &str, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert_bin(
            dibao_platform::trust::officer::METADATA_KEY,
            tonic::metadata::MetadataValue::from_bytes(&self.assertion(claims, service)),
        );
        request
    }
}
