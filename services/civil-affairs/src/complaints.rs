//! Complaints and reports (举报、信访; R-AUD-2, seeds 000 and 001): intake by
//! phone, letter, visit or online, anonymous allowed, linked to a household,
//! an application or an officer; the county assigns each to a township with
//! a deadline; the follow-up is recorded step by step and the county closes
//! it with its outcome and the reply. Every step keeps the officer, the role
//! they acted in and the assertion that proved them, append-only.
//!
//! Whoever reported is protected: their name and contact are read only by
//! the county's own officers ([`SEES_COMPLAINANT`]), never by the township
//! it is assigned to; and an officer a complaint names takes no step on it.

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{self as common, OfficerRole, OfficerSignature};
use dibao_proto::labels::{Label, chinese_date};
use dibao_proto::types::{DivisionCode, DivisionLevel, InvalidField, date_to_pb};
use time::{Date, Duration};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::convert;
use crate::households::Roster;

/// The roles that read who reported, at the county's level.
pub const SEES_COMPLAINANT: &[OfficerRole] = &[OfficerRole::CountyApprover, OfficerRole::CountyOperator];

/// The longest deadline the county may set: sixty days from the day it
/// assigns (信访事项 are answered within sixty days).
const LONGEST_DEADLINE_DAYS: i64 = 60;

/// Free text fields: enough for a letter's summary, not a file.
const LONGEST_TEXT: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum ComplaintError {
    #[error("投诉举报{0}不存在")]
    NotFound(Uuid),
    #[error("该投诉举报已办结")]
    Closed,
    #[error("该投诉举报尚未交办到乡镇")]
    NotAssigned,
    #[error("该投诉举报涉及您本人，您不能办理")]
    AboutYou,
    #[error("尚无核查记录，不能办结：请先记录核查情况")]
    NoFollowUp,
}

impl Refusal for ComplaintError {
    fn kind(&self) -> RefusalKind {
        match self {
            ComplaintError::NotFound(_) => RefusalKind::NotFound,
            ComplaintError::AboutYou => RefusalKind::PermissionDenied,
            ComplaintError::Closed | ComplaintError::NotAssigned | ComplaintError::NoFollowUp => {
                RefusalKind::FailedPrecondition
            }
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ComplaintError::NotFound(_) => "COMPLAINT_NOT_FOUND",
            ComplaintError::Closed => "COMPLAINT_CLOSED",
            ComplaintError::NotAssigned => "COMPLAINT_NOT_ASSIGNED",
            ComplaintError::AboutYou => "COMPLAINT_ABOUT_YOU",
            ComplaintError::NoFollowUp => "COMPLAINT_WITHOUT_FOLLOW_UP",
        }
    }
}

fn text(value: &str, field: &str, required: bool, errors: &mut Vec<InvalidField>) -> String {
    let v = value.trim();
    if required && v.is_empty() {
        errors.push(InvalidField::new(field, "必填项缺失"));
    } else if v.chars().count() > LONGEST_TEXT {
        errors.push(InvalidField::new(field, format!("不能超过{LONGEST_TEXT}字")));
    }
    v.to_owned()
}

fn optional_id(value: &str, field: &str, errors: &mut Vec<InvalidField>) -> Option<Uuid> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    Uuid::parse_str(v).map_err(|_| errors.push(InvalidField::new(field, "编号格式不正确"))).ok()
}

fn complaint_id(value: &str) -> Result<Uuid, InvalidField> {
    convert::uuid(value, "complaint_id", "投诉举报编号格式不正确")
}

/// A complaint to take in, checked.
pub struct Intake {
    division: DivisionCode,
    county: DivisionCode,
    channel: pb::ComplaintChannel,
    received_on: Date,
    anonymous: bool,
    name: String,
    contact: String,
    content: String,
    household_id: Option<Uuid>,
    application_id: Option<Uuid>,
}

impl Intake {
    pub fn check(req: pb::FileComplaintRequest, officer: &Officer, today: Date) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let division = convert::division(&req.division, "division").map_err(|e| errors.push(e)).ok();
        // Outside the jurisdiction: refused before anything else is said.
        if let Some(d) = &division {
            officer.must_cover(d, "division")?;
        }
        if division.as_ref().is_some_and(|d| !matches!(d.level(), DivisionLevel::County | DivisionLevel::Township)) {
            errors.push(InvalidField::new("division", "应填写受理投诉举报的县级或乡镇级行政区划代码"));
        }
        let channel = pb::ComplaintChannel::try_from(req.channel).unwrap_or(pb::ComplaintChannel::Unspecified);
        if channel == pb::ComplaintChannel::Unspecified {
            errors.push(InvalidField::new("channel", "请选择受理渠道：电话、来信、来访或网上"));
        }
        let received_on = dibao_proto::types::required(&req.received_on, "received_on")
            .and_then(|d| Date::try_from(d).map_err(|e| e.within("received_on")))
            .map_err(|e| errors.push(e))
            .ok();
        if received_on.is_some_and(|d| d > today) {
            errors.push(InvalidField::new("received_on", "受理日期不能晚于今天"));
        }
        let name = text(&req.complainant_name, "complainant_name", false, &mut errors);
        let contact = text(&req.complainant_contact, "complainant_contact", false, &mut errors);
        if req.anonymous && !(name.is_empty() && contact.is_empty()) {
            errors.push(InvalidField::new("anonymous", "匿名举报不应填写举报人姓名和联系方式"));
        }
        if !req.anonymous && name.is_empty() {
            errors.push(InvalidField::new("complainant_name", "实名举报请填写举报人姓名，或选择匿名"));
        }
        let content = text(&req.content, "content", true, &mut errors);
        let household_id = optional_id(&req.household_id, "household_id", &mut errors);
        let application_id = optional_id(&req.application_id, "application_id", &mut errors);
        let (Some(division), Some(received_on), true) = (division, received_on, errors.is_empty()) else {
            return Err(Error::InvalidArgument(errors));
        };
        let county = division.county().ok_or_else(|| InvalidField::new("division", "无法确定所属县"))?;
        Ok(Self {
            division,
            county,
            channel,
            received_on,
            anonymous: req.anonymous,
            name,
            contact,
            content,
            household_id,
            application_id,
        })
    }
}

/// The village of the household a complaint names, or of an application's
/// household: it must lie in the division the complaint is filed in. One
/// answer for "no such household" and "not in this division", so that a
/// caller learns nothing of households they may not see.
async fn must_lie_in(
    tx: &Transaction<'_>,
    division: &DivisionCode,
    household_id: Option<Uuid>,
    application_id: Option<Uuid>,
) -> Result<(), Error> {
    let mut errors = Vec::new();
    if let Some(id) = household_id {
        let village: Option<String> = tx
            .query_opt("SELECT village FROM household WHERE household_id = $1", &[&id])
            .await?
            .map(|r| r.get("village"));
        if !village.is_some_and(|v| v.starts_with(division.prefix())) {
            errors.push(InvalidField::new("household_id", format!("{division}辖区内没有该户")));
        }
    }
    if let Some(id) = application_id {
        let village: Option<String> = tx
            .query_opt(
                "SELECT h.village FROM application a JOIN household h USING (household_id) WHERE a.application_id = $1",
                &[&id],
            )
            .await?
            .map(|r| r.get("village"));
        if !village.is_some_and(|v| v.starts_with(division.prefix())) {
            errors.push(InvalidField::new("application_id", format!("{division}辖区内没有该申请")));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(errors)) }
}

/// Appends a step, signed by `officer` in the first of `roles` they hold.
async fn append_step(
    tx: &Transaction<'_>,
    id: Uuid,
    action: &str,
    note: &str,
    officer: &Officer,
    at: time::OffsetDateTime,
) -> Result<(), Error> {
    let role = officer.role_among(ACTORS).unwrap_or(OfficerRole::Unspecified);
    tx.execute(
        "INSERT INTO complaint_step (complaint_id, seq, action, note, officer_id, officer_name, role, division, acted_at,
                                     assertion_id, issuer)
         SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10
         FROM complaint_step WHERE complaint_id = $1",
        &[
            &id,
            &action,
            &note,
            &officer.officer_id,
            &officer.name,
            &(role as i32),
            &officer.division.as_str(),
            &at,
            &officer.assertion_id,
            &officer.issuer,
        ],
    )
    .await?;
    Ok(())
}

/// The roles that act on complaints, in the order a step names the one acted in.
const ACTORS: &[OfficerRole] = &[
    OfficerRole::CountyApprover,
    OfficerRole::CountyOperator,
    OfficerRole::TownshipReviewer,
    OfficerRole::TownshipCaseworker,
];

/// Takes a complaint in and gives it the county's number.
#[tracing::instrument(skip_all, fields(division = %c.division))]
pub async fn file(roster: &Roster, officer: &Officer, c: Intake) -> Result<pb::FileComplaintResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    must_lie_in(&tx, &c.division, c.household_id, c.application_id).await?;
    let year = china_date(now).year();
    let next: i64 = tx
        .query_one(
            "INSERT INTO complaint_counter AS c (county, year, last) VALUES ($1, $2, 1)
             ON CONFLICT (county, year) DO UPDATE SET last = c.last + 1 RETURNING last",
            &[&c.county.as_str(), &year],
        )
        .await?
        .get(0);
    let number = format!("{}-{year}-{next:06}", c.county);
    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO complaint (complaint_id, complaint_number, county, division, channel, received_on, anonymous,
                                complainant_name, complainant_contact, content, household_id, application_id,
                                status, filed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            &id,
            &number,
            &c.county.as_str(),
            &c.division.as_str(),
            &(c.channel as i32),
            &c.received_on,
            &c.anonymous,
            &c.name,
            &c.contact,
            &c.content,
            &c.household_id,
            &c.application_id,
            &(pb::ComplaintStatus::Received as i32),
            &now,
        ],
    )
    .await?;
    append_step(&tx, id, "受理", "", officer, now).await?;
    tx.commit().await?;
    tracing::info!(complaint_id = %id, number, "complaint filed");
    Ok(pb::FileComplaintResponse { complaint_id: id.to_string(), complaint_number: number })
}

/// A complaint locked for a change: where it stands and whom it names.
struct Held {
    county: DivisionCode,
    division: DivisionCode,
    township: Option<DivisionCode>,
    status: pb::ComplaintStatus,
}

/// Locks a complaint the officer may act on: filed in or assigned to their
/// jurisdiction, or refused as if it were not there; never one about an
/// application they signed a step of (by their verified signatures).
async fn lock(tx: &Transaction<'_>, officer: &Officer, id: Uuid) -> Result<Held, Error> {
    let row = tx
        .query_opt(
            "SELECT county, division, township, status,
                    EXISTS (SELECT 1 FROM application_step s
                            WHERE s.application_id = complaint.application_id AND s.officer_id = $2) AS concerned
             FROM complaint WHERE complaint_id = $1 FOR UPDATE",
            &[&id, &officer.officer_id],
        )
        .await?
        .ok_or(ComplaintError::NotFound(id))?;
    let code = |s: String| DivisionCode::parse(&s).map_err(|_| Error::stored(format!("complaint {id}: division {s}")));
    let held = Held {
        county: code(row.get("county"))?,
        division: code(row.get("division"))?,
        township: row.get::<_, Option<String>>("township").map(code).transpose()?,
        status: pb::ComplaintStatus::try_from(row.get::<_, i32>("status")).unwrap_or_default(),
    };
    if !officer.covers(&held.division) && !held.township.as_ref().is_some_and(|t| officer.covers(t)) {
        return Err(ComplaintError::NotFound(id).into());
    }
    if row.get::<_, bool>("concerned") {
        return Err(ComplaintError::AboutYou.into());
    }
    Ok(held)
}

/// An assignment, checked.
pub struct Assignment {
    id: Uuid,
    township: DivisionCode,
    due_on: Date,
    note: String,
}

impl Assignment {
    pub fn check(req: pb::AssignComplaintRequest, today: Date) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let id = complaint_id(&req.complaint_id).map_err(|e| errors.push(e)).ok();
        let township = convert::division(&req.township, "township").map_err(|e| errors.push(e)).ok();
        if township.as_ref().is_some_and(|t| t.level() != DivisionLevel::Township) {
            errors.push(InvalidField::new("township", "应填写9位乡镇级行政区划代码"));
        }
        let due_on = dibao_proto::types::required(&req.due_on, "due_on")
            .and_then(|d| Date::try_from(d).map_err(|e| e.within("due_on")))
            .map_err(|e| errors.push(e))
            .ok();
        let latest = today + Duration::days(LONGEST_DEADLINE_DAYS);
        if due_on.is_some_and(|d| d < today || d > latest) {
            errors.push(InvalidField::new("due_on", format!("办理期限应在今天到{LONGEST_DEADLINE_DAYS}日内")));
        }
        let note = text(&req.note, "note", false, &mut errors);
        match (id, township, due_on, errors.is_empty()) {
            (Some(id), Some(township), Some(due_on), true) => Ok(Self { id, township, due_on, note }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// The county assigns (or reassigns) an open complaint to one of its townships.
#[tracing::instrument(skip_all, fields(complaint_id = %a.id))]
pub async fn assign(roster: &Roster, officer: &Officer, a: Assignment) -> Result<pb::AssignComplaintResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let held = lock(&tx, officer, a.id).await?;
    // Only the county's officers assign: a township's own officer finds
    // the complaint, but may not pass it on.
    officer.must_cover(&held.county, "complaint_id")?;
    if held.status == pb::ComplaintStatus::Closed {
        return Err(ComplaintError::Closed.into());
    }
    if !held.county.contains(&a.township) {
        return Err(InvalidField::new("township", format!("应为{}所辖乡镇", held.county)).into());
    }
    tx.execute(
        "UPDATE complaint SET township = $2, due_on = $3, status = $4 WHERE complaint_id = $1",
        &[&a.id, &a.township.as_str(), &a.due_on, &(pb::ComplaintStatus::Assigned as i32)],
    )
    .await?;
    let note = format!("交办{}，限{}办结。{}", a.township, chinese_date(a.due_on), a.note);
    append_step(&tx, a.id, "交办", note.trim(), officer, now).await?;
    tx.commit().await?;
    Ok(pb::AssignComplaintResponse {})
}

/// A follow-up step, checked.
pub struct FollowUp {
    id: Uuid,
    action: String,
    note: String,
}

impl FollowUp {
    pub fn check(req: pb::AddComplaintStepRequest) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let id = complaint_id(&req.complaint_id).map_err(|e| errors.push(e)).ok();
        let action = text(&req.action, "action", true, &mut errors);
        if action.chars().count() > 20 {
            errors.push(InvalidField::new("action", "办理环节名称不能超过20字，如：入户核查、调阅档案、约谈经办人"));
        }
        let note = text(&req.note, "note", true, &mut errors);
        match (id, errors.is_empty()) {
            (Some(id), true) => Ok(Self { id, action, note }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// Records a follow-up step on an assigned, open complaint.
#[tracing::instrument(skip_all, fields(complaint_id = %f.id))]
pub async fn add_step(roster: &Roster, officer: &Officer, f: FollowUp) -> Result<pb::AddComplaintStepResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let held = lock(&tx, officer, f.id).await?;
    match held.status {
        pb::ComplaintStatus::Closed => return Err(ComplaintError::Closed.into()),
        pb::ComplaintStatus::Assigned => {}
        _ => return Err(ComplaintError::NotAssigned.into()),
    }
    append_step(&tx, f.id, &f.action, &f.note, officer, now).await?;
    tx.commit().await?;
    Ok(pb::AddComplaintStepResponse {})
}

/// A close, checked.
pub struct Closing {
    id: Uuid,
    outcome: pb::ComplaintOutcome,
    reply: String,
}

impl Closing {
    pub fn check(req: pb::CloseComplaintRequest) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let id = complaint_id(&req.complaint_id).map_err(|e| errors.push(e)).ok();
        let outcome = pb::ComplaintOutcome::try_from(req.outcome).unwrap_or(pb::ComplaintOutcome::Unspecified);
        if outcome == pb::ComplaintOutcome::Unspecified {
            errors.push(InvalidField::new("outcome", "请选择办理结果：属实、部分属实或不属实"));
        }
        let reply = text(&req.reply, "reply", true, &mut errors);
        match (id, errors.is_empty()) {
            (Some(id), true) => Ok(Self { id, outcome, reply }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// The county closes an assigned complaint that has been followed up.
#[tracing::instrument(skip_all, fields(complaint_id = %c.id))]
pub async fn close(roster: &Roster, officer: &Officer, c: Closing) -> Result<pb::CloseComplaintResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let held = lock(&tx, officer, c.id).await?;
    officer.must_cover(&held.county, "complaint_id")?;
    match held.status {
        pb::ComplaintStatus::Closed => return Err(ComplaintError::Closed.into()),
        pb::ComplaintStatus::Assigned => {}
        _ => return Err(ComplaintError::NotAssigned.into()),
    }
    let followed_up: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM complaint_step WHERE complaint_id = $1 AND action NOT IN ('受理', '交办'))",
            &[&c.id],
        )
        .await?
        .get(0);
    if !followed_up {
        return Err(ComplaintError::NoFollowUp.into());
    }
    tx.execute(
        "UPDATE complaint SET status = $2, outcome = $3, reply = $4, closed_at = $5 WHERE complaint_id = $1",
        &[&c.id, &(pb::ComplaintStatus::Closed as i32), &(c.outcome as i32), &c.reply, &now],
    )
    .await?;
    append_step(&tx, c.id, "办结", &format!("办理结果：{}。答复：{}", c.outcome.label(), c.reply), officer, now)
        .await?;
    tx.commit().await?;
    Ok(pb::CloseComplaintResponse {})
}

const COLUMNS: &str = "complaint_id, complaint_number, channel, received_on, anonymous, complainant_name, \
                       complainant_contact, content, household_id, application_id, division, township, \
                       due_on, status, outcome, reply";

/// A complaint as `reader` may read it: who reported only for the county's
/// own officers; overdue as of `today`.
fn complaint_of(row: &Row, reader: &Reader, today: Date) -> pb::Complaint {
    let status = row.get::<_, i32>("status");
    let due_on: Option<Date> = row.get("due_on");
    let division: String = row.get("division");
    let sees = reader
        .officer
        .as_ref()
        .is_some_and(|o| o.role_among(SEES_COMPLAINANT).is_some() && o.division.level() <= DivisionLevel::County);
    let (name, contact) = if sees {
        (row.get("complainant_name"), row.get("complainant_contact"))
    } else {
        (String::new(), String::new())
    };
    pb::Complaint {
        complaint_id: row.get::<_, Uuid>("complaint_id").to_string(),
        complaint_number: row.get("complaint_number"),
        channel: row.get("channel"),
        received_on: Some(date_to_pb(row.get("received_on"))),
        anonymous: row.get("anonymous"),
        complainant_name: name,
        complainant_contact: contact,
        content: row.get("content"),
        household_id: row.get::<_, Option<Uuid>>("household_id").map(|u| u.to_string()).unwrap_or_default(),
        application_id: row.get::<_, Option<Uuid>>("application_id").map(|u| u.to_string()).unwrap_or_default(),
        division: Some(common::DivisionCode { code: division }),
        township: row.get::<_, Option<String>>("township").map(|code| common::DivisionCode { code }),
        due_on: due_on.map(date_to_pb),
        status,
        overdue: status != pb::ComplaintStatus::Closed as i32 && due_on.is_some_and(|d| d < today),
        steps: Vec::new(),
        outcome: row.get("outcome"),
        reply: row.get("reply"),
    }
}

/// Filed in, or assigned to, the reader's jurisdiction ($1: its prefix).
const VISIBLE: &str = "(division LIKE $1 || '%' OR township LIKE $1 || '%')";

/// One complaint with its steps, as the reader may read it.
#[tracing::instrument(skip(roster, reader))]
pub async fn get(roster: &Roster, reader: &Reader, id: &str) -> Result<pb::GetComplaintResponse, Error> {
    let id = complaint_id(id)?;
    let client = roster.pool.get().await?;
    let prefix = reader.officer.as_ref().map(|o| o.division.prefix().to_owned()).unwrap_or_default();
    let row = client
        .query_opt(&format!("SELECT {COLUMNS} FROM complaint WHERE complaint_id = $2 AND {VISIBLE}"), &[&prefix, &id])
        .await?
        .ok_or(ComplaintError::NotFound(id))?;
    let mut complaint = complaint_of(&row, reader, china_date(roster.clock.now()));
    complaint.steps = steps(&**client, id).await?;
    Ok(pb::GetComplaintResponse { complaint: Some(complaint) })
}

async fn steps(client: &impl tokio_postgres::GenericClient, id: Uuid) -> Result<Vec<pb::ComplaintStep>, Error> {
    Ok(client
        .query(
            "SELECT action, note, officer_id, officer_name, role, division, acted_at, assertion_id, issuer
             FROM complaint_step WHERE complaint_id = $1 ORDER BY seq",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| pb::ComplaintStep {
            action: r.get("action"),
            note: r.get("note"),
            officer: Some(OfficerSignature {
                officer_id: r.get("officer_id"),
                officer_name: r.get("officer_name"),
                role: r.get("role"),
                division: Some(common::DivisionCode { code: r.get("division") }),
                signed_at: Some(timestamp_of(r.get("acted_at"))),
            }),
            assertion_id: r.get("assertion_id"),
            issuer: r.get("issuer"),
        })
        .collect())
}

/// A division's complaints, newest first, and the open and overdue ones per township.
#[tracing::instrument(skip_all)]
pub async fn list(
    roster: &Roster,
    reader: &Reader,
    req: pb::ListComplaintsRequest,
) -> Result<pb::ListComplaintsResponse, Error> {
    let mut errors = Vec::new();
    let division = convert::division(&req.division, "division").map_err(|e| errors.push(e)).ok();
    // Outside the jurisdiction: refused before anything else is said.
    if let Some(d) = &division {
        reader.must_cover(d, "division")?;
    }
    let page = req.page.unwrap_or_default();
    if !(0..=500).contains(&page.page_size) {
        errors.push(InvalidField::new("page.page_size", "每页条数应在1到500之间"));
    }
    let after = match page.page_token.as_str() {
        "" => Uuid::max(),
        t => Uuid::parse_str(t)
            .map_err(|_| errors.push(InvalidField::new("page.page_token", "分页标记无效")))
            .unwrap_or_default(),
    };
    let Some(division) = division.filter(|_| errors.is_empty()) else {
        return Err(Error::InvalidArgument(errors));
    };
    let size = i64::from(if page.page_size == 0 { 50 } else { page.page_size });
    let today = china_date(roster.clock.now());
    let client = roster.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM complaint
                 WHERE {VISIBLE} AND complaint_id < $2
                   AND (NOT $3 OR status <> 3) AND (NOT $4 OR (status <> 3 AND due_on < $5))
                 ORDER BY complaint_id DESC LIMIT $6"
            ),
            &[&division.prefix(), &after, &req.open_only, &req.overdue_only, &today, &(size + 1)],
        )
        .await?;
    let more = rows.len() as i64 > size;
    let complaints: Vec<pb::Complaint> =
        rows.iter().take(size as usize).map(|r| complaint_of(r, reader, today)).collect();
    let next_page_token =
        if more { complaints.last().map(|c| c.complaint_id.clone()).unwrap_or_default() } else { String::new() };
    let townships = client
        .query(
            &format!(
                "SELECT coalesce(township, county) AS township, count(*) AS open,
                        count(*) FILTER (WHERE due_on < $2) AS overdue
                 FROM complaint WHERE {VISIBLE} AND status <> 3 GROUP BY 1 ORDER BY 1"
            ),
            &[&division.prefix(), &today],
        )
        .await?
        .iter()
        .map(|r| pb::TownshipComplaints {
            township: Some(common::DivisionCode { code: r.get("township") }),
            open: r.get::<_, i64>("open") as i32,
            overdue: r.get::<_, i64>("overdue") as i32,
        })
        .collect();
    Ok(pb::ListComplaintsResponse { complaints, page: Some(common::PageResponse { next_page_token }), townships })
}
