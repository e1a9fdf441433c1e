//! The adapter kit: what every department adapter shares, so that a
//! department module only says which HTTP calls answer which items and
//! how its wire format maps onto [`Record`]s.
//!
//! A [`Connector`] names its calls and parses their answers; [`Kit::query`]
//! runs the calls concurrently with a timeout per attempt, retries what the
//! department says is transient (busy, unreachable) with exponential
//! backoff, and turns whatever still fails into "unavailable, because …"
//! for the items that call covers — a partial answer, never a lost one.
//!
//! A department's system is reached one of two ways, as departments share
//! data in practice: its HTTP(S) API, or a front-end database view (前置库)
//! it keeps for the mesh, read-only. A connector maps whichever its
//! department offers; the kit's timeouts, retries and "unavailable, because
//! …" are the same for both.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::tokio_postgres::{self, Row};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use dibao_proto::common::v1::Money;
use dibao_proto::department::v1::{Department, Item, QueryResponse, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// One HTTP request to the department's system.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// Path and query, appended to the department's base URL.
    pub path: String,
    pub body: Option<Value>,
    /// The items this call answers (unavailable together when it fails).
    pub items: Vec<Item>,
    /// Who answers: a bank's name where one query fans out to several.
    pub source: String,
}

/// One query of the department's front-end view: the department documents
/// the view, its SQL reads it with the person's identity number as `$1`.
#[derive(Debug, Clone)]
pub struct ViewCall {
    pub sql: String,
    /// The items this query answers (unavailable together when it fails).
    pub items: Vec<Item>,
    /// Who answers, where one query of several names its source.
    pub source: String,
}

/// What went wrong with one call, as the department's status codes say.
/// Each department maps its codes onto these in one place (its
/// `transformers.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeptError {
    /// The department says it is busy or failing for now: retried.
    #[error("{0}")]
    Busy(String),
    /// The department could not be reached or did not answer in time: retried.
    #[error("{0}")]
    Unreachable(String),
    /// The department refused the request itself: not retried.
    #[error("{0}")]
    Refused(String),
    /// The answer does not read as the department's format: not retried.
    #[error("{0}")]
    Malformed(String),
}

impl DeptError {
    fn retryable(&self) -> bool {
        match self {
            DeptError::Busy(_) | DeptError::Unreachable(_) => true,
            DeptError::Refused(_) | DeptError::Malformed(_) => false,
        }
    }

    /// Why the items are unavailable, in Chinese, for the report.
    pub fn reason(&self) -> String {
        match self {
            DeptError::Busy(m) => format!("部门系统繁忙：{m}"),
            DeptError::Unreachable(m) => format!("部门系统无法连接：{m}"),
            DeptError::Refused(m) => format!("部门系统拒绝查询：{m}"),
            DeptError::Malformed(m) => format!("部门系统返回的数据无法识别：{m}"),
        }
    }
}

/// One department: its calls for a person's items, and how to read the answers.
pub trait Connector: Send + Sync + 'static {
    const DEPARTMENT: Department;
    /// Items this department answers: the mesh's one table says.
    const ITEMS: &'static [Item] = dibao_proto::departments::items_of(Self::DEPARTMENT);

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call>;

    /// Records of `call`'s answer, or the department's error.
    fn parse(&self, call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError>;

    /// Whether this department keeps a front-end view the connector maps
    /// (`view_calls`, `parse_rows`); an adapter is only configured with a
    /// view where it does.
    const OFFERS_VIEW: bool = false;

    /// The view queries answering `items`.
    fn view_calls(&self, _items: &[Item]) -> Vec<ViewCall> {
        Vec::new()
    }

    /// Records of a view query's rows.
    fn parse_rows(&self, _call: &ViewCall, _rows: &[Row]) -> Result<Vec<Record>, DeptError> {
        Err(DeptError::Refused("本部门未提供前置库视图".into()))
    }
}

/// A record of department `D` (the helper every mapping uses).
pub struct RecordOf {
    pub item: Item,
    pub source_record_id: String,
    pub source: String,
    /// `YYYY-MM-DD`, the date the department's data is current to.
    pub as_of: String,
    pub amount_fen: i64,
    pub quantity: i64,
    pub attributes: Vec<(&'static str, String)>,
}

impl RecordOf {
    pub fn into_record(self, department: Department) -> Result<Record, DeptError> {
        let as_of = as_of(&self.as_of)?;
        Ok(Record {
            department: department as i32,
            item: self.item as i32,
            source_record_id: self.source_record_id,
            source: self.source,
            as_of: Some(as_of),
            amount: Some(Money { fen: self.amount_fen }),
            quantity: self.quantity,
            attributes: self.attributes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        })
    }
}

/// A department's `YYYY-MM-DD` as the start of that day in China (UTC+8).
pub fn as_of(date: &str) -> Result<prost_types::Timestamp, DeptError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(date, format).map_err(|_| DeptError::Malformed(format!("日期“{date}”无法识别")))?;
    let t = d.midnight().assume_offset(time::macros::offset!(+8));
    Ok(prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: 0 })
}

/// Yuan as a decimal string ("1234.50") to fen, exactly.
pub fn fen_of_yuan(s: &str) -> Result<i64, DeptError> {
    dibao_proto::types::Fen::parse_yuan(s).map(|f| f.0).map_err(|_| DeptError::Malformed(format!("金额“{s}”无法识别")))
}

/// Parses a JSON body into the department's wire struct.
pub fn json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, DeptError> {
    serde_json::from_slice(body).map_err(|e| DeptError::Malformed(e.to_string()))
}

/// How an adapter trusts its department's HTTPS front end: the CA that
/// signs the department system's certificate (only it: a department's
/// front end inside its own network carries its own PKI's certificate),
/// and the adapter's own certificate where the department asks for one.
#[derive(Debug, Clone, Default)]
pub struct DepartmentTls {
    pub ca_pem: String,
    /// Certificate and private key (PEM), for a department that checks its callers.
    pub client: Option<(String, String)>,
}

impl DepartmentTls {
    fn client_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        anyhow::ensure!(!roots.is_empty(), "the department's CA file holds no certificate");
        let config = rustls_builder()?.with_root_certificates(roots);
        Ok(match &self.client {
            Some((cert, key)) => config.with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?,
                PrivateKeyDer::from_pem_slice(key.as_bytes())?,
            )?,
            None => config.with_no_client_auth(),
        })
    }
}

fn rustls_builder() -> anyhow::Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?)
}

/// An error with its causes ("client error (Connect): invalid peer
/// certificate: UnknownIssuer"): the outermost alone says little.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// How the department's system is reached.
#[derive(Clone)]
enum System {
    Api {
        client: Box<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
        base_url: String,
    },
    /// Connections to the department's front-end database, read-only.
    View(Pool),
}

/// The department's system and how hard to try it.
#[derive(Clone)]
pub struct Kit {
    system: System,
    timeout: Duration,
    retries: u32,
}

impl Kit {
    /// A kit for the system at `base_url`: `https://` needs `tls`, the
    /// department's CA; `http://` (a front end on the adapter's own host or
    /// network segment) takes none.
    pub fn new(base_url: &str, timeout: Duration, retries: u32, tls: Option<&DepartmentTls>) -> anyhow::Result<Self> {
        let https = base_url.starts_with("https://");
        anyhow::ensure!(
            https || base_url.starts_with("http://"),
            "the department's base URL {base_url:?} is not an http(s) URL"
        );
        let config = match tls {
            Some(tls) => tls.client_config()?,
            None if https => anyhow::bail!("the department at {base_url} is HTTPS: its CA is needed to trust it"),
            // Never used to connect: plain HTTP only.
            None => rustls_builder()?.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth(),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        let base_url = base_url.trim_end_matches('/').to_owned();
        Ok(Self { system: System::Api { client: Box::new(client), base_url }, timeout, retries })
    }

    /// A kit for the department's front-end database at `url`
    /// (`postgres://…`, PostgreSQL's wire protocol). Nothing connects until
    /// the first query, so an adapter starts while its department is down.
    /// Every session is read-only, and the server abandons a statement a
    /// little after the adapter has given up on it.
    pub fn view(url: &str, timeout: Duration, retries: u32, connections: usize) -> anyhow::Result<Self> {
        let mut pg: tokio_postgres::Config =
            url.parse().map_err(|e| anyhow::anyhow!("the department's view URL does not parse: {e}"))?;
        pg.application_name("dibao-mesh department adapter");
        pg.connect_timeout(timeout);
        pg.options(format!(
            "-c default_transaction_read_only=on -c statement_timeout={}",
            (timeout + Duration::from_millis(500)).as_millis()
        ));
        // The department's database sits inside its own network beside the
        // adapter (the front end is the boundary), so no TLS here.
        let manager =
            Manager::from_config(pg, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(connections).build()?;
        Ok(Self { system: System::View(pool), timeout, retries })
    }

    /// Every call for `items`, concurrently; failures become unavailable items.
    pub async fn query<C: Connector>(&self, connector: &C, person: &IdentityNumber, items: &[Item]) -> QueryResponse {
        let mut response = QueryResponse::default();
        match &self.system {
            System::Api { client, base_url } => {
                let calls = connector.calls(person, items);
                let attempts = calls.iter().map(|call| {
                    let attempt = self.with_retries(&call.path, move || async move {
                        let (status, body) = self.send(client, base_url, call).await?;
                        connector.parse(call, status, &body)
                    });
                    (&call.items[..], call.source.as_str(), attempt)
                });
                gather(&mut response, attempts).await;
            }
            System::View(pool) => {
                let calls = connector.view_calls(items);
                if calls.is_empty() {
                    let no_view = Err(DeptError::Refused("本部门未提供前置库视图".into()));
                    settle(&mut response, items, "", no_view);
                }
                let attempts = calls.iter().map(|call| {
                    let attempt = self.with_retries("front-end view", move || async move {
                        let rows = self.select(pool, call, person).await?;
                        connector.parse_rows(call, &rows)
                    });
                    (&call.items[..], call.source.as_str(), attempt)
                });
                gather(&mut response, attempts).await;
            }
        }
        response
    }

    /// `attempt`, tried again after a transient failure while retries last.
    async fn with_retries<F, Fut>(&self, what: &str, attempt: F) -> Result<Vec<Record>, DeptError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Record>, DeptError>>,
    {
        let mut tries = 0;
        loop {
            match attempt().await {
                Err(e) if e.retryable() && tries < self.retries => {
                    tries += 1;
                    tracing::debug!(call = what, attempt = tries, error = %e, "department call failed, retrying");
                    tokio::time::sleep(Duration::from_millis(25 << tries)).await;
                }
                other => return other,
            }
        }
    }

    /// One read of the front-end view, within the timeout. A connection
    /// whose statement outlived the timeout is closed rather than handed
    /// back, so the next query never waits behind it.
    async fn select(&self, pool: &Pool, call: &ViewCall, person: &IdentityNumber) -> Result<Vec<Row>, DeptError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let late = || DeptError::Unreachable(format!("{} 毫秒内未应答", self.timeout.as_millis()));
        let client = match tokio::time::timeout_at(deadline, pool.get()).await {
            Err(_) => return Err(late()),
            Ok(Err(e)) => return Err(DeptError::Unreachable(causes(&e))),
            Ok(Ok(client)) => client,
        };
        let person = person.as_str();
        let read = async {
            let statement = client.prepare_cached(&call.sql).await?;
            client.query(&statement, &[&person]).await
        };
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(view_error(&e)),
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(late())
            }
        }
    }

    async fn send(
        &self,
        client: &Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
        base_url: &str,
        call: &Call,
    ) -> Result<(StatusCode, Bytes), DeptError> {
        let body = call.body.as_ref().map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(call.method.clone())
            .uri(format!("{base_url}{}", call.path))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| DeptError::Refused(e.to_string()))?;
        let exchange = async {
            let response = client.request(request).await.map_err(|e| DeptError::Unreachable(causes(&e)))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| DeptError::Unreachable(e.to_string()))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| DeptError::Unreachable(format!("{} 毫秒内未应答", self.timeout.as_millis())))?
    }
}

/// Runs every call at once and settles each into the answer.
async fn gather<'a, F>(response: &mut QueryResponse, calls: impl Iterator<Item = (&'a [Item], &'a str, F)>)
where
    F: std::future::Future<Output = Result<Vec<Record>, DeptError>>,
{
    let (scopes, attempts): (Vec<_>, Vec<_>) = calls.map(|(items, source, attempt)| ((items, source), attempt)).unzip();
    for ((items, source), result) in scopes.into_iter().zip(futures_util::future::join_all(attempts).await) {
        settle(response, items, source, result);
    }
}

/// A call's result into the answer: its records, or its items unavailable
/// with the reason (prefixed by the source where one query of several failed).
fn settle(response: &mut QueryResponse, items: &[Item], source: &str, result: Result<Vec<Record>, DeptError>) {
    match result {
        Ok(records) => response.records.extend(records),
        Err(e) => {
            let reason = if source.is_empty() { e.reason() } else { format!("{source}：{}", e.reason()) };
            for item in items {
                let entry = response.unavailable.entry(item.as_str_name().to_owned()).or_default();
                if !entry.is_empty() {
                    entry.push('；');
                }
                entry.push_str(&reason);
            }
        }
    }
}

/// A front-end database's error as the department's: what passes (the
/// connection, the server's load, a lock, a restart) is retried; what the
/// department has to fix (a view gone, a column renamed, a grant missing)
/// is not.
fn view_error(e: &tokio_postgres::Error) -> DeptError {
    let Some(db) = e.as_db_error() else {
        return DeptError::Unreachable(causes(e));
    };
    let text = format!("前置库视图（{}）：{}", db.code().code(), db.message());
    match &db.code().code()[..2] {
        // Connection, transaction rollback, insufficient resources, operator
        // intervention (a statement timeout, a shutdown), object in use, system error.
        "08" | "40" | "53" | "55" | "57" | "58" => DeptError::Busy(text),
        _ => DeptError::Refused(text),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// How many attempts `with_retries` makes when every one fails with `error`.
    async fn attempts(error: fn() -> DeptError) -> u32 {
        let kit = Kit::new("http://127.0.0.1:9", Duration::from_millis(100), 2, None).expect("kit");
        let count = AtomicU32::new(0);
        let result = kit
            .with_retries("test", || {
                count.fetch_add(1, Ordering::SeqCst);
                async move { Err(error()) }
            })
            .await;
        assert!(result.is_err());
        count.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried_and_a_transient_failure_is() {
        assert_eq!(attempts(|| DeptError::Refused("relation does not exist".into())).await, 1);
        assert_eq!(attempts(|| DeptError::Malformed("not JSON".into())).await, 1);
        assert_eq!(attempts(|| DeptError::Unreachable("timed out".into())).await, 3, "1 + 2 retries");
        assert_eq!(attempts(|| DeptError::Busy("503".into())).await, 3);
    }
}
