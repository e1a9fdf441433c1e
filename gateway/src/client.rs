//! The gateway from a caller's side: an officer's login over HTTPS, and a
//! gRPC channel whose every call carries their session — what
//! `dibao-login`, the commands and the demo use.

use std::path::Path;

use dibao_platform::runtime::server::{CallerChannel, Credentials};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// A session as the gateway answers a login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub token: String,
    /// The whole answer: session id, officer, expiry.
    pub session: serde_json::Value,
}

/// Logs `officer_id` in at `gateway` (`host:port`), trusting `ca`.
/// `Err` carries the gateway's status and message.
pub async fn login(
    gateway: &str,
    ca: &Path,
    officer_id: &str,
    password: &str,
    totp: &str,
) -> Result<LoggedIn, (u16, String)> {
    let body = serde_json::json!({ "officer_id": officer_id, "password": password, "totp": totp });
    let (status, body) = crate::https::post_json(&format!("https://{gateway}/api/login"), Some(ca), &body, None)
        .await
        .map_err(|e| (0, e))?;
    let session: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if !status.is_success() {
        return Err((status.as_u16(), session["message"].as_str().unwrap_or_default().to_owned()));
    }
    let token = session["token"].as_str().unwrap_or_default().to_owned();
    Ok(LoggedIn { token, session })
}

/// Ends the session of `token`.
pub async fn logout(gateway: &str, ca: &Path, token: &str) -> Result<(), (u16, String)> {
    let (status, body) = crate::https::post_json(
        &format!("https://{gateway}/api/logout"),
        Some(ca),
        &serde_json::json!({}),
        Some(token),
    )
    .await
    .map_err(|e| (0, e))?;
    if status.is_success() { Ok(()) } else { Err((status.as_u16(), String::from_utf8_lossy(&body).into_owned())) }
}

/// A channel to `gateway` whose calls carry `token`, trusting `ca_pem`
/// for the gateway's certificate (named `server_name`).
pub async fn channel(gateway: &str, ca_pem: &[u8], server_name: &str, token: &str) -> Result<CallerChannel, String> {
    channel_with(gateway, ca_pem, server_name, Credentials::bearer(token)).await
}

/// The same for a method every service serves (ops, access history):
/// each call names `service`.
pub async fn channel_to(
    gateway: &str,
    ca_pem: &[u8],
    server_name: &str,
    token: &str,
    service: &str,
) -> Result<CallerChannel, String> {
    channel_with(gateway, ca_pem, server_name, Credentials::bearer(token).with("x-dibao-service", service)).await
}

async fn channel_with(
    gateway: &str,
    ca_pem: &[u8],
    server_name: &str,
    credentials: Credentials,
) -> Result<CallerChannel, String> {
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)).domain_name(server_name);
    let channel = Endpoint::from_shared(format!("https://{gateway}"))
        .and_then(|e| e.tls_config(tls))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("{gateway}: {e}"))?;
    Ok(tonic::service::interceptor::InterceptedService::new(channel, credentials))
}

/// `secret` (base32, as an administrator hands it over) as bytes.
pub fn totp_secret(base32: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in base32.trim().trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The authenticator's code of `secret` (base32) at `unix_seconds`.
pub fn totp_code(base32: &str, unix_seconds: i64) -> Option<String> {
    let secret = totp_secret(base32)?;
    Some(crate::totp::format(crate::totp::code_at(&secret, unix_seconds.div_euclid(crate::totp::STEP))))
}
