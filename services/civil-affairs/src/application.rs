//! The signed approval process (R-PROC-1, R-PROC-2): an application from
//! submission through home visit, village review, verification, township
//! review and public notice to county approval; exits the same way; deaths
//! and objections. Every step records who signed it, never rewritten.

use deadpool_postgres::Transaction;
use dibao_benefit_engine::benefit::{covered_members, self_care_of, suggested_category};
use dibao_benefit_engine::household::validate_composition;
use dibao_platform::Error;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::trust::officer::{Officer, digest};
use dibao_proto::civil_affairs::v1::{self as pb, ProcessStep};
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::events::v1::{ExitReason, HouseholdEnrolled, Programme, event_envelope::Payload};
use dibao_proto::labels::Label;
use dibao_proto::types::{DivisionCode, Fen, IdentityNumber, InvalidField, Signature, date_to_pb};
use prost::Message;
use time::{Date, OffsetDateTime};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::convert;
use crate::households::{self, Death, NewApplicant, Roster};
use crate::policy;
use crate::process::{self, Kind, NOTICE_DAYS};
use crate::report_gate;
use dibao_proto::verification::v1 as pb_verification;

/// Why the process refuses a step.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("申请{0}不存在")]
    ApplicationNotFound(Uuid),
    #[error("该申请已办结（{status}），不能再办理")]
    Closed { status: String },
    #[error("当前应办理“{}”，不能办理“{}”（R-PROC-1）", .expected.label(), .asked.label())]
    OutOfOrder { expected: ProcessStep, asked: ProcessStep },
    #[error("“{}”应由{}签署，不能由{}签署", .step.label(), signer_names(*.step), .role.label())]
    WrongSigner { step: ProcessStep, role: OfficerRole },
    #[error("该户没有有效的家庭经济状况核对报告，不能审批（R-VER-2）")]
    NoReport,
    #[error("公示期为{NOTICE_DAYS}天，尚未期满，{until}后方可审批（R-PROC-1）")]
    NoticeNotOver { until: String },
    #[error("公示期间有{open}条异议尚未处理完毕，处理后方可审批（R-PROC-1）")]
    OpenObjections { open: i64 },
    #[error("按现行政策该户不符合低保条件，不能审批：{0}")]
    NotEligible(String),
    #[error("只有在保家庭可以办理退出")]
    NotEnrolled,
    #[error("该户已有在办事项，办结后再办理退出")]
    AlreadyOpen,
    #[error(
        "household.members[{index}]：该成员已在另一低保家庭中（在办或在保），配偶和未成年子女不得分户申请，同一人不得重复纳入（R-ROSTER-4）"
    )]
    MemberTaken { index: usize },
    #[error("异议{0}不存在或已处理")]
    ObjectionClosed(Uuid),
    #[error("同一申请的乡镇审核和县级审批不能由同一人签署：您已签署本申请的乡镇审核")]
    SameOfficerTwice,
    #[error("您本人或您备案的近亲属是该户成员，应当回避，不能经办该户的事项（优亲厚友）")]
    OwnHousehold,
}

fn signer_names(step: ProcessStep) -> String {
    process::signers(step).iter().map(|r| r.label()).collect::<Vec<_>>().join("或")
}

impl Refusal for ProcessError {
    fn kind(&self) -> RefusalKind {
        match self {
            ProcessError::ApplicationNotFound(_) => RefusalKind::NotFound,
            ProcessError::WrongSigner { .. } | ProcessError::SameOfficerTwice | ProcessError::OwnHousehold => {
                RefusalKind::PermissionDenied
            }
            _ => RefusalKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ProcessError::ApplicationNotFound(_) => "APPLICATION_NOT_FOUND",
            ProcessError::Closed { .. } => "APPLICATION_CLOSED",
            ProcessError::OutOfOrder { .. } => "STEP_OUT_OF_ORDER",
            ProcessError::WrongSigner { .. } => "WRONG_SIGNER",
            ProcessError::NoReport => "NO_VERIFICATION_REPORT",
            ProcessError::NoticeNotOver { .. } => "NOTICE_NOT_OVER",
            ProcessError::OpenObjections { .. } => "OPEN_OBJECTIONS",
            ProcessError::NotEligible(_) => "NOT_ELIGIBLE",
            ProcessError::NotEnrolled => "NOT_ENROLLED",
            ProcessError::AlreadyOpen => "APPLICATION_ALREADY_OPEN",
            ProcessError::MemberTaken { .. } => "MEMBER_IN_ANOTHER_HOUSEHOLD",
            ProcessError::ObjectionClosed(_) => "OBJECTION_CLOSED",
            ProcessError::SameOfficerTwice => "SAME_OFFICER_TWICE",
            ProcessError::OwnHousehold => "OWN_HOUSEHOLD",
        }
    }
}

/// An officer signing in a role the step admits.
#[derive(Debug, Clone)]
pub struct Signer {
    pub officer: Officer,
    pub role: OfficerRole,
}

impl Signer {
    /// The officer in the first of `roles` they hold (the access table
    /// admitted them for one of them).
    pub fn among(officer: &Officer, roles: &[OfficerRole]) -> Self {
        let role = officer.role_among(roles).or(officer.roles.first().copied()).unwrap_or(OfficerRole::Unspecified);
        Self { officer: officer.clone(), role }
    }

    pub fn signature(&self, now: OffsetDateTime) -> Signature {
        self.officer.signature(self.role, now)
    }
}

/// The officer signing `step`, in a role the process lets sign it.
pub fn signer(step: ProcessStep, officer: &Officer) -> Result<Signer, ProcessError> {
    match officer.role_among(process::signers(step)) {
        Some(role) => Ok(Signer { officer: officer.clone(), role }),
        None => Err(ProcessError::WrongSigner {
            step,
            role: officer.roles.first().copied().unwrap_or(OfficerRole::Unspecified),
        }),
    }
}

/// An application as submitted, checked.
pub struct Submission {
    pub household: pb::Household,
    pub income: Vec<pb::IncomeItem>,
    pub supporters: Vec<pb::Supporter>,
    pub county: dibao_proto::types::DivisionCode,
    pub village: dibao_proto::types::DivisionCode,
    pub members: Vec<String>,
    pub signer: Signer,
}

impl Submission {
    pub fn check(req: pb::SubmitApplicationRequest, officer: &Officer, now: OffsetDateTime) -> Result<Self, Error> {
        let mut household = req.household.ok_or_else(|| InvalidField::new("household", "必填项缺失"))?;
        // Deaths are recorded, never submitted.
        household.deceased.clear();
        let submitted = convert::household(&household, "household")?;
        validate_composition(&submitted.household, china_date(now))?;
        if household.programme == Programme::SpecialHardship as i32 {
            // Each person's care standard follows their self-care ability (R-ELIG-3).
            self_care_of(&submitted.household)?;
        } else {
            // Whom a category covers is known now, not only at approval (R-BEN-2).
            let category = submitted.category.unwrap_or_else(|| suggested_category(&submitted.household));
            covered_members(&submitted.household, category, &submitted.covered).map_err(|errors| {
                Error::InvalidArgument(
                    errors.into_iter().map(|e| InvalidField::new("household.members", e.reason)).collect(),
                )
            })?;
        }
        convert::income(&req.income)?;
        convert::supporters(&req.supporters)?;
        let signer = signer(ProcessStep::Application, officer)?;
        officer.must_cover(&submitted.village, "household.village")?;
        let county =
            submitted.village.county().ok_or_else(|| InvalidField::new("household.village", "无法确定所属县"))?;
        let members = submitted.household.members.iter().map(|m| m.identity.as_str().to_owned()).collect();
        Ok(Self {
            household,
            income: req.income,
            supporters: req.supporters,
            county,
            village: submitted.village,
            members,
            signer,
        })
    }
}

/// Opens an application and records its first signed step.
#[tracing::instrument(skip_all)]
pub async fn submit(roster: &Roster, s: Submission) -> Result<pb::SubmitApplicationResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(taken) = households::first_live_member(&*tx, &s.members).await? {
        let index = s.members.iter().position(|x| *x == taken).unwrap_or(0);
        return Err(ProcessError::MemberTaken { index }.into());
    }
    let household_id = Uuid::now_v7();
    let application_id = Uuid::now_v7();
    let stored_income = pb::AssessHouseholdRequest {
        household: None,
        income: s.income,
        month: None,
        supporters: s.supporters,
        property_findings: Vec::new(),
    };
    let programme = if s.household.programme == 0 { Programme::Dibao as i32 } else { s.household.programme };
    let (body, income) = (s.household.encode_to_vec(), stored_income.encode_to_vec());
    let signed = digest(&[application_id.as_bytes(), b"APPLICATION", &body, &income]);
    households::insert_applicant(
        &tx,
        &NewApplicant {
            household_id,
            county: s.county.as_str(),
            village: s.village.as_str(),
            programme,
            category: s.household.category,
            body,
            income,
            members: &s.members,
            now,
        },
    )
    .await?;
    // An officer does not take in an application of their own household or
    // a registered relative's (优亲厚友): refused, the attempt kept.
    if own_household(&tx, &s.signer.officer, household_id).await? {
        drop(tx);
        let refusal = ProcessError::OwnHousehold;
        record_refused(roster, &s.signer.officer, None, None, &refusal).await?;
        return Err(refusal.into());
    }
    open(&tx, application_id, household_id, Kind::Enrol, None, now).await?;
    record_step(
        &*tx,
        &Step { digest: signed, ..Step::signed(application_id, ProcessStep::Application, &s.signer, now) },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%application_id, %household_id, "application submitted");
    Ok(pb::SubmitApplicationResponse {
        application_id: application_id.to_string(),
        household_id: household_id.to_string(),
    })
}

/// A step to sign, checked.
pub struct Signing {
    pub application_id: Uuid,
    pub step: ProcessStep,
    pub approve: bool,
    pub remarks: String,
    pub report: String,
    pub signer: Signer,
}

impl Signing {
    pub fn check(req: pb::SignStepRequest, officer: &Officer) -> Result<Self, Error> {
        let application_id = Uuid::parse_str(&req.application_id)
            .map_err(|_| InvalidField::new("application_id", "申请编号格式不正确"))?;
        let step = ProcessStep::try_from(req.step).unwrap_or(ProcessStep::Unspecified);
        if step == ProcessStep::Unspecified {
            return Err(InvalidField::new("step", "请指定办理步骤").into());
        }
        let signer = signer(step, officer)?;
        let report = req.verification_report_id.trim().to_owned();
        if step == ProcessStep::Verification && req.approve && report.is_empty() {
            return Err(InvalidField::new("verification_report_id", "请填写家庭经济状况核对报告编号（R-VER-2）").into());
        }
        Ok(Self { application_id, step, approve: req.approve, remarks: req.remarks.trim().to_owned(), report, signer })
    }
}

/// An application as its row holds it, locked.
struct ApplicationRow {
    household_id: Uuid,
    next_step: ProcessStep,
    status: String,
    notice_started_at: Option<OffsetDateTime>,
    verification_report_id: Option<String>,
    verification_report_version: Option<i32>,
    kind: Kind,
    exit_reason: ExitReason,
}

#[tracing::instrument(skip(tx))]
async fn lock_application(tx: &Transaction<'_>, id: Uuid) -> Result<ApplicationRow, Error> {
    let row = tx
        .query_opt(
            "SELECT household_id, next_step, status, notice_started_at, verification_report_id,
                    verification_report_version, kind, exit_reason
             FROM application WHERE application_id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or(ProcessError::ApplicationNotFound(id))?;
    Ok(ApplicationRow {
        household_id: row.get("household_id"),
        next_step: ProcessStep::try_from(row.get::<_, i32>("next_step")).unwrap_or(ProcessStep::Unspecified),
        status: row.get("status"),
        notice_started_at: row.get("notice_started_at"),
        verification_report_id: row.get("verification_report_id"),
        verification_report_version: row.get("verification_report_version"),
        kind: Kind::from_db(row.get("kind")),
        exit_reason: row
            .get::<_, Option<i32>>("exit_reason")
            .and_then(|v| ExitReason::try_from(v).ok())
            .unwrap_or(ExitReason::Unspecified),
    })
}

#[tracing::instrument(skip(tx))]
async fn open_objections(tx: &Transaction<'_>, application_id: Uuid) -> Result<i64, Error> {
    Ok(tx
        .query_one(
            "SELECT count(*) FROM objection o WHERE o.application_id = $1
             AND NOT EXISTS (SELECT 1 FROM objection_resolution r WHERE r.objection_id = o.objection_id)",
            &[&application_id],
        )
        .await?
        .get(0))
}

/// The application's next step and status, with what the step records.
#[tracing::instrument(skip(tx))]
async fn advance(
    tx: &Transaction<'_>,
    id: Uuid,
    next: ProcessStep,
    status: &str,
    report: Option<(&str, i32)>,
    notice_started_at: Option<OffsetDateTime>,
) -> Result<(), Error> {
    let (report_id, version) = report.unzip();
    tx.execute(
        "UPDATE application SET next_step = $2, status = $3,
                verification_report_id = coalesce($4, verification_report_id),
                verification_report_version = coalesce($5, verification_report_version),
                notice_started_at = coalesce($6, notice_started_at)
         WHERE application_id = $1",
        &[&id, &(next as i32), &status, &report_id, &version, &notice_started_at],
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip(tx))]
async fn set_status(tx: &Transaction<'_>, id: Uuid, status: &str) -> Result<(), Error> {
    tx.execute("UPDATE application SET status = $2 WHERE application_id = $1", &[&id, &status]).await?;
    Ok(())
}

/// Signs a step of an application: checks its order, who signs it and
/// what it needs (the report at verification; at county approval, the
/// notice over and every objection resolved), records it, and moves on.
#[tracing::instrument(skip_all, fields(application_id = %s.application_id))]
pub async fn sign(roster: &Roster, s: Signing) -> Result<pb::SignStepResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let app = lock_application(&tx, s.application_id).await?;
    let household = households::lock(&tx, app.household_id).await?;
    let village = DivisionCode::parse(household.get("village"))
        .map_err(|e| Error::stored(format!("village of household {}: {e}", app.household_id)))?;
    // To an officer of another division, the application is not there.
    if !s.signer.officer.covers(&village) {
        return Err(ProcessError::ApplicationNotFound(s.application_id).into());
    }
    if app.status != "open" {
        return Err(ProcessError::Closed { status: app.status }.into());
    }
    if s.step != app.next_step {
        return Err(ProcessError::OutOfOrder { expected: app.next_step, asked: s.step }.into());
    }
    if let Some(refusal) = separation_of_duties(&tx, &s, app.household_id).await? {
        drop(tx);
        record_refused(roster, &s.signer.officer, Some(s.application_id), Some(app.household_id), &refusal).await?;
        return Err(refusal.into());
    }
    let mut response = pb::SignStepResponse { next_step: s.step as i32, ..Default::default() };
    // The report the step stands on, read from the hub and held against
    // the household as it stands (R-VER-2).
    let mut report = None;
    if app.kind == Kind::Enrol && s.step == ProcessStep::CountyApproval && s.approve {
        let Some(report_id) = app.verification_report_id.as_deref().filter(|r| !r.is_empty()) else {
            return Err(ProcessError::NoReport.into());
        };
        let notice_ends = app.notice_started_at.map(|t| t + time::Duration::days(NOTICE_DAYS));
        if notice_ends.is_none_or(|end| now < end) {
            let until = notice_ends.map_or("公示开始后".to_owned(), |e| format!("{}", china_date(e)));
            return Err(ProcessError::NoticeNotOver { until }.into());
        }
        let open = open_objections(&tx, s.application_id).await?;
        if open > 0 {
            return Err(ProcessError::OpenObjections { open }.into());
        }
        let signed = app.verification_report_version;
        report = Some(gate(roster, &tx, &household, app.household_id, report_id, signed, now).await?);
    }
    if s.step == ProcessStep::Verification && s.approve {
        report = Some(gate(roster, &tx, &household, app.household_id, &s.report, None, now).await?);
    }
    let report_ref = (s.step == ProcessStep::Verification).then_some(s.report.as_str());
    // What the officer signs: this step of this application, their word,
    // and the household as it stands.
    let (body, income): (Vec<u8>, Vec<u8>) = (household.get("body"), household.get("income"));
    let signed = digest(&[
        s.application_id.as_bytes(),
        s.step.as_str_name().as_bytes(),
        &[u8::from(s.approve)],
        s.remarks.as_bytes(),
        s.report.as_bytes(),
        &report.as_ref().map_or(0, |r| r.version).to_be_bytes(),
        &body,
        &income,
    ]);
    let step = Step {
        approve: s.approve,
        remarks: &s.remarks,
        report: report_ref,
        digest: signed.clone(),
        ..Step::signed(s.application_id, s.step, &s.signer, now)
    };
    record_step(&*tx, &step).await?;

    if !s.approve {
        set_status(&tx, s.application_id, "refused").await?;
        // A refused exit leaves the household as it was.
        if app.kind == Kind::Enrol {
            households::refuse(&tx, app.household_id).await?;
        }
        tx.commit().await?;
        response.refused = true;
        return Ok(response);
    }
    let next = app.kind.next(s.step);
    match (app.kind, s.step) {
        (Kind::Exit, ProcessStep::CountyApproval) => {
            households::exit(&tx, &roster.topic, app.household_id, app.exit_reason, now).await?;
            advance(&tx, s.application_id, next, "exited", None, None).await?;
        }
        (_, ProcessStep::Verification) => {
            let version = report.as_ref().map_or(0, |r| r.version);
            advance(&tx, s.application_id, next, "open", Some((&s.report, version)), None).await?;
            if let Some(r) = &report {
                let declared = households::income_of(&household, &app.household_id.to_string())?;
                // What the disability federation and medical insurance
                // certify replaces what was typed, from here on (R-VER-3).
                let certified =
                    report_gate::certify(r, &households::household_of(&household)?, &declared, china_date(now));
                let mut explanation = Vec::new();
                if certified.changed() {
                    households::certify(&tx, &household, &certified.household.members, &certified.income).await?;
                    explanation.push(format!("按部门记录认定：\n{}", certified.lines.join("\n")));
                }
                // What the departments report beside what was declared, for the officer.
                let lines = report_gate::income_beside(r, &declared.income);
                if !lines.is_empty() {
                    explanation.push(format!("部门记录与申报收入对照：\n{}", lines.join("\n")));
                }
                response.explanation = explanation.join("\n");
                tx.execute(
                    "UPDATE application SET verification_findings = $2 WHERE application_id = $1",
                    &[&s.application_id, &response.explanation],
                )
                .await?;
            }
        }
        (_, ProcessStep::PublicNotice) => advance(&tx, s.application_id, next, "open", None, Some(now)).await?,
        (Kind::Enrol, ProcessStep::CountyApproval) => {
            let findings = report.as_ref().map(report_gate::property_findings).unwrap_or_default();
            let (amount, explanation) = enrol(roster, &tx, app.household_id, findings, now).await?;
            advance(&tx, s.application_id, next, "enrolled", None, None).await?;
            // Enrolment is confirmed by the approver's signature (R-PROC-1: certificate and payment follow).
            let enrolment =
                Step { digest: signed, ..Step::signed(s.application_id, ProcessStep::Enrolment, &s.signer, now) };
            record_step(&*tx, &enrolment).await?;
            response.monthly_amount = Some(amount.into());
            response.explanation = explanation;
        }
        _ => advance(&tx, s.application_id, next, "open", None, None).await?,
    }
    tx.commit().await?;
    response.next_step = next as i32;
    Ok(response)
}

/// The separation of duties (001): the officer who signed an application's
/// township review does not approve it for the county; no officer acts on
/// a household they or a relative on the officials' registry belong to.
async fn separation_of_duties(
    tx: &Transaction<'_>,
    s: &Signing,
    household_id: Uuid,
) -> Result<Option<ProcessError>, Error> {
    let officer = &s.signer.officer;
    if s.step == ProcessStep::CountyApproval {
        let reviewed: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM application_step
                                WHERE application_id = $1 AND step = $2 AND officer_id = $3)",
                &[&s.application_id, &(ProcessStep::TownshipReview as i32), &officer.officer_id],
            )
            .await?
            .get(0);
        if reviewed {
            return Ok(Some(ProcessError::SameOfficerTwice));
        }
    }
    if own_household(tx, officer, household_id).await? {
        return Ok(Some(ProcessError::OwnHousehold));
    }
    Ok(None)
}

/// Whether the officer, or a close relative of theirs on the officials'
/// registry, is a member of the household.
pub async fn own_household(tx: &Transaction<'_>, officer: &Officer, household_id: Uuid) -> Result<bool, Error> {
    let Some(me) = &officer.identity_number else { return Ok(false) };
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM household_member m
                            WHERE m.household_id = $1
                              AND (m.identity_number = $2
                                   OR m.identity_number IN (SELECT person FROM official_relative WHERE official = $2)))",
            &[&household_id, &me.as_str()],
        )
        .await?
        .get(0))
}

/// Keeps a refused attempt with who made it, in a transaction of its own
/// (the refused one rolled back).
pub async fn record_refused(
    roster: &Roster,
    officer: &Officer,
    application_id: Option<Uuid>,
    household_id: Option<Uuid>,
    refusal: &ProcessError,
) -> Result<(), Error> {
    let client = roster.pool.get().await?;
    client
        .execute(
            "INSERT INTO refused_attempt (application_id, household_id, officer_id, assertion_id, reason, attempted_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &application_id,
                &household_id,
                &officer.officer_id,
                &officer.assertion_id,
                &refusal.to_string(),
                &roster.clock.now(),
            ],
        )
        .await?;
    tracing::warn!(officer = %officer.officer_id, ?household_id, reason = refusal.reason(), "attempt refused and recorded");
    Ok(())
}

/// Report `report_id` read from the hub and held against the household as
/// it stands and the policy of its county in force now (R-VER-2).
async fn gate(
    roster: &Roster,
    tx: &Transaction<'_>,
    row: &Row,
    household_id: Uuid,
    report_id: &str,
    signed_version: Option<i32>,
    now: OffsetDateTime,
) -> Result<pb_verification::Report, Error> {
    let household = households::household_of(row)?;
    let county = DivisionCode::parse(row.get("county"))
        .map_err(|e| Error::stored(format!("county of household {household_id}: {e}")))?;
    let (_, policy) = policy::in_force(&**tx, &county, households::first_of_month(now)).await?;
    let against = report_gate::Against {
        household_id,
        household: &household,
        county: &county,
        policy: &policy,
        signed_version,
        now,
    };
    roster.reports.check(report_id.trim(), &against).await
}

/// County approval: assess under the policy in force, enrol, publish.
async fn enrol(
    roster: &Roster,
    tx: &Transaction<'_>,
    household_id: Uuid,
    property_findings: Vec<String>,
    now: OffsetDateTime,
) -> Result<(Fen, String), Error> {
    let row = households::lock(tx, household_id).await?;
    let household = households::household_of(&row)?;
    // The report's findings against the county's property rules decide
    // with the declared income (R-ELIG-1).
    let stored =
        pb::AssessHouseholdRequest { property_findings, ..households::income_of(&row, &household.household_id)? };
    let county = dibao_proto::types::DivisionCode::parse(row.get("county"))
        .map_err(|e| Error::stored(format!("county of household {household_id}: {e}")))?;
    let village: String = row.get("village");
    let month = households::first_of_month(now);
    let (policy, _) = policy::in_force(&**tx, &county, month).await?;
    let (_, benefit) = policy::assess(&household, &stored, &policy, month)?;
    if !benefit.eligible {
        return Err(ProcessError::NotEligible(benefit.explanation).into());
    }
    let category = convert::category_to_pb(benefit.category) as i32;
    let (version, household_number) =
        households::enrol(tx, household_id, category, benefit.monthly_amount, china_date(now)).await?;
    crate::certificates::reissue(tx, household_id, "审批纳入", now).await?;
    let payload = Payload::HouseholdEnrolled(HouseholdEnrolled {
        household_id: household_id.to_string(),
        village: Some(dibao_proto::common::v1::DivisionCode { code: village }),
        programme: household.programme,
        category,
        members: households::roster_members(&household, &benefit.covered),
        monthly_amount: Some(benefit.monthly_amount.into()),
        effective_from: Some(date_to_pb(china_date(now))),
        household_number,
    });
    households::publish(tx, &roster.topic, household_id, version, payload).await?;
    tracing::info!(%household_id, amount_fen = benefit.monthly_amount.0, "household enrolled");
    Ok((benefit.monthly_amount, benefit.explanation))
}

/// An exit to open, checked.
pub struct ExitStart {
    pub household_id: Uuid,
    pub reason: ExitReason,
    pub remarks: String,
    pub signer: Signer,
}

impl ExitStart {
    pub fn check(req: pb::StartExitRequest, officer: &Officer) -> Result<Self, Error> {
        let household_id =
            Uuid::parse_str(&req.household_id).map_err(|_| InvalidField::new("household_id", "家庭编号格式不正确"))?;
        let reason = ExitReason::try_from(req.reason).unwrap_or(ExitReason::Unspecified);
        if reason == ExitReason::Unspecified {
            return Err(InvalidField::new("reason", "请选择退出原因（死亡、收入超标、迁出或自愿退出）").into());
        }
        let signer = signer(ProcessStep::Exit, officer)?;
        Ok(Self { household_id, reason, remarks: req.remarks.trim().to_owned(), signer })
    }
}

#[tracing::instrument(skip_all, fields(household_id = %e.household_id))]
pub async fn start_exit(roster: &Roster, e: ExitStart) -> Result<pb::StartExitResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    covered(&tx, &e.signer.officer, e.household_id).await?;
    let application_id = open_exit(&tx, e.household_id, e.reason, &e.remarks, &e.signer, now).await?;
    tx.commit().await?;
    Ok(pb::StartExitResponse { application_id: application_id.to_string() })
}

/// Opens an exit for an enrolled household and records its first signed step.
pub async fn open_exit(
    tx: &Transaction<'_>,
    household_id: Uuid,
    reason: ExitReason,
    remarks: &str,
    signer: &Signer,
    now: OffsetDateTime,
) -> Result<Uuid, Error> {
    let status = households::lock_status(tx, household_id).await?;
    if status != pb::HouseholdStatus::Enrolled as i32 && status != pb::HouseholdStatus::GradualExit as i32 {
        return Err(ProcessError::NotEnrolled.into());
    }
    let application_id = Uuid::now_v7();
    open(tx, application_id, household_id, Kind::Exit, Some(reason), now).await?;
    let signed = digest(&[application_id.as_bytes(), b"EXIT", reason.as_str_name().as_bytes(), remarks.as_bytes()]);
    let step = Step { remarks, digest: signed, ..Step::signed(application_id, ProcessStep::Exit, signer, now) };
    record_step(&**tx, &step).await?;
    Ok(application_id)
}

/// Refuses, as if it were not there, a household outside the officer's jurisdiction.
async fn covered(tx: &Transaction<'_>, officer: &Officer, household_id: Uuid) -> Result<(), Error> {
    let village: Option<String> = tx
        .query_opt("SELECT village FROM household WHERE household_id = $1", &[&household_id])
        .await?
        .map(|r| r.get("village"));
    match village.and_then(|v| DivisionCode::parse(&v).ok()) {
        Some(v) if officer.covers(&v) => Ok(()),
        _ => Err(households::HouseholdError::NotFound(household_id).into()),
    }
}

/// A new application's row: its first step to come is the home visit. A
/// household has one open application at most.
#[tracing::instrument(skip(tx))]
async fn open(
    tx: &Transaction<'_>,
    application_id: Uuid,
    household_id: Uuid,
    kind: Kind,
    exit_reason: Option<ExitReason>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO application (application_id, household_id, next_step, status, created_at, kind, exit_reason)
         VALUES ($1, $2, $3, 'open', $4, $5, $6)",
        &[
            &application_id,
            &household_id,
            &(ProcessStep::HomeVisit as i32),
            &now,
            &kind.as_db(),
            &exit_reason.map(|r| r as i32),
        ],
    )
    .await
    .map_err(|e| match e.code() {
        Some(c) if c.code() == "23505" => Error::from(ProcessError::AlreadyOpen),
        _ => Error::from(e),
    })?;
    Ok(())
}

/// One signed step, appended to the application's history (R-PROC-2).
struct Step<'a> {
    application_id: Uuid,
    step: ProcessStep,
    approve: bool,
    remarks: &'a str,
    signer: &'a Signer,
    report: Option<&'a str>,
    /// Of what was signed.
    digest: String,
    now: OffsetDateTime,
}

impl<'a> Step<'a> {
    fn signed(application_id: Uuid, step: ProcessStep, signer: &'a Signer, now: OffsetDateTime) -> Self {
        Self { application_id, step, approve: true, remarks: "", signer, report: None, digest: String::new(), now }
    }
}

#[tracing::instrument(skip_all, fields(application_id = %s.application_id, step = ?s.step))]
async fn record_step(tx: &impl GenericClient, s: &Step<'_>) -> Result<(), Error> {
    let officer = &s.signer.officer;
    tx.execute(
        "INSERT INTO application_step (application_id, step, approve, remarks, officer_id, officer_name, role, division,
                                       signed_at, recorded_at, verification_report_id, assertion_id, issuer, digest)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            &s.application_id,
            &(s.step as i32),
            &s.approve,
            &s.remarks,
            &officer.officer_id,
            &officer.name,
            &(s.signer.role as i32),
            &officer.division.as_str(),
            &s.now,
            &s.now,
            &s.report,
            &officer.assertion_id,
            &officer.issuer,
            &s.digest,
        ],
    )
    .await?;
    Ok(())
}

/// A death to record, checked.
pub struct DeathReport {
    pub person: IdentityNumber,
    pub died_on: Date,
    pub source: String,
    pub signer: Signer,
}

impl DeathReport {
    pub fn check(req: pb::RecordDeathRequest, officer: &Officer, now: OffsetDateTime) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let person = convert::identity(&req.identity_number, "identity_number").map_err(|e| errors.push(e)).ok();
        let died_on = dibao_proto::types::required(&req.died_on, "died_on")
            .and_then(|d| Date::try_from(d).map_err(|e| e.within("died_on")))
            .map_err(|e| errors.push(e))
            .ok();
        if died_on.is_some_and(|d| d > china_date(now)) {
            errors.push(InvalidField::new("died_on", "死亡日期不能晚于今天"));
        }
        if req.source.trim().is_empty() {
            errors.push(InvalidField::new("source", "请填写死亡信息来源（如公安死亡登记号）"));
        }
        let signer = Signer::among(officer, &[OfficerRole::TownshipCaseworker, OfficerRole::CountyOperator]);
        match (person, died_on, errors.is_empty()) {
            (Some(person), Some(died_on), true) => {
                Ok(Self { person, died_on, source: req.source.trim().to_owned(), signer })
            }
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// Records a death on the roster; a household whose last member died
/// starts its exit (unless an application of it is open).
#[tracing::instrument(skip_all)]
pub async fn record_death(roster: &Roster, d: DeathReport) -> Result<pb::RecordDeathResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let household_id = households::live_household_of(&tx, &d.person).await?;
    // A person outside the officer's jurisdiction is, to them, on no household.
    covered(&tx, &d.signer.officer, household_id)
        .await
        .map_err(|_| households::HouseholdError::NoLiveMember(d.person.masked()))?;
    let death = Death {
        person: d.person.as_str(),
        household_id,
        died_on: d.died_on,
        source: &d.source,
        recorded_by: &d.signer.officer.officer_id,
        now,
    };
    households::mark_deceased(&tx, &roster.topic, &death).await?;
    let living = households::living_members(&tx, household_id).await?;
    let exit_application_id = if living == 0 && !has_open_application(&tx, household_id).await? {
        open_exit(&tx, household_id, ExitReason::Death, "家庭成员均已死亡", &d.signer, now).await?.to_string()
    } else {
        String::new()
    };
    tx.commit().await?;
    tracing::info!(%household_id, living, "death recorded");
    Ok(pb::RecordDeathResponse { household_id: household_id.to_string(), exit_application_id })
}

#[tracing::instrument(skip(tx))]
async fn has_open_application(tx: &Transaction<'_>, household_id: Uuid) -> Result<bool, Error> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM application WHERE household_id = $1 AND status = 'open')",
            &[&household_id],
        )
        .await?
        .get(0))
}

/// An objection during the notice, or its resolution, checked.
pub struct ObjectionNote {
    pub application_id: Uuid,
    /// Empty for a new objection.
    pub objection_id: Option<Uuid>,
    pub text: String,
    pub signer: Signer,
}

impl ObjectionNote {
    pub fn check(req: pb::RecordObjectionRequest, officer: &Officer) -> Result<Self, Error> {
        let signer = Signer::among(
            officer,
            &[OfficerRole::TownshipCaseworker, OfficerRole::TownshipReviewer, OfficerRole::CountyApprover],
        );
        let application_id = Uuid::parse_str(&req.application_id)
            .map_err(|_| InvalidField::new("application_id", "申请编号格式不正确"))?;
        let text = req.text.trim().to_owned();
        if text.is_empty() {
            return Err(InvalidField::new("text", "请填写异议内容或处理结果").into());
        }
        if req.objection_id.is_empty() {
            return Ok(Self { application_id, objection_id: None, text, signer });
        }
        if !req.resolved {
            return Err(InvalidField::new("resolved", "处理异议时应标明已处理").into());
        }
        let objection_id =
            Uuid::parse_str(&req.objection_id).map_err(|_| InvalidField::new("objection_id", "异议编号格式不正确"))?;
        Ok(Self { application_id, objection_id: Some(objection_id), text, signer })
    }
}

/// Records an objection, or resolves one (a resolution supersedes it
/// without rewriting it).
#[tracing::instrument(skip_all, fields(application_id = %o.application_id))]
pub async fn record_objection(roster: &Roster, o: ObjectionNote) -> Result<pb::RecordObjectionResponse, Error> {
    let now = roster.clock.now();
    let client = roster.pool.get().await?;
    let officer = &o.signer.officer;
    let household: Option<String> = client
        .query_opt(
            "SELECT h.village FROM application a JOIN household h USING (household_id) WHERE a.application_id = $1",
            &[&o.application_id],
        )
        .await?
        .map(|r| r.get("village"));
    if !household.and_then(|v| DivisionCode::parse(&v).ok()).is_some_and(|v| officer.covers(&v)) {
        return Err(ProcessError::ApplicationNotFound(o.application_id).into());
    }
    let Some(objection_id) = o.objection_id else {
        let id = Uuid::now_v7();
        let inserted = client
            .execute(
                "INSERT INTO objection (objection_id, application_id, text, recorded_by, recorded_at, assertion_id)
                 SELECT $1, application_id, $3, $4, $5, $6 FROM application WHERE application_id = $2",
                &[&id, &o.application_id, &o.text, &officer.officer_id, &now, &officer.assertion_id],
            )
            .await?;
        if inserted == 0 {
            return Err(ProcessError::ApplicationNotFound(o.application_id).into());
        }
        return Ok(pb::RecordObjectionResponse { objection_id: id.to_string() });
    };
    let inserted = client
        .execute(
            "INSERT INTO objection_resolution (objection_id, resolution, resolved_by, resolved_at, assertion_id)
             SELECT objection_id, $3, $4, $5, $6 FROM objection WHERE objection_id = $1 AND application_id = $2
             ON CONFLICT (objection_id) DO NOTHING",
            &[&objection_id, &o.application_id, &o.text, &officer.officer_id, &now, &officer.assertion_id],
        )
        .await?;
    if inserted == 0 {
        return Err(ProcessError::ObjectionClosed(objection_id).into());
    }
    Ok(pb::RecordObjectionResponse { objection_id: objection_id.to_string() })
}

/// The application columns [`application_of`] reads.
const APPLICATION_COLUMNS: &str = "a.application_id, a.household_id, a.kind, a.status, a.next_step, a.created_at, a.notice_started_at, a.verification_report_id, a.verification_findings";

/// An application as its row holds it, with its household as shown to `reader`.
fn application_of(
    row: &Row,
    household: pb::Household,
    reader: &Reader,
    assessment: Option<pb::AssessHouseholdResponse>,
) -> pb::Application {
    let kind = match row.get::<_, &str>("kind") {
        "exit" => pb::ApplicationKind::Exit,
        _ => pb::ApplicationKind::Enrolment,
    };
    let status = match row.get::<_, &str>("status") {
        "open" => pb::ApplicationStatus::Open,
        "refused" => pb::ApplicationStatus::Refused,
        "enrolled" => pb::ApplicationStatus::Enrolled,
        _ => pb::ApplicationStatus::Exited,
    };
    let notice_ends_at = row
        .get::<_, Option<OffsetDateTime>>("notice_started_at")
        .filter(|_| status == pb::ApplicationStatus::Open)
        .map(|t| dibao_platform::events::outbox::timestamp_of(t + time::Duration::days(NOTICE_DAYS)));
    let next_step: i32 = row.get("next_step");
    let signers = process::signers(ProcessStep::try_from(next_step).unwrap_or(ProcessStep::Unspecified));
    let waiting_for_me = status == pb::ApplicationStatus::Open
        && reader.officer.as_ref().is_some_and(|o| signers.iter().any(|r| o.roles.contains(r)));
    pb::Application {
        application_id: row.get::<_, Uuid>("application_id").to_string(),
        kind: kind as i32,
        status: status as i32,
        next_step,
        submitted_at: Some(dibao_platform::events::outbox::timestamp_of(row.get("created_at"))),
        household: Some(household),
        notice_ends_at,
        waiting_for_me,
        verification_report_id: row.get::<_, Option<String>>("verification_report_id").unwrap_or_default(),
        assessment,
        verification_findings: row.get("verification_findings"),
    }
}

/// An application with its household, as `reader` may read it, and the
/// engine's assessment of the household.
#[tracing::instrument(skip(roster, reader))]
pub async fn get(roster: &Roster, reader: &Reader, id: Uuid) -> Result<pb::Application, Error> {
    // The connection goes back before the household is read with another:
    // holding one while waiting for a second starves a busy pool.
    let row = roster
        .pool
        .get()
        .await?
        .query_opt(&format!("SELECT {APPLICATION_COLUMNS} FROM application a WHERE a.application_id = $1"), &[&id])
        .await?
        .ok_or(ProcessError::ApplicationNotFound(id))?;
    let household_id: Uuid = row.get("household_id");
    let household = households::read(roster, reader, household_id).await.map_err(|e| {
        if e.reason() == Some("HOUSEHOLD_NOT_FOUND") { ProcessError::ApplicationNotFound(id).into() } else { e }
    })?;
    // Only after the read above has checked the reader's jurisdiction.
    let assessment = crate::policy::assessment_of(roster, household_id).await?;
    Ok(application_of(&row, household, reader, assessment))
}

/// The open applications and exits of a division, oldest first (an
/// officer's work list); with `waiting_for_me`, those whose next step one
/// of the officer's roles signs. Each as [`get`] reads it, without the
/// assessment; a page is read in three queries and logged in one record
/// of every member it shows (an officer's work list is opened all day).
pub async fn list(
    roster: &Roster,
    reader: &Reader,
    req: pb::ListApplicationsRequest,
) -> Result<pb::ListApplicationsResponse, Error> {
    let division = convert::division(&req.division, "division")?;
    reader.must_cover(&division, "division")?;
    let (size, after) = convert::page_by_id(req.page, 50, 100)?;
    // Every step some role of the officer signs; a system's list is not narrowed.
    let steps: Option<Vec<i32>> = match (&reader.officer, req.waiting_for_me) {
        (Some(officer), true) => Some(
            [
                ProcessStep::Application,
                ProcessStep::HomeVisit,
                ProcessStep::VillageReview,
                ProcessStep::Verification,
                ProcessStep::TownshipReview,
                ProcessStep::PublicNotice,
                ProcessStep::CountyApproval,
                ProcessStep::Exit,
            ]
            .into_iter()
            .filter(|step| process::signers(*step).iter().any(|r| officer.roles.contains(r)))
            .map(|step| step as i32)
            .collect(),
        ),
        _ => None,
    };
    let client = roster.pool.get().await?;
    let rows = open_in(&**client, division.prefix(), steps.as_deref(), after, size + 1).await?;
    let more = rows.len() as i64 > size;
    let rows = &rows[..rows.len().min(size as usize)];
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get("household_id")).collect();
    let mut read = households::get_all(&**client, &ids).await?;
    drop(client);
    let mut shown = Vec::with_capacity(rows.len());
    for id in &ids {
        shown.push(read.remove(id).ok_or_else(|| Error::stored(format!("application of household {id} without it")))?);
    }
    let shown = households::shown_all(roster, reader, shown, "查阅家庭信息").await?;
    let applications: Vec<pb::Application> =
        rows.iter().zip(shown).map(|(row, household)| application_of(row, household, reader, None)).collect();
    let next_page_token =
        if more { applications.last().map(|a| a.application_id.clone()).unwrap_or_default() } else { String::new() };
    Ok(pb::ListApplicationsResponse {
        applications,
        page: Some(dibao_proto::common::v1::PageResponse { next_page_token }),
    })
}

/// The open applications in the villages under `prefix`, at one of
/// `steps` (any, without), after `after` in (submission time, id) order.
async fn open_in(
    client: &impl GenericClient,
    prefix: &str,
    steps: Option<&[i32]>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Row>, Error> {
    Ok(client
        .query(
            &format!(
                "SELECT {APPLICATION_COLUMNS}
             FROM application a JOIN household h ON h.household_id = a.household_id
             WHERE a.status = 'open' AND h.village LIKE $1 || '%'
               AND ($2::int[] IS NULL OR a.next_step = ANY($2))
               AND ($3::uuid IS NULL
                    OR (a.created_at, a.application_id) >
                       (SELECT created_at, application_id FROM application WHERE application_id = $3))
             ORDER BY a.created_at, a.application_id
             LIMIT $4"
            ),
            &[&prefix, &steps, &after, &limit],
        )
        .await?)
}
