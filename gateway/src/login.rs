//! Logging in: an officer of the registry with their password and the
//! code of their authenticator (two factors, MLPS level 3), locked out
//! after repeated failures; or with an ID token of the province's identity
//! platform. Every attempt is recorded, whatever its outcome.

use dibao_platform::Error;
use dibao_platform::trust::officer::Claims;
use time::OffsetDateTime;

use crate::gateway::Gateway;
use crate::registry::{self, Status};
use crate::secrets;
use crate::sessions::{OidcClaims, Session, Via};
use crate::totp;

/// Why a login is refused. Which factor was wrong is not said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("账号、口令或动态口令不正确")]
    BadCredentials,
    #[error("连续登录失败次数过多，账号已锁定，请于{until}（北京时间）后再试，或请管理员重置")]
    Locked { until: String },
    #[error("统一身份认证令牌无效（{0}）")]
    Oidc(String),
    #[error("该账号已停用")]
    Disabled,
}

impl LoginRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            LoginRefusal::BadCredentials => "BAD_CREDENTIALS",
            LoginRefusal::Locked { .. } => "LOCKED",
            LoginRefusal::Oidc(_) => "BAD_ID_TOKEN",
            LoginRefusal::Disabled => "DISABLED",
        }
    }
}

/// A new session and its token (given to the officer once).
pub struct LoggedIn {
    pub token: String,
    pub session: Session,
}

fn beijing(t: OffsetDateTime) -> String {
    let t = t.to_offset(dibao_platform::runtime::clock::CHINA);
    format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute())
}

/// Password and TOTP code of `officer_id`.
pub async fn with_password(
    gw: &Gateway,
    officer_id: &str,
    password: &str,
    code: &str,
    peer: &str,
) -> Result<Result<LoggedIn, LoginRefusal>, Error> {
    let now = gw.clock.now();
    let mut client = gw.pool.get().await?;
    let tx = client.transaction().await?;
    let row = registry::for_login(&tx, officer_id).await?;
    let (result, event) = match row {
        None => {
            // As long as a wrong password takes: an unknown id is not told apart.
            let password = password.to_owned();
            let _ =
                tokio::task::spawn_blocking(move || secrets::password_matches(&password, secrets::decoy_hash())).await;
            (Err(LoginRefusal::BadCredentials), "unknown")
        }
        Some(r) if r.officer.locked_until.is_some_and(|until| until > now) => {
            let until = r.officer.locked_until.map(beijing).unwrap_or_default();
            (Err(LoginRefusal::Locked { until }), "locked")
        }
        Some(r) if r.officer.status == Status::Disabled => (Err(LoginRefusal::Disabled), "disabled"),
        Some(r) => {
            let (password, hash) = (password.to_owned(), r.password_hash.clone());
            let password_ok =
                tokio::task::spawn_blocking(move || secrets::password_matches(&password, &hash)).await.unwrap_or(false);
            let secret = gw.secret_key.open(officer_id, &r.totp_secret).map_err(|e| Error::Unexpected(e.into()))?;
            let step = totp::verify(&secret, code, now.unix_timestamp(), r.last_totp_step);
            match (password_ok, step) {
                (true, Some(step)) => {
                    registry::record_success(&tx, officer_id, step).await?;
                    (Ok(r.officer), "ok")
                }
                (ok, _) => {
                    let failures = r.failed_attempts + 1;
                    let lock = (failures >= gw.lockout.failures).then(|| now + gw.lockout.duration);
                    registry::record_failure(&tx, officer_id, lock).await?;
                    let event = if ok { "bad_totp" } else { "bad_password" };
                    match lock {
                        Some(until) => (Err(LoginRefusal::Locked { until: beijing(until) }), event),
                        None => (Err(LoginRefusal::BadCredentials), event),
                    }
                }
            }
        }
    };
    registry::record_login(&tx, officer_id, event, Via::Password.as_str(), peer, now).await?;
    tx.commit().await?;
    gw.metrics.login(event);
    match result {
        Err(refusal) => {
            tracing::warn!(officer = %officer_id, outcome = event, %peer, "login refused");
            Ok(Err(refusal))
        }
        Ok(officer) => {
            let claims = Claims {
                officer_id: officer.officer_id,
                name: officer.name,
                roles: officer.roles,
                division: officer.division,
                session_id: String::new(),
                identity_number: officer.identity_number,
            };
            let (token, session) = gw.sessions.create(claims, Via::Password, None).await?;
            tracing::info!(officer = %officer_id, session = %session.session_id, %peer, "officer logged in");
            Ok(Ok(LoggedIn { token, session }))
        }
    }
}

/// An ID token of the province's identity platform.
pub async fn with_oidc(gw: &Gateway, id_token: &str, peer: &str) -> Result<Result<LoggedIn, LoginRefusal>, Error> {
    let Some(oidc) = &gw.oidc else {
        return Ok(Err(LoginRefusal::Oidc("本网关未配置统一身份认证".into())));
    };
    let now = gw.clock.now();
    let identity = match oidc.verify(id_token, now.unix_timestamp()).await {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(reason = %e, %peer, "ID token refused");
            let client = gw.pool.get().await?;
            registry::record_login(&client, "", "bad_id_token", Via::Oidc.as_str(), peer, now).await?;
            gw.metrics.login("bad_id_token");
            return Ok(Err(LoginRefusal::Oidc(e.to_string())));
        }
    };
    let client = gw.pool.get().await?;
    // The registry's officer of this subject, if any: their id and identity
    // number; roles and division are the platform's claims.
    let linked = registry::by_oidc_subject(&client, &identity.subject).await?;
    if linked.as_ref().is_some_and(|o| o.status == Status::Disabled) {
        registry::record_login(&client, &identity.subject, "disabled", Via::Oidc.as_str(), peer, now).await?;
        return Ok(Err(LoginRefusal::Disabled));
    }
    let officer_id = linked.as_ref().map_or_else(|| format!("oidc:{}", identity.subject), |o| o.officer_id.clone());
    registry::record_login(&client, &officer_id, "ok", Via::Oidc.as_str(), peer, now).await?;
    gw.metrics.login("ok");
    let claims = Claims {
        officer_id,
        name: identity.name.clone(),
        roles: identity.roles.clone(),
        division: identity.division.clone(),
        session_id: String::new(),
        identity_number: linked.and_then(|o| o.identity_number),
    };
    let oidc_claims = OidcClaims { roles: identity.roles, division: identity.division, name: identity.name };
    let (token, session) = gw.sessions.create(claims, Via::Oidc, Some(&oidc_claims)).await?;
    tracing::info!(officer = %session.claims.officer_id, session = %session.session_id, %peer, "officer logged in (OIDC)");
    Ok(Ok(LoggedIn { token, session }))
}
