//! Imports a county's roster file (花名册, CSV or xlsx) into civil affairs
//! over gRPC with mutual TLS, and prints what was imported and, line by line
//! and column by column, what was not.
//!
//! roster-import --server HOST:PORT --ca ca.pem --cert me.pem --key me.key [--server-name NAME] FILE

use std::path::PathBuf;
use std::process::ExitCode;

use dibao_civil_affairs::roster_file;
use dibao_platform::server::connect;
use dibao_platform::tls::TlsMaterial;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;

const USAGE: &str = "用法：roster-import --server 主机:端口 --ca CA证书 --cert 本机证书 --key 本机私钥 [--server-name 名称] 花名册文件（.csv或.xlsx）";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut server, mut ca, mut cert, mut key, mut name, mut file) = (None, None, None, None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--server" => server = args.next(),
            "--ca" => ca = args.next(),
            "--cert" => cert = args.next(),
            "--key" => key = args.next(),
            "--server-name" => name = args.next(),
            _ if !a.starts_with("--") && file.is_none() => file = Some(PathBuf::from(a)),
            _ => {
                eprintln!("无法识别的参数“{a}”\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(server), Some(ca), Some(cert), Some(key), Some(file)) = (server, ca, cert, key, file) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("无法读取证书文件{p}：{e}"));
    let tls = match (read(&ca), read(&cert), read(&key)) {
        (Ok(ca), Ok(cert), Ok(key)) => TlsMaterial::from_pem(&ca, &cert, &key),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let parsed = match roster_file::open(&file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}：{e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let channel = match connect(&tls, &server, name.as_deref().unwrap_or("localhost")).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("无法连接民政服务{server}：{e}");
            return ExitCode::FAILURE;
        }
    };
    match roster_file::import(&mut CivilAffairsServiceClient::new(channel), parsed).await {
        Ok(report) => {
            print!("{report}");
            if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) }
        }
        Err(status) => {
            eprintln!("导入中断：{}（{:?}）", status.message(), status.code());
            ExitCode::FAILURE
        }
    }
}
