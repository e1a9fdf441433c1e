//! The hub's gRPC service: consent first, then the departments, then the
//! report — stored, versioned, published — and every access logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of as timestamp;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::error::{internal, invalid};
use dibao_platform::runtime::tls::CallerIdentity;
use dibao_platform::store::db::cached;
use dibao_platform::trust::access_log::{self, AccessEntry, AccessLog};
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::{CountyPolicy, GetPolicyRequest};
use dibao_proto::common::v1::{IdentityNumber as PbIdentity, OfficerRole, PageResponse, YearMonth};
use dibao_proto::department::v1::{Department, Item};
use dibao_proto::events::v1::VerificationCompleted;
use dibao_proto::events::v1::event_envelope::Payload;
use dibao_proto::types::{DivisionCode, DivisionLevel, IdentityNumber, InvalidField, Signature};
use dibao_proto::verification::v1::verification_service_server::VerificationService;
use dibao_proto::verification::v1::*;
use prost::Message;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::consent;
use crate::fanout::{Answer, Departments, Mandate, department_of};
use crate::report;

pub const PRODUCER: &str = "verification-hub";
const AGGREGATE: &str = "verification.household";

/// County code, year, month.
type PolicyKey = (String, i32, i32);
/// When it was fetched, and the policy or why there is none.
type Cached = (Instant, Result<CountyPolicy, String>);

/// The county policy of civil affairs, cached for a minute per county and month.
pub struct Policies {
    pub client: Option<CivilAffairsServiceClient<Channel>>,
    cache: Mutex<HashMap<PolicyKey, Cached>>,
}

impl Policies {
    pub fn new(client: Option<CivilAffairsServiceClient<Channel>>) -> Self {
        Self { client, cache: Mutex::new(HashMap::new()) }
    }

    async fn get(&self, county: &DivisionCode, month: YearMonth) -> Result<CountyPolicy, String> {
        let key = (county.as_str().to_owned(), month.year, month.month);
        if let Some((at, p)) = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key)
            && at.elapsed() < Duration::from_secs(60)
        {
            return p.clone();
        }
        let Some(mut client) = self.client.clone() else {
            return Err("本平台未配置民政业务系统的地址".to_owned());
        };
        let mut request = Request::new(GetPolicyRequest { county: Some(county.into()), month: Some(month) });
        request.set_timeout(Duration::from_secs(2));
        let result = match client.get_policy(request).await {
            Ok(r) => r.into_inner().policy.ok_or_else(|| "民政业务系统未返回县级政策".to_owned()),
            Err(s) if s.code() == tonic::Code::NotFound => Err(format!("民政业务系统中没有{county}本月适用的县级政策")),
            Err(s) => {
                tracing::warn!(code = ?s.code(), message = s.message(), "county policy unavailable");
                // Not cached: the next report tries again.
                return Err("暂时无法从民政业务系统取得县级政策".to_owned());
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (Instant::now(), result.clone()));
        result
    }
}

#[derive(Clone)]
pub struct Hub {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    pub departments: Arc<Departments>,
    pub policies: Arc<Policies>,
    pub log: AccessLog,
    pub topic: String,
    pub report_deadline: Duration,
    pub campaigns: crate::campaign::Campaigns,
}

fn caller_of<T>(r: &Request<T>) -> String {
    r.extensions().get::<CallerIdentity>().map(|c| c.0.clone()).unwrap_or_default()
}

/// A checked verification request.
pub(crate) struct Checked {
    pub household_id: String,
    pub county: DivisionCode,
    pub persons: Vec<IdentityNumber>,
    pub items: Option<Vec<Item>>,
    pub purpose: String,
    pub officer: Signature,
}

fn check(req: &VerifyHouseholdRequest, now: time::OffsetDateTime) -> Result<Checked, Vec<InvalidField>> {
    let mut errors = Vec::new();
    let household_id = req.household_id.trim().to_owned();
    if household_id.is_empty() {
        errors.push(InvalidField::new("household_id", "请填写被核对家庭的编号"));
    }
    let county = match req.county.as_ref().map(DivisionCode::try_from) {
        None => {
            errors.push(InvalidField::new("county", "必填项缺失：按哪个县的政策核对"));
            None
        }
        Some(Err(e)) => {
            errors.push(e.within("county"));
            None
        }
        Some(Ok(c)) if c.level() != DivisionLevel::County => {
            errors.push(InvalidField::new("county", format!("“{c}”不是县级行政区划代码")));
            None
        }
        Some(Ok(c)) => Some(c),
    };
    let mut persons = Vec::new();
    if req.persons.is_empty() {
        errors.push(InvalidField::new("persons", "至少要核对一人"));
    }
    for (i, p) in req.persons.iter().enumerate() {
        match IdentityNumber::parse(&p.value) {
            Ok(id) if !persons.contains(&id) => persons.push(id),
            Ok(_) => errors.push(InvalidField::new(format!("persons[{i}]"), "同一人重复出现")),
            Err(e) => errors.push(e.within(&format!("persons[{i}]"))),
        }
    }
    let mut items = Vec::new();
    for (i, v) in req.items.iter().enumerate() {
        match Item::try_from(*v) {
            Ok(item) if item != Item::Unspecified => items.push(item),
            _ => errors.push(InvalidField::new(format!("items[{i}]"), format!("未知的核对项目（{v}）"))),
        }
    }
    if req.purpose.trim().is_empty() {
        errors.push(InvalidField::new("purpose", "请写明核对用途（如“低保申请审核”）"));
    }
    if req.consent_id.trim().is_empty() {
        errors.push(InvalidField::new("consent_id", "没有授权书不能核对（R-VER-1）"));
    }
    let officer = match Signature::from_pb(&req.officer, now) {
        Ok(s) if matches!(s.role, OfficerRole::VerificationOfficer | OfficerRole::TownshipCaseworker) => Some(s),
        Ok(_) => {
            errors.push(InvalidField::new("officer.role", "核对须由核对人员或乡镇经办人发起"));
            None
        }
        Err(es) => {
            errors.extend(es.into_iter().map(|e| e.within("officer")));
            None
        }
    };
    match (county, officer, errors.is_empty()) {
        (Some(county), Some(officer), true) => Ok(Checked {
            household_id,
            county,
            persons,
            items: (!items.is_empty()).then_some(items),
            purpose: req.purpose.trim().to_owned(),
            officer,
        }),
        _ => Err(errors),
    }
}

impl Hub {
    /// One record per person checked.
    fn entries<'a>(
        &'a self,
        caller: &'a str,
        c: &'a Checked,
        consent_id: &'a str,
        items: &[Item],
        outcome: &'a str,
        asked: Option<&'a [i64]>,
    ) -> impl Iterator<Item = AccessEntry> + 'a {
        let names: Vec<String> = items.iter().map(|i| i.as_str_name().to_owned()).collect();
        c.persons.iter().enumerate().map(move |(i, p)| AccessEntry {
            caller: caller.to_owned(),
            officer_id: c.officer.officer_id.clone(),
            consent_id: consent_id.to_owned(),
            purpose: c.purpose.clone(),
            person: p.as_str().to_owned(),
            items: names.clone(),
            outcome: outcome.to_owned(),
            completes: asked.and_then(|seqs| seqs.get(i).copied()),
        })
    }

    /// Records the access to every person and returns their sequence
    /// numbers once committed; all go to the writer at once, so they share
    /// one append.
    async fn log_all(
        &self,
        caller: &str,
        c: &Checked,
        consent_id: &str,
        items: &[Item],
        outcome: &str,
    ) -> Result<Vec<i64>, Status> {
        let records = self.entries(caller, c, consent_id, items, outcome, None).map(|e| self.log.record(e));
        futures_util::future::try_join_all(records).await.map_err(internal)
    }

    /// Stores `report` with its event and, for a campaign's household, the
    /// household's mark: one transaction, so a hub that dies never leaves a
    /// stored report whose household a resumed campaign would check again.
    async fn store(&self, report: &Report, campaign: Option<uuid::Uuid>) -> Result<(), Error> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One household's reports take their event versions in order.
        // Prepared once per connection: every verification runs these.
        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&report.household_id];
        // The lock is taken before the count is read (the server runs them
        // in order), in one round trip.
        let lock_and_count = cached::pipeline(
            &tx,
            &[
                ("SELECT pg_advisory_xact_lock(hashtext('report:' || $1))", &key),
                ("SELECT count(*) FROM report WHERE household_id = $1", &key),
            ],
        )
        .await?;
        let version: i64 = lock_and_count[1].first().map_or(0, |r| r.get(0));
        let report_id = uuid::Uuid::parse_str(&report.report_id).map_err(|e| Error::Unexpected(e.into()))?;
        let consent_id = uuid::Uuid::parse_str(&report.consent_id).map_err(|e| Error::Unexpected(e.into()))?;
        let completed_at = time::OffsetDateTime::from_unix_timestamp(report.completed_at.map_or(0, |t| t.seconds))
            .map_err(|e| Error::Unexpected(e.into()))?;
        let (county, finding_count, body) = (
            report.county.as_ref().map_or("", |c| c.code.as_str()),
            report.findings.len() as i32,
            report.encode_to_vec(),
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &report_id,
            &report.version,
            &report.household_id,
            &consent_id,
            &county,
            &report.complete,
            &finding_count,
            &completed_at,
            &body,
        ];
        // Both rows go out together (one round trip); the commit decides.
        let insert = cached::execute(
            &tx,
            "INSERT INTO report (report_id, version, household_id, consent_id, county, complete, finding_count, completed_at, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &params,
        );
        let enqueue = outbox::enqueue(
            &tx,
            NewEvent {
                topic: &self.topic,
                aggregate_type: AGGREGATE,
                aggregate_key: &report.household_id,
                aggregate_version: version + 1,
                producer: PRODUCER,
                payload: Payload::VerificationCompleted(VerificationCompleted {
                    report_id: report.report_id.clone(),
                    report_version: report.version,
                    household_id: report.household_id.clone(),
                    completed_at: report.completed_at,
                    complete: report.complete,
                    finding_count,
                }),
            },
        );
        let mark = async {
            match campaign {
                Some(id) => crate::campaign::mark_done(&tx, id, report_id, report).await,
                None => Ok(0),
            }
        };
        tokio::try_join!(insert, enqueue, mark)?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks `c`'s persons under `consent` with every department and
    /// returns the stored report; `report_id` names an earlier report to
    /// store the result as its next version, `campaign` the campaign whose
    /// household this is.
    pub(crate) async fn verify(
        &self,
        caller: &str,
        c: &Checked,
        consent: &consent::Consent,
        report_id: &str,
        campaign: Option<uuid::Uuid>,
    ) -> Result<Report, Status> {
        let started = Instant::now();
        let deadline = started + self.report_deadline;
        let now = self.clock.now();
        let consent_id = consent.consent_id.to_string();
        let items = c.items.clone().unwrap_or_else(|| consent.items.clone());
        let month = YearMonth { year: now.year(), month: i32::from(now.month() as u8) };
        // Where the county asks for close lineal relatives' signatures too
        // (R-VER-1), its policy decides a consent that has none before any
        // department is asked; other consents don't wait for the policy.
        let permitted = match consent.permits(&c.persons, &items, now.date()) {
            Ok(()) if !consent.relatives_settled() => {
                consent.relatives_under(c.county.as_str(), &self.policies.get(&c.county, month).await)
            }
            other => other,
        };
        if let Err(refused) = permitted {
            let message = refused.message();
            self.log_all(caller, c, &consent_id, &items, &format!("refused: {message}")).await?;
            tracing::warn!(consent_id, reason = %message, "verification refused");
            return Err(Error::FailedPrecondition(message).into());
        }
        let (report_id, version) = self.next_version(report_id, c, &consent_id).await?;

        let mut by_department: Vec<(Department, Vec<Item>)> = Vec::new();
        for item in &items {
            let Some(d) = department_of(*item) else { continue };
            match by_department.iter_mut().find(|(x, _)| *x == d) {
                Some((_, list)) => list.push(*item),
                None => by_department.push((d, vec![*item])),
            }
        }
        let mandate = &Mandate { consent_id: &consent_id, purpose: &c.purpose, officer_id: &c.officer.officer_id };
        let by_department = &by_department;
        let asks = c.persons.iter().flat_map(|p| {
            by_department.iter().map(move |(d, its)| async move {
                (p, *d, self.departments.ask(*d, p, its, mandate, now, deadline).await)
            })
        });
        // The hub's record of the query commits while the departments work;
        // the report leaves only after it has (R-VER-1).
        let (asked, answers, policy) = tokio::join!(
            self.log_all(caller, c, &consent_id, &items, access_log::ASKED),
            futures_util::future::join_all(asks),
            self.policies.get(&c.county, month)
        );
        let asked = asked?;
        let mut report_items = Vec::new();
        for p in &c.persons {
            let mine: Vec<(Department, Answer)> =
                answers.iter().filter(|(q, ..)| *q == p).map(|(_, d, a)| (*d, a.clone())).collect();
            report_items.extend(report::items_of(p, &items, &mine));
        }
        let (policy, policy_note) = match policy {
            Ok(p) => (Some(p), String::new()),
            Err(why) => (None, format!("{why}，未能对照本县财产标准，请取得政策后重新核对。")),
        };
        let findings = report::findings(&report_items, &c.persons, policy.as_ref());
        let unavailable = report_items.iter().filter(|i| i.unavailable).count();
        let summary = report::summary(c.persons.len(), &report_items, &findings, &policy_note);
        let report = Report {
            report_id,
            version,
            household_id: c.household_id.clone(),
            consent_id: consent_id.clone(),
            complete: unavailable == 0 && policy.is_some(),
            items: report_items,
            findings,
            completed_at: Some(timestamp(self.clock.now())),
            county: Some((&c.county).into()),
            purpose: c.purpose.clone(),
            officer_id: c.officer.officer_id.clone(),
            persons: c.persons.iter().map(|p| PbIdentity { value: p.as_str().to_owned() }).collect(),
            policy_note,
            summary,
        };
        let records = report.items.iter().filter(|i| i.record.is_some()).count();
        self.store(&report, campaign).await?;
        let outcome =
            format!("reported {} v{}: {records} records, {unavailable} unavailable", report.report_id, report.version);
        for entry in self.entries(caller, c, &consent_id, &items, &outcome, Some(&asked)) {
            self.log.record_outcome(entry);
        }
        tracing::info!(
            report_id = %report.report_id,
            version = report.version,
            records,
            unavailable,
            findings = report.findings.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "verification reported"
        );
        Ok(report)
    }

    /// The report id and version a run is stored under.
    async fn next_version(&self, report_id: &str, c: &Checked, consent_id: &str) -> Result<(String, i32), Error> {
        if report_id.trim().is_empty() {
            return Ok((uuid::Uuid::now_v7().to_string(), 1));
        }
        let not_found = || Error::NotFound(format!("没有编号为“{report_id}”的核对报告"));
        let id = uuid::Uuid::parse_str(report_id.trim()).map_err(|_| not_found())?;
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT household_id, consent_id::text, max(version) OVER () FROM report WHERE report_id = $1 LIMIT 1",
                &[&id],
            )
            .await?
            .ok_or_else(not_found)?;
        let (household, consent, latest): (String, String, i32) = (row.get(0), row.get(1), row.get(2));
        if household != c.household_id || consent != consent_id {
            return Err(Error::FailedPrecondition(format!(
                "报告“{report_id}”属于另一户或另一份授权书，不能作为本次核对的新版本"
            )));
        }
        Ok((id.to_string(), latest + 1))
    }
}

#[tonic::async_trait]
impl VerificationService for Hub {
    #[tracing::instrument(skip_all)]
    async fn register_consent(
        &self,
        request: Request<RegisterConsentRequest>,
    ) -> Result<Response<RegisterConsentResponse>, Status> {
        let now = self.clock.now();
        let checked = consent::check(&request.get_ref().consent, now).map_err(invalid)?;
        let mut client = self.pool.get().await.map_err(internal)?;
        let tx = client.transaction().await.map_err(internal)?;
        let id = consent::insert(&tx, &checked, now).await?;
        tx.commit().await.map_err(internal)?;
        tracing::info!(consent_id = %id, persons = checked.persons.len(), "consent registered");
        Ok(Response::new(RegisterConsentResponse { consent_id: id.to_string() }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_consent(
        &self,
        request: Request<RevokeConsentRequest>,
    ) -> Result<Response<RevokeConsentResponse>, Status> {
        let now = self.clock.now();
        let req = request.into_inner();
        let mut errors = Vec::new();
        if req.reason.trim().is_empty() {
            errors.push(InvalidField::new("reason", "请写明撤销原因"));
        }
        let signature = Signature::from_pb(&req.signature, now).map_err(|es| errors.extend(es)).ok();
        let Some(signature) = signature.filter(|_| errors.is_empty()) else {
            return Err(invalid(errors));
        };
        let client = self.pool.get().await.map_err(internal)?;
        let consent = consent::load(&client, &req.consent_id).await?;
        if let Some(at) = consent.revoked_at {
            return Err(Error::FailedPrecondition(format!("授权书已于{}撤销", at.date())).into());
        }
        client
            .execute(
                "UPDATE consent SET revoked_at = $2, revoked_by = $3, revoke_reason = $4 WHERE consent_id = $1 AND revoked_at IS NULL",
                &[&consent.consent_id, &now, &signature.officer_id, &req.reason.trim()],
            )
            .await
            .map_err(internal)?;
        tracing::info!(consent_id = %consent.consent_id, "consent revoked");
        Ok(Response::new(RevokeConsentResponse { revoked_at: Some(timestamp(now)) }))
    }

    #[tracing::instrument(skip_all, fields(household_id = %request.get_ref().household_id))]
    async fn verify_household(
        &self,
        request: Request<VerifyHouseholdRequest>,
    ) -> Result<Response<VerifyHouseholdResponse>, Status> {
        let now = self.clock.now();
        let caller = caller_of(&request);
        let req = request.into_inner();
        let c = check(&req, now).map_err(invalid)?;
        let consent = {
            let client = self.pool.get().await.map_err(internal)?;
            consent::load(&client, &req.consent_id).await?
        };
        let report = self.verify(&caller, &c, &consent, &req.report_id, None).await?;
        Ok(Response::new(VerifyHouseholdResponse { report: Some(report) }))
    }

    async fn get_report(&self, request: Request<GetReportRequest>) -> Result<Response<GetReportResponse>, Status> {
        let req = request.into_inner();
        let not_found = || Status::from(Error::NotFound(format!("没有编号为“{}”的核对报告", req.report_id)));
        let id = uuid::Uuid::parse_str(req.report_id.trim()).map_err(|_| not_found())?;
        if req.version < 0 {
            return Err(invalid(vec![InvalidField::new("version", "版本号不能为负数（0 表示最新版本）")]));
        }
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_opt(
                "SELECT body FROM report WHERE report_id = $1 AND ($2 = 0 OR version = $2) ORDER BY version DESC LIMIT 1",
                &[&id, &req.version],
            )
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let body: Vec<u8> = row.get(0);
        let report = Report::decode(body.as_slice()).map_err(|e| internal(anyhow::Error::new(e)))?;
        Ok(Response::new(GetReportResponse { report: Some(report) }))
    }

    type StartCampaignStream = tokio_stream::wrappers::ReceiverStream<Result<StartCampaignResponse, Status>>;

    /// Starts a campaign over a county or township (or, given its id,
    /// resumes one) and streams its progress until it is finished.
    #[tracing::instrument(skip_all)]
    async fn start_campaign(
        &self,
        request: Request<StartCampaignRequest>,
    ) -> Result<Response<Self::StartCampaignStream>, Status> {
        let now = self.clock.now();
        let req = request.into_inner();
        let id = if req.campaign_id.trim().is_empty() {
            let mut errors = Vec::new();
            let division = match req.division.as_ref().map(DivisionCode::try_from) {
                None => {
                    errors.push(InvalidField::new("division", "必填项缺失：核查哪个县或乡镇"));
                    None
                }
                Some(Err(e)) => {
                    errors.push(e.within("division"));
                    None
                }
                Some(Ok(d)) => match crate::campaign::check_division(&d) {
                    Ok(()) => Some(d),
                    Err(why) => {
                        errors.push(InvalidField::new("division", why));
                        None
                    }
                },
            };
            if req.purpose.trim().is_empty() {
                errors.push(InvalidField::new("purpose", "请写明核查用途（如“2026年低保集中核查”）"));
            }
            let officer = match Signature::from_pb(&req.officer, now) {
                Ok(s) if matches!(s.role, OfficerRole::VerificationOfficer | OfficerRole::CountyApprover) => Some(s),
                Ok(_) => {
                    errors.push(InvalidField::new("officer.role", "批量核查须由核对人员或县级审批人员发起"));
                    None
                }
                Err(es) => {
                    errors.extend(es.into_iter().map(|e| e.within("officer")));
                    None
                }
            };
            let (Some(division), Some(officer), true) = (division, officer, errors.is_empty()) else {
                return Err(invalid(errors));
            };
            self.campaigns.create(self, &division, req.purpose.trim(), &officer).await?
        } else {
            uuid::Uuid::parse_str(req.campaign_id.trim())
                .map_err(|_| Status::from(Error::NotFound(format!("没有编号为“{}”的批量核查", req.campaign_id))))?
        };
        let mut progress = self.campaigns.run(self, id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let now = progress.borrow_and_update().clone();
                if tx.send(Ok(now.message())).await.is_err() || now.finished {
                    return;
                }
                // Ends when the campaign's task is gone (finished or stopped).
                if progress.changed().await.is_err() {
                    let last = progress.borrow().clone();
                    if !last.finished {
                        let _ = tx.send(Err(Status::aborted("批量核查中断，可凭编号续查"))).await;
                    }
                    return;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn list_accesses(
        &self,
        request: Request<ListAccessesRequest>,
    ) -> Result<Response<ListAccessesResponse>, Status> {
        let req = request.into_inner();
        let person = req
            .person
            .as_ref()
            .map(|p| IdentityNumber::parse(&p.value))
            .ok_or_else(|| invalid(vec![InvalidField::new("person", "必填项缺失")]))?
            .map_err(|e| invalid(vec![e.within("person")]))?;
        let page = req.page.unwrap_or_default();
        let size = match page.page_size {
            0 => 100,
            n if (1..=1000).contains(&n) => i64::from(n),
            _ => return Err(invalid(vec![InvalidField::new("page.page_size", "每页条数应在1到1000之间")])),
        };
        let after: i64 = if page.page_token.is_empty() {
            0
        } else {
            page.page_token.parse().map_err(|_| invalid(vec![InvalidField::new("page.page_token", "翻页标记无效")]))?
        };
        let records = access_log::accesses_to(&self.pool, person.as_str(), after, size).await?;
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
        Ok(Response::new(ListAccessesResponse { accesses, page: Some(PageResponse { next_page_token: next }) }))
    }
}
