//! `dibao-assertion-key DIR [KEY_ID]`: writes the hub's Ed25519 assertion
//! key (`DIR/hub-assertion.pk8`) and the line every adapter trusts
//! (`DIR/trusted-keys`) for the local stack. Does nothing when both are
//! there. Production keys come from the province's key management; a new
//! key id is added to `trusted-keys` before the hub signs with it.

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
    let (key, trusted) = (dir.join("hub-assertion.pk8"), dir.join("trusted-keys"));
    if key.is_file() && trusted.is_file() {
        println!("assertion key already in {}", dir.display());
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
