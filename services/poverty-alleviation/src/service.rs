//! The gRPC service: registration, status changes, deaths, the candidate
//! list for the next adjustment, bulk import and a snapshot export.

use std::sync::Arc;

use deadpool_postgres::{Pool, Transaction};
use dibao_platform::Error;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::clock::Clock;
use dibao_proto::common::v1::{OfficerRole, Relation};
use dibao_proto::events::v1::{
    MemberDeceased, PoorHouseholdCompositionChanged, PoorHouseholdExitedPoverty, PoorHouseholdRegistered,
    PoorHouseholdReturnedToPoverty, PovertyCause, event_envelope::Payload,
};
use dibao_proto::poverty_alleviation::v1 as pb;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_server::PovertyAlleviationService;
use dibao_proto::types::{DivisionCode, DivisionLevel, IdentityNumber, InvalidField, Signature, date_to_pb};
use prost::Message;
use time::Date;
use tonic::{Request, Response, Status};

use crate::sync;

const PRODUCER: &str = "poverty-alleviation";
pub(crate) const AGGREGATE: &str = "poverty_alleviation.household";

pub struct PovertyAlleviation {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    /// Topic of this roster's household events.
    pub topic: String,
}

pub(crate) use dibao_platform::runtime::error::{internal as db, invalid};

/// A database error; a deadlock or serialization failure (the other side's
/// inbox touching the same people at the same moment) becomes `Aborted`,
/// which the callers retry in a new transaction.
fn pg(e: tokio_postgres::Error) -> Status {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE => {
            tracing::warn!(error = %e, "registration collided with a concurrent change, retrying");
            Status::aborted("与同时进行的变更冲突，请重试")
        }
        _ => db(e),
    }
}

/// Attempts of a registration that collided with a concurrent change.
const ATTEMPTS: usize = 5;

/// Writes an event for a registered household into the outbox, in `tx`.
pub(crate) async fn publish(
    tx: &Transaction<'_>,
    topic: &str,
    household_id: &str,
    version: i64,
    payload: Payload,
) -> Result<(), tokio_postgres::Error> {
    outbox::enqueue(
        tx,
        NewEvent {
            topic,
            aggregate_type: AGGREGATE,
            aggregate_key: household_id,
            aggregate_version: version,
            producer: PRODUCER,
            payload,
        },
    )
    .await
    .map(|_| ())
}

/// A household as submitted, checked: village, members (identity numbers
/// to GB 11643, one head), causes.
struct Checked {
    village: DivisionCode,
    ids: Vec<IdentityNumber>,
    /// As stored in `body`: identity numbers canonical, columns cleared.
    canonical: pb::PoorHousehold,
}

fn check(h: &pb::PoorHousehold, field: &str) -> Result<Checked, Vec<InvalidField>> {
    let mut errors = Vec::new();
    let village = match &h.village {
        Some(v) => DivisionCode::try_from(v).map_err(|e| errors.push(e.within(&format!("{field}.village")))).ok(),
        None => {
            errors.push(InvalidField::new(format!("{field}.village"), "必填项缺失"));
            None
        }
    };
    if village.as_ref().is_some_and(|v| v.level() != DivisionLevel::Village) {
        errors.push(InvalidField::new(format!("{field}.village"), "应填写12位村级行政区划代码"));
    }
    if h.members.is_empty() {
        errors.push(InvalidField::new(format!("{field}.members"), "家庭成员不能为空"));
    }
    let mut canonical = h.clone();
    let mut ids = Vec::with_capacity(h.members.len());
    for (i, m) in canonical.members.iter_mut().enumerate() {
        let f = format!("{field}.members[{i}].person");
        let Some(person) = m.person.as_mut() else {
            errors.push(InvalidField::new(f, "必填项缺失"));
            continue;
        };
        match person.identity_number.as_ref().map(IdentityNumber::try_from) {
            Some(Ok(id)) => {
                if ids.contains(&id) {
                    errors.push(InvalidField::new(format!("{f}.identity_number"), "同一身份证号在本户中重复"));
                }
                person.identity_number = Some((&id).into());
                ids.push(id);
            }
            Some(Err(e)) => errors.push(e.within(&format!("{f}.identity_number"))),
            None => errors.push(InvalidField::new(format!("{f}.identity_number"), "必填项缺失")),
        }
        if person.name.trim().is_empty() {
            errors.push(InvalidField::new(format!("{f}.name"), "姓名不能为空"));
        }
    }
    let heads = h.members.iter().filter(|m| m.relation == Relation::Head as i32).count();
    if !h.members.is_empty() && heads != 1 {
        errors.push(InvalidField::new(format!("{field}.members"), format!("每户应有且只有一名户主，实际为{heads}名")));
    }
    if h.causes.is_empty() || h.causes.contains(&(PovertyCause::Unspecified as i32)) {
        errors.push(InvalidField::new(format!("{field}.causes"), "请填写致贫原因"));
    }
    let Some(village) = village.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    canonical.household_id.clear();
    canonical.status = 0;
    canonical.exit_year = 0;
    canonical.dibao_registered_poor = false;
    canonical.dibao_category = 0;
    canonical.dibao_household_ids.clear();
    canonical.version = 0;
    canonical.return_cause = 0;
    canonical.deceased.clear();
    Ok(Checked { village, ids, canonical })
}

fn signed(
    s: &Option<dibao_proto::common::v1::OfficerSignature>,
    now: time::OffsetDateTime,
) -> Result<Signature, Vec<InvalidField>> {
    let sig = Signature::from_pb(s, now)?;
    if sig.role != OfficerRole::PovertyOfficer {
        return Err(vec![InvalidField::new("signature.role", "扶贫对象的登记和变更应由扶贫部门经办人员签署")]);
    }
    Ok(sig)
}

const COLUMNS: &str = "household_id, body, status, exit_year, dibao_registered_poor, dibao_category, version, \
                       dibao_household_ids, return_cause";

async fn household_from_row(
    tx: &impl deadpool_postgres::GenericClient,
    row: &tokio_postgres::Row,
) -> Result<pb::PoorHousehold, Status> {
    let id: uuid::Uuid = row.get(0);
    let body: Vec<u8> = row.get(1);
    let mut h =
        pb::PoorHousehold::decode(body.as_slice()).map_err(|e| db(anyhow::anyhow!("stored household {id}: {e}")))?;
    h.household_id = id.to_string();
    h.status = row.get(2);
    h.exit_year = row.get::<_, Option<i32>>(3).unwrap_or(0);
    h.dibao_registered_poor = row.get(4);
    h.dibao_category = row.get(5);
    h.version = row.get(6);
    h.dibao_household_ids = row.get(7);
    h.return_cause = row.get(8);
    h.deceased = tx
        .query(
            "SELECT identity_number FROM poor_member WHERE household_id = $1 AND died_on IS NOT NULL ORDER BY 1",
            &[&id],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| dibao_proto::common::v1::IdentityNumber { value: r.get(0) })
        .collect();
    Ok(h)
}

enum Registered {
    New(uuid::Uuid),
    Changed,
    Unchanged,
}

impl PovertyAlleviation {
    /// Registers a household, or with `source_id` updates the one registered
    /// under it; the change and its event in `tx`, and the dibao flag it now
    /// has (R-SYNC-2).
    async fn register(
        &self,
        tx: &Transaction<'_>,
        h: &pb::PoorHousehold,
        source_id: Option<&str>,
    ) -> Result<Registered, Status> {
        let checked = check(h, "household").map_err(invalid)?;
        let county = checked
            .village
            .county()
            .ok_or_else(|| invalid(vec![InvalidField::new("household.village", "无法确定所属县")]))?;
        let ids: Vec<String> = checked.ids.iter().map(|i| i.as_str().to_owned()).collect();
        // Whose flags to recompute: the members, and any who left.
        let mut affected = ids.clone();
        // Person locks before any row lock, in the order the inbox takes them
        // (sorted), so a registration and an enrolment of the same people
        // queue instead of deadlocking; the members who may leave included.
        let leaving: Vec<String> = match source_id {
            Some(s) => tx
                .query(
                    "SELECT m.identity_number FROM poor_household h JOIN poor_member m USING (household_id)
                     WHERE h.county = $1 AND h.source_id = $2 AND m.live",
                    &[&county.as_str(), &s],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            None => vec![],
        };
        let persons: Vec<&String> = ids.iter().chain(&leaving).collect();
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('person:' || id, 0))
             FROM (SELECT DISTINCT id FROM unnest($1::text[]) AS id ORDER BY id) AS persons",
            &[&persons],
        )
        .await
        .map_err(pg)?;
        let existing = match source_id {
            Some(s) => tx
                .query_opt(
                    "SELECT household_id, body, version FROM poor_household WHERE county = $1 AND source_id = $2 FOR UPDATE",
                    &[&county.as_str(), &s],
                )
                .await
                .map_err(pg)?,
            None => None,
        };
        let own = existing.as_ref().map(|r| r.get::<_, uuid::Uuid>(0)).unwrap_or_else(uuid::Uuid::nil);
        if let Some(clash) = tx
            .query_opt(
                "SELECT identity_number FROM poor_member WHERE live AND identity_number = ANY($1) AND household_id <> $2
                 ORDER BY array_position($1, identity_number) LIMIT 1",
                &[&ids, &own],
            )
            .await
            .map_err(pg)?
        {
            let taken: String = clash.get(0);
            let i = ids.iter().position(|x| *x == taken).unwrap_or(0);
            return Err(invalid(vec![InvalidField::new(
                format!("household.members[{i}].person.identity_number"),
                "该成员已登记在另一建档立卡户中，同一人不得重复登记",
            )]));
        }
        let body = checked.canonical.encode_to_vec();
        let now = self.clock.now();
        let (household_id, outcome) = match existing {
            None => {
                let id = uuid::Uuid::now_v7();
                tx.execute(
                    "INSERT INTO poor_household (household_id, source_id, county, village, status, body, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &id,
                        &source_id,
                        &county.as_str(),
                        &checked.village.as_str(),
                        &(pb::PovertyStatus::InPoverty as i32),
                        &body,
                        &now,
                    ],
                )
                .await
                .map_err(pg)?;
                let payload = Payload::PoorHouseholdRegistered(PoorHouseholdRegistered {
                    household_id: id.to_string(),
                    village: Some((&checked.village).into()),
                    members: checked.canonical.members.clone(),
                    causes: checked.canonical.causes.clone(),
                });
                publish(tx, &self.topic, &id.to_string(), 1, payload).await.map_err(pg)?;
                (id, Registered::New(id))
            }
            Some(row) => {
                let id: uuid::Uuid = row.get(0);
                let old: Vec<u8> = row.get(1);
                if old == body {
                    return Ok(Registered::Unchanged);
                }
                let version: i64 = row.get::<_, i64>(2) + 1;
                tx.execute(
                    "UPDATE poor_household SET body = $2, village = $3, version = $4 WHERE household_id = $1",
                    &[&id, &body, &checked.village.as_str(), &version],
                )
                .await
                .map_err(pg)?;
                // Those who left are recomputed (and locked) with those who stay.
                let left = tx
                    .query(
                        "UPDATE poor_member SET live = false
                         WHERE household_id = $1 AND live AND NOT (identity_number = ANY($2))
                         RETURNING identity_number",
                        &[&id, &ids],
                    )
                    .await
                    .map_err(pg)?;
                affected.extend(left.iter().map(|r| r.get::<_, String>(0)));
                let payload = Payload::PoorHouseholdCompositionChanged(PoorHouseholdCompositionChanged {
                    household_id: id.to_string(),
                    members: checked.canonical.members.clone(),
                });
                publish(tx, &self.topic, &id.to_string(), version, payload).await.map_err(pg)?;
                (id, Registered::Changed)
            }
        };
        tx.execute(
            "INSERT INTO poor_member (identity_number, household_id, live) SELECT unnest($1::text[]), $2, true
             ON CONFLICT (identity_number, household_id) DO UPDATE SET live = true",
            &[&ids, &household_id],
        )
        .await
        .map_err(pg)?;
        // A household registered after its members' dibao enrolment is flagged at once.
        sync::refresh_flags(tx, &self.topic, &affected, &[]).await.map_err(pg)?;
        Ok(outcome)
    }
}

#[tonic::async_trait]
impl PovertyAlleviationService for PovertyAlleviation {
    #[tracing::instrument(skip_all)]
    async fn register_household(
        &self,
        request: Request<pb::RegisterHouseholdRequest>,
    ) -> Result<Response<pb::RegisterHouseholdResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let h = req.household.ok_or_else(|| invalid(vec![InvalidField::new("household", "必填项缺失")]))?;
        signed(&req.signature, now).map_err(invalid)?;
        let mut client = self.pool.get().await.map_err(db)?;
        let mut attempt = 1;
        let id = loop {
            let tx = client.transaction().await.map_err(db)?;
            match self.register(&tx, &h, None).await {
                Ok(Registered::New(id)) => {
                    tx.commit().await.map_err(pg)?;
                    break id;
                }
                Ok(_) => {
                    return Err(db(anyhow::anyhow!("registration without a source id found an existing household")));
                }
                Err(s) if s.code() == tonic::Code::Aborted && attempt < ATTEMPTS => attempt += 1,
                Err(s) => return Err(s),
            }
        };
        tracing::info!(household_id = %id, "poor household registered");
        Ok(Response::new(pb::RegisterHouseholdResponse { household_id: id.to_string() }))
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        let id = uuid::Uuid::parse_str(&request.get_ref().household_id)
            .map_err(|_| invalid(vec![InvalidField::new("household_id", "户编号格式不正确")]))?;
        let client = self.pool.get().await.map_err(db)?;
        let row = client
            .query_opt(&format!("SELECT {COLUMNS} FROM poor_household WHERE household_id = $1"), &[&id])
            .await
            .map_err(db)?
            .ok_or_else(|| Status::from(Error::NotFound(format!("建档立卡户{id}不存在"))))?;
        Ok(Response::new(pb::GetHouseholdResponse { household: Some(household_from_row(&client, &row).await?) }))
    }

    #[tracing::instrument(skip_all)]
    async fn change_status(
        &self,
        request: Request<pb::ChangeStatusRequest>,
    ) -> Result<Response<pb::ChangeStatusResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let mut errors = Vec::new();
        let id = uuid::Uuid::parse_str(&req.household_id)
            .map_err(|_| errors.push(InvalidField::new("household_id", "户编号格式不正确")))
            .ok();
        signed(&req.signature, now).map_err(|e| errors.extend(e)).ok();
        let status = pb::PovertyStatus::try_from(req.status).unwrap_or(pb::PovertyStatus::Unspecified);
        match status {
            pb::PovertyStatus::Exited if !(2014..=now.year()).contains(&req.exit_year) => {
                errors.push(InvalidField::new("exit_year", format!("脱贫年度应在2014年到{}年之间", now.year())))
            }
            pb::PovertyStatus::Returned if req.return_cause == PovertyCause::Unspecified as i32 => {
                errors.push(InvalidField::new("return_cause", "请填写返贫原因"))
            }
            pb::PovertyStatus::Exited | pb::PovertyStatus::Returned => {}
            _ => errors.push(InvalidField::new("status", "只能变更为已脱贫或返贫")),
        }
        let (Some(id), true) = (id, errors.is_empty()) else {
            return Err(invalid(errors));
        };
        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let row = tx
            .query_opt("SELECT status, version FROM poor_household WHERE household_id = $1 FOR UPDATE", &[&id])
            .await
            .map_err(db)?
            .ok_or_else(|| Status::from(Error::NotFound(format!("建档立卡户{id}不存在"))))?;
        let current: i32 = row.get(0);
        let version: i64 = row.get::<_, i64>(1) + 1;
        let payload = match status {
            pb::PovertyStatus::Exited => {
                if current == pb::PovertyStatus::Exited as i32 {
                    return Err(Error::FailedPrecondition("该户已标注脱贫".into()).into());
                }
                Payload::PoorHouseholdExitedPoverty(PoorHouseholdExitedPoverty {
                    household_id: id.to_string(),
                    exit_year: req.exit_year,
                })
            }
            _ => {
                if current != pb::PovertyStatus::Exited as i32 {
                    return Err(Error::FailedPrecondition("只有已脱贫的户才能标注返贫".into()).into());
                }
                Payload::PoorHouseholdReturnedToPoverty(PoorHouseholdReturnedToPoverty {
                    household_id: id.to_string(),
                    cause: req.return_cause,
                    returned_on: Some(date_to_pb(now.date())),
                })
            }
        };
        let exit_year = (status == pb::PovertyStatus::Exited).then_some(req.exit_year);
        let cause = if status == pb::PovertyStatus::Returned { req.return_cause } else { 0 };
        tx.execute(
            "UPDATE poor_household SET status = $2, exit_year = coalesce($3, exit_year), return_cause = $4, version = $5
             WHERE household_id = $1",
            &[&id, &(status as i32), &exit_year, &cause, &version],
        )
        .await
        .map_err(db)?;
        publish(&tx, &self.topic, &id.to_string(), version, payload).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(household_id = %id, ?status, "poverty status changed");
        Ok(Response::new(pb::ChangeStatusResponse { version }))
    }

    async fn list_candidates(
        &self,
        request: Request<pb::ListCandidatesRequest>,
    ) -> Result<Response<pb::ListCandidatesResponse>, Status> {
        let req = request.into_inner();
        let mut errors = Vec::new();
        let division = match &req.division {
            Some(d) => DivisionCode::try_from(d).map_err(|e| errors.push(e.within("division"))).ok(),
            None => {
                errors.push(InvalidField::new("division", "必填项缺失"));
                None
            }
        };
        let page = req.page.unwrap_or_default();
        if !(0..=1000).contains(&page.page_size) {
            errors.push(InvalidField::new("page.page_size", "每页条数应在1到1000之间"));
        }
        let Some(division) = division.filter(|_| errors.is_empty()) else {
            return Err(invalid(errors));
        };
        let size = i64::from(if page.page_size == 0 { 100 } else { page.page_size });
        let client = self.pool.get().await.map_err(db)?;
        // Enrolled dibao and special-hardship households none of whose
        // members is on the registered-poor roster (R-REV-2).
        let rows = client
            .query(
                "SELECT d.dibao_household_id, d.programme, d.village, d.category,
                        array(SELECT identity_number FROM dibao_member m WHERE m.dibao_household_id = d.dibao_household_id ORDER BY 1)
                 FROM dibao_household d
                 WHERE d.enrolled AND d.village LIKE $1 || '%' AND d.dibao_household_id > $2
                   AND NOT EXISTS (SELECT 1 FROM dibao_member m JOIN poor_member p ON p.identity_number = m.identity_number AND p.live
                                   WHERE m.dibao_household_id = d.dibao_household_id)
                 ORDER BY d.dibao_household_id LIMIT $3",
                &[&division.prefix(), &page.page_token, &(size + 1)],
            )
            .await
            .map_err(db)?;
        let more = rows.len() as i64 > size;
        let candidates: Vec<pb::Candidate> = rows
            .iter()
            .take(size as usize)
            .map(|r| pb::Candidate {
                dibao_household_id: r.get(0),
                programme: r.get(1),
                village: Some(dibao_proto::common::v1::DivisionCode { code: r.get(2) }),
                category: r.get(3),
                members: r
                    .get::<_, Vec<String>>(4)
                    .into_iter()
                    .map(|value| dibao_proto::common::v1::IdentityNumber { value })
                    .collect(),
            })
            .collect();
        let next_page_token = if more {
            candidates.last().map(|c| c.dibao_household_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        // The latest comparison whose division holds this one.
        let latest_comparison = client
            .query_opt(
                "SELECT run_id, division, completed_at, dibao_not_poor, flag_mismatches FROM comparison_run
                 WHERE $1 LIKE scope || '%' ORDER BY completed_at DESC, run_id LIMIT 1",
                &[&division.prefix()],
            )
            .await
            .map_err(db)?
            .map(|r| pb::LatestComparison {
                run_id: r.get(0),
                division: Some(dibao_proto::common::v1::DivisionCode { code: r.get(1) }),
                completed_at: Some(dibao_platform::events::outbox::timestamp_of(r.get(2))),
                dibao_not_poor: r.get(3),
                flag_mismatches: r.get(4),
            });
        Ok(Response::new(pb::ListCandidatesResponse {
            candidates,
            page: Some(dibao_proto::common::v1::PageResponse { next_page_token }),
            latest_comparison,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_death(
        &self,
        request: Request<pb::RecordDeathRequest>,
    ) -> Result<Response<pb::RecordDeathResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let mut errors = Vec::new();
        let person = match &req.identity_number {
            Some(i) => IdentityNumber::try_from(i).map_err(|e| errors.push(e.within("identity_number"))).ok(),
            None => {
                errors.push(InvalidField::new("identity_number", "必填项缺失"));
                None
            }
        };
        let died_on = dibao_proto::types::required(&req.died_on, "died_on")
            .and_then(|d| Date::try_from(d).map_err(|e| e.within("died_on")))
            .map_err(|e| errors.push(e))
            .ok();
        if died_on.is_some_and(|d| d > now.date()) {
            errors.push(InvalidField::new("died_on", "死亡日期不能晚于今天"));
        }
        if req.source.trim().is_empty() {
            errors.push(InvalidField::new("source", "请填写死亡信息来源"));
        }
        signed(&req.signature, now).map_err(|e| errors.extend(e)).ok();
        let (Some(person), Some(died_on), true) = (person, died_on, errors.is_empty()) else {
            return Err(invalid(errors));
        };
        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let household_id: uuid::Uuid = tx
            .query_opt(
                "UPDATE poor_member SET died_on = $2 WHERE live AND identity_number = $1 AND died_on IS NULL
                 RETURNING household_id",
                &[&person.as_str(), &died_on],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| Status::from(Error::NotFound(format!("{}不在建档立卡户中，或死亡已记录", person.masked()))))?
            .get(0);
        let version: i64 = tx
            .query_one(
                "UPDATE poor_household SET version = version + 1 WHERE household_id = $1 RETURNING version",
                &[&household_id],
            )
            .await
            .map_err(db)?
            .get(0);
        let payload = Payload::MemberDeceased(MemberDeceased {
            identity_number: Some((&person).into()),
            died_on: Some(date_to_pb(died_on)),
            household_id: household_id.to_string(),
        });
        publish(&tx, &self.topic, &household_id.to_string(), version, payload).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Response::new(pb::RecordDeathResponse { household_id: household_id.to_string() }))
    }

    #[tracing::instrument(skip_all)]
    async fn import_roster(
        &self,
        request: Request<tonic::Streaming<pb::ImportRosterRequest>>,
    ) -> Result<Response<pb::ImportRosterResponse>, Status> {
        let mut rows = request.into_inner();
        let mut out = pb::ImportRosterResponse::default();
        while let Some(row) = rows.message().await? {
            let Some(h) = row.household.as_ref() else {
                out.errors
                    .push(pb::RowError { row: row.row, field: "household".into(), message: "必填项缺失".into() });
                continue;
            };
            let source = h.household_id.trim().to_owned();
            if source.is_empty() {
                out.errors.push(pb::RowError {
                    row: row.row,
                    field: "household.household_id".into(),
                    message: "请填写建档立卡户编号".into(),
                });
                continue;
            }
            // Each household whole or not at all: its own transaction.
            let mut client = self.pool.get().await.map_err(db)?;
            let mut attempt = 1;
            let registered = loop {
                let tx = client.transaction().await.map_err(db)?;
                match self.register(&tx, h, Some(&source)).await {
                    Ok(outcome) => break tx.commit().await.map_err(pg).map(|()| outcome),
                    Err(s) if s.code() == tonic::Code::Aborted && attempt < ATTEMPTS => attempt += 1,
                    Err(s) => break Err(s),
                }
            };
            match registered {
                Ok(outcome) => match outcome {
                    Registered::Unchanged => out.households_unchanged += 1,
                    Registered::New(_) | Registered::Changed => out.households_applied += 1,
                },
                Err(status) if status.code() == tonic::Code::InvalidArgument => {
                    use tonic_types::StatusExt;
                    let details = status.get_details_bad_request();
                    match details {
                        Some(b) => out.errors.extend(b.field_violations.into_iter().map(|v| pb::RowError {
                            row: row.row,
                            field: v.field,
                            message: v.description,
                        })),
                        None => out.errors.push(pb::RowError {
                            row: row.row,
                            field: String::new(),
                            message: status.message().into(),
                        }),
                    }
                }
                Err(status) => return Err(status),
            }
        }
        Ok(Response::new(out))
    }

    type ExportRosterStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<pb::ExportRosterResponse, Status>> + Send>>;

    async fn export_roster(
        &self,
        request: Request<pb::ExportRosterRequest>,
    ) -> Result<Response<Self::ExportRosterStream>, Status> {
        let division = match &request.get_ref().division {
            Some(d) => DivisionCode::try_from(d).map_err(|e| invalid(vec![e.within("division")]))?,
            None => return Err(invalid(vec![InvalidField::new("division", "必填项缺失")])),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let pool = self.pool.clone();
        let now = self.clock.now();
        tokio::spawn(async move {
            if let Err(status) = export(pool, division, now, &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// One consistent snapshot (repeatable read) of the division's households.
async fn export(
    pool: Pool,
    division: DivisionCode,
    now: time::OffsetDateTime,
    out: &tokio::sync::mpsc::Sender<Result<pb::ExportRosterResponse, Status>>,
) -> Result<(), Status> {
    let mut client = pool.get().await.map_err(db)?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db)?;
    let position: i64 = tx.query_one("SELECT coalesce(max(id), 0) FROM outbox", &[]).await.map_err(db)?.get(0);
    let rows = tx
        .query(
            &format!("SELECT {COLUMNS} FROM poor_household WHERE village LIKE $1 || '%' ORDER BY household_id"),
            &[&division.prefix()],
        )
        .await
        .map_err(db)?;
    for row in &rows {
        let message = pb::ExportRosterResponse {
            household: Some(household_from_row(&tx, row).await?),
            snapshot_position: position,
            snapshot_at: Some(outbox::timestamp_of(now)),
        };
        if out.send(Ok(message)).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
