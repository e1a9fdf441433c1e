//! Officers, proven. An issuer — the gateway, or a departmental system
//! registered as one with a division scope — signs a short-lived
//! [`OfficerAssertion`] for every call it makes for an officer: who they
//! are, their roles, the division they serve, the one service the call is
//! for. Every service verifies it itself against the issuers it trusts and
//! takes the officer, roles and division only from it; nothing a request
//! body says about who is acting counts.
//!
//! Ed25519 (ring), as the hub's consent assertions. The signature covers
//! the protobuf encoding with `signature` empty; prost writes fields in
//! number order and the message has no maps, so the encoding is canonical.
//! An assertion lives five minutes at most and is seen once: each service
//! records the ids it accepted ([`ReplayGuard`]).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use deadpool_postgres::Pool;
use dibao_proto::common::v1::{OfficerAssertion, OfficerRole, OfficerSignature};
use dibao_proto::labels::Label;
use dibao_proto::types::{DivisionCode, IdentityNumber, Signature};
use prost::Message;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use time::OffsetDateTime;

use crate::Error;
use crate::trust::assertion::{KeyError, hex, unhex};

/// SHA-256, hex, over `parts` each length-prefixed: the digest of what an
/// officer signed, kept with the signed record.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_le_bytes());
        ctx.update(p);
    }
    hex(ctx.finish().as_ref())
}

/// The gRPC metadata key an assertion travels in (binary, base64 on the wire).
pub const METADATA_KEY: &str = "x-dibao-officer-bin";
/// The longest an assertion may live.
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Clock skew tolerated between an issuer and a service.
const SKEW: i64 = 30;

/// An officer as a verified assertion names them: what a service acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Officer {
    pub officer_id: String,
    pub name: String,
    pub roles: Vec<OfficerRole>,
    /// The division they serve: they act on its data only.
    pub division: DivisionCode,
    pub session_id: String,
    /// The assertion that proved them, and who issued it.
    pub assertion_id: String,
    pub issuer: String,
    /// Their own identity number, where the issuer's registry holds it.
    pub identity_number: Option<IdentityNumber>,
}

impl Officer {
    pub fn has(&self, role: OfficerRole) -> bool {
        self.roles.contains(&role)
    }

    /// The first of `roles` this officer holds.
    pub fn role_among(&self, roles: &[OfficerRole]) -> Option<OfficerRole> {
        roles.iter().copied().find(|r| self.has(*r))
    }

    /// Whether `division` lies inside the officer's jurisdiction.
    pub fn covers(&self, division: &DivisionCode) -> bool {
        self.division.contains(division)
    }

    /// Whether the officer's jurisdiction holds `division`, or refuses,
    /// naming the field the caller sent (a division the caller named
    /// themselves: saying it is outside tells them nothing new).
    pub fn must_cover(&self, division: &DivisionCode, field: &str) -> Result<(), Error> {
        if self.covers(division) {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!("{field}：“{division}”不在您的辖区（{}）内", self.division)))
    }

    /// The officer signing in `role` at `now`: what a signed record keeps.
    pub fn signature(&self, role: OfficerRole, now: OffsetDateTime) -> Signature {
        Signature {
            officer_id: self.officer_id.clone(),
            officer_name: self.name.clone(),
            role,
            division: self.division.clone(),
            signed_at: now,
        }
    }

    /// The officer as the wire shows a signature.
    pub fn to_pb(&self, role: OfficerRole, at: OffsetDateTime) -> OfficerSignature {
        OfficerSignature {
            officer_id: self.officer_id.clone(),
            officer_name: self.name.clone(),
            role: role as i32,
            division: Some((&self.division).into()),
            signed_at: Some(crate::events::outbox::timestamp_of(at)),
        }
    }

    /// The roles, in Chinese, for messages.
    pub fn role_names(&self) -> String {
        self.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join("、")
    }
}

/// Why a service refuses an officer assertion. The caller learns the kind,
/// never what a valid one would have needed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfficerRefusal {
    #[error("no officer assertion")]
    Missing,
    #[error("the officer assertion does not decode")]
    Malformed,
    #[error("officer assertion signed by an untrusted key {0}")]
    UnknownKey(String),
    #[error("officer assertion signature does not verify")]
    BadSignature,
    #[error("officer assertion for another service ({0})")]
    WrongAudience(String),
    #[error("officer assertion not valid at this time")]
    Expired,
    #[error("officer assertion lives longer than five minutes")]
    TooLong,
    #[error("issuer {issuer} may not assert officers of division {division}")]
    OutOfScope { issuer: String, division: String },
    #[error("officer assertion {0} was already used")]
    Replayed(String),
    #[error("officer assertion names no officer, role or division")]
    Incomplete,
}

impl OfficerRefusal {
    /// The answer the caller gets: unauthenticated, in Chinese.
    pub fn into_error(self) -> Error {
        let why = match &self {
            OfficerRefusal::Missing => "缺少经办人身份凭证，请重新登录",
            OfficerRefusal::Malformed | OfficerRefusal::Incomplete => "经办人身份凭证格式无效",
            OfficerRefusal::UnknownKey(_) | OfficerRefusal::BadSignature => "经办人身份凭证签名无效",
            OfficerRefusal::WrongAudience(_) => "经办人身份凭证不是签发给本服务的",
            OfficerRefusal::Expired | OfficerRefusal::TooLong => "经办人身份凭证已过期，请重新登录",
            OfficerRefusal::OutOfScope { .. } => "签发方无权为该辖区的经办人签发凭证",
            OfficerRefusal::Replayed(_) => "经办人身份凭证已被使用过",
        };
        Error::Unauthenticated(why.to_owned())
    }
}

/// What an issuer asserts about an officer.
#[derive(Debug, Clone)]
pub struct Claims {
    pub officer_id: String,
    pub name: String,
    pub roles: Vec<OfficerRole>,
    pub division: DivisionCode,
    pub session_id: String,
    pub identity_number: Option<IdentityNumber>,
}

/// An issuer's signing key.
pub struct OfficerSigner {
    issuer: String,
    key_id: String,
    key: Ed25519KeyPair,
}

impl OfficerSigner {
    pub fn from_pkcs8(issuer: &str, key_id: &str, der: &[u8]) -> Option<Self> {
        Some(Self { issuer: issuer.to_owned(), key_id: key_id.to_owned(), key: Ed25519KeyPair::from_pkcs8(der).ok()? })
    }

    pub fn load(issuer: &str, key_id: &str, path: &Path) -> Result<Self, KeyError> {
        let name = path.display().to_string();
        let der = std::fs::read(path).map_err(|source| KeyError::Read { path: name.clone(), source })?;
        Self::from_pkcs8(issuer, key_id, &der).ok_or(KeyError::NotEd25519 { path: name })
    }

    /// The line a service's trusted-issuers file holds for this key:
    /// `ISSUER KEY_ID PUBLIC_KEY_HEX SCOPE` (a division code, or `*` for any).
    pub fn trusted_issuer_line(&self, scope: &str) -> String {
        format!("{} {} {} {scope}\n", self.issuer, self.key_id, hex(self.key.public_key().as_ref()))
    }

    /// A fresh assertion about `claims` for a call to `audience`, living `ttl`.
    pub fn mint(&self, claims: &Claims, audience: &str, now: OffsetDateTime, ttl: Duration) -> OfficerAssertion {
        let issued_at = now.unix_timestamp();
        let mut assertion = OfficerAssertion {
            assertion_id: uuid::Uuid::new_v4().to_string(),
            issuer: self.issuer.clone(),
            key_id: self.key_id.clone(),
            audience: audience.to_owned(),
            officer_id: claims.officer_id.clone(),
            officer_name: claims.name.clone(),
            roles: claims.roles.iter().map(|r| *r as i32).collect(),
            division: Some((&claims.division).into()),
            session_id: claims.session_id.clone(),
            issued_at,
            expires_at: issued_at + ttl.min(MAX_LIFETIME).as_secs() as i64,
            signature: Vec::new(),
            identity_number: claims.identity_number.as_ref().map(Into::into),
        };
        assertion.signature = self.key.sign(&assertion.encode_to_vec()).as_ref().to_vec();
        assertion
    }

    /// The assertion as gRPC metadata carries it.
    pub fn encode(assertion: &OfficerAssertion) -> Vec<u8> {
        assertion.encode_to_vec()
    }

    /// A new key pair as PKCS#8 DER (the development PKI and tests).
    pub fn generate_pkcs8() -> Vec<u8> {
        crate::trust::assertion::AssertionSigner::generate_pkcs8()
    }
}

struct Issuer {
    name: String,
    key: Vec<u8>,
    /// The divisions it may assert officers of; `None`: any.
    scope: Option<DivisionCode>,
}

/// The issuers a service trusts, by key id.
#[derive(Default)]
pub struct Issuers {
    keys: HashMap<String, Issuer>,
}

impl Issuers {
    /// Lines of `ISSUER KEY_ID PUBLIC_KEY_HEX SCOPE`, SCOPE a division code or `*`.
    pub fn from_lines(text: &str, path: &str) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = || KeyError::TrustedKeySyntax { path: path.to_owned(), line: i + 1 };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [name, key_id, key, scope] = parts.as_slice() else { return Err(syntax()) };
            let key = unhex(key).filter(|k| k.len() == 32).ok_or_else(syntax)?;
            let scope = match *scope {
                "*" => None,
                code => Some(DivisionCode::parse(code).map_err(|_| syntax())?),
            };
            keys.insert((*key_id).to_owned(), Issuer { name: (*name).to_owned(), key, scope });
        }
        Ok(Self { keys })
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: name.clone(), source })?;
        Self::from_lines(&text, &name)
    }

    /// Decodes and verifies the assertion `bytes` for a call to `audience`
    /// at `now`: signature by a trusted key, audience, validity (five
    /// minutes at most), an officer with a role, inside the issuer's scope.
    pub fn verify(&self, bytes: &[u8], audience: &str, now: OffsetDateTime) -> Result<Officer, OfficerRefusal> {
        let mut a = OfficerAssertion::decode(bytes).map_err(|_| OfficerRefusal::Malformed)?;
        let issuer = self.keys.get(&a.key_id).ok_or_else(|| OfficerRefusal::UnknownKey(a.key_id.clone()))?;
        let signature = std::mem::take(&mut a.signature);
        UnparsedPublicKey::new(&ED25519, &issuer.key)
            .verify(&a.encode_to_vec(), &signature)
            .map_err(|_| OfficerRefusal::BadSignature)?;
        if a.issuer != issuer.name {
            return Err(OfficerRefusal::BadSignature);
        }
        if a.audience != audience {
            return Err(OfficerRefusal::WrongAudience(a.audience));
        }
        let now = now.unix_timestamp();
        if a.expires_at - a.issued_at > MAX_LIFETIME.as_secs() as i64 {
            return Err(OfficerRefusal::TooLong);
        }
        if now + SKEW < a.issued_at || now > a.expires_at + SKEW {
            return Err(OfficerRefusal::Expired);
        }
        let roles: Vec<OfficerRole> = a
            .roles
            .iter()
            .filter_map(|r| OfficerRole::try_from(*r).ok())
            .filter(|r| *r != OfficerRole::Unspecified)
            .collect();
        let division = a.division.as_ref().and_then(|d| DivisionCode::try_from(d).ok());
        let (Some(division), false, false, false) =
            (division, roles.is_empty(), a.officer_id.trim().is_empty(), a.assertion_id.is_empty())
        else {
            return Err(OfficerRefusal::Incomplete);
        };
        if issuer.scope.as_ref().is_some_and(|scope| !scope.contains(&division)) {
            return Err(OfficerRefusal::OutOfScope { issuer: issuer.name.clone(), division: division.to_string() });
        }
        let identity_number = a.identity_number.as_ref().and_then(|i| IdentityNumber::try_from(i).ok());
        Ok(Officer {
            officer_id: a.officer_id,
            name: a.officer_name,
            roles,
            division,
            session_id: a.session_id,
            assertion_id: a.assertion_id,
            issuer: a.issuer,
            identity_number,
        })
    }
}

/// The assertion ids a service accepted, kept until they expire: an
/// assertion is seen once, whichever replica it reaches.
#[derive(Clone)]
pub struct ReplayGuard {
    pool: Pool,
}

impl ReplayGuard {
    /// The guard over the service's `seen_assertion` table, with a task that
    /// forgets expired ids every minute until `shutdown`.
    pub fn start(pool: Pool, mut shutdown: crate::runtime::shutdown::Shutdown) -> Self {
        let prune = pool.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(60)) => {}
                    () = shutdown.wait() => return,
                }
                if let Ok(client) = prune.get().await
                    && let Err(e) = client
                        .execute("DELETE FROM seen_assertion WHERE expires_at < now() - interval '1 minute'", &[])
                        .await
                {
                    tracing::warn!(error = %e, "expired assertion ids not pruned");
                }
            }
        });
        Self { pool }
    }

    /// Records an accepted assertion's id, or refuses it as seen before.
    pub async fn first_use(&self, assertion_id: &str, expires_at: OffsetDateTime) -> Result<(), Error> {
        if !self.first_seen(assertion_id, expires_at).await? {
            return Err(OfficerRefusal::Replayed(assertion_id.to_owned()).into_error());
        }
        Ok(())
    }

    /// Records an assertion's id (an officer's or the hub's consent
    /// assertion); whether this was its first use.
    pub async fn first_seen(&self, assertion_id: &str, expires_at: OffsetDateTime) -> Result<bool, Error> {
        let client = self.pool.get().await?;
        let fresh = crate::store::db::cached::execute(
            &client,
            "INSERT INTO seen_assertion (assertion_id, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&assertion_id, &expires_at],
        )
        .await?;
        Ok(fresh == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway (any division) and a departmental system scoped to county 220581.
    fn setup() -> (OfficerSigner, OfficerSigner, Issuers) {
        let signer = OfficerSigner::from_pkcs8("gateway", "gw-1", &OfficerSigner::generate_pkcs8()).expect("key");
        let county =
            OfficerSigner::from_pkcs8("social-assistance", "sa-1", &OfficerSigner::generate_pkcs8()).expect("key");
        let lines = format!("{}{}", signer.trusted_issuer_line("*"), county.trusted_issuer_line("220581"));
        (signer, county, Issuers::from_lines(&lines, "test").expect("issuers"))
    }

    fn claims(division: &str) -> Claims {
        Claims {
            officer_id: "o-1".into(),
            name: "张经办".into(),
            roles: vec![OfficerRole::TownshipCaseworker],
            division: DivisionCode::parse(division).expect("division"),
            session_id: "s-1".into(),
            identity_number: None,
        }
    }

    #[test]
    fn a_minted_assertion_verifies_for_its_audience_only_and_while_it_lives() {
        let (signer, _, issuers) = setup();
        let now = time::macros::datetime!(2026-12-02 09:00 UTC);
        let a = signer.mint(&claims("220581101"), "civil-affairs", now, MAX_LIFETIME);
        let bytes = OfficerSigner::encode(&a);
        let officer = issuers.verify(&bytes, "civil-affairs", now).expect("valid");
        assert_eq!(officer.officer_id, "o-1");
        assert_eq!(officer.roles, [OfficerRole::TownshipCaseworker]);
        assert!(officer.covers(&DivisionCode::parse("220581101201").expect("village")));
        assert!(!officer.covers(&DivisionCode::parse("220581102201").expect("village")));
        assert_eq!(
            issuers.verify(&bytes, "verification-hub", now),
            Err(OfficerRefusal::WrongAudience("civil-affairs".into()))
        );
        let later = now + time::Duration::minutes(6);
        assert_eq!(issuers.verify(&bytes, "civil-affairs", later), Err(OfficerRefusal::Expired));
        let mut tampered = a.clone();
        tampered.division = Some((&DivisionCode::parse("110101").expect("d")).into());
        assert_eq!(issuers.verify(&tampered.encode_to_vec(), "civil-affairs", now), Err(OfficerRefusal::BadSignature));
    }

    #[test]
    fn an_issuer_asserts_only_officers_inside_its_scope_and_only_with_its_key() {
        let (_, county, issuers) = setup();
        let now = time::macros::datetime!(2026-12-02 09:00 UTC);
        let inside = county.mint(&claims("220581101"), "civil-affairs", now, MAX_LIFETIME);
        assert!(issuers.verify(&inside.encode_to_vec(), "civil-affairs", now).is_ok());
        let outside = county.mint(&claims("220582101"), "civil-affairs", now, MAX_LIFETIME);
        assert_eq!(
            issuers.verify(&outside.encode_to_vec(), "civil-affairs", now),
            Err(OfficerRefusal::OutOfScope { issuer: "social-assistance".into(), division: "220582101".into() })
        );
        let stranger =
            OfficerSigner::from_pkcs8("social-assistance", "sa-9", &OfficerSigner::generate_pkcs8()).expect("key");
        let forged = stranger.mint(&claims("220581101"), "civil-affairs", now, MAX_LIFETIME);
        assert_eq!(
            issuers.verify(&forged.encode_to_vec(), "civil-affairs", now),
            Err(OfficerRefusal::UnknownKey("sa-9".into()))
        );
        let mut long = county.mint(&claims("220581101"), "civil-affairs", now, MAX_LIFETIME);
        long.expires_at += 600;
        assert_eq!(issuers.verify(&long.encode_to_vec(), "civil-affairs", now), Err(OfficerRefusal::BadSignature));
    }
}
