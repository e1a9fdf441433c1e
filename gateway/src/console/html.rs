//! The console's page frame and how it writes what an officer reads:
//! escaped text, dates as 2026年12月02日 in Beijing time, yuan computed
//! exactly from fen. Every page is sent with the same protective headers:
//! a Content-Security-Policy that admits only the gateway's own files (no
//! inline script, no other origin), no caching, no framing, no referrer.

use bytes::Bytes;
use http::{StatusCode, header};
use http_body_util::Full;
use time::{Date, OffsetDateTime};
use tonic::body::Body;

use crate::sessions::Session;

/// Only the gateway's own files; forms post only to it; never in a frame.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `text` safe inside HTML text and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// 2026年12月02日.
pub use dibao_proto::labels::chinese_date as date;

/// 2026年12月02日 14:05, Beijing time.
pub fn datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(dibao_platform::runtime::clock::CHINA);
    format!("{} {:02}:{:02}", date(t.date()), t.hour(), t.minute())
}

/// A protobuf timestamp as [`datetime`]; empty when absent.
pub fn timestamp(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok()).map(datetime).unwrap_or_default()
}

/// A protobuf date as [`date`]; empty when absent or not a date.
pub fn pb_date(d: Option<&dibao_proto::common::v1::Date>) -> String {
    d.and_then(|d| {
        let month = time::Month::try_from(u8::try_from(d.month).ok()?).ok()?;
        Date::from_calendar_date(d.year, month, u8::try_from(d.day).ok()?).ok()
    })
    .map(date)
    .unwrap_or_default()
}

/// Fen as yuan with two decimals, exactly: 123456 → "1234.56".
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A refusal or error shown to the officer (`id` for the tests and for
/// assistive technology to find it).
pub fn alert(id: &str, message: &str) -> String {
    let id = if id.is_empty() { String::new() } else { format!(" id=\"{id}\"") };
    format!("<p class=\"notice error\" role=\"alert\"{id}>{}</p>", esc(message))
}

/// A page: its status, title and the HTML of its main part.
pub struct Page {
    pub status: StatusCode,
    pub title: String,
    pub body: String,
}

impl Page {
    pub fn ok(title: impl Into<String>, body: String) -> Self {
        Self { status: StatusCode::OK, title: title.into(), body }
    }

    pub fn with_status(status: StatusCode, title: impl Into<String>, body: String) -> Self {
        Self { status, title: title.into(), body }
    }

    /// A page that only says `message`.
    pub fn message(status: StatusCode, title: &str, message: &str) -> Self {
        Self::with_status(status, title, alert("", message))
    }
}

/// The officer at the top of every page, with the navigation and the
/// logout form (which carries the session's CSRF token).
pub struct Frame<'a> {
    pub session: &'a Session,
    pub csrf: &'a str,
    /// After how long without input the page returns to the login.
    pub idle_seconds: i64,
    /// The officer's division as they read it (its name where known).
    pub division: String,
}

fn roles(session: &Session) -> String {
    session.claims.roles.iter().map(|r| dibao_proto::labels::Label::label(*r)).collect::<Vec<_>>().join("、")
}

/// The whole document of `page`; with a frame, the officer's header and
/// navigation (a page before login has none).
pub fn document(page: &Page, frame: Option<&Frame<'_>>) -> String {
    let header = match frame {
        Some(f) => format!(
            "<header class=\"top\"><div class=\"brand\">低保与防返贫信息协同 · 办公台</div>\
             <nav aria-label=\"主导航\"><a href=\"/work\">我的待办</a><a href=\"/comparison\">台账比对</a>\
             <a href=\"/campaigns\">集中核查</a><a href=\"/notice\">公示名单</a><a href=\"/history\">查询记录</a>{money}{ops}</nav>\
             <div class=\"who\"><span>{name}（{roles}，区划 {division}）</span>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\" class=\"link\">退出登录</button></form></div></header>",
            name = esc(&f.session.claims.name),
            roles = esc(&roles(f.session)),
            division = esc(&f.division),
            csrf = esc(f.csrf),
            money = if f.session.claims.roles.iter().any(|r| {
                matches!(
                    r,
                    dibao_proto::common::v1::OfficerRole::CountyOperator
                        | dibao_proto::common::v1::OfficerRole::CountyApprover
                )
            }) {
                "<a href=\"/overpayments\">多发追回</a>"
            } else {
                ""
            },
            ops = if f.session.claims.roles.contains(&dibao_proto::common::v1::OfficerRole::SystemOperator) {
                "<a href=\"/operations\">运行监控</a>"
            } else {
                ""
            },
        ),
        None => "<header class=\"top\"><div class=\"brand\">低保与防返贫信息协同 · 办公台</div></header>".to_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · 办公台</title><link rel=\"icon\" href=\"/favicon.ico\" type=\"image/svg+xml\"><link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <script src=\"/assets/console.js\" defer></script></head>\
         <body{idle}>{header}<main id=\"main\"><h1>{title}</h1>{body}</main>\
         <footer>本系统含个人信息，仅限因公使用；每次查阅均记入查询记录。</footer></body></html>",
        title = esc(&page.title),
        body = page.body,
        idle = frame.map(|f| format!(" data-idle-seconds=\"{}\"", f.idle_seconds)).unwrap_or_default(),
    )
}

/// The headers every console answer carries.
pub fn protected(builder: http::response::Builder) -> http::response::Builder {
    builder
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000")
}

/// `page` as an answer, with `cookies` set.
pub fn respond(page: &Page, frame: Option<&Frame<'_>>, cookies: &[String]) -> http::Response<Body> {
    let mut builder = protected(http::Response::builder().status(page.status))
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8");
    for cookie in cookies {
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    builder
        .body(Body::new(Full::new(Bytes::from(document(page, frame)))))
        .unwrap_or_else(|_| http::Response::new(Body::empty()))
}

/// A redirect after a form (303: the browser follows with GET).
pub fn see_other(location: &str, cookies: &[String]) -> http::Response<Body> {
    let mut builder =
        protected(http::Response::builder().status(StatusCode::SEE_OTHER)).header(header::LOCATION, location);
    for cookie in cookies {
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    builder.body(Body::empty()).unwrap_or_else(|_| http::Response::new(Body::empty()))
}

/// A file the console serves itself (no CDN: county offices are often offline).
pub fn asset(content_type: &str, bytes: &'static [u8]) -> http::Response<Body> {
    protected(http::Response::builder().status(StatusCode::OK))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::new(Full::new(Bytes::from_static(bytes))))
        .unwrap_or_else(|_| http::Response::new(Body::empty()))
}

/// A file to download, named `name` (RFC 6266: an ASCII fallback and the UTF-8 name).
pub fn attachment(name: &str, content_type: &str, content: Vec<u8>) -> http::Response<Body> {
    let ascii: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    protected(http::Response::builder().status(StatusCode::OK))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .body(Body::new(Full::new(Bytes::from(content))))
        .unwrap_or_else(|_| http::Response::new(Body::empty()))
}

/// A table of `head` and `rows` (cells already HTML), or `empty` when there are none.
pub fn table(class: &str, head: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let mut out = format!("<table class=\"{class}\"><thead><tr>");
    for h in head {
        out.push_str(&format!("<th scope=\"col\">{}</th>", esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_amounts_are_exact() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(yuan(123_456), "1234.56");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(-1_001), "-10.01");
        assert_eq!(yuan(i64::MIN), "-92233720368547758.08");
        let d = time::macros::date!(2026 - 12 - 02);
        assert_eq!(date(d), "2026年12月02日");
        let t = time::macros::datetime!(2026-12-01 17:30 UTC);
        assert_eq!(datetime(t), "2026年12月02日 01:30", "Beijing time");
    }
}
