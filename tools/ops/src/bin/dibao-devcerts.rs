//! `dibao-devcerts DIR IDENTITY...`: writes a development CA (`ca.pem`) and a
//! certificate and key per identity (`IDENTITY.pem`, `IDENTITY.key`) for the
//! local stack. Does nothing when every file is already there, so restarting
//! the stack keeps the certificates services and operators already use.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), identities) = (args.next().map(PathBuf::from), args.collect::<Vec<_>>()) else {
        eprintln!("usage: dibao-devcerts DIR IDENTITY...");
        return ExitCode::from(2);
    };
    let complete = dir.join("ca.pem").is_file()
        && identities
            .iter()
            .all(|id| dir.join(format!("{id}.pem")).is_file() && dir.join(format!("{id}.key")).is_file());
    if complete {
        println!("dev certificates already in {}", dir.display());
        return ExitCode::SUCCESS;
    }
    let ids: Vec<&str> = identities.iter().map(String::as_str).collect();
    let result = dibao_ops_tools::devpki::DevCa::generate("dibao-mesh development CA")
        .map_err(anyhow::Error::from)
        .and_then(|ca| ca.write_all(&dir, &ids));
    match result {
        Ok(()) => {
            println!("wrote a development CA and {} certificates to {}", ids.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dibao-devcerts: {e:#}");
            ExitCode::FAILURE
        }
    }
}
