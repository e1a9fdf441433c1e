//! A gRPC call through the gateway: its method looked up in the table
//! (unknown: refused), its caller proven (an officer's session, a system's
//! certificate and its own officers' assertion), then served here or
//! forwarded over mTLS to the service, with a fresh officer assertion for
//! that service alone and the caller's trace context. The caller's session
//! token never leaves the gateway.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use dibao_platform::runtime::telemetry;
use dibao_platform::trust::officer::METADATA_KEY;
use dibao_proto::common::v1::OfficerRole;
use http::HeaderValue;
use tonic::Status;
use tonic::body::Body;
use tower::{Service, ServiceExt};
use tracing::Instrument;

use crate::gateway::{Gateway, Principal};
use crate::routes::{Admits, SERVICE_HEADER, Target, route_of};
use crate::server::Conn;

/// The local services (the officer registry, health, reflection).
pub type Local = tonic::service::Routes;

/// A refusal as gRPC returns it, counted.
fn refuse(gw: &Gateway, path: &str, outcome: &'static str, started: Instant, status: Status) -> http::Response<Body> {
    gw.metrics.call(path, outcome, started.elapsed());
    tracing::warn!(method = %path, outcome, reason = %status.message(), "call refused at the gateway");
    status.into_http()
}

/// The session token of an officer's call: `authorization: Bearer …`, or
/// the console's cookie.
pub fn token_of(headers: &http::HeaderMap) -> Option<String> {
    if let Some(bearer) =
        headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    cookie(headers, crate::api::COOKIE)
}

/// The value of the cookie `name` the request carries (HTTP/2 may split
/// cookies over several headers).
pub fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .map(str::to_owned)
}

/// Who the caller is, or why not.
async fn principal(gw: &Gateway, conn: &Conn, headers: &http::HeaderMap) -> Result<Principal, (&'static str, Status)> {
    if let Some(identity) = &conn.system {
        return if gw.systems.contains_key(identity) {
            Ok(Principal::System(identity.clone()))
        } else {
            Err(("denied", Status::permission_denied(format!("系统“{identity}”未在网关登记"))))
        };
    }
    let Some(token) = token_of(headers) else {
        return Err(("unauthenticated", Status::unauthenticated("未登录：请先登录并携带登录凭据")));
    };
    match gw.sessions.find(&token).await {
        Ok(Ok(session)) => Ok(Principal::Officer(session)),
        Ok(Err(refusal)) => Err(("unauthenticated", Status::unauthenticated(refusal.to_string()))),
        Err(e) => Err(("unavailable", Status::from(e))),
    }
}

/// Serves one gRPC call.
pub async fn grpc(
    gw: Arc<Gateway>,
    local: Local,
    conn: Arc<Conn>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let Some(route) = route_of(&gw.methods, &path) else {
        let status = if gw.methods.contains(&path) {
            Status::permission_denied("该接口不对网关外开放")
        } else {
            Status::unimplemented(format!("没有这个接口：{path}"))
        };
        return refuse(&gw, &path, "unknown_method", started, status);
    };
    let principal = match route.admits {
        Admits::Anyone => None,
        _ => match principal(&gw, &conn, req.headers()).await {
            Ok(p) => Some(p),
            Err((outcome, status)) => return refuse(&gw, &path, outcome, started, status),
        },
    };
    if let Some(Principal::System(identity)) = &principal {
        let system = &gw.systems[identity];
        if route.admits != Admits::OfficersAndSystems || !system.allows(&path) {
            let status = Status::permission_denied(format!("系统“{identity}”无权调用 {path}"));
            return refuse(&gw, &path, "denied", started, status);
        }
        if !system.admit() {
            let status = Status::resource_exhausted(format!("系统“{identity}”调用过于频繁，请稍后再试"));
            return refuse(&gw, &path, "rate_limited", started, status);
        }
    }
    let target = match route.target {
        Target::Local => {
            if let Some(Principal::Officer(s)) = &principal
                && path.starts_with("/grpc.reflection.")
                && !s.claims.roles.iter().any(|r| matches!(r, OfficerRole::SystemOperator | OfficerRole::Administrator))
            {
                return refuse(&gw, &path, "denied", started, Status::permission_denied("接口说明仅供运维人员查阅"));
            }
            let mut req = req.map(Body::new);
            if let Some(p) = principal {
                req.extensions_mut().insert(p);
            }
            let response = match local.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            gw.metrics.call(&path, "local", started.elapsed());
            return response;
        }
        Target::Service(name) => name.to_owned(),
        Target::Named => match req.headers().get(SERVICE_HEADER).and_then(|v| v.to_str().ok()) {
            Some(name) if gw.upstreams.contains_key(name) => name.to_owned(),
            Some(name) => {
                let status = Status::invalid_argument(format!("{SERVICE_HEADER}：没有名为“{name}”的服务"));
                return refuse(&gw, &path, "unknown_method", started, status);
            }
            None => {
                let status = Status::invalid_argument(format!("{SERVICE_HEADER}：请指明调用哪个服务"));
                return refuse(&gw, &path, "unknown_method", started, status);
            }
        },
    };
    let principal = principal.expect("a route that is not for anyone has a principal");
    forward(gw, principal, target, path, started, req).await
}

/// Forwards the call to `target` for `principal`.
async fn forward(
    gw: Arc<Gateway>,
    principal: Principal,
    target: String,
    path: String,
    started: Instant,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    let (mut parts, body) = req.into_parts();
    let assertion = match &principal {
        Principal::Officer(session) => gw.assertion(&session.claims, &target),
        Principal::System(identity) => match system_assertion(&gw, identity, &target, &parts.headers) {
            Ok(bytes) => bytes,
            Err(status) => return refuse(&gw, &path, "unauthenticated", started, status),
        },
    };
    // What the caller proved itself with stays here; the service gets the assertion.
    for header in [http::header::AUTHORIZATION, http::header::COOKIE] {
        parts.headers.remove(header);
    }
    parts.headers.remove(SERVICE_HEADER);
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&assertion);
    match HeaderValue::from_str(&encoded) {
        Ok(v) => {
            parts.headers.insert(METADATA_KEY, v);
        }
        Err(_) => return refuse(&gw, &path, "unavailable", started, Status::internal("assertion encoding")),
    }
    let span = tracing::info_span!("gateway.forward", rpc.method = %path, target = %target, otel.kind = "server");
    let incoming: std::collections::HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), parts.headers.get(k)?.to_str().ok()?.to_owned())))
        .collect();
    telemetry::set_parent(&span, &incoming);
    let forwarded = async {
        for (k, v) in telemetry::current_trace_context() {
            if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(k), HeaderValue::from_str(&v)) {
                parts.headers.insert(name, value);
            }
        }
        let Some(channel) = gw.upstreams.get(&target) else {
            return Err(Status::unavailable(format!("网关未配置服务“{target}”的地址")));
        };
        let mut channel = channel.clone();
        let req = http::Request::from_parts(parts, Body::new(body));
        let ready = channel.ready().await.map_err(|e| Status::unavailable(format!("{target}: {e}")))?;
        ready.call(req).await.map_err(|e| Status::unavailable(format!("{target}: {e}")))
    }
    .instrument(span)
    .await;
    match forwarded {
        Ok(response) => {
            gw.metrics.call(&path, "forwarded", started.elapsed());
            response.map(Body::new)
        }
        Err(status) => refuse(&gw, &path, "unavailable", started, status),
    }
}

/// The assertion a departmental system sends for its own officer: verified
/// here too (an issuer named as the system itself, for `target`, about an
/// officer inside the system's division), then forwarded as it came.
fn system_assertion(gw: &Gateway, identity: &str, target: &str, headers: &http::HeaderMap) -> Result<Vec<u8>, Status> {
    let system = &gw.systems[identity];
    let missing = || Status::unauthenticated("系统调用须附本系统经办人的身份断言");
    let value = headers.get(METADATA_KEY).ok_or_else(missing)?.to_str().map_err(|_| missing())?;
    let bytes =
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(value.trim_end_matches('=')).map_err(|_| missing())?;
    let issuers = gw.issuers.as_ref().ok_or_else(|| Status::unauthenticated("网关未配置可信的签发方"))?;
    let officer = issuers.verify(&bytes, target, gw.clock.now()).map_err(|r| Status::from(r.into_error()))?;
    if officer.issuer != identity {
        return Err(Status::permission_denied(format!("断言由“{}”签发，不是调用系统“{identity}”", officer.issuer)));
    }
    if !system.division.contains(&officer.division) {
        return Err(Status::permission_denied(format!(
            "经办人所在区划“{}”不在系统“{identity}”的范围（{}）内",
            officer.division, system.division
        )));
    }
    Ok(bytes)
}
