//! 运行监控: the pipeline of each service the gateway forwards to, for the
//! province's system operators — the outbox's backlog, the inbox's lag per
//! partition against the broker, the dead letters with their reasons — and
//! a dead letter published again once its cause is fixed. Each service
//! answers only a system operator's assertion (its own table); anyone else
//! is shown the service's refusal.

use dibao_proto::ops::v1 as ops;
use dibao_proto::ops::v1::ops_service_client::OpsServiceClient;
use http::StatusCode;

use super::application::Signed;
use super::html::{Page, alert, esc, table, timestamp};
use super::{Form, Visit};

/// The services whose pipelines the page shows, with their Chinese names.
const SERVICES: &[(&str, &str)] = &[
    ("civil-affairs", "民政（低保、特困）"),
    ("poverty-alleviation", "乡村振兴（防返贫监测）"),
    ("verification-hub", "核对平台"),
    ("roster-comparison", "台账比对"),
];

async fn service(v: &Visit, service: &str) -> String {
    let channel = match v.upstream(service) {
        Ok(c) => c,
        Err(status) => return alert("", status.message()),
    };
    let mut client = OpsServiceClient::new(channel);
    let status = match client.get_pipeline_status(v.request(service, ops::GetPipelineStatusRequest {})).await {
        Ok(s) => s.into_inner(),
        Err(status) => return alert("", &super::refusal(&status, "无权查看")),
    };
    let mut out = format!(
        "<dl class=\"summary pipeline\" data-service=\"{name}\"><dt>待发布（发件箱积压）</dt><dd class=\"backlog\">{pending}</dd>\
         <dt>最早待发布</dt><dd>{oldest}</dd><dt>已发布</dt><dd>{published}</dd>\
         <dt>已接收应用</dt><dd>{applied}</dd><dt>最近应用</dt><dd>{last}</dd>\
         <dt>未处理死信</dt><dd class=\"dead-open\">{dead}</dd></dl>",
        name = esc(service),
        pending = status.outbox_pending,
        oldest = esc(&or_dash(timestamp(status.oldest_pending_at.as_ref()))),
        published = status.outbox_published,
        applied = status.inbox_applied,
        last = esc(&or_dash(timestamp(status.last_applied_at.as_ref()))),
        dead = status.dead_letters_open,
    );
    if !status.lag_error.is_empty() {
        out.push_str(&alert("", &format!("无法从消息队列读取位点，滞后未知：{}", status.lag_error)));
    }
    let lag: Vec<Vec<String>> = status
        .consumer_lag
        .iter()
        .map(|l| {
            vec![
                esc(&l.topic),
                l.partition.to_string(),
                l.position.to_string(),
                l.high_watermark.to_string(),
                if l.lag > 0 { format!("<strong>{}</strong>", l.lag) } else { "0".to_owned() },
            ]
        })
        .collect();
    out.push_str(&table("lag", &["主题", "分区", "已应用至", "队列末端", "滞后"], &lag, "本服务不接收事件"));
    let request = ops::ListDeadLettersRequest { limit: 50, include_retried: true };
    match client.list_dead_letters(v.request(service, request)).await {
        Ok(list) => {
            let rows: Vec<Vec<String>> =
                list.into_inner().dead_letters.iter().map(|d| dead_letter_row(v, service, d)).collect();
            out.push_str(&table(
                "dead-letters",
                &["编号", "主题/分区/位点", "键", "原因", "时间", ""],
                &rows,
                "没有死信",
            ));
        }
        Err(status) => out.push_str(&alert("", &super::refusal(&status, "无权查看"))),
    }
    out
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "—".to_owned() } else { s }
}

fn dead_letter_row(v: &Visit, service: &str, d: &ops::DeadLetter) -> Vec<String> {
    let action = match &d.retried_at {
        Some(at) => format!("已重新发布（{}）", esc(&timestamp(Some(at)))),
        None => format!(
            "<form method=\"post\" action=\"/operations/retry\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"service\" value=\"{service}\">\
             <input type=\"hidden\" name=\"id\" value=\"{id}\">\
             <button type=\"submit\" id=\"retry-{service}-{id}\">重新发布</button></form>",
            csrf = esc(&v.csrf),
            service = esc(service),
            id = d.id,
        ),
    };
    vec![
        d.id.to_string(),
        format!("{}/{}/{}", esc(&d.topic), d.partition, d.offset),
        esc(&d.key),
        esc(&d.reason),
        esc(&timestamp(d.dead_lettered_at.as_ref())),
        action,
    ]
}

/// `GET /operations`.
pub async fn page(v: &Visit, query: &Form) -> Page {
    let mut body = match query.get("retried") {
        "" => String::new(),
        event => format!(
            "<p class=\"notice ok\" role=\"status\" id=\"retried-notice\">已重新发布，新事件编号 {}</p>",
            esc(event)
        ),
    };
    body.push_str(
        "<p class=\"hint\">发件箱积压与接收滞后持续增长时，请检查消息队列与数据库；死信在原因排除后再重新发布。</p>",
    );
    // Each service in turn: an operator's page, not a hot path.
    for (name, label) in SERVICES {
        body.push_str(&format!("<h2>{}</h2>", esc(label)));
        body.push_str(&service(v, name).await);
    }
    Page::ok("运行监控", body)
}

/// `POST /operations/retry`.
pub async fn retry(v: &Visit, form: &Form) -> Signed {
    let refused = |message: &str| Signed::Page(Page::message(StatusCode::BAD_REQUEST, "运行监控", message));
    let Some((service, _)) = SERVICES.iter().find(|(s, _)| *s == form.get("service")) else {
        return refused("service：没有这个服务");
    };
    let Ok(id) = form.get("id").parse::<i64>() else {
        return refused("id：死信编号应为整数");
    };
    let channel = match v.upstream(service) {
        Ok(c) => c,
        Err(status) => return refused(status.message()),
    };
    let request = ops::RetryDeadLetterRequest { id };
    match OpsServiceClient::new(channel).retry_dead_letter(v.request(service, request)).await {
        Ok(answer) => {
            let event = answer.into_inner().event_id;
            tracing::info!(officer = %v.session.claims.officer_id, service, id, %event, "dead letter retried at the console");
            Signed::Done(format!("/operations?retried={event}"))
        }
        Err(status) => refused(&super::refusal(&status, "没有找到这条死信")),
    }
}
