//! 家庭经济状况核对 for an application's household: the signed consent
//! registered with the hub — the scan uploaded (the hub keeps it and
//! computes its digest; the browser shows the same digest beforehand, for
//! the officer to compare with the paper; where only a digest is at hand
//! it may be typed instead), the signatories ticked among the household's
//! members — and the household verified under it; the report opens next,
//! and the application's verification step is offered with it.
//!
//! The members and their identity numbers are the ones civil affairs shows
//! this officer for the application (the form names them by position, so
//! no identity number travels in the form or a URL); the hub checks the
//! consent (R-VER-1) and the jurisdiction itself, and refuses in words that
//! name the field.

use dibao_proto::common::v1::{Date, IdentityNumber};
use dibao_proto::departments::ALL_ITEMS as ITEMS;
use dibao_proto::labels::Label;
use dibao_proto::verification::v1 as ver;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use http::StatusCode;

use super::application::{Signed, read};
use super::html::{Page, alert, esc};
use super::work::head_name;
use super::{Form, Visit};

const HUB: &str = "verification-hub";

fn iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

fn form(
    v: &Visit,
    a: &dibao_proto::civil_affairs::v1::Application,
    posted: Option<&Form>,
    error: Option<&str>,
) -> Page {
    let h = a.household.clone().unwrap_or_default();
    let today = dibao_platform::runtime::clock::china_date(v.gw.clock.now());
    let get = |name: &str, default: String| posted.map_or(default, |f| f.get(name).to_owned());
    let ticked = |name: &str| posted.is_none_or(|f| !f.get(name).is_empty());
    let members: String = h
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let person = m.person.clone().unwrap_or_default();
            let relation =
                dibao_proto::common::v1::Relation::try_from(m.relation).unwrap_or_default().label();
            format!(
                "<tr><td>{name}</td><td>{relation}</td>\
                 <td><input type=\"checkbox\" name=\"signed-{i}\" id=\"signed-{i}\" value=\"1\"{s} aria-label=\"{name}已签字\"></td>\
                 <td><input type=\"checkbox\" name=\"checked-{i}\" id=\"checked-{i}\" value=\"1\"{c} aria-label=\"核对{name}\"></td></tr>",
                name = esc(&person.name),
                relation = esc(relation),
                s = if ticked(&format!("signed-{i}")) { " checked" } else { "" },
                c = if ticked(&format!("checked-{i}")) { " checked" } else { "" },
            )
        })
        .collect();
    let items: String = ITEMS
        .iter()
        .map(|item| {
            let n = *item as i32;
            format!(
                "<label><input type=\"checkbox\" name=\"item-{n}\" value=\"1\"{c}> {}</label>",
                esc(item.label()),
                c = if ticked(&format!("item-{n}")) { " checked" } else { "" },
            )
        })
        .collect();
    let body = format!(
        "{alert}<dl class=\"summary\"><dt>户主</dt><dd>{head}</dd><dt>村</dt><dd>{village}</dd></dl>\
         <form method=\"post\" action=\"/applications/{id}/verify\" id=\"verify-form\" enctype=\"multipart/form-data\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <h2>授权书</h2>\
         <label for=\"scan\">授权书扫描件（上传后由核对平台保存并计算摘要，不超过3MB）</label>\
         <input type=\"file\" id=\"scan\" name=\"scan\" accept=\"application/pdf,image/*\" data-digest-into=\"document_sha256\">\
         <label for=\"document_sha256\">扫描件SHA-256摘要（选择扫描件后自动计算，用于与纸质件核对；仅有摘要时手工填写）</label>\
         <input id=\"document_sha256\" name=\"document_sha256\" value=\"{digest}\" size=\"70\" pattern=\"[0-9a-f]{{64}}\">\
         <table class=\"members\"><thead><tr><th scope=\"col\">家庭成员</th><th scope=\"col\">关系</th>\
         <th scope=\"col\">已签字</th><th scope=\"col\">核对</th></tr></thead><tbody>{members}</tbody></table>\
         <label><input type=\"checkbox\" name=\"no_relatives\" value=\"1\"{no_relatives}> 经核实，家庭成员在户外没有三代以内直系亲属</label>\
         <label for=\"signed_on\">签署日期</label><input type=\"date\" id=\"signed_on\" name=\"signed_on\" value=\"{signed_on}\" required>\
         <label for=\"valid_until\">有效期至</label><input type=\"date\" id=\"valid_until\" name=\"valid_until\" value=\"{valid_until}\" required>\
         <h2>核对事项</h2><fieldset><legend>授权并核对的事项</legend>{items}</fieldset>\
         <label for=\"purpose\">核对用途</label><input id=\"purpose\" name=\"purpose\" value=\"{purpose}\" required>\
         <button type=\"submit\" id=\"verify\">登记授权并核对</button> <a href=\"/applications/{id}\">返回申请</a></form>",
        alert = error.map(|e| alert("verify-error", e)).unwrap_or_default(),
        head = esc(&head_name(Some(&h))),
        village = v.place(&h.village.map(|v| v.code).unwrap_or_default()),
        id = esc(&a.application_id),
        csrf = esc(&v.csrf),
        digest = esc(&get("document_sha256", String::new())),
        no_relatives = if posted.is_some_and(|f| !f.get("no_relatives").is_empty()) { " checked" } else { "" },
        signed_on = esc(&get("signed_on", iso(today))),
        valid_until = esc(&get("valid_until", iso(today.replace_year(today.year() + 1).unwrap_or(today)))),
        purpose = esc(&get("purpose", "低保申请审核".to_owned())),
    );
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Page::with_status(status, "家庭经济状况核对", body)
}

/// `GET /applications/{id}/verify`.
pub async fn page(v: &Visit, id: &str) -> Page {
    match read(v, id).await {
        Ok(a) => form(v, &a, None, None),
        Err(page) => page,
    }
}

fn date_field(form: &Form, name: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(form.get(name).trim(), format)
        .map(|d| Date { year: d.year(), month: i32::from(d.month() as u8), day: i32::from(d.day()) })
        .map_err(|_| format!("{name}：请填写日期（年-月-日）"))
}

/// `POST /applications/{id}/verify`: the consent registered, then the
/// household verified under it; on to the application with the report.
pub async fn submit(v: &Visit, id: &str, posted: &Form) -> Signed {
    let a = match read(v, id).await {
        Ok(a) => a,
        Err(page) => return Signed::Page(page),
    };
    let refused = |message: &str| Signed::Page(form(v, &a, Some(posted), Some(message)));
    let h = a.household.clone().unwrap_or_default();
    // The scan itself when uploaded: the hub keeps it and computes its
    // digest (a digest typed beside it must be the scan's).
    let document = posted.file("scan").map(<[u8]>::to_vec).unwrap_or_default();
    let digest = posted.get("document_sha256").trim().to_ascii_lowercase();
    if document.is_empty() && (digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit())) {
        return refused("scan：请上传授权书扫描件，或填写其SHA-256摘要（64位十六进制）");
    }
    let (signed_on, valid_until) = match (date_field(posted, "signed_on"), date_field(posted, "valid_until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return refused(&e),
    };
    let mut signatories = Vec::new();
    let mut persons: Vec<IdentityNumber> = Vec::new();
    for (i, m) in h.members.iter().enumerate() {
        let person = m.person.clone().unwrap_or_default();
        if !posted.get(&format!("signed-{i}")).is_empty() {
            signatories.push(ver::Signatory { person: Some(person.clone()), relation: m.relation, relative: false });
        }
        if !posted.get(&format!("checked-{i}")).is_empty()
            && let Some(number) = person.identity_number
        {
            persons.push(number);
        }
    }
    let items: Vec<i32> =
        ITEMS.iter().map(|i| *i as i32).filter(|n| !posted.get(&format!("item-{n}")).is_empty()).collect();
    if persons.is_empty() {
        return refused("persons：请至少选择一名核对的家庭成员");
    }
    if items.is_empty() {
        return refused("items：请至少选择一项核对事项");
    }
    let mut hub = match v.upstream(HUB) {
        Ok(c) => VerificationServiceClient::new(c),
        Err(status) => return refused(status.message()),
    };
    let consent = ver::Consent {
        document_sha256: digest,
        document,
        signatories,
        covered_persons: persons.clone(),
        covered_items: items.clone(),
        signed_on: Some(signed_on),
        valid_until: Some(valid_until),
        no_relatives_outside_household: !posted.get("no_relatives").is_empty(),
        household_id: h.household_id.clone(),
        ..Default::default()
    };
    let consent_id =
        match hub.register_consent(v.request(HUB, ver::RegisterConsentRequest { consent: Some(consent) })).await {
            Ok(answer) => answer.into_inner().consent_id,
            Err(status) => return refused(&format!("授权书未登记：{}", super::refusal(&status, "不在您的管辖范围内"))),
        };
    let request = ver::VerifyHouseholdRequest {
        household_id: h.household_id.clone(),
        persons,
        consent_id,
        purpose: posted.get("purpose").trim().to_owned(),
        items,
        report_id: String::new(),
    };
    match hub.verify_household(v.request(HUB, request)).await {
        Ok(answer) => {
            let report = answer.into_inner().report.map(|r| r.report_id).unwrap_or_default();
            tracing::info!(officer = %v.session.claims.officer_id, application = %a.application_id, %report, "household verified at the console");
            Signed::Done(format!("/applications/{}?verified={report}", a.application_id))
        }
        Err(status) => refused(&format!("授权书已登记，核对未完成：{}", super::refusal(&status, "不在您的管辖范围内"))),
    }
}
