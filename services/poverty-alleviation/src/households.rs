//! The registered-poor roster's households (R-ROSTER-2): registration (one
//! at a time, or under the county's number by the import), status changes,
//! deaths, the candidate list for the next adjustment, and the snapshot
//! export; each change with its event, in one transaction (R-SYNC-1).

use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool, Transaction};
use dibao_platform::Error;
use dibao_platform::events::outbox::{self, NewEvent, timestamp_of};
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::store::snapshot::{self, Export};
use dibao_platform::trust::access_log::AccessLog;
use dibao_platform::trust::officer::Officer;
use dibao_proto::common::v1::{self as common, OfficerRole, Relation};
use dibao_proto::events::v1::{
    DibaoFlagChanged, MemberDeceased, PoorHouseholdCompositionChanged, PoorHouseholdExitedPoverty,
    PoorHouseholdRegistered, PoorHouseholdReturnedToPoverty, PovertyCause, event_envelope::Payload,
};
use dibao_proto::poverty_alleviation::v1 as pb;
use dibao_proto::types::{DivisionCode, DivisionLevel, IdentityNumber, InvalidField, date_to_pb};
use prost::Message;
use time::{Date, OffsetDateTime};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::sync;

const PRODUCER: &str = "poverty-alleviation";
const AGGREGATE: &str = "poverty_alleviation.household";

/// What every room of the poverty office works on.
pub struct Roster {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    /// Topic of this roster's household events.
    pub topic: String,
    /// Where every read of a person's data goes.
    pub log: AccessLog,
}

#[derive(Debug, thiserror::Error)]
pub enum PovertyError {
    #[error("建档立卡户{0}不存在")]
    NotFound(Uuid),
    #[error("{0}不在建档立卡户中，或死亡已记录")]
    NoLiveMember(String),
    #[error("该户已标注脱贫")]
    AlreadyExited,
    #[error("只有已脱贫的户才能标注返贫")]
    NotExited,
    #[error("该成员已登记在另一建档立卡户中，同一人不得重复登记")]
    MemberTaken { field: String },
    #[error("家庭成员没有变化")]
    MembersUnchanged,
}

impl Refusal for PovertyError {
    fn kind(&self) -> RefusalKind {
        match self {
            PovertyError::NotFound(_) | PovertyError::NoLiveMember(_) => RefusalKind::NotFound,
            PovertyError::AlreadyExited | PovertyError::NotExited | PovertyError::MembersUnchanged => {
                RefusalKind::FailedPrecondition
            }
            PovertyError::MemberTaken { field } => RefusalKind::InvalidArgument { field: field.clone() },
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            PovertyError::NotFound(_) => "HOUSEHOLD_NOT_FOUND",
            PovertyError::NoLiveMember(_) => "NOT_A_LIVE_MEMBER",
            PovertyError::AlreadyExited => "ALREADY_EXITED",
            PovertyError::NotExited => "NOT_EXITED",
            PovertyError::MemberTaken { .. } => "MEMBER_IN_ANOTHER_HOUSEHOLD",
            PovertyError::MembersUnchanged => "MEMBERS_UNCHANGED",
        }
    }
}

/// Writes an event for a registered household into the outbox, in `tx`.
#[tracing::instrument(skip(tx, payload))]
pub async fn publish(
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
    /// The office's dibao-registered-poor flag, as submitted (R-ROSTER-2).
    flag: bool,
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
    canonical.flag_recorded_by.clear();
    canonical.flag_recorded_at = None;
    canonical.flag_basis.clear();
    Ok(Checked { village, ids, flag: h.dibao_registered_poor, canonical })
}

/// The roles that see members' identity numbers in full: the office's own
/// officers. Everyone else reads them masked.
pub const FULL_DETAIL: &[OfficerRole] = &[
    OfficerRole::PovertyOfficer,
    // The operator's resync carries the snapshot whole into the other roster's view.
    OfficerRole::SystemOperator,
];

/// The household as a reader without [`FULL_DETAIL`] sees it.
fn mask(h: &mut pb::PoorHousehold) {
    let masked = dibao_proto::types::masked_identity;
    for id in h.members.iter_mut().filter_map(|m| m.person.as_mut()?.identity_number.as_mut()) {
        id.value = masked(&id.value);
    }
    for id in &mut h.deceased {
        id.value = masked(&id.value);
    }
}

fn members_of(h: &pb::PoorHousehold) -> impl Iterator<Item = String> + '_ {
    h.members.iter().filter_map(|m| m.person.as_ref()?.identity_number.as_ref().map(|i| i.value.clone()))
}

/// Refuses, as if it were not there, a household outside the officer's jurisdiction.
async fn covered(client: &impl GenericClient, reader: &Reader, id: Uuid) -> Result<(), Error> {
    let village: Option<String> = client
        .query_opt("SELECT village FROM poor_household WHERE household_id = $1", &[&id])
        .await?
        .map(|r| r.get("village"));
    match village.and_then(|v| DivisionCode::parse(&v).ok()) {
        Some(v) if reader.covers(&v) => Ok(()),
        _ => Err(PovertyError::NotFound(id).into()),
    }
}

/// The columns every household read selects, by the names [`household_of`] reads.
const COLUMNS: &str = "household_id, body, status, exit_year, dibao_registered_poor, dibao_category, version, \
                       dibao_household_ids, return_cause, source_id, flag_recorded_by, flag_recorded_at, flag_basis, \
                       array(SELECT identity_number FROM poor_member m
                             WHERE m.household_id = poor_household.household_id AND m.died_on IS NOT NULL
                             ORDER BY 1) AS deceased";

fn household_of(row: &Row) -> Result<pb::PoorHousehold, Error> {
    let id: Uuid = row.get("household_id");
    let body: Vec<u8> = row.get("body");
    let mut h =
        pb::PoorHousehold::decode(body.as_slice()).map_err(|e| Error::stored(format!("household {id}: {e}")))?;
    h.household_id = id.to_string();
    h.status = row.get("status");
    h.exit_year = row.get::<_, Option<i32>>("exit_year").unwrap_or(0);
    h.dibao_registered_poor = row.get("dibao_registered_poor");
    h.dibao_category = row.get("dibao_category");
    h.version = row.get("version");
    h.dibao_household_ids = row.get("dibao_household_ids");
    h.return_cause = row.get("return_cause");
    h.household_number = row.get::<_, Option<String>>("source_id").unwrap_or_default();
    h.flag_recorded_by = row.get("flag_recorded_by");
    h.flag_recorded_at = row.get::<_, Option<OffsetDateTime>>("flag_recorded_at").map(timestamp_of);
    h.flag_basis = row.get("flag_basis");
    h.deceased =
        row.get::<_, Vec<String>>("deceased").into_iter().map(|value| common::IdentityNumber { value }).collect();
    Ok(h)
}

/// The county's next household number for a household registered one by
/// one (an imported one keeps its roster file's): the county code and a
/// six-digit sequence of the county's (`220581000001`), skipping any a
/// roster file already used.
async fn next_number(tx: &Transaction<'_>, county: &str) -> Result<String, Error> {
    loop {
        let number = dibao_platform::store::db::next_county_number(tx, county).await?;
        let taken = tx
            .query_opt("SELECT 1 FROM poor_household WHERE county = $1 AND source_id = $2", &[&county, &number])
            .await?;
        if taken.is_none() {
            return Ok(number);
        }
    }
}

/// What a registration did.
pub enum Registered {
    New(Uuid),
    Changed,
    Unchanged,
}

/// The live members of the household registered under `source_id` in `county`.
#[tracing::instrument(skip(tx))]
async fn members_under(tx: &Transaction<'_>, county: &str, source_id: &str) -> Result<Vec<String>, Error> {
    Ok(tx
        .query(
            "SELECT m.identity_number FROM poor_household h JOIN poor_member m USING (household_id)
             WHERE h.county = $1 AND h.source_id = $2 AND m.live",
            &[&county, &source_id],
        )
        .await?
        .iter()
        .map(|r| r.get("identity_number"))
        .collect())
}

/// How a household comes to [`register`].
#[derive(Debug, Clone, Copy)]
pub enum Via<'a> {
    /// The officer's registration form: a new household.
    Form,
    /// A line of the office's roster file under this number (a migration
    /// tool): a new household; one already registered under it only when
    /// the line is what is stored (a file sent twice), otherwise refused,
    /// naming the process that changes it.
    File(&'a str),
    /// The office's change of the members of the household under this number.
    Members(&'a str),
}

/// Registers a household, or (`Via::Members`) brings the one registered
/// under its number to the members `h` lists; the change and its event in
/// `tx`, and the dibao flag it now has (R-SYNC-2).
pub async fn register(
    roster: &Roster,
    officer: &Officer,
    tx: &Transaction<'_>,
    h: &pb::PoorHousehold,
    via: Via<'_>,
) -> Result<Registered, Error> {
    let source_id = match via {
        Via::Form => None,
        Via::File(s) | Via::Members(s) => Some(s),
    };
    let checked = check(h, "household")?;
    officer.must_cover(&checked.village, "household.village")?;
    let county = checked.village.county().ok_or_else(|| InvalidField::new("household.village", "无法确定所属县"))?;
    let ids: Vec<String> = checked.ids.iter().map(|i| i.as_str().to_owned()).collect();
    // Whose flags to recompute: the members, and any who left.
    let mut affected = ids.clone();
    // Person locks before any row lock, in the order the inbox takes them
    // (sorted), so a registration and an enrolment of the same people
    // queue instead of deadlocking; the members who may leave included.
    let leaving = match source_id {
        Some(s) => members_under(tx, county.as_str(), s).await?,
        None => vec![],
    };
    let persons: Vec<&String> = ids.iter().chain(&leaving).collect();
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('person:' || id, 0))
         FROM (SELECT DISTINCT id FROM unnest($1::text[]) AS id ORDER BY id) AS persons",
        &[&persons],
    )
    .await?;
    let existing = match source_id {
        Some(s) => tx
            .query_opt(
                "SELECT household_id, body, version, dibao_registered_poor FROM poor_household
                 WHERE county = $1 AND source_id = $2 FOR UPDATE",
                &[&county.as_str(), &s],
            )
            .await?
            .map(|r| {
                (
                    r.get::<_, Uuid>("household_id"),
                    r.get::<_, Vec<u8>>("body"),
                    r.get::<_, i64>("version"),
                    r.get::<_, bool>("dibao_registered_poor"),
                )
            }),
        None => None,
    };
    let own = existing.as_ref().map_or_else(Uuid::nil, |(id, ..)| *id);
    // The flag as the office records it: on its roster file, or on the form.
    let basis = if source_id.is_some() { "建档立卡名单导入" } else { "建档立卡登记" };
    if let Some(clash) = tx
        .query_opt(
            "SELECT identity_number FROM poor_member WHERE live AND identity_number = ANY($1) AND household_id <> $2
             ORDER BY array_position($1, identity_number) LIMIT 1",
            &[&ids, &own],
        )
        .await?
    {
        let taken: String = clash.get("identity_number");
        let index = ids.iter().position(|x| *x == taken).unwrap_or(0);
        // Named as the request names it: a household's members, or a change's.
        let prefix = if matches!(via, Via::Members(_)) { "" } else { "household." };
        return Err(
            PovertyError::MemberTaken { field: format!("{prefix}members[{index}].person.identity_number") }.into()
        );
    }
    let body = checked.canonical.encode_to_vec();
    let now = roster.clock.now();
    let (household_id, outcome) = match existing {
        None => {
            let id = Uuid::now_v7();
            let source_id = match source_id {
                Some(s) => s.to_owned(),
                None => next_number(tx, county.as_str()).await?,
            };
            tx.execute(
                "INSERT INTO poor_household (household_id, source_id, county, village, status, body, created_at,
                                             dibao_registered_poor, flag_recorded_by, flag_recorded_at, flag_basis)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $7, $10)",
                &[
                    &id,
                    &source_id,
                    &county.as_str(),
                    &checked.village.as_str(),
                    &(pb::PovertyStatus::InPoverty as i32),
                    &body,
                    &now,
                    &checked.flag,
                    &officer.officer_id,
                    &basis,
                ],
            )
            .await?;
            let payload = Payload::PoorHouseholdRegistered(PoorHouseholdRegistered {
                household_id: id.to_string(),
                village: Some((&checked.village).into()),
                members: checked.canonical.members.clone(),
                causes: checked.canonical.causes.clone(),
                household_number: source_id,
                dibao_registered_poor: checked.flag,
            });
            publish(tx, &roster.topic, &id.to_string(), 1, payload).await?;
            (id, Registered::New(id))
        }
        // A household on the roster changes through the office's signed
        // processes, never by a file (issue 23, item 6): the same line
        // again changes nothing, any other is refused, naming the process.
        Some((_, old, _, flag)) if matches!(via, Via::File(_)) => {
            let number = source_id.unwrap_or_default();
            return if old == body && flag == checked.flag {
                Ok(Registered::Unchanged)
            } else if old == body {
                Err(InvalidField::new(
                    "household.dibao_registered_poor",
                    format!("户编号“{number}”的建档立卡户已在库：扶贫低保户标识请通过标识变更办理，并填写依据"),
                )
                .into())
            } else {
                Err(InvalidField::new(
                    "household.household_id",
                    format!(
                        "户编号“{number}”的建档立卡户已在库，导入只新增尚未在库的户：家庭成员变化请办理成员变更或死亡登记，\
                         脱贫、返贫请办理状态变更"
                    ),
                )
                .into())
            };
        }
        Some((_, old, _, _)) if old == body => return Err(PovertyError::MembersUnchanged.into()),
        Some((id, _, version, _)) => {
            let version = version + 1;
            tx.execute(
                "UPDATE poor_household SET body = $2, village = $3, version = $4 WHERE household_id = $1",
                &[&id, &body, &checked.village.as_str(), &version],
            )
            .await?;
            // Those who left are recomputed (and locked) with those who stay.
            let left = tx
                .query(
                    "UPDATE poor_member SET live = false
                     WHERE household_id = $1 AND live AND NOT (identity_number = ANY($2))
                     RETURNING identity_number",
                    &[&id, &ids],
                )
                .await?;
            affected.extend(left.iter().map(|r| r.get::<_, String>("identity_number")));
            let payload = Payload::PoorHouseholdCompositionChanged(PoorHouseholdCompositionChanged {
                household_id: id.to_string(),
                members: checked.canonical.members.clone(),
            });
            publish(tx, &roster.topic, &id.to_string(), version, payload).await?;
            // The flag stays as the office recorded it.
            (id, Registered::Changed)
        }
    };
    tx.execute(
        "INSERT INTO poor_member (identity_number, household_id, live) SELECT unnest($1::text[]), $2, true
         ON CONFLICT (identity_number, household_id) DO UPDATE SET live = true",
        &[&ids, &household_id],
    )
    .await?;
    // The dibao households sharing its members, at once. On a registration
    // the flag stays as the office recorded it, and where the dibao roster
    // says otherwise the comparison's list (e) reports it until the office
    // or the sync sets it; a change of members touches the household as a
    // dibao change of members does (R-SYNC-2): its flag is set as the dibao
    // roster now says, recorded as the sync's.
    let flags = if matches!(via, Via::Members(_)) { sync::Flags::Sync } else { sync::Flags::Matches };
    sync::refresh_flags(tx, &roster.topic, &affected, &[], flags).await?;
    Ok(outcome)
}

/// Records the office's flag on a household, locked in `tx`, when it
/// differs from the one held: who, when, on what basis, published with
/// the household's next version (`DibaoFlagChanged`). Returns that version,
/// or `None` when the flag already was so.
async fn record_flag(
    tx: &Transaction<'_>,
    topic: &str,
    id: Uuid,
    flag: bool,
    by: &str,
    basis: &str,
    at: OffsetDateTime,
) -> Result<Option<i64>, Error> {
    let Some(row) = tx
        .query_opt(
            "UPDATE poor_household
             SET dibao_registered_poor = $2, flag_recorded_by = $3, flag_basis = $4, flag_recorded_at = $5,
                 version = version + 1
             WHERE household_id = $1 AND dibao_registered_poor <> $2
             RETURNING version, dibao_category, dibao_household_ids",
            &[&id, &flag, &by, &basis, &at],
        )
        .await?
    else {
        return Ok(None);
    };
    let version: i64 = row.get("version");
    let payload = Payload::DibaoFlagChanged(DibaoFlagChanged {
        household_id: id.to_string(),
        dibao_registered_poor: flag,
        category: row.get("dibao_category"),
        dibao_household_ids: row.get("dibao_household_ids"),
    });
    publish(tx, topic, &id.to_string(), version, payload).await?;
    tracing::info!(household_id = %id, dibao_registered_poor = flag, "dibao flag recorded by the office");
    Ok(Some(version))
}

/// A change of the flag by the office, checked.
pub struct FlagChange {
    pub household_id: Uuid,
    pub flag: bool,
    pub basis: String,
}

impl FlagChange {
    pub fn check(req: pb::SetDibaoFlagRequest) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let id = Uuid::parse_str(&req.household_id)
            .map_err(|_| errors.push(InvalidField::new("household_id", "户编号格式不正确")))
            .ok();
        let basis = req.basis.trim();
        if basis.is_empty() {
            errors.push(InvalidField::new("basis", "请填写变更依据"));
        } else if basis.chars().count() > 200 {
            errors.push(InvalidField::new("basis", "变更依据不能超过200字"));
        }
        match (id, errors.is_empty()) {
            (Some(household_id), true) => {
                Ok(Self { household_id, flag: req.dibao_registered_poor, basis: basis.to_owned() })
            }
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// The office's own change of a household's flag (R-ROSTER-2), by the
/// officer whose jurisdiction holds it; a flag already so changes nothing.
#[tracing::instrument(skip_all, fields(household_id = %c.household_id))]
pub async fn set_flag(
    roster: &Roster,
    reader: &Reader,
    officer: &Officer,
    c: FlagChange,
) -> Result<pb::SetDibaoFlagResponse, Error> {
    let id = c.household_id;
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    covered(&tx, reader, id).await?;
    let current: i64 = tx
        .query_opt("SELECT version FROM poor_household WHERE household_id = $1 FOR UPDATE", &[&id])
        .await?
        .ok_or(PovertyError::NotFound(id))?
        .get("version");
    let now = roster.clock.now();
    let version =
        record_flag(&tx, &roster.topic, id, c.flag, &officer.officer_id, &c.basis, now).await?.unwrap_or(current);
    tx.commit().await?;
    Ok(pb::SetDibaoFlagResponse { version })
}

/// Attempts of a registration that collided with a concurrent change.
const ATTEMPTS: usize = 5;

/// A change of a household's members by the office, checked.
pub struct MembersChange {
    pub household_id: Uuid,
    pub members: Vec<dibao_proto::events::v1::RosterMember>,
    pub reason: String,
}

impl MembersChange {
    pub fn check(req: pb::ChangeMembersRequest) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let id = Uuid::parse_str(&req.household_id)
            .map_err(|_| errors.push(InvalidField::new("household_id", "户编号格式不正确")))
            .ok();
        if req.members.is_empty() {
            errors.push(InvalidField::new("members", "请列出变更后的全部在世家庭成员（成员死亡请办理死亡登记）"));
        }
        let reason = req.reason.trim();
        if reason.is_empty() {
            errors.push(InvalidField::new("reason", "请填写变更原因（如新生儿落户、婚嫁迁出）"));
        }
        match (id, errors.is_empty()) {
            (Some(household_id), true) => Ok(Self { household_id, members: req.members, reason: reason.to_owned() }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// The office's change of a household's members (a birth, a marriage, a
/// member moving in or out), by the officer whose jurisdiction holds it:
/// checked like a registration, kept with who joined and left, why and who
/// recorded it (`member_change`), published as the household's next version
/// (`PoorHouseholdCompositionChanged`), the dibao flags of everyone it
/// touches recomputed; retried like a registration when it collides with
/// the other roster's events touching the same people.
#[tracing::instrument(skip_all, fields(household_id = %c.household_id))]
pub async fn change_members(
    roster: &Roster,
    reader: &Reader,
    officer: &Officer,
    c: MembersChange,
) -> Result<pb::ChangeMembersResponse, Error> {
    let mut client = roster.pool.get().await?;
    let mut attempt = 1;
    loop {
        let tx = client.transaction().await?;
        covered(&tx, reader, c.household_id).await?;
        let row = tx
            .query_opt(&format!("SELECT {COLUMNS} FROM poor_household WHERE household_id = $1"), &[&c.household_id])
            .await?
            .ok_or(PovertyError::NotFound(c.household_id))?;
        let source: String = row.get("source_id");
        let h = pb::PoorHousehold { members: c.members.clone(), ..household_of(&row)? };
        let live = "SELECT coalesce(array_agg(identity_number ORDER BY identity_number), '{}')
                    FROM poor_member WHERE household_id = $1 AND live";
        let before: Vec<String> = tx.query_one(live, &[&c.household_id]).await?.get(0);
        match register(roster, officer, &tx, &h, Via::Members(&source)).await {
            Ok(_) => {
                let after: Vec<String> = tx.query_one(live, &[&c.household_id]).await?.get(0);
                let joined: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
                let left: Vec<&String> = before.iter().filter(|p| !after.contains(p)).collect();
                tx.execute(
                    "INSERT INTO member_change (household_id, joined, left_household, reason, officer_id, officer_name,
                                                division, assertion_id, issuer, recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &c.household_id,
                        &joined,
                        &left,
                        &c.reason,
                        &officer.officer_id,
                        &officer.name,
                        &officer.division.as_str(),
                        &officer.assertion_id,
                        &officer.issuer,
                        &roster.clock.now(),
                    ],
                )
                .await?;
                let version: i64 = tx
                    .query_one("SELECT version FROM poor_household WHERE household_id = $1", &[&c.household_id])
                    .await?
                    .get(0);
                tx.commit().await?;
                tracing::info!(household_id = %c.household_id, reason = %c.reason, "poor household's members changed");
                return Ok(pb::ChangeMembersResponse { version });
            }
            Err(Error::Conflict(_)) if attempt < ATTEMPTS => attempt += 1,
            // The request names the members directly, not a household's.
            Err(Error::InvalidArgument(errors)) => {
                return Err(Error::InvalidArgument(
                    errors
                        .into_iter()
                        .map(|mut e| {
                            e.field = e.field.trim_start_matches("household.").to_owned();
                            e
                        })
                        .collect(),
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Registers one household (the officer's registration), retried when it
/// collides with the other roster's events touching the same people.
#[tracing::instrument(skip_all)]
pub async fn register_one(
    roster: &Roster,
    officer: &Officer,
    req: pb::RegisterHouseholdRequest,
) -> Result<pb::RegisterHouseholdResponse, Error> {
    let h = req.household.ok_or_else(|| InvalidField::new("household", "必填项缺失"))?;
    let mut client = roster.pool.get().await?;
    let mut attempt = 1;
    let id = loop {
        let tx = client.transaction().await?;
        match register(roster, officer, &tx, &h, Via::Form).await {
            Ok(Registered::New(id)) => {
                tx.commit().await?;
                break id;
            }
            Ok(_) => {
                return Err(Error::Unexpected(anyhow::anyhow!(
                    "registration without a source id found an existing household"
                )));
            }
            Err(Error::Conflict(_)) if attempt < ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    tracing::info!(household_id = %id, "poor household registered");
    Ok(pb::RegisterHouseholdResponse { household_id: id.to_string() })
}

/// One household with its deaths, as `reader` may read it.
#[tracing::instrument(skip(roster, reader))]
pub async fn get(roster: &Roster, reader: &Reader, id: Uuid) -> Result<pb::PoorHousehold, Error> {
    let client = roster.pool.get().await?;
    covered(&client, reader, id).await?;
    let row = client
        .query_opt(&format!("SELECT {COLUMNS} FROM poor_household WHERE household_id = $1"), &[&id])
        .await?
        .ok_or(PovertyError::NotFound(id))?;
    let mut h = household_of(&row)?;
    roster.log.record_all(members_of(&h).map(|p| reader.entry(&p, "查阅建档立卡户")).collect()).await?;
    if !reader.sees_in_full(FULL_DETAIL) {
        mask(&mut h);
    }
    Ok(h)
}

/// A status change, checked.
pub struct StatusChange {
    pub household_id: Uuid,
    pub status: pb::PovertyStatus,
    pub exit_year: i32,
    pub return_cause: i32,
}

impl StatusChange {
    pub fn check(req: pb::ChangeStatusRequest, now: OffsetDateTime) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let id = Uuid::parse_str(&req.household_id)
            .map_err(|_| errors.push(InvalidField::new("household_id", "户编号格式不正确")))
            .ok();
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
        match (id, errors.is_empty()) {
            (Some(household_id), true) => {
                Ok(Self { household_id, status, exit_year: req.exit_year, return_cause: req.return_cause })
            }
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// Marks a household exited from poverty, or returned to it.
#[tracing::instrument(skip_all, fields(household_id = %c.household_id))]
pub async fn change_status(
    roster: &Roster,
    reader: &Reader,
    c: StatusChange,
) -> Result<pb::ChangeStatusResponse, Error> {
    let now = roster.clock.now();
    let id = c.household_id;
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    covered(&tx, reader, id).await?;
    let row = tx
        .query_opt("SELECT status, version FROM poor_household WHERE household_id = $1 FOR UPDATE", &[&id])
        .await?
        .ok_or(PovertyError::NotFound(id))?;
    let current: i32 = row.get("status");
    let version: i64 = row.get::<_, i64>("version") + 1;
    let payload = match c.status {
        pb::PovertyStatus::Exited => {
            if current == pb::PovertyStatus::Exited as i32 {
                return Err(PovertyError::AlreadyExited.into());
            }
            Payload::PoorHouseholdExitedPoverty(PoorHouseholdExitedPoverty {
                household_id: id.to_string(),
                exit_year: c.exit_year,
            })
        }
        _ => {
            if current != pb::PovertyStatus::Exited as i32 {
                return Err(PovertyError::NotExited.into());
            }
            Payload::PoorHouseholdReturnedToPoverty(PoorHouseholdReturnedToPoverty {
                household_id: id.to_string(),
                cause: c.return_cause,
                returned_on: Some(date_to_pb(china_date(now))),
            })
        }
    };
    let exit_year = (c.status == pb::PovertyStatus::Exited).then_some(c.exit_year);
    let cause = if c.status == pb::PovertyStatus::Returned { c.return_cause } else { 0 };
    tx.execute(
        "UPDATE poor_household SET status = $2, exit_year = coalesce($3, exit_year), return_cause = $4, version = $5
         WHERE household_id = $1",
        &[&id, &(c.status as i32), &exit_year, &cause, &version],
    )
    .await?;
    publish(&tx, &roster.topic, &id.to_string(), version, payload).await?;
    tx.commit().await?;
    tracing::info!(household_id = %id, status = ?c.status, "poverty status changed");
    Ok(pb::ChangeStatusResponse { version })
}

/// Enrolled dibao and special-hardship households none of whose members is
/// on the registered-poor roster (R-REV-2), with the latest comparison run
/// covering the division.
pub async fn candidates(
    roster: &Roster,
    reader: &Reader,
    req: pb::ListCandidatesRequest,
) -> Result<pb::ListCandidatesResponse, Error> {
    let mut errors = Vec::new();
    let division = match &req.division {
        Some(d) => DivisionCode::try_from(d).map_err(|e| errors.push(e.within("division"))).ok(),
        None => {
            errors.push(InvalidField::new("division", "必填项缺失"));
            None
        }
    };
    // Outside the jurisdiction: refused before anything else is said.
    if let Some(d) = &division {
        reader.must_cover(d, "division")?;
    }
    let page = req.page.unwrap_or_default();
    if !(0..=1000).contains(&page.page_size) {
        errors.push(InvalidField::new("page.page_size", "每页条数应在1到1000之间"));
    }
    let Some(division) = division.filter(|_| errors.is_empty()) else {
        return Err(Error::InvalidArgument(errors));
    };
    let size = i64::from(if page.page_size == 0 { 100 } else { page.page_size });
    let client = roster.pool.get().await?;
    let rows = client
        .query(
            "SELECT d.dibao_household_id, d.programme, d.village, d.category,
                    array(SELECT identity_number FROM dibao_member m WHERE m.dibao_household_id = d.dibao_household_id ORDER BY 1)
                        AS members
             FROM dibao_household d
             WHERE d.enrolled AND d.village LIKE $1 || '%' AND d.dibao_household_id > $2
               AND NOT EXISTS (SELECT 1 FROM dibao_member m JOIN poor_member p ON p.identity_number = m.identity_number AND p.live
                               WHERE m.dibao_household_id = d.dibao_household_id)
             ORDER BY d.dibao_household_id LIMIT $3",
            &[&division.prefix(), &page.page_token, &(size + 1)],
        )
        .await?;
    let more = rows.len() as i64 > size;
    let candidates: Vec<pb::Candidate> = rows
        .iter()
        .take(size as usize)
        .map(|r| pb::Candidate {
            dibao_household_id: r.get("dibao_household_id"),
            programme: r.get("programme"),
            village: Some(common::DivisionCode { code: r.get("village") }),
            category: r.get("category"),
            members: r
                .get::<_, Vec<String>>("members")
                .into_iter()
                .map(|value| common::IdentityNumber { value })
                .collect(),
        })
        .collect();
    let next_page_token =
        if more { candidates.last().map(|c| c.dibao_household_id.clone()).unwrap_or_default() } else { String::new() };
    let mut candidates = candidates;
    roster
        .log
        .record_all(
            candidates.iter().flat_map(|c| &c.members).map(|m| reader.entry(&m.value, "查阅待认定名单")).collect(),
        )
        .await?;
    if !reader.sees_in_full(FULL_DETAIL) {
        for m in candidates.iter_mut().flat_map(|c| c.members.iter_mut()) {
            m.value = IdentityNumber::parse(&m.value).map(|i| i.masked()).unwrap_or_default();
        }
    }
    let latest_comparison = client
        .query_opt(
            "SELECT run_id, division, completed_at, dibao_not_poor, flag_mismatches FROM comparison_run
             WHERE $1 LIKE scope || '%' ORDER BY completed_at DESC, run_id LIMIT 1",
            &[&division.prefix()],
        )
        .await?
        .map(|r| pb::LatestComparison {
            run_id: r.get("run_id"),
            division: Some(common::DivisionCode { code: r.get("division") }),
            completed_at: Some(timestamp_of(r.get("completed_at"))),
            dibao_not_poor: r.get("dibao_not_poor"),
            flag_mismatches: r.get("flag_mismatches"),
        });
    Ok(pb::ListCandidatesResponse {
        candidates,
        page: Some(common::PageResponse { next_page_token }),
        latest_comparison,
    })
}

/// A death to record, checked.
pub struct DeathReport {
    pub person: IdentityNumber,
    pub died_on: Date,
}

impl DeathReport {
    pub fn check(req: pb::RecordDeathRequest, now: OffsetDateTime) -> Result<Self, Error> {
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
        if died_on.is_some_and(|d| d > china_date(now)) {
            errors.push(InvalidField::new("died_on", "死亡日期不能晚于今天"));
        }
        if req.source.trim().is_empty() {
            errors.push(InvalidField::new("source", "请填写死亡信息来源"));
        }
        match (person, died_on, errors.is_empty()) {
            (Some(person), Some(died_on), true) => Ok(Self { person, died_on }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// Records a member's death on this roster and publishes it for civil affairs.
#[tracing::instrument(skip_all)]
pub async fn record_death(roster: &Roster, reader: &Reader, d: DeathReport) -> Result<pb::RecordDeathResponse, Error> {
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    // A person outside the officer's jurisdiction is, to them, on no household.
    let household: Option<Uuid> = tx
        .query_opt("SELECT household_id FROM poor_member WHERE live AND identity_number = $1", &[&d.person.as_str()])
        .await?
        .map(|r| r.get("household_id"));
    if let Some(id) = household
        && covered(&tx, reader, id).await.is_err()
    {
        return Err(PovertyError::NoLiveMember(d.person.masked()).into());
    }
    let household_id: Uuid = tx
        .query_opt(
            "UPDATE poor_member SET died_on = $2 WHERE live AND identity_number = $1 AND died_on IS NULL
             RETURNING household_id",
            &[&d.person.as_str(), &d.died_on],
        )
        .await?
        .ok_or_else(|| PovertyError::NoLiveMember(d.person.masked()))?
        .get("household_id");
    let version: i64 = tx
        .query_one(
            "UPDATE poor_household SET version = version + 1 WHERE household_id = $1 RETURNING version",
            &[&household_id],
        )
        .await?
        .get("version");
    let payload = Payload::MemberDeceased(MemberDeceased {
        identity_number: Some((&d.person).into()),
        died_on: Some(date_to_pb(d.died_on)),
        household_id: household_id.to_string(),
    });
    publish(&tx, &roster.topic, &household_id.to_string(), version, payload).await?;
    tx.commit().await?;
    Ok(pb::RecordDeathResponse { household_id: household_id.to_string() })
}

/// One consistent snapshot of a division's registered households; each
/// household read is logged as it leaves.
pub async fn export(
    roster: &Roster,
    reader: Reader,
    req: &pb::ExportRosterRequest,
) -> Result<Export<pb::ExportRosterResponse>, Error> {
    let division = match &req.division {
        Some(d) => DivisionCode::try_from(d).map_err(|e| e.within("division"))?,
        None => return Err(InvalidField::new("division", "必填项缺失").into()),
    };
    reader.must_cover(&division, "division")?;
    let (log, full) = (roster.log.clone(), reader.sees_in_full(FULL_DETAIL));
    // A system's bulk read is one record naming the division; an
    // officer's, one per person as each household leaves.
    let per_person = reader.officer.is_some();
    if !per_person {
        log.record(reader.bulk_entry(&division, "导出建档立卡名单")).await?;
    }
    let sql = format!("SELECT {COLUMNS} FROM poor_household WHERE village LIKE $1 || '%' ORDER BY household_id");
    Ok(snapshot::export(roster.pool.clone(), sql, division.prefix().to_owned(), roster.clock.now(), move |row, at| {
        let mut household = household_of(row)?;
        if per_person {
            for person in members_of(&household) {
                log.record_outcome(reader.entry(&person, "导出建档立卡名单"));
            }
        }
        if !full {
            mask(&mut household);
        }
        Ok(pb::ExportRosterResponse {
            household: Some(household),
            snapshot_position: at.position,
            snapshot_at: Some(at.at),
        })
    }))
}
