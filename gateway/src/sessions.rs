//! Officers' login sessions: a random token (only its SHA-256 is stored),
//! an idle limit and an absolute limit, revoked by logout or when the
//! officer is disabled. Each replica keeps the sessions it serves in memory
//! and checks them against the database again every `recheck`: a logout or
//! a registry change on another replica takes effect within it, on this
//! replica at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::trust::officer::Claims;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::types::{DivisionCode, IdentityNumber};
use time::OffsetDateTime;

use crate::registry::roles_of;
use crate::secrets::{new_token, token_hash};

/// How an officer logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Password,
    Oidc,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Password => "password",
            Via::Oidc => "oidc",
        }
    }
}

/// A live session: who it is, and until when.
#[derive(Debug, Clone)]
pub struct Session {
    pub session_id: String,
    pub claims: Claims,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub last_seen: OffsetDateTime,
}

/// Why a token does not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    #[error("未登录或登录凭据无效，请重新登录")]
    Unknown,
    #[error("登录已注销，请重新登录")]
    Revoked,
    #[error("长时间未操作，登录已失效，请重新登录")]
    Idle,
    #[error("登录已超过最长时限，请重新登录")]
    Expired,
}

/// The limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: time::Duration,
    pub absolute: time::Duration,
    /// How long a replica trusts what it read of a session.
    pub recheck: Duration,
}

struct Cached {
    session: Session,
    checked: Instant,
}

pub struct Sessions {
    pool: Pool,
    clock: Arc<dyn Clock>,
    limits: Limits,
    cache: Mutex<HashMap<String, Cached>>,
}

/// What an OIDC session asserts beside the registry (the identity
/// platform's claims).
#[derive(Debug, Clone)]
pub struct OidcClaims {
    pub roles: Vec<OfficerRole>,
    pub division: DivisionCode,
    pub name: String,
}

impl Sessions {
    pub fn new(pool: Pool, clock: Arc<dyn Clock>, limits: Limits) -> Self {
        Self { pool, clock, limits, cache: Mutex::new(HashMap::new()) }
    }

    /// The limits every session is held to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session for `claims`; the token is returned once.
    pub async fn create(
        &self,
        claims: Claims,
        via: Via,
        oidc: Option<&OidcClaims>,
    ) -> Result<(String, Session), Error> {
        let token = new_token().map_err(|e| Error::Unexpected(e.into()))?;
        let now = self.clock.now();
        let session_id = uuid::Uuid::now_v7().to_string();
        let session = Session {
            claims: Claims { session_id: session_id.clone(), ..claims },
            session_id,
            created_at: now,
            expires_at: now + self.limits.absolute,
            last_seen: now,
        };
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO session (token_hash, session_id, officer_id, via, oidc_roles, oidc_division, oidc_name,
                                      created_at, last_seen_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
                &[
                    &token_hash(&token),
                    &session.session_id,
                    &session.claims.officer_id,
                    &via.as_str(),
                    &oidc.map(|o| o.roles.iter().map(|r| *r as i32).collect::<Vec<i32>>()),
                    &oidc.map(|o| o.division.as_str().to_owned()),
                    &oidc.map(|o| o.name.clone()),
                    &now,
                    &session.expires_at,
                ],
            )
            .await?;
        Ok((token, session))
    }

    /// The session `token` opens, as of now; its activity noted.
    pub async fn find(&self, token: &str) -> Result<Result<Session, SessionRefusal>, Error> {
        let hash = token_hash(token);
        let now = self.clock.now();
        let fresh = {
            let mut cache = self.cache();
            match cache.get_mut(&hash) {
                Some(c) if c.checked.elapsed() < self.limits.recheck => match self.check(&c.session, now) {
                    Ok(()) => {
                        c.session.last_seen = now;
                        Some(Ok(c.session.clone()))
                    }
                    Err(refusal) => {
                        cache.remove(&hash);
                        Some(Err(refusal))
                    }
                },
                _ => None,
            }
        };
        match fresh {
            Some(Err(refusal)) => {
                self.end(&hash, now).await?;
                Ok(Err(refusal))
            }
            Some(Ok(session)) => Ok(Ok(session)),
            None => self.load(&hash, now).await,
        }
    }

    fn check(&self, s: &Session, now: OffsetDateTime) -> Result<(), SessionRefusal> {
        if now >= s.expires_at {
            return Err(SessionRefusal::Expired);
        }
        if now - s.last_seen > self.limits.idle {
            return Err(SessionRefusal::Idle);
        }
        Ok(())
    }

    /// Reads the session and its officer again; notes its activity.
    async fn load(&self, hash: &str, now: OffsetDateTime) -> Result<Result<Session, SessionRefusal>, Error> {
        let client = self.pool.get().await?;
        let Some(row) = client
            .query_opt(
                "SELECT s.session_id, s.officer_id, s.via, s.oidc_roles, s.oidc_division, s.oidc_name, s.created_at,
                        s.last_seen_at, s.expires_at, s.revoked_at,
                        o.name, o.roles, o.division, o.status, o.identity_number
                 FROM session s LEFT JOIN officer o USING (officer_id) WHERE s.token_hash = $1",
                &[&hash],
            )
            .await?
        else {
            return Ok(Err(SessionRefusal::Unknown));
        };
        if row.get::<_, Option<OffsetDateTime>>("revoked_at").is_some() {
            self.cache().remove(hash);
            return Ok(Err(SessionRefusal::Revoked));
        }
        let mut last_seen: OffsetDateTime = row.get("last_seen_at");
        if let Some(c) = self.cache().get(hash) {
            last_seen = last_seen.max(c.session.last_seen);
        }
        // A disabled officer, or one no longer in the registry (password
        // login), has no session; an OIDC login need not be in it.
        let status: Option<String> = row.get("status");
        let via: String = row.get("via");
        let registered = status.as_deref() == Some("active");
        if status.as_deref() == Some("disabled") || (via == Via::Password.as_str() && !registered) {
            self.end(hash, now).await?;
            return Ok(Err(SessionRefusal::Revoked));
        }
        let officer_id: String = row.get("officer_id");
        let (roles, division, name) = if via == Via::Oidc.as_str() {
            (
                roles_of(&row.get::<_, Option<Vec<i32>>>("oidc_roles").unwrap_or_default()),
                row.get::<_, Option<String>>("oidc_division").unwrap_or_default(),
                row.get::<_, Option<String>>("oidc_name").unwrap_or_default(),
            )
        } else {
            (
                roles_of(&row.get::<_, Option<Vec<i32>>>("roles").unwrap_or_default()),
                row.get::<_, Option<String>>("division").unwrap_or_default(),
                row.get::<_, Option<String>>("name").unwrap_or_default(),
            )
        };
        let division = DivisionCode::parse(&division).map_err(|_| Error::stored(format!("session of {officer_id}")))?;
        let session_id: String = row.get("session_id");
        let session = Session {
            claims: Claims {
                officer_id,
                name,
                roles,
                division,
                session_id: session_id.clone(),
                identity_number: row
                    .get::<_, Option<String>>("identity_number")
                    .and_then(|i| IdentityNumber::parse(&i).ok()),
            },
            session_id,
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
            last_seen,
        };
        if let Err(refusal) = self.check(&session, now) {
            self.end(hash, now).await?;
            return Ok(Err(refusal));
        }
        let stored_seen: OffsetDateTime = row.get("last_seen_at");
        if last_seen > stored_seen {
            client.execute("UPDATE session SET last_seen_at = $2 WHERE token_hash = $1", &[&hash, &last_seen]).await?;
        }
        let session = Session { last_seen: now, ..session };
        self.cache().insert(hash.to_owned(), Cached { session: session.clone(), checked: Instant::now() });
        Ok(Ok(session))
    }

    /// Ends the session of `token` (logout); whether there was one.
    pub async fn revoke(&self, token: &str) -> Result<Option<String>, Error> {
        let hash = token_hash(token);
        self.cache().remove(&hash);
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "UPDATE session SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL RETURNING officer_id",
                &[&hash, &self.clock.now()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Forgets what this replica read of `officer_id`'s sessions: the next
    /// call reads their roles and division again.
    pub fn revoke_officer_cache(&self, officer_id: &str) {
        self.cache().retain(|_, c| c.session.claims.officer_id != officer_id);
    }

    /// Ends every session of `officer_id` (disabled, credentials reset).
    pub async fn revoke_officer(&self, officer_id: &str) -> Result<(), Error> {
        self.revoke_officer_cache(officer_id);
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE session SET revoked_at = $2 WHERE officer_id = $1 AND revoked_at IS NULL",
                &[&officer_id, &self.clock.now()],
            )
            .await?;
        Ok(())
    }

    async fn end(&self, hash: &str, now: OffsetDateTime) -> Result<(), Error> {
        self.cache().remove(hash);
        let client = self.pool.get().await?;
        client
            .execute("UPDATE session SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL", &[&hash, &now])
            .await?;
        Ok(())
    }
}
