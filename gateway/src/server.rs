//! The gateway's listener: TLS with the gateway's public certificate; a
//! client certificate optional, and when presented it must come from the
//! departmental systems' external CA (never the mesh's). HTTP/2 and
//! HTTP/1.1 on one port: gRPC calls go to the proxy, the rest to the
//! officers' HTTPS API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::runtime::tls::identity_of;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use crate::proxy::{self, Local};

/// What the gateway knows of a connection.
#[derive(Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    /// The departmental system, by its certificate's name, if one was presented.
    pub system: Option<String>,
}

/// The public TLS configuration: `cert_pem`/`key_pem`, and `external_ca`
/// (PEM) to verify departmental systems' certificates against.
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8], external_ca: Option<&[u8]>) -> anyhow::Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(cert_pem).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match external_ca {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert?)?;
            }
            anyhow::ensure!(!roots.is_empty(), "the external CA file holds no certificate");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn is_grpc(req: &http::Request<hyper::body::Incoming>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Accepts on `listener` until `shutdown`; each connection served on a task of its own.
pub fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    gw: Arc<Gateway>,
    local: Local,
    mut shutdown: Shutdown,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = shutdown.wait() => break,
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, gw, local) = (acceptor.clone(), gw.clone(), local.clone());
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let system = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|c| identity_of(c.as_ref()));
                let conn = Arc::new(Conn { peer, system });
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (gw, local, conn) = (gw.clone(), local.clone(), conn.clone());
                    async move {
                        let response = if is_grpc(&req) {
                            proxy::grpc(gw, local, conn, req).await
                        } else {
                            crate::api::http(gw, conn, req).await
                        };
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
        tracing::info!("gateway stopped accepting");
        Ok(())
    })
}
