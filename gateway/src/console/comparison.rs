//! 台账比对: the latest comparison's lists (a)–(g) in the officer's
//! jurisdiction, one list at a time, each entry with the mapping between the
//! households of the two rosters (by head's name and village, never an
//! internal id) and what it says; the open entries first, each with the form
//! that decides it — an enrolment reference for (a) and (b), or a written
//! conclusion (R-CMP-3). The service checks the role, the jurisdiction and
//! the separation of duties; its refusal is shown in its words.

use dibao_proto::common::v1::{DivisionCode, PageRequest};
use dibao_proto::comparison::v1 as cmp;
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::labels::Label;
use http::StatusCode;

use super::application::Signed;
use super::html::{Page, esc, table, timestamp};
use super::{Form, Visit};

const COMPARISON: &str = "roster-comparison";

/// `(a)` … `(g)` of a list.
fn letter(kind: cmp::ListKind) -> char {
    char::from(b'a' + (kind as u8).saturating_sub(1))
}

fn kind_of(raw: &str) -> cmp::ListKind {
    raw.parse::<i32>()
        .ok()
        .and_then(|k| cmp::ListKind::try_from(k).ok())
        .filter(|k| *k != cmp::ListKind::Unspecified)
        .unwrap_or(cmp::ListKind::PoorNotDibao)
}

fn households(list: &[cmp::EntryHousehold]) -> String {
    if list.is_empty() {
        return "—".to_owned();
    }
    list.iter()
        .map(|h| {
            format!(
                "{}（{}，{}人）",
                esc(&h.head_name),
                esc(&h.village.as_ref().map(|v| v.code.clone()).unwrap_or_default()),
                h.members
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn decide_form(v: &Visit, e: &cmp::Entry, kind: cmp::ListKind) -> String {
    let reference = if matches!(kind, cmp::ListKind::PoorNotDibao | cmp::ListKind::DibaoNotPoor) {
        format!(
            "<label for=\"ref-{id}\">或：纳入（认定）的申请编号</label><input id=\"ref-{id}\" name=\"application_id\">",
            id = esc(&e.entry_id)
        )
    } else {
        String::new()
    };
    format!(
        "<details><summary>处理</summary><form method=\"post\" action=\"/comparison/decide\" class=\"decide\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"entry_id\" value=\"{id}\">\
         <input type=\"hidden\" name=\"kind\" value=\"{kind}\">\
         <label for=\"conclusion-{id}\">书面结论及理由</label>\
         <textarea id=\"conclusion-{id}\" name=\"conclusion\" rows=\"2\"></textarea>{reference}\
         <button type=\"submit\" id=\"decide-{id}\">记录结论</button></form></details>",
        csrf = esc(&v.csrf),
        id = esc(&e.entry_id),
        kind = kind as i32,
    )
}

/// `GET /comparison?kind=…`.
pub async fn page(v: &Visit, query: &Form) -> Page {
    let kind = kind_of(query.get("kind"));
    let banner = match query.get("decided") {
        "1" => "<p class=\"notice ok\" role=\"status\" id=\"decided-notice\">结论已记录</p>".to_owned(),
        _ => String::new(),
    };
    render(v, kind, banner).await
}

async fn render(v: &Visit, kind: cmp::ListKind, banner: String) -> Page {
    let mut client = match v.upstream(COMPARISON) {
        Ok(c) => ComparisonServiceClient::new(c),
        Err(status) => return Page::message(StatusCode::SERVICE_UNAVAILABLE, "台账比对", status.message()),
    };
    let mut body = banner;
    body.push_str("<nav class=\"tabs\" aria-label=\"清单\">");
    for k in [
        cmp::ListKind::PoorNotDibao,
        cmp::ListKind::DibaoNotPoor,
        cmp::ListKind::OnBoth,
        cmp::ListKind::MembersDiffer,
        cmp::ListKind::FlagMismatch,
        cmp::ListKind::DeceasedPaid,
        cmp::ListKind::OfficialRelative,
    ] {
        let current = if k == kind { " aria-current=\"page\"" } else { "" };
        body.push_str(&format!(
            "<a href=\"/comparison?kind={}\"{current}>（{}）{}</a>",
            k as i32,
            letter(k),
            esc(k.label())
        ));
    }
    body.push_str("</nav>");
    let request = cmp::ListEntriesRequest {
        run_id: String::new(),
        kind: kind as i32,
        division: Some(DivisionCode { code: v.session.claims.division.as_str().to_owned() }),
        page: Some(PageRequest { page_size: 200, page_token: String::new() }),
        continuous: false,
    };
    let entries = match client.list_entries(v.request(COMPARISON, request)).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            let message = match status.code() {
                tonic::Code::NotFound | tonic::Code::FailedPrecondition => "本区划尚无已完成的比对".to_owned(),
                _ => super::refusal(&status, "无权查看本区划的比对结果"),
            };
            body.push_str(&super::html::alert("", &message));
            return Page::ok("台账比对", body);
        }
    };
    let (open, decided): (Vec<&cmp::Entry>, Vec<&cmp::Entry>) =
        entries.entries.iter().partition(|e| e.decision.is_none());
    let row = |e: &cmp::Entry, last: String| {
        vec![
            esc(&e.village.as_ref().map(|v| v.code.clone()).unwrap_or_default()),
            households(&e.dibao_households),
            households(&e.poor_households),
            esc(&e.explanation),
            last,
        ]
    };
    let open_rows: Vec<Vec<String>> = open.iter().map(|e| row(e, decide_form(v, e, kind))).collect();
    body.push_str(&format!("<h2 id=\"open\">（{}）待处理（{}条）</h2>", letter(kind), open.len()));
    body.push_str(&table(
        "entries open",
        &["村", "低保（特困）户", "建档立卡户", "说明", ""],
        &open_rows,
        "本清单没有待处理的条目",
    ));
    let decided_rows: Vec<Vec<String>> = decided
        .iter()
        .map(|e| {
            let d = e.decision.clone().unwrap_or_default();
            let who = d.signature.map(|s| s.officer_name).unwrap_or_default();
            let what =
                if d.application_id.is_empty() { d.conclusion } else { format!("纳入：{}", d.application_id) };
            row(e, format!("{}（{}，{}）", esc(&what), esc(&who), esc(&timestamp(d.recorded_at.as_ref()))))
        })
        .collect();
    body.push_str(&format!("<h2 id=\"decided\">已处理（{}条）</h2>", decided.len()));
    body.push_str(&table("entries", &["村", "低保（特困）户", "建档立卡户", "说明", "结论"], &decided_rows, "尚无"));
    if entries.page.is_some_and(|p| !p.next_page_token.is_empty()) {
        body.push_str("<p class=\"hint\">仅列出前200条，请按乡镇或村办理。</p>");
    }
    Page::ok("台账比对", body)
}

/// `POST /comparison/decide`.
pub async fn decide(v: &Visit, form: &Form) -> Signed {
    let kind = kind_of(form.get("kind"));
    let (conclusion, application_id) = (form.get("conclusion").trim(), form.get("application_id").trim());
    if conclusion.is_empty() && application_id.is_empty() {
        let banner = super::html::alert("decide-error", "conclusion：请写明结论及理由，或填写纳入（认定）的申请编号");
        return Signed::Page(render(v, kind, banner).await);
    }
    let mut client = match v.upstream(COMPARISON) {
        Ok(c) => ComparisonServiceClient::new(c),
        Err(status) => {
            return Signed::Page(Page::message(StatusCode::SERVICE_UNAVAILABLE, "台账比对", status.message()));
        }
    };
    let request = cmp::RecordDecisionRequest {
        entry_id: form.get("entry_id").to_owned(),
        application_id: application_id.to_owned(),
        conclusion: conclusion.to_owned(),
    };
    match client.record_decision(v.request(COMPARISON, request)).await {
        Ok(_) => Signed::Done(format!("/comparison?kind={}&decided=1", kind as i32)),
        Err(status) => {
            let message = super::refusal(&status, "没有找到这一条目，或不在您的管辖范围内");
            let banner = super::html::alert("decide-error", &message);
            Signed::Page(render(v, kind, banner).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_lettered_as_the_policy_names_them() {
        assert_eq!(letter(cmp::ListKind::PoorNotDibao), 'a');
        assert_eq!(letter(cmp::ListKind::OfficialRelative), 'g');
        assert_eq!(kind_of("2"), cmp::ListKind::DibaoNotPoor);
        assert_eq!(kind_of(""), cmp::ListKind::PoorNotDibao);
        assert_eq!(kind_of("99"), cmp::ListKind::PoorNotDibao);
    }
}
