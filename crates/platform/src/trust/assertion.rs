//! Signed consent assertions (R-VER-1): the hub signs one per department
//! query, naming the person, the items, the consent and the purpose; every
//! adapter checks signature, validity and scope itself before it asks its
//! department anything, so no path reaches a department without consent.
//!
//! Ed25519 (ring). The signature covers the protobuf encoding of the
//! assertion with `signature` empty; prost writes fields in number order
//! and the message has no maps, so the encoding is canonical.

use std::collections::HashMap;
use std::path::Path;

use dibao_proto::department::v1::{ConsentAssertion, Item};
use dibao_proto::types::IdentityNumber;
use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use time::OffsetDateTime;

/// Clock skew tolerated between the hub and an adapter.
const SKEW: time::Duration = time::Duration::seconds(30);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("key file {path} is not a PKCS#8 Ed25519 key")]
    NotEd25519 { path: String },
    #[error("{path}:{line}: expected `KEY_ID PUBLIC_KEY_HEX` (32-byte Ed25519 key)")]
    TrustedKeySyntax { path: String, line: usize },
}

/// Why an adapter refuses an assertion. Each is logged in its access log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionRefusal {
    #[error("no consent assertion")]
    Missing,
    #[error("unknown signing key {0}")]
    UnknownKey(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("assertion not valid at this time")]
    Expired,
    #[error("assertion does not name a valid person")]
    NoPerson,
    #[error("item {0} is outside the assertion's scope")]
    ItemOutOfScope(String),
    #[error("assertion names no consent, purpose or id")]
    Incomplete,
    #[error("assertion is for {0}")]
    OtherAudience(String),
    #[error("assertion {0} was seen before")]
    Replayed(String),
}

/// The hub's signing key.
pub struct AssertionSigner {
    key_id: String,
    key: Ed25519KeyPair,
}

impl AssertionSigner {
    pub fn from_pkcs8(key_id: &str, der: &[u8]) -> Option<Self> {
        Some(Self { key_id: key_id.to_owned(), key: Ed25519KeyPair::from_pkcs8(der).ok()? })
    }

    pub fn load(key_id: &str, path: &Path) -> Result<Self, KeyError> {
        let name = path.display().to_string();
        let der = std::fs::read(path).map_err(|source| KeyError::Read { path: name.clone(), source })?;
        Self::from_pkcs8(key_id, &der).ok_or(KeyError::NotEd25519 { path: name })
    }

    /// A new key pair as PKCS#8 DER (for the development PKI and tests).
    pub fn generate_pkcs8() -> Vec<u8> {
        // ring's generator only fails if the system RNG does.
        #[allow(clippy::expect_used)]
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("system random").as_ref().to_vec()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, as the line an adapter's trusted-keys file holds.
    pub fn trusted_key_line(&self) -> String {
        format!("{} {}\n", self.key_id, hex(self.key.public_key().as_ref()))
    }

    /// Fills in `key_id` and signs.
    pub fn sign(&self, mut assertion: ConsentAssertion) -> ConsentAssertion {
        assertion.key_id = self.key_id.clone();
        assertion.signature.clear();
        let sig = self.key.sign(&assertion.encode_to_vec());
        assertion.signature = sig.as_ref().to_vec();
        assertion
    }
}

/// What an adapter learns from an assertion it accepted.
#[derive(Debug, Clone)]
pub struct VerifiedAssertion {
    pub assertion_id: String,
    pub expires_at: OffsetDateTime,
    pub consent_id: String,
    pub person: IdentityNumber,
    pub items: Vec<Item>,
    pub purpose: String,
    pub officer_id: String,
}

/// The public keys an adapter trusts, by key id (several during a rotation).
#[derive(Clone, Default)]
pub struct AssertionVerifier {
    keys: HashMap<String, Vec<u8>>,
}

impl AssertionVerifier {
    pub fn from_lines(text: &str, path: &str) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = || KeyError::TrustedKeySyntax { path: path.to_owned(), line: i + 1 };
            let (id, key) = line.split_once(' ').ok_or_else(syntax)?;
            let key = unhex(key.trim()).filter(|k| k.len() == 32).ok_or_else(syntax)?;
            keys.insert(id.to_owned(), key);
        }
        Ok(Self { keys })
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: name.clone(), source })?;
        Self::from_lines(&text, &name)
    }

    /// Checks signature, validity at `now`, that it is for `audience` (the
    /// department's name) and that every one of `items` is in scope. The
    /// person queried is the assertion's, never the caller's. Whether its id
    /// was seen before is the caller's to check ([`crate::trust::officer::ReplayGuard`]).
    pub fn verify(
        &self,
        assertion: Option<&ConsentAssertion>,
        items: &[Item],
        audience: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedAssertion, AssertionRefusal> {
        let a = assertion.ok_or(AssertionRefusal::Missing)?;
        let key = self.keys.get(&a.key_id).ok_or_else(|| AssertionRefusal::UnknownKey(a.key_id.clone()))?;
        let mut unsigned = a.clone();
        unsigned.signature.clear();
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&unsigned.encode_to_vec(), &a.signature)
            .map_err(|_| AssertionRefusal::BadSignature)?;
        let at = |t: &Option<prost_types::Timestamp>| {
            t.as_ref().and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        };
        let (Some(issued), Some(expires)) = (at(&a.issued_at), at(&a.expires_at)) else {
            return Err(AssertionRefusal::Expired);
        };
        if issued > now + SKEW || expires + SKEW <= now {
            return Err(AssertionRefusal::Expired);
        }
        if a.consent_id.is_empty() || a.purpose.trim().is_empty() || a.assertion_id.trim().is_empty() {
            return Err(AssertionRefusal::Incomplete);
        }
        if a.audience != audience {
            return Err(AssertionRefusal::OtherAudience(a.audience.clone()));
        }
        let person =
            a.person.as_ref().and_then(|p| IdentityNumber::parse(&p.value).ok()).ok_or(AssertionRefusal::NoPerson)?;
        let granted: Vec<Item> = a.items.iter().filter_map(|i| Item::try_from(*i).ok()).collect();
        if let Some(outside) = items.iter().find(|i| !granted.contains(i)) {
            return Err(AssertionRefusal::ItemOutOfScope(outside.as_str_name().to_owned()));
        }
        Ok(VerifiedAssertion {
            assertion_id: a.assertion_id.clone(),
            expires_at: expires,
            consent_id: a.consent_id.clone(),
            person,
            items: items.to_vec(),
            purpose: a.purpose.clone(),
            officer_id: a.officer_id.clone(),
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::outbox::timestamp_of as timestamp;
    use dibao_proto::common::v1 as common;

    fn assertion(now: OffsetDateTime) -> ConsentAssertion {
        ConsentAssertion {
            consent_id: "c-1".into(),
            person: Some(common::IdentityNumber { value: "11010519491231002X".into() }),
            items: vec![Item::Vehicles as i32, Item::Death as i32],
            purpose: "低保审核".into(),
            officer_id: "v-1".into(),
            issued_at: Some(timestamp(now)),
            expires_at: Some(timestamp(now + time::Duration::minutes(5))),
            audience: "public_security".into(),
            assertion_id: "a-1".into(),
            ..Default::default()
        }
    }

    fn pair() -> (AssertionSigner, AssertionVerifier) {
        let signer = AssertionSigner::from_pkcs8("hub-1", &AssertionSigner::generate_pkcs8()).expect("key");
        let verifier = AssertionVerifier::from_lines(&signer.trusted_key_line(), "test").expect("line");
        (signer, verifier)
    }

    #[test]
    fn a_signed_assertion_verifies_within_its_scope_and_time() {
        let (signer, verifier) = pair();
        let now = OffsetDateTime::now_utc();
        let signed = signer.sign(assertion(now));
        let ok = verifier.verify(Some(&signed), &[Item::Vehicles], "public_security", now).expect("valid");
        assert_eq!(ok.person.as_str(), "11010519491231002X");
        assert_eq!(
            verifier.verify(Some(&signed), &[Item::Deposits], "public_security", now).expect_err("refused"),
            AssertionRefusal::ItemOutOfScope("ITEM_DEPOSITS".into())
        );
        let later = now + time::Duration::minutes(6);
        assert_eq!(
            verifier.verify(Some(&signed), &[Item::Vehicles], "public_security", later).expect_err("refused"),
            AssertionRefusal::Expired
        );
        assert_eq!(
            verifier.verify(None, &[Item::Vehicles], "public_security", now).expect_err("refused"),
            AssertionRefusal::Missing
        );
        // Another department's adapter refuses it; one without an id is refused everywhere.
        assert_eq!(
            verifier.verify(Some(&signed), &[Item::Vehicles], "tax", now).expect_err("refused"),
            AssertionRefusal::OtherAudience("public_security".into())
        );
        let anonymous = signer.sign(ConsentAssertion { assertion_id: String::new(), ..assertion(now) });
        assert_eq!(
            verifier.verify(Some(&anonymous), &[Item::Vehicles], "public_security", now).expect_err("refused"),
            AssertionRefusal::Incomplete
        );
    }

    #[test]
    fn any_change_to_a_signed_assertion_breaks_its_signature() {
        let (signer, verifier) = pair();
        let now = OffsetDateTime::now_utc();
        let signed = signer.sign(assertion(now));
        let mut widened = signed.clone();
        widened.items.push(Item::Deposits as i32);
        let mut other_person = signed.clone();
        other_person.person = Some(common::IdentityNumber { value: "110105194912310021".into() });
        for tampered in [widened, other_person] {
            assert_eq!(
                verifier.verify(Some(&tampered), &[Item::Vehicles], "public_security", now).expect_err("refused"),
                AssertionRefusal::BadSignature
            );
        }
        // Signed by a key the adapter does not trust.
        let (stranger, _) = pair();
        let forged = stranger.sign(assertion(now));
        assert_eq!(
            verifier.verify(Some(&forged), &[Item::Vehicles], "public_security", now).expect_err("refused"),
            AssertionRefusal::BadSignature
        );
        let mut unknown = forged;
        unknown.key_id = "someone".into();
        assert_eq!(
            verifier.verify(Some(&unknown), &[Item::Vehicles], "public_security", now).expect_err("refused"),
            AssertionRefusal::UnknownKey("someone".into())
        );
    }
}
