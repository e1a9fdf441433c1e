//! Credentials at rest: passwords as argon2id hashes, TOTP secrets sealed
//! with AES-256-GCM under the gateway's secret key, session tokens as
//! SHA-256 digests. None is ever stored in the clear.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system's randomness is unavailable")]
    Random,
    #[error("gateway secret key: {0}")]
    Key(String),
    #[error("a stored secret does not open with this key")]
    Sealed,
    #[error("password hashing: {0}")]
    Hash(String),
}

/// Fresh random bytes.
pub fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| SecretError::Random)?;
    Ok(bytes)
}

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): ~50 ms a login here.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt = SaltString::encode_b64(&random::<16>()?).map_err(|e| SecretError::Hash(e.to_string()))?;
    Ok(hasher().hash_password(password.as_bytes(), &salt).map_err(|e| SecretError::Hash(e.to_string()))?.to_string())
}

/// Whether `password` is the one `phc` was made from.
pub fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password matches, verified when the officer id is unknown so
/// that an unknown id takes as long to refuse as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&format!("{:?}", random::<16>().unwrap_or_default())).unwrap_or_default())
}

/// What MLPS level 3 asks of an operator's password: 12 characters at
/// least, three of upper case, lower case, digits and symbols.
pub fn password_problem(password: &str) -> Option<&'static str> {
    if password.chars().count() < 12 {
        return Some("口令至少12个字符");
    }
    let classes = [
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Some("口令应包含大写字母、小写字母、数字、符号中的至少三类");
    }
    None
}

/// A one-time password an administrator hands over: 16 characters of four classes.
pub fn one_time_password() -> Result<String, SecretError> {
    const SETS: [&[u8]; 4] = [b"ABCDEFGHJKLMNPQRSTUVWXYZ", b"abcdefghijkmnopqrstuvwxyz", b"23456789", b"#%+=?@"];
    let bytes = random::<16>()?;
    Ok(bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let set = SETS[i % 4];
            char::from(set[usize::from(*b) % set.len()])
        })
        .collect())
}

/// The key TOTP secrets are sealed with.
pub struct SecretKey(LessSafeKey);

impl SecretKey {
    /// 32 bytes (a file of exactly 32 bytes, or 64 hex characters).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        let text = std::str::from_utf8(bytes).map(str::trim).unwrap_or("");
        let raw = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0)).collect()
        } else {
            bytes.to_vec()
        };
        let key = UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| SecretError::Key("expected 32 bytes".into()))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    pub fn load(path: &std::path::Path) -> Result<Self, SecretError> {
        Self::from_bytes(&std::fs::read(path).map_err(|e| SecretError::Key(format!("{}: {e}", path.display())))?)
    }

    /// `nonce || ciphertext || tag`, bound to `officer_id` (a sealed secret
    /// copied to another officer's row does not open).
    pub fn seal(&self, officer_id: &str, secret: &[u8]) -> Result<Vec<u8>, SecretError> {
        let nonce = random::<NONCE_LEN>()?;
        let mut sealed = secret.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(officer_id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SecretError::Sealed)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, officer_id: &str, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Sealed);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Sealed)?;
        let mut rest = rest.to_vec();
        let open = self
            .0
            .open_in_place(nonce, Aad::from(officer_id.as_bytes()), &mut rest)
            .map_err(|_| SecretError::Sealed)?;
        Ok(open.to_vec())
    }
}

/// SHA-256, hex: how a session token is kept.
pub fn token_hash(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh session token: 32 random bytes, hex.
pub fn new_token() -> Result<String, SecretError> {
    Ok(random::<32>()?.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("Correct-Horse-9").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(password_matches("Correct-Horse-9", &phc));
        assert!(!password_matches("correct-horse-9", &phc));
        assert!(!password_matches("anything", decoy_hash()));
    }

    #[test]
    fn password_policy() {
        assert!(password_problem("short1A!").is_some());
        assert!(password_problem("alllowercaseletters").is_some());
        assert!(password_problem("Lower-and-Upper").is_none());
        let otp = one_time_password().expect("otp");
        assert_eq!(password_problem(&otp), None, "{otp}");
    }

    #[test]
    fn sealed_secrets_open_only_for_their_officer() {
        let key = SecretKey::from_bytes(&[7u8; 32]).expect("key");
        let sealed = key.seal("officer-1", b"totp secret").expect("seal");
        assert_eq!(key.open("officer-1", &sealed).expect("open"), b"totp secret");
        assert!(key.open("officer-2", &sealed).is_err());
        let other = SecretKey::from_bytes(&[8u8; 32]).expect("key");
        assert!(other.open("officer-1", &sealed).is_err());
    }
}
