//! Imports the registry of dibao handlers and village committee members and
//! their close relatives (低保经办人员和村干部近亲属备案表, CSV or xlsx:
//! 干部身份证号, 干部姓名, 身份, 所在村（社区）代码, 人员身份证号, 人员姓名,
//! 关系) into the roster comparison; it replaces the registry of the county
//! of its first line, all or nothing.
//!
//! officials-import --server HOST:PORT --ca ca.pem --token FILE [--server-name NAME] FILE

use dibao_roster_comparison::register_file;

const USAGE: &str = "用法：officials-import --server 主机:端口 --ca CA证书 --token 登录凭据文件（dibao-login） [--server-name 名称] 备案表文件（.csv或.xlsx）";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    dibao_platform::files::command::import_command(
        USAGE,
        register_file::open_officials,
        register_file::import_officials,
    )
    .await
}
