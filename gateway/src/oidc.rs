//! Login with the province's identity platform: its OpenID Connect ID
//! tokens (JWS, RS256 or ES256), verified with the keys of its JWKS (read
//! from the configured URL, again when a token names a key not yet known,
//! at most once a minute), its issuer, this gateway's client id as audience
//! and the validity times; the officer's roles and division taken from the
//! claims the settings name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::types::DivisionCode;
use ring::signature::{ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// Where the identity platform is and what its tokens say.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcSettings {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// This gateway's client id: a token's `aud` must name it.
    pub audience: String,
    /// `https://…` (checked against `jwks_ca`) or `file:///…`.
    pub jwks_url: String,
    /// PEM of the CA of the JWKS's server, when it is not a public one.
    pub jwks_ca: Option<std::path::PathBuf>,
    /// The claim naming the officer's roles (`county_approver`, …), a list.
    #[serde(default = "roles_claim")]
    pub roles_claim: String,
    /// The claim naming their division code.
    #[serde(default = "division_claim")]
    pub division_claim: String,
    #[serde(default = "name_claim")]
    pub name_claim: String,
}

fn roles_claim() -> String {
    "dibao_roles".into()
}
fn division_claim() -> String {
    "dibao_division".into()
}
fn name_claim() -> String {
    "name".into()
}

/// What a verified ID token says of the officer.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub subject: String,
    pub name: String,
    pub roles: Vec<OfficerRole>,
    pub division: DivisionCode,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OidcRefusal {
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("no key {0} in the identity platform's JWKS")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("issued by {0}, not the configured issuer")]
    WrongIssuer(String),
    #[error("not for this gateway")]
    WrongAudience,
    #[error("expired or not yet valid")]
    Expired,
    #[error("claim {0} missing or not understood")]
    Claim(String),
    #[error("the JWKS could not be read: {0}")]
    Jwks(String),
}

enum Key {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256(Vec<u8>),
}

/// The JWKS's keys by id, and when they were last read.
type Keys = (HashMap<String, std::sync::Arc<Key>>, Option<Instant>);

pub struct Oidc {
    settings: OidcSettings,
    keys: Mutex<Keys>,
}

const SKEW: i64 = 60;

fn b64(s: &str) -> Result<Vec<u8>, OidcRefusal> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| OidcRefusal::Malformed)
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> Self {
        Self { settings, keys: Mutex::new((HashMap::new(), None)) }
    }

    /// Verifies `token` at `now` (Unix seconds).
    pub async fn verify(&self, token: &str, now: i64) -> Result<Identity, OidcRefusal> {
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(OidcRefusal::Malformed);
        };
        let header: Value = serde_json::from_slice(&b64(h)?).map_err(|_| OidcRefusal::Malformed)?;
        let alg = header["alg"].as_str().unwrap_or_default().to_owned();
        if alg != "RS256" && alg != "ES256" {
            return Err(OidcRefusal::Algorithm(alg));
        }
        let kid = header["kid"].as_str().unwrap_or_default().to_owned();
        let key = self.key(&kid).await?;
        let signed = format!("{h}.{p}");
        let signature = b64(s)?;
        let ok = match (&*key, alg.as_str()) {
            (Key::Rsa { n, e }, "RS256") => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
                .is_ok(),
            (Key::P256(point), "ES256") => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(signed.as_bytes(), &signature).is_ok()
            }
            _ => false,
        };
        if !ok {
            return Err(OidcRefusal::BadSignature);
        }
        let claims: Value = serde_json::from_slice(&b64(p)?).map_err(|_| OidcRefusal::Malformed)?;
        self.identity(&claims, now)
    }

    fn identity(&self, c: &Value, now: i64) -> Result<Identity, OidcRefusal> {
        let iss = c["iss"].as_str().unwrap_or_default();
        if iss != self.settings.issuer {
            return Err(OidcRefusal::WrongIssuer(iss.to_owned()));
        }
        let audience = &self.settings.audience;
        let for_us = match &c["aud"] {
            Value::String(a) => a == audience,
            Value::Array(all) => all.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !for_us {
            return Err(OidcRefusal::WrongAudience);
        }
        let exp = c["exp"].as_i64().ok_or_else(|| OidcRefusal::Claim("exp".into()))?;
        let nbf = c["nbf"].as_i64().or_else(|| c["iat"].as_i64()).unwrap_or(i64::MIN + SKEW);
        if now > exp + SKEW || now + SKEW < nbf {
            return Err(OidcRefusal::Expired);
        }
        let claim = |name: &str| OidcRefusal::Claim(name.to_owned());
        let subject = c["sub"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| claim("sub"))?.to_owned();
        let names = c[&self.settings.roles_claim].as_array().ok_or_else(|| claim(&self.settings.roles_claim))?;
        let roles: Vec<OfficerRole> = names
            .iter()
            .filter_map(|r| r.as_str())
            .filter_map(|r| OfficerRole::from_str_name(&format!("OFFICER_ROLE_{}", r.to_ascii_uppercase())))
            .filter(|r| *r != OfficerRole::Unspecified)
            .collect();
        if roles.is_empty() {
            return Err(claim(&self.settings.roles_claim));
        }
        let division = c[&self.settings.division_claim]
            .as_str()
            .and_then(|d| DivisionCode::parse(d).ok())
            .ok_or_else(|| claim(&self.settings.division_claim))?;
        let name = c[&self.settings.name_claim].as_str().unwrap_or(&subject).to_owned();
        Ok(Identity { subject, name, roles, division })
    }

    async fn key(&self, kid: &str) -> Result<std::sync::Arc<Key>, OidcRefusal> {
        let due = {
            let keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(k) = keys.0.get(kid) {
                return Ok(k.clone());
            }
            keys.1.is_none_or(|at| at.elapsed() > Duration::from_secs(60))
        };
        if !due {
            return Err(OidcRefusal::UnknownKey(kid.to_owned()));
        }
        let fetched = self.fetch().await;
        let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.1 = Some(Instant::now());
        keys.0 = fetched?;
        keys.0.get(kid).cloned().ok_or_else(|| OidcRefusal::UnknownKey(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<HashMap<String, std::sync::Arc<Key>>, OidcRefusal> {
        let url = &self.settings.jwks_url;
        let body = match url.strip_prefix("file://") {
            Some(path) => tokio::fs::read(path).await.map_err(|e| OidcRefusal::Jwks(format!("{path}: {e}")))?,
            None => crate::https::get(url, self.settings.jwks_ca.as_deref()).await.map_err(OidcRefusal::Jwks)?,
        };
        parse_jwks(&body)
    }
}

fn parse_jwks(body: &[u8]) -> Result<HashMap<String, std::sync::Arc<Key>>, OidcRefusal> {
    let jwks: Value = serde_json::from_slice(body).map_err(|e| OidcRefusal::Jwks(e.to_string()))?;
    let mut keys = HashMap::new();
    for k in jwks["keys"].as_array().into_iter().flatten() {
        let kid = k["kid"].as_str().unwrap_or_default().to_owned();
        let field = |name: &str| k[name].as_str().map(b64).transpose().ok().flatten();
        let key = match (k["kty"].as_str(), k["crv"].as_str()) {
            (Some("RSA"), _) => match (field("n"), field("e")) {
                (Some(n), Some(e)) => Key::Rsa { n, e },
                _ => continue,
            },
            (Some("EC"), Some("P-256")) => match (field("x"), field("y")) {
                (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => Key::P256([&[4u8][..], &x, &y].concat()),
                _ => continue,
            },
            _ => continue,
        };
        keys.insert(kid, std::sync::Arc::new(key));
    }
    Ok(keys)
}
