//! 举报、信访: one complaint as the officer handling it works it (R-AUD-2).
//! What was reported and by whom (hidden where the service hides it), the
//! signed steps so far, and the forms the officer's roles allow: the county
//! assigns it to a township with a deadline, whoever handles it records a
//! follow-up, the county approver closes it with its outcome and the reply.
//! Every form is the service's call for this officer; a refusal comes back
//! in the officer's words, naming the field.

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::complaint_service_client::ComplaintServiceClient;
use dibao_proto::common::v1::{Date, DivisionCode, OfficerRole};
use dibao_proto::labels::Label;
use http::StatusCode;

use super::application::Signed;
use super::html::{Page, alert, esc, pb_date, table, timestamp};
use super::{Form, Visit};

const CIVIL: &str = "civil-affairs";
const NOT_FOUND: &str = "没有找到这件举报、信访，或不在您的管辖范围内";

fn client(v: &Visit) -> Result<ComplaintServiceClient<dibao_platform::runtime::server::MeshChannel>, Page> {
    v.upstream(CIVIL)
        .map(ComplaintServiceClient::new)
        .map_err(|s| Page::message(StatusCode::SERVICE_UNAVAILABLE, "举报、信访", s.message()))
}

pub(super) fn has(v: &Visit, roles: &[OfficerRole]) -> bool {
    v.session.claims.roles.iter().any(|r| roles.contains(r))
}

/// The complaint's page, with `banner` above it (a refusal to show again).
pub async fn page(v: &Visit, id: &str, banner: String) -> Page {
    let mut civil = match client(v) {
        Ok(c) => c,
        Err(page) => return page,
    };
    let request = ca::GetComplaintRequest { complaint_id: id.to_owned() };
    let c = match civil.get_complaint(v.request(CIVIL, request)).await {
        Ok(answer) => match answer.into_inner().complaint {
            Some(c) => c,
            None => return Page::message(StatusCode::NOT_FOUND, "举报、信访", NOT_FOUND),
        },
        Err(status) => {
            let code = if status.code() == tonic::Code::NotFound { StatusCode::NOT_FOUND } else { StatusCode::OK };
            return Page::message(code, "举报、信访", &super::refusal(&status, NOT_FOUND));
        }
    };
    let status = ca::ComplaintStatus::try_from(c.status).unwrap_or(ca::ComplaintStatus::Unspecified);
    let channel = ca::ComplaintChannel::try_from(c.channel).unwrap_or(ca::ComplaintChannel::Unspecified);
    let who = if c.anonymous {
        "匿名".to_owned()
    } else if c.complainant_name.is_empty() {
        "（不向您显示）".to_owned()
    } else {
        format!("{} {}", c.complainant_name, c.complainant_contact)
    };
    let township = c.township.as_ref().map(|t| v.place(&t.code)).unwrap_or_else(|| "尚未分派".to_owned());
    let state = if c.overdue { "<strong>已超期</strong>".to_owned() } else { esc(status.label()) };
    let mut body = banner;
    body.push_str(&format!(
        "<dl class=\"facts\" id=\"complaint\">\
         <dt>编号</dt><dd id=\"complaint-number\">{number}</dd><dt>收到日期</dt><dd>{received}</dd><dt>渠道</dt><dd>{channel}</dd>\
         <dt>举报人</dt><dd>{who}</dd><dt>反映内容</dt><dd>{content}</dd>\
         <dt>受理区划</dt><dd>{division}</dd><dt>承办乡镇</dt><dd>{township}</dd>\
         <dt>办理期限</dt><dd>{due}</dd><dt>状态</dt><dd id=\"complaint-status\">{state}</dd></dl>",
        number = esc(&c.complaint_number),
        received = esc(&pb_date(c.received_on.as_ref())),
        channel = esc(channel.label()),
        who = esc(&who),
        content = esc(&c.content),
        division = c.division.as_ref().map(|d| v.place(&d.code)).unwrap_or_default(),
        due = esc(&pb_date(c.due_on.as_ref())),
    ));
    if status == ca::ComplaintStatus::Closed {
        let outcome = ca::ComplaintOutcome::try_from(c.outcome).unwrap_or(ca::ComplaintOutcome::Unspecified);
        body.push_str(&format!(
            "<p id=\"complaint-outcome\">办结：{}。答复：{}</p>",
            esc(outcome.label()),
            esc(&c.reply)
        ));
    }
    let steps: Vec<Vec<String>> = c
        .steps
        .iter()
        .map(|s| {
            let o = s.officer.as_ref();
            let role = o.and_then(|o| OfficerRole::try_from(o.role).ok()).map(|r| r.label()).unwrap_or_default();
            vec![
                esc(&s.action),
                esc(&s.note),
                format!("{}（{}）", esc(o.map(|o| o.officer_name.as_str()).unwrap_or_default()), esc(role)),
                esc(&timestamp(o.and_then(|o| o.signed_at.as_ref()))),
            ]
        })
        .collect();
    body.push_str("<h2 id=\"steps\">办理记录</h2>");
    body.push_str(&table("steps", &["环节", "情况", "办理人", "时间"], &steps, "尚无办理记录"));
    if status != ca::ComplaintStatus::Closed {
        body.push_str(&forms(v, &c, status));
    }
    Page::ok(format!("举报、信访 {}", c.complaint_number), body)
}

/// The forms this officer's roles allow on an open complaint.
fn forms(v: &Visit, c: &ca::Complaint, status: ca::ComplaintStatus) -> String {
    use OfficerRole::{CountyApprover, CountyOperator, TownshipCaseworker, TownshipReviewer};
    let (id, csrf) = (esc(&c.complaint_id), esc(&v.csrf));
    let mut out = String::new();
    if status == ca::ComplaintStatus::Received && has(v, &[CountyOperator, CountyApprover]) {
        out.push_str(&format!(
            "<h2>交办</h2><form method=\"post\" action=\"/complaints/{id}/assign\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"township\">承办乡镇（乡镇代码）</label><input id=\"township\" name=\"township\" maxlength=\"9\" required>\
             <label for=\"due_on\">办理期限</label><input id=\"due_on\" name=\"due_on\" type=\"date\" required>\
             <label for=\"assign-note\">交办意见</label><textarea id=\"assign-note\" name=\"note\"></textarea>\
             <button type=\"submit\" id=\"assign\">交办</button></form>"
        ));
    }
    // Followed up once the county has assigned it to a township.
    if status == ca::ComplaintStatus::Assigned
        && has(v, &[TownshipCaseworker, TownshipReviewer, CountyOperator, CountyApprover])
    {
        out.push_str(&format!(
            "<h2>添加办理记录</h2><form method=\"post\" action=\"/complaints/{id}/step\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"action\">环节</label><select id=\"action\" name=\"action\">\
             <option>核查</option><option>入户走访</option><option>约谈</option><option>回访</option></select>\
             <label for=\"step-note\">情况</label><textarea id=\"step-note\" name=\"note\" required></textarea>\
             <button type=\"submit\" id=\"add-step\">签署并记录</button></form>"
        ));
    }
    if has(v, &[CountyApprover]) {
        let outcomes: String = [
            ca::ComplaintOutcome::Substantiated,
            ca::ComplaintOutcome::PartlySubstantiated,
            ca::ComplaintOutcome::Unsubstantiated,
        ]
        .iter()
        .map(|o| format!("<option value=\"{}\">{}</option>", *o as i32, esc(o.label())))
        .collect();
        out.push_str(&format!(
            "<h2>办结</h2><form method=\"post\" action=\"/complaints/{id}/close\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label for=\"outcome\">核查结论</label><select id=\"outcome\" name=\"outcome\">{outcomes}</select>\
             <label for=\"reply\">答复内容</label><textarea id=\"reply\" name=\"reply\" required></textarea>\
             <button type=\"submit\" id=\"close\">办结</button></form>"
        ));
    }
    out
}

/// Who takes complaints in (R-AUD-2): the township's and the county's offices.
pub const INTAKE: &[OfficerRole] = &[
    OfficerRole::TownshipCaseworker,
    OfficerRole::TownshipReviewer,
    OfficerRole::CountyOperator,
    OfficerRole::CountyApprover,
];

/// The intake form (登记举报、信访), with `banner` above it and the values
/// `form` holds (a refused filing shown again, nothing the officer typed lost).
pub fn new_page(v: &Visit, banner: String, form: &Form) -> Page {
    if !has(v, INTAKE) {
        return Page::message(StatusCode::FORBIDDEN, "登记举报、信访", "举报、信访由乡镇和县级民政部门登记");
    }
    let today = dibao_platform::runtime::clock::china_date(v.gw.clock.now()).to_string();
    let value = |name: &str, default: &str| {
        let typed = form.get(name);
        esc(if typed.is_empty() { default } else { typed })
    };
    let chosen = form.get("channel").parse().unwrap_or(ca::ComplaintChannel::Phone as i32);
    let channels: String = [
        ca::ComplaintChannel::Phone,
        ca::ComplaintChannel::Letter,
        ca::ComplaintChannel::Visit,
        ca::ComplaintChannel::Online,
    ]
    .iter()
    .map(|c| {
        let selected = if *c as i32 == chosen { " selected" } else { "" };
        format!("<option value=\"{}\"{selected}>{}</option>", *c as i32, esc(c.label()))
    })
    .collect();
    let anonymous = if form.get("anonymous") == "1" { " checked" } else { "" };
    let body = format!(
        "{banner}<p>电话、来信、来访或网上反映的问题，登记后由县级民政部门交办乡镇核查（R-AUD-2）。\
         反映人可匿名；涉及某户或某件申请的，请填写其编号，经办过该申请的人员不参与办理。</p>\
         <form method=\"post\" action=\"/complaints\" id=\"complaint-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"division\">受理区划（乡镇或县代码）</label>\
         <input id=\"division\" name=\"division\" maxlength=\"9\" required value=\"{division}\">\
         <label for=\"channel\">渠道</label><select id=\"channel\" name=\"channel\">{channels}</select>\
         <label for=\"received_on\">收到日期</label>\
         <input id=\"received_on\" name=\"received_on\" type=\"date\" required max=\"{today}\" value=\"{received}\">\
         <label class=\"check\"><input type=\"checkbox\" id=\"anonymous\" name=\"anonymous\" value=\"1\"{anonymous}> 匿名反映</label>\
         <label for=\"complainant_name\">反映人姓名</label>\
         <input id=\"complainant_name\" name=\"complainant_name\" value=\"{name}\">\
         <label for=\"complainant_contact\">联系方式</label>\
         <input id=\"complainant_contact\" name=\"complainant_contact\" value=\"{contact}\">\
         <label for=\"content\">反映内容</label><textarea id=\"content\" name=\"content\" required>{content}</textarea>\
         <label for=\"household_id\">涉及家庭编号（可不填）</label>\
         <input id=\"household_id\" name=\"household_id\" value=\"{household}\">\
         <label for=\"application_id\">涉及申请编号（可不填）</label>\
         <input id=\"application_id\" name=\"application_id\" value=\"{application}\">\
         <button type=\"submit\" id=\"file\">登记</button></form>",
        csrf = esc(&v.csrf),
        division = value("division", v.session.claims.division.as_str()),
        received = value("received_on", &today),
        name = value("complainant_name", ""),
        contact = value("complainant_contact", ""),
        content = value("content", ""),
        household = value("household_id", ""),
        application = value("application_id", ""),
    );
    Page::ok("登记举报、信访", body)
}

/// The intake form, sent: the complaint filed for this officer, or the
/// form again with the refusal, naming the field.
pub async fn file(v: &Visit, form: &Form) -> Signed {
    let mut civil = match client(v) {
        Ok(c) => c,
        Err(page) => return Signed::Page(page),
    };
    let request = ca::FileComplaintRequest {
        division: Some(DivisionCode { code: form.get("division").trim().to_owned() }),
        channel: form.get("channel").parse().unwrap_or(0),
        received_on: date_of(form.get("received_on")),
        anonymous: form.get("anonymous") == "1",
        complainant_name: form.get("complainant_name").trim().to_owned(),
        complainant_contact: form.get("complainant_contact").trim().to_owned(),
        content: form.get("content").trim().to_owned(),
        household_id: form.get("household_id").trim().to_owned(),
        application_id: form.get("application_id").trim().to_owned(),
    };
    match civil.file_complaint(v.request(CIVIL, request)).await {
        Ok(answer) => Signed::Done(format!("/complaints/{}", answer.into_inner().complaint_id)),
        Err(status) => Signed::Page(new_page(
            v,
            alert("complaint-error", &super::refusal(&status, "涉及的家庭或申请不存在，或不在您的管辖范围内")),
            form,
        )),
    }
}

/// `2026-12-20` as the wire's date; none when it is not one.
fn date_of(text: &str) -> Option<Date> {
    let d = time::Date::parse(text.trim(), &time::format_description::well_known::Iso8601::DATE).ok()?;
    Some(Date { year: d.year(), month: i32::from(d.month() as u8), day: i32::from(d.day()) })
}

/// One of the forms, sent: `action` is `assign`, `step` or `close`.
pub async fn submit(v: &Visit, id: &str, action: &str, form: &Form) -> Signed {
    let mut civil = match client(v) {
        Ok(c) => c,
        Err(page) => return Signed::Page(page),
    };
    let complaint_id = id.to_owned();
    let answer = match action {
        "assign" => {
            let request = ca::AssignComplaintRequest {
                complaint_id,
                township: Some(DivisionCode { code: form.get("township").trim().to_owned() }),
                due_on: date_of(form.get("due_on")),
                note: form.get("note").trim().to_owned(),
            };
            civil.assign_complaint(v.request(CIVIL, request)).await.map(|_| ())
        }
        "step" => {
            let request = ca::AddComplaintStepRequest {
                complaint_id,
                action: form.get("action").trim().to_owned(),
                note: form.get("note").trim().to_owned(),
            };
            civil.add_complaint_step(v.request(CIVIL, request)).await.map(|_| ())
        }
        "close" => {
            let request = ca::CloseComplaintRequest {
                complaint_id,
                outcome: form.get("outcome").parse().unwrap_or(0),
                reply: form.get("reply").trim().to_owned(),
            };
            civil.close_complaint(v.request(CIVIL, request)).await.map(|_| ())
        }
        _ => return Signed::Page(Page::message(StatusCode::NOT_FOUND, "没有这个页面", "没有这个页面")),
    };
    match answer {
        Ok(()) => Signed::Done(format!("/complaints/{id}")),
        Err(status) => Signed::Page(page(v, id, alert("complaint-error", &super::refusal(&status, NOT_FOUND))).await),
    }
}
