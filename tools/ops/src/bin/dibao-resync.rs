//! Resync of the two rosters' views (R-SYNC-3), for after a long outage or
//! a broker's data loss: pipes civil affairs' snapshot of a division into
//! the poverty office's rebuild of its dibao view, and the poverty office's
//! snapshot into civil affairs' rebuild of its registered-poor view, and
//! prints what each side corrected. Run by a system operator logged in with
//! `dibao-login`, through the gateway (which reaches both rosters).
//!
//! dibao-resync --server GATEWAY:PORT --ca ca.pem --token FILE --division CODE

use std::process::ExitCode;

use dibao_ops_tools::resync::resync;
use dibao_platform::files::command::ClientArgs;
use dibao_proto::sync::v1::RebuildReport;

const USAGE: &str = "用法：dibao-resync --server 网关地址 --ca CA证书 --token 登录凭据文件 --division 行政区划代码";

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
    let poverty = args.connect_to(&poverty_addr).await?;
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
    let poverty = poverty.unwrap_or_else(|| args.server.clone());
    let (poverty, Some(division)) = (poverty, division) else {
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
