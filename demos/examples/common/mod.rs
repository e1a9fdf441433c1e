//! What the README's demos share: their officers at the gateway ([`office`]), and channels whose every
//! call carries the officer's assertion, signed with the local stack's
//! officer-issuer key (`.stack/certs/officer-issuer.pk8`) as the gateway
//! signs a logged-in officer's.

#![allow(dead_code)]

pub mod office;

use std::path::Path;
use std::sync::Arc;

use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::{CallerChannel, connect};
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::trust::officer::{Claims, OfficerSigner};
use dibao_proto::common::v1::OfficerRole;
use tonic::service::interceptor::InterceptedService;

/// The officer `name`, of `roles`, serving `division`.
pub fn officer_claims(roles: &[OfficerRole], name: &str, division: &str) -> Claims {
    Claims {
        officer_id: format!("{division}-{}", roles.first().map_or(0, |r| *r as i32)),
        name: name.into(),
        roles: roles.to_vec(),
        division: dibao_proto::types::DivisionCode::parse(division).expect("a division code"),
        session_id: "demo".into(),
        identity_number: None,
    }
}

/// `message` as a call of the officer `name`, of `role`, serving `division`.
pub fn officer<T>(role: OfficerRole, name: &str, division: &str, message: T) -> tonic::Request<T> {
    dibao_tests::by(officer_claims(&[role], name, division), message)
}

/// The demo's signing key, from the stack's certificates.
pub fn signer(certs: &Path) -> anyhow::Result<Arc<OfficerSigner>> {
    Ok(Arc::new(dibao_ops_tools::devpki::officer_issuer(certs)?))
}

/// Calls at `addr` for `audience` (the service's name), as `office` unless
/// a call names another officer, on `clock`.
pub async fn officer_channel(
    tls: &TlsMaterial,
    addr: &str,
    audience: &str,
    signer: &Arc<OfficerSigner>,
    office: Claims,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<CallerChannel> {
    let desk = dibao_tests::Desk::new(signer.clone(), audience, office).clock(clock);
    Ok(InterceptedService::new(connect(tls, addr, "localhost").await?, desk.credentials()))
}

/// The demo county's office (both rosters' operators, the approver and the
/// poverty officer, 220581) calling the local stack's services as the
/// gateway does for a logged-in officer.
pub struct CountyOffice {
    tls: TlsMaterial,
    signer: Arc<OfficerSigner>,
    claims: Claims,
}

impl CountyOffice {
    /// With the stack's certificates in `certs`: the gateway's mesh
    /// certificate and the officer-issuer key.
    pub fn new(certs: &Path) -> anyhow::Result<Self> {
        let read = |f: &str| std::fs::read_to_string(certs.join(f));
        let tls = TlsMaterial::from_pem(&read("ca.pem")?, &read("gateway.pem")?, &read("gateway.key")?);
        let claims = officer_claims(
            &[OfficerRole::CountyOperator, OfficerRole::CountyApprover, OfficerRole::PovertyOfficer],
            "县业务科",
            "220581",
        );
        Ok(Self { tls, signer: signer(certs)?, claims })
    }

    /// A channel to `service` at `addr` whose calls carry the office's assertion.
    pub async fn channel(&self, addr: std::net::SocketAddr, service: &str) -> anyhow::Result<CallerChannel> {
        let clock: Arc<dyn Clock> = Arc::new(dibao_platform::runtime::clock::SystemClock);
        officer_channel(&self.tls, &addr.to_string(), service, &self.signer, self.claims.clone(), clock).await
    }
}
