//! The operator's view of one service's pipeline, through the gateway, as a
//! system operator logged in with `dibao-login`:
//!
//! dibao-ops --server GATEWAY:PORT --ca ca.pem --token FILE --service civil-affairs status
//! dibao-ops … dead-letters [--all]
//! dibao-ops … retry ID
//!
//! `status` prints the outbox backlog, the inbox's lag per partition against
//! the broker, the event last applied and the open dead letters; it exits 1
//! when anything is dead-lettered, so a monitoring job can alert on it.

use std::process::ExitCode;

use dibao_platform::files::command::ClientArgs;
use dibao_proto::ops::v1::ops_service_client::OpsServiceClient;
use dibao_proto::ops::v1::{GetPipelineStatusRequest, ListDeadLettersRequest, RetryDeadLetterRequest};

const USAGE: &str = "用法：dibao-ops --server 网关地址 --ca CA证书 --token 登录凭据文件 --service 服务名 status | dead-letters [--all] | retry 编号";

fn time(t: Option<prost_types::Timestamp>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .map_or_else(|| "—".to_owned(), |t| t.to_string())
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
    let channel = match args.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut client = OpsServiceClient::new(channel);
    let rest: Vec<&str> = args.rest.iter().map(String::as_str).collect();
    let result = match rest.as_slice() {
        ["status"] => match client.get_pipeline_status(GetPipelineStatusRequest {}).await {
            Ok(s) => {
                let s = s.into_inner();
                println!(
                    "发件箱：待发布{}条（最早{}），已发布{}条",
                    s.outbox_pending,
                    time(s.oldest_pending_at),
                    s.outbox_published
                );
                println!(
                    "收件箱：已应用{}条，最近一次{}（{} {}）",
                    s.inbox_applied,
                    time(s.last_applied_at),
                    s.last_applied_event_type,
                    s.last_applied_key
                );
                for l in &s.consumer_lag {
                    println!(
                        "  {} 分区{}：已应用至{}，队列末端{}，积压{}条",
                        l.topic, l.partition, l.position, l.high_watermark, l.lag
                    );
                }
                if !s.lag_error.is_empty() {
                    println!("  积压未知：{}", s.lag_error);
                }
                println!("未处理的死信：{}条", s.dead_letters_open);
                return if s.dead_letters_open > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS };
            }
            Err(e) => Err(e),
        },
        ["dead-letters", more @ ..] => {
            let all = more.contains(&"--all");
            match client.list_dead_letters(ListDeadLettersRequest { limit: 1000, include_retried: all }).await {
                Ok(r) => {
                    for d in r.into_inner().dead_letters {
                        let retried = if d.retried_at.is_some() {
                            format!("，已于{}重新投递", time(d.retried_at))
                        } else {
                            String::new()
                        };
                        println!(
                            "#{} {} 分区{} 偏移{} 键{}：{}（{}{}）",
                            d.id,
                            d.topic,
                            d.partition,
                            d.offset,
                            d.key,
                            d.reason,
                            time(d.dead_lettered_at),
                            retried
                        );
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        ["retry", id] => match id.parse() {
            Ok(id) => client.retry_dead_letter(RetryDeadLetterRequest { id }).await.map(|r| {
                println!("死信#{id}已重新排队投递，事件编号{}", r.into_inner().event_id);
            }),
            Err(_) => {
                eprintln!("死信编号“{id}”应为数字");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(status) => {
            eprintln!("{}（{:?}）", status.message(), status.code());
            ExitCode::FAILURE
        }
    }
}
