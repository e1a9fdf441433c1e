//! Imports a county's registered-poor roster file (建档立卡花名册, CSV or
//! xlsx) into the poverty office's service over gRPC with mutual TLS, and
//! prints what was imported and, line by line and column by column, what
//! was not.
//!
//! poor-roster-import --server HOST:PORT --ca ca.pem --token FILE [--server-name NAME] FILE

use dibao_poverty_alleviation::roster_file;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;

const USAGE: &str = "用法：poor-roster-import --server 主机:端口 --ca CA证书 --token 登录凭据文件（dibao-login） [--server-name 名称] 花名册文件（.csv或.xlsx）";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    dibao_platform::files::command::import_command(USAGE, roster_file::open, |channel, households| async move {
        roster_file::import(&mut PovertyAlleviationServiceClient::new(channel), households).await
    })
    .await
}
