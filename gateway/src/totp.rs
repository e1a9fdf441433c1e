//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, six
//! digits — what every authenticator app reads from an `otpauth://` link),
//! the second factor of an officer's login.

use ring::hmac;

/// Seconds per step.
pub const STEP: i64 = 30;
const DIGITS: u32 = 6;
/// Steps either side of now a code is accepted in (clock drift of a phone).
const WINDOW: i64 = 1;

/// The code of `secret` for time step `step`.
pub fn code_at(secret: &[u8], step: i64) -> u32 {
    // HMAC-SHA1 is what RFC 6238 and the authenticator apps use; a
    // 30-second code gains nothing from a longer hash.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    binary % 10u32.pow(DIGITS)
}

/// The step `code` belongs to, if it is the code of a step within the
/// window around `unix_seconds` and later than `last_used` (a code is
/// accepted once).
pub fn verify(secret: &[u8], code: &str, unix_seconds: i64, last_used: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = unix_seconds.div_euclid(STEP);
    (now - WINDOW..=now + WINDOW).filter(|s| *s > last_used).find(|s| code_at(secret, *s) == wanted)
}

/// The code as an authenticator app shows it (six digits, leading zeros).
pub fn format(code: u32) -> String {
    format!("{code:06}")
}

/// RFC 4648 base32 without padding, as `otpauth://` links carry a secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The enrolment link an authenticator app reads.
pub fn otpauth_uri(issuer: &str, officer_id: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{issuer}:{officer_id}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B, SHA-1 (eight digits there; six are their last six).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [(59, 94287082u32), (1111111109, 7081804), (1111111111, 14050471), (1234567890, 89005924)] {
            assert_eq!(code_at(secret, t / STEP), eight % 1_000_000, "t = {t}");
        }
    }

    #[test]
    fn a_code_is_accepted_once_and_only_near_its_time() {
        let secret = b"12345678901234567890";
        let code = format(code_at(secret, 1234567890 / STEP));
        let step = verify(secret, &code, 1234567890, 0).expect("accepted");
        assert_eq!(verify(secret, &code, 1234567890, step), None, "replayed");
        assert_eq!(verify(secret, &code, 1234567890 + 120, 0), None, "too late");
        assert_eq!(verify(secret, "12345", 1234567890, 0), None);
        assert_eq!(verify(secret, "abcdef", 1234567890, 0), None);
    }

    #[test]
    fn base32_as_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        let secret = b"12345678901234567890";
        assert_eq!(crate::client::totp_secret(&base32(secret)).as_deref(), Some(&secret[..]));
    }
}
