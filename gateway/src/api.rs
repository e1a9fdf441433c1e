//! The officers' HTTPS face: log in (password and authenticator code, or
//! an ID token of the province's identity platform), see their session,
//! change their password, log out. JSON in and out; the session token is
//! returned to a command and set as an HttpOnly, Secure, SameSite=Strict
//! cookie for a browser. Messages are for the officer, in Chinese.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use serde_json::{Value, json};
use tonic::body::Body;

use crate::gateway::Gateway;
use crate::login::{self, LoggedIn, LoginRefusal};
use crate::proxy::token_of;
use crate::secrets;
use crate::server::Conn;
use crate::sessions::Session;

/// The console's session cookie.
pub const COOKIE: &str = "dibao_session";

/// Largest body the API reads.
const MAX_BODY: usize = 64 * 1024;

fn respond(status: StatusCode, body: Value, cookie: Option<String>) -> http::Response<Body> {
    let mut response = http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .header(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    if let Some(cookie) = cookie {
        response = response.header(header::SET_COOKIE, cookie);
    }
    response
        .body(Body::new(Full::new(Bytes::from(body.to_string()))))
        .unwrap_or_else(|_| http::Response::new(Body::empty()))
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> http::Response<Body> {
    respond(status, json!({ "code": code, "message": message.into() }), None)
}

fn field_error(field: &str, message: &str) -> http::Response<Body> {
    respond(
        StatusCode::BAD_REQUEST,
        json!({ "code": "INVALID_ARGUMENT", "message": format!("{field}：{message}"), "field": field }),
        None,
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn session_json(s: &Session) -> Value {
    json!({
        "session_id": s.session_id,
        "officer": {
            "officer_id": s.claims.officer_id,
            "name": s.claims.name,
            "roles": s.claims.roles.iter().map(|r| r.as_str_name().trim_start_matches("OFFICER_ROLE_").to_lowercase()).collect::<Vec<_>>(),
            "role_names": s.claims.roles.iter().map(|r| dibao_proto::labels::Label::label(*r)).collect::<Vec<_>>(),
            "division": s.claims.division.as_str(),
        },
        "created_at": rfc3339(s.created_at),
        "expires_at": rfc3339(s.expires_at),
    })
}

fn logged_in(l: LoggedIn) -> http::Response<Body> {
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict", l.token);
    let mut body = session_json(&l.session);
    body["token"] = Value::String(l.token);
    respond(StatusCode::OK, body, Some(cookie))
}

fn refused(r: LoginRefusal) -> http::Response<Body> {
    let status = match r {
        LoginRefusal::Locked { .. } => StatusCode::LOCKED,
        LoginRefusal::Disabled => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    error(status, r.code(), r.to_string())
}

async fn body_of<T: for<'de> Deserialize<'de>>(
    req: http::Request<hyper::body::Incoming>,
) -> Result<T, http::Response<Body>> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        // A form posted from another site cannot carry this type.
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON_ONLY", "请以 application/json 提交"));
    }
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| error(StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", "请求过大"))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "INVALID_JSON", format!("请求格式有误：{e}")))
}

#[derive(Deserialize)]
struct PasswordLogin {
    #[serde(default)]
    officer_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
}

#[derive(Deserialize)]
struct OidcLogin {
    #[serde(default)]
    id_token: String,
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(default)]
    person: String,
    #[serde(default)]
    village: String,
}

#[derive(Deserialize)]
struct PasswordChange {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    new_password: String,
}

/// One request of the HTTPS API.
pub async fn http(
    gw: Arc<Gateway>,
    conn: Arc<Conn>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    let peer = conn.peer.to_string();
    let result = match (req.method().clone(), req.uri().path()) {
        (Method::POST, "/api/login") => login_password(&gw, &peer, req).await,
        (Method::POST, "/api/oidc/login") => login_oidc(&gw, &peer, req).await,
        (Method::POST, "/api/logout") => logout(&gw, &peer, req).await,
        (Method::GET, "/api/session") => session(&gw, req).await,
        (Method::POST, "/api/password") => change_password(&gw, &peer, req).await,
        (Method::POST, "/api/access-history") => access_history(&gw, req).await,
        (_, path) if path.starts_with("/api/") => Ok(error(StatusCode::NOT_FOUND, "NOT_FOUND", "没有这个接口")),
        _ => return crate::console::http(gw, conn, req).await,
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "gateway API failed");
        error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "服务暂不可用，请稍后再试")
    })
}

async fn login_password(
    gw: &Gateway,
    peer: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    let body: PasswordLogin = match body_of(req).await {
        Ok(b) => b,
        Err(response) => return Ok(response),
    };
    for (field, value) in [("officer_id", &body.officer_id), ("password", &body.password), ("totp", &body.totp)] {
        if value.trim().is_empty() {
            return Ok(field_error(field, "必填项缺失"));
        }
    }
    Ok(match login::with_password(gw, body.officer_id.trim(), &body.password, &body.totp, peer).await? {
        Ok(l) => logged_in(l),
        Err(r) => refused(r),
    })
}

async fn login_oidc(
    gw: &Gateway,
    peer: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    let body: OidcLogin = match body_of(req).await {
        Ok(b) => b,
        Err(response) => return Ok(response),
    };
    if body.id_token.trim().is_empty() {
        return Ok(field_error("id_token", "必填项缺失"));
    }
    Ok(match login::with_oidc(gw, &body.id_token, peer).await? {
        Ok(l) => logged_in(l),
        Err(r) => refused(r),
    })
}

async fn logout(
    gw: &Gateway,
    peer: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    let Some(token) = token_of(req.headers()) else {
        return Ok(error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "未登录"));
    };
    let ended = gw.sessions.revoke(&token).await?;
    let Some(officer_id) = ended else {
        return Ok(error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "未登录或已注销"));
    };
    let client = gw.pool.get().await?;
    crate::registry::record_login(&client, &officer_id, "logout", "session", peer, gw.clock.now()).await?;
    tracing::info!(officer = %officer_id, "officer logged out");
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    Ok(respond(StatusCode::OK, json!({ "logged_out": true }), Some(clear)))
}

async fn current(
    gw: &Gateway,
    headers: &http::HeaderMap,
) -> Result<Result<Session, http::Response<Body>>, dibao_platform::Error> {
    let Some(token) = token_of(headers) else {
        return Ok(Err(error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "未登录")));
    };
    Ok(gw.sessions.find(&token).await?.map_err(|r| error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", r.to_string())))
}

async fn session(
    gw: &Gateway,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    Ok(match current(gw, req.headers()).await? {
        Ok(s) => respond(StatusCode::OK, session_json(&s), None),
        Err(response) => response,
    })
}

async fn change_password(
    gw: &Gateway,
    peer: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    let s = match current(gw, req.headers()).await? {
        Ok(s) => s,
        Err(response) => return Ok(response),
    };
    let body: PasswordChange = match body_of(req).await {
        Ok(b) => b,
        Err(response) => return Ok(response),
    };
    if let Some(problem) = secrets::password_problem(&body.new_password) {
        return Ok(field_error("new_password", problem));
    }
    let client = gw.pool.get().await?;
    let Some(row) = crate::registry::for_login(&client, &s.claims.officer_id).await? else {
        return Ok(error(
            StatusCode::FORBIDDEN,
            "NOT_IN_REGISTRY",
            "统一身份认证登录的账号请在统一身份认证平台修改口令",
        ));
    };
    let (old, hash) = (body.old_password.clone(), row.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || secrets::password_matches(&old, &hash)).await.unwrap_or(false);
    if !matches {
        crate::registry::record_login(
            &client,
            &s.claims.officer_id,
            "bad_password",
            "password_change",
            peer,
            gw.clock.now(),
        )
        .await?;
        return Ok(field_error("old_password", "原口令不正确"));
    }
    let new = body.new_password.clone();
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&new))
        .await
        .map_err(|e| dibao_platform::Error::Unexpected(e.into()))?
        .map_err(|e| dibao_platform::Error::Unexpected(e.into()))?;
    crate::registry::set_password(&client, &s.claims.officer_id, &hash, gw.clock.now()).await?;
    crate::registry::record_change(
        &client,
        &s.claims.officer_id,
        &s.claims.officer_id,
        "本人修改口令",
        &s.claims.division,
        gw.clock.now(),
    )
    .await?;
    Ok(respond(StatusCode::OK, json!({ "changed": true }), None))
}

/// A person's access history (查询记录) from every service behind the
/// gateway, one list by time: `POST /api/access-history` with
/// `{"person": …, "village": …}` (an identity number never goes in a URL,
/// where proxies and browsers keep it). Each service is asked for the
/// officer with an assertion of its own, and applies its own table (who
/// may read histories, for which villages).
async fn access_history(
    gw: &Arc<Gateway>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    let s = match current(gw, req.headers()).await? {
        Ok(s) => s,
        Err(response) => return Ok(response),
    };
    let body: HistoryQuery = match body_of(req).await {
        Ok(b) => b,
        Err(response) => return Ok(response),
    };
    let person = body.person.trim().to_owned();
    if dibao_proto::types::IdentityNumber::parse(&person).is_err() {
        return Ok(field_error("person", "请填写查询对象的身份证号"));
    }
    let village = Some(body.village.trim())
        .filter(|v| !v.is_empty())
        .map(|v| dibao_proto::common::v1::DivisionCode { code: v.to_owned() });
    let collected = match crate::history::collect(gw, &s.claims, &person, village).await {
        Ok(c) => c,
        Err(status) => return Ok(error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", status.message())),
    };
    let unavailable: Vec<Value> = collected
        .unavailable
        .iter()
        .map(|(service, message)| json!({ "service": service, "message": message }))
        .collect();
    let items: Vec<Value> = collected
        .records
        .iter()
        .map(|(service, a)| {
            json!({
                "service": service,
                "sequence": a.sequence,
                "subject": a.subject,
                "caller": a.caller,
                "officer_id": a.officer_id,
                "consent_id": a.consent_id,
                "purpose": a.purpose,
                "items": a.items.iter().filter_map(|i| dibao_proto::department::v1::Item::try_from(*i).ok()).map(|i| dibao_proto::labels::Label::label(i)).collect::<Vec<_>>(),
                "at": a.at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok()).map(rfc3339),
                "outcome": a.outcome,
                "completes": a.completes,
            })
        })
        .collect();
    Ok(respond(
        StatusCode::OK,
        json!({ "person": dibao_proto::types::masked_identity(&person), "accesses": items, "unavailable": unavailable }),
        None,
    ))
}
