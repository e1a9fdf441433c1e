//! Imports a county's roster file (花名册, CSV or xlsx) into civil affairs
//! over gRPC with mutual TLS, and prints what was imported and, line by line
//! and column by column, what was not.
//!
//! roster-import --server HOST:PORT --ca ca.pem --token FILE [--server-name NAME] FILE

use dibao_civil_affairs::roster_file;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;

const USAGE: &str = "用法：roster-import --server 主机:端口 --ca CA证书 --token 登录凭据文件（dibao-login） [--server-name 名称] 花名册文件（.csv或.xlsx）";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    dibao_platform::files::command::import_command(USAGE, roster_file::open, |channel, households| async move {
        roster_file::import(&mut CivilAffairsServiceClient::new(channel), households).await
    })
    .await
}
