//! The gRPC service: policy registry, assessment, and the signed process.

use std::sync::Arc;

use deadpool_postgres::Pool;
use dibao_benefit_engine::benefit::{BenefitAssessment, BenefitRequest, assess_benefit, suggested_category};
use dibao_benefit_engine::household::validate_composition;
use dibao_benefit_engine::income::{IncomeAssessment, Treatment, assess_income};
use dibao_benefit_engine::policy::CountyPolicy;
use dibao_platform::Error;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::clock::Clock;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::civil_affairs::v1::civil_affairs_service_server::CivilAffairsService;
use dibao_proto::common::v1::{Money, OfficerRole, YearMonth};
use dibao_proto::events::v1::{
    ExitReason, HouseholdAmountChanged, HouseholdEnrolled, HouseholdExited, MemberDeceased, Programme, RosterMember,
    event_envelope::Payload,
};
use dibao_proto::types::{DivisionCode, Fen, InvalidField, date_to_pb};
use prost::Message;
use time::{Date, OffsetDateTime};
use tokio_postgres::GenericClient;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::process::{self, NOTICE_DAYS};

const PRODUCER: &str = "civil-affairs";
const AGGREGATE: &str = "civil_affairs.household";

pub struct CivilAffairs {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    /// Topic of household events.
    pub topic: String,
}

pub(crate) use dibao_platform::runtime::error::{internal as db, invalid};

pub(crate) fn first_of_month(t: OffsetDateTime) -> Date {
    t.date().replace_day(1).unwrap_or(t.date())
}

/// One household as civil affairs holds it, with its recorded deaths.
async fn household_by_id(client: &impl GenericClient, id: uuid::Uuid) -> Result<pb::Household, Status> {
    let row = client
        .query_opt(&format!("SELECT {HOUSEHOLD_COLUMNS} FROM household WHERE household_id = $1"), &[&id])
        .await
        .map_err(db)?
        .ok_or_else(|| Status::from(Error::NotFound(format!("家庭{id}不存在"))))?;
    let mut household = household_from_row(&row)?;
    household.deceased = client
        .query("SELECT identity_number FROM member_death WHERE household_id = $1 ORDER BY 1", &[&id])
        .await
        .map_err(db)?
        .iter()
        .map(|r| dibao_proto::common::v1::IdentityNumber { value: r.get(0) })
        .collect();
    Ok(household)
}

/// The policy in force for `county` in the month of `on`, decoded.
pub(crate) async fn policy_in_force(
    client: &impl GenericClient,
    county: &DivisionCode,
    on: Date,
) -> Result<(CountyPolicy, pb::CountyPolicy), Status> {
    let row = client
        .query_opt(
            "SELECT body FROM county_policy WHERE county = $1 AND effective_from <= $2
             ORDER BY effective_from DESC, id DESC LIMIT 1",
            &[&county.as_str(), &on],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| {
            Status::from(Error::FailedPrecondition(format!(
                "{county}尚未设置{}年{}月适用的低保政策，请先由县级民政部门保存政策",
                on.year(),
                on.month() as u8
            )))
        })?;
    let body: Vec<u8> = row.get(0);
    let wire = pb::CountyPolicy::decode(body.as_slice()).map_err(|e| db(anyhow::anyhow!("stored policy: {e}")))?;
    let policy = convert::policy(&wire).map_err(|_| db(anyhow::anyhow!("stored policy no longer valid")))?;
    Ok((policy, wire))
}

/// Runs the engine over a household as stored or submitted.
pub(crate) fn assess(
    household: &pb::Household,
    stored_income: &pb::AssessHouseholdRequest,
    policy: &CountyPolicy,
    on: Date,
) -> Result<(IncomeAssessment, BenefitAssessment), Vec<InvalidField>> {
    let submitted = convert::household(household, "household")?;
    validate_composition(&submitted.household, on)?;
    let lines = convert::income(&stored_income.income)?;
    let supporters = convert::supporters(&stored_income.supporters)?;
    let income = assess_income(&submitted.household, &lines, &supporters, policy)?;
    let category = submitted.category.unwrap_or_else(|| suggested_category(&submitted.household));
    let benefit = assess_benefit(
        &BenefitRequest {
            household: &submitted.household,
            income: &income,
            category,
            covered: &submitted.covered,
            property_findings: &stored_income.property_findings,
            on,
        },
        policy,
    )?;
    Ok((income, benefit))
}

fn roster_members(h: &pb::Household, covered: &[dibao_proto::types::IdentityNumber]) -> Vec<RosterMember> {
    h.members
        .iter()
        .map(|m| {
            let id = m.person.as_ref().and_then(|p| p.identity_number.as_ref()).map(|i| i.value.clone());
            RosterMember {
                person: m.person.clone(),
                relation: m.relation,
                covered: id.is_some_and(|id| covered.iter().any(|c| c.as_str() == id.to_ascii_uppercase())),
            }
        })
        .collect()
}

#[tonic::async_trait]
impl CivilAffairsService for CivilAffairs {
    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        let id = uuid::Uuid::parse_str(&request.get_ref().household_id)
            .map_err(|_| invalid(vec![InvalidField::new("household_id", "家庭编号格式不正确")]))?;
        let client = self.pool.get().await.map_err(db)?;
        let household = household_by_id(&**client, id).await?;
        Ok(Response::new(pb::GetHouseholdResponse { household: Some(household) }))
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        let id = uuid::Uuid::parse_str(request.get_ref().application_id.trim())
            .map_err(|_| invalid(vec![InvalidField::new("application_id", "申请编号格式不正确")]))?;
        let client = self.pool.get().await.map_err(db)?;
        let row = client
            .query_opt(
                "SELECT household_id, kind, status, next_step, created_at FROM application WHERE application_id = $1",
                &[&id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| Status::from(Error::NotFound(format!("申请{id}不存在"))))?;
        let kind = match row.get::<_, &str>(1) {
            "exit" => pb::ApplicationKind::Exit,
            _ => pb::ApplicationKind::Enrolment,
        };
        let status = match row.get::<_, &str>(2) {
            "open" => pb::ApplicationStatus::Open,
            "refused" => pb::ApplicationStatus::Refused,
            "enrolled" => pb::ApplicationStatus::Enrolled,
            _ => pb::ApplicationStatus::Exited,
        };
        let household = household_by_id(&**client, row.get(0)).await?;
        Ok(Response::new(pb::GetApplicationResponse {
            application: Some(pb::Application {
                application_id: id.to_string(),
                kind: kind as i32,
                status: status as i32,
                next_step: row.get(3),
                submitted_at: Some(dibao_platform::events::outbox::timestamp_of(row.get(4))),
                household: Some(household),
            }),
        }))
    }

    async fn list_households(
        &self,
        request: Request<pb::ListHouseholdsRequest>,
    ) -> Result<Response<pb::ListHouseholdsResponse>, Status> {
        let req = request.into_inner();
        let division = convert::division(&req.division, "division").map_err(|e| invalid(vec![e]))?;
        let page = req.page.unwrap_or_default();
        if !(0..=1000).contains(&page.page_size) {
            return Err(invalid(vec![InvalidField::new("page.page_size", "每页条数应在1到1000之间")]));
        }
        let size = i64::from(if page.page_size == 0 { 100 } else { page.page_size });
        let after = match page.page_token.as_str() {
            "" => uuid::Uuid::nil(),
            t => uuid::Uuid::parse_str(t).map_err(|_| {
                invalid(vec![InvalidField::new("page.page_token", "翻页标记无效，请使用上一页返回的标记")])
            })?,
        };
        let client = self.pool.get().await.map_err(db)?;
        let rows = client
            .query(
                &format!(
                    "SELECT {HOUSEHOLD_COLUMNS} FROM household WHERE village LIKE $1 || '%' AND household_id > $2
                     ORDER BY household_id LIMIT $3"
                ),
                &[&division.prefix(), &after, &(size + 1)],
            )
            .await
            .map_err(db)?;
        let more = rows.len() as i64 > size;
        let households = rows.iter().take(size as usize).map(household_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_page_token =
            if more { households.last().map(|h| h.household_id.clone()).unwrap_or_default() } else { String::new() };
        Ok(Response::new(pb::ListHouseholdsResponse {
            households,
            page: Some(dibao_proto::common::v1::PageResponse { next_page_token }),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn import_roster(
        &self,
        request: Request<tonic::Streaming<pb::ImportRosterRequest>>,
    ) -> Result<Response<pb::ImportRosterResponse>, Status> {
        use futures_util::StreamExt;
        // Rows are applied in batches of what has arrived (at most 500), one
        // transaction per batch and a savepoint per household: each household
        // whole or not at all, without a commit (and its disk flush) each.
        // A batch that cannot commit fails the call; what committed before
        // stays, and re-running the same rows changes nothing.
        let mut rows = request.into_inner().ready_chunks(500);
        let mut out = pb::ImportRosterResponse::default();
        while let Some(chunk) = rows.next().await {
            let chunk = chunk.into_iter().collect::<Result<Vec<_>, Status>>()?;
            let mut client = self.pool.get().await.map_err(db)?;
            let mut tx = client.transaction().await.map_err(db)?;
            let (mut applied, mut unchanged) = (0, 0);
            for row in &chunk {
                let savepoint = tx.savepoint("import_row").await.map_err(db)?;
                match self.import_row(&savepoint, row).await {
                    Ok(imported) => {
                        savepoint.commit().await.map_err(db)?;
                        match imported {
                            Imported::Applied => applied += 1,
                            Imported::Unchanged => unchanged += 1,
                        }
                    }
                    Err(RowFailure::Rejected(fields)) => {
                        savepoint.rollback().await.map_err(db)?;
                        out.errors.extend(fields.into_iter().map(|f| pb::RowError {
                            row: row.row,
                            field: f.field,
                            message: f.reason,
                        }))
                    }
                    Err(RowFailure::Failed(status)) => return Err(status),
                }
            }
            tx.commit().await.map_err(db)?;
            out.households_applied += applied;
            out.households_unchanged += unchanged;
        }
        tracing::info!(
            applied = out.households_applied,
            unchanged = out.households_unchanged,
            rejected_fields = out.errors.len(),
            "roster import finished"
        );
        Ok(Response::new(out))
    }

    #[tracing::instrument(skip_all)]
    async fn draw_sample(
        &self,
        request: Request<pb::DrawSampleRequest>,
    ) -> Result<Response<pb::DrawSampleResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let mut errors = Vec::new();
        let county = convert::division(&req.county, "county").map_err(|e| errors.push(e)).ok();
        if county.as_ref().is_some_and(|c| c.level() != dibao_proto::types::DivisionLevel::County) {
            errors.push(InvalidField::new("county", "应填写6位县级行政区划代码"));
        }
        if !(30..=100).contains(&req.percent) {
            errors.push(InvalidField::new(
                "percent",
                format!("随机抽查比例应在30%到100%之间（R-AUD-1），实际为{}%", req.percent),
            ));
        }
        let mut full_villages = Vec::new();
        for (i, v) in req.full_villages.iter().enumerate() {
            let field = format!("full_villages[{i}]");
            match DivisionCode::try_from(v) {
                Ok(v)
                    if v.level() == dibao_proto::types::DivisionLevel::Village
                        && county.as_ref().is_some_and(|c| c.contains(&v)) =>
                {
                    full_villages.push(v.as_str().to_owned())
                }
                Ok(_) => errors.push(InvalidField::new(field, "应为本县的12位村级行政区划代码")),
                Err(e) => errors.push(e.within(&field)),
            }
        }
        let new_since = match &req.new_since {
            Some(d) => Date::try_from(d).map_err(|e| errors.push(e.within("new_since"))).ok(),
            None => None,
        };
        let sig = convert::signature(&req.signature, now).map_err(|e| errors.extend(e)).ok();
        let (Some(county), Some(sig), true) = (county, sig, errors.is_empty()) else {
            return Err(invalid(errors));
        };
        // A seed of 0 asks the service for one; it is returned and recorded.
        let seed = if req.seed == 0 { uuid::Uuid::new_v4().as_u64_pair().0 } else { req.seed };

        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let new_since = match new_since {
            Some(d) => d,
            None => tx
                .query_one(
                    "SELECT coalesce(max(drawn_at)::date + 1, ($2::date - 365)) FROM audit_sample WHERE county = $1",
                    &[&county.as_str(), &now.date()],
                )
                .await
                .map_err(db)?
                .get(0),
        };
        let rows = tx
            .query(
                "SELECT household_id, village, enrolled_on FROM household WHERE county = $1 AND status = $2
                 ORDER BY household_id",
                &[&county.as_str(), &(pb::HouseholdStatus::Enrolled as i32)],
            )
            .await
            .map_err(db)?;
        let (mut new, mut full, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let id: uuid::Uuid = row.get(0);
            let village: String = row.get(1);
            let enrolled: Option<Date> = row.get(2);
            if enrolled.is_some_and(|d| d >= new_since) {
                new.push(id);
            } else if full_villages.contains(&village) {
                full.push(id);
            } else {
                rest.push(id);
            }
        }
        let drawn = crate::sampling::draw(&rest, req.percent.unsigned_abs(), seed);
        let mut ids: Vec<uuid::Uuid> = new.iter().chain(&full).chain(&drawn).copied().collect();
        ids.sort();
        let sample_id = uuid::Uuid::now_v7();
        tx.execute(
            "INSERT INTO audit_sample (sample_id, county, seed, percent, full_villages, new_since, household_ids, drawn_at, drawn_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &sample_id,
                &county.as_str(),
                // Stored bit for bit; read back with `as u64`.
                &i64::from_ne_bytes(seed.to_ne_bytes()),
                &req.percent,
                &full_villages,
                &new_since,
                &ids,
                &now,
                &sig.officer_id,
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let count = |v: &Vec<uuid::Uuid>| i32::try_from(v.len()).unwrap_or(i32::MAX);
        Ok(Response::new(pb::DrawSampleResponse {
            sample_id: sample_id.to_string(),
            seed,
            household_ids: ids.iter().map(ToString::to_string).collect(),
            new_enrolments: count(&new),
            in_full_villages: count(&full),
            drawn_at_random: count(&drawn),
            population: i32::try_from(rows.len()).unwrap_or(i32::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_reviews_due(
        &self,
        request: Request<pb::ListReviewsDueRequest>,
    ) -> Result<Response<pb::ListReviewsDueResponse>, Status> {
        self.reviews_due(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn record_review(
        &self,
        request: Request<pb::RecordReviewRequest>,
    ) -> Result<Response<pb::RecordReviewResponse>, Status> {
        self.review(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn apply_month(
        &self,
        request: Request<pb::ApplyMonthRequest>,
    ) -> Result<Response<pb::ApplyMonthResponse>, Status> {
        self.step_gradual_exits(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn export_public_notice(
        &self,
        request: Request<pb::ExportPublicNoticeRequest>,
    ) -> Result<Response<pb::ExportPublicNoticeResponse>, Status> {
        let req = request.into_inner();
        let mut errors = Vec::new();
        let division = convert::division(&req.division, "division").map_err(|e| errors.push(e)).ok();
        if division.as_ref().is_some_and(|d| d.county().is_none()) {
            errors.push(InvalidField::new("division", "应填写县级、乡镇级或村级行政区划代码"));
        }
        let kind = pb::NoticeKind::try_from(req.kind).unwrap_or(pb::NoticeKind::Unspecified);
        if kind == pb::NoticeKind::Unspecified {
            errors.push(InvalidField::new("kind", "请选择公示类型：审批公示或长期公示"));
        }
        let format = pb::FileFormat::try_from(req.format).unwrap_or(pb::FileFormat::Unspecified);
        if format == pb::FileFormat::Unspecified {
            errors.push(InvalidField::new("format", "请选择文件格式：CSV或xlsx"));
        }
        let Some(division) = division.filter(|_| errors.is_empty()) else {
            return Err(invalid(errors));
        };
        let client = self.pool.get().await.map_err(db)?;
        let sql = match kind {
            // Applications whose 7-day notice has started and that await county approval (R-PROC-1).
            pb::NoticeKind::Applicants => format!(
                "SELECT {HOUSEHOLD_COLUMNS}, income FROM household
                 WHERE village LIKE $1 || '%' AND household_id IN (
                     SELECT household_id FROM application
                     WHERE status = 'open' AND kind = 'enrol' AND notice_started_at IS NOT NULL)
                 ORDER BY village, household_id"
            ),
            _ => format!(
                "SELECT {HOUSEHOLD_COLUMNS}, income FROM household
                 WHERE village LIKE $1 || '%' AND status IN ($2, $3)
                 ORDER BY village, household_id"
            ),
        };
        let enrolled = [pb::HouseholdStatus::Enrolled as i32, pb::HouseholdStatus::GradualExit as i32];
        let rows = match kind {
            pb::NoticeKind::Applicants => client.query(&sql, &[&division.prefix()]).await,
            _ => client.query(&sql, &[&division.prefix(), &enrolled[0], &enrolled[1]]).await,
        }
        .map_err(db)?;
        let month = first_of_month(self.clock.now());
        let mut policies: std::collections::HashMap<String, Option<CountyPolicy>> = Default::default();
        let mut notice = Vec::with_capacity(rows.len());
        for row in &rows {
            let household = household_from_row(row)?;
            let income_body: Vec<u8> = row.get(HOUSEHOLD_COLUMNS.split(',').count());
            let income = pb::AssessHouseholdRequest::decode(income_body.as_slice())
                .map_err(|e| db(anyhow::anyhow!("stored income of {}: {e}", household.household_id)))?;
            let village = household.village.as_ref().map(|v| v.code.clone()).unwrap_or_default();
            let county = village.get(..6).unwrap_or_default().to_owned();
            if !policies.contains_key(&county) {
                let policy = match DivisionCode::parse(&county) {
                    Ok(c) => policy_in_force(&**client, &c, month).await.ok().map(|(p, _)| p),
                    Err(_) => None,
                };
                policies.insert(county.clone(), policy);
            }
            // Per-capita income and, for applicants, the proposed amount come
            // from the engine with the policy in force; without a policy the
            // notice still lists the household, income shown as "—".
            let assessed = policies[&county].as_ref().and_then(|p| assess(&household, &income, p, month).ok());
            let Some(head) = household
                .members
                .iter()
                .find(|m| m.relation == dibao_proto::common::v1::Relation::Head as i32)
                .or(household.members.first())
                .and_then(|m| m.person.as_ref())
            else {
                continue;
            };
            let Ok(head_identity) = convert::identity(&head.identity_number, "head") else { continue };
            let monthly_amount = match (kind, &assessed) {
                (pb::NoticeKind::Applicants, Some((_, b))) => b.monthly_amount,
                _ => Fen(household.monthly_amount.as_ref().map_or(0, |m| m.fen)),
            };
            notice.push(crate::notice::NoticeRow {
                village,
                head_name: head.name.clone(),
                head_identity,
                household_size: household.members.len(),
                per_capita_income: assessed.as_ref().map(|(i, _)| i.per_capita),
                category: crate::notice::category_label(household.programme, household.category),
                monthly_amount,
            });
        }
        let (what, title) = match kind {
            pb::NoticeKind::Applicants => ("applicants", format!("{division}最低生活保障审批公示（公示期7天）")),
            _ => ("enrolled", format!("{division}最低生活保障及特困供养长期公示")),
        };
        let date = self.clock.now().date();
        let (ext, content) = match format {
            pb::FileFormat::Xlsx => {
                ("xlsx", crate::notice::to_xlsx(&title, &notice).map_err(|e| db(anyhow::anyhow!("xlsx: {e}")))?)
            }
            _ => ("csv", crate::notice::to_csv(&notice)),
        };
        Ok(Response::new(pb::ExportPublicNoticeResponse {
            filename: format!("public-notice-{what}-{}-{date}.{ext}", division.as_str()),
            content,
            households: i32::try_from(notice.len()).unwrap_or(i32::MAX),
        }))
    }

    type ExportRosterStream =
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<pb::ExportRosterResponse, Status>> + Send>>;

    async fn export_roster(
        &self,
        request: Request<pb::ExportRosterRequest>,
    ) -> Result<Response<Self::ExportRosterStream>, Status> {
        let division = convert::division(&request.get_ref().division, "division").map_err(|e| invalid(vec![e]))?;
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

    #[tracing::instrument(skip_all)]
    async fn save_policy(
        &self,
        request: Request<pb::SavePolicyRequest>,
    ) -> Result<Response<pb::SavePolicyResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let wire = req.policy.ok_or_else(|| invalid(vec![InvalidField::new("policy", "必填项缺失")]))?;
        let policy = convert::policy(&wire).map_err(invalid)?;
        let sig = convert::signature(&req.signature, now).map_err(invalid)?;
        if sig.role != OfficerRole::CountyApprover {
            return Err(invalid(vec![InvalidField::new("signature.role", "低保政策应由县级审批人员保存")]));
        }
        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO county_policy (county, year, effective_from, dibao_standard_fen, body, saved_at, saved_by, saved_by_role)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &policy.county.as_str(),
                &policy.year,
                &policy.effective_from,
                &policy.dibao_standard.0,
                &wire.encode_to_vec(),
                &now,
                &sig.officer_id,
                &(sig.role as i32),
            ],
        )
        .await
        .map_err(db)?;
        // Recalculate every enrolled household of the county from the
        // policy's effective month, unless a later policy already governs it.
        let later: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM county_policy WHERE county = $1 AND effective_from > $2)",
                &[&policy.county.as_str(), &policy.effective_from],
            )
            .await
            .map_err(db)?
            .get(0);
        let mut recalculated = 0;
        if !later {
            let rows = tx
                .query(
                    "SELECT household_id, body, income, monthly_amount_fen, version FROM household
                     WHERE county = $1 AND status = $2 FOR UPDATE",
                    &[&policy.county.as_str(), &(pb::HouseholdStatus::Enrolled as i32)],
                )
                .await
                .map_err(db)?;
            for row in rows {
                let id: uuid::Uuid = row.get(0);
                let body: Vec<u8> = row.get(1);
                let income: Vec<u8> = row.get(2);
                let old = Fen(row.get(3));
                let version: i64 = row.get(4);
                let household = pb::Household::decode(body.as_slice()).map_err(|e| db(anyhow::anyhow!("{e}")))?;
                let stored =
                    pb::AssessHouseholdRequest::decode(income.as_slice()).map_err(|e| db(anyhow::anyhow!("{e}")))?;
                let Ok((_, benefit)) = assess(&household, &stored, &policy, policy.effective_from) else {
                    tracing::warn!(household_id = %id, "enrolled household no longer assessable, left for review");
                    continue;
                };
                if benefit.monthly_amount == old {
                    continue;
                }
                let reason = format!("低保标准调整为{}", policy.dibao_standard);
                tx.execute(
                    "UPDATE household SET monthly_amount_fen = $2, version = version + 1 WHERE household_id = $1",
                    &[&id, &benefit.monthly_amount.0],
                )
                .await
                .map_err(db)?;
                self.record_amount_change(
                    &tx,
                    id,
                    old,
                    benefit.monthly_amount,
                    policy.effective_from,
                    &reason,
                    version + 1,
                )
                .await?;
                recalculated += 1;
            }
        }
        tx.commit().await.map_err(db)?;
        tracing::info!(county = %policy.county, recalculated, "county policy saved");
        Ok(Response::new(pb::SavePolicyResponse { recalculated_households: recalculated }))
    }

    async fn get_policy(
        &self,
        request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::GetPolicyResponse>, Status> {
        let req = request.into_inner();
        let county = convert::division(&req.county, "county").map_err(|e| invalid(vec![e]))?;
        let month = convert::year_month(&req.month, "month").map_err(|e| invalid(vec![e]))?;
        let client = self.pool.get().await.map_err(db)?;
        let (_, wire) = policy_in_force(&**client, &county, month).await?;
        Ok(Response::new(pb::GetPolicyResponse { policy: Some(wire) }))
    }

    async fn assess_household(
        &self,
        request: Request<pb::AssessHouseholdRequest>,
    ) -> Result<Response<pb::AssessHouseholdResponse>, Status> {
        let req = request.into_inner();
        let household =
            req.household.clone().ok_or_else(|| invalid(vec![InvalidField::new("household", "必填项缺失")]))?;
        let submitted = convert::household(&household, "household").map_err(invalid)?;
        let month = match &req.month {
            Some(_) => convert::year_month(&req.month, "month").map_err(|e| invalid(vec![e]))?,
            None => first_of_month(self.clock.now()),
        };
        let county = submitted
            .village
            .county()
            .ok_or_else(|| invalid(vec![InvalidField::new("household.village", "无法确定所属县")]))?;
        let client = self.pool.get().await.map_err(db)?;
        let (policy, _) = policy_in_force(&**client, &county, month).await?;
        let (income, benefit) = assess(&household, &req, &policy, month).map_err(invalid)?;
        let lines = income
            .lines
            .iter()
            .map(|l| pb::AssessmentLine {
                item: l.label.clone(),
                amount: Some(l.amount.into()),
                treatment: match l.treatment {
                    Treatment::Counted => "counted",
                    Treatment::Excluded => "excluded",
                    Treatment::Deducted => "deducted",
                }
                .to_owned(),
                rule_id: l.rule.to_owned(),
            })
            .collect();
        Ok(Response::new(pb::AssessHouseholdResponse {
            per_capita_income: Some(income.per_capita.into()),
            eligible: benefit.eligible,
            monthly_amount: Some(benefit.monthly_amount.into()),
            category: convert::category_to_pb(benefit.category) as i32,
            lines,
            explanation: benefit.explanation,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn submit_application(
        &self,
        request: Request<pb::SubmitApplicationRequest>,
    ) -> Result<Response<pb::SubmitApplicationResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let mut household = req.household.ok_or_else(|| invalid(vec![InvalidField::new("household", "必填项缺失")]))?;
        // Deaths are recorded, never submitted.
        household.deceased.clear();
        let submitted = convert::household(&household, "household").map_err(invalid)?;
        validate_composition(&submitted.household, now.date()).map_err(invalid)?;
        convert::income(&req.income).map_err(invalid)?;
        convert::supporters(&req.supporters).map_err(invalid)?;
        let sig = convert::signature(&req.signature, now).map_err(invalid)?;
        check_signer(pb::ProcessStep::Application, sig.role)?;
        let county = submitted
            .village
            .county()
            .ok_or_else(|| invalid(vec![InvalidField::new("household.village", "无法确定所属县")]))?;

        let ids: Vec<String> = submitted.household.members.iter().map(|m| m.identity.as_str().to_owned()).collect();
        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        if let Some(row) = tx
            .query_opt(
                "SELECT identity_number FROM household_member WHERE live AND identity_number = ANY($1)
                 ORDER BY array_position($1, identity_number) LIMIT 1",
                &[&ids],
            )
            .await
            .map_err(db)?
        {
            let taken: String = row.get(0);
            let i = ids.iter().position(|x| *x == taken).unwrap_or(0);
            return Err(Error::FailedPrecondition(format!(
                "household.members[{i}]：该成员已在另一低保家庭中（在办或在保），配偶和未成年子女不得分户申请，同一人不得重复纳入（R-ROSTER-4）"
            ))
            .into());
        }
        let household_id = uuid::Uuid::now_v7();
        let application_id = uuid::Uuid::now_v7();
        let stored_income = pb::AssessHouseholdRequest {
            household: None,
            income: req.income,
            month: None,
            supporters: req.supporters,
            property_findings: Vec::new(),
        };
        let programme = if household.programme == 0 { Programme::Dibao as i32 } else { household.programme };
        tx.execute(
            "INSERT INTO household (household_id, county, village, status, programme, category, body, income, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &household_id,
                &county.as_str(),
                &submitted.village.as_str(),
                &(pb::HouseholdStatus::Applying as i32),
                &programme,
                &household.category,
                &household.encode_to_vec(),
                &stored_income.encode_to_vec(),
                &now,
            ],
        )
        .await
        .map_err(db)?;
        for id in &ids {
            tx.execute(
                "INSERT INTO household_member (identity_number, household_id, live) VALUES ($1, $2, true)",
                &[id, &household_id],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if c.code() == "23505" => {
                    Status::from(Error::Conflict("同一成员正被另一申请同时提交，请稍后重试".into()))
                }
                _ => db(e),
            })?;
        }
        tx.execute(
            "INSERT INTO application (application_id, household_id, next_step, status, created_at) VALUES ($1, $2, $3, 'open', $4)",
            &[&application_id, &household_id, &(pb::ProcessStep::HomeVisit as i32), &now],
        )
        .await
        .map_err(db)?;
        record_step(&*tx, application_id, pb::ProcessStep::Application, true, "", &sig, None, now).await?;
        tx.commit().await.map_err(db)?;
        tracing::info!(%application_id, %household_id, "application submitted");
        Ok(Response::new(pb::SubmitApplicationResponse {
            application_id: application_id.to_string(),
            household_id: household_id.to_string(),
        }))
    }

    #[tracing::instrument(skip_all, fields(application_id = %request.get_ref().application_id))]
    async fn sign_step(&self, request: Request<pb::SignStepRequest>) -> Result<Response<pb::SignStepResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let application_id = uuid::Uuid::parse_str(&req.application_id)
            .map_err(|_| invalid(vec![InvalidField::new("application_id", "申请编号格式不正确")]))?;
        let step = pb::ProcessStep::try_from(req.step).unwrap_or(pb::ProcessStep::Unspecified);
        if step == pb::ProcessStep::Unspecified {
            return Err(invalid(vec![InvalidField::new("step", "请指定办理步骤")]));
        }
        let sig = convert::signature(&req.signature, now).map_err(invalid)?;
        check_signer(step, sig.role)?;
        let report = req.verification_report_id.trim().to_owned();
        if step == pb::ProcessStep::Verification && req.approve && report.is_empty() {
            return Err(invalid(vec![InvalidField::new(
                "verification_report_id",
                "请填写家庭经济状况核对报告编号（R-VER-2）",
            )]));
        }

        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let app = tx
            .query_opt(
                "SELECT household_id, next_step, status, notice_started_at, verification_report_id, kind, exit_reason
                 FROM application WHERE application_id = $1 FOR UPDATE",
                &[&application_id],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| Status::from(Error::NotFound(format!("申请{application_id}不存在"))))?;
        let household_id: uuid::Uuid = app.get(0);
        let expected = pb::ProcessStep::try_from(app.get::<_, i32>(1)).unwrap_or(pb::ProcessStep::Unspecified);
        let status: String = app.get(2);
        let notice_started: Option<OffsetDateTime> = app.get(3);
        let recorded_report: Option<String> = app.get(4);
        let kind = process::Kind::from_db(app.get(5));
        let exit_reason: Option<i32> = app.get(6);
        if status != "open" {
            return Err(Error::FailedPrecondition(format!("该申请已办结（{status}），不能再办理")).into());
        }
        if step != expected {
            return Err(Error::FailedPrecondition(format!(
                "当前应办理“{}”，不能办理“{}”（R-PROC-1）",
                process::step_label(expected),
                process::step_label(step)
            ))
            .into());
        }
        let mut response = pb::SignStepResponse { next_step: step as i32, ..Default::default() };
        if kind == process::Kind::Enrol && step == pb::ProcessStep::CountyApproval && req.approve {
            if recorded_report.as_deref().unwrap_or("").is_empty() {
                return Err(Error::FailedPrecondition(
                    "该户没有有效的家庭经济状况核对报告，不能审批（R-VER-2）".into(),
                )
                .into());
            }
            let notice_ends = notice_started.map(|t| t + time::Duration::days(NOTICE_DAYS));
            if notice_ends.is_none_or(|end| now < end) {
                let until = notice_ends.map_or("公示开始后".to_owned(), |e| format!("{}", e.date()));
                return Err(Error::FailedPrecondition(format!(
                    "公示期为{NOTICE_DAYS}天，尚未期满，{until}后方可审批（R-PROC-1）"
                ))
                .into());
            }
            let open: i64 = tx
                .query_one(
                    "SELECT count(*) FROM objection o WHERE o.application_id = $1
                     AND NOT EXISTS (SELECT 1 FROM objection_resolution r WHERE r.objection_id = o.objection_id)",
                    &[&application_id],
                )
                .await
                .map_err(db)?
                .get(0);
            if open > 0 {
                return Err(Error::FailedPrecondition(format!(
                    "公示期间有{open}条异议尚未处理完毕，处理后方可审批（R-PROC-1）"
                ))
                .into());
            }
        }
        if step == pb::ProcessStep::Verification && req.approve {
            check_report(&tx, &report, &household_id.to_string()).await?;
        }
        let report_ref = (step == pb::ProcessStep::Verification).then_some(report.as_str());
        record_step(&*tx, application_id, step, req.approve, req.remarks.trim(), &sig, report_ref, now).await?;

        if !req.approve && kind == process::Kind::Exit {
            // A refused exit leaves the household as it was.
            tx.execute("UPDATE application SET status = 'refused' WHERE application_id = $1", &[&application_id])
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            response.refused = true;
            return Ok(Response::new(response));
        }
        if !req.approve {
            tx.execute("UPDATE application SET status = 'refused' WHERE application_id = $1", &[&application_id])
                .await
                .map_err(db)?;
            tx.execute(
                "UPDATE household SET status = $2, version = version + 1 WHERE household_id = $1",
                &[&household_id, &(pb::HouseholdStatus::Refused as i32)],
            )
            .await
            .map_err(db)?;
            tx.execute("UPDATE household_member SET live = false WHERE household_id = $1", &[&household_id])
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            response.refused = true;
            return Ok(Response::new(response));
        }
        let next = kind.next(step);
        if kind == process::Kind::Exit && step == pb::ProcessStep::CountyApproval {
            let reason = pb_exit_reason(exit_reason);
            self.exit(&tx, household_id, reason, now).await?;
            tx.execute(
                "UPDATE application SET next_step = $2, status = 'exited' WHERE application_id = $1",
                &[&application_id, &(next as i32)],
            )
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            response.next_step = next as i32;
            return Ok(Response::new(response));
        }
        match step {
            pb::ProcessStep::Verification => {
                tx.execute(
                    "UPDATE application SET next_step = $2, verification_report_id = $3 WHERE application_id = $1",
                    &[&application_id, &(next as i32), &report],
                )
                .await
                .map_err(db)?;
            }
            pb::ProcessStep::PublicNotice => {
                tx.execute(
                    "UPDATE application SET next_step = $2, notice_started_at = $3 WHERE application_id = $1",
                    &[&application_id, &(next as i32), &now],
                )
                .await
                .map_err(db)?;
            }
            pb::ProcessStep::CountyApproval => {
                let (amount, explanation) = self.enrol(&tx, household_id, now).await?;
                tx.execute(
                    "UPDATE application SET next_step = $2, status = 'enrolled' WHERE application_id = $1",
                    &[&application_id, &(next as i32)],
                )
                .await
                .map_err(db)?;
                // Enrolment is confirmed by the approver's signature (R-PROC-1: certificate and payment follow).
                record_step(&*tx, application_id, pb::ProcessStep::Enrolment, true, "", &sig, None, now).await?;
                response.monthly_amount = Some(amount.into());
                response.explanation = explanation;
            }
            _ => {
                tx.execute(
                    "UPDATE application SET next_step = $2 WHERE application_id = $1",
                    &[&application_id, &(next as i32)],
                )
                .await
                .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        response.next_step = next as i32;
        Ok(Response::new(response))
    }

    #[tracing::instrument(skip_all, fields(household_id = %request.get_ref().household_id))]
    async fn start_exit(
        &self,
        request: Request<pb::StartExitRequest>,
    ) -> Result<Response<pb::StartExitResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let household_id = uuid::Uuid::parse_str(&req.household_id)
            .map_err(|_| invalid(vec![InvalidField::new("household_id", "家庭编号格式不正确")]))?;
        let reason = ExitReason::try_from(req.reason).unwrap_or(ExitReason::Unspecified);
        if reason == ExitReason::Unspecified {
            return Err(invalid(vec![InvalidField::new("reason", "请选择退出原因（死亡、收入超标、迁出或自愿退出）")]));
        }
        let sig = convert::signature(&req.signature, now).map_err(invalid)?;
        check_signer(pb::ProcessStep::Exit, sig.role)?;
        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let application_id = start_exit(&tx, household_id, reason, req.remarks.trim(), &sig, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(Response::new(pb::StartExitResponse { application_id: application_id.to_string() }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_death(
        &self,
        request: Request<pb::RecordDeathRequest>,
    ) -> Result<Response<pb::RecordDeathResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let mut errors = Vec::new();
        let person = convert::identity(&req.identity_number, "identity_number").map_err(|e| errors.push(e)).ok();
        let died_on = dibao_proto::types::required(&req.died_on, "died_on")
            .and_then(|d| Date::try_from(d).map_err(|e| e.within("died_on")))
            .map_err(|e| errors.push(e))
            .ok();
        if died_on.is_some_and(|d| d > now.date()) {
            errors.push(InvalidField::new("died_on", "死亡日期不能晚于今天"));
        }
        if req.source.trim().is_empty() {
            errors.push(InvalidField::new("source", "请填写死亡信息来源（如公安死亡登记号）"));
        }
        let sig = convert::signature(&req.signature, now).map_err(|e| errors.extend(e)).ok();
        let (Some(person), Some(died_on), Some(sig), true) = (person, died_on, sig, errors.is_empty()) else {
            return Err(invalid(errors));
        };
        let mut client = self.pool.get().await.map_err(db)?;
        let tx = client.transaction().await.map_err(db)?;
        let household_id: uuid::Uuid = tx
            .query_opt(
                "SELECT household_id FROM household_member WHERE live AND identity_number = $1 FOR UPDATE",
                &[&person.as_str()],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| {
                Status::from(Error::NotFound(format!("{}不在在办或在保的低保、特困家庭中", person.masked())))
            })?
            .get(0);
        mark_deceased(
            &tx,
            &self.topic,
            person.as_str(),
            household_id,
            died_on,
            req.source.trim(),
            &sig.officer_id,
            now,
        )
        .await
        .map_err(db)?;
        let living: i64 = tx
            .query_one("SELECT count(*) FROM household_member WHERE live AND household_id = $1", &[&household_id])
            .await
            .map_err(db)?
            .get(0);
        let exit_application_id = if living == 0 {
            let open: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM application WHERE household_id = $1 AND status = 'open')",
                    &[&household_id],
                )
                .await
                .map_err(db)?
                .get(0);
            if open {
                String::new()
            } else {
                start_exit(&tx, household_id, ExitReason::Death, "家庭成员均已死亡", &sig, now).await?.to_string()
            }
        } else {
            String::new()
        };
        tx.commit().await.map_err(db)?;
        tracing::info!(%household_id, living, "death recorded");
        Ok(Response::new(pb::RecordDeathResponse { household_id: household_id.to_string(), exit_application_id }))
    }

    async fn record_objection(
        &self,
        request: Request<pb::RecordObjectionRequest>,
    ) -> Result<Response<pb::RecordObjectionResponse>, Status> {
        let req = request.into_inner();
        let now = self.clock.now();
        let sig = convert::signature(&req.signature, now).map_err(invalid)?;
        let application_id = uuid::Uuid::parse_str(&req.application_id)
            .map_err(|_| invalid(vec![InvalidField::new("application_id", "申请编号格式不正确")]))?;
        let text = req.text.trim();
        if text.is_empty() {
            return Err(invalid(vec![InvalidField::new("text", "请填写异议内容或处理结果")]));
        }
        let client = self.pool.get().await.map_err(db)?;
        if req.objection_id.is_empty() {
            let id = uuid::Uuid::now_v7();
            let inserted = client
                .execute(
                    "INSERT INTO objection (objection_id, application_id, text, recorded_by, recorded_at)
                     SELECT $1, application_id, $3, $4, $5 FROM application WHERE application_id = $2",
                    &[&id, &application_id, &text, &sig.officer_id, &now],
                )
                .await
                .map_err(db)?;
            if inserted == 0 {
                return Err(Error::NotFound(format!("申请{application_id}不存在")).into());
            }
            return Ok(Response::new(pb::RecordObjectionResponse { objection_id: id.to_string() }));
        }
        if !req.resolved {
            return Err(invalid(vec![InvalidField::new("resolved", "处理异议时应标明已处理")]));
        }
        let objection_id = uuid::Uuid::parse_str(&req.objection_id)
            .map_err(|_| invalid(vec![InvalidField::new("objection_id", "异议编号格式不正确")]))?;
        let inserted = client
            .execute(
                "INSERT INTO objection_resolution (objection_id, resolution, resolved_by, resolved_at)
                 SELECT objection_id, $3, $4, $5 FROM objection WHERE objection_id = $1 AND application_id = $2
                 ON CONFLICT (objection_id) DO NOTHING",
                &[&objection_id, &application_id, &text, &sig.officer_id, &now],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Err(Error::FailedPrecondition(format!("异议{objection_id}不存在或已处理")).into());
        }
        Ok(Response::new(pb::RecordObjectionResponse { objection_id: objection_id.to_string() }))
    }
}

fn pb_exit_reason(v: Option<i32>) -> ExitReason {
    v.and_then(|v| ExitReason::try_from(v).ok()).unwrap_or(ExitReason::Unspecified)
}

/// Opens an exit for an enrolled household and records its first signed step.
pub(crate) async fn start_exit(
    tx: &deadpool_postgres::Transaction<'_>,
    household_id: uuid::Uuid,
    reason: ExitReason,
    remarks: &str,
    sig: &convert::Signature,
    now: OffsetDateTime,
) -> Result<uuid::Uuid, Status> {
    let status: i32 = tx
        .query_opt("SELECT status FROM household WHERE household_id = $1 FOR UPDATE", &[&household_id])
        .await
        .map_err(db)?
        .ok_or_else(|| Status::from(Error::NotFound(format!("家庭{household_id}不存在"))))?
        .get(0);
    if status != pb::HouseholdStatus::Enrolled as i32 && status != pb::HouseholdStatus::GradualExit as i32 {
        return Err(Error::FailedPrecondition("只有在保家庭可以办理退出".into()).into());
    }
    let application_id = uuid::Uuid::now_v7();
    tx.execute(
        "INSERT INTO application (application_id, household_id, next_step, status, created_at, kind, exit_reason)
         VALUES ($1, $2, $3, 'open', $4, 'exit', $5)",
        &[&application_id, &household_id, &(pb::ProcessStep::HomeVisit as i32), &now, &(reason as i32)],
    )
    .await
    .map_err(|e| match e.code() {
        Some(c) if c.code() == "23505" => {
            Status::from(Error::FailedPrecondition("该户已有在办事项，办结后再办理退出".into()))
        }
        _ => db(e),
    })?;
    record_step(&**tx, application_id, pb::ProcessStep::Exit, true, remarks, sig, None, now).await?;
    Ok(application_id)
}

pub(crate) const HOUSEHOLD_COLUMNS: &str =
    "household_id, body, status, category, monthly_amount_fen, enrolled_on, version, programme";

/// Writes a household event into the outbox, in `tx`.
pub(crate) async fn publish_to(
    tx: &deadpool_postgres::Transaction<'_>,
    topic: &str,
    household_id: uuid::Uuid,
    version: i64,
    payload: Payload,
) -> Result<(), tokio_postgres::Error> {
    outbox::enqueue(
        tx,
        NewEvent {
            topic,
            aggregate_type: AGGREGATE,
            aggregate_key: &household_id.to_string(),
            aggregate_version: version,
            producer: PRODUCER,
            payload,
        },
    )
    .await
    .map(|_| ())
}

/// Records a member's death on the roster: kept with its source, the member
/// no longer live, the household's next version published as
/// `MemberDeceased` so the other roster learns it (R-SYNC-2).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn mark_deceased(
    tx: &deadpool_postgres::Transaction<'_>,
    topic: &str,
    person: &str,
    household_id: uuid::Uuid,
    died_on: Date,
    source: &str,
    recorded_by: &str,
    now: OffsetDateTime,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO member_death (identity_number, household_id, died_on, source, recorded_by, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&person, &household_id, &died_on, &source, &recorded_by, &now],
    )
    .await?;
    tx.execute(
        "UPDATE household_member SET live = false WHERE identity_number = $1 AND household_id = $2",
        &[&person, &household_id],
    )
    .await?;
    let version: i64 = tx
        .query_one(
            "UPDATE household SET version = version + 1 WHERE household_id = $1 RETURNING version",
            &[&household_id],
        )
        .await?
        .get(0);
    let payload = Payload::MemberDeceased(MemberDeceased {
        identity_number: Some(dibao_proto::common::v1::IdentityNumber { value: person.to_owned() }),
        died_on: Some(date_to_pb(died_on)),
        household_id: household_id.to_string(),
    });
    publish_to(tx, topic, household_id, version, payload).await
}

pub(crate) fn household_from_row(row: &tokio_postgres::Row) -> Result<pb::Household, Status> {
    let id: uuid::Uuid = row.get(0);
    let body: Vec<u8> = row.get(1);
    let mut household =
        pb::Household::decode(body.as_slice()).map_err(|e| db(anyhow::anyhow!("stored household {id}: {e}")))?;
    household.household_id = id.to_string();
    household.status = row.get(2);
    household.category = row.get(3);
    household.monthly_amount = Some(Money { fen: row.get(4) });
    household.enrolled_on = row.get::<_, Option<Date>>(5).map(date_to_pb);
    household.version = row.get(6);
    household.programme = row.get(7);
    Ok(household)
}

/// Streams one consistent snapshot (a repeatable-read transaction) of the
/// division's households, each message carrying the outbox position the
/// snapshot reflects.
async fn export(
    pool: Pool,
    division: DivisionCode,
    now: OffsetDateTime,
    out: &tokio::sync::mpsc::Sender<Result<pb::ExportRosterResponse, Status>>,
) -> Result<(), Status> {
    use futures_util::TryStreamExt;
    let mut client = pool.get().await.map_err(db)?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db)?;
    let position: i64 = tx.query_one("SELECT coalesce(max(id), 0) FROM outbox", &[]).await.map_err(db)?.get(0);
    let snapshot_at = Some(outbox::timestamp_of(now));
    let sql = format!(
        "SELECT {HOUSEHOLD_COLUMNS},
                array(SELECT identity_number FROM member_death d WHERE d.household_id = household.household_id ORDER BY 1)
         FROM household WHERE village LIKE $1 || '%' ORDER BY household_id"
    );
    let prefix = division.prefix().to_owned();
    let rows = tx.query_raw(&sql, [&prefix]).await.map_err(db)?;
    futures_util::pin_mut!(rows);
    while let Some(row) = rows.try_next().await.map_err(db)? {
        let mut household = household_from_row(&row)?;
        let deceased: Vec<String> = row.get(HOUSEHOLD_COLUMNS.split(',').count());
        household.deceased =
            deceased.into_iter().map(|value| dibao_proto::common::v1::IdentityNumber { value }).collect();
        let message = pb::ExportRosterResponse { household: Some(household), snapshot_position: position, snapshot_at };
        if out.send(Ok(message)).await.is_err() {
            // The caller hung up; nothing more to do.
            return Ok(());
        }
    }
    Ok(())
}

/// The verification step accepts only a report the hub completed for this
/// household and published (R-VER-2); its events fill `verification_report`.
async fn check_report(
    tx: &deadpool_postgres::Transaction<'_>,
    report_id: &str,
    household_id: &str,
) -> Result<(), Status> {
    let row = tx
        .query_opt(
            "SELECT household_id, complete FROM verification_report WHERE report_id = $1 ORDER BY version DESC LIMIT 1",
            &[&report_id],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else {
        return Err(Error::FailedPrecondition(format!(
            "核对平台的报告“{report_id}”尚未送达民政系统：请核实报告编号；核对刚完成的，请稍候再办理（R-VER-2）"
        ))
        .into());
    };
    let (of, complete): (String, bool) = (row.get(0), row.get(1));
    if of != household_id {
        return Err(Error::FailedPrecondition(format!("核对报告“{report_id}”核对的不是本申请的家庭（R-VER-2）")).into());
    }
    if !complete {
        return Err(Error::FailedPrecondition(format!(
            "核对报告“{report_id}”不完整（部分部门未应答或未能对照县级政策），请重新核对后再办理（R-VER-2）"
        ))
        .into());
    }
    Ok(())
}

fn check_signer(step: pb::ProcessStep, role: OfficerRole) -> Result<(), Status> {
    let allowed = process::signers(step);
    if allowed.contains(&role) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|r| process::role_label(*r)).collect();
    Err(invalid(vec![InvalidField::new(
        "signature.role",
        format!("“{}”应由{}签署，不能由{}签署", process::step_label(step), names.join("或"), process::role_label(role)),
    )]))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_step(
    tx: &impl GenericClient,
    application_id: uuid::Uuid,
    step: pb::ProcessStep,
    approve: bool,
    remarks: &str,
    sig: &convert::Signature,
    report: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), Status> {
    tx.execute(
        "INSERT INTO application_step (application_id, step, approve, remarks, officer_id, officer_name, role, division,
                                       signed_at, recorded_at, verification_report_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &application_id,
            &(step as i32),
            &approve,
            &remarks,
            &sig.officer_id,
            &sig.officer_name,
            &(sig.role as i32),
            &sig.division.as_str(),
            &sig.signed_at,
            &now,
            &report,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

enum Imported {
    Applied,
    Unchanged,
}

enum RowFailure {
    /// The row is wrong; nothing of it was applied.
    Rejected(Vec<InvalidField>),
    /// The service could not work (database down): the import stops here.
    Failed(Status),
}

impl From<Status> for RowFailure {
    fn from(s: Status) -> Self {
        RowFailure::Failed(s)
    }
}

impl From<Vec<InvalidField>> for RowFailure {
    fn from(e: Vec<InvalidField>) -> Self {
        RowFailure::Rejected(e)
    }
}

impl CivilAffairs {
    /// Applies one roster row in its own transaction: the household whole,
    /// or nothing. A row equal to what is stored changes nothing.
    /// Applies one roster row inside `tx` (a savepoint of the import's batch).
    async fn import_row(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        row: &pb::ImportRosterRequest,
    ) -> Result<Imported, RowFailure> {
        let now = self.clock.now();
        let reject = |field: &str, reason: &str| RowFailure::Rejected(vec![InvalidField::new(field, reason)]);
        let h = row.household.as_ref().ok_or_else(|| reject("household", "必填项缺失"))?;
        let source_id = h.household_id.trim().to_owned();
        if source_id.is_empty() {
            return Err(reject("household.household_id", "请填写花名册中的户编号"));
        }
        let submitted = convert::household(h, "household")?;
        validate_composition(&submitted.household, now.date())?;
        let category =
            submitted.category.ok_or_else(|| reject("household.category", "请填写保障类别（A类、B类或C类）"))?;
        let amount = convert::money(&h.monthly_amount, "household.monthly_amount").map_err(|e| vec![e])?;
        let enrolled_on = match &h.enrolled_on {
            Some(d) => Date::try_from(d).map_err(|e| vec![e.within("household.enrolled_on")])?,
            None => now.date(),
        };
        let county = submitted.village.county().ok_or_else(|| reject("household.village", "无法确定所属县"))?;
        // What is stored in `body`: the household as given, identity numbers
        // in canonical form, without the fields kept in columns.
        let mut canonical = h.clone();
        canonical.household_id.clear();
        canonical.status = 0;
        canonical.category = 0;
        canonical.monthly_amount = None;
        canonical.enrolled_on = None;
        canonical.version = 0;
        canonical.deceased.clear();
        for (m, parsed) in canonical.members.iter_mut().zip(&submitted.household.members) {
            if let Some(p) = m.person.as_mut() {
                p.identity_number =
                    Some(dibao_proto::common::v1::IdentityNumber { value: parsed.identity.as_str().to_owned() });
            }
        }
        let body = canonical.encode_to_vec();
        let category = convert::category_to_pb(category) as i32;
        let programme = if h.programme == 0 { Programme::Dibao as i32 } else { h.programme };
        let ids: Vec<String> = submitted.household.members.iter().map(|m| m.identity.as_str().to_owned()).collect();

        // Statements prepared once per connection: an import runs them per household.
        let statement = |sql: &'static str| async move { tx.prepare_cached(sql).await.map_err(db) };
        let (find, clash) = futures_util::try_join!(
            statement(
                "SELECT household_id, body, category, monthly_amount_fen, version, status FROM household
                 WHERE county = $1 AND source_id = $2 FOR UPDATE",
            ),
            statement(
                "SELECT identity_number FROM household_member
                 WHERE live AND identity_number = ANY($1)
                   AND household_id NOT IN (SELECT household_id FROM household WHERE county = $2 AND source_id = $3)
                 ORDER BY array_position($1, identity_number) LIMIT 1",
            ),
        )?;
        // Both lookups in one round trip (the connection pipelines them).
        let county_code = county.as_str();
        let find_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&county_code, &source_id];
        let clash_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&ids, &county_code, &source_id];
        let (existing, clash) =
            futures_util::try_join!(tx.query_opt(&find, &find_params), tx.query_opt(&clash, &clash_params),)
                .map_err(db)?;
        if let Some(clash) = clash {
            let taken: String = clash.get(0);
            let i = ids.iter().position(|x| *x == taken).unwrap_or(0);
            return Err(reject(
                &format!("household.members[{i}].person.identity_number"),
                "该成员已在另一低保家庭中，同一人不得重复纳入，配偶和未成年子女不得分户（R-ROSTER-4）",
            ));
        }
        let covered: Vec<dibao_proto::types::IdentityNumber> = submitted.covered.clone();
        let Some(existing) = existing else {
            let household_id = uuid::Uuid::now_v7();
            let no_income = pb::AssessHouseholdRequest::default().encode_to_vec();
            tx.execute(
                &statement(
                    "INSERT INTO household (household_id, county, village, status, programme, category,
                                            monthly_amount_fen, enrolled_on, body, income, created_at, source_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .await?,
                &[
                    &household_id,
                    &county.as_str(),
                    &submitted.village.as_str(),
                    &(pb::HouseholdStatus::Enrolled as i32),
                    &programme,
                    &category,
                    &amount.0,
                    &enrolled_on,
                    &body,
                    &no_income,
                    &now,
                    &source_id,
                ],
            )
            .await
            .map_err(db)?;
            tx.execute(
                &statement(
                    "INSERT INTO household_member (identity_number, household_id, live)
                     SELECT unnest($1::text[]), $2, true",
                )
                .await?,
                &[&ids, &household_id],
            )
            .await
            .map_err(db)?;
            self.publish(
                tx,
                household_id,
                1,
                Payload::HouseholdEnrolled(HouseholdEnrolled {
                    household_id: household_id.to_string(),
                    village: Some(dibao_proto::common::v1::DivisionCode {
                        code: submitted.village.as_str().to_owned(),
                    }),
                    programme,
                    category,
                    members: roster_members(&canonical, &covered),
                    monthly_amount: Some(amount.into()),
                    effective_from: Some(date_to_pb(enrolled_on)),
                }),
            )
            .await?;
            return Ok(Imported::Applied);
        };
        let household_id: uuid::Uuid = existing.get(0);
        let old_body: Vec<u8> = existing.get(1);
        let old_category: i32 = existing.get(2);
        let old_amount: i64 = existing.get(3);
        let mut version: i64 = existing.get(4);
        let status: i32 = existing.get(5);
        let enrolled = status == pb::HouseholdStatus::Enrolled as i32;
        if old_body == body && old_category == category && old_amount == amount.0 && enrolled {
            return Ok(Imported::Unchanged);
        }
        let reason = "花名册导入更新".to_owned();
        let mut events = Vec::new();
        if old_body != body {
            events.push(Payload::HouseholdCompositionChanged(dibao_proto::events::v1::HouseholdCompositionChanged {
                household_id: household_id.to_string(),
                members: roster_members(&canonical, &covered),
                reason: reason.clone(),
            }));
        }
        if old_category != category {
            events.push(Payload::HouseholdCategoryChanged(dibao_proto::events::v1::HouseholdCategoryChanged {
                household_id: household_id.to_string(),
                category,
            }));
        }
        if old_amount != amount.0 {
            events.push(Payload::HouseholdAmountChanged(HouseholdAmountChanged {
                household_id: household_id.to_string(),
                monthly_amount: Some(amount.into()),
                effective_month: Some(YearMonth { year: now.year(), month: i32::from(now.month() as u8) }),
                reason: reason.clone(),
            }));
            tx.execute(
                "INSERT INTO amount_change (household_id, from_fen, to_fen, effective_month, reason, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&household_id, &old_amount, &amount.0, &first_of_month(now), &reason, &now],
            )
            .await
            .map_err(db)?;
        }
        tx.execute(
            "UPDATE household_member SET live = false WHERE household_id = $1 AND NOT (identity_number = ANY($2))",
            &[&household_id, &ids],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "INSERT INTO household_member (identity_number, household_id, live)
             SELECT unnest($1::text[]), $2, true
             ON CONFLICT (identity_number, household_id) DO UPDATE SET live = true",
            &[&ids, &household_id],
        )
        .await
        .map_err(db)?;
        for payload in events {
            version += 1;
            self.publish(tx, household_id, version, payload).await?;
        }
        tx.execute(
            "UPDATE household SET body = $2, category = $3, monthly_amount_fen = $4, status = $5, village = $6,
                                  enrolled_on = coalesce(enrolled_on, $7), version = $8
             WHERE household_id = $1",
            &[
                &household_id,
                &body,
                &category,
                &amount.0,
                &(pb::HouseholdStatus::Enrolled as i32),
                &submitted.village.as_str(),
                &enrolled_on,
                &version,
            ],
        )
        .await
        .map_err(db)?;
        Ok(Imported::Applied)
    }

    pub(crate) async fn publish(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        household_id: uuid::Uuid,
        version: i64,
        payload: Payload,
    ) -> Result<(), Status> {
        publish_to(tx, &self.topic, household_id, version, payload).await.map_err(db)
    }

    /// County approval of an exit: the household leaves the roster.
    pub(crate) async fn exit(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        household_id: uuid::Uuid,
        reason: ExitReason,
        now: OffsetDateTime,
    ) -> Result<(), Status> {
        let version: i64 = tx
            .query_one(
                "UPDATE household SET status = $2, monthly_amount_fen = 0, version = version + 1
                 WHERE household_id = $1 RETURNING version",
                &[&household_id, &(pb::HouseholdStatus::Exited as i32)],
            )
            .await
            .map_err(db)?
            .get(0);
        let members: Vec<String> = tx
            .query(
                "SELECT identity_number FROM household_member WHERE household_id = $1 ORDER BY identity_number",
                &[&household_id],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.execute("UPDATE household_member SET live = false WHERE household_id = $1", &[&household_id])
            .await
            .map_err(db)?;
        let payload = Payload::HouseholdExited(HouseholdExited {
            household_id: household_id.to_string(),
            reason: reason as i32,
            exited_on: Some(date_to_pb(now.date())),
            members: members.into_iter().map(|value| dibao_proto::common::v1::IdentityNumber { value }).collect(),
        });
        self.publish(tx, household_id, version, payload).await?;
        tracing::info!(%household_id, ?reason, "household exited");
        Ok(())
    }

    /// County approval: assess under the policy in force, enrol, publish.
    async fn enrol(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        household_id: uuid::Uuid,
        now: OffsetDateTime,
    ) -> Result<(Fen, String), Status> {
        let row = tx
            .query_one("SELECT body, income, county, village, programme, version FROM household WHERE household_id = $1 FOR UPDATE", &[&household_id])
            .await
            .map_err(db)?;
        let body: Vec<u8> = row.get(0);
        let income: Vec<u8> = row.get(1);
        let county = DivisionCode::parse(row.get(2)).map_err(|e| db(anyhow::anyhow!("stored county: {e}")))?;
        let village: String = row.get(3);
        let programme: i32 = row.get(4);
        let version: i64 = row.get(5);
        let household = pb::Household::decode(body.as_slice()).map_err(|e| db(anyhow::anyhow!("{e}")))?;
        let stored = pb::AssessHouseholdRequest::decode(income.as_slice()).map_err(|e| db(anyhow::anyhow!("{e}")))?;
        let month = first_of_month(now);
        let (policy, _) = policy_in_force(&**tx, &county, month).await?;
        let (_, benefit) = assess(&household, &stored, &policy, month).map_err(invalid)?;
        if !benefit.eligible {
            return Err(Error::FailedPrecondition(format!(
                "按现行政策该户不符合低保条件，不能审批：{}",
                benefit.explanation
            ))
            .into());
        }
        let category = convert::category_to_pb(benefit.category) as i32;
        tx.execute(
            "UPDATE household SET status = $2, category = $3, monthly_amount_fen = $4, enrolled_on = $5, version = version + 1
             WHERE household_id = $1",
            &[&household_id, &(pb::HouseholdStatus::Enrolled as i32), &category, &benefit.monthly_amount.0, &now.date()],
        )
        .await
        .map_err(db)?;
        let payload = Payload::HouseholdEnrolled(HouseholdEnrolled {
            household_id: household_id.to_string(),
            village: Some(dibao_proto::common::v1::DivisionCode { code: village }),
            programme,
            category,
            members: roster_members(&household, &benefit.covered),
            monthly_amount: Some(benefit.monthly_amount.into()),
            effective_from: Some(date_to_pb(now.date())),
        });
        self.publish(tx, household_id, version + 1, payload).await?;
        tracing::info!(%household_id, amount_fen = benefit.monthly_amount.0, "household enrolled");
        Ok((benefit.monthly_amount, benefit.explanation))
    }
}
