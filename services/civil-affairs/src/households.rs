//! The dibao and special-hardship roster's households (R-ROSTER-1): named
//! rows, the queries over them, and the event every change publishes in its
//! own transaction (the outbox, R-SYNC-1).

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::store::snapshot::{self, Export};
use dibao_platform::trust::access_log::AccessLog;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{IdentityNumber as PbIdentity, Money, OfficerRole};
use dibao_proto::events::v1::{
    ExitReason, HouseholdAmountChanged, HouseholdExited, MemberDeceased, RosterMember, event_envelope::Payload,
};
use dibao_proto::types::{DivisionCode, Fen, IdentityNumber, date_to_pb};
use prost::Message;
use time::{Date, OffsetDateTime};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

/// What every room of civil affairs works on: the roster's database, the
/// time it acts on, the topic its household events go to, the access log
/// every read of a person's data goes into, and the hub's reports.
pub struct Roster {
    pub pool: deadpool_postgres::Pool,
    pub clock: std::sync::Arc<dyn dibao_platform::runtime::clock::Clock>,
    pub topic: String,
    pub log: AccessLog,
    /// The hub's verification reports, read at the verification step and county approval.
    pub reports: crate::report_gate::Reports,
}

/// The roles that see members' identity numbers and health details in
/// full: those who handle the household's case. Everyone else reads them
/// masked (R-PROC-3).
pub const FULL_DETAIL: &[OfficerRole] = &[
    OfficerRole::VillageCommittee,
    OfficerRole::TownshipCaseworker,
    OfficerRole::TownshipReviewer,
    OfficerRole::CountyApprover,
    OfficerRole::VerificationOfficer,
    // The operator's resync carries the snapshot whole into the other roster's view.
    OfficerRole::SystemOperator,
];

/// The household as a reader without [`FULL_DETAIL`] sees it: identity
/// numbers masked, no health details.
pub fn mask(h: &mut pb::Household) {
    let masked = dibao_proto::types::masked_identity;
    for m in &mut h.members {
        if let Some(id) = m.person.as_mut().and_then(|p| p.identity_number.as_mut()) {
            id.value = masked(&id.value);
        }
        m.disability_grade = 0;
        m.serious_illness = false;
    }
    for id in &mut h.deceased {
        id.value = masked(&id.value);
    }
    if let Some(p) = h.payee.as_mut() {
        p.account = dibao_proto::types::masked_account(&p.account);
    }
}

/// Logs `reader`'s read of what concerns a household's members (its
/// certificate, its payments), in one record.
pub async fn log_read(roster: &Roster, reader: &Reader, household: &pb::Household, purpose: &str) -> Result<(), Error> {
    roster.log.record_all(members_of(household).map(|person| reader.entry(&person, purpose)).collect()).await?;
    Ok(())
}

/// Logs `reader`'s read of the households' members in one record, then
/// shows each as the reader may see it.
pub async fn shown_all(
    roster: &Roster,
    reader: &Reader,
    mut households: Vec<pb::Household>,
    purpose: &str,
) -> Result<Vec<pb::Household>, Error> {
    let entries = households.iter().flat_map(members_of).map(|person| reader.entry(&person, purpose)).collect();
    roster.log.record_all(entries).await?;
    if !reader.sees_in_full(FULL_DETAIL) {
        households.iter_mut().for_each(mask);
    }
    Ok(households)
}

/// Logs `reader`'s read of the household's members, then shows it as the
/// reader may see it.
pub async fn shown(roster: &Roster, reader: &Reader, h: pb::Household, purpose: &str) -> Result<pb::Household, Error> {
    let mut one = shown_all(roster, reader, vec![h], purpose).await?;
    one.pop().ok_or_else(|| Error::stored("a household shown went missing"))
}

fn members_of(h: &pb::Household) -> impl Iterator<Item = String> + '_ {
    h.members.iter().filter_map(|m| m.person.as_ref()?.identity_number.as_ref().map(|i| i.value.clone()))
}

/// The household `id` as `reader` may read it: one outside their
/// jurisdiction is, to them, not there.
pub async fn read(roster: &Roster, reader: &Reader, id: Uuid) -> Result<pb::Household, Error> {
    let household = get(&**roster.pool.get().await?, id).await?;
    if !reader.covers(&village_of(&household)?) {
        return Err(HouseholdError::NotFound(id).into());
    }
    shown(roster, reader, household, "查阅家庭信息").await
}

/// The village a household as the wire carries it lies in.
pub fn village_of(h: &pb::Household) -> Result<DivisionCode, Error> {
    h.village
        .as_ref()
        .and_then(|v| DivisionCode::try_from(v).ok())
        .ok_or_else(|| Error::stored(format!("household {} has no valid village", h.household_id)))
}

const PRODUCER: &str = "civil-affairs";
const AGGREGATE: &str = "civil_affairs.household";

/// The columns every household read selects, by the names [`HouseholdRow`] reads.
pub const COLUMNS: &str =
    "household_id, body, status, category, monthly_amount_fen, enrolled_on, version, programme, source_id";

/// A household as its row holds it; the members and their health in `body`.
pub struct HouseholdRow {
    pub household_id: Uuid,
    pub body: Vec<u8>,
    pub status: i32,
    pub category: i32,
    pub monthly_amount_fen: i64,
    pub enrolled_on: Option<Date>,
    pub version: i64,
    pub programme: i32,
    /// The county's number of the household (`source_id`): the roster
    /// file's, or the one given at enrolment.
    pub household_number: Option<String>,
}

impl HouseholdRow {
    pub fn read(row: &Row) -> Self {
        Self {
            household_id: row.get("household_id"),
            body: row.get("body"),
            status: row.get("status"),
            category: row.get("category"),
            monthly_amount_fen: row.get("monthly_amount_fen"),
            enrolled_on: row.get("enrolled_on"),
            version: row.get("version"),
            programme: row.get("programme"),
            household_number: row.get("source_id"),
        }
    }

    /// The household as the wire carries it: the body with the columns set.
    pub fn into_pb(self) -> Result<pb::Household, Error> {
        let mut household = pb::Household::decode(self.body.as_slice())
            .map_err(|e| Error::stored(format!("household {}: {e}", self.household_id)))?;
        household.household_id = self.household_id.to_string();
        household.status = self.status;
        household.category = self.category;
        household.monthly_amount = Some(Money { fen: self.monthly_amount_fen });
        household.enrolled_on = self.enrolled_on.map(date_to_pb);
        household.version = self.version;
        household.programme = self.programme;
        household.household_number = self.household_number.unwrap_or_default();
        Ok(household)
    }
}

/// A household row read as the wire carries it.
pub fn household_of(row: &Row) -> Result<pb::Household, Error> {
    HouseholdRow::read(row).into_pb()
}

/// Income lines and supporters as stored with a household (an
/// `AssessHouseholdRequest` without the household).
pub fn income_of(row: &Row, household_id: &str) -> Result<pb::AssessHouseholdRequest, Error> {
    let body: Vec<u8> = row.get("income");
    pb::AssessHouseholdRequest::decode(body.as_slice())
        .map_err(|e| Error::stored(format!("income of household {household_id}: {e}")))
}

#[derive(Debug, thiserror::Error)]
pub enum HouseholdError {
    #[error("家庭{0}不存在")]
    NotFound(Uuid),
    #[error("{0}不在在办或在保的低保、特困家庭中")]
    NoLiveMember(String),
}

impl Refusal for HouseholdError {
    fn kind(&self) -> RefusalKind {
        RefusalKind::NotFound
    }
    fn reason(&self) -> &'static str {
        match self {
            HouseholdError::NotFound(_) => "HOUSEHOLD_NOT_FOUND",
            HouseholdError::NoLiveMember(_) => "NOT_A_LIVE_MEMBER",
        }
    }
}

/// One household with its recorded deaths.
#[tracing::instrument(skip(client))]
pub async fn get(client: &impl GenericClient, id: Uuid) -> Result<pb::Household, Error> {
    let row = client
        .query_opt(&format!("SELECT {COLUMNS} FROM household WHERE household_id = $1"), &[&id])
        .await?
        .ok_or(HouseholdError::NotFound(id))?;
    let mut household = household_of(&row)?;
    household.deceased = client
        .query("SELECT identity_number FROM member_death WHERE household_id = $1 ORDER BY 1", &[&id])
        .await?
        .iter()
        .map(|r| PbIdentity { value: r.get(0) })
        .collect();
    Ok(household)
}

/// Households `ids` as [`get`] reads each, in two queries, by id.
pub async fn get_all(
    client: &impl GenericClient,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, pb::Household>, Error> {
    let mut read = std::collections::HashMap::with_capacity(ids.len());
    for row in client.query(&format!("SELECT {COLUMNS} FROM household WHERE household_id = ANY($1)"), &[&ids]).await? {
        read.insert(row.get::<_, Uuid>("household_id"), household_of(&row)?);
    }
    let deaths = client
        .query(
            "SELECT household_id, identity_number FROM member_death WHERE household_id = ANY($1)
             ORDER BY household_id, identity_number",
            &[&ids],
        )
        .await?;
    for row in deaths {
        if let Some(h) = read.get_mut(&row.get::<_, Uuid>(0)) {
            h.deceased.push(PbIdentity { value: row.get(1) });
        }
    }
    Ok(read)
}

/// Household `id` as [`get`] reads it, with its income as stored.
pub async fn with_income(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<(pb::Household, pb::AssessHouseholdRequest), Error> {
    let household = get(client, id).await?;
    let row = client
        .query_opt("SELECT income FROM household WHERE household_id = $1", &[&id])
        .await?
        .ok_or(HouseholdError::NotFound(id))?;
    let income = income_of(&row, &household.household_id)?;
    Ok((household, income))
}

/// A division's households after `after`, by id, at most `limit`.
#[tracing::instrument(skip(client))]
pub async fn page(client: &impl GenericClient, prefix: &str, after: Uuid, limit: i64) -> Result<Vec<Row>, Error> {
    Ok(client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM household WHERE village LIKE $1 || '%' AND household_id > $2
                 ORDER BY household_id LIMIT $3"
            ),
            &[&prefix, &after, &limit],
        )
        .await?)
}

/// The first of `ids` already in a live household (applying or enrolled).
#[tracing::instrument(skip_all)]
pub async fn first_live_member(client: &impl GenericClient, ids: &[String]) -> Result<Option<String>, Error> {
    Ok(client
        .query_opt(
            "SELECT identity_number FROM household_member WHERE live AND identity_number = ANY($1)
             ORDER BY array_position($1, identity_number) LIMIT 1",
            &[&ids],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The live household `person` belongs to, locked.
#[tracing::instrument(skip_all)]
pub async fn live_household_of(tx: &Transaction<'_>, person: &IdentityNumber) -> Result<Uuid, Error> {
    Ok(tx
        .query_opt(
            "SELECT household_id FROM household_member WHERE live AND identity_number = $1 FOR UPDATE",
            &[&person.as_str()],
        )
        .await?
        .ok_or_else(|| HouseholdError::NoLiveMember(person.masked()))?
        .get(0))
}

#[tracing::instrument(skip_all)]
pub async fn living_members(tx: &Transaction<'_>, household_id: Uuid) -> Result<i64, Error> {
    Ok(tx
        .query_one("SELECT count(*) FROM household_member WHERE live AND household_id = $1", &[&household_id])
        .await?
        .get(0))
}

/// The household's status, the row locked.
#[tracing::instrument(skip(tx))]
pub async fn lock_status(tx: &Transaction<'_>, household_id: Uuid) -> Result<i32, Error> {
    Ok(tx
        .query_opt("SELECT status FROM household WHERE household_id = $1 FOR UPDATE", &[&household_id])
        .await?
        .ok_or(HouseholdError::NotFound(household_id))?
        .get(0))
}

/// The household's row with its county and income, locked.
#[tracing::instrument(skip(tx))]
pub async fn lock(tx: &Transaction<'_>, household_id: Uuid) -> Result<Row, Error> {
    Ok(tx
        .query_opt(
            &format!("SELECT {COLUMNS}, county, village, income FROM household WHERE household_id = $1 FOR UPDATE"),
            &[&household_id],
        )
        .await?
        .ok_or(HouseholdError::NotFound(household_id))?)
}

/// A new household applying: the row, its members live, in `tx`.
pub struct NewApplicant<'a> {
    pub household_id: Uuid,
    pub county: &'a str,
    pub village: &'a str,
    pub programme: i32,
    pub category: i32,
    pub body: Vec<u8>,
    pub income: Vec<u8>,
    pub members: &'a [String],
    pub now: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
#[error("同一成员正被另一申请同时提交，请稍后重试")]
pub struct SubmittedTwice;

impl Refusal for SubmittedTwice {
    fn kind(&self) -> RefusalKind {
        RefusalKind::Conflict
    }
    fn reason(&self) -> &'static str {
        "MEMBER_SUBMITTED_TWICE"
    }
}

#[tracing::instrument(skip_all, fields(household_id = %h.household_id))]
pub async fn insert_applicant(tx: &Transaction<'_>, h: &NewApplicant<'_>) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO household (household_id, county, village, status, programme, category, body, income, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &h.household_id,
            &h.county,
            &h.village,
            &(pb::HouseholdStatus::Applying as i32),
            &h.programme,
            &h.category,
            &h.body,
            &h.income,
            &h.now,
        ],
    )
    .await?;
    for id in h.members {
        tx.execute(
            "INSERT INTO household_member (identity_number, household_id, live) VALUES ($1, $2, true)",
            &[id, &h.household_id],
        )
        .await
        .map_err(|e| match e.code() {
            Some(c) if c.code() == "23505" => Error::from(SubmittedTwice),
            _ => Error::from(e),
        })?;
    }
    Ok(())
}

/// A refused application's household: refused, its members free again.
#[tracing::instrument(skip(tx))]
pub async fn refuse(tx: &Transaction<'_>, household_id: Uuid) -> Result<(), Error> {
    tx.execute(
        "UPDATE household SET status = $2, version = version + 1 WHERE household_id = $1",
        &[&household_id, &(pb::HouseholdStatus::Refused as i32)],
    )
    .await?;
    tx.execute("UPDATE household_member SET live = false WHERE household_id = $1", &[&household_id]).await?;
    Ok(())
}

/// The roster's members of a household, as its events name them.
pub fn roster_members(h: &pb::Household, covered: &[IdentityNumber]) -> Vec<RosterMember> {
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

/// Writes a household event into the outbox, in `tx`.
#[tracing::instrument(skip(tx, payload))]
pub async fn publish(
    tx: &Transaction<'_>,
    topic: &str,
    household_id: Uuid,
    version: i64,
    payload: Payload,
) -> Result<(), Error> {
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
    .await?;
    Ok(())
}

/// Writes many households' events into the outbox at once (a roster
/// import): `(household, version, payload)`, in order.
pub async fn publish_all(tx: &Transaction<'_>, topic: &str, events: Vec<(Uuid, i64, Payload)>) -> Result<(), Error> {
    let keys: Vec<String> = events.iter().map(|(id, ..)| id.to_string()).collect();
    let events = events
        .into_iter()
        .zip(&keys)
        .map(|((_, version, payload), key)| NewEvent {
            topic,
            aggregate_type: AGGREGATE,
            aggregate_key: key,
            aggregate_version: version,
            producer: PRODUCER,
            payload,
        })
        .collect();
    outbox::enqueue_all(tx, events).await?;
    Ok(())
}

/// The household as the departments' records certify it (members'
/// disability grades and illness, the illness deduction), in `tx`, where
/// `row` is the household locked: from here on every assessment counts
/// what was verified, not what was typed (R-VER-3).
pub async fn certify(
    tx: &Transaction<'_>,
    row: &Row,
    members: &[pb::Member],
    income: &pb::AssessHouseholdRequest,
) -> Result<(), Error> {
    let household_id: Uuid = row.get("household_id");
    let mut body = pb::Household::decode(row.get::<_, Vec<u8>>("body").as_slice())
        .map_err(|e| Error::stored(format!("household {household_id}: {e}")))?;
    body.members = members.to_vec();
    tx.execute(
        // No new version: nothing is published of it (the amount and
        // category that follow from it are, by whoever changes them).
        "UPDATE household SET body = $2, income = $3 WHERE household_id = $1",
        &[&household_id, &body.encode_to_vec(), &income.encode_to_vec()],
    )
    .await?;
    Ok(())
}

/// Enrolment at county approval: status, category, amount, date, and the
/// household's next version, in `tx`. Returns that version.
#[tracing::instrument(skip(tx))]
pub async fn enrol(
    tx: &Transaction<'_>,
    household_id: Uuid,
    category: i32,
    amount: Fen,
    on: Date,
) -> Result<(i64, String), Error> {
    let row = tx
        .query_one(
            "UPDATE household SET status = $2, category = $3, monthly_amount_fen = $4, enrolled_on = $5, version = version + 1
             WHERE household_id = $1 RETURNING version, county, source_id",
            &[&household_id, &(pb::HouseholdStatus::Enrolled as i32), &category, &amount.0, &on],
        )
        .await?;
    let number = match row.get::<_, Option<String>>("source_id") {
        Some(number) => number,
        None => give_number(tx, household_id, row.get("county")).await?,
    };
    Ok((row.get("version"), number))
}

/// The county's next household number for a household enrolled on
/// application (an imported one keeps its roster file's): the county code
/// and a six-digit sequence of the county's (`220581000001`), skipping any
/// a roster file already used.
async fn give_number(tx: &Transaction<'_>, household_id: Uuid, county: &str) -> Result<String, Error> {
    loop {
        let number = dibao_platform::store::db::next_county_number(tx, county).await?;
        let given = tx
            .execute(
                "UPDATE household SET source_id = $2 WHERE household_id = $1
                   AND NOT EXISTS (SELECT 1 FROM household WHERE county = $3 AND source_id = $2)",
                &[&household_id, &number, &county],
            )
            .await?;
        if given == 1 {
            return Ok(number);
        }
    }
}

/// A household leaves the roster: exited, amount 0, members free, and
/// `HouseholdExited` published.
#[tracing::instrument(skip(tx, topic))]
pub async fn exit(
    tx: &Transaction<'_>,
    topic: &str,
    household_id: Uuid,
    reason: ExitReason,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let version: i64 = tx
        .query_one(
            "UPDATE household SET status = $2, monthly_amount_fen = 0, version = version + 1
             WHERE household_id = $1 RETURNING version",
            &[&household_id, &(pb::HouseholdStatus::Exited as i32)],
        )
        .await?
        .get(0);
    let members: Vec<String> = tx
        .query(
            "SELECT identity_number FROM household_member WHERE household_id = $1 ORDER BY identity_number",
            &[&household_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.execute("UPDATE household_member SET live = false WHERE household_id = $1", &[&household_id]).await?;
    // Its certificate is withdrawn.
    crate::certificates::reissue(tx, household_id, "退出", now).await?;
    let payload = Payload::HouseholdExited(HouseholdExited {
        household_id: household_id.to_string(),
        reason: reason as i32,
        exited_on: Some(date_to_pb(china_date(now))),
        members: members.into_iter().map(|value| PbIdentity { value }).collect(),
    });
    publish(tx, topic, household_id, version, payload).await?;
    tracing::info!(%household_id, ?reason, "household exited");
    Ok(())
}

/// Records a member's death on the roster: kept with its source, the member
/// no longer live and no longer among the household's members (every later
/// assessment counts the living only), the household's next version
/// published as `MemberDeceased` so the other roster learns it (R-SYNC-2);
/// then the money from the month after the death ([`after_death`]).
pub struct Death<'a> {
    pub person: &'a str,
    pub household_id: Uuid,
    pub died_on: Date,
    pub source: &'a str,
    pub recorded_by: &'a str,
    pub now: OffsetDateTime,
}

#[tracing::instrument(skip_all, fields(household_id = %d.household_id))]
pub async fn mark_deceased(tx: &Transaction<'_>, topic: &str, d: &Death<'_>) -> Result<(), Error> {
    tx.execute(
        "UPDATE household_member SET live = false WHERE identity_number = $1 AND household_id = $2",
        &[&d.person, &d.household_id],
    )
    .await?;
    let row = lock(tx, d.household_id).await?;
    let mut household = household_of(&row)?;
    let is_deceased = |m: &pb::Member| {
        m.person
            .as_ref()
            .and_then(|p| p.identity_number.as_ref())
            .is_some_and(|n| n.value.eq_ignore_ascii_case(d.person))
    };
    let name =
        household.members.iter().find(|m| is_deceased(m)).and_then(|m| m.person.as_ref()).map(|p| p.name.clone());
    tx.execute(
        "INSERT INTO member_death (identity_number, household_id, died_on, source, recorded_by, recorded_at, name)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&d.person, &d.household_id, &d.died_on, &d.source, &d.recorded_by, &d.now, &name.unwrap_or_default()],
    )
    .await?;
    household.members.retain(|m| !is_deceased(m));
    let mut body = pb::Household::decode(row.get::<_, Vec<u8>>("body").as_slice())
        .map_err(|e| Error::stored(format!("household {}: {e}", d.household_id)))?;
    body.members = household.members.clone();
    let version: i64 = tx
        .query_one(
            "UPDATE household SET version = version + 1, body = $2 WHERE household_id = $1 RETURNING version",
            &[&d.household_id, &body.encode_to_vec()],
        )
        .await?
        .get(0);
    household.version = version;
    let payload = Payload::MemberDeceased(MemberDeceased {
        identity_number: Some(PbIdentity { value: d.person.to_owned() }),
        died_on: Some(date_to_pb(d.died_on)),
        household_id: d.household_id.to_string(),
    });
    publish(tx, topic, d.household_id, version, payload).await?;
    after_death(tx, topic, d, &row, &household).await?;
    // Months already paid after the death are overpaid now: the comparison's list (f).
    crate::payments::publish_paid_after_death(tx, topic, d.household_id).await
}

/// The money after a death: from the first month after it, an enrolled
/// household is assessed again without the deceased (see [`reassess`]);
/// one with no living member is paid nothing from then (its exit follows
/// the signed path). `row` is the household as locked before the death,
/// `household` as it stands after it.
async fn after_death(
    tx: &Transaction<'_>,
    topic: &str,
    d: &Death<'_>,
    row: &Row,
    household: &pb::Household,
) -> Result<(), Error> {
    let month = dibao_platform::runtime::clock::add_months(d.died_on.replace_day(1).unwrap_or(d.died_on), 1);
    let reason = |old: Fen, new: Fen| {
        if new == Fen(0) {
            format!("家庭成员均已死亡（{}），自{}起停发", d.died_on, month)
        } else {
            format!("家庭成员死亡（{}），自{}起按在世成员重新核定：月保障金由{old}调整为{new}", d.died_on, month)
        }
    };
    reassess(tx, topic, row, household, month, d.now, &reason).await.map(|_| ())
}

/// An enrolled household assessed again as it now stands (`household`;
/// `row` as locked before the change) under the policy in force for
/// `month`, from which its new amount is paid, recorded with
/// `reason(old, new)` and published; nothing for a household with no
/// member left. Where no policy is in force, or the rest would no longer
/// qualify or must have their cover decided again, the amount stands until
/// the household's review or exit decides, which the signed path
/// requires. Returns the new amount where it changed.
pub async fn reassess(
    tx: &Transaction<'_>,
    topic: &str,
    row: &Row,
    household: &pb::Household,
    month: Date,
    now: OffsetDateTime,
    reason: &(dyn Fn(Fen, Fen) -> String + Sync),
) -> Result<Option<Fen>, Error> {
    let household_id: Uuid = row.get("household_id");
    if household.status != pb::HouseholdStatus::Enrolled as i32 {
        return Ok(None);
    }
    let old = Fen(row.get("monthly_amount_fen"));
    let new = if household.members.is_empty() {
        Fen(0)
    } else {
        let county = DivisionCode::parse(row.get("county"))
            .map_err(|e| Error::stored(format!("county of household {household_id}: {e}")))?;
        let Some((policy, _)) = crate::policy::in_force_if_any(&**tx, &county, month).await? else {
            tracing::warn!(%household_id, %county, "no county policy: amount not recalculated");
            return Ok(None);
        };
        let stored = income_of(row, &household.household_id)?;
        match crate::policy::assess(household, &stored, &policy, month) {
            Ok((_, benefit)) if benefit.eligible => benefit.monthly_amount,
            // Who is covered, or whether the rest still qualify, is an
            // officer's to decide at the household's review; the change is
            // recorded whatever it finds.
            Ok(_) => {
                tracing::warn!(%household_id, "the household no longer qualifies as it stands: for its review");
                return Ok(None);
            }
            Err(why) => {
                tracing::warn!(%household_id, ?why, "the household's cover must be decided again: for its review");
                return Ok(None);
            }
        }
    };
    if new == old {
        return Ok(None);
    }
    let version = household.version + 1;
    set_amount(tx, household_id, new, version).await?;
    let reason = reason(old, new);
    let change = AmountChange { household_id, from: old, to: new, month, reason: &reason, version, now };
    record_amount_change(tx, topic, &change).await?;
    Ok(Some(new))
}

/// The household's live members become exactly `ids`.
#[tracing::instrument(skip(tx, ids))]
pub async fn replace_members(tx: &Transaction<'_>, household_id: Uuid, ids: &[String]) -> Result<(), Error> {
    tx.execute(
        "UPDATE household_member SET live = false WHERE household_id = $1 AND NOT (identity_number = ANY($2))",
        &[&household_id, &ids],
    )
    .await?;
    tx.execute(
        "INSERT INTO household_member (identity_number, household_id, live)
         SELECT unnest($1::text[]), $2, true
         ON CONFLICT (identity_number, household_id) DO UPDATE SET live = true",
        &[&ids, &household_id],
    )
    .await?;
    Ok(())
}

/// A household's new monthly amount under `version`, its reason recorded
/// and published (`HouseholdAmountChanged`).
pub struct AmountChange<'a> {
    pub household_id: Uuid,
    pub from: Fen,
    pub to: Fen,
    /// The first day of the month it takes effect.
    pub month: Date,
    pub reason: &'a str,
    pub version: i64,
    pub now: OffsetDateTime,
}

#[tracing::instrument(skip_all, fields(household_id = %c.household_id))]
pub async fn record_amount_change(tx: &Transaction<'_>, topic: &str, c: &AmountChange<'_>) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO amount_change (household_id, from_fen, to_fen, effective_month, reason, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&c.household_id, &c.from.0, &c.to.0, &c.month, &c.reason, &c.now],
    )
    .await?;
    // What the certificate states changed with the amount.
    crate::certificates::reissue(tx, c.household_id, c.reason, c.now).await?;
    let payload = Payload::HouseholdAmountChanged(HouseholdAmountChanged {
        household_id: c.household_id.to_string(),
        monthly_amount: Some(c.to.into()),
        effective_month: Some(crate::convert::year_month_pb(c.month)),
        reason: c.reason.to_owned(),
    });
    publish(tx, topic, c.household_id, c.version, payload).await
}

/// The amount of a household, with its next version.
#[tracing::instrument(skip(tx))]
pub async fn set_amount(tx: &Transaction<'_>, household_id: Uuid, amount: Fen, version: i64) -> Result<(), Error> {
    tx.execute(
        "UPDATE household SET monthly_amount_fen = $2, version = $3 WHERE household_id = $1",
        &[&household_id, &amount.0, &version],
    )
    .await?;
    Ok(())
}

/// The first day of the month of `t`.
pub fn first_of_month(t: OffsetDateTime) -> Date {
    china_date(t).replace_day(1).unwrap_or(china_date(t))
}

/// A division's households, a page at a time, by id.
pub async fn list(
    roster: &Roster,
    reader: &Reader,
    req: pb::ListHouseholdsRequest,
) -> Result<pb::ListHouseholdsResponse, Error> {
    let division = crate::convert::division(&req.division, "division")?;
    reader.must_cover(&division, "division")?;
    let (size, after) = crate::convert::page_by_id(req.page, 100, 1000)?;
    let after = after.unwrap_or(Uuid::nil());
    let client = roster.pool.get().await?;
    let rows = self::page(&**client, division.prefix(), after, size + 1).await?;
    let more = rows.len() as i64 > size;
    let read = rows.iter().take(size as usize).map(household_of).collect::<Result<Vec<_>, _>>()?;
    drop(client);
    let households = shown_all(roster, reader, read, "查阅家庭名单").await?;
    let next_page_token =
        if more { households.last().map(|h| h.household_id.clone()).unwrap_or_default() } else { String::new() };
    Ok(pb::ListHouseholdsResponse { households, page: Some(dibao_proto::common::v1::PageResponse { next_page_token }) })
}

/// One consistent snapshot of a division's households with their recorded
/// deaths, for the other roster's resync and the comparison. Each
/// household read is logged as it leaves (the bulk does not wait for it).
pub async fn export(
    roster: &Roster,
    reader: Reader,
    req: &pb::ExportRosterRequest,
) -> Result<Export<pb::ExportRosterResponse>, Error> {
    let division = crate::convert::division(&req.division, "division")?;
    reader.must_cover(&division, "division")?;
    let (log, full) = (roster.log.clone(), reader.sees_in_full(FULL_DETAIL));
    // A system's bulk read is one record naming the division; an
    // officer's, one per person as each household leaves.
    let per_person = reader.officer.is_some();
    if !per_person {
        log.record(reader.bulk_entry(&division, "导出花名册")).await?;
    }
    let sql = format!(
        "SELECT {COLUMNS},
                array(SELECT identity_number FROM member_death d WHERE d.household_id = household.household_id ORDER BY 1)
                    AS deceased
         FROM household WHERE village LIKE $1 || '%' ORDER BY household_id"
    );
    Ok(snapshot::export(roster.pool.clone(), sql, division.prefix().to_owned(), roster.clock.now(), move |row, at| {
        let mut household = household_of(row)?;
        household.deceased =
            row.get::<_, Vec<String>>("deceased").into_iter().map(|value| PbIdentity { value }).collect();
        if per_person {
            for person in members_of(&household) {
                log.record_outcome(reader.entry(&person, "导出花名册"));
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
