//! A person's access history as one service keeps it, asked through the
//! gateway for an officer: every page of the service's `ListAccesses`.

use dibao_platform::trust::officer::Claims;
use dibao_proto::access::v1::access_log_service_client::AccessLogServiceClient;
use dibao_proto::access::v1::{Access, ListAccessesRequest};
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, PageRequest};

use crate::gateway::Gateway;

/// Most records read from one service for one answer.
const MOST: usize = 10_000;

pub async fn of(
    gw: &Gateway,
    claims: &Claims,
    service: &str,
    person: &str,
    village: Option<DivisionCode>,
) -> Result<Vec<Access>, tonic::Status> {
    let channel = gw.upstreams.get(service).cloned().ok_or_else(|| tonic::Status::unavailable(service.to_owned()))?;
    let mut client = AccessLogServiceClient::new(channel);
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let request = gw.request(
            claims,
            service,
            ListAccessesRequest {
                person: Some(IdentityNumber { value: person.to_owned() }),
                page: Some(PageRequest { page_size: 1000, page_token: token }),
                village: village.clone(),
            },
        );
        let page = client.list_accesses(request).await?.into_inner();
        out.extend(page.accesses);
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() || out.len() >= MOST {
            return Ok(out);
        }
    }
}

/// What every service answered for one person: the records by time, each
/// with the service that keeps it, and the services that could not answer.
pub struct Collected {
    pub records: Vec<(String, Access)>,
    pub unavailable: Vec<(String, String)>,
}

/// `person`'s access history from every service behind the gateway, asked
/// for the officer of `claims` with an assertion for each service (each
/// applies its own table: who may read histories, for which villages). A
/// refusal by any service refuses the whole.
pub async fn collect(
    gw: &std::sync::Arc<Gateway>,
    claims: &Claims,
    person: &str,
    village: Option<DivisionCode>,
) -> Result<Collected, tonic::Status> {
    let mut names: Vec<&String> = gw.upstreams.keys().collect();
    names.sort();
    let asks = names.iter().map(|name| {
        let (gw, claims, person, village) = (gw.clone(), claims.clone(), person.to_owned(), village.clone());
        let name = (*name).clone();
        async move {
            let answer = of(&gw, &claims, &name, &person, village).await;
            (name, answer)
        }
    });
    let mut collected = Collected { records: Vec::new(), unavailable: Vec::new() };
    for (name, answer) in futures_util::future::join_all(asks).await {
        match answer {
            Ok(found) => collected.records.extend(found.into_iter().map(|a| (name.clone(), a))),
            Err(status)
                if status.code() == tonic::Code::PermissionDenied || status.code() == tonic::Code::InvalidArgument =>
            {
                return Err(status);
            }
            Err(status) => collected.unavailable.push((name, status.message().to_owned())),
        }
    }
    collected.records.sort_by_key(|(_, a)| a.at.map(|t| (t.seconds, t.nanos)));
    Ok(collected)
}
