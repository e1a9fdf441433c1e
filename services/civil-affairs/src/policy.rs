//! County policy (R-ELIG-4): saved by the county approver, append-only,
//! the one in force for a month read back; a new standard recalculates
//! every enrolled household of the county. And the engine run over a
//! household under it (R-INC-*, R-ELIG-*, R-BEN-*).

use dibao_benefit_engine::benefit::{
    BenefitAssessment, BenefitRequest, HardshipRequest, assess_benefit, assess_special_hardship, suggested_category,
};
use dibao_benefit_engine::household::validate_composition;
use dibao_benefit_engine::income::{IncomeAssessment, Treatment, assess_income};
use dibao_benefit_engine::policy::CountyPolicy;
use dibao_platform::Error;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::events::v1::Programme;
use dibao_proto::types::{DivisionCode, Fen, InvalidField};
use prost::Message;
use time::Date;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::convert;
use crate::households::{self, AmountChange, Roster};

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{county}尚未设置{year}年{month}月适用的低保政策，请先由县级民政部门保存政策")]
    NoneInForce { county: DivisionCode, year: i32, month: u8 },
    #[error("低保政策应由县级审批人员保存")]
    WrongSigner,
}

impl Refusal for PolicyError {
    fn kind(&self) -> RefusalKind {
        match self {
            PolicyError::NoneInForce { .. } => RefusalKind::FailedPrecondition,
            PolicyError::WrongSigner => RefusalKind::PermissionDenied,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            PolicyError::NoneInForce { .. } => "NO_POLICY_IN_FORCE",
            PolicyError::WrongSigner => "WRONG_SIGNER",
        }
    }
}

/// The policy in force for `county` in the month of `on`, decoded.
pub async fn in_force(
    client: &impl GenericClient,
    county: &DivisionCode,
    on: Date,
) -> Result<(CountyPolicy, pb::CountyPolicy), Error> {
    in_force_if_any(client, county, on).await?.ok_or_else(|| {
        PolicyError::NoneInForce { county: county.clone(), year: on.year(), month: on.month() as u8 }.into()
    })
}

/// [`in_force`], or none where the county has no policy for that month yet.
#[tracing::instrument(skip(client))]
pub async fn in_force_if_any(
    client: &impl GenericClient,
    county: &DivisionCode,
    on: Date,
) -> Result<Option<(CountyPolicy, pb::CountyPolicy)>, Error> {
    let Some(row) = client
        .query_opt(
            "SELECT body FROM county_policy WHERE county = $1 AND effective_from <= $2
             ORDER BY effective_from DESC, id DESC LIMIT 1",
            &[&county.as_str(), &on],
        )
        .await?
    else {
        return Ok(None);
    };
    let body: Vec<u8> = row.get("body");
    let wire = pb::CountyPolicy::decode(body.as_slice()).map_err(|e| Error::stored(format!("policy: {e}")))?;
    let policy = convert::policy(&wire).map_err(|_| Error::stored("policy no longer valid"))?;
    Ok(Some((policy, wire)))
}

/// Runs the engine over a household as stored or submitted.
pub fn assess(
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
    // Special hardship is supported at its own standards, not topped up (R-ELIG-3).
    if household.programme == Programme::SpecialHardship as i32 {
        let benefit = assess_special_hardship(
            &HardshipRequest {
                household: &submitted.household,
                lines: &lines,
                income: &income,
                property_findings: &stored_income.property_findings,
                on,
            },
            policy,
        )?;
        return Ok((income, benefit));
    }
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

/// A policy to save, checked.
pub struct Saving {
    pub wire: pb::CountyPolicy,
    pub policy: CountyPolicy,
    pub officer: Officer,
}

impl Saving {
    pub fn check(req: pb::SavePolicyRequest, officer: &Officer) -> Result<Self, Error> {
        let wire = req.policy.ok_or_else(|| InvalidField::new("policy", "必填项缺失"))?;
        let policy = convert::policy(&wire)?;
        if !officer.has(OfficerRole::CountyApprover) {
            return Err(PolicyError::WrongSigner.into());
        }
        officer.must_cover(&policy.county, "policy.county")?;
        Ok(Self { wire, policy, officer: officer.clone() })
    }
}

/// An enrolled household of a county, locked, as a new standard recalculates it.
struct Enrolled {
    household_id: Uuid,
    household: pb::Household,
    income: pb::AssessHouseholdRequest,
    amount: Fen,
    version: i64,
}

#[tracing::instrument(skip(tx))]
async fn enrolled_in(tx: &deadpool_postgres::Transaction<'_>, county: &DivisionCode) -> Result<Vec<Enrolled>, Error> {
    tx.query(
        &format!("SELECT {}, income FROM household WHERE county = $1 AND status = $2 FOR UPDATE", households::COLUMNS),
        &[&county.as_str(), &(pb::HouseholdStatus::Enrolled as i32)],
    )
    .await?
    .iter()
    .map(|row| {
        let household = households::household_of(row)?;
        let income = households::income_of(row, &household.household_id)?;
        Ok(Enrolled {
            household_id: row.get("household_id"),
            amount: Fen(row.get("monthly_amount_fen")),
            version: row.get("version"),
            household,
            income,
        })
    })
    .collect()
}

/// Saves a county's policy and recalculates every enrolled household of
/// the county from the policy's effective month, unless a later policy
/// already governs it.
#[tracing::instrument(skip_all, fields(county = %s.policy.county))]
pub async fn save(roster: &Roster, s: Saving) -> Result<pb::SavePolicyResponse, Error> {
    let now = roster.clock.now();
    let policy = &s.policy;
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO county_policy (county, year, effective_from, dibao_standard_fen, body, saved_at, saved_by, saved_by_role,
                                    assertion_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &policy.county.as_str(),
            &policy.year,
            &policy.effective_from,
            &policy.dibao_standard.0,
            &s.wire.encode_to_vec(),
            &now,
            &s.officer.officer_id,
            &(OfficerRole::CountyApprover as i32),
            &s.officer.assertion_id,
        ],
    )
    .await?;
    let later: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM county_policy WHERE county = $1 AND effective_from > $2)",
            &[&policy.county.as_str(), &policy.effective_from],
        )
        .await?
        .get(0);
    let mut recalculated = 0;
    if !later {
        let reason = format!("低保标准调整为{}", policy.dibao_standard);
        for h in enrolled_in(&tx, &policy.county).await? {
            let Ok((_, benefit)) = assess(&h.household, &h.income, policy, policy.effective_from) else {
                tracing::warn!(household_id = %h.household_id, "enrolled household no longer assessable, left for review");
                continue;
            };
            if benefit.monthly_amount == h.amount {
                continue;
            }
            let version = h.version + 1;
            households::set_amount(&tx, h.household_id, benefit.monthly_amount, version).await?;
            let change = AmountChange {
                household_id: h.household_id,
                from: h.amount,
                to: benefit.monthly_amount,
                month: policy.effective_from,
                reason: &reason,
                version,
                now,
            };
            households::record_amount_change(&tx, &roster.topic, &change).await?;
            recalculated += 1;
        }
    }
    tx.commit().await?;
    tracing::info!(county = %policy.county, recalculated, "county policy saved");
    Ok(pb::SavePolicyResponse { recalculated_households: recalculated })
}

/// The policy in force for a county and month, as saved: for the officers
/// of the county, its townships and villages (the rules they apply), and
/// of the divisions above it.
pub async fn get(roster: &Roster, reader: &Reader, req: pb::GetPolicyRequest) -> Result<pb::GetPolicyResponse, Error> {
    let county = convert::division(&req.county, "county")?;
    if let Some(officer) = &reader.officer
        && !county.contains(&officer.division)
    {
        officer.must_cover(&county, "county")?;
    }
    let month = convert::year_month(&req.month, "month")?;
    let client = roster.pool.get().await?;
    let (_, wire) = in_force(&**client, &county, month).await?;
    Ok(pb::GetPolicyResponse { policy: Some(wire) })
}

/// Assesses a household as submitted under its county's policy in force
/// for the month, every income line with its treatment and rule.
pub async fn assess_household(
    roster: &Roster,
    officer: &Officer,
    req: pb::AssessHouseholdRequest,
) -> Result<pb::AssessHouseholdResponse, Error> {
    let household = req.household.clone().ok_or_else(|| InvalidField::new("household", "必填项缺失"))?;
    let submitted = convert::household(&household, "household")?;
    officer.must_cover(&submitted.village, "household.village")?;
    let month = match &req.month {
        Some(_) => convert::year_month(&req.month, "month")?,
        None => households::first_of_month(roster.clock.now()),
    };
    let county = submitted.village.county().ok_or_else(|| InvalidField::new("household.village", "无法确定所属县"))?;
    let client = roster.pool.get().await?;
    let (policy, _) = in_force(&**client, &county, month).await?;
    let (income, benefit) = assess(&household, &req, &policy, month)?;
    Ok(response(income, benefit))
}

/// The engine's answer as the wire carries it.
fn response(income: IncomeAssessment, benefit: BenefitAssessment) -> pb::AssessHouseholdResponse {
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
    pb::AssessHouseholdResponse {
        per_capita_income: Some(income.per_capita.into()),
        eligible: benefit.eligible,
        monthly_amount: Some(benefit.monthly_amount.into()),
        category: convert::category_to_pb(benefit.category) as i32,
        lines,
        explanation: benefit.explanation,
    }
}

/// The engine run over stored household `id` — its members and its income
/// as on file — under the policy in force this month: what an officer
/// reads on the application and prints for the household. `None` when the
/// county has no policy in force, or when what is on file no longer passes
/// the engine's checks (the officer sees the application without it; the
/// next signature or review states the refusal).
pub async fn assessment_of(roster: &Roster, id: Uuid) -> Result<Option<pb::AssessHouseholdResponse>, Error> {
    let month = households::first_of_month(roster.clock.now());
    let client = roster.pool.get().await?;
    let (household, income) = households::with_income(&**client, id).await?;
    let county = households::village_of(&household)?.county();
    let Some(county) = county else { return Ok(None) };
    let policy = match in_force(&**client, &county, month).await {
        Ok((policy, _)) => policy,
        Err(e) if e.reason() == Some("NO_POLICY_IN_FORCE") => return Ok(None),
        Err(e) => return Err(e),
    };
    drop(client);
    match assess(&household, &income, &policy, month) {
        Ok((income, benefit)) => Ok(Some(response(income, benefit))),
        Err(fields) => {
            tracing::warn!(household = %id, ?fields, "a household on file the engine no longer assesses");
            Ok(None)
        }
    }
}
