//! The household a check is for, as civil affairs holds it (R-VER-2): its
//! county — whose property thresholds the report applies, and whose
//! jurisdiction the officer must hold — and its live members, the only
//! persons a report treats as members (R-ELIG-2). Read from civil affairs
//! over mTLS as the hub, never taken from the caller.

use std::collections::HashSet;
use std::time::Duration;

use dibao_platform::Error;
use dibao_platform::runtime::server::MeshChannel;
use dibao_proto::civil_affairs::v1::GetHouseholdRequest;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::types::{DivisionCode, InvalidField};
use tonic::Request;

/// What the hub knows of a household from civil affairs.
#[derive(Debug, Clone)]
pub struct Household {
    pub village: DivisionCode,
    pub county: DivisionCode,
    /// Identity numbers of its live members.
    pub members: HashSet<String>,
}

/// Not found, and outside the officer's jurisdiction, read the same: a
/// refused officer learns nothing of a household they may not see.
pub fn not_found(id: &str) -> Error {
    Error::NotFound(format!("民政业务系统中没有编号为“{id}”的家庭，或该户不在您的管辖范围内"))
}

/// Household `id` as civil affairs holds it now.
pub async fn resolve(client: Option<&CivilAffairsServiceClient<MeshChannel>>, id: &str) -> Result<Household, Error> {
    let Some(client) = client else {
        return Err(Error::Unavailable("本平台未配置民政业务系统的地址，无法确认被核对家庭".to_owned()));
    };
    let mut request = Request::new(GetHouseholdRequest { household_id: id.to_owned() });
    request.set_timeout(Duration::from_secs(2));
    let household = match client.clone().get_household(request).await {
        Ok(answer) => answer.into_inner().household,
        Err(s) if s.code() == tonic::Code::NotFound => return Err(not_found(id)),
        Err(s) if s.code() == tonic::Code::InvalidArgument => {
            return Err(
                InvalidField::new("household_id", "应为民政业务系统中的家庭编号（申请时返回的家庭编号）").into()
            );
        }
        Err(s) => {
            tracing::warn!(code = ?s.code(), message = s.message(), "civil affairs' household unavailable");
            return Err(Error::Unavailable("暂时无法从民政业务系统确认被核对家庭，请稍后再试".to_owned()));
        }
    };
    let household = household.ok_or_else(|| not_found(id))?;
    let village = household
        .village
        .as_ref()
        .and_then(|v| DivisionCode::try_from(v).ok())
        .ok_or_else(|| Error::Unavailable(format!("民政业务系统中家庭“{id}”没有有效的村（社区）代码")))?;
    let county =
        village.county().ok_or_else(|| Error::Unavailable(format!("民政业务系统中家庭“{id}”的区划无法确定所属县")))?;
    let members = household
        .members
        .iter()
        .filter_map(|m| m.person.as_ref()?.identity_number.as_ref())
        .map(|n| n.value.clone())
        .collect();
    Ok(Household { village, county, members })
}
