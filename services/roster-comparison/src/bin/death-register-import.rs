//! Imports public security's death register (公安死亡人员信息, CSV or xlsx:
//! 身份证号, 姓名, 死亡日期, 信息来源) into the roster comparison over gRPC
//! with mutual TLS, and prints what was imported and, line by line, what was not.
//!
//! death-register-import --server HOST:PORT --ca ca.pem --token FILE [--server-name NAME] FILE

use dibao_roster_comparison::register_file;

const USAGE: &str = "用法：death-register-import --server 主机:端口 --ca CA证书 --token 登录凭据文件（dibao-login） [--server-name 名称] 死亡人员信息文件（.csv或.xlsx）";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    dibao_platform::files::command::import_command(USAGE, register_file::open_deaths, register_file::import_deaths)
        .await
}
