//! The demo's officers at the gateway: the province's first administrator
//! bootstrapped into the registry (as `dibao-officers bootstrap` does),
//! then each officer enrolled by an administrator through the registry's
//! RPC and logged in over HTTPS with their password and the code of their
//! authenticator (computed here from the secret the administrator handed
//! over, as a phone would).

use std::path::PathBuf;
use std::sync::Arc;

use dibao_gateway::client;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::server::CallerChannel;
use dibao_proto::common::v1::{DivisionCode, OfficerRole};
use dibao_proto::gateway::v1 as pb;
use dibao_proto::gateway::v1::officer_admin_service_client::OfficerAdminServiceClient;
use dibao_proto::labels::Label;

pub struct Office {
    pub addr: String,
    pub ca: PathBuf,
    pub clock: Arc<dyn Clock>,
    admin: String,
}

/// A logged-in officer, with what they log in with.
pub struct Officer {
    pub name: String,
    pub token: String,
    pub channel: CallerChannel,
    officer_id: String,
    password: String,
    totp_secret: String,
}

impl Office {
    /// Bootstraps the province's administrator `admin_id` and logs them in.
    pub async fn open(
        addr: String,
        ca: PathBuf,
        clock: Arc<dyn Clock>,
        (pool, key): (&deadpool_postgres::Pool, &dibao_gateway::secrets::SecretKey),
        admin_id: &str,
    ) -> anyhow::Result<Self> {
        let admin = dibao_gateway::registry::Officer {
            officer_id: admin_id.into(),
            name: "省民政厅系统管理员".into(),
            roles: vec![OfficerRole::Administrator],
            division: dibao_proto::types::DivisionCode::parse("220000").map_err(|e| anyhow::anyhow!("{e}"))?,
            status: dibao_gateway::registry::Status::Active,
            identity_number: None,
            oidc_subject: None,
            locked_until: None,
        };
        let creds = dibao_gateway::admin::create(pool, key, clock.now(), &admin, "bootstrap")
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;
        let mut office = Self { addr, ca, clock, admin: String::new() };
        office.admin = office.login(&admin.officer_id, &creds.one_time_password, &creds.totp_secret).await?;
        println!("   省民政厅系统管理员登录网关（口令+动态口令）");
        Ok(office)
    }

    async fn login(&self, officer_id: &str, password: &str, secret: &str) -> anyhow::Result<String> {
        let code = client::totp_code(secret, self.clock.now().unix_timestamp())
            .ok_or_else(|| anyhow::anyhow!("a TOTP secret that is not base32"))?;
        client::login(&self.addr, &self.ca, officer_id, password, &code)
            .await
            .map(|l| l.token)
            .map_err(|(status, message)| anyhow::anyhow!("{officer_id} could not log in ({status}): {message}"))
    }

    /// A channel through the gateway carrying `token`.
    pub async fn channel(&self, token: &str) -> anyhow::Result<CallerChannel> {
        let ca = std::fs::read(&self.ca)?;
        client::channel(&self.addr, &ca, "localhost", token).await.map_err(anyhow::Error::msg)
    }

    /// Enrols an officer through the registry's RPC and logs them in.
    pub async fn officer(
        &self,
        officer_id: &str,
        name: &str,
        role: OfficerRole,
        division: &str,
    ) -> anyhow::Result<Officer> {
        let mut admin = OfficerAdminServiceClient::new(self.channel(&self.admin).await?);
        let created = admin
            .create_officer(pb::CreateOfficerRequest {
                officer: Some(pb::Officer {
                    officer_id: officer_id.into(),
                    name: name.into(),
                    roles: vec![role as i32],
                    division: Some(DivisionCode { code: division.into() }),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        let creds = created.credentials.ok_or_else(|| anyhow::anyhow!("no credentials"))?;
        let token = self.login(officer_id, &creds.one_time_password, &creds.totp_secret).await?;
        println!("   {name}（{}，辖区{division}）由管理员登记，登录网关", role.label());
        Ok(Officer {
            name: name.into(),
            channel: self.channel(&token).await?,
            token,
            officer_id: officer_id.into(),
            password: creds.one_time_password,
            totp_secret: creds.totp_secret,
        })
    }

    /// New credentials for `officer_id`, through the registry's RPC (as an
    /// administrator resets them for an officer who lost their authenticator).
    pub async fn reset(&self, officer_id: &str) -> anyhow::Result<pb::Credentials> {
        let mut admin = OfficerAdminServiceClient::new(self.channel(&self.admin).await?);
        admin
            .reset_credentials(pb::ResetCredentialsRequest { account: officer_id.into() })
            .await?
            .into_inner()
            .credentials
            .ok_or_else(|| anyhow::anyhow!("no credentials"))
    }

    /// A channel of `officer_id` logged in with `creds`.
    pub async fn session(&self, officer_id: &str, creds: &pb::Credentials) -> anyhow::Result<CallerChannel> {
        let token = self.login(officer_id, &creds.one_time_password, &creds.totp_secret).await?;
        self.channel(&token).await
    }

    /// `officer` logs in again (a session ends after eight hours, whatever happens).
    pub async fn again(&self, officer: Officer) -> anyhow::Result<Officer> {
        let token = self.login(&officer.officer_id, &officer.password, &officer.totp_secret).await?;
        Ok(Officer { channel: self.channel(&token).await?, token, ..officer })
    }
}
