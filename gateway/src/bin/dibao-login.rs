//! An officer's login at the gateway from a terminal, for the commands
//! (imports, the operator's tools, the registry's administration):
//!
//! dibao-login --server GATEWAY:PORT --ca ca.pem --officer ID [--out FILE]
//!
//! The password is read from `DIBAO_PASSWORD` or the first line of standard
//! input, the authenticator's code from `DIBAO_TOTP` or the next line. The
//! session token is written to FILE (default `dibao-token`, readable by the
//! owner only) for `--token FILE`; `dibao-login --logout` ends it.

use std::io::BufRead;
use std::process::ExitCode;

const USAGE: &str = "用法：dibao-login --server 网关地址 --ca CA证书 --officer 经办人编号 [--out 凭据文件]；dibao-login --server … --ca … --logout [--out 凭据文件]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut server, mut ca, mut officer, mut out, mut logout) = (None, None, None, "dibao-token".to_owned(), false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--server" => server = args.next(),
            "--ca" => ca = args.next(),
            "--officer" => officer = args.next(),
            "--out" => out = args.next().unwrap_or(out),
            "--logout" => logout = true,
            _ => {
                eprintln!("无法识别的参数“{a}”\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(server), Some(ca)) = (server, ca) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let ca = std::path::PathBuf::from(ca);
    if logout {
        let token = std::fs::read_to_string(&out).unwrap_or_default();
        let url = format!("https://{server}/api/logout");
        return match dibao_gateway::https::post_json(&url, Some(&ca), &serde_json::json!({}), Some(token.trim())).await
        {
            Ok((status, _)) if status.is_success() => {
                let _ = std::fs::remove_file(&out);
                println!("已注销");
                ExitCode::SUCCESS
            }
            Ok((_, body)) => {
                eprintln!("注销失败：{}", message(&body));
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("无法连接网关：{e}");
                ExitCode::FAILURE
            }
        };
    }
    let Some(officer) = officer else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut stdin = std::io::stdin().lock().lines();
    let mut next =
        |env: &str| std::env::var(env).ok().or_else(|| stdin.next().and_then(Result::ok)).unwrap_or_default();
    let password = next("DIBAO_PASSWORD");
    let totp = next("DIBAO_TOTP");
    let body = serde_json::json!({ "officer_id": officer, "password": password, "totp": totp.trim() });
    let url = format!("https://{server}/api/login");
    match dibao_gateway::https::post_json(&url, Some(&ca), &body, None).await {
        Ok((status, body)) if status.is_success() => {
            let session: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let token = session["token"].as_str().unwrap_or_default();
            if let Err(e) = write_private(&out, token) {
                eprintln!("无法写入凭据文件{out}：{e}");
                return ExitCode::FAILURE;
            }
            println!(
                "已登录：{}（{}，辖区{}），会话有效至{}；凭据已写入{out}",
                session["officer"]["name"].as_str().unwrap_or_default(),
                session["officer"]["role_names"]
                    .as_array()
                    .map_or(String::new(), |r| { r.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("、") }),
                session["officer"]["division"].as_str().unwrap_or_default(),
                session["expires_at"].as_str().unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok((_, body)) => {
            eprintln!("登录失败：{}", message(&body));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("无法连接网关：{e}");
            ExitCode::FAILURE
        }
    }
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// Writes `token` to `path`, readable and writable by its owner alone.
fn write_private(path: &str, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    file.write_all(token.as_bytes())
}
