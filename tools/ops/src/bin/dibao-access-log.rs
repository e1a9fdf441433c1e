//! The auditor's view of a service's access log, read straight from its
//! database (the evidence does not depend on the service being honest):
//!
//! dibao-access-log --database-url URL --schema SCHEMA verify
//! dibao-access-log --database-url URL --schema SCHEMA person 身份证号
//!
//! `verify` recomputes the hash chain and names the first broken record
//! (exit 1); `person` lists every access to one person's data, for the
//! citizen who asks who looked.

use std::process::ExitCode;

use dibao_platform::runtime::settings::DatabaseSettings;
use dibao_platform::store::db;
use dibao_platform::trust::access_log;

const USAGE: &str = "用法：dibao-access-log --database-url 数据库地址 --schema 模式名 verify | person 身份证号";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut url, mut schema, mut rest) = (None, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--database-url" => url = args.next(),
            "--schema" => schema = args.next(),
            _ => rest.push(a),
        }
    }
    let (Some(url), Some(schema)) = (url, schema) else {
        eprintln!("缺少参数 --database-url 或 --schema\n{USAGE}");
        return ExitCode::from(2);
    };
    let settings = DatabaseSettings { url: url.into(), schema, pool_size: 1, owner_url: None, ca_cert: None };
    let pool = match db::connect(&settings).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("无法连接数据库：{e}");
            return ExitCode::FAILURE;
        }
    };
    match rest.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["verify"] => match access_log::verify_chain(&pool).await {
            Ok(check) => match check.broken {
                None => {
                    println!("访问日志完整：共 {} 条记录，哈希链全部校验通过。", check.records);
                    ExitCode::SUCCESS
                }
                Some(link) => {
                    println!("访问日志被篡改：第 {} 条记录起校验失败。{}", link.seq, link.reason);
                    println!("此前 {} 条记录校验通过。", check.records);
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("无法读取访问日志：{e}");
                ExitCode::FAILURE
            }
        },
        ["person", id] => {
            let mut after = 0;
            let mut total = 0;
            loop {
                let page = match access_log::accesses_to(&pool, id, None, after, 1000).await {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("无法读取访问日志：{e}");
                        return ExitCode::FAILURE;
                    }
                };
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in &page {
                    // Outcome records follow their query; the queries are what is counted.
                    total += usize::from(r.entry.completes.is_none());
                    let outcome = match r.entry.completes {
                        Some(asked) => format!("第 {asked} 条查询的结果：{}", r.entry.outcome),
                        None => r.entry.outcome.clone(),
                    };
                    println!(
                        "{}\t{}\t调用方 {}\t经办人 {}\t授权书 {}\t用途 {}\t项目 {}\t结果 {}",
                        r.seq,
                        r.at,
                        r.entry.caller,
                        r.entry.officer_id,
                        r.entry.consent_id,
                        r.entry.purpose,
                        r.entry.items.join("、"),
                        outcome
                    );
                }
            }
            println!("共 {total} 次查询。");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
