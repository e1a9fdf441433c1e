//! A person's access history (查询记录) as one service keeps it: the
//! `dibao.access.v1.AccessLogService` every service with an access log
//! serves. Reading it is itself a read of the person's data, so it is
//! logged too.

use deadpool_postgres::Pool;
use dibao_proto::access::v1::access_log_service_server::{AccessLogService, AccessLogServiceServer};
use dibao_proto::access::v1::{Access, ListAccessesRequest, ListAccessesResponse};
use dibao_proto::common::v1::PageResponse;
use dibao_proto::department::v1::Item;
use dibao_proto::types::{DivisionCode, DivisionLevel, IdentityNumber, InvalidField};
use tonic::{Request, Response, Status};

use crate::Error;
use crate::events::outbox::timestamp_of as timestamp;
use crate::runtime::access::Reader;
use crate::runtime::error::respond;
use crate::trust::access_log::{self, AccessLog};

/// The service over one access log.
pub struct History {
    pool: Pool,
    log: AccessLog,
}

impl History {
    pub fn server(pool: Pool, log: AccessLog) -> AccessLogServiceServer<Self> {
        AccessLogServiceServer::new(Self { pool, log })
    }

    async fn list(&self, reader: &Reader, req: ListAccessesRequest) -> Result<ListAccessesResponse, Error> {
        let person = req
            .person
            .as_ref()
            .map(|p| IdentityNumber::parse(&p.value))
            .ok_or_else(|| InvalidField::new("person", "必填项缺失"))?
            .map_err(|e| e.within("person"))?;
        let village = match &req.village {
            None => None,
            Some(v) => {
                let v = DivisionCode::try_from(v).map_err(|e| e.within("village"))?;
                if v.level() != DivisionLevel::Village {
                    return Err(InvalidField::new("village", "应填写12位村级行政区划代码").into());
                }
                Some(v)
            }
        };
        // An officer answers the citizens of their own jurisdiction; without
        // the village, only an officer of the whole province may ask.
        if let Some(officer) = &reader.officer {
            match &village {
                Some(v) => officer.must_cover(v, "village")?,
                None if officer.division.level() == DivisionLevel::Province => {}
                None => return Err(InvalidField::new("village", "请填写查询对象所在的村（12位行政区划代码）").into()),
            }
        }
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
        // On record before the answer leaves, as every read of a person's data.
        self.log.record(reader.entry(person.as_str(), "查阅查询记录")).await?;
        let records =
            access_log::accesses_to(&self.pool, person.as_str(), village.as_ref().map(|v| v.as_str()), after, size)
                .await?;
        let next = if records.len() as i64 == size {
            records.last().map(|r| r.seq.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let accesses = records
            .into_iter()
            .map(|r| Access {
                sequence: r.seq,
                subject: r.entry.person,
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
}

#[tonic::async_trait]
impl AccessLogService for History {
    async fn list_accesses(
        &self,
        request: Request<ListAccessesRequest>,
    ) -> Result<Response<ListAccessesResponse>, Status> {
        let reader = Reader::of(&request);
        respond(self.list(&reader, request.into_inner()).await)
    }
}
