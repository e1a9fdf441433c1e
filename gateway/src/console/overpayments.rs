//! 多发追回: the county's payments above what their month was owed (a
//! death recorded after the roll, a review lowering the amount), as civil
//! affairs lists them, each with what is left to recover and a form to
//! record money that came back (R-PROC-1; issue 23, item 1). The amount is
//! typed in yuan and sent as fen, exactly; what is left is the service's.

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::payment_service_client::PaymentServiceClient;
use dibao_proto::common::v1::{DivisionCode, Money};
use dibao_proto::types::Fen;
use http::StatusCode;

use super::application::Signed;
use super::html::{Page, alert, esc, table, yuan};
use super::{Form, Visit};

const CIVIL: &str = "civil-affairs";
const TITLE: &str = "多发追回";

/// The officer's county: the six digits of their division (a province's or
/// city's officer names none, and is asked to narrow to one).
fn county(v: &Visit) -> Option<String> {
    let code = v.session.claims.division.as_str();
    (code.len() >= 6 && !code.ends_with("00")).then(|| code[..6].to_owned())
}

pub async fn page(v: &Visit, banner: String) -> Page {
    let Some(county) = county(v) else {
        return Page::message(StatusCode::OK, TITLE, "多发追回按县办理，请以县级账号登录");
    };
    let channel = match v.upstream(CIVIL) {
        Ok(c) => c,
        Err(status) => return Page::message(StatusCode::SERVICE_UNAVAILABLE, TITLE, status.message()),
    };
    let request = ca::ListOverpaymentsRequest { county: Some(DivisionCode { code: county.clone() }) };
    let listed = match PaymentServiceClient::new(channel).list_overpayments(v.request(CIVIL, request)).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            return Page::message(StatusCode::OK, TITLE, &super::refusal(&status, "无权查看本县的发放记录"));
        }
    };
    let fen = |m: Option<&Money>| m.map_or(0, |m| m.fen);
    let rows: Vec<Vec<String>> = listed
        .overpayments
        .iter()
        .map(|o| {
            let p = o.payment.clone().unwrap_or_default();
            let month = p.month.as_ref().map(|m| format!("{}年{:02}月", m.year, m.month)).unwrap_or_default();
            let status = ca::PaymentStatus::try_from(p.status).unwrap_or(ca::PaymentStatus::Unspecified);
            let state =
                if status == ca::PaymentStatus::Pending { "待银行回盘（应止付）" } else { "已发放" };
            vec![
                esc(&p.reference),
                esc(&p.household_number),
                esc(&month),
                format!("{}（{}）", yuan(fen(p.amount.as_ref())), state),
                yuan(fen(o.owed.as_ref())),
                yuan(fen(o.recovered.as_ref())),
                format!("<strong>{}</strong>", yuan(fen(o.overpaid.as_ref()))),
                esc(&o.reason),
                if status == ca::PaymentStatus::Pending {
                    "通知银行止付，回盘为失败后不再列出".to_owned()
                } else {
                    recover_form(v, &p.reference)
                },
            ]
        })
        .collect();
    let mut body = banner;
    body.push_str(&format!(
        "<p>{}的多发款项共{}笔，合计{}元（已发放的追回，待回盘的止付）。</p>",
        v.place(&county),
        listed.overpayments.len(),
        yuan(fen(listed.total.as_ref()))
    ));
    body.push_str(&table(
        "overpayments",
        &["业务编号", "户编号", "月份", "已发（元）", "应发（元）", "已追回（元）", "待追回（元）", "原因", "追回"],
        &rows,
        "本县没有待追回的多发款项",
    ));
    Page::ok(TITLE, body)
}

/// The form recording money of payment `reference` that came back.
fn recover_form(v: &Visit, reference: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/overpayments/recover\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"reference\" value=\"{reference}\">\
         <label>追回金额（元）<input name=\"amount\" inputmode=\"decimal\" required></label>\
         <label>追回方式、凭证号<input name=\"note\" required></label>\
         <button type=\"submit\">记录追回</button></form>",
        csrf = esc(&v.csrf),
        reference = esc(reference),
    )
}

/// Records a recovery; the amount as typed in yuan, checked here only for
/// its form (the service decides whether it is too much).
pub async fn recover(v: &Visit, form: &Form) -> Signed {
    let amount = match Fen::parse_yuan(form.get("amount")) {
        Ok(f) => f,
        Err(e) => return Signed::Page(page(v, alert("recover-error", &format!("amount：{}", e.reason))).await),
    };
    let channel = match v.upstream(CIVIL) {
        Ok(c) => c,
        Err(status) => return Signed::Page(Page::message(StatusCode::SERVICE_UNAVAILABLE, TITLE, status.message())),
    };
    let request = ca::RecordRecoveryRequest {
        reference: form.get("reference").trim().to_owned(),
        amount: Some(Money { fen: amount.0 }),
        note: form.get("note").trim().to_owned(),
    };
    match PaymentServiceClient::new(channel).record_recovery(v.request(CIVIL, request)).await {
        Ok(_) => Signed::Done("/overpayments?recovered=1".to_owned()),
        Err(status) => {
            let message = super::refusal(&status, "没有这一笔待追回的多发款项，或不在您的管辖范围内");
            Signed::Page(page(v, alert("recover-error", &message)).await)
        }
    }
}
