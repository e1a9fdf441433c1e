//! Reviews (R-REV-1): who is due when, the signed review that raises, lowers
//! or stops the benefit, and the gradual exits (R-BEN-4) it starts, stepped
//! down month by month by [`step_gradual_exits`].

use std::collections::HashMap;

use dibao_benefit_engine::benefit::gradual_exit;
use dibao_benefit_engine::policy::{CountyPolicy, ExitStep};
use dibao_platform::Error;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::{add_months, china_date};
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::trust::officer::{Officer, digest};
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{OfficerRole, Relation};
use dibao_proto::events::v1::PovertyCause;
use dibao_proto::events::v1::{ExitReason, HouseholdCategoryChanged, Programme, event_envelope::Payload};
use dibao_proto::labels::Label;
use dibao_proto::poverty_alleviation::v1::PovertyStatus;
use dibao_proto::types::{DivisionCode, DivisionLevel, Fen, InvalidField, date_to_pb};
use prost::Message;
use time::Date;
use uuid::Uuid;

use crate::application::{self, Signer};
use crate::convert;
use crate::households::{self, AmountChange, Roster, first_of_month};
use crate::policy;
use crate::report_gate;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("只有在保家庭需要复核；渐退期或已退出的家庭不再复核")]
    NotEnrolled,
    #[error(
        "复核结果为维持或提高保障金（{from}→{to}），须附上次复核（{since}）后完成的家庭经济状况核对报告（verification_report_id，R-VER-5）"
    )]
    NoFreshReport { from: Fen, to: Fen, since: Date },
    #[error("核对报告“{report}”完成于{completed}，不晚于上次复核（{since}），须重新核对（R-VER-5）")]
    ReportBeforeLastReview { report: String, completed: Date, since: Date },
}

impl Refusal for ReviewError {
    fn kind(&self) -> RefusalKind {
        RefusalKind::FailedPrecondition
    }

    fn reason(&self) -> &'static str {
        match self {
            ReviewError::NotEnrolled => "NOT_UNDER_REVIEW",
            ReviewError::NoFreshReport { .. } => "REVIEW_NEEDS_REPORT",
            ReviewError::ReportBeforeLastReview { .. } => "REPORT_BEFORE_LAST_REVIEW",
        }
    }
}

/// Whole months from `from` to `to` (both taken by their month).
fn months_between(from: Date, to: Date) -> i32 {
    (to.year() - from.year()) * 12 + i32::from(to.month() as u8) - i32::from(from.month() as u8)
}

/// How often a household is reviewed, and why (R-REV-1): full-support
/// households (category A, special hardship) yearly; households with members
/// able to work, whose income is unstable, every six months; the others
/// yearly, the longest interval the policy allows.
pub fn review_interval(h: &pb::Household, policy: Option<&CountyPolicy>) -> (u32, &'static str) {
    let (full, unstable) = policy.map_or((12, 6), |p| (p.full_support_review_months, p.unstable_income_review_months));
    let able = h
        .members
        .iter()
        .any(|m| m.work_ability == pb::WorkAbility::Full as i32 || m.work_ability == pb::WorkAbility::Partial as i32);
    if h.programme == Programme::SpecialHardship as i32 {
        (full, "特困供养人员定期复核（R-REV-1）")
    } else if h.category == dibao_proto::events::v1::BenefitCategory::A as i32 {
        (full, "A类（全额保障）家庭定期复核（R-REV-1）")
    } else if able {
        (unstable, "收入不稳定、有劳动能力成员的家庭定期复核（R-REV-1）")
    } else {
        (full, "在保家庭定期复核（R-REV-1）")
    }
}

/// Returns to poverty that make a household a priority candidate (R-REV-2).
const PRIORITY_CAUSES: [PovertyCause; 3] =
    [PovertyCause::Illness, PovertyCause::Disability, PovertyCause::SuddenHardship];

/// "因病返贫", "因突发困难返贫": a return to poverty and its cause, as the list says it.
fn returned_for(cause: i32) -> String {
    match PovertyCause::try_from(cause) {
        Ok(c @ (PovertyCause::Illness | PovertyCause::Disability)) => format!("{}返贫", c.label()),
        Ok(c @ PovertyCause::SuddenHardship) => format!("因{}返贫", c.label()),
        _ => "因其他原因返贫".to_owned(),
    }
}

fn step_name(s: ExitStep) -> &'static str {
    match s {
        ExitStep::Monthly => "monthly",
        ExitStep::Quarterly => "quarterly",
    }
}

fn step_of(s: &str) -> ExitStep {
    if s == "quarterly" { ExitStep::Quarterly } else { ExitStep::Monthly }
}

/// The households of a township due for review by `as_of`: priority
/// candidates first (R-REV-2), then the longest overdue.
pub async fn reviews_due(
    roster: &Roster,
    reader: &Reader,
    req: pb::ListReviewsDueRequest,
) -> Result<pb::ListReviewsDueResponse, Error> {
    let mut errors = Vec::new();
    let township = convert::division(&req.township, "township").map_err(|e| errors.push(e)).ok();
    if township.as_ref().is_some_and(|t| t.level() != DivisionLevel::Township) {
        errors.push(InvalidField::new("township", "应填写9位乡镇级行政区划代码"));
    }
    // Outside the jurisdiction: refused before anything else is said.
    if let Some(t) = &township {
        reader.must_cover(t, "township")?;
    }
    let as_of = match &req.as_of {
        Some(d) => Date::try_from(d).map_err(|e| errors.push(e.within("as_of"))).ok(),
        None => Some(china_date(roster.clock.now())),
    };
    let page = req.page.unwrap_or_default();
    if !(0..=1000).contains(&page.page_size) {
        errors.push(InvalidField::new("page.page_size", "每页条数应在1到1000之间"));
    }
    let offset = match page.page_token.as_str() {
        "" => Some(0usize),
        t => t.parse().map_err(|_| errors.push(InvalidField::new("page.page_token", "翻页标记无效"))).ok(),
    };
    let (Some(township), Some(as_of), Some(offset), true) = (township, as_of, offset, errors.is_empty()) else {
        return Err(Error::InvalidArgument(errors));
    };
    let size = if page.page_size == 0 { 100 } else { page.page_size.unsigned_abs() as usize };
    let client = roster.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {}, village, last_reviewed_on FROM household
                     WHERE village LIKE $1 || '%' AND status = $2",
                households::COLUMNS
            ),
            &[&township.prefix(), &(pb::HouseholdStatus::Enrolled as i32)],
        )
        .await?;
    let policy = match township.county() {
        Some(county) => policy::in_force(&**client, &county, first_of_month(roster.clock.now())).await.ok(),
        None => None,
    };
    // Priority candidates from the poverty roster (R-REV-2): households
    // that returned to poverty for illness, disability or sudden hardship.
    let returned = client
        .query(
            "SELECT p.poor_household_id, p.household_number, p.village, p.return_cause, p.returned_on, p.head_name,
                        p.head_identity,
                        array(SELECT DISTINCT m.household_id FROM poverty_member pm
                              JOIN household_member m ON m.identity_number = pm.identity_number AND m.live
                              WHERE pm.poor_household_id = p.poor_household_id) AS on_dibao
                 FROM poverty_household p
                 WHERE p.village LIKE $1 || '%' AND p.status = $2 AND p.return_cause = ANY($3)
                 ORDER BY p.poor_household_id",
            &[&township.prefix(), &(PovertyStatus::Returned as i32), &PRIORITY_CAUSES.map(|c| c as i32).to_vec()],
        )
        .await?;
    let mut priority: HashMap<String, (String, Option<Date>)> = HashMap::new();
    let mut due = Vec::new();
    for row in &returned {
        let returned = returned_for(row.get("return_cause"));
        let returned_on: Option<Date> = row.get("returned_on");
        let on_dibao: Vec<Uuid> = row.get("on_dibao");
        if on_dibao.is_empty() {
            // Not on the dibao roster: a candidate for the next adjustment.
            due.push(pb::ReviewDue {
                household_id: String::new(),
                due_on: returned_on.map(date_to_pb),
                priority: true,
                // By the poverty office's household number, never the internal id.
                reason: format!(
                    "建档立卡户{}{returned}，不在低保名单中：下次低保调整时优先审核（R-REV-2）",
                    match row.get::<_, String>("household_number") {
                        n if n.is_empty() => String::new(),
                        n => format!("（户编号{n}）"),
                    }
                ),
                head: Some(dibao_proto::common::v1::Person {
                    identity_number: Some(dibao_proto::common::v1::IdentityNumber { value: row.get("head_identity") }),
                    name: row.get("head_name"),
                    ..Default::default()
                }),
                village: Some(dibao_proto::common::v1::DivisionCode { code: row.get("village") }),
                household_number: row.get("household_number"),
                ..Default::default()
            });
        }
        for id in on_dibao {
            priority.insert(id.to_string(), (format!("{returned}，优先复核（R-REV-2）"), returned_on));
        }
    }
    for row in &rows {
        let h = households::household_of(row)?;
        let village: String = row.get("village");
        let last: Option<Date> = row.get("last_reviewed_on");
        let Some(since) = last.or(h.enrolled_on.as_ref().and_then(|d| Date::try_from(d).ok())) else { continue };
        let (months, reason) = review_interval(&h, policy.as_ref().map(|(p, _)| p));
        let mut due_on = add_months(since, months);
        // A return to poverty after the last review makes the household due now.
        let prioritised =
            priority.get(&h.household_id).filter(|(_, on)| last.is_none_or(|l| on.is_none_or(|on| on > l)));
        if let Some((_, on)) = prioritised {
            due_on = due_on.min(on.unwrap_or(as_of));
        }
        if due_on > as_of {
            continue;
        }
        let reason = prioritised.map_or(reason, |(r, _)| r.as_str());
        let head = h
            .members
            .iter()
            .find(|m| m.relation == Relation::Head as i32)
            .or(h.members.first())
            .and_then(|m| m.person.clone());
        due.push(pb::ReviewDue {
            household_id: h.household_id.clone(),
            due_on: Some(date_to_pb(due_on)),
            priority: prioritised.is_some(),
            reason: reason.to_owned(),
            head,
            village: Some(dibao_proto::common::v1::DivisionCode { code: village }),
            programme: h.programme,
            category: h.category,
            last_reviewed_on: last.map(date_to_pb),
            household_number: h.household_number.clone(),
        });
    }
    // Priority candidates first (R-REV-2), then the longest overdue.
    due.sort_by(|a, b| {
        (!a.priority, a.due_on.as_ref().map(|d| (d.year, d.month, d.day)), &a.household_id).cmp(&(
            !b.priority,
            b.due_on.as_ref().map(|d| (d.year, d.month, d.day)),
            &b.household_id,
        ))
    });
    let total = due.len();
    let mut reviews: Vec<_> = due.into_iter().skip(offset).take(size).collect();
    // The heads listed are personal data: read on the record, masked unless the role handles cases.
    let heads: Vec<String> =
        reviews.iter().filter_map(|r| r.head.as_ref()?.identity_number.as_ref().map(|i| i.value.clone())).collect();
    roster.log.record_all(heads.iter().map(|p| reader.entry(p, "查阅复核名单")).collect()).await?;
    if !reader.sees_in_full(households::FULL_DETAIL) {
        for id in reviews.iter_mut().filter_map(|r| r.head.as_mut()?.identity_number.as_mut()) {
            id.value = dibao_proto::types::IdentityNumber::parse(&id.value).map(|i| i.masked()).unwrap_or_default();
        }
    }
    let next = offset + reviews.len();
    Ok(pb::ListReviewsDueResponse {
        reviews,
        page: Some(dibao_proto::common::v1::PageResponse {
            next_page_token: if next < total { next.to_string() } else { String::new() },
        }),
    })
}

/// A signed review (R-REV-1): the household assessed again on the income
/// found, its benefit kept, raised, lowered, stepped down (R-BEN-4) or its
/// exit started.
pub async fn review(
    roster: &Roster,
    officer: &Officer,
    req: pb::RecordReviewRequest,
) -> Result<pb::RecordReviewResponse, Error> {
    let now = roster.clock.now();
    let mut errors = Vec::new();
    let household_id = Uuid::parse_str(&req.household_id)
        .map_err(|_| errors.push(InvalidField::new("household_id", "家庭编号格式不正确")))
        .ok();
    let signer = Signer::among(officer, &[OfficerRole::TownshipCaseworker, OfficerRole::TownshipReviewer]);
    convert::income(&req.income).map_err(|e| errors.extend(e)).ok();
    convert::supporters(&req.supporters).map_err(|e| errors.extend(e)).ok();
    let (Some(household_id), true) = (household_id, errors.is_empty()) else {
        return Err(Error::InvalidArgument(errors));
    };
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let row = households::lock(&tx, household_id).await?;
    let household = households::household_of(&row)?;
    // To an officer of another division, the household is not there.
    if !officer.covers(&households::village_of(&household)?) {
        return Err(households::HouseholdError::NotFound(household_id).into());
    }
    if application::own_household(&tx, officer, household_id).await? {
        drop(tx);
        let refusal = application::ProcessError::OwnHousehold;
        application::record_refused(roster, officer, None, Some(household_id), &refusal).await?;
        return Err(refusal.into());
    }
    if household.status != pb::HouseholdStatus::Enrolled as i32 {
        return Err(ReviewError::NotEnrolled.into());
    }
    let county = DivisionCode::parse(row.get("county"))
        .map_err(|e| Error::stored(format!("county of household {household_id}: {e}")))?;
    let old = Fen(household.monthly_amount.as_ref().map_or(0, |m| m.fen));
    let month = first_of_month(now);
    let (policy, wire) = policy::in_force(&*tx, &county, month).await?;
    // Since when a report must be new: the previous review, else the enrolment.
    let since: Date = tx
        .query_one(
            "SELECT coalesce(last_reviewed_on, enrolled_on) FROM household WHERE household_id = $1",
            &[&household_id],
        )
        .await?
        .get(0);
    let report = match req.verification_report_id.trim() {
        "" => None,
        report_id => {
            let against = report_gate::Against {
                household_id,
                household: &household,
                county: &county,
                policy: &wire,
                signed_version: None,
                now,
            };
            let report = roster.reports.check(report_id, &against).await?;
            let completed = china_date(report_gate::completed_at(&report));
            if completed <= since {
                return Err(
                    ReviewError::ReportBeforeLastReview { report: report_id.to_owned(), completed, since }.into()
                );
            }
            Some(report)
        }
    };
    let mut property_findings = req.property_findings;
    property_findings.extend(report.as_ref().map(report_gate::property_findings).unwrap_or_default());
    let stored = pb::AssessHouseholdRequest {
        household: None,
        income: req.income,
        month: None,
        supporters: req.supporters,
        property_findings,
    };
    // What the departments certify at this review replaces what was typed
    // (R-VER-3, R-INC-3): a certificate lapsed or issued since, this year's
    // medical spending.
    let (household, stored, certified) = match &report {
        Some(r) => {
            let c = report_gate::certify(r, &household, &stored, china_date(now));
            if c.changed() {
                households::certify(&tx, &row, &c.household.members, &c.income).await?;
            }
            (c.household, c.income, c.lines)
        }
        None => (household, stored, Vec::new()),
    };
    let (income, benefit) = policy::assess(&household, &stored, &policy, month)?;
    // Keeping or raising the money stands on the departments' records, not
    // on what was declared at the door (R-VER-5).
    if benefit.eligible && benefit.monthly_amount >= old && report.is_none() {
        return Err(ReviewError::NoFreshReport { from: old, to: benefit.monthly_amount, since }.into());
    }
    let today = china_date(now);
    let mut version = household.version;
    let mut exit_application_id = String::new();
    let (outcome, amount, explanation) = if benefit.eligible {
        let outcome = match benefit.monthly_amount.cmp(&old) {
            std::cmp::Ordering::Equal => pb::ReviewOutcome::Unchanged,
            std::cmp::Ordering::Greater => pb::ReviewOutcome::Raised,
            std::cmp::Ordering::Less => pb::ReviewOutcome::Lowered,
        };
        let category = convert::category_to_pb(benefit.category) as i32;
        if outcome != pb::ReviewOutcome::Unchanged || category != household.category {
            version += 1;
            tx.execute(
                "UPDATE household SET monthly_amount_fen = $2, category = $3, version = $4 WHERE household_id = $1",
                &[&household_id, &benefit.monthly_amount.0, &category, &version],
            )
            .await?;
        }
        if category != household.category {
            let payload = Payload::HouseholdCategoryChanged(HouseholdCategoryChanged {
                household_id: household_id.to_string(),
                category,
            });
            households::publish(&tx, &roster.topic, household_id, version, payload).await?;
        }
        if outcome != pb::ReviewOutcome::Unchanged {
            let reason = format!("复核：月保障金由{old}调整为{}", benefit.monthly_amount);
            let change = AmountChange {
                household_id,
                from: old,
                to: benefit.monthly_amount,
                month,
                reason: &reason,
                version,
                now,
            };
            households::record_amount_change(&tx, &roster.topic, &change).await?;
        } else if category != household.category {
            crate::certificates::reissue(&tx, household_id, "复核：保障类别调整", now).await?;
        }
        (outcome, benefit.monthly_amount, benefit.explanation)
    } else {
        let engine_household = convert::household(&household, "household")?.household;
        match gradual_exit(&engine_household, &income, old, &policy) {
            // Month 1 of the exit pays the full base amount; ApplyMonth steps it down.
            Some(exit) => {
                version += 1;
                tx.execute(
                    "UPDATE household SET status = $2, version = $3, gradual_exit_from = $4, gradual_exit_months = $5,
                                gradual_exit_step = $6, gradual_exit_base_fen = $7
                         WHERE household_id = $1",
                    &[
                        &household_id,
                        &(pb::HouseholdStatus::GradualExit as i32),
                        &version,
                        &month,
                        &i32::try_from(exit.months).unwrap_or(24),
                        &step_name(exit.step),
                        &old.0,
                    ],
                )
                .await?;
                (pb::ReviewOutcome::GradualExit, old, format!("{}\n{}", benefit.explanation, exit.explanation))
            }
            None => {
                let remarks = format!("复核认定不再符合低保条件，启动退出：{}", req.remarks);
                let app = application::open_exit(&tx, household_id, ExitReason::Income, &remarks, &signer, now).await?;
                exit_application_id = app.to_string();
                let explanation = format!(
                    "{}\n已启动退出程序（入户调查、乡镇审核、县级审批），审批前继续按原标准{old}发放。",
                    benefit.explanation
                );
                (pb::ReviewOutcome::ExitStarted, old, explanation)
            }
        }
    };
    let explanation = if certified.is_empty() {
        explanation
    } else {
        format!("按部门记录认定：\n{}\n{explanation}", certified.join("\n"))
    };
    tx.execute(
        "UPDATE household SET income = $2, last_reviewed_on = $3 WHERE household_id = $1",
        &[&household_id, &stored.encode_to_vec(), &today],
    )
    .await?;
    tx.execute(
        "INSERT INTO household_review (review_id, household_id, reviewed_on, outcome, from_fen, to_fen, explanation,
                                           remarks, officer_id, officer_name, role, division, signed_at, recorded_at,
                                           assertion_id, issuer, digest, verification_report_id, verification_report_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        &[
            &Uuid::now_v7(),
            &household_id,
            &today,
            &(outcome as i32),
            &old.0,
            &amount.0,
            &explanation,
            &req.remarks,
            &officer.officer_id,
            &officer.name,
            &(signer.role as i32),
            &officer.division.as_str(),
            &now,
            &now,
            &officer.assertion_id,
            &officer.issuer,
            &digest(&[
                household_id.as_bytes(),
                b"REVIEW",
                &stored.encode_to_vec(),
                req.remarks.as_bytes(),
                req.verification_report_id.trim().as_bytes(),
                &report.as_ref().map_or(0, |r| r.version).to_be_bytes(),
            ]),
            &report.as_ref().map(|r| r.report_id.as_str()),
            &report.as_ref().map(|r| r.version),
        ],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%household_id, ?outcome, from_fen = old.0, to_fen = amount.0, "review recorded");
    let next_due_on = match outcome {
        pb::ReviewOutcome::Unchanged | pb::ReviewOutcome::Raised | pb::ReviewOutcome::Lowered => {
            let mut reviewed = household.clone();
            reviewed.category = convert::category_to_pb(benefit.category) as i32;
            Some(date_to_pb(add_months(today, review_interval(&reviewed, Some(&policy)).0)))
        }
        _ => None,
    };
    Ok(pb::RecordReviewResponse {
        outcome: outcome as i32,
        monthly_amount: Some(amount.into()),
        explanation,
        exit_application_id,
        next_due_on,
    })
}

/// Steps every gradual exit of the county to `month` (R-BEN-4); after the
/// last month the household exits. Running a month twice changes nothing.
pub async fn step_gradual_exits(
    roster: &Roster,
    officer: &Officer,
    req: pb::ApplyMonthRequest,
) -> Result<pb::ApplyMonthResponse, Error> {
    let now = roster.clock.now();
    let mut errors = Vec::new();
    let county = convert::division(&req.county, "county").map_err(|e| errors.push(e)).ok();
    if county.as_ref().is_some_and(|c| c.level() != DivisionLevel::County) {
        errors.push(InvalidField::new("county", "应填写6位县级行政区划代码"));
    }
    // Outside the jurisdiction: refused before anything else is said.
    if let Some(c) = &county {
        officer.must_cover(c, "county")?;
    }
    let month = convert::year_month(&req.month, "month").map_err(|e| errors.push(e)).ok();
    if month.is_some_and(|m| m > first_of_month(now)) {
        errors.push(InvalidField::new("month", "不能提前应用尚未到来的月份"));
    }
    let (Some(county), Some(month), true) = (county, month, errors.is_empty()) else {
        return Err(Error::InvalidArgument(errors));
    };
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "SELECT household_id, monthly_amount_fen, version, gradual_exit_from, gradual_exit_months,
                        gradual_exit_step, gradual_exit_base_fen
                 FROM household WHERE county = $1 AND status = $2 ORDER BY household_id FOR UPDATE",
            &[&county.as_str(), &(pb::HouseholdStatus::GradualExit as i32)],
        )
        .await?;
    let mut out = pb::ApplyMonthResponse::default();
    for row in rows {
        let id: Uuid = row.get("household_id");
        let current = Fen(row.get("monthly_amount_fen"));
        let version: i64 = row.get("version");
        let from: Date = row.get("gradual_exit_from");
        let months: i32 = row.get("gradual_exit_months");
        let step: String = row.get("gradual_exit_step");
        let exit = dibao_benefit_engine::benefit::GradualExit {
            months: months.unsigned_abs(),
            step: step_of(&step),
            base: Fen(row.get("gradual_exit_base_fen")),
            explanation: String::new(),
        };
        // Month 1 is the month the exit started.
        let m = months_between(from, month) + 1;
        if m < 1 {
            continue;
        }
        if m > months {
            households::exit(&tx, &roster.topic, id, ExitReason::GradualExitEnded, now).await?;
            out.exited += 1;
            continue;
        }
        let amount = exit.amount_in_month(m.unsigned_abs());
        if amount == current {
            continue;
        }
        households::set_amount(&tx, id, amount, version + 1).await?;
        let reason = format!("低保渐退第{m}个月（共{months}个月），月保障金由{current}递减为{amount}（R-BEN-4）");
        let change = AmountChange {
            household_id: id,
            from: current,
            to: amount,
            month,
            reason: &reason,
            version: version + 1,
            now,
        };
        households::record_amount_change(&tx, &roster.topic, &change).await?;
        out.stepped_down += 1;
    }
    tx.commit().await?;
    tracing::info!(county = %county, stepped_down = out.stepped_down, exited = out.exited, "month applied");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months_are_added_by_the_calendar() {
        assert_eq!(add_months(date!(2026 - 01 - 31), 1), date!(2026 - 02 - 28));
        assert_eq!(add_months(date!(2026 - 06 - 10), 6), date!(2026 - 12 - 10));
        assert_eq!(add_months(date!(2026 - 07 - 10), 6), date!(2027 - 01 - 10));
        assert_eq!(add_months(date!(2024 - 02 - 29), 12), date!(2025 - 02 - 28));
        assert_eq!(months_between(date!(2026 - 11 - 01), date!(2027 - 02 - 01)), 3);
    }

    fn with(programme: Programme, category: i32, ability: pb::WorkAbility) -> pb::Household {
        pb::Household {
            programme: programme as i32,
            category,
            members: vec![pb::Member { work_ability: ability as i32, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn full_support_yearly_unstable_income_every_six_months() {
        use dibao_proto::events::v1::BenefitCategory as C;
        let a = with(Programme::Dibao, C::A as i32, pb::WorkAbility::None);
        assert_eq!(review_interval(&a, None).0, 12);
        let hardship = with(Programme::SpecialHardship, 0, pb::WorkAbility::Partial);
        assert_eq!(review_interval(&hardship, None).0, 12);
        let able = with(Programme::Dibao, C::C as i32, pb::WorkAbility::Full);
        assert_eq!(review_interval(&able, None), (6, "收入不稳定、有劳动能力成员的家庭定期复核（R-REV-1）"));
        let unable = with(Programme::Dibao, C::B as i32, pb::WorkAbility::None);
        assert_eq!(review_interval(&unable, None).0, 12);
    }
}
