//! The officer registry's RPC (`OfficerAdminService`), served by the
//! gateway for administrators: each acts only on officers inside their own
//! division, gives no one a division outside it, and every change is
//! recorded with who made it. A new officer and reset credentials come
//! with a one-time password and a TOTP secret, shown once.

use std::sync::Arc;

use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of;
use dibao_platform::runtime::error::respond;
use dibao_proto::common::v1::{OfficerRole, PageResponse};
use dibao_proto::gateway::v1 as pb;
use dibao_proto::gateway::v1::officer_admin_service_server::OfficerAdminService;
use dibao_proto::labels::Label;
use dibao_proto::types::{DivisionCode, IdentityNumber, InvalidField};
use tonic::{Request, Response, Status};

use crate::gateway::{Gateway, Principal};
use crate::registry::{self, Officer, Status as OfficerStatus};
use crate::secrets::{self, SecretKey};
use crate::sessions::Session;
use crate::totp;
use deadpool_postgres::Pool;

pub struct Admin(pub Arc<Gateway>);

#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    #[error("只有系统管理员可以管理经办人")]
    NotAdministrator,
    #[error("“{0}”不在您的辖区（{1}）内")]
    OutsideDivision(String, String),
    #[error("没有编号为“{0}”的经办人")]
    NotFound(String),
    #[error("编号“{0}”已被使用")]
    Exists(String),
}

impl dibao_platform::runtime::error::Refusal for AdminRefusal {
    fn kind(&self) -> dibao_platform::runtime::error::RefusalKind {
        use dibao_platform::runtime::error::RefusalKind;
        match self {
            AdminRefusal::NotAdministrator | AdminRefusal::OutsideDivision(..) => RefusalKind::PermissionDenied,
            AdminRefusal::NotFound(_) => RefusalKind::NotFound,
            AdminRefusal::Exists(_) => RefusalKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            AdminRefusal::NotAdministrator => "NOT_ADMINISTRATOR",
            AdminRefusal::OutsideDivision(..) => "OUTSIDE_DIVISION",
            AdminRefusal::NotFound(_) => "OFFICER_NOT_FOUND",
            AdminRefusal::Exists(_) => "OFFICER_EXISTS",
        }
    }
}

/// The administrator making the call.
fn administrator<T>(request: &Request<T>) -> Result<Session, Error> {
    match request.extensions().get::<Principal>() {
        Some(Principal::Officer(s)) if s.claims.roles.contains(&OfficerRole::Administrator) => Ok(s.clone()),
        _ => Err(AdminRefusal::NotAdministrator.into()),
    }
}

fn must_hold(admin: &Session, division: &DivisionCode) -> Result<(), Error> {
    if admin.claims.division.contains(division) {
        Ok(())
    } else {
        Err(AdminRefusal::OutsideDivision(division.to_string(), admin.claims.division.to_string()).into())
    }
}

fn to_pb(o: &Officer) -> pb::Officer {
    pb::Officer {
        officer_id: o.officer_id.clone(),
        name: o.name.clone(),
        roles: o.roles.iter().map(|r| *r as i32).collect(),
        division: Some((&o.division).into()),
        status: match o.status {
            OfficerStatus::Active => pb::OfficerStatus::Active,
            OfficerStatus::Disabled => pb::OfficerStatus::Disabled,
        } as i32,
        identity_number: o.identity_number.as_ref().map(Into::into),
        oidc_subject: o.oidc_subject.clone().unwrap_or_default(),
        locked_until: o.locked_until.map(timestamp_of),
    }
}

/// An officer as a request describes them, checked field by field.
pub fn officer_of(o: &pb::Officer, errors: &mut Vec<InvalidField>) -> Option<Officer> {
    let id = o.officer_id.trim();
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        errors.push(InvalidField::new("officer.officer_id", "经办人编号为1至64位字母、数字或 - _ ."));
    }
    if o.name.trim().is_empty() {
        errors.push(InvalidField::new("officer.name", "姓名不能为空"));
    }
    let roles = registry::roles_of(&o.roles);
    if roles.is_empty() || roles.len() != o.roles.len() {
        errors.push(InvalidField::new("officer.roles", "请至少指定一个有效角色"));
    }
    let division = match &o.division {
        Some(d) => DivisionCode::try_from(d).map_err(|e| errors.push(e.within("officer.division"))).ok(),
        None => {
            errors.push(InvalidField::new("officer.division", "必填项缺失"));
            None
        }
    };
    let identity_number = match &o.identity_number {
        Some(i) if !i.value.is_empty() => {
            IdentityNumber::parse(&i.value).map_err(|e| errors.push(e.within("officer.identity_number"))).ok()
        }
        _ => None,
    };
    let status = match pb::OfficerStatus::try_from(o.status).unwrap_or(pb::OfficerStatus::Unspecified) {
        pb::OfficerStatus::Disabled => OfficerStatus::Disabled,
        _ => OfficerStatus::Active,
    };
    Some(Officer {
        officer_id: id.to_owned(),
        name: o.name.trim().to_owned(),
        roles,
        division: division?,
        status,
        identity_number,
        oidc_subject: Some(o.oidc_subject.trim().to_owned()).filter(|s| !s.is_empty()),
        locked_until: None,
    })
}

/// Fresh credentials: a one-time password (hashed) and a TOTP secret (sealed).
fn credentials(key: &SecretKey, officer_id: &str) -> Result<(pb::Credentials, String, Vec<u8>), Error> {
    let unexpected = |e: secrets::SecretError| Error::Unexpected(e.into());
    let password = secrets::one_time_password().map_err(unexpected)?;
    let hash = secrets::hash_password(&password).map_err(unexpected)?;
    let secret = secrets::random::<20>().map_err(unexpected)?;
    let sealed = key.seal(officer_id, &secret).map_err(unexpected)?;
    Ok((
        pb::Credentials {
            one_time_password: password,
            totp_secret: totp::base32(&secret),
            otpauth_uri: totp::otpauth_uri("dibao-mesh", officer_id, &secret),
        },
        hash,
        sealed,
    ))
}

fn roles_text(roles: &[OfficerRole]) -> String {
    roles.iter().map(|r| r.label()).collect::<Vec<_>>().join("、")
}

/// Creates `o` (the bootstrap's first administrator, or an administrator's
/// new officer), recorded as made by `by`.
pub async fn create(
    pool: &Pool,
    key: &SecretKey,
    now: time::OffsetDateTime,
    o: &Officer,
    by: &str,
) -> Result<pb::Credentials, Error> {
    let (creds, hash, sealed) = credentials(key, &o.officer_id)?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if !registry::insert(&tx, o, &hash, &sealed, now).await? {
        return Err(AdminRefusal::Exists(o.officer_id.clone()).into());
    }
    let change = format!("新建：{}，{}，辖区{}", o.name, roles_text(&o.roles), o.division);
    registry::record_change(&tx, &o.officer_id, by, &change, &o.division, now).await?;
    tx.commit().await?;
    tracing::info!(officer = %o.officer_id, by, "officer created");
    Ok(creds)
}

impl Admin {
    async fn update(&self, admin: &Session, req: pb::UpdateOfficerRequest) -> Result<pb::UpdateOfficerResponse, Error> {
        let gw = &self.0;
        let wanted = req.officer.unwrap_or_default();
        let mut client = gw.pool.get().await?;
        let tx = client.transaction().await?;
        let id = wanted.officer_id.trim().to_owned();
        let current = registry::get(&tx, &id).await?.ok_or_else(|| AdminRefusal::NotFound(id.clone()))?;
        // An officer outside the administrator's division is not theirs to see.
        if !admin.claims.division.contains(&current.division) {
            return Err(AdminRefusal::NotFound(id).into());
        }
        let mut next = current.clone();
        let mut changes = Vec::new();
        let mut errors = Vec::new();
        for field in &req.update_mask {
            match field.as_str() {
                "name" if !wanted.name.trim().is_empty() => {
                    next.name = wanted.name.trim().to_owned();
                    changes.push(format!("姓名改为{}", next.name));
                }
                "roles" => {
                    let roles = registry::roles_of(&wanted.roles);
                    if roles.is_empty() || roles.len() != wanted.roles.len() {
                        errors.push(InvalidField::new("officer.roles", "请至少指定一个有效角色"));
                    } else {
                        changes.push(format!("角色由{}改为{}", roles_text(&next.roles), roles_text(&roles)));
                        next.roles = roles;
                    }
                }
                "division" => match wanted.division.as_ref().map(DivisionCode::try_from) {
                    Some(Ok(d)) => {
                        changes.push(format!("辖区由{}改为{d}", next.division));
                        next.division = d;
                    }
                    Some(Err(e)) => errors.push(e.within("officer.division")),
                    None => errors.push(InvalidField::new("officer.division", "必填项缺失")),
                },
                "status" => {
                    match pb::OfficerStatus::try_from(wanted.status).unwrap_or(pb::OfficerStatus::Unspecified) {
                        pb::OfficerStatus::Active => {
                            next.status = OfficerStatus::Active;
                            changes.push("启用".to_owned());
                        }
                        pb::OfficerStatus::Disabled => {
                            next.status = OfficerStatus::Disabled;
                            changes.push("停用".to_owned());
                        }
                        pb::OfficerStatus::Unspecified => {
                            errors.push(InvalidField::new("officer.status", "请指定启用或停用"))
                        }
                    }
                }
                "identity_number" => {
                    match wanted.identity_number.as_ref().map(|i| IdentityNumber::parse(&i.value)) {
                        Some(Ok(i)) => next.identity_number = Some(i),
                        Some(Err(e)) => errors.push(e.within("officer.identity_number")),
                        None => next.identity_number = None,
                    }
                    changes.push("身份证号更新".to_owned());
                }
                "oidc_subject" => {
                    next.oidc_subject = Some(wanted.oidc_subject.trim().to_owned()).filter(|s| !s.is_empty());
                    changes.push("统一身份认证账号更新".to_owned());
                }
                other => errors.push(InvalidField::new("update_mask", format!("不能修改“{other}”"))),
            }
        }
        if !errors.is_empty() {
            return Err(Error::InvalidArgument(errors));
        }
        must_hold(admin, &next.division)?;
        let now = gw.clock.now();
        registry::update(&tx, &next, now).await?;
        registry::record_change(&tx, &id, &admin.claims.officer_id, &changes.join("；"), &next.division, now).await?;
        tx.commit().await?;
        // Roles, division or status changed: the officer's sessions show it at once here, elsewhere within the recheck.
        gw.sessions.revoke_officer_cache(&id);
        if next.status == OfficerStatus::Disabled {
            gw.sessions.revoke_officer(&id).await?;
        }
        tracing::info!(officer = %id, by = %admin.claims.officer_id, change = %changes.join("；"), "officer changed");
        Ok(pb::UpdateOfficerResponse { officer: Some(to_pb(&next)) })
    }

    async fn reset(&self, admin: &Session, officer_id: &str) -> Result<pb::ResetCredentialsResponse, Error> {
        let gw = &self.0;
        let id = officer_id.trim();
        let client = gw.pool.get().await?;
        let current = registry::get(&client, id).await?.ok_or_else(|| AdminRefusal::NotFound(id.to_owned()))?;
        if !admin.claims.division.contains(&current.division) {
            return Err(AdminRefusal::NotFound(id.to_owned()).into());
        }
        let (creds, hash, sealed) = credentials(&gw.secret_key, id)?;
        let now = gw.clock.now();
        registry::set_credentials(&client, id, &hash, &sealed, now).await?;
        registry::record_change(
            &client,
            id,
            &admin.claims.officer_id,
            "重置口令和动态口令，解除锁定",
            &current.division,
            now,
        )
        .await?;
        gw.sessions.revoke_officer(id).await?;
        tracing::info!(officer = %id, by = %admin.claims.officer_id, "credentials reset");
        Ok(pb::ResetCredentialsResponse { credentials: Some(creds) })
    }
}

fn page_size(p: &Option<dibao_proto::common::v1::PageRequest>) -> Result<i64, Error> {
    match p.as_ref().map_or(0, |p| p.page_size) {
        0 => Ok(100),
        n if (1..=1000).contains(&n) => Ok(i64::from(n)),
        _ => Err(InvalidField::new("page.page_size", "每页条数应在1到1000之间").into()),
    }
}

#[tonic::async_trait]
impl OfficerAdminService for Admin {
    async fn create_officer(
        &self,
        request: Request<pb::CreateOfficerRequest>,
    ) -> Result<Response<pb::CreateOfficerResponse>, Status> {
        respond(
            async {
                let admin = administrator(&request)?;
                let mut errors = Vec::new();
                let officer = officer_of(&request.get_ref().officer.clone().unwrap_or_default(), &mut errors);
                let Some(officer) = officer.filter(|_| errors.is_empty()) else {
                    return Err(Error::InvalidArgument(errors));
                };
                must_hold(&admin, &officer.division)?;
                let gw = &self.0;
                let creds =
                    create(&gw.pool, &gw.secret_key, gw.clock.now(), &officer, &admin.claims.officer_id).await?;
                Ok(pb::CreateOfficerResponse { officer: Some(to_pb(&officer)), credentials: Some(creds) })
            }
            .await,
        )
    }

    async fn update_officer(
        &self,
        request: Request<pb::UpdateOfficerRequest>,
    ) -> Result<Response<pb::UpdateOfficerResponse>, Status> {
        respond(
            async {
                let admin = administrator(&request)?;
                self.update(&admin, request.into_inner()).await
            }
            .await,
        )
    }

    async fn reset_credentials(
        &self,
        request: Request<pb::ResetCredentialsRequest>,
    ) -> Result<Response<pb::ResetCredentialsResponse>, Status> {
        respond(
            async {
                let admin = administrator(&request)?;
                self.reset(&admin, &request.get_ref().account).await
            }
            .await,
        )
    }

    async fn list_officers(
        &self,
        request: Request<pb::ListOfficersRequest>,
    ) -> Result<Response<pb::ListOfficersResponse>, Status> {
        respond(
            async {
                let admin = administrator(&request)?;
                let req = request.into_inner();
                let prefix = match &req.division {
                    Some(d) if !d.code.is_empty() => {
                        let d = DivisionCode::try_from(d).map_err(|e| e.within("division"))?;
                        must_hold(&admin, &d)?;
                        d.prefix().to_owned()
                    }
                    _ => admin.claims.division.prefix().to_owned(),
                };
                let size = page_size(&req.page)?;
                let after = req.page.as_ref().map(|p| p.page_token.clone()).unwrap_or_default();
                let client = self.0.pool.get().await?;
                let officers = registry::list(&client, &prefix, &after, size).await?;
                let next = if officers.len() as i64 == size {
                    officers.last().map(|o| o.officer_id.clone()).unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(pb::ListOfficersResponse {
                    officers: officers.iter().map(to_pb).collect(),
                    page: Some(PageResponse { next_page_token: next }),
                })
            }
            .await,
        )
    }

    async fn list_officer_changes(
        &self,
        request: Request<pb::ListOfficerChangesRequest>,
    ) -> Result<Response<pb::ListOfficerChangesResponse>, Status> {
        respond(
            async {
                let admin = administrator(&request)?;
                let req = request.into_inner();
                let size = page_size(&req.page)?;
                let after: i64 = match req.page.as_ref().map(|p| p.page_token.as_str()).unwrap_or("") {
                    "" => 0,
                    t => t.parse().map_err(|_| InvalidField::new("page.page_token", "翻页标记无效"))?,
                };
                let officer = Some(req.account.trim()).filter(|s| !s.is_empty());
                let client = self.0.pool.get().await?;
                let changes = registry::changes(&client, admin.claims.division.prefix(), officer, after, size).await?;
                let next = if changes.len() as i64 == size {
                    changes.last().map(|c| c.seq.to_string()).unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(pb::ListOfficerChangesResponse {
                    changes: changes
                        .into_iter()
                        .map(|c| pb::OfficerChange {
                            sequence: c.seq,
                            officer_id: c.officer_id,
                            changed_by: c.changed_by,
                            change: c.change,
                            at: Some(timestamp_of(c.at)),
                        })
                        .collect(),
                    page: Some(PageResponse { next_page_token: next }),
                })
            }
            .await,
        )
    }
}
