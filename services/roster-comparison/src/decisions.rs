//! Decisions on the lists' entries (R-CMP-3): a list (a) entry ends in an
//! enrolment through civil affairs' own application or a written
//! conclusion; a list (b) entry in the poverty office's registration or a
//! written conclusion; the lists kept on file in a written conclusion. An
//! entry keeps its id from run to run, so its decision stays with it.

use deadpool_postgres::{GenericClient, Pool};
use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::runtime::server::MeshChannel as Channel;
use dibao_platform::trust::access_log::{AccessEntry, AccessLog};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::comparison::v1 as pb;
use dibao_proto::labels::Label;
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_proto::types::{DivisionCode, InvalidField};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::engine::Kind;

/// A written conclusion must give reasons: this many characters at least.
const MIN_CONCLUSION_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("比对项{0}不存在")]
    EntryNotFound(String),
    #[error("比对项{0}已有结论，不能重复记录")]
    AlreadyDecided(String),
    #[error("（{}）{}的结论应由{who}签署", .kind.letter(), .kind.label())]
    WrongDecider { kind: Kind, who: &'static str },
    #[error("您本人或您备案的近亲属在该比对项的家庭中，应当回避，不能作出结论（优亲厚友）")]
    OwnHousehold,
    #[error("未配置民政服务地址（comparison.civil_affairs），无法核对纳入的申请")]
    CivilAffairsNotConfigured,
    #[error("未配置扶贫服务地址（comparison.poverty_alleviation），无法核对认定登记")]
    PovertyNotConfigured,
}

impl Refusal for DecisionError {
    fn kind(&self) -> RefusalKind {
        match self {
            DecisionError::EntryNotFound(_) => RefusalKind::NotFound,
            DecisionError::WrongDecider { .. } | DecisionError::OwnHousehold => RefusalKind::PermissionDenied,
            _ => RefusalKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            DecisionError::EntryNotFound(_) => "ENTRY_NOT_FOUND",
            DecisionError::AlreadyDecided(_) => "ENTRY_ALREADY_DECIDED",
            DecisionError::WrongDecider { .. } => "WRONG_SIGNER",
            DecisionError::OwnHousehold => "OWN_HOUSEHOLD",
            DecisionError::CivilAffairsNotConfigured => "CIVIL_AFFAIRS_NOT_CONFIGURED",
            DecisionError::PovertyNotConfigured => "POVERTY_ALLEVIATION_NOT_CONFIGURED",
        }
    }
}

/// Where decisions are checked: the two rosters' services.
pub struct Rosters {
    pub civil: Option<Channel>,
    pub poverty: Option<Channel>,
}

/// Who may decide an entry of each list (R-CMP-3): civil affairs' officers
/// for (a) and the lists civil affairs keeps on file, the poverty office for (b).
fn may_decide(kind: Kind, role: OfficerRole) -> bool {
    let civil =
        matches!(role, OfficerRole::TownshipCaseworker | OfficerRole::TownshipReviewer | OfficerRole::CountyApprover);
    match kind {
        Kind::DibaoNotPoor => role == OfficerRole::PovertyOfficer,
        Kind::FlagMismatch | Kind::OnBoth | Kind::MembersDiffer => civil || role == OfficerRole::PovertyOfficer,
        Kind::PoorNotDibao | Kind::DeceasedPaid | Kind::OfficialRelative => civil,
    }
}

fn field(reason: String) -> Error {
    InvalidField::new("application_id", reason).into()
}

/// A decision to record, checked, with the officer deciding.
pub struct Deciding {
    pub entry_id: String,
    pub application_id: String,
    pub conclusion: String,
    pub officer: Officer,
}

impl Deciding {
    pub fn check(r: pb::RecordDecisionRequest, officer: &Officer) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let entry_id = r.entry_id.trim().to_owned();
        if entry_id.is_empty() {
            errors.push(InvalidField::new("entry_id", "必填项缺失"));
        }
        let application_id = r.application_id.trim().to_owned();
        let conclusion = r.conclusion.trim().to_owned();
        match (application_id.is_empty(), conclusion.chars().count()) {
            (true, 0) => errors
                .push(InvalidField::new("conclusion", "请填写纳入的申请编号，或写明不符合条件的结论及理由（R-CMP-3）")),
            (true, n) if n < MIN_CONCLUSION_CHARS => {
                errors.push(InvalidField::new("conclusion", format!("结论应写明理由，至少{MIN_CONCLUSION_CHARS}个字")))
            }
            _ => {}
        }
        if errors.is_empty() {
            Ok(Self { entry_id, application_id, conclusion, officer: officer.clone() })
        } else {
            Err(Error::InvalidArgument(errors))
        }
    }
}

/// The list an entry is on, its village and its members.
#[tracing::instrument(skip(client))]
async fn entry_of(client: &impl GenericClient, entry_id: &str) -> Result<Option<(Kind, String, Vec<String>)>, Error> {
    let row = client
        .query_opt("SELECT kind, village, members FROM run_entry WHERE entry_key = $1 LIMIT 1", &[&entry_id])
        .await?;
    Ok(row.map(|r| {
        let kind: i8 = r.get("kind");
        (Kind::from_letter(kind as u8 as char).unwrap_or(Kind::OnBoth), r.get("village"), r.get("members"))
    }))
}

/// Whether the officer, or a close relative of theirs on the officials'
/// registry, is among `members` (优亲厚友, seed 001).
async fn own_household(client: &impl GenericClient, officer: &Officer, members: &[String]) -> Result<bool, Error> {
    let Some(me) = &officer.identity_number else { return Ok(false) };
    if members.iter().any(|m| m == me.as_str()) {
        return Ok(true);
    }
    Ok(client
        .query_opt(
            "SELECT 1 FROM official_link WHERE official_id = $1 AND valid_to IS NULL AND person_id = ANY($2) LIMIT 1",
            &[&me.as_str(), &members],
        )
        .await?
        .is_some())
}

/// Records a decision on an entry, once. An entry outside the officer's
/// jurisdiction is not found; a refused attempt is on record in the access
/// log with who tried.
#[tracing::instrument(skip_all, fields(entry_id = %d.entry_id))]
pub async fn record(
    pool: &Pool,
    log: &AccessLog,
    rosters: &Rosters,
    d: Deciding,
    now: OffsetDateTime,
) -> Result<pb::RecordDecisionResponse, Error> {
    let client = pool.get().await?;
    let not_found = || DecisionError::EntryNotFound(d.entry_id.clone());
    let (kind, village, members) = entry_of(&client, &d.entry_id).await?.ok_or_else(not_found)?;
    if !DivisionCode::parse(&village).is_ok_and(|v| d.officer.covers(&v)) {
        return Err(not_found().into());
    }
    let Some(role) = d.officer.roles.iter().copied().find(|r| may_decide(kind, *r)) else {
        let who = if kind == Kind::DibaoNotPoor {
            "扶贫部门经办人员"
        } else {
            "民政部门乡镇或县级经办人员"
        };
        return Err(DecisionError::WrongDecider { kind, who }.into());
    };
    if own_household(&client, &d.officer, &members).await? {
        let refusal = DecisionError::OwnHousehold;
        let reader = Reader { caller: "gateway".to_owned(), officer: Some(d.officer.clone()) };
        let outcome = format!("refused: {refusal}");
        let entries =
            members.iter().map(|m| AccessEntry { outcome: outcome.clone(), ..reader.entry(m, "比对结论") }).collect();
        log.record_all(entries).await?;
        return Err(refusal.into());
    }
    if !d.application_id.is_empty() {
        match kind {
            Kind::PoorNotDibao => check_enrolment(&client, rosters, &d.entry_id, &d.application_id).await?,
            Kind::DibaoNotPoor => check_registration(&client, rosters, &d.entry_id, &d.application_id).await?,
            _ => {
                return Err(field(format!(
                    "只有（a）（b）类以纳入或认定作结论；（{}）{}请写明结论及理由",
                    kind.letter(),
                    kind.label()
                )));
            }
        }
    }
    let sig = d.officer.signature(role, now);
    let inserted = client
        .execute(
            "INSERT INTO decision (entry_key, kind, application_id, conclusion, officer_id, officer_name,
                                   officer_role, officer_division, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (entry_key) DO NOTHING",
            &[
                &d.entry_id,
                &(kind.letter() as u8 as i8),
                &d.application_id,
                &d.conclusion,
                &sig.officer_id,
                &sig.officer_name,
                &(sig.role as i32),
                &sig.division.as_str(),
                &now,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(DecisionError::AlreadyDecided(d.entry_id).into());
    }
    tracing::info!(entry_id = %d.entry_id, kind = %kind.letter(), officer = %sig.officer_id, "comparison decision recorded");
    Ok(pb::RecordDecisionResponse { recorded_at: Some(timestamp_of(now)) })
}

/// A list (a) entry ends in an enrolment only through civil affairs' own
/// application (R-CMP-3): it must exist, be an enrolment that was not
/// refused, and be for a household sharing a member with the
/// registered-poor household(s) the entry reported.
async fn check_enrolment(
    client: &impl GenericClient,
    rosters: &Rosters,
    entry_id: &str,
    application_id: &str,
) -> Result<(), Error> {
    if Uuid::parse_str(application_id).is_err() {
        return Err(field("申请编号格式不正确".to_owned()));
    }
    let channel = rosters.civil.clone().ok_or(DecisionError::CivilAffairsNotConfigured)?;
    let answer = CivilAffairsServiceClient::new(channel)
        .get_application(ca::GetApplicationRequest { application_id: application_id.to_owned() })
        .await;
    let application = match answer {
        Ok(r) => r.into_inner().application.unwrap_or_default(),
        Err(e) if e.code() == tonic::Code::NotFound => {
            return Err(field(format!("民政部门没有编号为{application_id}的申请")));
        }
        Err(e) => return Err(Error::Unavailable(format!("civil affairs GetApplication: {}", e.message()))),
    };
    if application.kind() != ca::ApplicationKind::Enrolment {
        return Err(field(format!("申请{application_id}是退出申请，不是纳入低保或特困的申请")));
    }
    if application.status() == ca::ApplicationStatus::Refused {
        return Err(field(format!("申请{application_id}已被拒绝，不能作为纳入的结论")));
    }
    let poor = entry_members(client, entry_id, "poor").await?;
    let shares =
        application.household.iter().flat_map(|h| &h.members).any(|m| {
            m.person.as_ref().and_then(|p| p.identity_number.as_ref()).is_some_and(|id| poor.contains(&id.value))
        });
    if !shares {
        return Err(field(format!("申请{application_id}的家庭与该建档立卡户没有相同成员，不是该户的纳入申请")));
    }
    Ok(())
}

/// A list (b) entry ends in a registration only through the poverty
/// office's own roster: `registration` is the registered-poor household it
/// registered, which must share a member with the entry's dibao
/// household(s) and not have exited.
async fn check_registration(
    client: &impl GenericClient,
    rosters: &Rosters,
    entry_id: &str,
    registration: &str,
) -> Result<(), Error> {
    if Uuid::parse_str(registration).is_err() {
        return Err(field("应填写扶贫部门认定登记的建档立卡户编号，格式不正确".to_owned()));
    }
    let channel = rosters.poverty.clone().ok_or(DecisionError::PovertyNotConfigured)?;
    let answer = PovertyAlleviationServiceClient::new(channel)
        .get_household(pa::GetHouseholdRequest { household_id: registration.to_owned() })
        .await;
    let household = match answer {
        Ok(r) => r.into_inner().household.unwrap_or_default(),
        Err(e) if e.code() == tonic::Code::NotFound => {
            return Err(field(format!("扶贫部门没有编号为{registration}的建档立卡户")));
        }
        Err(e) => return Err(Error::Unavailable(format!("poverty alleviation GetHousehold: {}", e.message()))),
    };
    let dibao = entry_members(client, entry_id, "dibao").await?;
    let shares = household.members.iter().any(|m| {
        m.person.as_ref().and_then(|p| p.identity_number.as_ref()).is_some_and(|id| dibao.contains(&id.value))
    });
    if !shares {
        return Err(field(format!("建档立卡户{registration}与该低保户没有相同成员，不是该户的认定登记")));
    }
    if household.status() == pa::PovertyStatus::Exited {
        return Err(field(format!("建档立卡户{registration}已标注脱贫，不能作为认定的结论")));
    }
    Ok(())
}

/// The members of an entry's households on one side (`dibao` or `poor`),
/// as the latest run reporting the entry saw them, and as they are now.
#[tracing::instrument(skip(client))]
async fn entry_members(client: &impl GenericClient, entry_id: &str, side: &str) -> Result<Vec<String>, Error> {
    let column = if side == "dibao" { "dibao" } else { "poor" };
    Ok(client
        .query(
            &format!(
                "WITH latest AS (
                     SELECT e.{column} AS households, r.view_position FROM run_entry e JOIN comparison_run r USING (run_id)
                     WHERE e.entry_key = $1 ORDER BY r.view_position DESC LIMIT 1)
                 SELECT DISTINCT m FROM latest CROSS JOIN unnest(latest.households) p
                 JOIN roster_household h ON h.side = $2 AND h.household_id = split_part(p, '|', 1)
                      AND (h.valid_to IS NULL OR (h.valid_from <= latest.view_position AND h.valid_to > latest.view_position))
                 CROSS JOIN unnest(h.members) m"
            ),
            &[&entry_id, &column],
        )
        .await?
        .iter()
        .map(|r| r.get("m"))
        .collect())
}
