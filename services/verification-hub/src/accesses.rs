//! Who looked at a person's data (查询记录): the hub's access log, read
//! back person by person for the officer answering a citizen.

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of as timestamp;
use dibao_platform::trust::access_log;
use dibao_proto::common::v1::{IdentityNumber as PbIdentity, PageResponse};
use dibao_proto::department::v1::Item;
use dibao_proto::types::{IdentityNumber, InvalidField};
use dibao_proto::verification::v1::{Access, ListAccessesRequest, ListAccessesResponse};

/// A page of the accesses to one person's data, oldest first.
pub async fn list(pool: &Pool, req: ListAccessesRequest) -> Result<ListAccessesResponse, Error> {
    let person = req
        .person
        .as_ref()
        .map(|p| IdentityNumber::parse(&p.value))
        .ok_or_else(|| InvalidField::new("person", "必填项缺失"))?
        .map_err(|e| e.within("person"))?;
    let page = req.page.unwrap_or_default();
    let size = match page.page_size {
        0 => 100,
        n if (1..=1000).contains(&n) => i64::from(n),
        _ => return Err(InvalidField::new("page.page_size", "每页条数应在1到1000之间").into()),
    };
    let after: i64 = if page.page_token.is_empty() {
        0
    } else {
        page.page_token.parse().map_err(|_| InvalidField::new("page.page_token", "翻页标记无效"))?
    };
    let records = access_log::accesses_to(pool, person.as_str(), after, size).await?;
    let next = if records.len() as i64 == size {
        records.last().map(|r| r.seq.to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let accesses = records
        .into_iter()
        .map(|r| Access {
            sequence: r.seq,
            person: Some(PbIdentity { value: r.entry.person }),
            caller: r.entry.caller,
            officer_id: r.entry.officer_id,
            consent_id: r.entry.consent_id,
            purpose: r.entry.purpose,
            items: r.entry.items.iter().filter_map(|i| Item::from_str_name(i)).map(|i| i as i32).collect(),
            at: Some(timestamp(r.at)),
            outcome: r.entry.outcome,
            completes: r.entry.completes.unwrap_or_default(),
        })
        .collect();
    Ok(ListAccessesResponse { accesses, page: Some(PageResponse { next_page_token: next }) })
}
