//! Resync of the two rosters' views (R-SYNC-3), for after a long outage or
//! a broker's data loss: pipes civil affairs' snapshot of a division into
//! the poverty office's rebuild of its dibao view, and the poverty office's
//! snapshot into civil affairs' rebuild of its registered-poor view, and
//! prints what each side corrected. Run with the `ops` certificate.
//!
//! dibao-resync --server CIVIL_HOST:PORT --poverty POVERTY_HOST:PORT --division CODE --ca … --cert … --key …

use std::process::ExitCode;

use dibao_ops_tools::resync::resync;
use dibao_platform::files::command::ClientArgs;
use dibao_platform::runtime::server::connect;
use dibao_proto::sync::v1::RebuildReport;

const USAGE: &str = "用法：dibao-resync --server 民政服务地址 --poverty 扶贫服务地址 --division 行政区划代码 --ca CA证书 --cert 运维证书 --key 运维私钥";

fn print(side: &str, r: &RebuildReport) {
    println!(
        "{side}：快照{}户，补入{}户，更正{}户，删除{}户，无需更正{}户，低保贫困户标识变更{}户",
        r.households_in_snapshot, r.added, r.updated, r.removed, r.unchanged, r.flags_changed
    );
    for c in &r.corrections {
        println!("  {c}");
    }
}

async fn run(args: ClientArgs, poverty_addr: String, division: String) -> Result<(), String> {
    let civil = args.connect().await?;
    let poverty = connect(&args.tls, &poverty_addr, &args.server_name)
        .await
        .map_err(|e| format!("无法连接{poverty_addr}：{e}"))?;
    let done = resync(civil, poverty, &division).await?;
    print("扶贫部门的低保名单视图", &done.dibao_view);
    print("民政部门的建档立卡名单视图", &done.poverty_view);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match ClientArgs::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (mut poverty, mut division) = (None, None);
    let mut rest = args.rest.clone().into_iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--poverty" => poverty = rest.next(),
            "--division" => division = rest.next(),
            _ => {
                eprintln!("无法识别的参数“{a}”\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(poverty), Some(division)) = (poverty, division) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(args, poverty, division).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
