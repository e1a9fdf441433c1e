//! 台账比对: the latest comparison's lists (a)–(g) in the officer's
//! jurisdiction, one list at a time, each entry with the mapping between the
//! households of the two rosters (by head's name and village, never an
//! internal id) and what it says; the open entries first, each with the form
//! that decides it — an enrolment reference for (a) and (b), or a written
//! conclusion (R-CMP-3). The service checks the role, the jurisdiction and
//! the separation of duties; its refusal is shown in its words.
//!
//! A run is started here and followed live to its end (the gateway holds
//! the service's call, [`super::live`]); the lists of a township download
//! as the xlsx the service writes.

use dibao_proto::common::v1::{DivisionCode, PageRequest};
use dibao_proto::comparison::v1 as cmp;
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::labels::Label;
use http::StatusCode;

use serde_json::json;
use tonic::body::Body;

use super::application::Signed;
use super::html::{Page, esc, table, timestamp};
use super::live::{self, Progress as _};
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

fn households(v: &Visit, list: &[cmp::EntryHousehold]) -> String {
    if list.is_empty() {
        return "—".to_owned();
    }
    list.iter()
        .map(|h| {
            // By the roster's household number and the head, as officers know them.
            let number = if h.household_number.is_empty() { "—" } else { h.household_number.as_str() };
            format!(
                "{} {}（{}，{}人）",
                esc(number),
                esc(&h.head_name),
                v.place(&h.village.as_ref().map(|v| v.code.clone()).unwrap_or_default()),
                h.members
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn decide_form(v: &Visit, e: &cmp::Entry, kind: cmp::ListKind, scope: &str) -> String {
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
         <input type=\"hidden\" name=\"kind\" value=\"{kind}\"><input type=\"hidden\" name=\"division\" value=\"{scope}\">\
         <label for=\"conclusion-{id}\">书面结论及理由</label>\
         <textarea id=\"conclusion-{id}\" name=\"conclusion\" rows=\"2\"></textarea>{reference}\
         <button type=\"submit\" id=\"decide-{id}\">记录结论</button></form></details>",
        csrf = esc(&v.csrf),
        id = esc(&e.entry_id),
        kind = kind as i32,
        scope = esc(scope),
    )
}

/// `GET /comparison?kind=…`.
pub async fn page(v: &Visit, query: &Form) -> Page {
    let kind = kind_of(query.get("kind"));
    let scope = scope_of(v, query);
    let banner = match query.get("decided") {
        "1" => "<p class=\"notice ok\" role=\"status\" id=\"decided-notice\">结论已记录</p>".to_owned(),
        _ => String::new(),
    };
    render(v, kind, &scope, query.get("page"), banner).await
}

/// The township or village a list is narrowed to (`division`), else the officer's whole jurisdiction.
fn scope_of(v: &Visit, form: &Form) -> String {
    match form.get("division").trim() {
        "" => v.session.claims.division.as_str().to_owned(),
        d => d.to_owned(),
    }
}

/// Entries a page shows: an officer works through a list a page at a
/// time, and every entry shown puts its members' views on record.
const PAGE_SIZE: i32 = 50;

async fn render(v: &Visit, kind: cmp::ListKind, scope: &str, page_token: &str, banner: String) -> Page {
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
            "<a href=\"/comparison?kind={}&amp;division={}\"{current}>（{}）{}</a>",
            k as i32,
            esc(scope),
            letter(k),
            esc(k.label())
        ));
    }
    body.push_str("</nav>");
    body.push_str(&format!(
        "<form method=\"get\" action=\"/comparison\" class=\"inline\"><input type=\"hidden\" name=\"kind\" value=\"{kind}\">\
         <label for=\"scope\">范围（乡镇或村代码）</label><input id=\"scope\" name=\"division\" value=\"{code}\" maxlength=\"12\">\
         <button type=\"submit\" id=\"narrow\">筛选</button> 当前：{place}</form>",
        kind = kind as i32,
        code = esc(scope),
        place = v.place(scope),
    ));
    body.push_str(&run_form(v, v.session.claims.division.as_str(), None));
    let request = cmp::ListEntriesRequest {
        run_id: String::new(),
        kind: kind as i32,
        division: Some(DivisionCode { code: scope.to_owned() }),
        page: Some(PageRequest { page_size: PAGE_SIZE, page_token: page_token.to_owned() }),
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
            v.place(&e.village.as_ref().map(|v| v.code.clone()).unwrap_or_default()),
            households(v, &e.dibao_households),
            households(v, &e.poor_households),
            esc(&e.explanation),
            last,
        ]
    };
    let open_rows: Vec<Vec<String>> = open.iter().map(|e| row(e, decide_form(v, e, kind, scope))).collect();
    let next = entries.page.as_ref().map(|p| p.next_page_token.clone()).unwrap_or_default();
    let paged = !page_token.is_empty() || !next.is_empty();
    let on_page = if paged { "本页" } else { "" };
    body.push_str(&format!("<h2 id=\"open\">（{}）{on_page}待处理（{}条）</h2>", letter(kind), open.len()));
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
    body.push_str(&format!("<h2 id=\"decided\">{on_page}已处理（{}条）</h2>", decided.len()));
    body.push_str(&table("entries", &["村", "低保（特困）户", "建档立卡户", "说明", "结论"], &decided_rows, "尚无"));
    if paged {
        let here = format!("/comparison?kind={}&amp;division={}", kind as i32, esc(scope));
        body.push_str("<p class=\"pages\">");
        if !page_token.is_empty() {
            body.push_str(&format!("<a href=\"{here}\" id=\"first-page\">回到第一页</a> "));
        }
        if !next.is_empty() {
            body.push_str(&format!("<a href=\"{here}&amp;page={}\" id=\"next-page\">下一页</a>", esc(&next)));
        }
        body.push_str("</p>");
    }
    Page::ok("台账比对", body)
}

/// `POST /comparison/decide`.
pub async fn decide(v: &Visit, form: &Form) -> Signed {
    let kind = kind_of(form.get("kind"));
    let (conclusion, application_id) = (form.get("conclusion").trim(), form.get("application_id").trim());
    if conclusion.is_empty() && application_id.is_empty() {
        let banner = super::html::alert("decide-error", "conclusion：请写明结论及理由，或填写纳入（认定）的申请编号");
        return Signed::Page(render(v, kind, &scope_of(v, form), "", banner).await);
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
        Ok(_) => Signed::Done(format!("/comparison?kind={}&division={}&decided=1", kind as i32, scope_of(v, form))),
        Err(status) => {
            let message = super::refusal(&status, "没有找到这一条目，或不在您的管辖范围内");
            let banner = super::html::alert("decide-error", &message);
            Signed::Page(render(v, kind, &scope_of(v, form), "", banner).await)
        }
    }
}

fn run_form(v: &Visit, division: &str, error: Option<&str>) -> String {
    let alert = error.map(|e| super::html::alert("run-error", e)).unwrap_or_default();
    format!(
        "{alert}<div class=\"actions\"><form method=\"post\" action=\"/comparison/run\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"run-division\">比对范围（区划代码）</label>\
         <input id=\"run-division\" name=\"division\" value=\"{division}\" maxlength=\"12\" required>\
         <button type=\"submit\" id=\"run-comparison\">运行比对</button></form>\
         <form method=\"get\" action=\"/comparison/export\" class=\"inline\">\
         <label for=\"export-division\">下载清单（乡镇代码）</label>\
         <input id=\"export-division\" name=\"division\" value=\"{division}\" maxlength=\"12\" required>\
         <button type=\"submit\" id=\"export\">下载xlsx</button></form></div>",
        csrf = esc(&v.csrf),
        division = esc(division),
    )
}

/// Where a run stands, as the service last reported it.
#[derive(Debug, Clone, Default)]
pub struct RunProgress {
    phase: String,
    done: i64,
    total: i64,
    /// Each list's label and its entries, when the run is done.
    lists: Vec<(String, i64)>,
    end: live::End,
}

impl RunProgress {
    fn phase_label(&self) -> &'static str {
        match (self.end.finished, self.end.error.is_some(), self.phase.as_str()) {
            (true, true, _) => "未完成",
            (true, false, _) | (_, _, "done") => "已完成",
            (_, _, "extract") => "读取两库名册",
            (_, _, "compare") => "逐户比对",
            (_, _, "store") => "保存比对结果",
            _ => "排队等候",
        }
    }
}

impl live::Progress for RunProgress {
    fn percent(&self) -> i64 {
        match (self.end.finished, self.total) {
            (true, _) if self.end.error.is_none() => 100,
            (_, 0) => 0,
            (_, total) => (self.done * 100 / total).min(99),
        }
    }

    fn json(&self) -> String {
        json!({
            "percent": self.percent(),
            "phase": self.phase_label(),
            "done": self.done,
            "total": self.total,
            "lists": self.lists.iter().map(|(l, n)| json!([l, n])).collect::<Vec<_>>(),
            "finished": self.end.finished,
            "error": self.end.error,
        })
        .to_string()
    }

    fn end(&self) -> &live::End {
        &self.end
    }

    fn end_mut(&mut self) -> &mut live::End {
        &mut self.end
    }
}

/// The comparison runs this gateway holds.
pub type Runs = live::Live<RunProgress>;

impl From<&cmp::RunComparisonResponse> for RunProgress {
    fn from(r: &cmp::RunComparisonResponse) -> Self {
        RunProgress {
            phase: r.phase.clone(),
            done: r.households_done,
            total: r.households_total,
            lists: r
                .list_sizes
                .iter()
                .map(|l| {
                    let kind = cmp::ListKind::try_from(l.kind).unwrap_or(cmp::ListKind::Unspecified);
                    (format!("（{}）{}", letter(kind), kind.label()), l.entries)
                })
                .collect(),
            end: live::End::default(),
        }
    }
}

/// `POST /comparison/run`: the run started and held by the gateway; the page that follows it.
pub async fn run(v: &Visit, posted: &Form) -> Result<String, Page> {
    let division = posted.get("division").trim();
    let refused =
        |message: &str| Page::with_status(StatusCode::BAD_REQUEST, "台账比对", run_form(v, division, Some(message)));
    let parsed = match dibao_proto::types::DivisionCode::parse(division) {
        Ok(d) => d,
        Err(e) => return Err(refused(&format!("division：{}", e.reason))),
    };
    let channel = v.upstream(COMPARISON).map_err(|s| refused(s.message()))?;
    let request = cmp::RunComparisonRequest {
        division: Some(DivisionCode { code: division.to_owned() }),
        reproduce_run_id: String::new(),
    };
    let mut stream = match ComparisonServiceClient::new(channel).run_comparison(v.request(COMPARISON, request)).await {
        Ok(s) => s.into_inner(),
        Err(status) => return Err(refused(&super::refusal(&status, "没有找到该区划"))),
    };
    let first = match stream.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return Err(refused("比对服务未返回进度，请稍后再试")),
        Err(status) => return Err(refused(&super::refusal(&status, "没有找到该区划"))),
    };
    let id = first.run_id.clone();
    v.gw.runs.hold(v, &id, (parsed, "台账比对"), &first, stream);
    tracing::info!(officer = %v.session.claims.officer_id, run = %id, %division, "comparison run started at the console");
    Ok(format!("/comparison/runs/{id}"))
}

/// `GET /comparison/runs/{id}`.
pub fn run_page(v: &Visit, id: &str) -> Page {
    let Some(live::Watched { division, progress, .. }) = v.gw.runs.watch(v, id) else {
        return live::not_found("台账比对", "比对");
    };
    let p = progress.borrow().clone();
    let rows: String =
        p.lists.iter().map(|(label, n)| format!("<tr><td>{}</td><td>{n}</td></tr>", esc(label))).collect();
    let body = format!(
        "<div id=\"run\" data-events=\"/comparison/runs/{id}/events\">\
         <dl class=\"summary\"><dt>范围</dt><dd>{division}</dd><dt>阶段</dt><dd id=\"run-phase\">{phase}</dd></dl>\
         <p><progress id=\"run-bar\" max=\"100\" value=\"{percent}\"></progress> <strong id=\"run-percent\">{percent}%</strong>\
         （已比对 <span id=\"run-done\">{done}</span> / <span id=\"run-total\">{total}</span> 户）</p>\
         <p id=\"run-error\" class=\"notice error\" role=\"alert\"{hidden}>{error}</p>\
         <h2>各清单条目数</h2><table class=\"lists\"><thead><tr><th scope=\"col\">清单</th><th scope=\"col\">条目</th></tr></thead>\
         <tbody id=\"list-rows\">{rows}</tbody></table>\
         <p><a href=\"/comparison\" id=\"to-lists\">查看比对清单</a></p></div>",
        id = esc(id),
        division = v.place(&division),
        phase = p.phase_label(),
        percent = p.percent(),
        done = p.done,
        total = p.total,
        hidden = if p.end.error.is_some() { "" } else { " hidden" },
        error = esc(p.end.error.as_deref().unwrap_or("")),
    );
    Page::ok("台账比对进度", body)
}

/// `GET /comparison/runs/{id}/events`: the progress as server-sent events.
pub fn run_events(v: &Visit, id: &str) -> http::Response<Body> {
    live::events(v.gw.runs.watch(v, id), "台账比对", "比对")
}

/// `GET /comparison/export?division=…`: the lists of the latest run over a
/// township (or a village) as the service writes them, an xlsx file; of a
/// county, one file per township, so the page names them to download each.
pub async fn export(v: &Visit, query: &Form) -> Result<http::Response<Body>, Page> {
    let division = query.get("division").trim();
    let refused = |message: &str| {
        Page::with_status(StatusCode::BAD_REQUEST, "下载比对清单", super::html::alert("export-error", message))
    };
    if let Err(e) = dibao_proto::types::DivisionCode::parse(division) {
        return Err(refused(&format!("division：{}", e.reason)));
    }
    let channel = v.upstream(COMPARISON).map_err(|s| refused(s.message()))?;
    let request = cmp::ExportListsRequest {
        run_id: String::new(),
        division: Some(DivisionCode { code: division.to_owned() }),
        format: cmp::ExportFormat::Xlsx as i32,
        grouping: cmp::ExportGrouping::Township as i32,
    };
    let refusal = |status: &tonic::Status| match status.code() {
        tonic::Code::FailedPrecondition | tonic::Code::NotFound => "该区划尚无已完成的比对".to_owned(),
        _ => super::refusal(status, "没有找到该区划"),
    };
    let mut stream = match ComparisonServiceClient::new(channel).export_lists(v.request(COMPARISON, request)).await {
        Ok(s) => s.into_inner(),
        Err(status) => return Err(refused(&refusal(&status))),
    };
    let mut files = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(file)) => files.push(file),
            Ok(None) => break,
            Err(status) => return Err(refused(&refusal(&status))),
        }
    }
    match files.len() {
        0 => Err(refused("该区划的比对结果中没有条目")),
        1 => {
            let file = files.remove(0);
            Ok(super::html::attachment(
                &file.file_name,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                file.content,
            ))
        }
        _ => {
            let rows: Vec<Vec<String>> = files
                .iter()
                .map(|f| {
                    let township: String = f.file_name.chars().take_while(char::is_ascii_digit).collect();
                    vec![
                        format!(
                            "<a href=\"/comparison/export?division={0}\">{1}</a>",
                            esc(&township),
                            esc(&f.file_name)
                        ),
                        f.entries.to_string(),
                    ]
                })
                .collect();
            Err(Page::ok("下载比对清单", table("files", &["文件（每乡镇一份）", "条目"], &rows, "")))
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
