//! `dibao-assertion-key DIR [KEY_ID]`: writes the local stack's signing
//! keys — the hub's consent-assertion key (`DIR/hub-assertion.pk8`) with the
//! line every adapter trusts (`DIR/trusted-keys`); the gateway's
//! officer-assertion key (`DIR/officer-issuer.pk8`) with the file every
//! service trusts it from (`DIR/officer-issuers`); and the gateway's
//! secret key sealing TOTP secrets (`DIR/gateway-secret.key`). Keeps what is
//! there. Production keys come from the province's key management; a new
//! key id is added to the trusted files before anyone signs with it.

use std::path::PathBuf;
use std::process::ExitCode;

use dibao_platform::trust::assertion::AssertionSigner;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: dibao-assertion-key DIR [KEY_ID]");
        return ExitCode::from(2);
    };
    let key_id = args.next().unwrap_or_else(|| "hub-1".to_owned());
    if let Err(e) = dibao_ops_tools::devpki::officer_issuer(&dir) {
        eprintln!("dibao-assertion-key: the gateway's officer-assertion key: {e:#}");
        return ExitCode::FAILURE;
    }
    let secret = dir.join("gateway-secret.key");
    if !secret.is_file() {
        let mut bytes = [0u8; 32];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err()
            || std::fs::write(&secret, bytes).is_err()
        {
            eprintln!("dibao-assertion-key: cannot write {}", secret.display());
            return ExitCode::FAILURE;
        }
    }
    let (key, trusted) = (dir.join("hub-assertion.pk8"), dir.join("trusted-keys"));
    if key.is_file() && trusted.is_file() {
        println!("assertion keys already in {}", dir.display());
        return ExitCode::SUCCESS;
    }
    let der = AssertionSigner::generate_pkcs8();
    let Some(signer) = AssertionSigner::from_pkcs8(&key_id, &der) else {
        eprintln!("dibao-assertion-key: generated key does not load");
        return ExitCode::FAILURE;
    };
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&key, &der))
        .and_then(|()| std::fs::write(&trusted, signer.trusted_key_line()));
    match written {
        Ok(()) => {
            println!("wrote the hub's assertion key {key_id} and its trusted-keys line to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dibao-assertion-key: {e}");
            ExitCode::FAILURE
        }
    }
}
