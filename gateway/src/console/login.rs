//! Logging in at the console with password and authenticator code (the same
//! two factors, lockout and record as the API's login), and logging out.
//! Before there is a session the login form's CSRF token is a random nonce
//! in a cookie of its own, which the form must repeat.

use std::sync::Arc;

use http::StatusCode;
use tonic::body::Body;

use super::html::{self, Page, esc};
use super::{Form, Visit, same};
use crate::gateway::Gateway;
use crate::login::{self, LoginRefusal};
use crate::server::Conn;

/// The login form's nonce cookie.
const NONCE: &str = "dibao_login";

fn session_cookie(token: &str) -> String {
    format!("{}={token}; Path=/; HttpOnly; Secure; SameSite=Strict", crate::api::COOKIE)
}

fn nonce_cookie(nonce: &str) -> String {
    format!("{NONCE}={nonce}; Path=/login; HttpOnly; Secure; SameSite=Strict; Max-Age=900")
}

/// The nonce the browser holds for the login form.
pub fn nonce_of(headers: &http::HeaderMap) -> Option<String> {
    crate::proxy::cookie(headers, NONCE)
}

fn form(nonce: &str, officer_id: &str, message: Option<&str>) -> String {
    let alert = message.map(|m| super::html::alert("login-error", m)).unwrap_or_default();
    format!(
        "{alert}<form method=\"post\" action=\"/login\" class=\"login\" autocomplete=\"off\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{nonce}\">\
         <label for=\"officer_id\">工号</label>\
         <input id=\"officer_id\" name=\"officer_id\" required autofocus value=\"{officer_id}\" autocomplete=\"username\">\
         <label for=\"password\">口令</label>\
         <input id=\"password\" name=\"password\" type=\"password\" required autocomplete=\"current-password\">\
         <label for=\"totp\">动态口令（手机验证器上的6位数字）</label>\
         <input id=\"totp\" name=\"totp\" required inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" \
         autocomplete=\"one-time-code\">\
         <button type=\"submit\" id=\"login\">登录</button></form>\
         <p class=\"hint\">连续输错将锁定账号；长时间不操作将自动退出。忘记口令或更换手机请联系本级管理员。</p>",
        nonce = esc(nonce),
        officer_id = esc(officer_id),
    )
}

/// The login page; its nonce is the one the browser holds when it holds
/// one (two login tabs both work), a fresh one otherwise.
fn login_page(
    held: Option<&str>,
    status: StatusCode,
    officer_id: &str,
    message: Option<&str>,
) -> Result<http::Response<Body>, String> {
    let nonce = match held.filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(n) => n.to_owned(),
        None => crate::secrets::new_token().map_err(|e| e.to_string())?,
    };
    let page = Page::with_status(status, "登录", form(&nonce, officer_id, message));
    Ok(html::respond(&page, None, &[nonce_cookie(&nonce)]))
}

/// `GET /login`: the form, or straight to the work list for a live session.
pub async fn page(
    gw: &Arc<Gateway>,
    conn: &Conn,
    headers: &http::HeaderMap,
    query: Option<&str>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    if let Ok(Ok(_)) = super::visit(gw, conn, headers).await {
        return Ok(html::see_other("/work", &[]));
    }
    let message = match Form::parse(query.unwrap_or("")).get("reason") {
        "idle" => Some("长时间未操作，登录已失效，请重新登录"),
        "expired" => Some("登录已超过最长时限，请重新登录"),
        "revoked" => Some("登录已注销，请重新登录"),
        "bye" => Some("已退出登录"),
        _ => None,
    };
    login_page(nonce_of(headers).as_deref(), StatusCode::OK, "", message)
        .map_err(|e| dibao_platform::Error::Unexpected(anyhow::anyhow!(e)))
}

/// `POST /login`.
pub async fn submit(
    gw: &Arc<Gateway>,
    conn: &Conn,
    nonce: Option<&str>,
    form: &Form,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    let unexpected = |e: String| dibao_platform::Error::Unexpected(anyhow::anyhow!(e));
    let officer_id = form.get("officer_id").trim();
    if !nonce.is_some_and(|n| same(n.as_bytes(), form.get("csrf").as_bytes())) {
        return login_page(
            None,
            StatusCode::FORBIDDEN,
            officer_id,
            Some("登录页已过期或来自其他网站，请重新输入后登录"),
        )
        .map_err(unexpected);
    }
    for (field, label) in [("officer_id", "工号"), ("password", "口令"), ("totp", "动态口令")] {
        if form.get(field).trim().is_empty() {
            return login_page(nonce, StatusCode::BAD_REQUEST, officer_id, Some(&format!("{label}：必填项缺失")))
                .map_err(unexpected);
        }
    }
    let peer = conn.peer.to_string();
    match login::with_password(gw, officer_id, form.get("password"), form.get("totp").trim(), &peer).await? {
        Ok(logged_in) => {
            tracing::info!(officer = %officer_id, "officer logged in at the console");
            let clear = format!("{NONCE}=; Path=/login; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
            Ok(html::see_other("/work", &[session_cookie(&logged_in.token), clear]))
        }
        Err(refusal) => {
            let status = match refusal {
                LoginRefusal::Locked { .. } => StatusCode::LOCKED,
                LoginRefusal::Disabled => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            login_page(nonce, status, officer_id, Some(&refusal.to_string())).map_err(unexpected)
        }
    }
}

/// `POST /logout`: the session revoked everywhere, the cookie cleared.
pub async fn logout(v: &Visit) -> Result<http::Response<Body>, dibao_platform::Error> {
    if let Some(officer_id) = v.gw.sessions.revoke(&v.token).await? {
        let client = v.gw.pool.get().await?;
        crate::registry::record_login(&client, &officer_id, "logout", "console", &v.peer, v.gw.clock.now()).await?;
        tracing::info!(officer = %officer_id, "officer logged out at the console");
    }
    let clear = format!("{}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0", crate::api::COOKIE);
    Ok(html::see_other("/login?reason=bye", &[clear]))
}
