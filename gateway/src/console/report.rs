//! 核对报告: a verification report as the hub keeps it — what was checked
//! for whom under which consent, each item's department, source record and
//! as-of time, what could not be answered and why, and the findings held
//! against the county's rules (R-VER-1..4). Identity numbers as the hub
//! shows them to this officer.

use dibao_proto::department::v1::{Department, Item};
use dibao_proto::labels::Label;
use dibao_proto::verification::v1 as ver;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use http::StatusCode;

use super::Visit;
use super::html::{Page, esc, table, timestamp, yuan};

const HUB: &str = "verification-hub";
const NOT_FOUND: &str = "没有找到这份核对报告，或不在您的管辖范围内";

fn department(d: i32) -> &'static str {
    Department::try_from(d).unwrap_or(Department::Unspecified).label()
}

fn item(i: i32) -> &'static str {
    Item::try_from(i).unwrap_or(Item::Unspecified).label()
}

fn person(p: Option<&dibao_proto::common::v1::IdentityNumber>) -> String {
    format!("<span class=\"id\">{}</span>", esc(p.map(|p| p.value.as_str()).unwrap_or("")))
}

/// `GET /reports/{id}`.
pub async fn page(v: &Visit, id: &str) -> Page {
    if id.trim().is_empty() || id.len() > 64 {
        return Page::message(StatusCode::NOT_FOUND, "核对报告", NOT_FOUND);
    }
    let mut hub = match v.upstream(HUB) {
        Ok(c) => VerificationServiceClient::new(c),
        Err(status) => return Page::message(StatusCode::SERVICE_UNAVAILABLE, "核对报告", status.message()),
    };
    let request = ver::GetReportRequest { report_id: id.to_owned(), version: 0 };
    let report = match hub.get_report(v.request(HUB, request)).await {
        Ok(answer) => match answer.into_inner().report {
            Some(r) => r,
            None => return Page::message(StatusCode::NOT_FOUND, "核对报告", NOT_FOUND),
        },
        Err(status) => {
            let code =
                if status.code() == tonic::Code::NotFound { StatusCode::NOT_FOUND } else { StatusCode::FORBIDDEN };
            return Page::message(code, "核对报告", &super::refusal(&status, NOT_FOUND));
        }
    };
    let items: Vec<Vec<String>> = report
        .items
        .iter()
        .map(|i| {
            let record = i.record.clone().unwrap_or_default();
            let value = match (record.amount.map(|m| m.fen), record.quantity) {
                (Some(fen), _) if fen != 0 => format!("{} 元", yuan(fen)),
                (_, q) if q != 0 => q.to_string(),
                _ => String::new(),
            };
            let source = [record.source.as_str(), record.source_record_id.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" / ");
            vec![
                esc(department(i.department)),
                esc(item(i.item)),
                person(i.person.as_ref()),
                if i.unavailable { "—".to_owned() } else { esc(&source) },
                esc(&timestamp(record.as_of.as_ref())),
                esc(&value),
                if i.unavailable {
                    format!("<strong>未答复</strong>：{}", esc(&i.unavailable_reason))
                } else {
                    "已答复".to_owned()
                },
            ]
        })
        .collect();
    let findings: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            vec![
                esc(item(f.item)),
                person(f.person.as_ref()),
                esc(department(f.department)),
                esc(&f.reason),
                esc(&f.rule),
            ]
        })
        .collect();
    let body = format!(
        "<p class=\"notice {class}\" role=\"status\">{summary}</p>\
         <dl class=\"summary\"><dt>报告编号</dt><dd>{id} 第{version}版</dd><dt>是否完整</dt><dd id=\"complete\">{complete}</dd>\
         <dt>所在县</dt><dd>{county}</dd><dt>用途</dt><dd>{purpose}</dd><dt>核对人</dt><dd>{officer}</dd>\
         <dt>完成时间</dt><dd>{completed}</dd><dt>授权书</dt><dd>{consent}</dd>{note}</dl>\
         <h2>核对发现</h2>{findings}<h2>各部门答复</h2>{items}",
        class = if report.complete && report.findings.is_empty() { "ok" } else { "error" },
        summary = esc(&report.summary),
        id = esc(&report.report_id),
        version = report.version,
        complete = if report.complete { "完整" } else { "不完整（部分部门未答复或县级政策未知）" },
        county = v.place(&report.county.map(|c| c.code).unwrap_or_default()),
        purpose = esc(&report.purpose),
        officer = esc(&report.officer_id),
        completed = esc(&timestamp(report.completed_at.as_ref())),
        consent = esc(&report.consent_id),
        note = if report.policy_note.is_empty() {
            String::new()
        } else {
            format!("<dt>政策说明</dt><dd>{}</dd>", esc(&report.policy_note))
        },
        findings =
            table("findings", &["事项", "对象", "部门", "原因", "依据"], &findings, "未发现不符合县级政策的情况"),
        items = table(
            "report-items",
            &["部门", "事项", "对象", "来源记录", "数据截至", "金额/数量", "状态"],
            &items,
            "没有核对事项",
        ),
    );
    Page::ok("核对报告", body)
}
