//! 集中核查: a verification campaign over a township or county, started
//! from the console and watched live to its end — done, failed and
//! remaining households, and per department — without reloading. The
//! gateway holds the hub's call ([`super::live`]).

use dibao_proto::common::v1::DivisionCode;
use dibao_proto::department::v1::Department;
use dibao_proto::labels::Label;
use dibao_proto::verification::v1 as ver;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use http::StatusCode;
use serde_json::json;
use tonic::body::Body;

use super::html::{Page, esc, table};
use super::live::{self, Progress as _};
use super::{Form, Visit};

const HUB: &str = "verification-hub";

/// Where a campaign stands, as the hub last reported it.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub done: i64,
    pub failed: i64,
    pub remaining: i64,
    /// Per department: name, done, failed, remaining.
    pub departments: Vec<(String, i64, i64, i64)>,
    /// The households the hub reported findings for, by id.
    pub with_findings: Vec<String>,
    pub end: live::End,
}

impl live::Progress for Progress {
    fn percent(&self) -> i64 {
        let total = self.done + self.failed + self.remaining;
        if total == 0 { if self.end.finished { 100 } else { 0 } } else { (self.done + self.failed) * 100 / total }
    }

    fn json(&self) -> String {
        json!({
            "percent": self.percent(),
            "done": self.done,
            "failed": self.failed,
            "remaining": self.remaining,
            "departments": self.departments.iter().map(|(n, d, f, r)| json!([n, d, f, r])).collect::<Vec<_>>(),
            "findings": self.with_findings.len(),
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

/// The campaigns this gateway holds.
pub type Campaigns = live::Live<Progress>;

impl From<&ver::StartCampaignResponse> for Progress {
    fn from(r: &ver::StartCampaignResponse) -> Self {
        Progress {
            done: r.households_done,
            failed: r.households_failed,
            remaining: r.households_remaining,
            departments: r
                .departments
                .iter()
                .map(|d| {
                    let name = Department::try_from(d.department).unwrap_or(Department::Unspecified).label().to_owned();
                    (name, d.done, d.failed, d.remaining)
                })
                .collect(),
            with_findings: r.households_with_findings.clone(),
            end: live::End::default(),
        }
    }
}

fn form(v: &Visit, division: &str, purpose: &str, error: Option<&str>) -> String {
    let alert = error.map(|e| super::html::alert("campaign-error", e)).unwrap_or_default();
    format!(
        "{alert}<form method=\"post\" action=\"/campaigns\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"division\">核查范围（乡镇或县区划代码）</label><input id=\"division\" name=\"division\" value=\"{division}\" maxlength=\"12\" required>\
         <label for=\"purpose\">用途</label><input id=\"purpose\" name=\"purpose\" value=\"{purpose}\" required>\
         <button type=\"submit\" id=\"start-campaign\">开始核查</button></form>\
         <p class=\"hint\">对范围内在册家庭逐户向各部门核查；没有有效授权书的家庭不核查，计为未完成。</p>",
        csrf = esc(&v.csrf),
        division = esc(division),
        purpose = esc(purpose),
    )
}

/// `GET /campaigns`: the form.
pub fn form_page(v: &Visit) -> Page {
    let year = v.gw.clock.now().year();
    Page::ok("集中核查", form(v, v.session.claims.division.as_str(), &format!("{year}年低保集中核查"), None))
}

/// `POST /campaigns`: the campaign started and held by the gateway; the
/// page that follows it.
pub async fn start(v: &Visit, posted: &Form) -> Result<String, Page> {
    let (division, purpose) = (posted.get("division").trim(), posted.get("purpose").trim());
    let refused = |message: &str| {
        Page::with_status(StatusCode::BAD_REQUEST, "集中核查", form(v, division, purpose, Some(message)))
    };
    let parsed = match dibao_proto::types::DivisionCode::parse(division) {
        Ok(d) => d,
        Err(e) => return Err(refused(&format!("division：{}", e.reason))),
    };
    if purpose.is_empty() {
        return Err(refused("purpose：请填写核查用途"));
    }
    let channel = v.upstream(HUB).map_err(|s| refused(s.message()))?;
    let request = ver::StartCampaignRequest {
        division: Some(DivisionCode { code: division.to_owned() }),
        purpose: purpose.to_owned(),
        campaign_id: String::new(),
    };
    let mut stream = match VerificationServiceClient::new(channel).start_campaign(v.request(HUB, request)).await {
        Ok(s) => s.into_inner(),
        Err(status) => return Err(refused(&super::refusal(&status, "没有找到该区划"))),
    };
    let first = match stream.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return Err(refused("核查平台未返回进度，请稍后再试")),
        Err(status) => return Err(refused(&super::refusal(&status, "没有找到该区划"))),
    };
    let id = first.campaign_id.clone();
    v.gw.campaigns.hold(v, &id, (parsed, purpose), &first, stream);
    tracing::info!(officer = %v.session.claims.officer_id, campaign = %id, %division, "campaign started at the console");
    Ok(format!("/campaigns/{id}"))
}

/// `GET /campaigns/{id}`.
pub fn page(v: &Visit, id: &str) -> Page {
    let Some(live::Watched { division, title: purpose, progress }) = v.gw.campaigns.watch(v, id) else {
        return live::not_found("集中核查", "核查");
    };
    let p = progress.borrow().clone();
    let rows: String = p
        .departments
        .iter()
        .map(|(name, done, failed, remaining)| {
            format!("<tr><td>{}</td><td>{done}</td><td>{failed}</td><td>{remaining}</td></tr>", esc(name))
        })
        .collect();
    let status = if p.end.finished { "已结束" } else { "进行中" };
    let body = format!(
        "<div id=\"campaign\" data-events=\"/campaigns/{id}/events\">\
         <dl class=\"summary\"><dt>范围</dt><dd>{division}</dd><dt>用途</dt><dd>{purpose}</dd>\
         <dt>状态</dt><dd id=\"camp-status\">{status}</dd></dl>\
         <p><progress id=\"camp-bar\" max=\"100\" value=\"{percent}\"></progress> <strong id=\"camp-percent\">{percent}%</strong></p>\
         <p>已核查 <span id=\"camp-done\">{done}</span> 户，未完成 <span id=\"camp-failed\">{failed}</span> 户，\
         待核查 <span id=\"camp-remaining\">{remaining}</span> 户；有发现 <span id=\"camp-findings\">{findings}</span> 户\
         （<a href=\"/campaigns/{id}/findings\" id=\"findings-link\">查看有发现的家庭</a>）。</p>\
         <p id=\"camp-error\" class=\"notice error\" role=\"alert\"{hidden}>{error}</p>\
         <h2>各部门</h2><table class=\"departments\"><thead><tr><th scope=\"col\">部门</th>\
         <th scope=\"col\">已核查</th><th scope=\"col\">未完成</th><th scope=\"col\">待核查</th></tr></thead>\
         <tbody id=\"dept-rows\">{rows}</tbody></table></div>",
        id = esc(id),
        division = v.place(&division),
        purpose = esc(&purpose),
        percent = p.percent(),
        done = p.done,
        failed = p.failed,
        remaining = p.remaining,
        findings = p.with_findings.len(),
        hidden = if p.end.error.is_some() { "" } else { " hidden" },
        error = esc(p.end.error.as_deref().unwrap_or("")),
    );
    Page::ok("集中核查进度", body)
}

/// `GET /campaigns/{id}/events`: the progress as server-sent events.
pub fn events(v: &Visit, id: &str) -> http::Response<Body> {
    live::events(v.gw.campaigns.watch(v, id), "集中核查", "核查")
}

/// How many households with findings the page names at most.
const FINDINGS_SHOWN: usize = 100;

/// `GET /campaigns/{id}/findings`: the households the hub found something
/// for so far, by head and village as civil affairs shows them to the
/// officer (each read on record), for the follow-up visits.
pub async fn findings(v: &Visit, id: &str) -> Page {
    use dibao_proto::civil_affairs::v1 as ca;
    use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
    const CIVIL: &str = "civil-affairs";
    let Some(live::Watched { division, progress, .. }) = v.gw.campaigns.watch(v, id) else {
        return live::not_found("集中核查", "核查");
    };
    let ids = progress.borrow().with_findings.clone();
    let mut civil = match v.upstream(CIVIL) {
        Ok(c) => CivilAffairsServiceClient::new(c),
        Err(status) => return Page::message(StatusCode::SERVICE_UNAVAILABLE, "有发现的家庭", status.message()),
    };
    let mut rows = Vec::new();
    for household_id in ids.iter().take(FINDINGS_SHOWN) {
        let request = ca::GetHouseholdRequest { household_id: household_id.clone() };
        let row = match civil.get_household(v.request(CIVIL, request)).await {
            Ok(answer) => {
                let h = answer.into_inner().household.unwrap_or_default();
                vec![
                    esc(if h.household_number.is_empty() { "—" } else { &h.household_number }),
                    esc(&super::work::head_name(Some(&h))),
                    v.place(&h.village.map(|v| v.code).unwrap_or_default()),
                    h.members.len().to_string(),
                ]
            }
            Err(status) => {
                vec![esc(&super::refusal(&status, "不在您的管辖范围内")), String::new(), String::new(), String::new()]
            }
        };
        rows.push(row);
    }
    let more = if ids.len() > FINDINGS_SHOWN {
        format!("<p class=\"hint\">共{}户，仅列出前{FINDINGS_SHOWN}户。</p>", ids.len())
    } else {
        String::new()
    };
    let body = format!(
        "<p>范围 {division}：核查中各部门答复与县政策不符或需核实的家庭，请逐户入户核实。</p>{table}{more}\
         <p><a href=\"/campaigns/{id}\">返回核查进度</a></p>",
        division = v.place(&division),
        table = table("findings", &["户编号", "户主", "村", "人数"], &rows, "尚无有发现的家庭"),
        id = esc(id),
    );
    Page::ok("有发现的家庭", body)
}
