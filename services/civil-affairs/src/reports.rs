//! Upward reports (R-AUD-3; seed 003: quarterly to the province's civil
//! affairs department and poverty office; seed 001: the adjusted roster
//! reported to the county): a month's or a quarter's figures per county,
//! rolled up to the city or province asked for.
//!
//! Every figure is read from what is recorded and never rewritten — the
//! roster's ledger (`household_ledger`, appended by the database whenever a
//! household's status, programme, category, amount or living members
//! change), signed steps and reviews, payments and the bank's returns,
//! recoveries, samples, complaints, the comparison's finished runs — as it
//! stood at the report's `as_of`. So the same report asked again from the
//! same records is the same bytes ([`generate`] with `reproduce_report_id`
//! says whether it is). Each report is kept (`upward_report`) and published
//! (`UpwardReportPublished`, on the topic the poverty office reads); the
//! previous month's and quarter's are made by [`run_schedule`] for every
//! province with a county policy.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::events::outbox::{self, NewEvent, timestamp_of};
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::{CHINA, add_months, china_date};
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{self as common, Money};
use dibao_proto::events::v1::{BenefitCategory, Programme, UpwardReportPublished, event_envelope::Payload};
use dibao_proto::labels::{Label, chinese_date};
use dibao_proto::types::{DivisionCode, DivisionLevel, Fen, InvalidField, date_to_pb};
use prost::Message;
use time::{Date, OffsetDateTime, Time};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::convert;
use crate::households::Roster;

const AGGREGATE: &str = "civil_affairs.upward_report";
const PRODUCER: &str = "civil-affairs";
/// Who generates the scheduled reports.
const SCHEDULE: &str = "schedule";
/// How far behind the clock a report reads: a transaction still writing
/// at the instant a report is made has committed by then, so the same
/// report read again sees the same rows.
const SETTLE: time::Duration = time::Duration::seconds(2);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("报表{0}不存在")]
    NotFound(Uuid),
}

impl Refusal for ReportError {
    fn kind(&self) -> RefusalKind {
        RefusalKind::NotFound
    }

    fn reason(&self) -> &'static str {
        "REPORT_NOT_FOUND"
    }
}

/// A month or a quarter: its first and last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Date,
    pub end: Date,
    pub quarterly: bool,
}

impl Period {
    pub fn month(first: Date) -> Self {
        Self { start: first, end: add_months(first, 1).previous_day().unwrap_or(first), quarterly: false }
    }

    pub fn quarter(year: i32, quarter: u8) -> Option<Self> {
        let start = Date::from_calendar_date(year, time::Month::try_from(quarter * 3 - 2).ok()?, 1).ok()?;
        Some(Self { start, end: add_months(start, 3).previous_day()?, quarterly: true })
    }

    fn check(v: &Option<pb::ReportPeriod>, today: Date) -> Result<Self, InvalidField> {
        let p = v.as_ref().ok_or_else(|| InvalidField::new("period", "必填项缺失"))?;
        let period = match (p.month, p.quarter) {
            (m, 0) if (1..=12).contains(&m) => {
                convert::year_month(&Some(common::YearMonth { year: p.year, month: m }), "period").map(Self::month)?
            }
            (0, q) if (1..=4).contains(&q) => Self::quarter(p.year, q as u8)
                .ok_or_else(|| InvalidField::new("period", format!("{}年第{q}季度不是有效季度", p.year)))?,
            _ => {
                return Err(InvalidField::new(
                    "period",
                    "请填写月份（1–12，季度填0）或季度（1–4，月份填0），二者只填一个",
                ));
            }
        };
        if period.start > today {
            return Err(InvalidField::new("period", "报告期尚未开始，不能生成报表"));
        }
        Ok(period)
    }

    fn pb(&self) -> pb::ReportPeriod {
        let month = self.start.month() as u8;
        if self.quarterly {
            pb::ReportPeriod { year: self.start.year(), month: 0, quarter: i32::from(month.div_ceil(3)) }
        } else {
            pb::ReportPeriod { year: self.start.year(), month: i32::from(month), quarter: 0 }
        }
    }

    /// `2026年第2季度`, `2026年06月`.
    fn label(&self) -> String {
        let p = self.pb();
        if self.quarterly {
            format!("{}年第{}季度", p.year, p.quarter)
        } else {
            format!("{}年{:02}月", p.year, p.month)
        }
    }

    /// The instant the period begins and the one it ends (China's midnights).
    fn instants(&self) -> (OffsetDateTime, OffsetDateTime) {
        let at = |d: Date| d.with_time(Time::MIDNIGHT).assume_offset(CHINA);
        (at(self.start), at(self.end.next_day().unwrap_or(self.end)))
    }
}

/// A report to generate, checked: new, or again as stored.
pub enum Ask {
    New { division: DivisionCode, period: Period },
    Again(Uuid),
}

impl Ask {
    pub fn check(req: &pb::GenerateReportRequest, reader: &Reader, today: Date) -> Result<Self, Error> {
        if !req.reproduce_report_id.trim().is_empty() {
            return Ok(Ask::Again(convert::uuid(
                &req.reproduce_report_id,
                "reproduce_report_id",
                "报表编号格式不正确",
            )?));
        }
        let mut errors = Vec::new();
        let division = convert::division(&req.division, "division").map_err(|e| errors.push(e)).ok();
        // Outside the jurisdiction: refused before anything else is said.
        if let Some(d) = &division {
            reader.must_cover(d, "division")?;
            if d.level() > DivisionLevel::County {
                errors
                    .push(InvalidField::new("division", "报表按县（市、区）、市（州）或省汇总，请填写6位行政区划代码"));
            }
        }
        let period = Period::check(&req.period, today).map_err(|e| errors.push(e)).ok();
        match (division, period, errors.is_empty()) {
            (Some(division), Some(period), true) => Ok(Ask::New { division, period }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// Generates a report, keeps and publishes it; or regenerates a stored one
/// from the records as they stood at its `as_of` and says whether it is the
/// same, byte for byte.
#[tracing::instrument(skip_all)]
pub async fn generate(roster: &Roster, reader: &Reader, ask: Ask) -> Result<pb::GenerateReportResponse, Error> {
    match ask {
        Ask::New { division, period } => {
            let by = reader.officer.as_ref().map_or_else(|| reader.caller.clone(), |o| o.officer_id.clone());
            let report = make(roster, &division, period, &by, false).await?;
            Ok(pb::GenerateReportResponse { report: Some(report), identical: false })
        }
        Ask::Again(id) => {
            let client = roster.pool.get().await?;
            let stored = stored(&client, reader, id).await?;
            let (body, report) = figures(&client, &stored.division, stored.period, stored.as_of).await?;
            let identical = body == stored.body;
            let report = stamped(report, id, sha256(&body), stored.scheduled);
            tracing::info!(report_id = %id, identical, "report regenerated");
            Ok(pb::GenerateReportResponse { report: Some(report), identical })
        }
    }
}

/// Computes, stores and publishes one report.
async fn make(
    roster: &Roster,
    division: &DivisionCode,
    period: Period,
    by: &str,
    scheduled: bool,
) -> Result<pb::Report, Error> {
    let now = roster.clock.now();
    let as_of = (now - SETTLE).replace_nanosecond(0).unwrap_or(now - SETTLE);
    let mut client = roster.pool.get().await?;
    let (body, report) = figures(&client, division, period, as_of).await?;
    let sha256 = sha256(&body);
    let report_id = Uuid::now_v7();
    let tx = client.transaction().await?;
    let inserted = tx
        .execute(
            "INSERT INTO upward_report (report_id, division, period_start, period_end, quarterly, as_of, body, sha256,
                                        scheduled, generated_by, generated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (division, period_start, quarterly) WHERE scheduled DO NOTHING",
            &[
                &report_id,
                &division.as_str(),
                &period.start,
                &period.end,
                &period.quarterly,
                &as_of,
                &body,
                &sha256,
                &scheduled,
                &by,
                &now,
            ],
        )
        .await?;
    if inserted == 1 {
        publish(&tx, &roster.topic, report_id, division, period, &sha256).await?;
    }
    tx.commit().await?;
    tracing::info!(%report_id, %division, period = %period.label(), scheduled, "report generated");
    Ok(stamped(report, report_id, sha256, scheduled))
}

async fn publish(
    tx: &Transaction<'_>,
    topic: &str,
    report_id: Uuid,
    division: &DivisionCode,
    period: Period,
    sha256: &str,
) -> Result<(), Error> {
    outbox::enqueue(
        tx,
        NewEvent {
            topic,
            aggregate_type: AGGREGATE,
            aggregate_key: &report_id.to_string(),
            aggregate_version: 1,
            producer: PRODUCER,
            payload: Payload::UpwardReportPublished(UpwardReportPublished {
                report_id: report_id.to_string(),
                division: Some(division.into()),
                period_start: Some(date_to_pb(period.start)),
                period_end: Some(date_to_pb(period.end)),
                quarterly: period.quarterly,
                sha256: sha256.to_owned(),
            }),
        },
    )
    .await?;
    Ok(())
}

fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored report's row.
struct Stored {
    division: DivisionCode,
    period: Period,
    as_of: OffsetDateTime,
    body: Vec<u8>,
    scheduled: bool,
    sha256: String,
}

/// The stored report, if the reader's jurisdiction holds its division; not
/// found otherwise (a refused reader learns nothing of it).
async fn stored(client: &deadpool_postgres::Client, reader: &Reader, id: Uuid) -> Result<Stored, Error> {
    let row = client
        .query_opt(
            "SELECT division, period_start, period_end, quarterly, as_of, body, scheduled, sha256
             FROM upward_report WHERE report_id = $1",
            &[&id],
        )
        .await?
        .ok_or(ReportError::NotFound(id))?;
    let division = DivisionCode::parse(row.get("division")).map_err(|_| Error::stored("report division"))?;
    if !reader.covers(&division) {
        return Err(ReportError::NotFound(id).into());
    }
    Ok(Stored {
        division,
        period: Period { start: row.get("period_start"), end: row.get("period_end"), quarterly: row.get("quarterly") },
        as_of: row.get("as_of"),
        body: row.get("body"),
        scheduled: row.get("scheduled"),
        sha256: row.get("sha256"),
    })
}

pub async fn get(roster: &Roster, reader: &Reader, req: &pb::GetReportRequest) -> Result<pb::GetReportResponse, Error> {
    let id = convert::uuid(&req.report_id, "report_id", "报表编号格式不正确")?;
    let client = roster.pool.get().await?;
    Ok(pb::GetReportResponse { report: Some(decoded(id, &stored(&client, reader, id).await?)?) })
}

fn decoded(id: Uuid, s: &Stored) -> Result<pb::Report, Error> {
    let report = pb::Report::decode(s.body.as_slice()).map_err(|e| Error::stored(format!("report {id}: {e}")))?;
    Ok(stamped(report, id, s.sha256.clone(), s.scheduled))
}

/// The figures as a report answers them: with the id, the digest and the
/// schedule mark the encoded figures leave out.
fn stamped(mut report: pb::Report, id: Uuid, sha256: String, scheduled: bool) -> pb::Report {
    report.report_id = id.to_string();
    report.sha256 = sha256;
    report.scheduled = scheduled;
    report
}

/// The reports of a division and of the divisions inside it, the
/// latest-ending period first (a quarter before its last month), at most 500.
pub async fn list(
    roster: &Roster,
    reader: &Reader,
    req: &pb::ListReportsRequest,
) -> Result<pb::ListReportsResponse, Error> {
    let division = convert::division(&req.division, "division")?;
    reader.must_cover(&division, "division")?;
    let client = roster.pool.get().await?;
    let rows = client
        .query(
            "SELECT report_id, division, period_start, period_end, quarterly, as_of, scheduled, sha256
             FROM upward_report WHERE division LIKE $1 || '%'
             ORDER BY period_end DESC, quarterly DESC, division, generated_at DESC LIMIT 500",
            &[&division.prefix()],
        )
        .await?;
    let reports = rows
        .iter()
        .map(|r| {
            let code: String = r.get("division");
            let period =
                Period { start: r.get("period_start"), end: r.get("period_end"), quarterly: r.get("quarterly") };
            pb::ReportSummary {
                report_id: r.get::<_, Uuid>("report_id").to_string(),
                division_name: dibao_proto::divisions::name(&code).unwrap_or_default(),
                division: Some(common::DivisionCode { code }),
                period: Some(period.pb()),
                as_of: Some(timestamp_of(r.get("as_of"))),
                scheduled: r.get("scheduled"),
                sha256: r.get("sha256"),
            }
        })
        .collect();
    Ok(pb::ListReportsResponse { reports })
}

/// The figures of `division` for `period` as recorded at `as_of`: the
/// report encoded (without id, digest and schedule mark) and decoded.
async fn figures(
    client: &deadpool_postgres::Client,
    division: &DivisionCode,
    period: Period,
    as_of: OffsetDateTime,
) -> Result<(Vec<u8>, pb::Report), Error> {
    let counties: Vec<String> = if division.level() == DivisionLevel::County {
        vec![division.as_str().to_owned()]
    } else {
        dibao_proto::divisions::counties_in(division.as_str()).into_iter().map(|(c, _)| c.to_owned()).collect()
    };
    let (start_at, end_at) = period.instants();
    let cut = end_at.min(as_of);
    let mut by_county: BTreeMap<String, pb::DivisionFigures> = BTreeMap::new();

    // The roster at the period's end: each household's last ledger row.
    for r in client
        .query(
            "SELECT county, programme, category, count(*) AS households, sum(persons)::bigint AS persons,
                    sum(monthly_amount_fen)::bigint AS amount
             FROM (SELECT DISTINCT ON (household_id) county, status, programme, category, persons, monthly_amount_fen
                   FROM household_ledger WHERE county = ANY($1) AND recorded_at < $2
                   ORDER BY household_id, id DESC) last
             WHERE status IN (2, 3)
             GROUP BY county, programme, category ORDER BY county, programme, category",
            &[&counties, &cut],
        )
        .await?
    {
        let f = at(&mut by_county, &r);
        let (households, persons): (i64, i64) = (r.get("households"), r.get("persons"));
        f.households += households;
        f.persons += persons;
        f.on_roster.push(pb::RosterCount {
            programme: r.get("programme"),
            category: r.get("category"),
            households,
            persons,
            monthly_amount: Some(Money { fen: r.get("amount") }),
        });
    }
    // Entries and exits in the period: a ledger row against the one before it.
    for r in client
        .query(
            "SELECT county,
                    count(*) FILTER (WHERE now_on AND NOT was_on AND NOT imported) AS enrolled,
                    coalesce(sum(persons) FILTER (WHERE now_on AND NOT was_on AND NOT imported), 0)::bigint AS enrolled_persons,
                    count(*) FILTER (WHERE now_on AND NOT was_on AND imported) AS imported,
                    count(*) FILTER (WHERE status = 4 AND was_on) AS exited,
                    count(*) FILTER (WHERE status = 3 AND before = 2) AS gradual
             FROM (SELECT county, status, persons, imported, recorded_at, status IN (2, 3) AS now_on,
                          coalesce(lag(status) OVER w IN (2, 3), false) AS was_on, lag(status) OVER w AS before
                   FROM household_ledger WHERE county = ANY($1) AND recorded_at < $3
                   WINDOW w AS (PARTITION BY household_id ORDER BY id)) t
             WHERE recorded_at >= $2
             GROUP BY county",
            &[&counties, &start_at, &cut],
        )
        .await?
    {
        let f = at(&mut by_county, &r);
        f.enrolled_households = r.get("enrolled");
        f.enrolled_persons = r.get("enrolled_persons");
        f.imported_households = r.get("imported");
        f.exited_households = r.get("exited");
        f.gradual_exits = r.get("gradual");
    }
    // Payments for the period's months, as the bank had returned them by
    // as_of (a month is paid after it begins, its returns come later).
    for r in client
        .query(
            "SELECT r.county,
                    count(*) FILTER (WHERE p.status = 2 AND p.returned_at < $4) AS paid,
                    coalesce(sum(p.amount_fen) FILTER (WHERE p.status = 2 AND p.returned_at < $4), 0)::bigint AS paid_fen,
                    count(*) FILTER (WHERE p.status = 3 AND p.returned_at < $4) AS failed,
                    count(*) FILTER (WHERE p.returned_at IS NULL OR p.returned_at >= $4) AS pending
             FROM payment p JOIN payment_roll r USING (roll_id)
             WHERE r.county = ANY($1) AND p.month BETWEEN $2 AND $3 AND r.prepared_at < $4
             GROUP BY r.county",
            &[&counties, &period.start, &period.end, &as_of],
        )
        .await?
    {
        let f = at(&mut by_county, &r);
        f.payments_paid = r.get("paid");
        f.paid = Some(Money { fen: r.get("paid_fen") });
        f.payments_failed = r.get("failed");
        f.payments_pending = r.get("pending");
    }
    for r in client
        .query(
            "SELECT r.county, sum(c.amount_fen)::bigint AS recovered
             FROM payment_recovery c JOIN payment p USING (reference) JOIN payment_roll r USING (roll_id)
             WHERE r.county = ANY($1) AND c.recorded_at >= $2 AND c.recorded_at < $3
             GROUP BY r.county",
            &[&counties, &start_at, &cut],
        )
        .await?
    {
        at(&mut by_county, &r).recovered = Some(Money { fen: r.get("recovered") });
    }
    // County approvals of applications and reviews, and those on a hub report.
    for r in client
        .query(
            "SELECT h.county, count(*) AS approvals,
                    count(*) FILTER (WHERE coalesce(s.verification_report_id, a.verification_report_id) IS NOT NULL) AS verified
             FROM application_step s JOIN application a USING (application_id) JOIN household h USING (household_id)
             WHERE h.county = ANY($1) AND a.kind = 'enrol' AND s.step = $4 AND s.approve
               AND s.recorded_at >= $2 AND s.recorded_at < $3
             GROUP BY h.county",
            &[&counties, &start_at, &cut, &(pb::ProcessStep::CountyApproval as i32)],
        )
        .await?
    {
        let f = at(&mut by_county, &r);
        f.approvals = r.get("approvals");
        f.approvals_verified = r.get("verified");
    }
    for r in client
        .query(
            "SELECT h.county, count(*) AS reviews, count(v.verification_report_id) AS verified
             FROM household_review v JOIN household h USING (household_id)
             WHERE h.county = ANY($1) AND v.recorded_at >= $2 AND v.recorded_at < $3
             GROUP BY h.county",
            &[&counties, &start_at, &cut],
        )
        .await?
    {
        let f = at(&mut by_county, &r);
        f.reviews = r.get("reviews");
        f.reviews_verified = r.get("verified");
    }
    for r in client
        .query(
            "SELECT county, count(*) AS samples, coalesce(sum(cardinality(household_ids)), 0)::bigint AS households
             FROM audit_sample WHERE county = ANY($1) AND drawn_at >= $2 AND drawn_at < $3
             GROUP BY county",
            &[&counties, &start_at, &cut],
        )
        .await?
    {
        let f = at(&mut by_county, &r);
        f.samples = r.get("samples");
        f.sampled_households = r.get("households");
    }
    // Complaints: a deadline passed while still open at the cut is overdue.
    let cut_date = china_date(cut);
    for r in client
        .query(
            "SELECT county,
                    count(*) FILTER (WHERE filed_at >= $2) AS received,
                    count(*) FILTER (WHERE closed_at >= $2 AND closed_at < $3) AS closed,
                    count(*) FILTER (WHERE closed_at IS NULL OR closed_at >= $3) AS open,
                    count(*) FILTER (WHERE (closed_at IS NULL OR closed_at >= $3) AND due_on < $4) AS overdue
             FROM complaint WHERE county = ANY($1) AND filed_at < $3
             GROUP BY county",
            &[&counties, &start_at, &cut, &cut_date],
        )
        .await?
    {
        let f = at(&mut by_county, &r);
        f.complaints_received = r.get("received");
        f.complaints_closed = r.get("closed");
        f.complaints_open = r.get("open");
        f.complaints_overdue = r.get("overdue");
    }
    // The comparison's last finished run of each county, and of the division itself.
    let mut runs: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
    let mut divisions = counties.clone();
    divisions.push(division.as_str().to_owned());
    for r in client
        .query(
            "SELECT DISTINCT ON (division) division, lists, sizes FROM comparison_completed
             WHERE division = ANY($1) AND completed_at >= $2 AND completed_at < $3
             ORDER BY division, completed_at DESC, run_id",
            &[&divisions, &start_at, &cut],
        )
        .await?
    {
        let (lists, sizes): (Vec<String>, Vec<i64>) = (r.get("lists"), r.get("sizes"));
        runs.insert(r.get("division"), lists.into_iter().zip(sizes).collect());
    }
    for (county, sizes) in &runs {
        if counties.contains(county) {
            by_county.entry(county.clone()).or_insert_with(|| blank(county)).comparison_lists = sizes.clone();
        }
    }

    let mut total = blank(division.as_str());
    for f in by_county.values() {
        add(&mut total, f);
    }
    // A run over the whole division says its lists itself.
    if let Some(sizes) = runs.get(division.as_str()) {
        total.comparison_lists = sizes.clone();
    }
    let report = pb::Report {
        report_id: String::new(),
        division: Some(division.into()),
        division_name: division.name().unwrap_or_default(),
        period: Some(period.pb()),
        period_start: Some(date_to_pb(period.start)),
        period_end: Some(date_to_pb(period.end)),
        as_of: Some(timestamp_of(as_of)),
        counties: by_county.into_values().collect(),
        total: Some(total),
        scheduled: false,
        sha256: String::new(),
    };
    // Deterministic: prost writes fields in number order, every repeated
    // field is in code order and the list sizes are a BTreeMap.
    Ok((report.encode_to_vec(), report))
}

/// The figures of the row's county, begun blank.
fn at<'a>(by_county: &'a mut BTreeMap<String, pb::DivisionFigures>, row: &Row) -> &'a mut pb::DivisionFigures {
    let county: String = row.get("county");
    by_county.entry(county.clone()).or_insert_with(|| blank(&county))
}

fn blank(code: &str) -> pb::DivisionFigures {
    pb::DivisionFigures {
        division: Some(common::DivisionCode { code: code.to_owned() }),
        name: dibao_proto::divisions::name(code).unwrap_or_default(),
        paid: Some(Money { fen: 0 }),
        recovered: Some(Money { fen: 0 }),
        ..Default::default()
    }
}

/// Adds a county's figures into the total's.
fn add(total: &mut pb::DivisionFigures, f: &pb::DivisionFigures) {
    let fen = |m: &Option<Money>| m.as_ref().map_or(0, |m| m.fen);
    for c in &f.on_roster {
        match total.on_roster.iter_mut().find(|t| (t.programme, t.category) == (c.programme, c.category)) {
            Some(t) => {
                t.households += c.households;
                t.persons += c.persons;
                t.monthly_amount = Some(Money { fen: fen(&t.monthly_amount) + fen(&c.monthly_amount) });
            }
            None => total.on_roster.push(*c),
        }
    }
    total.on_roster.sort_by_key(|c| (c.programme, c.category));
    total.households += f.households;
    total.persons += f.persons;
    total.enrolled_households += f.enrolled_households;
    total.enrolled_persons += f.enrolled_persons;
    total.imported_households += f.imported_households;
    total.exited_households += f.exited_households;
    total.gradual_exits += f.gradual_exits;
    total.payments_paid += f.payments_paid;
    total.paid = Some(Money { fen: fen(&total.paid) + fen(&f.paid) });
    total.payments_failed += f.payments_failed;
    total.payments_pending += f.payments_pending;
    total.recovered = Some(Money { fen: fen(&total.recovered) + fen(&f.recovered) });
    total.approvals += f.approvals;
    total.approvals_verified += f.approvals_verified;
    total.reviews += f.reviews;
    total.reviews_verified += f.reviews_verified;
    total.samples += f.samples;
    total.sampled_households += f.sampled_households;
    total.complaints_received += f.complaints_received;
    total.complaints_closed += f.complaints_closed;
    total.complaints_open += f.complaints_open;
    total.complaints_overdue += f.complaints_overdue;
    for (k, v) in &f.comparison_lists {
        *total.comparison_lists.entry(k.clone()).or_default() += v;
    }
}

/// The stored report as an xlsx workbook: one sheet of figures, one row per
/// county and the total, then the roster by programme and category. The
/// workbook is dated by the report's as_of, so it is the same bytes each time.
pub async fn export(
    roster: &Roster,
    reader: &Reader,
    req: &pb::ExportReportRequest,
) -> Result<pb::ExportReportResponse, Error> {
    let id = convert::uuid(&req.report_id, "report_id", "报表编号格式不正确")?;
    let client = roster.pool.get().await?;
    let s = stored(&client, reader, id).await?;
    let report = decoded(id, &s)?;
    let content = to_xlsx(&report, s.period, s.as_of).map_err(|e| Error::Unexpected(anyhow::anyhow!("xlsx: {e}")))?;
    let name = report.division_name.clone();
    Ok(pb::ExportReportResponse {
        filename: format!("{}{}{}低保特困统计报表.xlsx", s.division, name, s.period.label()),
        content,
    })
}

const HEADINGS: [&str; 25] = [
    "行政区划代码",
    "名称",
    "在册户数",
    "在册人数",
    "新增纳入户数",
    "新增纳入人数",
    "名册导入户数",
    "退出户数",
    "渐退户数",
    "发放成功笔数",
    "发放金额（元）",
    "发放失败笔数",
    "待银行回盘笔数",
    "追回金额（元）",
    "县级审批数",
    "其中经核对审批数",
    "复核数",
    "其中经核对复核数",
    "抽查次数",
    "抽查户数",
    "受理投诉举报",
    "办结投诉举报",
    "未办结投诉举报",
    "逾期未办结",
    "比对清单（a–g）",
];

fn yuan(m: &Option<Money>) -> String {
    let fen = m.as_ref().map_or(0, |m| m.fen);
    Fen(fen).to_string().trim_end_matches('元').to_owned()
}

fn row_of(f: &pb::DivisionFigures) -> Vec<String> {
    let lists = f.comparison_lists.iter().map(|(k, v)| format!("({k}){v}")).collect::<Vec<_>>().join(" ");
    let code = f.division.as_ref().map(|d| d.code.clone()).unwrap_or_default();
    vec![
        code,
        f.name.clone(),
        f.households.to_string(),
        f.persons.to_string(),
        f.enrolled_households.to_string(),
        f.enrolled_persons.to_string(),
        f.imported_households.to_string(),
        f.exited_households.to_string(),
        f.gradual_exits.to_string(),
        f.payments_paid.to_string(),
        yuan(&f.paid),
        f.payments_failed.to_string(),
        f.payments_pending.to_string(),
        yuan(&f.recovered),
        f.approvals.to_string(),
        f.approvals_verified.to_string(),
        f.reviews.to_string(),
        f.reviews_verified.to_string(),
        f.samples.to_string(),
        f.sampled_households.to_string(),
        f.complaints_received.to_string(),
        f.complaints_closed.to_string(),
        f.complaints_open.to_string(),
        f.complaints_overdue.to_string(),
        lists,
    ]
}

fn to_xlsx(report: &pb::Report, period: Period, as_of: OffsetDateTime) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
    let mut workbook = Workbook::new();
    let day = china_date(as_of);
    let created = ExcelDateTime::from_ymd(day.year() as u16, day.month() as u8, day.day())?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created).set_author("dibao-mesh 民政"));
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    sheet.set_name("统计表")?;
    let place = if report.division_name.is_empty() {
        report.division.as_ref().map(|d| d.code.clone()).unwrap_or_default()
    } else {
        report.division_name.clone()
    };
    sheet.write_string_with_format(
        0,
        0,
        format!("{place}{}最低生活保障和特困人员救助供养统计表", period.label()),
        &bold,
    )?;
    sheet.write_string(
        1,
        0,
        format!(
            "报告期：{}至{}；数据截至{}；报表摘要（SHA-256）：{}",
            chinese_date(period.start),
            chinese_date(period.end),
            chinese_date(day),
            report.sha256
        ),
    )?;
    for (c, h) in HEADINGS.iter().enumerate() {
        sheet.write_string_with_format(3, c as u16, *h, &bold)?;
    }
    let mut r = 4u32;
    for f in &report.counties {
        for (c, v) in row_of(f).iter().enumerate() {
            sheet.write_string(r, c as u16, v)?;
        }
        r += 1;
    }
    if let Some(t) = &report.total {
        let mut cells = row_of(t);
        cells[1] = format!("{}合计", cells[1]);
        for (c, v) in cells.iter().enumerate() {
            sheet.write_string_with_format(r, c as u16, v, &bold)?;
        }
        r += 2;
        sheet.write_string_with_format(r, 0, "在册对象分类（期末）", &bold)?;
        r += 1;
        for (c, h) in ["保障类型", "类别", "户数", "人数", "月保障金额（元）"].iter().enumerate() {
            sheet.write_string_with_format(r, c as u16, *h, &bold)?;
        }
        r += 1;
        for c in &t.on_roster {
            let programme = Programme::try_from(c.programme).unwrap_or_default().label();
            let category = BenefitCategory::try_from(c.category).unwrap_or_default().label();
            for (col, v) in [
                programme.to_owned(),
                category.to_owned(),
                c.households.to_string(),
                c.persons.to_string(),
                yuan(&c.monthly_amount),
            ]
            .iter()
            .enumerate()
            {
                sheet.write_string(r, col as u16, v)?;
            }
            r += 1;
        }
    }
    workbook.save_to_buffer()
}

/// Makes the previous month's report (and, after a quarter, the quarter's)
/// for every province with a county policy, once each: at start-up, then
/// every hour, until shutdown.
pub async fn run_schedule(roster: Arc<Roster>, mut shutdown: Shutdown) {
    loop {
        if let Err(e) = scheduled(&roster).await {
            tracing::warn!(error = %e, "scheduled reports not made; tried again within the hour");
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
    }
}

async fn scheduled(roster: &Roster) -> Result<(), Error> {
    let today = china_date(roster.clock.now());
    let this_month = today.replace_day(1).unwrap_or(today);
    let last_month = this_month.previous_day().and_then(|d| d.replace_day(1).ok()).unwrap_or(this_month);
    let mut periods = vec![Period::month(last_month)];
    if matches!(this_month.month() as u8, 1 | 4 | 7 | 10) {
        let q = (last_month.month() as u8).div_ceil(3);
        periods.extend(Period::quarter(last_month.year(), q));
    }
    let client = roster.pool.get().await?;
    let provinces: Vec<String> = client
        .query("SELECT DISTINCT substr(county, 1, 2) || '0000' AS province FROM county_policy ORDER BY 1", &[])
        .await?
        .iter()
        .map(|r| r.get("province"))
        .collect();
    for province in provinces {
        let Ok(division) = DivisionCode::parse(&province) else { continue };
        for period in &periods {
            let made = client
                .query_opt(
                    "SELECT 1 FROM upward_report WHERE division = $1 AND period_start = $2 AND quarterly = $3 AND scheduled",
                    &[&division.as_str(), &period.start, &period.quarterly],
                )
                .await?;
            if made.is_none() {
                make(roster, &division, *period, SCHEDULE, true).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods_are_months_or_quarters_and_not_yet_begun_ones_are_refused() {
        let today = date!(2026 - 07 - 15);
        let p = |year, month, quarter| Some(pb::ReportPeriod { year, month, quarter });
        let q2 = Period::check(&p(2026, 0, 2), today).expect("quarter");
        assert_eq!((q2.start, q2.end, q2.quarterly), (date!(2026 - 04 - 01), date!(2026 - 06 - 30), true));
        assert_eq!(q2.label(), "2026年第2季度");
        let feb = Period::check(&p(2026, 2, 0), today).expect("month");
        assert_eq!(feb.end, date!(2026 - 02 - 28));
        assert_eq!(feb.pb(), pb::ReportPeriod { year: 2026, month: 2, quarter: 0 });
        for bad in [p(2026, 2, 1), p(2026, 0, 0), p(2026, 13, 0), p(2026, 0, 5), p(2026, 0, 4), None] {
            assert_eq!(Period::check(&bad, today).expect_err("refused").field, "period");
        }
    }
}
