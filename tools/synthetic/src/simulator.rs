//! The department simulator: each department's HTTP API, in that
//! department's own wire format, served from synthetic records in Postgres,
//! with configurable latency, error rate and outages. It stands in for the
//! departments' systems in development, tests and benchmarks; the adapters
//! cannot tell it from the real thing, which is the point.
//!
//! APIs (one per department, deliberately unlike each other):
//! - public security: `POST /gaj/api/v2/rkxx/query` `{"sfzhm","cxxm":["HJ","CL","SW"]}`
//! - HR & social security: `GET /rsj/v1/cbry/{sfzhm}`
//! - housing: `POST /zjj/bdc/cx` `{"qlrzjhm"}`
//! - commerce: `GET /scjg/api/v1/ztxx?zjhm=…`
//! - each bank: `POST /bank/{code}/deposit-inquiry` `{"idNo"}`
//! - tax: `GET /sw/api/grsds/{sfzhm}`
//! - disability federation: `POST /cdpf/api/cjrz/query` `{"zjhm"}`
//! - medical insurance: `GET /hsa/v1/mtbdj?certno=…` (registered chronic,
//!   special and serious diseases) and `GET /hsa/v1/grzf?certno=…&months=12`
//!   (the twelve months' out-of-pocket spending)
//!
//! Front-end view (前置库), for a department that shares by database: the
//! real-estate register's `qzk.zjj_bdc_fwxx` in the simulator's database
//! (migration `0002_front_end_views`), over the same records. Behaviour
//! does not reach it; its failures are the database's own (a lock, a
//! server not there, a view dropped).
//!
//! Control: `PUT /_sim/behaviour/{key}` with a [`Behaviour`] as JSON, and
//! `GET /_sim/requests`; keys are `public_security`, `human_resources`,
//! `housing`, `commerce`, `bank` (or `bank:{code}` for one bank), `tax`,
//! `disability_federation`, `medical_insurance`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::Pool;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::generator::{BANKS, DeptRecord};

pub const MIGRATIONS: &[dibao_platform::store::db::Migration] = &[
    ("0001_department_records", include_str!("../migrations/0001_department_records.sql")),
    ("0002_front_end_views", include_str!("../migrations/0002_front_end_views.sql")),
    ("0003_registered_households", include_str!("../migrations/0003_registered_households.sql")),
];

/// How a department behaves: slow, flaky, or down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// How long after the request the department answers (its records are
    /// read meanwhile; a slower read answers later).
    #[serde(default)]
    pub latency_ms: u64,
    /// Uniform extra latency up to this much.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Share of requests answered with the department's "system busy" error.
    #[serde(default)]
    pub error_rate: f64,
    /// Down: requests are held and never answered.
    #[serde(default)]
    pub down: bool,
}

#[derive(Default)]
struct State {
    behaviour: Mutex<HashMap<String, Behaviour>>,
    requests: Mutex<HashMap<String, u64>>,
    /// How long each department took to answer, from request to answer.
    answer_times: Mutex<HashMap<&'static str, AnswerTimes>>,
    /// Every answer with its person, while a benchmark asks for them.
    answers: Mutex<Option<Vec<Answered>>>,
}

/// One answer, for a benchmark that sets the mesh's time beside the
/// departments' check by check.
#[derive(Debug, Clone)]
pub struct Answered {
    pub key: &'static str,
    /// The identity number the request named.
    pub person: String,
    pub received: std::time::Instant,
    pub took: Duration,
}

/// Answer times in 0.1 ms steps up to 10 s (the last step holds the rest),
/// so a long benchmark costs no more memory than a short one.
struct AnswerTimes {
    counts: Vec<u64>,
    total: u64,
}

impl AnswerTimes {
    const STEPS: usize = 100_000;

    fn new() -> Self {
        Self { counts: vec![0; Self::STEPS], total: 0 }
    }

    fn record(&mut self, d: Duration) {
        let step = (d.as_micros() / 100).min(Self::STEPS as u128 - 1) as usize;
        self.counts[step] += 1;
        self.total += 1;
    }

    /// The `p` quantile (0..=1), to the step's upper edge.
    fn quantile(&self, p: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (step, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_micros((step as u64 + 1) * 100));
            }
        }
        None
    }
}

/// A running simulator.
#[derive(Clone)]
pub struct Simulator {
    pub addr: SocketAddr,
    https: bool,
    state: Arc<State>,
}

impl Simulator {
    /// Serves plain HTTP on `listen` (port 0 picks one) until the process ends.
    pub async fn start(pool: Pool, listen: SocketAddr) -> std::io::Result<Self> {
        Self::serve(pool, listen, None).await
    }

    /// Serves HTTPS with the PEM certificate chain and key given, as a
    /// department's front end does inside its network.
    pub async fn start_https(pool: Pool, listen: SocketAddr, cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?,
                PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?,
            )?;
        Ok(Self::serve(pool, listen, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await?)
    }

    async fn serve(pool: Pool, listen: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let sim = Self { addr, https: tls.is_some(), state: state.clone() };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                // Answers go out at once, not after the client's delayed ACK.
                let _ = stream.set_nodelay(true);
                let (pool, state, tls) = (pool.clone(), state.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(pool.clone(), state.clone(), req));
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => http.serve_connection(TokioIo::new(stream), svc).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => http.serve_connection(TokioIo::new(stream), svc).await,
                            // A caller that does not trust this front end never gets to ask.
                            Err(e) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                    };
                });
            }
        });
        Ok(sim)
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    pub fn set(&self, key: &str, behaviour: Behaviour) {
        lock(&self.state.behaviour).insert(key.to_owned(), behaviour);
    }

    /// Requests received for `key` (a bank's count under `bank:{code}` and `bank`).
    pub fn requests(&self, key: &str) -> u64 {
        lock(&self.state.requests).get(key).copied().unwrap_or(0)
    }

    /// The `p` quantile (0..=1) of department `key`'s answer times since
    /// the last [`Simulator::reset_answer_times`] (0.1 ms resolution).
    pub fn answer_time(&self, key: &str, p: f64) -> Option<Duration> {
        lock(&self.state.answer_times).get(key).and_then(|t| t.quantile(p))
    }

    pub fn reset_answer_times(&self) {
        lock(&self.state.answer_times).clear();
    }

    /// Keeps every answer from now on (see [`Simulator::take_answers`]).
    pub fn keep_answers(&self) {
        *lock(&self.state.answers) = Some(Vec::new());
    }

    /// The answers kept since [`Simulator::keep_answers`]; keeping stops.
    pub fn take_answers(&self) -> Vec<Answered> {
        lock(&self.state.answers).take().unwrap_or_default()
    }

    pub fn total_requests(&self) -> u64 {
        lock(&self.state.requests).iter().filter(|(k, _)| !k.contains(':')).map(|(_, v)| v).sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Loads generated records (batched; idempotent by record id).
pub async fn load(pool: &Pool, records: &[DeptRecord]) -> anyhow::Result<()> {
    let client = pool.get().await?;
    for chunk in records.chunks(5_000) {
        let dept: Vec<&str> = chunk.iter().map(|r| r.department.as_str_name()).collect();
        let item: Vec<&str> = chunk.iter().map(|r| r.item.as_str_name()).collect();
        let person: Vec<&str> = chunk.iter().map(|r| r.person.as_str()).collect();
        let id: Vec<&str> = chunk.iter().map(|r| r.record_id.as_str()).collect();
        let source: Vec<&str> = chunk.iter().map(|r| r.source.as_str()).collect();
        let as_of: Vec<time::Date> = chunk.iter().map(|r| r.as_of).collect();
        let amount: Vec<i64> = chunk.iter().map(|r| r.amount_fen).collect();
        let quantity: Vec<i64> = chunk.iter().map(|r| r.quantity).collect();
        let attrs: Vec<Value> =
            chunk.iter().map(|r| Value::Object(r.attrs.iter().map(|(k, v)| (k.clone(), json!(v))).collect())).collect();
        client
            .execute(
                "INSERT INTO dept_record (department, item, person, record_id, source, as_of, amount_fen, quantity, attrs)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[],
                                      $7::bigint[], $8::bigint[], $9::jsonb[])
                 ON CONFLICT DO NOTHING",
                &[&dept, &item, &person, &id, &source, &as_of, &amount, &quantity, &attrs],
            )
            .await?;
    }
    Ok(())
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

async fn handle(pool: Pool, state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let received = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segs.first() == Some(&"_sim") {
        return Ok(control(&state, &parts.method, &segs, &body));
    }
    let Some((key, sub)) = route_key(&segs) else {
        return Ok(reply(StatusCode::NOT_FOUND, json!({"error": "no such API"})));
    };
    {
        let mut counts = lock(&state.requests);
        *counts.entry(key.to_owned()).or_default() += 1;
        if let Some(sub) = &sub {
            *counts.entry(format!("{key}:{sub}")).or_default() += 1;
        }
    }
    let behaviour = {
        let b = lock(&state.behaviour);
        sub.as_ref().and_then(|s| b.get(&format!("{key}:{s}"))).or_else(|| b.get(key)).cloned().unwrap_or_default()
    };
    if behaviour.down {
        // A department that is down holds the request until the caller gives up.
        std::future::pending::<()>().await;
    }
    let (delay, fail) = {
        let mut rng = rand::rng();
        let jitter = if behaviour.jitter_ms > 0 { rng.random_range(0..=behaviour.jitter_ms) } else { 0 };
        (behaviour.latency_ms + jitter, behaviour.error_rate > 0.0 && rng.random_bool(behaviour.error_rate.min(1.0)))
    };
    let answer = match key {
        "public_security" => public_security(&pool, &body, fail).await,
        "human_resources" => human_resources(&pool, segs.get(3).copied().unwrap_or(""), fail).await,
        "housing" => housing(&pool, &body, fail).await,
        "commerce" => commerce(&pool, parts.uri.query().unwrap_or(""), fail).await,
        "bank" => bank(&pool, sub.as_deref().unwrap_or(""), &body, fail).await,
        "tax" => tax(&pool, segs.get(3).copied().unwrap_or(""), fail).await,
        "disability_federation" => disability_federation(&pool, &body, fail).await,
        "medical_insurance" => {
            medical_insurance(&pool, segs.get(2).copied().unwrap_or(""), parts.uri.query().unwrap_or(""), fail).await
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, json!({}))),
    };
    // Read first, answer at the latency: a real department's latency is its
    // whole answer time, and the reads of one check's departments then
    // spread over the wait instead of all landing when the timers fire.
    if delay > 0 {
        tokio::time::sleep_until((received + Duration::from_millis(delay)).into()).await;
    }
    let took = received.elapsed();
    lock(&state.answer_times).entry(key).or_insert_with(AnswerTimes::new).record(took);
    if let Some(kept) = lock(&state.answers).as_mut() {
        let person = person_in(parts.uri.path_and_query().map_or("", |p| p.as_str()), &body);
        kept.push(Answered { key, person, received, took });
    }
    Ok(answer.unwrap_or_else(|e| {
        tracing::error!(error = %e, "simulator database error");
        reply(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "internal"}))
    }))
}

/// The first identity number in the request (path, query or body): every
/// department's API names the person somewhere.
fn person_in(path: &str, body: &[u8]) -> String {
    let is_id =
        |w: &[u8]| w.len() == 18 && w[..17].iter().all(u8::is_ascii_digit) && (w[17].is_ascii_digit() || w[17] == b'X');
    [path.as_bytes(), body]
        .into_iter()
        .flat_map(|b| b.split(|c| !(c.is_ascii_alphanumeric())))
        .find(|w| is_id(w))
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .unwrap_or_default()
}

fn route_key(segs: &[&str]) -> Option<(&'static str, Option<String>)> {
    Some(match segs {
        ["gaj", "api", "v2", "rkxx", "query"] => ("public_security", None),
        ["rsj", "v1", "cbry", _] => ("human_resources", None),
        ["zjj", "bdc", "cx"] => ("housing", None),
        ["scjg", "api", "v1", "ztxx"] => ("commerce", None),
        ["bank", code, "deposit-inquiry"] => ("bank", Some((*code).to_owned())),
        ["sw", "api", "grsds", _] => ("tax", None),
        ["cdpf", "api", "cjrz", "query"] => ("disability_federation", None),
        ["hsa", "v1", "mtbdj" | "grzf"] => ("medical_insurance", None),
        _ => return None,
    })
}

fn control(state: &State, method: &Method, segs: &[&str], body: &[u8]) -> Reply {
    match (method, segs) {
        (&Method::PUT, ["_sim", "behaviour", key]) => match serde_json::from_slice::<Behaviour>(body) {
            Ok(b) => {
                lock(&state.behaviour).insert((*key).to_owned(), b);
                reply(StatusCode::OK, json!({"ok": true}))
            }
            Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
        },
        (&Method::GET, ["_sim", "requests"]) => reply(StatusCode::OK, json!(*lock(&state.requests))),
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "no such control"})),
    }
}

struct Row {
    item: String,
    record_id: String,
    source: String,
    as_of: time::Date,
    amount_fen: i64,
    quantity: i64,
    attrs: Value,
}

impl Row {
    fn attr(&self, k: &str) -> String {
        self.attrs.get(k).and_then(Value::as_str).unwrap_or_default().to_owned()
    }
}

async fn rows(pool: &Pool, department: &str, person: &str) -> anyhow::Result<Vec<Row>> {
    let client = pool.get().await?;
    let rows = dibao_platform::store::db::cached::query(
        &client,
        "SELECT item, record_id, source, as_of, amount_fen, quantity, attrs FROM dept_record
         WHERE department = $1 AND person = $2 ORDER BY record_id",
        &[&department, &person],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Row {
            item: r.get(0),
            record_id: r.get(1),
            source: r.get(2),
            as_of: r.get(3),
            amount_fen: r.get(4),
            quantity: r.get(5),
            attrs: r.get(6),
        })
        .collect())
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn field(body: &[u8], name: &str) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?.get(name)?.as_str().map(str::to_owned)
}

async fn public_security(pool: &Pool, body: &[u8], fail: bool) -> anyhow::Result<Reply> {
    if fail {
        return Ok(reply(StatusCode::OK, json!({"code": "9999", "msg": "系统繁忙，请稍后再试"})));
    }
    let Some(id) = field(body, "sfzhm") else {
        return Ok(reply(StatusCode::OK, json!({"code": "1001", "msg": "参数错误：缺少sfzhm"})));
    };
    let rows = rows(pool, "DEPARTMENT_PUBLIC_SECURITY", &id).await?;
    let Some(hj) = rows.iter().find(|r| r.item == "ITEM_HOUSEHOLD_REGISTRATION") else {
        return Ok(reply(StatusCode::OK, json!({"code": "1004", "msg": "查无此人"})));
    };
    let clxx: Vec<Value> = rows
        .iter()
        .filter(|r| r.item == "ITEM_VEHICLES")
        .map(|r| json!({"jlbh": r.record_id, "hphm": r.attr("plate"), "ppxh": r.attr("brand"), "djrq": r.attr("registered_on")}))
        .collect();
    let swxx = rows
        .iter()
        .find(|r| r.item == "ITEM_DEATH")
        .map(|r| json!({"jlbh": r.record_id, "swrq": r.attr("died_on"), "zxlx": "死亡注销"}));
    // Who else the household register (户口簿) lists, with their relation to the head.
    let client = pool.get().await?;
    let hjcy: Vec<Value> = dibao_platform::store::db::cached::query(
        &client,
        "SELECT person, attrs->>'relation' FROM dept_record
         WHERE item = 'ITEM_HOUSEHOLD_REGISTRATION' AND attrs->>'household_no' = $1 AND person <> $2
         ORDER BY person",
        &[&hj.attr("household_no"), &id],
    )
    .await?
    .iter()
    .map(|r| json!({"sfzhm": r.get::<_, String>(0), "yhzgx": r.get::<_, Option<String>>(1).unwrap_or_default()}))
    .collect();
    Ok(reply(
        StatusCode::OK,
        json!({
            "code": "0000",
            "msg": "查询成功",
            "gxsj": hj.as_of.to_string(),
            "data": {
                "hjxx": {"jlbh": hj.record_id, "hh": hj.attr("household_no"), "hjdz": hj.attr("village"), "yhzgx": hj.attr("relation"), "hjcy": hjcy},
                "clxx": clxx,
                "swxx": swxx,
            }
        }),
    ))
}

async fn human_resources(pool: &Pool, id: &str, fail: bool) -> anyhow::Result<Reply> {
    if fail {
        return Ok(reply(StatusCode::SERVICE_UNAVAILABLE, json!({"status": 503, "error": "服务暂不可用"})));
    }
    let rows = rows(pool, "DEPARTMENT_HUMAN_RESOURCES", id).await?;
    let of = |item: &'static str| rows.iter().filter(move |r| r.item == item);
    let ylj: Vec<Value> = of("ITEM_PENSION")
        .map(|r| json!({"id": r.record_id, "xz": r.attr("kind"), "yffje": yuan(r.amount_fen), "tjrq": r.as_of.to_string()}))
        .collect();
    let jf: Vec<Value> = of("ITEM_SOCIAL_INSURANCE")
        .map(|r| json!({"id": r.record_id, "dw": r.attr("employer"), "jfjs": yuan(r.amount_fen), "jfys": r.quantity, "tjrq": r.as_of.to_string()}))
        .collect();
    let jy: Vec<Value> = of("ITEM_EMPLOYMENT")
        .map(|r| json!({"id": r.record_id, "dw": r.attr("employer"), "rzrq": r.attr("started_on"), "yxgz": yuan(r.amount_fen), "tjrq": r.as_of.to_string()}))
        .collect();
    let sy: Vec<Value> = of("ITEM_UNEMPLOYMENT_BENEFIT")
        .map(|r| json!({"id": r.record_id, "yffje": yuan(r.amount_fen), "lqys": r.quantity, "tjrq": r.as_of.to_string()}))
        .collect();
    Ok(reply(StatusCode::OK, json!({"status": 200, "result": {"ylj": ylj, "jf": jf, "jy": jy, "sy": sy}})))
}

async fn housing(pool: &Pool, body: &[u8], fail: bool) -> anyhow::Result<Reply> {
    if fail {
        return Ok(reply(StatusCode::OK, json!({"success": false, "errorMsg": "数据库连接超时"})));
    }
    let Some(id) = field(body, "qlrzjhm") else {
        return Ok(reply(StatusCode::BAD_REQUEST, json!({"success": false, "errorMsg": "缺少权利人证件号码"})));
    };
    let fwxx: Vec<Value> = rows(pool, "DEPARTMENT_HOUSING", &id)
        .await?
        .iter()
        .map(|r| {
            json!({"ywh": r.record_id, "bdcqzh": r.attr("certificate"), "zl": r.attr("address"),
                   "jzmj": yuan(r.quantity), "djsj": r.attr("registered_on"), "gxsj": r.as_of.to_string()})
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({"success": true, "errorMsg": null, "fwxx": fwxx})))
}

async fn commerce(pool: &Pool, query: &str, fail: bool) -> anyhow::Result<Reply> {
    if fail {
        return Ok(reply(StatusCode::OK, json!({"errcode": 50001, "errmsg": "系统繁忙"})));
    }
    let id = query.split('&').find_map(|kv| kv.strip_prefix("zjhm=")).unwrap_or("");
    let items: Vec<Value> = rows(pool, "DEPARTMENT_COMMERCE", id)
        .await?
        .iter()
        .map(|r| {
            // Registered capital in 万元 (ten thousand yuan), as the register keeps it.
            let wan = format!("{}.{:06}", r.amount_fen / 1_000_000, r.amount_fen % 1_000_000);
            json!({"id": r.record_id, "tyshxydm": r.attr("credit_code"), "ztmc": r.attr("name"), "zczb": wan,
                   "zw": r.attr("role"), "gxrq": r.as_of.to_string()})
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({"errcode": 0, "errmsg": "ok", "items": items})))
}

async fn bank(pool: &Pool, code: &str, body: &[u8], fail: bool) -> anyhow::Result<Reply> {
    if !BANKS.iter().any(|(c, _)| *c == code) {
        return Ok(reply(StatusCode::NOT_FOUND, json!({"retCode": "404", "retMsg": "无此机构"})));
    }
    if fail {
        return Ok(reply(StatusCode::OK, json!({"retCode": "E99999", "retMsg": "核心系统日终处理中"})));
    }
    let Some(id) = field(body, "idNo") else {
        return Ok(reply(StatusCode::OK, json!({"retCode": "E10001", "retMsg": "证件号码不能为空"})));
    };
    let rows = rows(pool, "DEPARTMENT_BANK", &id).await?;
    let accounts: Vec<Value> = rows
        .iter()
        .filter(|r| r.attr("bank") == code)
        .map(|r| {
            json!({"seq": r.record_id, "acctNo": r.attr("account"), "balance": yuan(r.amount_fen), "currency": "CNY",
                        "asOf": r.as_of.to_string(), "bankName": r.source})
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({"retCode": "000000", "retMsg": "交易成功", "accounts": accounts})))
}

async fn tax(pool: &Pool, id: &str, fail: bool) -> anyhow::Result<Reply> {
    if fail {
        return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, json!({"code": "SYS_ERROR", "message": "内部错误"})));
    }
    let data: Vec<Value> = rows(pool, "DEPARTMENT_TAX", id)
        .await?
        .iter()
        .map(|r| {
            json!({"id": r.record_id, "nd": r.quantity, "sre_fen": r.amount_fen,
                        "ynse_fen": r.attr("tax_paid").parse::<i64>().unwrap_or(0), "tjrq": r.as_of.to_string()})
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({"code": "OK", "data": data})))
}

async fn disability_federation(pool: &Pool, body: &[u8], fail: bool) -> anyhow::Result<Reply> {
    if fail {
        return Ok(reply(StatusCode::OK, json!({"resultCode": 9, "resultMsg": "系统忙，请稍后重试"})));
    }
    let Some(id) = field(body, "zjhm") else {
        return Ok(reply(StatusCode::OK, json!({"resultCode": 2, "resultMsg": "证件号码为空"})));
    };
    let list: Vec<Value> = rows(pool, "DEPARTMENT_DISABILITY_FEDERATION", &id)
        .await?
        .iter()
        .map(|r| {
            json!({"cjrzh": r.record_id, "cjlb": r.attr("type"), "cjdj": r.attr("grade"), "yxqz": r.attr("valid_until"),
                   "fzrq": r.attr("issued_on"), "gxrq": r.as_of.to_string()})
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({"resultCode": 0, "resultMsg": "成功", "cjrzList": list})))
}

async fn medical_insurance(pool: &Pool, what: &str, query: &str, fail: bool) -> anyhow::Result<Reply> {
    if fail {
        return Ok(reply(StatusCode::OK, json!({"infcode": -1, "err_msg": "服务繁忙"})));
    }
    let id = query.split('&').find_map(|kv| kv.strip_prefix("certno=")).unwrap_or("");
    let rows = rows(pool, "DEPARTMENT_MEDICAL_INSURANCE", id).await?;
    let output = if what == "mtbdj" {
        let list: Vec<Value> = rows
            .iter()
            .filter(|r| r.item == "ITEM_REGISTERED_ILLNESS")
            .map(|r| {
                json!({"dj_id": r.record_id, "bzbm": r.attr("disease_code"), "bzmc": r.attr("disease"),
                       "mtblx": r.attr("category"), "kssj": r.attr("registered_from"), "jssj": "",
                       "gxsj": r.as_of.to_string()})
            })
            .collect();
        json!({"mtbdj": list})
    } else {
        let grzf = rows.iter().find(|r| r.item == "ITEM_MEDICAL_SPENDING").map(|r| {
            let total = r.attr("total_cost_fen").parse::<i64>().unwrap_or(0);
            json!({"tjbh": r.record_id, "tjqj_ks": r.attr("period_from"), "tjqj_js": r.attr("period_to"),
                   "zfy": yuan(total), "grzf": yuan(r.amount_fen), "jsbs": r.quantity, "gxsj": r.as_of.to_string()})
        });
        json!({"grzf": grzf})
    };
    Ok(reply(StatusCode::OK, json!({"infcode": 0, "err_msg": "", "output": output})))
}

#[cfg(test)]
mod tests {
    use super::person_in;

    #[test]
    fn the_person_is_found_wherever_the_department_puts_it() {
        assert_eq!(person_in("/rsj/v1/cbry/11010519491231002X", b""), "11010519491231002X");
        assert_eq!(person_in("/scjg/api/v1/ztxx?zjhm=110105194912310021&x=1", b""), "110105194912310021");
        assert_eq!(person_in("/zjj/bdc/cx", br#"{"qlrzjhm":"110105194912310021"}"#), "110105194912310021");
        assert_eq!(person_in("/bank/abc/deposit-inquiry", br#"{"idNo":"1101051949123100211"}"#), "");
    }
}
