//! The development CA and per-service certificates of the local stack and
//! the tests. Production certificates come from the province's own PKI; the
//! services only need PEM files.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};

/// PEM text of a certificate and its private key.
#[derive(Debug, Clone)]
pub struct PemPair {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that can issue service certificates.
pub struct DevCa {
    pub pem: PemPair,
    issuer: Issuer<'static, KeyPair>,
}

impl DevCa {
    pub fn generate(name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.distinguished_name.push(DnType::OrganizationName, "dibao-mesh development");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let pem = PemPair { cert: cert.pem(), key: key.serialize_pem() };
        Ok(Self { pem, issuer: Issuer::new(params, key) })
    }

    /// Issues a certificate whose subject CN is `identity`, valid as server
    /// (for `localhost`, `127.0.0.1` and `identity` itself) and as client.
    pub fn issue(&self, identity: &str) -> Result<PemPair, rcgen::Error> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), identity.to_owned()])?;
        params.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.distinguished_name.push(DnType::CommonName, identity);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PemPair { cert: cert.pem(), key: key.serialize_pem() })
    }

    /// Writes `ca.pem` and `<identity>.pem` / `<identity>.key` for each identity into `dir`.
    pub fn write_all(&self, dir: &std::path::Path, identities: &[&str]) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca.pem"), &self.pem.cert)?;
        for id in identities {
            let pair = self.issue(id)?;
            std::fs::write(dir.join(format!("{id}.pem")), &pair.cert)?;
            std::fs::write(dir.join(format!("{id}.key")), &pair.key)?;
        }
        Ok(())
    }
}

/// The gateway's officer-assertion key (`officer-issuer.pk8`) and the file
/// every service trusts it from (`officer-issuers`, scope `*`), for the
/// local stack and the tests; kept if already there. Production keys come
/// from the province's key management.
pub fn officer_issuer(dir: &std::path::Path) -> anyhow::Result<dibao_platform::trust::officer::OfficerSigner> {
    use dibao_platform::trust::officer::OfficerSigner;
    let (key, trusted) = (dir.join("officer-issuer.pk8"), dir.join("officer-issuers"));
    if !key.is_file() || !trusted.is_file() {
        std::fs::create_dir_all(dir)?;
        let der = OfficerSigner::generate_pkcs8();
        let signer = OfficerSigner::from_pkcs8(OFFICER_ISSUER, OFFICER_KEY_ID, &der)
            .ok_or_else(|| anyhow::anyhow!("a generated key does not load"))?;
        std::fs::write(&key, &der)?;
        std::fs::write(&trusted, signer.trusted_issuer_line("*"))?;
    }
    Ok(OfficerSigner::load(OFFICER_ISSUER, OFFICER_KEY_ID, &key)?)
}

/// The gateway as an issuer of officer assertions, and its development key id.
pub const OFFICER_ISSUER: &str = "gateway";
pub const OFFICER_KEY_ID: &str = "gateway-1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_the_identity() {
        let ca = DevCa::generate("test ca").expect("ca");
        let pair = ca.issue("civil-affairs").expect("issue");
        let der = pem_to_der(&pair.cert);
        assert_eq!(dibao_platform::runtime::tls::identity_of(&der).as_deref(), Some("civil-affairs"));
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        p.contents
    }
}
