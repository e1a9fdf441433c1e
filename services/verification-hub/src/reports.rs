//! The hub's reports (R-VER-4): stored by version, each with its
//! `VerificationCompleted` event and, for a campaign's household, the
//! household's mark — one transaction, so a hub that dies never leaves a
//! stored report whose household a resumed campaign would check again.

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::store::db::cached;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::department::v1::Department;
use dibao_proto::events::v1::VerificationCompleted;
use dibao_proto::events::v1::event_envelope::Payload;
use dibao_proto::types::{DivisionCode, IdentityNumber, InvalidField, masked_identity};
use dibao_proto::verification::v1::{GetReportRequest, GetReportResponse, Report};
use prost::Message;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::verify::Hub;

pub const PRODUCER: &str = "verification-hub";
const AGGREGATE: &str = "verification.household";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("没有编号为“{0}”的核对报告")]
    NotFound(String),
    #[error("报告“{0}”属于另一户或另一份授权书，不能作为本次核对的新版本")]
    OfAnother(String),
}

impl Refusal for ReportError {
    fn kind(&self) -> RefusalKind {
        match self {
            ReportError::NotFound(_) => RefusalKind::NotFound,
            ReportError::OfAnother(_) => RefusalKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ReportError::NotFound(_) => "REPORT_NOT_FOUND",
            ReportError::OfAnother(_) => "REPORT_OF_ANOTHER_HOUSEHOLD",
        }
    }
}

/// The report id and version a run is stored under: a new report, or the
/// next version of `report_id` (which must be this household's under this consent).
#[tracing::instrument(skip(pool))]
pub async fn next_version(
    pool: &Pool,
    report_id: &str,
    household_id: &str,
    consent_id: &str,
) -> Result<(String, i32), Error> {
    if report_id.trim().is_empty() {
        return Ok((Uuid::now_v7().to_string(), 1));
    }
    let not_found = || ReportError::NotFound(report_id.to_owned());
    let id = Uuid::parse_str(report_id.trim()).map_err(|_| not_found())?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT household_id, consent_id::text AS consent_id, max(version) OVER () AS latest
             FROM report WHERE report_id = $1 LIMIT 1",
            &[&id],
        )
        .await?
        .ok_or_else(not_found)?;
    let (household, consent, latest): (String, String, i32) =
        (row.get("household_id"), row.get("consent_id"), row.get("latest"));
    if household != household_id || consent != consent_id {
        return Err(ReportError::OfAnother(report_id.to_owned()).into());
    }
    Ok((id.to_string(), latest + 1))
}

/// Stores `report` with its event and, for campaign `campaign`'s household, its mark.
#[tracing::instrument(skip_all, fields(report_id = %report.report_id, version = report.version))]
pub async fn store(pool: &Pool, topic: &str, report: &Report, campaign: Option<Uuid>) -> Result<(), Error> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // One household's reports take their event versions in order.
    // Prepared once per connection: every verification runs these.
    let key: [&(dyn ToSql + Sync); 1] = [&report.household_id];
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
    let report_id = Uuid::parse_str(&report.report_id).map_err(|e| Error::Unexpected(e.into()))?;
    let consent_id = Uuid::parse_str(&report.consent_id).map_err(|e| Error::Unexpected(e.into()))?;
    let completed_at = time::OffsetDateTime::from_unix_timestamp(report.completed_at.map_or(0, |t| t.seconds))
        .map_err(|e| Error::Unexpected(e.into()))?;
    let (county, finding_count, body) =
        (report.county.as_ref().map_or("", |c| c.code.as_str()), report.findings.len() as i32, report.encode_to_vec());
    let params: [&(dyn ToSql + Sync); 9] = [
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
    // The rows go out together (one round trip); the commit decides.
    let insert = cached::execute(
        &tx,
        "INSERT INTO report (report_id, version, household_id, consent_id, county, complete, finding_count, completed_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &params,
    );
    let enqueue = outbox::enqueue(
        &tx,
        NewEvent {
            topic,
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
            Some(id) => mark_done(&tx, id, report_id, report).await,
            None => Ok(0),
        }
    };
    tokio::try_join!(insert, enqueue, mark)?;
    tx.commit().await?;
    Ok(())
}

/// Marks campaign `id`'s household of `report` done: which departments
/// answered it and which left an item unavailable.
async fn mark_done(
    tx: &impl deadpool_postgres::GenericClient,
    id: Uuid,
    report_id: Uuid,
    report: &Report,
) -> Result<u64, tokio_postgres::Error> {
    let (answered, failed) = departments_of(report);
    tx.execute(
        "UPDATE campaign_household SET status = 'done', report_id = $3, findings = $4,
                departments_answered = $5, departments_failed = $6
         WHERE campaign_id = $1 AND household_id = $2",
        &[&id, &report.household_id, &report_id, &(report.findings.len() as i32), &answered, &failed],
    )
    .await
}

/// The departments that answered everything a report asked of them, and
/// those that left an item unavailable.
pub fn departments_of(report: &Report) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut answered: Vec<&str> = Vec::new();
    let mut failed: Vec<&str> = Vec::new();
    for i in &report.items {
        let d = Department::try_from(i.department).unwrap_or(Department::Unspecified).as_str_name();
        if i.unavailable && !failed.contains(&d) {
            failed.push(d);
        }
    }
    for i in &report.items {
        let d = Department::try_from(i.department).unwrap_or(Department::Unspecified).as_str_name();
        if !failed.contains(&d) && !answered.contains(&d) {
            answered.push(d);
        }
    }
    (answered, failed)
}

/// Who sees a report's identity numbers in full: those who check, review
/// and approve the household. An auditor sees them masked.
const FULL_IDENTITY: &[OfficerRole] = &[
    OfficerRole::VerificationOfficer,
    OfficerRole::TownshipCaseworker,
    OfficerRole::TownshipReviewer,
    OfficerRole::CountyApprover,
];

/// A report by id, the latest version or the one asked for. A report of a
/// county outside the officer's jurisdiction is not found; every person
/// in it is on record as read before it leaves.
pub async fn get(hub: &Hub, reader: &Reader, req: GetReportRequest) -> Result<GetReportResponse, Error> {
    let not_found = || ReportError::NotFound(req.report_id.clone());
    let id = Uuid::parse_str(req.report_id.trim()).map_err(|_| not_found())?;
    if req.version < 0 {
        return Err(InvalidField::new("version", "版本号不能为负数（0 表示最新版本）").into());
    }
    let client = hub.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT county, body FROM report WHERE report_id = $1 AND ($2 = 0 OR version = $2)
             ORDER BY version DESC LIMIT 1",
            &[&id, &req.version],
        )
        .await?
        .ok_or_else(not_found)?;
    let county: String = row.get("county");
    if !DivisionCode::parse(&county).is_ok_and(|c| reader.covers(&c)) {
        return Err(not_found().into());
    }
    let body: Vec<u8> = row.get("body");
    let mut report = Report::decode(body.as_slice()).map_err(|e| Error::stored(format!("report {id}: {e}")))?;
    hub.log.record_all(report.persons.iter().map(|p| reader.entry(&p.value, "查阅核对报告")).collect()).await?;
    if !reader.sees_in_full(FULL_IDENTITY) {
        mask(&mut report);
    }
    Ok(GetReportResponse { report: Some(report) })
}

fn mask(report: &mut Report) {
    let ids = report
        .persons
        .iter_mut()
        .chain(report.items.iter_mut().filter_map(|i| i.person.as_mut()))
        .chain(report.findings.iter_mut().filter_map(|f| f.person.as_mut()));
    for id in ids {
        id.value = masked_identity(&id.value);
    }
    // A finding's reason names the person it concerns; the summary too.
    for f in &mut report.findings {
        f.reason = mask_numbers_in(&f.reason);
    }
    report.summary = mask_numbers_in(&report.summary);
}

/// `text` with every 18-character identity number in it masked.
fn mask_numbers_in(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let end = (i + 18).min(chars.len());
        let candidate: String = chars[i..end].iter().collect();
        if end - i == 18 && IdentityNumber::parse(&candidate).is_ok() {
            out.push_str(&masked_identity(&candidate));
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
