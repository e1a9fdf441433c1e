//! Imports a county's roster file (建档立卡花名册, CSV or xlsx) into the poverty office's service
//! over gRPC with mutual TLS, and prints what was imported and, line by line
//! and column by column, what was not.
//!
//! poor-roster-import --server HOST:PORT --ca ca.pem --cert me.pem --key me.key [--server-name NAME] FILE

use std::path::PathBuf;
use std::process::ExitCode;

use dibao_platform::cli::ClientArgs;
use dibao_poverty_alleviation::roster_file;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;

const USAGE: &str = "用法：poor-roster-import --server 主机:端口 --ca CA证书 --cert 本机证书 --key 本机私钥 [--server-name 名称] 花名册文件（.csv或.xlsx）";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match ClientArgs::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let [file] = args.rest.as_slice() else {
        eprintln!("请给出一个花名册文件\n{USAGE}");
        return ExitCode::from(2);
    };
    let file = PathBuf::from(file);
    let parsed = match roster_file::open(&file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}：{e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let channel = match args.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match roster_file::import(&mut PovertyAlleviationServiceClient::new(channel), parsed).await {
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
