//! A household's members changed (家庭成员变更): a birth, a marriage, a
//! member moving in or out. The township (or the county's operator)
//! records the household's living members as they now are; the change is
//! checked like a submission (identity numbers, R-ROSTER-4's composition,
//! nobody live in another household), signed and kept (`member_change`),
//! published at once (`HouseholdCompositionChanged`, R-SYNC-1), and the
//! household assessed again from the next month. Besides a death, this is
//! the one way an enrolled household's members change: a roster import
//! only adds households not yet on the roster.

use dibao_benefit_engine::household::validate_composition;
use dibao_platform::Error;
use dibao_platform::runtime::clock::{add_months, china_date};
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{Money, OfficerRole};
use dibao_proto::events::v1::{HouseholdCompositionChanged, event_envelope::Payload};
use dibao_proto::types::{Fen, IdentityNumber, InvalidField};
use prost::Message;
use uuid::Uuid;

use crate::application::Signer;
use crate::convert;
use crate::households::{self, HouseholdError, Roster};

#[derive(Debug, thiserror::Error)]
pub enum MemberChangeError {
    #[error("该家庭不在保（已退出、未获批准或仍在申请中），不能变更成员")]
    NotEnrolled,
    #[error("家庭成员没有变化")]
    Unchanged,
}

impl Refusal for MemberChangeError {
    fn kind(&self) -> RefusalKind {
        RefusalKind::FailedPrecondition
    }

    fn reason(&self) -> &'static str {
        match self {
            MemberChangeError::NotEnrolled => "HOUSEHOLD_NOT_ENROLLED",
            MemberChangeError::Unchanged => "MEMBERS_UNCHANGED",
        }
    }
}

/// A change of members to record, checked as far as the request alone says.
pub struct MemberChange {
    household_id: Uuid,
    members: Vec<pb::Member>,
    reason: String,
    signer: Signer,
}

impl MemberChange {
    pub fn check(req: pb::ChangeMembersRequest, officer: &Officer) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let household_id =
            convert::uuid(&req.household_id, "household_id", "家庭编号格式不正确").map_err(|e| errors.push(e)).ok();
        if req.members.is_empty() {
            errors.push(InvalidField::new(
                "members",
                "请列出变更后的全部在世家庭成员（成员死亡请办理死亡登记，全户退出请办理退出）",
            ));
        }
        let reason = req.reason.trim().to_owned();
        if reason.is_empty() {
            errors.push(InvalidField::new("reason", "请填写变更原因（如新生儿落户、婚嫁迁出）"));
        }
        let signer = Signer::among(officer, &[OfficerRole::TownshipCaseworker, OfficerRole::CountyOperator]);
        match (household_id, errors.is_empty()) {
            (Some(household_id), true) => Ok(Self { household_id, members: req.members, reason, signer }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// The field of the request an error of the household check is about
/// (`household.members[2]…` is the request's `members[2]…`).
fn in_request(mut e: InvalidField) -> InvalidField {
    e.field = e.field.trim_start_matches("household.").to_owned();
    e
}

/// Records the change: the members as listed, the household's next
/// version published, its certificate brought in line, its amount
/// assessed again from the next month.
#[tracing::instrument(skip_all, fields(household_id = %c.household_id))]
pub async fn change(roster: &Roster, c: MemberChange) -> Result<pb::ChangeMembersResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let row = households::lock(&tx, c.household_id).await?;
    // Another division's household is, to this officer, not there.
    let before = households::household_of(&row)?;
    if !c.signer.officer.covers(&households::village_of(&before)?) {
        return Err(HouseholdError::NotFound(c.household_id).into());
    }
    let enrolled = [pb::HouseholdStatus::Enrolled as i32, pb::HouseholdStatus::GradualExit as i32];
    if !enrolled.contains(&before.status) {
        return Err(MemberChangeError::NotEnrolled.into());
    }
    let candidate = pb::Household { members: c.members.clone(), ..before.clone() };
    let submitted = convert::household(&candidate, "household")
        .map_err(|errors| Error::InvalidArgument(errors.into_iter().map(in_request).collect()))?;
    validate_composition(&submitted.household, china_date(now))
        .map_err(|errors| Error::InvalidArgument(errors.into_iter().map(in_request).collect()))?;
    let ids: Vec<String> = submitted.household.members.iter().map(|m| m.identity.as_str().to_owned()).collect();
    let held: Vec<String> = tx
        .query("SELECT identity_number FROM household_member WHERE household_id = $1 AND live", &[&c.household_id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Nobody live in another household, nobody recorded dead: the first
    // listed who is either, named.
    if let Some(found) = tx
        .query_opt(
            "SELECT identity_number, dead FROM (
                 SELECT identity_number, false AS dead FROM household_member
                  WHERE live AND identity_number = ANY($1) AND household_id <> $2
                 UNION ALL
                 SELECT identity_number, true FROM member_death WHERE identity_number = ANY($1)
             ) found ORDER BY array_position($1, identity_number) LIMIT 1",
            &[&ids, &c.household_id],
        )
        .await?
    {
        let person: String = found.get("identity_number");
        let i = ids.iter().position(|x| *x == person).unwrap_or(0);
        let reason = if found.get("dead") {
            "该成员已登记死亡，不能列为在世成员"
        } else {
            "该成员已在另一低保、特困家庭中，同一人不得重复纳入，配偶和未成年子女不得分户（R-ROSTER-4）"
        };
        return Err(InvalidField::new(format!("members[{i}].person.identity_number"), reason).into());
    }
    let joined: Vec<&String> = ids.iter().filter(|id| !held.contains(id)).collect();
    let left: Vec<&String> = held.iter().filter(|id| !ids.contains(id)).collect();
    if joined.is_empty() && left.is_empty() {
        return Err(MemberChangeError::Unchanged.into());
    }

    // The body keeps the members as given, identity numbers canonical.
    let mut body = pb::Household::decode(row.get::<_, Vec<u8>>("body").as_slice())
        .map_err(|e| Error::stored(format!("household {}: {e}", c.household_id)))?;
    body.members = c.members.clone();
    for (m, parsed) in body.members.iter_mut().zip(&submitted.household.members) {
        if let Some(p) = m.person.as_mut() {
            p.identity_number =
                Some(dibao_proto::common::v1::IdentityNumber { value: parsed.identity.as_str().to_owned() });
        }
    }
    households::replace_members(&tx, c.household_id, &ids).await?;
    let version: i64 = tx
        .query_one(
            "UPDATE household SET version = version + 1, body = $2 WHERE household_id = $1 RETURNING version",
            &[&c.household_id, &body.encode_to_vec()],
        )
        .await?
        .get(0);
    let officer = &c.signer.officer;
    tx.execute(
        "INSERT INTO member_change (household_id, joined, left_household, reason, officer_id, officer_name, role,
                                    division, assertion_id, issuer, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &c.household_id,
            &joined,
            &left,
            &c.reason,
            &officer.officer_id,
            &officer.name,
            &(c.signer.role as i32),
            &officer.division.as_str(),
            &officer.assertion_id,
            &officer.issuer,
            &now,
        ],
    )
    .await?;
    let payload = Payload::HouseholdCompositionChanged(HouseholdCompositionChanged {
        household_id: c.household_id.to_string(),
        members: households::roster_members(&body, &submitted.covered),
        reason: c.reason.clone(),
    });
    households::publish(&tx, &roster.topic, c.household_id, version, payload).await?;

    // From the next month, the household as it now stands.
    let after = pb::Household { members: body.members.clone(), version, ..before };
    let month = add_months(households::first_of_month(now), 1);
    let why =
        |old: Fen, new: Fen| format!("家庭成员变更（{}），自{month}起重新核定：月保障金由{old}调整为{new}", c.reason);
    let amount = match households::reassess(&tx, &roster.topic, &row, &after, month, now, &why).await? {
        Some(new) => new,
        None => {
            // Its members are on the certificate whether or not the amount moved.
            crate::certificates::reissue(&tx, c.household_id, &format!("家庭成员变更：{}", c.reason), now).await?;
            Fen(row.get("monthly_amount_fen"))
        }
    };
    tx.commit().await?;
    tracing::info!(household_id = %c.household_id, joined = joined.len(), left = left.len(), %amount, "members changed");
    let masked = |ids: &[&String]| {
        ids.iter().filter_map(|id| IdentityNumber::parse(id).ok()).map(|id| id.masked()).collect::<Vec<_>>()
    };
    Ok(pb::ChangeMembersResponse {
        monthly_amount: Some(Money { fen: amount.0 }),
        joined: masked(&joined),
        left: masked(&left),
    })
}
