//! 公示名单: the households of the officer's township or village on public
//! notice — applicants in their 7-day notice, or the enrolled households of
//! the long-term notice — as civil affairs exports them (identity numbers
//! hidden, R-PROC-1), on a page printed for the village's notice board, and
//! the same list as the service's xlsx.

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::DivisionCode;
use http::StatusCode;
use tonic::body::Body;

use super::html::{Page, alert, esc, table};
use super::{Form, Visit};

const CIVIL: &str = "civil-affairs";

fn kind_of(query: &Form) -> ca::NoticeKind {
    match query.get("kind") {
        "2" => ca::NoticeKind::Enrolled,
        _ => ca::NoticeKind::Applicants,
    }
}

fn title(kind: ca::NoticeKind) -> &'static str {
    match kind {
        ca::NoticeKind::Enrolled => "低保、特困供养对象长期公示名单",
        _ => "低保申请对象公示名单",
    }
}

async fn export(
    v: &Visit,
    kind: ca::NoticeKind,
    format: ca::FileFormat,
) -> Result<ca::ExportPublicNoticeResponse, String> {
    let channel = v.upstream(CIVIL).map_err(|s| s.message().to_owned())?;
    let request = ca::ExportPublicNoticeRequest {
        division: Some(DivisionCode { code: v.session.claims.division.as_str().to_owned() }),
        kind: kind as i32,
        format: format as i32,
    };
    CivilAffairsServiceClient::new(channel)
        .export_public_notice(v.request(CIVIL, request))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| super::refusal(&status, "没有找到该区划"))
}

/// `GET /notice?kind=1|2`: the list as a page to print.
pub async fn page(v: &Visit, query: &Form) -> Page {
    let kind = kind_of(query);
    let tabs = format!(
        "<nav class=\"tabs no-print\" aria-label=\"名单\"><a href=\"/notice?kind=1\"{a}>申请对象（7日公示）</a>\
         <a href=\"/notice?kind=2\"{e}>在保对象（长期公示）</a></nav>",
        a = if kind == ca::NoticeKind::Applicants { " aria-current=\"page\"" } else { "" },
        e = if kind == ca::NoticeKind::Enrolled { " aria-current=\"page\"" } else { "" },
    );
    let file = match export(v, kind, ca::FileFormat::Csv).await {
        Ok(file) => file,
        Err(message) => return Page::ok(title(kind), format!("{tabs}{}", alert("", &message))),
    };
    // The table, then the line of numbers to call (R-AUD-2) the service prints under it.
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file.content.as_slice());
    let head: Vec<String> = reader.headers().map(|h| h.iter().map(str::to_owned).collect()).unwrap_or_default();
    let (mut rows, mut contacts) = (Vec::new(), String::new());
    for record in reader.records().filter_map(Result::ok) {
        if record.len() == head.len() {
            rows.push(record.iter().map(esc).collect::<Vec<String>>());
        } else if let Some(line) = record.get(0).filter(|l| l.starts_with("监督举报电话")) {
            contacts = esc(line);
        }
    }
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let today = super::html::date(dibao_platform::runtime::clock::china_date(v.gw.clock.now()));
    let body = format!(
        "{tabs}<div class=\"printable wide\" id=\"notice\"><p><strong>{place}</strong>　共{n}户　{today}</p>{table}\
         <p>公示期间如有异议，请向乡镇人民政府（街道办事处）或县级民政部门反映。</p>\
         <p id=\"notice-contacts\">{contacts}</p></div>\
         <p class=\"no-print\"><button type=\"button\" data-print id=\"print\">打印</button> \
         <a href=\"/notice/export?kind={k}\" id=\"notice-xlsx\">下载xlsx</a></p>",
        place = v.place(v.session.claims.division.as_str()),
        n = file.households,
        table = table("notice", &head, &rows, "当前没有公示中的家庭"),
        k = kind as i32,
    );
    Page::ok(title(kind), body)
}

/// `GET /notice/export?kind=1|2`: the list as the service's xlsx.
pub async fn download(v: &Visit, query: &Form) -> Result<http::Response<Body>, Page> {
    let kind = kind_of(query);
    let file = export(v, kind, ca::FileFormat::Xlsx)
        .await
        .map_err(|message| Page::with_status(StatusCode::BAD_REQUEST, title(kind), alert("", &message)))?;
    Ok(super::html::attachment(
        &file.filename,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        file.content,
    ))
}
