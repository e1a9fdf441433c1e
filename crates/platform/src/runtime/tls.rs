//! Mutual TLS on every server and client, and the caller's identity from
//! its certificate: the Common Name of its subject (`civil-affairs`,
//! `gateway`, `ops`). What an identity may call is the access table's
//! ([`crate::runtime::access`]).

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::runtime::settings::TlsSettings;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} at {path}: {source}")]
    Read { what: &'static str, path: String, source: std::io::Error },
}

/// PEM material of one service: the mesh CA and its own certificate and key.
#[derive(Clone)]
pub struct TlsMaterial {
    pub ca: Certificate,
    pub identity: Identity,
}

impl TlsMaterial {
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.display().to_string(), source })
        };
        let ca = Certificate::from_pem(read("tls.ca_cert", &settings.ca_cert)?);
        let identity = Identity::from_pem(read("tls.cert", &settings.cert)?, read("tls.key", &settings.key)?);
        Ok(Self { ca, identity })
    }

    pub fn from_pem(ca: &str, cert: &str, key: &str) -> Self {
        Self { ca: Certificate::from_pem(ca), identity: Identity::from_pem(cert, key) }
    }

    /// Server side: present our certificate, require one from the mesh CA.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity.clone()).client_ca_root(self.ca.clone())
    }

    /// Client side: trust only the mesh CA, present our certificate.
    pub fn client_config(&self, server_name: &str) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(self.ca.clone()).identity(self.identity.clone()).domain_name(server_name)
    }
}

/// Common Name of the subject of a DER certificate.
pub fn identity_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?.to_owned();
    Some(cn)
}
