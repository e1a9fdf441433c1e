//! A household's application: its members (identity numbers as the
//! service shows them to this officer: masked unless their role may see
//! them), where it stands, the signed history (who signed what, when, with
//! the digest of what was signed), and — when the next step is the
//! officer's — signing it: the form, then a page showing exactly what will
//! be signed, then the signature. Objections are recorded while the
//! household is on public notice. A refusal is shown in the service's own
//! words, which name the field.

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{OfficerRole, Relation};
use dibao_proto::labels::Label;
use http::StatusCode;

use super::html::{Page, esc, table, timestamp, yuan};
use super::work::head_name;
use super::{Form, Visit};

const CIVIL: &str = "civil-affairs";
const NOT_FOUND: &str = "没有找到这份申请，或不在您的管辖范围内";

/// What a form post leads to: back to the application, or a page.
pub enum Signed {
    Done(String),
    Page(Page),
}

fn client(v: &Visit) -> Result<CivilAffairsServiceClient<dibao_platform::runtime::server::MeshChannel>, Page> {
    v.upstream(CIVIL)
        .map(CivilAffairsServiceClient::new)
        .map_err(|s| Page::message(StatusCode::SERVICE_UNAVAILABLE, "申请", s.message()))
}

fn step_of(step: i32) -> ca::ProcessStep {
    ca::ProcessStep::try_from(step).unwrap_or(ca::ProcessStep::Unspecified)
}

fn status_label(status: i32) -> &'static str {
    match ca::ApplicationStatus::try_from(status).unwrap_or(ca::ApplicationStatus::Unspecified) {
        ca::ApplicationStatus::Open => "办理中",
        ca::ApplicationStatus::Refused => "未通过",
        ca::ApplicationStatus::Enrolled => "已纳入保障",
        ca::ApplicationStatus::Exited => "已退出",
        ca::ApplicationStatus::Unspecified => "未知",
    }
}

fn relation(r: i32) -> &'static str {
    Relation::try_from(r).unwrap_or(Relation::Unspecified).label()
}

fn work_ability(w: i32) -> &'static str {
    match ca::WorkAbility::try_from(w).unwrap_or(ca::WorkAbility::Unspecified) {
        ca::WorkAbility::Full => "有劳动能力",
        ca::WorkAbility::Partial => "部分丧失",
        ca::WorkAbility::None => "完全丧失",
        ca::WorkAbility::Unspecified => "未填写",
    }
}

/// The application `id` as this officer may read it.
pub(super) async fn read(v: &Visit, id: &str) -> Result<ca::Application, Page> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Page::message(StatusCode::NOT_FOUND, "申请", NOT_FOUND));
    }
    let mut civil = client(v)?;
    match civil.get_application(v.request(CIVIL, ca::GetApplicationRequest { application_id: id.to_owned() })).await {
        Ok(answer) => {
            answer.into_inner().application.ok_or_else(|| Page::message(StatusCode::NOT_FOUND, "申请", NOT_FOUND))
        }
        Err(status) => {
            let code = match status.code() {
                tonic::Code::NotFound | tonic::Code::PermissionDenied => StatusCode::NOT_FOUND,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            Err(Page::message(code, "申请", &super::refusal(&status, NOT_FOUND)))
        }
    }
}

fn self_care(s: i32) -> &'static str {
    match ca::SelfCare::try_from(s).unwrap_or(ca::SelfCare::Unspecified) {
        ca::SelfCare::Full => "能够自理",
        ca::SelfCare::Partial => "部分丧失（半失能）",
        ca::SelfCare::None => "完全丧失（失能）",
        ca::SelfCare::Unspecified => "未填写",
    }
}

fn members(h: &ca::Household) -> String {
    // A special-hardship person's care standard follows their self-care ability (R-ELIG-3).
    let hardship = h.programme == dibao_proto::events::v1::Programme::SpecialHardship as i32;
    let rows: Vec<Vec<String>> = h
        .members
        .iter()
        .map(|m| {
            let person = m.person.clone().unwrap_or_default();
            let id = person.identity_number.map(|i| i.value).unwrap_or_default();
            vec![
                esc(&person.name),
                esc(relation(m.relation)),
                format!("<span class=\"id\">{}</span>", esc(&id)),
                match m.disability_grade {
                    0 => "无".to_owned(),
                    g => format!("{g}级"),
                },
                if m.serious_illness { "是".to_owned() } else { "否".to_owned() },
                esc(work_ability(m.work_ability)),
                if m.covered { "是".to_owned() } else { "否".to_owned() },
            ]
            .into_iter()
            .chain(hardship.then(|| esc(self_care(m.self_care))))
            .collect()
        })
        .collect();
    let headings: &[&str] = if hardship {
        &["姓名", "与户主关系", "身份证号", "残疾等级", "重病", "劳动能力", "纳入保障", "生活自理能力"]
    } else {
        &["姓名", "与户主关系", "身份证号", "残疾等级", "重病", "劳动能力", "纳入保障"]
    };
    table("members", headings, &rows, "无成员信息")
}

async fn history(v: &Visit, id: &str) -> String {
    let mut civil = match client(v) {
        Ok(c) => c,
        Err(_) => return String::new(),
    };
    let request = ca::GetHistoryRequest { of: Some(ca::get_history_request::Of::ApplicationId(id.to_owned())) };
    match civil.get_history(v.request(CIVIL, request)).await {
        Ok(answer) => {
            let rows: Vec<Vec<String>> = answer
                .into_inner()
                .entries
                .iter()
                .map(|e| {
                    let officer = e.officer.clone().unwrap_or_default();
                    let role = dibao_proto::common::v1::OfficerRole::try_from(officer.role)
                        .unwrap_or(dibao_proto::common::v1::OfficerRole::Unspecified)
                        .label();
                    vec![
                        esc(&e.action),
                        if e.approve { "同意".to_owned() } else { "<strong>不同意</strong>".to_owned() },
                        esc(&e.remarks),
                        format!("{}（{}）", esc(&officer.officer_name), esc(role)),
                        esc(&timestamp(officer.signed_at.as_ref())),
                        format!(
                            "<span class=\"digest\" title=\"{0}\">{1}</span>",
                            esc(&e.digest),
                            esc(e.digest.get(..12).unwrap_or(&e.digest))
                        ),
                    ]
                })
                .collect();
            table("history", &["事项", "结论", "意见", "签署人", "签署时间", "内容摘要"], &rows, "尚无签署记录")
        }
        Err(status) => super::html::alert("", &super::refusal(&status, "无权查看签署记录")),
    }
}

fn sign_form(v: &Visit, a: &ca::Application, form: Option<&Form>, error: Option<&str>) -> String {
    let step = step_of(a.next_step);
    let get = |name: &str| form.map(|f| f.get(name).to_owned()).unwrap_or_default();
    let decision = get("decision");
    let alert = error.map(|e| super::html::alert("sign-error", e)).unwrap_or_default();
    let report = if step == ca::ProcessStep::Verification {
        format!(
            "<label for=\"report\">核对报告编号</label><input id=\"report\" name=\"report\" value=\"{}\" required>",
            esc(&get("report"))
        )
    } else {
        String::new()
    };
    format!(
        "<section aria-labelledby=\"sign\" class=\"sign\"><h2 id=\"sign\">签署本环节：{label}</h2>{alert}\
         <form method=\"post\" action=\"/applications/{id}/sign\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"step\" value=\"{step}\">\
         <fieldset><legend>结论</legend>\
         <label><input type=\"radio\" name=\"decision\" value=\"approve\" id=\"approve\"{a}> 同意</label>\
         <label><input type=\"radio\" name=\"decision\" value=\"refuse\" id=\"refuse\"{r}> 不同意</label></fieldset>\
         <label for=\"remarks\">意见</label><textarea id=\"remarks\" name=\"remarks\" rows=\"3\">{remarks}</textarea>\
         {report}<button type=\"submit\" id=\"review-sign\">下一步：核对签署内容</button></form></section>",
        label = esc(step.label()),
        id = esc(&a.application_id),
        csrf = esc(&v.csrf),
        step = a.next_step,
        a = if decision == "approve" { " checked" } else { "" },
        r = if decision == "refuse" { " checked" } else { "" },
        remarks = esc(&get("remarks")),
    )
}

fn objection_form(v: &Visit, a: &ca::Application) -> String {
    format!(
        "<section aria-labelledby=\"objection\"><h2 id=\"objection\">公示期间异议</h2>\
         <form method=\"post\" action=\"/applications/{id}/objection\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"objection-text\">异议内容（来电、来信或来访所反映的情况）</label>\
         <textarea id=\"objection-text\" name=\"text\" rows=\"2\" required></textarea>\
         <button type=\"submit\" id=\"record-objection\">记录异议</button></form></section>",
        id = esc(&a.application_id),
        csrf = esc(&v.csrf),
    )
}

fn summary(v: &Visit, a: &ca::Application) -> String {
    let h = a.household.clone().unwrap_or_default();
    let amount = h.monthly_amount.map(|m| m.fen).unwrap_or_default();
    let category = dibao_proto::events::v1::BenefitCategory::try_from(h.category)
        .unwrap_or(dibao_proto::events::v1::BenefitCategory::Unspecified);
    let notice = timestamp(a.notice_ends_at.as_ref());
    format!(
        "<dl class=\"summary\">{number}<dt>户主</dt><dd id=\"head\">{head}</dd><dt>村</dt><dd>{village}</dd>\
         <dt>类型</dt><dd>{kind}</dd><dt>状态</dt><dd id=\"status\">{status}</dd>\
         <dt>当前环节</dt><dd id=\"next-step\">{step}</dd><dt>提交时间</dt><dd>{submitted}</dd>{notice}{report}{amount}\
         {certificate}</dl>",
        number = if h.household_number.is_empty() {
            String::new()
        } else {
            format!("<dt>户编号</dt><dd id=\"household-number\">{}</dd>", esc(&h.household_number))
        },
        head = esc(&head_name(Some(&h))),
        village = v.place(&h.village.map(|v| v.code).unwrap_or_default()),
        kind = if a.kind == ca::ApplicationKind::Exit as i32 { "退出" } else { "申请纳入低保" },
        status = status_label(a.status),
        step = esc(step_of(a.next_step).label()),
        submitted = esc(&timestamp(a.submitted_at.as_ref())),
        notice =
            if notice.is_empty() { String::new() } else { format!("<dt>公示期满</dt><dd>{}</dd>", esc(&notice)) },
        report = if a.verification_report_id.is_empty() {
            String::new()
        } else {
            format!(
                "<dt>核对报告</dt><dd><a href=\"/reports/{0}\" id=\"report-link\">{0}</a></dd>",
                esc(&a.verification_report_id)
            )
        },
        amount = if amount > 0 {
            format!("<dt>保障类别</dt><dd>{}</dd><dt>月保障金</dt><dd>{} 元</dd>", esc(category.label()), yuan(amount))
        } else {
            String::new()
        },
        certificate = if [ca::HouseholdStatus::Enrolled as i32, ca::HouseholdStatus::GradualExit as i32]
            .contains(&h.status)
        {
            format!(
                "<dt>低保证</dt><dd><a href=\"/applications/{}/certificate\" id=\"certificate-link\">查看、打印</a></dd>",
                esc(&a.application_id)
            )
        } else {
            String::new()
        },
    )
}

fn treatment(t: &str) -> &'static str {
    match t {
        "counted" => "计入",
        "excluded" => "不计入",
        "deducted" => "扣减",
        _ => "其他",
    }
}

/// Every income line as the engine treated it, with its rule, and the
/// result: what the officer checks before signing.
fn assessment(a: &ca::Application) -> String {
    let Some(x) = &a.assessment else {
        return "<p class=\"empty\" id=\"no-assessment\">本县尚无本月适用的低保政策，暂无法核算。</p>".to_owned();
    };
    let category = dibao_proto::events::v1::BenefitCategory::try_from(x.category)
        .unwrap_or(dibao_proto::events::v1::BenefitCategory::Unspecified);
    format!(
        "{lines}<dl class=\"summary\" id=\"assessment\"><dt>人均月收入</dt><dd>{per_capita} 元</dd>\
         <dt>是否符合条件</dt><dd id=\"eligible\">{eligible}</dd><dt>保障类别</dt><dd>{category}</dd>\
         <dt>月保障金</dt><dd id=\"assessed-amount\">{amount} 元</dd></dl>\
         <p><a href=\"/applications/{id}/explanation\" id=\"explanation-link\">打印给家庭的核算说明</a></p>",
        lines = lines_table(x, true),
        per_capita = yuan(x.per_capita_income.map(|m| m.fen).unwrap_or_default()),
        eligible = if x.eligible { "符合" } else { "不符合" },
        category = esc(category.label()),
        amount = yuan(x.monthly_amount.map(|m| m.fen).unwrap_or_default()),
        id = esc(&a.application_id),
    )
}

/// `GET /applications/{id}/explanation`: the explanation an officer prints
/// and hands to the household — who, the lines as counted, the result in
/// plain words — on a page of its own (the console's frame is not printed).
pub async fn explanation(v: &Visit, id: &str) -> Page {
    let a = match read(v, id).await {
        Ok(a) => a,
        Err(page) => return page,
    };
    let h = a.household.clone().unwrap_or_default();
    let Some(x) = &a.assessment else {
        return Page::message(StatusCode::CONFLICT, "核算说明", "本县尚无本月适用的低保政策，暂无法核算");
    };
    let today = super::html::date(dibao_platform::runtime::clock::china_date(v.gw.clock.now()));
    let text: String = x
        .explanation
        .split_inclusive('。')
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("<p>{}</p>", esc(s.trim())))
        .collect();
    let body = format!(
        "<div class=\"printable\" id=\"explanation\"><dl class=\"summary\"><dt>户主</dt><dd>{head}</dd>\
         <dt>村</dt><dd>{village}</dd><dt>核算日期</dt><dd>{today}</dd></dl>{lines}{text}\
         <p class=\"signature-line\">经办人：{officer}　　　　家庭签收：＿＿＿＿＿＿</p></div>\
         <p class=\"no-print\"><button type=\"button\" data-print id=\"print\">打印</button> \
         <a href=\"/applications/{id}\">返回申请</a></p>",
        head = esc(&head_name(Some(&h))),
        village = v.place(&h.village.map(|v| v.code).unwrap_or_default()),
        lines = lines_table(x, false),
        officer = esc(&v.session.claims.name),
        id = esc(&a.application_id),
    );
    Page::ok("低保核算说明", body)
}

/// `GET /applications/{id}/certificate`: the household's certificate
/// (低保证, 特困供养证) as printed, on a page of its own.
pub async fn certificate(v: &Visit, id: &str) -> Page {
    let a = match read(v, id).await {
        Ok(a) => a,
        Err(page) => return page,
    };
    let household_id = a.household.as_ref().map(|h| h.household_id.clone()).unwrap_or_default();
    let mut civil = match client(v) {
        Ok(c) => c,
        Err(page) => return page,
    };
    let answer = civil.get_certificate(v.request(CIVIL, ca::GetCertificateRequest { household_id })).await;
    let printed = match answer {
        Ok(answer) => answer.into_inner().printed,
        Err(status) => return Page::message(StatusCode::NOT_FOUND, "低保证", &super::refusal(&status, NOT_FOUND)),
    };
    let Some((title, lines)) = printed.split_first() else {
        return Page::message(
            StatusCode::CONFLICT,
            "低保证",
            "该户尚无本系统签发的证件（尚未纳入，或由原花名册导入、此后未有变更，原纸质证件继续有效）",
        );
    };
    let lines: String = lines.iter().map(|l| format!("<p>{}</p>", esc(l))).collect();
    let body = format!(
        "<div class=\"printable\" id=\"certificate\"><h2>{title}</h2>{lines}</div>\
         <p class=\"no-print\"><button type=\"button\" data-print id=\"print\">打印</button> \
         <a href=\"/applications/{id}\">返回申请</a></p>",
        title = esc(title),
        id = esc(&a.application_id),
    );
    Page::ok(title, body)
}

/// The income lines as the engine treated them; with `rules`, the rule of each (the officer's view).
fn lines_table(x: &ca::AssessHouseholdResponse, rules: bool) -> String {
    let rows: Vec<Vec<String>> = x
        .lines
        .iter()
        .map(|l| {
            let mut row = vec![
                esc(&l.item),
                format!("{} 元", yuan(l.amount.map(|m| m.fen).unwrap_or_default())),
                esc(treatment(&l.treatment)),
            ];
            if rules {
                row.push(format!("<span class=\"id\">{}</span>", esc(&l.rule_id)));
            }
            row
        })
        .collect();
    let head: &[&str] = if rules {
        &["收入项目", "月金额", "处理", "依据"]
    } else {
        &["收入项目", "月金额", "处理"]
    };
    table("lines", head, &rows, "未申报收入")
}

/// `a`'s page; `sign`: the sign form as posted (or prefilled) and the refusal to show at it.
async fn render(v: &Visit, a: &ca::Application, banner: String, sign: Option<(&Form, &str)>) -> Page {
    let h = a.household.clone().unwrap_or_default();
    let mut body = banner;
    body.push_str(&summary(v, a));
    body.push_str("<section aria-labelledby=\"members\"><h2 id=\"members\">家庭成员</h2>");
    body.push_str(&members(&h));
    body.push_str("</section><section aria-labelledby=\"assessed\"><h2 id=\"assessed\">收入核算</h2>");
    body.push_str(&assessment(a));
    body.push_str("</section>");
    if !a.verification_findings.is_empty() {
        let lines: String = a
            .verification_findings
            .lines()
            .map(|l| {
                if l.ends_with('：') {
                    format!("<li><strong>{}</strong></li>", esc(l))
                } else {
                    format!("<li>{}</li>", esc(l))
                }
            })
            .collect();
        body.push_str(&format!(
            "<section aria-labelledby=\"found\"><h2 id=\"found\">部门核对结果</h2><ul id=\"verification-findings\">{lines}</ul></section>"
        ));
    }
    if a.waiting_for_me {
        let error = sign.map(|(_, e)| e).filter(|e| !e.is_empty());
        body.push_str(&sign_form(v, a, sign.map(|(f, _)| f), error));
    }
    let verifies = [OfficerRole::VerificationOfficer, OfficerRole::TownshipCaseworker];
    if a.status == ca::ApplicationStatus::Open as i32 && v.session.claims.roles.iter().any(|r| verifies.contains(r)) {
        body.push_str(&format!(
            "<p><a href=\"/applications/{}/verify\" id=\"verify-link\">登记授权书并核对家庭经济状况</a></p>",
            esc(&a.application_id)
        ));
    }
    if a.notice_ends_at.is_some() {
        body.push_str(&objection_form(v, a));
    }
    body.push_str("<section aria-labelledby=\"signed\"><h2 id=\"signed\">签署记录</h2>");
    body.push_str(&history(v, &a.application_id).await);
    body.push_str("</section><p><a href=\"/work\">返回我的待办</a></p>");
    Page::ok(
        format!(
            "{}家的{}",
            head_name(Some(&h)),
            if a.kind == ca::ApplicationKind::Exit as i32 { "退出" } else { "申请" }
        ),
        body,
    )
}

/// `GET /applications/{id}`; `query` may carry the step just signed.
pub async fn page(v: &Visit, id: &str, query: &Form) -> Page {
    let a = match read(v, id).await {
        Ok(a) => a,
        Err(page) => return page,
    };
    let banner = match (query.get("signed").parse::<i32>(), query.get("approve")) {
        (Ok(step), approve) => format!(
            "<p class=\"notice ok\" role=\"status\" id=\"signed-notice\">已签署“{}”（{}）</p>",
            esc(step_of(step).label()),
            if approve == "1" { "同意" } else { "不同意" }
        ),
        _ if query.get("objection") == "1" => {
            "<p class=\"notice ok\" role=\"status\" id=\"signed-notice\">异议已记录</p>".to_owned()
        }
        _ if !query.get("verified").is_empty() => format!(
            "<p class=\"notice ok\" role=\"status\" id=\"verified-notice\">授权书已登记，核对完成：\
             <a href=\"/reports/{0}\" id=\"verified-report\">核对报告{0}</a></p>",
            esc(query.get("verified"))
        ),
        _ => String::new(),
    };
    // A report just made is offered to the verification step's form.
    let prefill = Form::parse(&format!("report={}", query.get("verified")));
    let sign = (!query.get("verified").is_empty()).then_some((&prefill, ""));
    render(v, &a, banner, sign).await
}

/// `POST /applications/{id}/sign`: without `confirm`, the page that shows
/// what will be signed; with it, the signature.
pub async fn sign(v: &Visit, id: &str, form: &Form) -> Signed {
    let a = match read(v, id).await {
        Ok(a) => a,
        Err(page) => return Signed::Page(page),
    };
    let step = form.get("step").parse::<i32>().unwrap_or_default();
    if step != a.next_step {
        let message = format!("step：该申请当前环节为“{}”，页面已过期，请核对后重新签署", step_of(a.next_step).label());
        return Signed::Page(render(v, &a, String::new(), Some((form, &message))).await);
    }
    let approve = match form.get("decision") {
        "approve" => true,
        "refuse" => false,
        _ => {
            return Signed::Page(render(v, &a, String::new(), Some((form, "decision：请选择“同意”或“不同意”"))).await);
        }
    };
    let remarks = form.get("remarks").trim();
    if !approve && remarks.is_empty() {
        return Signed::Page(render(v, &a, String::new(), Some((form, "remarks：不同意时请写明理由"))).await);
    }
    let report = form.get("report").trim();
    if form.get("confirm") != "yes" {
        return Signed::Page(confirmation(v, &a, approve, remarks, report));
    }
    let mut civil = match client(v) {
        Ok(c) => c,
        Err(page) => return Signed::Page(page),
    };
    let request = ca::SignStepRequest {
        application_id: a.application_id.clone(),
        step,
        approve,
        remarks: remarks.to_owned(),
        verification_report_id: report.to_owned(),
    };
    match civil.sign_step(v.request(CIVIL, request)).await {
        Ok(_) => {
            tracing::info!(officer = %v.session.claims.officer_id, application = %a.application_id, step, approve, "step signed at the console");
            Signed::Done(format!("/applications/{}?signed={step}&approve={}", a.application_id, u8::from(approve)))
        }
        Err(status) => {
            let message = super::refusal(&status, NOT_FOUND);
            Signed::Page(render(v, &a, String::new(), Some((form, &message))).await)
        }
    }
}

/// Exactly what the officer is about to sign, and the button that signs it.
fn confirmation(v: &Visit, a: &ca::Application, approve: bool, remarks: &str, report: &str) -> Page {
    let claims = &v.session.claims;
    let roles = claims.roles.iter().map(|r| r.label()).collect::<Vec<_>>().join("、");
    let report_line =
        if report.is_empty() { String::new() } else { format!("<dt>核对报告编号</dt><dd>{}</dd>", esc(report)) };
    let body = format!(
        "<p>请逐项核对。签署后记入签署记录，不能修改（R-PROC-2）。</p>\
         <dl class=\"summary confirm\" id=\"to-sign\"><dt>户主</dt><dd>{head}</dd><dt>村</dt><dd>{village}</dd>\
         <dt>环节</dt><dd>{step}</dd><dt>结论</dt><dd id=\"confirm-decision\">{decision}</dd>\
         <dt>意见</dt><dd>{remarks}</dd>{report_line}<dt>签署人</dt><dd>{name}（{roles}）</dd>\
         <dt>所属区划</dt><dd>{division}</dd><dt>签署时间</dt><dd>以确认时为准</dd></dl>\
         <form method=\"post\" action=\"/applications/{id}/sign\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"step\" value=\"{step_no}\">\
         <input type=\"hidden\" name=\"decision\" value=\"{decision_value}\">\
         <input type=\"hidden\" name=\"remarks\" value=\"{remarks}\"><input type=\"hidden\" name=\"report\" value=\"{report}\">\
         <input type=\"hidden\" name=\"confirm\" value=\"yes\">\
         <button type=\"submit\" id=\"confirm-sign\">确认签署</button> <a href=\"/applications/{id}\">返回修改</a></form>",
        head = esc(&head_name(a.household.as_ref())),
        village =
            v.place(&a.household.as_ref().and_then(|h| h.village.as_ref()).map(|v| v.code.clone()).unwrap_or_default()),
        step = esc(step_of(a.next_step).label()),
        decision = if approve { "同意" } else { "不同意" },
        remarks = if remarks.is_empty() { "（无）".to_owned() } else { esc(remarks) },
        name = esc(&claims.name),
        roles = esc(&roles),
        division = v.place(claims.division.as_str()),
        id = esc(&a.application_id),
        csrf = esc(&v.csrf),
        step_no = a.next_step,
        decision_value = if approve { "approve" } else { "refuse" },
        report = esc(report),
    );
    Page::ok("确认签署", body)
}

/// `POST /applications/{id}/objection`: an objection during the notice.
pub async fn object(v: &Visit, id: &str, form: &Form) -> Signed {
    let a = match read(v, id).await {
        Ok(a) => a,
        Err(page) => return Signed::Page(page),
    };
    let text = form.get("text").trim();
    if text.is_empty() {
        return objection_refused(v, &a, "text：请填写异议内容").await;
    }
    let mut civil = match client(v) {
        Ok(c) => c,
        Err(page) => return Signed::Page(page),
    };
    let request = ca::RecordObjectionRequest {
        application_id: a.application_id.clone(),
        text: text.to_owned(),
        resolved: false,
        objection_id: String::new(),
    };
    match civil.record_objection(v.request(CIVIL, request)).await {
        Ok(_) => Signed::Done(format!("/applications/{}?objection=1", a.application_id)),
        Err(status) => objection_refused(v, &a, &super::refusal(&status, NOT_FOUND)).await,
    }
}

async fn objection_refused(v: &Visit, a: &ca::Application, message: &str) -> Signed {
    let banner = super::html::alert("objection-error", message);
    Signed::Page(render(v, a, banner, None).await)
}
