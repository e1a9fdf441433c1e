//! 我的待办: the applications waiting for a step the officer signs, oldest
//! first, and for a county's officers how many wait in each township; for a
//! township's officers, the households due for review, priority candidates
//! from the poverty roster first (R-REV-2); the complaints open in the
//! jurisdiction, overdue first (R-AUD-2). Each list is the service's
//! answer for this officer: their jurisdiction, their roles.

use std::collections::BTreeMap;

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, OfficerRole, PageRequest, Relation};
use dibao_proto::labels::Label;
use dibao_proto::types::DivisionLevel;

use super::Visit;
use super::html::{Page, esc, table, timestamp};

const CIVIL: &str = "civil-affairs";

/// The head of a household (the first member when none is marked head): name.
pub fn head_name(h: Option<&ca::Household>) -> String {
    let members = h.map(|h| h.members.as_slice()).unwrap_or_default();
    members
        .iter()
        .find(|m| m.relation == Relation::Head as i32)
        .or_else(|| members.first())
        .and_then(|m| m.person.as_ref())
        .map(|p| p.name.clone())
        .unwrap_or_default()
}

fn village(h: Option<&ca::Household>) -> String {
    h.and_then(|h| h.village.as_ref()).map(|v| v.code.clone()).unwrap_or_default()
}

fn step_label(step: i32) -> &'static str {
    ca::ProcessStep::try_from(step).unwrap_or(ca::ProcessStep::Unspecified).label()
}

fn kind_label(kind: i32) -> &'static str {
    if kind == ca::ApplicationKind::Exit as i32 { "退出" } else { "申请" }
}

pub async fn page(v: &Visit) -> Page {
    let channel = match v.upstream(CIVIL) {
        Ok(c) => c,
        Err(status) => return Page::message(http::StatusCode::SERVICE_UNAVAILABLE, "我的待办", status.message()),
    };
    let mut civil = CivilAffairsServiceClient::new(channel);
    let division = v.session.claims.division.clone();
    let mut body = String::new();

    // Reviews due in my township (R-REV-1, R-REV-2).
    let reviewer = v.session.claims.roles.iter().any(|r| {
        matches!(r, OfficerRole::TownshipCaseworker | OfficerRole::TownshipReviewer | OfficerRole::CountyApprover)
    });
    let mut reviewing = civil.clone();
    let reviews = async {
        if division.level() == DivisionLevel::Township && reviewer {
            reviews_due(v, &mut reviewing, division.as_str()).await
        } else {
            String::new()
        }
    };
    // Applications waiting for my step; the three lists are asked for at once.
    let waiting = civil.list_applications(v.request(
        CIVIL,
        ca::ListApplicationsRequest {
            division: Some(DivisionCode { code: division.as_str().to_owned() }),
            waiting_for_me: true,
            page: Some(PageRequest { page_size: 100, page_token: String::new() }),
        },
    ));
    let (waiting, reviews, entries, complaints) =
        tokio::join!(waiting, reviews, open_entries(v, division.as_str()), open_complaints(v, division.as_str()));
    body.push_str("<section aria-labelledby=\"waiting\"><h2 id=\"waiting\">待我签署的申请</h2>");
    match waiting {
        Ok(answer) => {
            let answer = answer.into_inner();
            let rows: Vec<Vec<String>> = answer
                .applications
                .iter()
                .map(|a| {
                    let notice = timestamp(a.notice_ends_at.as_ref());
                    vec![
                        format!(
                            "<a href=\"/applications/{}\">{}</a>",
                            esc(&a.application_id),
                            esc(&head_name(a.household.as_ref()))
                        ),
                        v.place(&village(a.household.as_ref())),
                        kind_label(a.kind).to_owned(),
                        esc(step_label(a.next_step)),
                        esc(&timestamp(a.submitted_at.as_ref())),
                        if notice.is_empty() { "—".to_owned() } else { esc(&notice) },
                    ]
                })
                .collect();
            body.push_str(&table(
                "work",
                &["户主", "村", "类型", "待办环节", "提交时间", "公示期满"],
                &rows,
                "暂无待您签署的申请",
            ));
            if answer.page.is_some_and(|p| !p.next_page_token.is_empty()) {
                body.push_str("<p class=\"hint\">仅列出最早的100件，请先办理这些。</p>");
            }
            if matches!(division.level(), DivisionLevel::County | DivisionLevel::City | DivisionLevel::Province) {
                body.push_str(&per_township(v, &answer.applications));
            }
        }
        Err(status) => body.push_str(&super::html::alert("", &super::refusal(&status, "无权查看本区划的申请"))),
    }
    body.push_str("</section>");
    body.push_str(&reviews);
    body.push_str(&complaints);
    body.push_str(&entries);
    body.push_str(&held(v));
    Page::ok("我的待办", body)
}

/// The campaigns and comparison runs held for this officer's jurisdiction
/// (running, or ended within the hour), each linked to its progress.
fn held(v: &Visit) -> String {
    use super::live::Progress;
    fn rows<P: Progress>(v: &Visit, list: Vec<(String, super::live::Watched<P>)>, path: &str) -> Vec<Vec<String>> {
        list.into_iter()
            .map(|(id, w)| {
                let p = w.progress.borrow().clone();
                vec![
                    format!("<a href=\"{path}/{}\">{}</a>", esc(&id), esc(&w.title)),
                    v.place(&w.division),
                    format!("{}%", p.percent()),
                    if p.finished() { "已结束".to_owned() } else { "进行中".to_owned() },
                ]
            })
            .collect()
    }
    let mut all = rows(v, v.gw.campaigns.visible(v), "/campaigns");
    all.extend(rows(v, v.gw.runs.visible(v), "/comparison/runs"));
    if all.is_empty() {
        return String::new();
    }
    format!(
        "<section aria-labelledby=\"held\"><h2 id=\"held\">集中核查与台账比对</h2>{}</section>",
        table("held", &["事项", "范围", "进度", "状态"], &all, "")
    )
}

/// The comparison's entries still to decide in my jurisdiction, per
/// township and list, oldest first (R-CMP-3); nothing for a role that does
/// not work the lists.
async fn open_entries(v: &Visit, division: &str) -> String {
    use dibao_proto::comparison::v1 as cmp;
    use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
    const COMPARISON: &str = "roster-comparison";
    let Ok(channel) = v.upstream(COMPARISON) else { return String::new() };
    let request = cmp::ReportOpenItemsRequest { division: Some(DivisionCode { code: division.to_owned() }) };
    let report = match ComparisonServiceClient::new(channel).report_open_items(v.request(COMPARISON, request)).await {
        Ok(r) => r.into_inner(),
        Err(status) if status.code() == tonic::Code::PermissionDenied => return String::new(),
        Err(status) if status.code() == tonic::Code::NotFound || status.code() == tonic::Code::FailedPrecondition => {
            return "<section><h2 id=\"entries\">待处理的比对条目</h2><p class=\"empty\">本区划尚无已完成的比对</p></section>"
                .to_owned();
        }
        Err(status) => {
            return format!(
                "<section><h2 id=\"entries\">待处理的比对条目</h2>{}</section>",
                super::html::alert("", &super::refusal(&status, "无权查看本区划的比对结果"))
            );
        }
    };
    let rows: Vec<Vec<String>> = report
        .townships
        .iter()
        .filter(|t| t.open > 0)
        .map(|t| {
            let kind = cmp::ListKind::try_from(t.kind).unwrap_or(cmp::ListKind::Unspecified);
            vec![
                v.place(&t.township.as_ref().map(|d| d.code.clone()).unwrap_or_default()),
                format!("<a href=\"/comparison?kind={}\">{}</a>", t.kind, esc(kind.label())),
                t.open.to_string(),
                t.over_30_days.to_string(),
                t.over_90_days.to_string(),
            ]
        })
        .collect();
    format!(
        "<section aria-labelledby=\"entries\"><h2 id=\"entries\">待处理的比对条目</h2>{}</section>",
        table("entries", &["乡镇", "清单", "待处理", "超过30天", "超过90天"], &rows, "没有待处理的比对条目")
    )
}

/// The complaints still open in my jurisdiction (R-AUD-2), those past
/// their deadline first, and for a county's officers how many are open and
/// overdue in each township; nothing for a role that does not handle them.
async fn open_complaints(v: &Visit, division: &str) -> String {
    use super::html::pb_date;
    use ca::complaint_service_client::ComplaintServiceClient;
    let Ok(channel) = v.upstream(CIVIL) else { return String::new() };
    let request = ca::ListComplaintsRequest {
        division: Some(DivisionCode { code: division.to_owned() }),
        open_only: true,
        overdue_only: false,
        page: Some(PageRequest { page_size: 100, page_token: String::new() }),
    };
    let answer = match ComplaintServiceClient::new(channel).list_complaints(v.request(CIVIL, request)).await {
        Ok(a) => a.into_inner(),
        Err(status) if status.code() == tonic::Code::PermissionDenied => return String::new(),
        Err(status) => {
            return format!(
                "<section><h2 id=\"complaints\">待办理的举报、信访</h2>{}</section>",
                super::html::alert("", &super::refusal(&status, "无权查看本区划的举报、信访"))
            );
        }
    };
    let date = |d: Option<&dibao_proto::common::v1::Date>| {
        Some(pb_date(d)).filter(|s| !s.is_empty()).unwrap_or_else(|| "—".to_owned())
    };
    let mut complaints = answer.complaints;
    complaints.sort_by_key(|c| !c.overdue);
    let rows: Vec<Vec<String>> = complaints
        .iter()
        .map(|c| {
            let township = c.township.as_ref().map(|t| v.place(&t.code)).unwrap_or_else(|| "尚未分派".to_owned());
            let status = ca::ComplaintStatus::try_from(c.status).unwrap_or(ca::ComplaintStatus::Unspecified);
            let content: String = c.content.chars().take(40).collect();
            vec![
                format!("<a href=\"/complaints/{}\">{}</a>", esc(&c.complaint_id), esc(&c.complaint_number)),
                esc(&date(c.received_on.as_ref())),
                esc(ca::ComplaintChannel::try_from(c.channel).unwrap_or(ca::ComplaintChannel::Unspecified).label()),
                township,
                esc(&date(c.due_on.as_ref())),
                if c.overdue { "<strong>已超期</strong>".to_owned() } else { esc(status.label()) },
                esc(&content),
            ]
        })
        .collect();
    let intake = if super::complaint::has(v, super::complaint::INTAKE) {
        "<p><a href=\"/complaints/new\" id=\"file-complaint\">登记举报、信访</a></p>"
    } else {
        ""
    };
    let mut out = format!(
        "<section aria-labelledby=\"complaints\"><h2 id=\"complaints\">待办理的举报、信访</h2>{intake}{}",
        table(
            "complaints",
            &["编号", "收到日期", "渠道", "承办乡镇", "办理期限", "状态", "内容"],
            &rows,
            "没有待办理的举报、信访"
        )
    );
    if division.len() == 6 && !answer.townships.is_empty() {
        let rows: Vec<Vec<String>> = answer
            .townships
            .iter()
            .map(|t| {
                let code = t.township.as_ref().map(|d| d.code.clone()).unwrap_or_default();
                let place = if code.len() == 6 { "尚未分派".to_owned() } else { v.place(&code) };
                vec![place, t.open.to_string(), t.overdue.to_string()]
            })
            .collect();
        out.push_str("<h3>各乡镇举报、信访</h3>");
        out.push_str(&table("complaint-counts", &["乡镇", "办理中", "已超期"], &rows, ""));
    }
    out.push_str("</section>");
    out
}

/// How many applications wait in each township of a county.
fn per_township(v: &Visit, applications: &[ca::Application]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in applications {
        let code = village(a.household.as_ref());
        *counts.entry(code.get(..9).unwrap_or(&code).to_owned()).or_default() += 1;
    }
    let rows: Vec<Vec<String>> = counts.iter().map(|(t, n)| vec![v.place(t), n.to_string()]).collect();
    format!("<h3>各乡镇待办件数</h3>{}", table("counts", &["乡镇", "待办件数"], &rows, "各乡镇均无待办"))
}

async fn reviews_due(
    v: &Visit,
    civil: &mut CivilAffairsServiceClient<dibao_platform::runtime::server::MeshChannel>,
    township: &str,
) -> String {
    let mut out = "<section aria-labelledby=\"reviews\"><h2 id=\"reviews\">到期复核</h2>".to_owned();
    let due = civil
        .list_reviews_due(v.request(
            CIVIL,
            ca::ListReviewsDueRequest {
                township: Some(DivisionCode { code: township.to_owned() }),
                as_of: None,
                page: Some(PageRequest { page_size: 100, page_token: String::new() }),
            },
        ))
        .await;
    match due {
        Ok(answer) => {
            let rows: Vec<Vec<String>> = answer
                .into_inner()
                .reviews
                .iter()
                .map(|r| {
                    vec![
                        if r.priority { "<strong>重点</strong>".to_owned() } else { String::new() },
                        esc(if r.household_number.is_empty() { "—" } else { &r.household_number }),
                        esc(&r.head.as_ref().map(|p| p.name.clone()).unwrap_or_default()),
                        v.place(&r.village.as_ref().map(|d| d.code.clone()).unwrap_or_default()),
                        esc(&super::html::pb_date(r.due_on.as_ref())),
                        esc(&r.reason),
                    ]
                })
                .collect();
            out.push_str(&table("reviews", &["", "户编号", "户主", "村", "应复核日期", "原因"], &rows, "暂无到期复核"));
        }
        Err(status) => out.push_str(&super::html::alert("", &super::refusal(&status, "无权查看本乡镇的复核名单"))),
    }
    out.push_str("</section>");
    out
}
