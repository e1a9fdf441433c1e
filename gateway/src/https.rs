//! A small HTTPS client: the identity platform's JWKS, and `dibao-login`'s
//! call to the gateway. Only the CA named (or, without one, none at all:
//! there is no trust in a system store to fall back on).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

fn client(ca: Option<&Path>) -> Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// A client that keeps its connections (for a caller making many requests,
/// as the console's benchmark does for each officer).
pub struct KeepAlive(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>);

impl KeepAlive {
    /// Trusting `ca` only.
    pub fn new(ca: &Path) -> Result<Self, String> {
        client(Some(ca)).map(Self)
    }

    /// `GET url` with the session `token`: the status and the body.
    pub async fn get(&self, url: &str, token: &str) -> Result<(http::StatusCode, Vec<u8>), String> {
        let request = http::Request::get(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        exchange(&self.0, request, Duration::from_secs(120)).await
    }
}

/// The body of `GET url`, if it answers 200.
pub async fn get(url: &str, ca: Option<&Path>) -> Result<Vec<u8>, String> {
    let request = http::Request::get(url).body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
    let (status, body) = send(ca, request).await?;
    if status != http::StatusCode::OK {
        return Err(format!("GET {url}: {status}"));
    }
    Ok(body)
}

/// `POST url` with a JSON body and, given one, a bearer token: the status and the body.
pub async fn post_json(
    url: &str,
    ca: Option<&Path>,
    body: &serde_json::Value,
    token: Option<&str>,
) -> Result<(http::StatusCode, Vec<u8>), String> {
    request_json(http::Method::POST, url, ca, body, token).await
}

/// `method url` with a JSON body (none for GET) and, given one, a bearer token.
pub async fn request_json(
    method: http::Method,
    url: &str,
    ca: Option<&Path>,
    body: &serde_json::Value,
    token: Option<&str>,
) -> Result<(http::StatusCode, Vec<u8>), String> {
    let body = if method == http::Method::GET { String::new() } else { body.to_string() };
    let mut request =
        http::Request::builder().method(method).uri(url).header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
    send(ca, request).await
}

async fn send(ca: Option<&Path>, request: http::Request<Full<Bytes>>) -> Result<(http::StatusCode, Vec<u8>), String> {
    exchange(&client(ca)?, request, Duration::from_secs(10)).await
}

/// One request on `client`: the status and the whole body, within `limit`.
async fn exchange(
    client: &Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    request: http::Request<Full<Bytes>>,
    limit: Duration,
) -> Result<(http::StatusCode, Vec<u8>), String> {
    let uri = request.uri().to_string();
    let response = tokio::time::timeout(limit, client.request(request))
        .await
        .map_err(|_| format!("{uri}: no answer within {} s", limit.as_secs()))?
        .map_err(|e| format!("{uri}: {e}"))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body.to_vec()))
}
