//! The officers' console (办公台): pages in Simplified Chinese served by the
//! gateway over HTTPS, rendered here in Rust (no script framework, nothing
//! from another origin: county offices run older Chromium-based browsers,
//! often on an intranet without the internet).
//!
//! Every page is for a logged-in officer (the session cookie, `HttpOnly;
//! Secure; SameSite=Strict`, idle and absolute limits as for every
//! session) and every call it makes to a service carries a fresh officer
//! assertion for that service alone, exactly as a forwarded gRPC call does:
//! each service applies its own table — roles, jurisdiction, masking — and
//! logs each read of a person's data. Every form carries a CSRF token
//! bound to the session (login: to a cookie of its own); an identity number
//! never goes in a URL.
//!
//! Pages: [`login`] (password and authenticator code; logout), [`work`]
//! (我的待办), [`application`] (a household's application, its signed
//! history, signing a step after confirming it, objections), [`comparison`]
//! (台账比对: the lists (a)–(g), deciding an entry), [`report`] (核对报告),
//! [`campaign`] (集中核查,
//! followed live), [`history`] (查询记录: who looked at a person's data),
//! [`operations`] (运行监控: each service's pipeline, for system operators),
//! [`verification`] (a household's consent registered and verified),
//! [`notice`] (公示名单, printed for the notice board).

pub mod application;
pub mod campaign;
pub mod comparison;
pub mod complaint;
pub mod history;
pub mod html;
pub mod live;
pub mod login;
pub mod notice;
pub mod operations;
pub mod overpayments;
pub mod report;
pub mod verification;
pub mod work;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use tonic::body::Body;

use crate::gateway::Gateway;
use crate::server::Conn;
use crate::sessions::{Session, SessionRefusal};
use html::{Frame, Page};

/// Largest form the console reads.
const MAX_FORM: usize = 64 * 1024;
/// The most a form with a file may carry: a consent's scan (at most 3 MiB
/// at the hub) and the form's fields.
const MAX_UPLOAD: usize = 3 * 1024 * 1024 + MAX_FORM;

/// A logged-in officer's visit: the session and its CSRF token.
pub struct Visit {
    pub gw: Arc<Gateway>,
    pub session: Session,
    pub csrf: String,
    pub token: String,
    pub peer: String,
}

impl Visit {
    /// `page` in the officer's frame.
    pub fn respond(&self, page: &Page) -> http::Response<Body> {
        let idle_seconds = self.gw.sessions.limits().idle.whole_seconds();
        let division = self.gw.divisions.label(self.session.claims.division.as_str());
        html::respond(page, Some(&Frame { session: &self.session, csrf: &self.csrf, idle_seconds, division }), &[])
    }

    /// `message` for a call to `service` of the mesh, with this officer's
    /// assertion for that service alone.
    pub fn request<T>(&self, service: &str, message: T) -> tonic::Request<T> {
        self.gw.request(&self.session.claims, service, message)
    }

    /// Division `code` as the officer reads it: its name beside it where the table has one (escaped).
    pub fn place(&self, code: &str) -> String {
        html::esc(&self.gw.divisions.label(code))
    }

    /// The channel to `service`, if the gateway forwards to it.
    pub fn upstream(&self, service: &str) -> Result<dibao_platform::runtime::server::MeshChannel, tonic::Status> {
        self.gw
            .upstreams
            .get(service)
            .cloned()
            .ok_or_else(|| tonic::Status::unavailable(format!("网关未接入“{service}”服务")))
    }

    /// Whether the form's CSRF token is this session's.
    pub fn csrf_ok(&self, form: &Form) -> bool {
        same(form.get("csrf").as_bytes(), self.csrf.as_bytes())
    }
}

/// The CSRF token of a session: derived from its (secret, HttpOnly) token,
/// so a page of another site can neither read nor make it.
pub fn csrf_of(session_token: &str) -> String {
    crate::secrets::token_hash(&format!("dibao-console-csrf\0{session_token}"))
}

/// Compares in time independent of where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A posted form's fields, and the files uploaded with it.
#[derive(Debug, Default)]
pub struct Form(HashMap<String, String>, HashMap<String, Vec<u8>>);

impl Form {
    /// The field's value, empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// The file uploaded in the field, if one was chosen.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.1.get(name).map(Vec::as_slice)
    }

    pub fn parse(body: &str) -> Self {
        Self(
            body.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode(k), decode(v))
                })
                .collect(),
            HashMap::new(),
        )
    }

    /// A `multipart/form-data` body (RFC 7578) with `boundary`: its text
    /// fields, and each file part with a name and a file chosen. None when
    /// it is not one.
    pub fn multipart(body: &[u8], boundary: &str) -> Option<Self> {
        let delimiter = format!("\r\n--{boundary}");
        // The body starts with the boundary without the line break before it.
        let body = body.strip_prefix(&delimiter.as_bytes()[2..])?;
        let mut form = Self::default();
        let mut rest = body;
        loop {
            if rest.starts_with(b"--") {
                return Some(form);
            }
            rest = rest.strip_prefix(b"\r\n")?;
            let end = find(rest, delimiter.as_bytes())?;
            let (part, after) = rest.split_at(end);
            rest = &after[delimiter.len()..];
            let split = find(part, b"\r\n\r\n")?;
            let (head, content) = (&part[..split], &part[split + 4..]);
            let head = std::str::from_utf8(head).ok()?;
            let disposition =
                head.split("\r\n").find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
            let param = |key: &str| {
                disposition.split(';').map(str::trim).find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
                })
            };
            let name = param("name")?;
            match param("filename") {
                // A file input left empty sends an empty part without a name.
                Some(file) if file.is_empty() && content.is_empty() => {}
                Some(_) => {
                    form.1.insert(name, content.to_vec());
                }
                None => {
                    form.0.insert(name, String::from_utf8_lossy(content).into_owned());
                }
            }
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `application/x-www-form-urlencoded` text decoded (`+` is a space).
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16);
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The posted form of `req`; an answer instead when it is not one. Where
/// `uploads` (the consent form, with its scan), it may come as
/// `multipart/form-data`, up to [`MAX_UPLOAD`]; every other form as
/// `application/x-www-form-urlencoded`, up to [`MAX_FORM`].
async fn form_of(req: http::Request<hyper::body::Incoming>, uploads: bool) -> Result<Form, Page> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let not_a_form = || Page::message(StatusCode::UNSUPPORTED_MEDIA_TYPE, "无法处理", "表单格式不正确，请从页面提交");
    let boundary = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|p| p.split(';').map(str::trim).find_map(|p| p.strip_prefix("boundary=")))
        .map(|b| b.trim_matches('"').to_owned());
    let limit = match &boundary {
        Some(b) if uploads && !b.is_empty() && b.len() <= 70 => MAX_UPLOAD,
        Some(_) => return Err(not_a_form()),
        None if content_type.starts_with("application/x-www-form-urlencoded") => MAX_FORM,
        None => return Err(not_a_form()),
    };
    let bytes = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|_| Page::message(StatusCode::PAYLOAD_TOO_LARGE, "无法处理", "提交的内容过长（上传文件不能超过3MB）"))?
        .to_bytes();
    match boundary {
        Some(b) => Form::multipart(&bytes, &b).ok_or_else(not_a_form),
        None => Ok(Form::parse(&String::from_utf8_lossy(&bytes))),
    }
}

/// The refusal a form without this session's token gets.
fn forged() -> Page {
    Page::message(
        StatusCode::FORBIDDEN,
        "请求被拒绝",
        "表单校验码不正确或已过期（可能来自其他网站）：请回到办公台页面重新操作",
    )
}

/// Who is visiting: a live session, or why not.
async fn visit(
    gw: &Arc<Gateway>,
    conn: &Conn,
    headers: &http::HeaderMap,
) -> Result<Result<Visit, Option<SessionRefusal>>, dibao_platform::Error> {
    let Some(token) = crate::proxy::token_of(headers) else {
        return Ok(Err(None));
    };
    Ok(match gw.sessions.find(&token).await? {
        Ok(session) => Ok(Visit { gw: gw.clone(), session, csrf: csrf_of(&token), token, peer: conn.peer.to_string() }),
        Err(refusal) => Err(Some(refusal)),
    })
}

/// Where an officer without a live session is sent.
fn to_login(refusal: Option<SessionRefusal>) -> http::Response<Body> {
    let reason = match refusal {
        Some(SessionRefusal::Idle) => "?reason=idle",
        Some(SessionRefusal::Expired) => "?reason=expired",
        Some(SessionRefusal::Revoked) => "?reason=revoked",
        Some(SessionRefusal::Unknown) | None => "",
    };
    html::see_other(&format!("/login{reason}"), &[])
}

/// One request for the console (every path that is not gRPC or `/api/`).
pub async fn http(
    gw: Arc<Gateway>,
    conn: Arc<Conn>,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = route(&gw, &conn, method, &path, req).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "console page failed");
        html::respond(
            &Page::message(StatusCode::SERVICE_UNAVAILABLE, "暂不可用", "服务暂不可用，请稍后再试"),
            None,
            &[],
        )
    });
    // Paths are named by their shape (an application's id is not a metric label).
    let shape = match path.as_str() {
        p if p.starts_with("/applications/") && p.ends_with("/explanation") => "/applications/{id}/explanation",
        p if p.starts_with("/applications/") && p.ends_with("/certificate") => "/applications/{id}/certificate",
        p if p.starts_with("/applications/") && p.ends_with("/verify") => "/applications/{id}/verify",
        p if p.starts_with("/applications/") => "/applications/{id}",
        p if p.starts_with("/campaigns/") && p.ends_with("/events") => "/campaigns/{id}/events",
        p if p.starts_with("/comparison/runs/") && p.ends_with("/events") => "/comparison/runs/{id}/events",
        p if p.starts_with("/comparison/runs/") => "/comparison/runs/{id}",
        p if p.starts_with("/campaigns/") && p.ends_with("/findings") => "/campaigns/{id}/findings",
        p if p.starts_with("/campaigns/") => "/campaigns/{id}",
        p if p.starts_with("/reports/") => "/reports/{id}",
        p if p.starts_with("/complaints/") && p.matches('/').count() == 3 => "/complaints/{id}/{action}",
        p if p.starts_with("/complaints/") => "/complaints/{id}",
        p => p,
    };
    gw.metrics.call(&format!("console {shape}"), "console", started.elapsed());
    response
}

async fn route(
    gw: &Arc<Gateway>,
    conn: &Conn,
    method: Method,
    path: &str,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, dibao_platform::Error> {
    match (&method, path) {
        (&Method::GET, "/assets/console.css") => {
            return Ok(html::asset("text/css; charset=utf-8", include_bytes!("../../assets/console.css")));
        }
        (&Method::GET, "/assets/console.js") => {
            return Ok(html::asset("text/javascript; charset=utf-8", include_bytes!("../../assets/console.js")));
        }
        // Browsers ask for it on every site; it is not a page to log in for.
        (&Method::GET, "/favicon.ico") => {
            return Ok(html::asset("image/svg+xml", include_bytes!("../../assets/favicon.svg")));
        }
        (&Method::GET, "/login") => return login::page(gw, conn, req.headers(), req.uri().query()).await,
        (&Method::POST, "/login") => {
            let cookie = login::nonce_of(req.headers());
            return Ok(match form_of(req, false).await {
                Ok(form) => login::submit(gw, conn, cookie.as_deref(), &form).await?,
                Err(page) => html::respond(&page, None, &[]),
            });
        }
        _ => {}
    }
    let v = match visit(gw, conn, req.headers()).await? {
        Ok(v) => v,
        Err(refusal) => {
            return Ok(match method {
                Method::GET => to_login(refusal),
                _ => html::respond(
                    &Page::message(StatusCode::UNAUTHORIZED, "未登录", "登录已失效，请重新登录后再提交"),
                    None,
                    &[],
                ),
            });
        }
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    let page = match (method, path) {
        (Method::GET, "/") => return Ok(html::see_other("/work", &[])),
        (Method::GET, "/work") => work::page(&v).await,
        (Method::GET, "/history") => history::form_page(&v),
        (Method::GET, "/comparison") => comparison::page(&v, &Form::parse(&query)).await,
        (Method::GET, "/comparison/export") => match comparison::export(&v, &Form::parse(&query)).await {
            Ok(file) => return Ok(file),
            Err(page) => page,
        },
        (Method::GET, p) if p.starts_with("/comparison/runs/") && p.ends_with("/events") => {
            return Ok(comparison::run_events(
                &v,
                p.trim_start_matches("/comparison/runs/").trim_end_matches("/events"),
            ));
        }
        (Method::GET, p) if p.starts_with("/comparison/runs/") => {
            comparison::run_page(&v, p.trim_start_matches("/comparison/runs/"))
        }
        (Method::GET, "/campaigns") => campaign::form_page(&v),
        (Method::GET, "/notice") => notice::page(&v, &Form::parse(&query)).await,
        (Method::GET, "/notice/export") => match notice::download(&v, &Form::parse(&query)).await {
            Ok(file) => return Ok(file),
            Err(page) => page,
        },
        (Method::GET, "/operations") => operations::page(&v, &Form::parse(&query)).await,
        (Method::GET, "/overpayments") => overpayments::page(&v, String::new()).await,
        (Method::GET, p) if p.starts_with("/reports/") => report::page(&v, p.trim_start_matches("/reports/")).await,
        (Method::GET, "/complaints/new") => complaint::new_page(&v, String::new(), &Form::parse("")),
        (Method::GET, p) if p.starts_with("/complaints/") => {
            complaint::page(&v, p.trim_start_matches("/complaints/"), String::new()).await
        }
        (Method::GET, p) if p.starts_with("/campaigns/") && p.ends_with("/events") => {
            return Ok(campaign::events(&v, p.trim_start_matches("/campaigns/").trim_end_matches("/events")));
        }
        (Method::GET, p) if p.starts_with("/campaigns/") && p.ends_with("/findings") => {
            campaign::findings(&v, p.trim_start_matches("/campaigns/").trim_end_matches("/findings")).await
        }
        (Method::GET, p) if p.starts_with("/campaigns/") => campaign::page(&v, p.trim_start_matches("/campaigns/")),
        (Method::GET, p) if p.starts_with("/applications/") && p.ends_with("/verify") => {
            verification::page(&v, p.trim_start_matches("/applications/").trim_end_matches("/verify")).await
        }
        (Method::GET, p) if p.starts_with("/applications/") && p.ends_with("/certificate") => {
            application::certificate(&v, p.trim_start_matches("/applications/").trim_end_matches("/certificate")).await
        }
        (Method::GET, p) if p.starts_with("/applications/") && p.ends_with("/explanation") => {
            application::explanation(&v, p.trim_start_matches("/applications/").trim_end_matches("/explanation")).await
        }
        (Method::GET, p) if p.starts_with("/applications/") => {
            application::page(&v, p.trim_start_matches("/applications/"), &Form::parse(&query)).await
        }
        (Method::POST, p) => {
            let form = match form_of(req, path.starts_with("/applications/") && path.ends_with("/verify")).await {
                Ok(form) => form,
                Err(page) => return Ok(v.respond(&page)),
            };
            if !v.csrf_ok(&form) {
                tracing::warn!(officer = %v.session.claims.officer_id, path = %p, "console form without its CSRF token");
                return Ok(v.respond(&forged()));
            }
            match p {
                "/logout" => return login::logout(&v).await,
                "/history" => history::search(&v, &form).await,
                "/campaigns" => match campaign::start(&v, &form).await {
                    Ok(location) => return Ok(html::see_other(&location, &[])),
                    Err(page) => page,
                },
                "/operations/retry" => match operations::retry(&v, &form).await {
                    application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                    application::Signed::Page(page) => page,
                },
                "/overpayments/recover" => match overpayments::recover(&v, &form).await {
                    application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                    application::Signed::Page(page) => page,
                },
                "/comparison/run" => match comparison::run(&v, &form).await {
                    Ok(location) => return Ok(html::see_other(&location, &[])),
                    Err(page) => page,
                },
                "/comparison/decide" => match comparison::decide(&v, &form).await {
                    application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                    application::Signed::Page(page) => page,
                },
                p if p.starts_with("/applications/") && p.ends_with("/sign") => {
                    let id = p.trim_start_matches("/applications/").trim_end_matches("/sign");
                    match application::sign(&v, id, &form).await {
                        application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                        application::Signed::Page(page) => page,
                    }
                }
                p if p.starts_with("/applications/") && p.ends_with("/verify") => {
                    let id = p.trim_start_matches("/applications/").trim_end_matches("/verify");
                    match verification::submit(&v, id, &form).await {
                        application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                        application::Signed::Page(page) => page,
                    }
                }
                "/complaints" => match complaint::file(&v, &form).await {
                    application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                    application::Signed::Page(page) => page,
                },
                p if p.starts_with("/complaints/") => {
                    let (id, action) = p.trim_start_matches("/complaints/").split_once('/').unwrap_or_default();
                    match complaint::submit(&v, id, action, &form).await {
                        application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                        application::Signed::Page(page) => page,
                    }
                }
                p if p.starts_with("/applications/") && p.ends_with("/objection") => {
                    let id = p.trim_start_matches("/applications/").trim_end_matches("/objection");
                    match application::object(&v, id, &form).await {
                        application::Signed::Done(location) => return Ok(html::see_other(&location, &[])),
                        application::Signed::Page(page) => page,
                    }
                }
                _ => Page::message(StatusCode::NOT_FOUND, "没有这个页面", "没有这个页面"),
            }
        }
        _ => Page::message(StatusCode::NOT_FOUND, "没有这个页面", "没有这个页面"),
    };
    Ok(v.respond(&page))
}

/// What an officer reads when a service refuses: its message (Chinese,
/// naming the field or the rule), except for what is not there — data
/// outside the officer's jurisdiction is not found either, and the same
/// words say both, so a refused officer learns nothing of it.
pub fn refusal(status: &tonic::Status, not_found: &str) -> String {
    match status.code() {
        tonic::Code::NotFound => not_found.to_owned(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown | tonic::Code::Internal => {
            "服务暂不可用，请稍后再试".to_owned()
        }
        _ => status.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_as_browsers_encode_them() {
        let form = Form::parse("remarks=%E5%90%8C%E6%84%8F+%E5%85%A5%E6%88%B7&csrf=ab&empty=&bad=%zz%");
        assert_eq!(form.get("remarks"), "同意 入户");
        assert_eq!(form.get("csrf"), "ab");
        assert_eq!(form.get("empty"), "");
        assert_eq!(form.get("bad"), "%zz%");
        assert_eq!(form.get("missing"), "");
    }

    #[test]
    fn multipart_forms_give_their_fields_and_files_as_browsers_send_them() {
        let body = [
            &b"------b7\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nab\r\n\
------b7\r\nContent-Disposition: form-data; name=\"scan\"; filename=\"consent.pdf\"\r\n\
Content-Type: application/pdf\r\n\r\n%PDF\r\n\x00\xff\r\n\
------b7\r\nContent-Disposition: form-data; name=\"other\"; filename=\"\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\r\n\
------b7\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"[..],
            "低保申请审核".as_bytes(),
            b"\r\n------b7--\r\n",
        ]
        .concat();
        let body = body.as_slice();
        let form = Form::multipart(body, "----b7").expect("a multipart form");
        assert_eq!(form.get("csrf"), "ab");
        assert_eq!(form.get("purpose"), "低保申请审核");
        assert_eq!(form.file("scan"), Some(&b"%PDF\r\n\x00\xff"[..]), "the file's bytes, line breaks and all");
        assert_eq!(form.file("other"), None, "no file chosen");
        assert!(Form::multipart(b"not a form", "----b7").is_none());
        assert!(Form::multipart(&body[..body.len() - 12], "----b7").is_none(), "cut short");
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_compared_whole() {
        assert_eq!(csrf_of("t1"), csrf_of("t1"));
        assert_ne!(csrf_of("t1"), csrf_of("t2"));
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
