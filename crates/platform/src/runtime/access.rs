//! Who may call what, proven on every call before any handler runs.
//!
//! Each service declares one table ([`Rule`] per method or service): the
//! systems that may call it on their own (proven by their mTLS
//! certificate), the systems that call it for an officer and the officer
//! roles admitted (proven by the call's officer assertion, verified here
//! with the issuers the service trusts, seen once), and how the division of
//! the method's data is found, which the handler then checks against the
//! officer's. A method in no rule is refused: default deny.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use dibao_proto::common::v1::OfficerRole;
use futures_util::future::BoxFuture;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::Error;
use crate::runtime::clock::Clock;
use crate::runtime::tls::identity_of;
use crate::trust::officer::{Issuers, METADATA_KEY, Officer, OfficerRefusal, ReplayGuard};

/// How a method finds the division its data belongs to, which must lie in
/// the officer's jurisdiction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A division (or village) the request names.
    Request,
    /// The data the request names by id: the handler loads it, then checks.
    Data,
    /// No division: a system's call, or the caller's own session.
    None,
}

/// One line of a service's access table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// `/package.Service/Method`, or `/package.Service/*` for every method
    /// of a service without a line of its own.
    pub method: &'static str,
    /// Systems (certificate identities) that call on their own; `*`: any
    /// system of the mesh.
    pub systems: &'static [&'static str],
    /// Systems that call for an officer, with the officer's assertion.
    pub for_officers: &'static [&'static str],
    /// The officer roles admitted (any one of them).
    pub roles: &'static [OfficerRole],
    pub scope: Scope,
}

impl Rule {
    /// A method only systems call.
    pub const fn systems(method: &'static str, systems: &'static [&'static str]) -> Self {
        Rule { method, systems, for_officers: &[], roles: &[], scope: Scope::None }
    }
}

/// Who may read a person's access history: the officers who answer
/// citizens' questions, and the province's auditors.
pub const HISTORY_READERS: &[OfficerRole] = &[
    OfficerRole::ProvinceAuditor,
    OfficerRole::CountyApprover,
    OfficerRole::CountyOperator,
    OfficerRole::VerificationOfficer,
    OfficerRole::TownshipReviewer,
    OfficerRole::TownshipCaseworker,
];

/// Methods every server has: health and reflection for any system of the
/// mesh; through the gateway, the pipeline's operations for an operator
/// and a person's access history for the officers who answer citizens.
pub const PLATFORM_RULES: &[Rule] = &[
    Rule::systems("/grpc.health.v1.Health/*", &["*"]),
    Rule::systems("/grpc.reflection.v1.ServerReflection/*", &["*"]),
    Rule::systems("/grpc.reflection.v1alpha.ServerReflection/*", &["*"]),
    Rule {
        method: "/dibao.ops.v1.OpsService/*",
        systems: &[],
        for_officers: &["gateway"],
        roles: &[OfficerRole::SystemOperator],
        scope: Scope::None,
    },
    Rule {
        method: "/dibao.access.v1.AccessLogService/*",
        systems: &[],
        for_officers: &["gateway"],
        roles: HISTORY_READERS,
        scope: Scope::Request,
    },
];

/// A service's table with the platform's lines.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    exact: HashMap<&'static str, Rule>,
    by_service: HashMap<&'static str, Rule>,
}

impl Rules {
    pub fn new(service: &[Rule]) -> Self {
        let mut rules = Self::default();
        for rule in PLATFORM_RULES.iter().chain(service) {
            match rule.method.strip_suffix("/*") {
                Some(s) => rules.by_service.insert(s, *rule),
                None => rules.exact.insert(rule.method, *rule),
            };
        }
        rules
    }

    /// The rule of `path`: its own line, else its service's.
    pub fn of(&self, path: &str) -> Option<&Rule> {
        self.exact.get(path).or_else(|| self.by_service.get(path.rsplit_once('/').map_or(path, |(s, _)| s)))
    }
}

/// The identity of the calling system, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity(pub String);

/// What the gate needs to prove an officer: the issuers the service trusts,
/// its own name (the audience an assertion must name), the ids already
/// seen, the clock.
#[derive(Clone)]
pub struct OfficerTrust {
    pub issuers: Arc<Issuers>,
    pub audience: String,
    pub replay: ReplayGuard,
    pub clock: Arc<dyn Clock>,
}

/// The gate every call passes: the system's certificate, the method's
/// rule, and for an officer's call, the officer's assertion.
#[derive(Clone)]
pub struct Gate {
    rules: Arc<Rules>,
    officers: Option<OfficerTrust>,
}

impl Gate {
    pub fn new(rules: Rules, officers: Option<OfficerTrust>) -> Self {
        Self { rules: Arc::new(rules), officers }
    }

    /// Admits the call or says why not; puts the caller (and the officer)
    /// into the request's extensions for the handler.
    pub async fn admit<B>(&self, req: &mut http::Request<B>) -> Result<(), Error> {
        let identity = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|info| info.peer_certs())
            .and_then(|certs| certs.first().and_then(|c| identity_of(c.as_ref())));
        let path = req.uri().path().to_owned();
        let Some(identity) = identity else {
            tracing::warn!(method = %path, "call without a client certificate refused");
            return Err(Error::Unauthenticated("需要有效的客户端证书".to_owned()));
        };
        let denied = || Error::PermissionDenied(format!("调用方“{identity}”无权调用 {path}"));
        let Some(rule) = self.rules.of(&path) else {
            tracing::warn!(method = %path, caller = %identity, "call to a method outside the access table refused");
            return Err(denied());
        };
        let on_own = rule.systems.iter().any(|s| *s == "*" || *s == identity);
        if !on_own {
            if !rule.for_officers.contains(&identity.as_str()) {
                tracing::warn!(method = %path, caller = %identity, "call refused by the access table");
                return Err(denied());
            }
            // Only owned data across the wait: the body type need not be Sync.
            let header = req.headers().get(METADATA_KEY).map(|v| v.as_bytes().to_vec());
            let officer = self.officer(header, &path).await?;
            if officer.role_among(rule.roles).is_none() {
                tracing::warn!(method = %path, officer = %officer.officer_id, "officer's roles not admitted");
                return Err(Error::PermissionDenied(format!("您的角色（{}）无权办理此事项", officer.role_names())));
            }
            req.extensions_mut().insert(officer);
        }
        req.extensions_mut().insert(CallerIdentity(identity));
        Ok(())
    }

    async fn officer(&self, header: Option<Vec<u8>>, path: &str) -> Result<Officer, Error> {
        let Some(trust) = &self.officers else {
            tracing::error!(method = %path, "an officer's call, but no trusted issuers are configured");
            return Err(OfficerRefusal::Missing.into_error());
        };
        let bytes = header
            .ok_or(OfficerRefusal::Missing)
            .and_then(|v| decode_binary(&v).ok_or(OfficerRefusal::Malformed))
            .map_err(|r| refused(path, r))?;
        let now = trust.clock.now();
        let officer = trust.issuers.verify(&bytes, &trust.audience, now).map_err(|r| refused(path, r))?;
        // Valid for five minutes at most, so kept that long (and a minute more).
        trust.replay.first_use(&officer.assertion_id, now + time::Duration::minutes(6)).await?;
        Ok(officer)
    }
}

fn refused(path: &str, r: OfficerRefusal) -> Error {
    tracing::warn!(method = %path, reason = %r, "officer assertion refused");
    r.into_error()
}

/// gRPC binary metadata: base64, padded or not.
fn decode_binary(v: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let v = std::str::from_utf8(v).ok()?.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(v).ok()
}

/// The officer a call was admitted for. Present on every method whose rule
/// admits officers and whose caller came for one.
pub fn officer_of<T>(request: &tonic::Request<T>) -> Result<Officer, Error> {
    request
        .extensions()
        .get::<Officer>()
        .cloned()
        .ok_or_else(|| Error::PermissionDenied("此事项须由经办人办理".to_owned()))
}

/// The system a call came from.
pub fn caller_of<T>(request: &tonic::Request<T>) -> String {
    request.extensions().get::<CallerIdentity>().map(|c| c.0.clone()).unwrap_or_default()
}

/// Who is reading: the system, and the officer it came for (none when a
/// system reads on its own). Every read of a person's data is logged with it.
#[derive(Debug, Clone)]
pub struct Reader {
    pub caller: String,
    pub officer: Option<Officer>,
}

impl Reader {
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self { caller: caller_of(request), officer: request.extensions().get::<Officer>().cloned() }
    }

    /// The officer's jurisdiction holds `division`; always, for a system.
    pub fn covers(&self, division: &dibao_proto::types::DivisionCode) -> bool {
        self.officer.as_ref().is_none_or(|o| o.covers(division))
    }

    /// As [`Officer::must_cover`]; a system reads any division.
    pub fn must_cover(&self, division: &dibao_proto::types::DivisionCode, field: &str) -> Result<(), Error> {
        match &self.officer {
            Some(o) => o.must_cover(division, field),
            None => Ok(()),
        }
    }

    /// Whether identity numbers and health details are shown in full: to a
    /// system, or to an officer holding one of `roles`; masked otherwise.
    pub fn sees_in_full(&self, roles: &[OfficerRole]) -> bool {
        self.officer.as_ref().is_none_or(|o| o.role_among(roles).is_some())
    }

    /// The access-log record of a system reading a whole division at once
    /// (a resync, the comparison's extraction): one record names the
    /// division, and a person's access history includes it by their
    /// village (see [`crate::trust::access_log::accesses_to`]).
    pub fn bulk_entry(
        &self,
        division: &dibao_proto::types::DivisionCode,
        purpose: &str,
    ) -> crate::trust::access_log::AccessEntry {
        self.entry(&crate::trust::access_log::division_key(division.prefix()), purpose)
    }

    /// The access-log record of reading `person`'s data for `purpose`.
    pub fn entry(&self, person: &str, purpose: &str) -> crate::trust::access_log::AccessEntry {
        crate::trust::access_log::AccessEntry {
            caller: self.caller.clone(),
            officer_id: self.officer.as_ref().map(|o| o.officer_id.clone()).unwrap_or_default(),
            consent_id: String::new(),
            purpose: purpose.to_owned(),
            person: person.to_owned(),
            items: Vec::new(),
            outcome: "read".to_owned(),
            completes: None,
        }
    }
}

/// Tower layer running [`Gate::admit`] before the service; a refused call
/// never reaches a handler.
#[derive(Clone)]
pub struct GateLayer {
    gate: Gate,
}

impl GateLayer {
    pub fn new(gate: Gate) -> Self {
        Self { gate }
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = GateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GateService { inner, gate: self.gate.clone() }
    }
}

#[derive(Clone)]
pub struct GateService<S> {
    inner: S,
    gate: Gate,
}

impl<S, B> tower::Service<http::Request<B>> for GateService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The service polled ready is the one that runs the call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            match gate.admit(&mut req).await {
                Ok(()) => inner.call(req).await,
                Err(e) => Ok(tonic::Status::from(e).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Rule] = &[
        Rule {
            method: "/a.v1.S/*",
            systems: &["civil-affairs"],
            for_officers: &["gateway"],
            roles: &[OfficerRole::CountyApprover],
            scope: Scope::Request,
        },
        Rule::systems("/a.v1.S/Admin", &["ops"]),
    ];

    #[test]
    fn a_methods_own_line_wins_and_unlisted_methods_have_none() {
        let rules = Rules::new(TABLE);
        assert_eq!(rules.of("/a.v1.S/Get").map(|r| r.method), Some("/a.v1.S/*"));
        assert_eq!(rules.of("/a.v1.S/Admin").map(|r| r.systems), Some(&["ops"][..]));
        assert!(rules.of("/b.v1.T/Get").is_none());
        assert_eq!(rules.of("/grpc.health.v1.Health/Check").map(|r| r.systems), Some(&["*"][..]));
        let ops = rules.of("/dibao.ops.v1.OpsService/RetryDeadLetter").expect("ops");
        assert_eq!((ops.for_officers, ops.roles), (&["gateway"][..], &[OfficerRole::SystemOperator][..]));
    }
}
