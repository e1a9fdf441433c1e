//! The lists as officers read them (R-CMP-2): a run and its sizes, the
//! entries of a run or of the continuous comparison a page at a time with
//! their decisions, the open items per township, and the files a township
//! or village receives.

use std::collections::{BTreeMap, HashMap};

use deadpool_postgres::{GenericClient, Pool};
use dibao_platform::Error;
use dibao_platform::events::outbox::timestamp_of;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::trust::access_log::{AccessEntry, AccessLog};
use dibao_proto::common::v1 as common;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::comparison::v1 as pb;
use dibao_proto::types::{DivisionCode, InvalidField, masked_identity};
use tokio::sync::mpsc;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::engine::Kind;
use crate::entries::StoredEntry;
use crate::export;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("没有找到已完成的比对批次，请先运行比对")]
    NoRun,
    #[error("比对批次{0}不存在")]
    RunNotFound(Uuid),
}

impl Refusal for ListError {
    fn kind(&self) -> RefusalKind {
        RefusalKind::NotFound
    }

    fn reason(&self) -> &'static str {
        match self {
            ListError::NoRun => "NO_FINISHED_RUN",
            ListError::RunNotFound(_) => "RUN_NOT_FOUND",
        }
    }
}

pub fn list_kind(k: Kind) -> pb::ListKind {
    k.into()
}

fn kind_of(k: pb::ListKind) -> Option<Kind> {
    Kind::ALL.into_iter().find(|x| list_kind(*x) == k)
}

/// The size of each list, (a) to (g).
pub fn sizes(sizes: &[i64]) -> Vec<pb::ListSize> {
    Kind::ALL.iter().zip(sizes).map(|(k, n)| pb::ListSize { kind: list_kind(*k) as i32, entries: *n }).collect()
}

/// An optional division of a request.
pub fn division_field(d: &Option<common::DivisionCode>, field: &str) -> Result<Option<DivisionCode>, Error> {
    match d {
        Some(d) if !d.code.trim().is_empty() => Ok(Some(DivisionCode::try_from(d).map_err(|e| e.within(field))?)),
        _ => Ok(None),
    }
}

/// The leading digits of the villages a request reads: the division it
/// names, which must lie in the officer's jurisdiction; none named, the
/// officer's whole jurisdiction (a system reads the province).
pub fn scope(reader: &Reader, d: &Option<common::DivisionCode>, field: &str) -> Result<String, Error> {
    match (division_field(d, field)?, &reader.officer) {
        (Some(d), _) => {
            reader.must_cover(&d, field)?;
            Ok(d.prefix().to_owned())
        }
        (None, Some(officer)) => Ok(officer.division.prefix().to_owned()),
        (None, None) => Ok(String::new()),
    }
}

/// Everyone the entries show: their members, and the members of the
/// households they name (a list shows a household's head and size).
#[tracing::instrument(skip_all)]
async fn persons_of<'a>(
    client: &impl GenericClient,
    entries: impl Iterator<Item = &'a StoredEntry>,
) -> Result<Vec<String>, Error> {
    let mut persons = std::collections::BTreeSet::new();
    let mut households = Vec::new();
    for e in entries {
        persons.extend(e.members.iter().cloned());
        households.extend(e.dibao.iter().chain(&e.poor).filter_map(|h| h.split('|').next()).map(str::to_owned));
    }
    if !households.is_empty() {
        for row in client
            .query(
                "SELECT members FROM roster_household WHERE valid_to IS NULL AND household_id = ANY($1)",
                &[&households],
            )
            .await?
        {
            persons.extend(row.get::<_, Vec<String>>("members"));
        }
    }
    Ok(persons.into_iter().collect())
}

/// The access-log records of `reader` reading these persons' data.
fn reads(reader: &Reader, persons: &[String], purpose: &str) -> Vec<AccessEntry> {
    persons.iter().map(|p| reader.entry(p, purpose)).collect()
}

/// An optional run id of a request.
pub fn uuid_field(s: &str, field: &str) -> Result<Option<Uuid>, Error> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(Uuid::parse_str(s.trim()).map_err(|_| InvalidField::new(field, "批次编号格式有误"))?))
}

/// The run an entry listing or report is on: the one named, else the
/// latest finished run covering `division`.
#[tracing::instrument(skip(client))]
pub async fn run_for(
    client: &impl GenericClient,
    run_id: Option<Uuid>,
    division: &str,
) -> Result<(Uuid, time::Date), Error> {
    let row = match run_id {
        Some(id) => {
            client
                .query_opt(
                    "SELECT run_id, as_of FROM comparison_run WHERE run_id = $1 AND finished_at IS NOT NULL",
                    &[&id],
                )
                .await?
        }
        None => {
            client
                .query_opt(
                    "SELECT run_id, as_of FROM comparison_run
                     WHERE finished_at IS NOT NULL AND starts_with($1, scope)
                     ORDER BY finished_at DESC LIMIT 1",
                    &[&division],
                )
                .await?
        }
    };
    Ok(row.map(|r| (r.get("run_id"), r.get("as_of"))).ok_or(ListError::NoRun)?)
}

/// An entry as a run or the continuous lists store it.
fn stored(row: &Row) -> StoredEntry {
    let kind: i8 = row.get("kind");
    StoredEntry {
        id: row.get("entry_key"),
        key: String::new(),
        kind: Kind::from_letter(kind as u8 as char).unwrap_or(Kind::OnBoth),
        village: row.get("village"),
        dibao: row.get("dibao"),
        poor: row.get("poor"),
        members: row.get("members"),
        explanation: row.get("explanation"),
    }
}

fn entry_household(s: &str) -> pb::EntryHousehold {
    let mut parts = s.split('|');
    pb::EntryHousehold {
        household_id: parts.next().unwrap_or_default().to_owned(),
        village: parts.next().map(|v| common::DivisionCode { code: v.to_owned() }),
        head_name: parts.next().unwrap_or_default().to_owned(),
        members: parts.next().and_then(|n| n.parse().ok()).unwrap_or(0),
        household_number: parts.next().unwrap_or_default().to_owned(),
    }
}

/// A run as recorded: its figures, no person's data. An officer sees the
/// runs over their jurisdiction or over a division that holds it.
pub async fn get_run(pool: &Pool, reader: &Reader, req: &pb::GetRunRequest) -> Result<pb::GetRunResponse, Error> {
    let id = uuid_field(&req.run_id, "run_id")?.ok_or_else(|| InvalidField::new("run_id", "必填项缺失"))?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT run_id, division, view_position, dibao_events, poverty_events, dibao_households, poor_households,
                    as_of, started_at, finished_at, list_sizes, digest, reproduces
             FROM comparison_run WHERE run_id = $1",
            &[&id],
        )
        .await?
        .ok_or(ListError::RunNotFound(id))?;
    if let Some(officer) = &reader.officer {
        let division: String = row.get("division");
        let related = division.is_empty()
            || DivisionCode::parse(&division).is_ok_and(|d| officer.covers(&d) || d.contains(&officer.division));
        if !related {
            return Err(ListError::RunNotFound(id).into());
        }
    }
    let as_of: time::Date = row.get("as_of");
    let run = pb::Run {
        run_id: id.to_string(),
        division: Some(common::DivisionCode { code: row.get("division") }),
        view_position: row.get("view_position"),
        dibao_events: row.get("dibao_events"),
        poverty_events: row.get("poverty_events"),
        dibao_households: row.get("dibao_households"),
        poor_households: row.get("poor_households"),
        as_of: Some(dibao_proto::types::date_to_pb(as_of)),
        started_at: Some(timestamp_of(row.get("started_at"))),
        finished_at: row.get::<_, Option<time::OffsetDateTime>>("finished_at").map(timestamp_of),
        list_sizes: sizes(&row.get::<_, Vec<i64>>("list_sizes")),
        digest: row.get("digest"),
        reproduces_run_id: row.get::<_, Option<Uuid>>("reproduces").map(|u| u.to_string()).unwrap_or_default(),
    };
    Ok(pb::GetRunResponse { run: Some(run) })
}

/// The decision and first sighting of each entry, whichever list it comes from.
const DECIDED: &str = "d.application_id, d.conclusion, d.officer_id, d.officer_name, d.officer_role,
                       d.officer_division, d.recorded_at, s.first_seen_at";

/// A page of the continuous lists, in list order: keyset on (kind, village, id).
#[tracing::instrument(skip(client))]
async fn live_page(
    client: &impl GenericClient,
    letter: Option<i8>,
    division: &str,
    after: (i8, String, String),
    limit: i64,
) -> Result<Vec<Row>, Error> {
    let (k, v, id) = after;
    Ok(client
        .query(
            &format!(
                "SELECT 0 AS ordinal, e.entry_key, e.kind, e.village, e.dibao, e.poor, e.members, e.explanation, {DECIDED}
                 FROM live_entry e
                 LEFT JOIN decision d ON d.entry_key = e.entry_key
                 LEFT JOIN entry_seen s ON s.entry_key = e.entry_key
                 WHERE ($1::\"char\" IS NULL OR e.kind = $1) AND starts_with(e.village, $2)
                   AND (e.kind::int, e.village, e.entry_key) > ($3::int, $4, $5)
                 ORDER BY e.kind::int, e.village, e.entry_key LIMIT $6"
            ),
            &[&letter, &division, &i32::from(k), &v, &id, &limit],
        )
        .await?)
}

/// A page of a run's lists, in list order: keyset on the entry's ordinal.
#[tracing::instrument(skip(client))]
async fn run_page(
    client: &impl GenericClient,
    run_id: Uuid,
    letter: Option<i8>,
    division: &str,
    after: i32,
    limit: i64,
) -> Result<Vec<Row>, Error> {
    Ok(client
        .query(
            &format!(
                "SELECT e.ordinal, e.entry_key, e.kind, e.village, e.dibao, e.poor, e.members, e.explanation, {DECIDED}
                 FROM run_entry e
                 LEFT JOIN decision d ON d.entry_key = e.entry_key
                 LEFT JOIN entry_seen s ON s.entry_key = e.entry_key
                 WHERE e.run_id = $1 AND ($2::\"char\" IS NULL OR e.kind = $2) AND starts_with(e.village, $3)
                   AND e.ordinal > $4
                 ORDER BY e.ordinal LIMIT $5"
            ),
            &[&run_id, &letter, &division, &after, &limit],
        )
        .await?)
}

/// Entries of a run (or the continuous lists), a page at a time, inside
/// the reader's jurisdiction; every member shown is on record as read, and
/// identity numbers are masked for roles outside `full_identity_roles`.
pub async fn entries(
    pool: &Pool,
    log: &AccessLog,
    reader: &Reader,
    full_identity_roles: &[OfficerRole],
    r: pb::ListEntriesRequest,
) -> Result<pb::ListEntriesResponse, Error> {
    let division = scope(reader, &r.division, "division")?;
    let run_id = uuid_field(&r.run_id, "run_id")?;
    let kind = pb::ListKind::try_from(r.kind).unwrap_or(pb::ListKind::Unspecified);
    let letter = kind_of(kind).map(|k| k.letter() as u8 as i8);
    let page = r.page.unwrap_or_default();
    let size = match page.page_size {
        0 => 100,
        n if (1..=1000).contains(&n) => i64::from(n),
        _ => return Err(InvalidField::new("page.page_size", "每页条数应在1到1000之间").into()),
    };
    let client = pool.get().await?;
    let bad_token = || InvalidField::new("page.page_token", "翻页标记无效，请使用上一页返回的标记");
    let rows = if r.continuous {
        let after = match page.page_token.as_str() {
            "" => (0i8, String::new(), String::new()),
            t => {
                let mut parts = t.splitn(3, '|');
                let k = parts.next().and_then(|k| k.parse::<i8>().ok()).ok_or_else(bad_token)?;
                let v = parts.next().ok_or_else(bad_token)?.to_owned();
                let id = parts.next().ok_or_else(bad_token)?.to_owned();
                (k, v, id)
            }
        };
        live_page(&client, letter, &division, after, size + 1).await?
    } else {
        let after: i32 = match page.page_token.as_str() {
            "" => -1,
            t => t.parse().map_err(|_| bad_token())?,
        };
        let (run_id, _) = run_for(&client, run_id, &division).await?;
        run_page(&client, run_id, letter, &division, after, size + 1).await?
    };
    let more = rows.len() as i64 > size;
    let shown: Vec<StoredEntry> = rows.iter().take(size as usize).map(stored).collect();
    log.record_all(reads(reader, &persons_of(&client, shown.iter()).await?, "查阅比对名单")).await?;
    let full = reader.sees_in_full(full_identity_roles);
    let mut entries = Vec::new();
    let mut last = String::new();
    for (row, e) in rows.iter().zip(shown) {
        last = if r.continuous {
            format!("{}|{}|{}", e.kind.letter() as u8 as i8, e.village, e.id)
        } else {
            row.get::<_, i32>("ordinal").to_string()
        };
        let decision = row.get::<_, Option<String>>("officer_id").map(|officer_id| pb::Decision {
            application_id: row.get("application_id"),
            conclusion: row.get("conclusion"),
            signature: Some(common::OfficerSignature {
                officer_id,
                officer_name: row.get("officer_name"),
                role: row.get("officer_role"),
                division: Some(common::DivisionCode { code: row.get("officer_division") }),
                signed_at: Some(timestamp_of(row.get("recorded_at"))),
            }),
            recorded_at: Some(timestamp_of(row.get("recorded_at"))),
        });
        entries.push(pb::Entry {
            entry_id: e.id.clone(),
            kind: list_kind(e.kind) as i32,
            village: Some(common::DivisionCode { code: e.village.clone() }),
            dibao_households: e.dibao.iter().map(|h| entry_household(h)).collect(),
            poor_households: e.poor.iter().map(|h| entry_household(h)).collect(),
            members: e
                .members
                .iter()
                .map(|m| common::IdentityNumber { value: if full { m.clone() } else { masked_identity(m) } })
                .collect(),
            explanation: e.explanation,
            decision,
            first_seen_at: row.get::<_, Option<time::OffsetDateTime>>("first_seen_at").map(timestamp_of),
        });
    }
    let next_page_token = if more { last } else { String::new() };
    Ok(pb::ListEntriesResponse { entries, page: Some(common::PageResponse { next_page_token }) })
}

/// Open (a) and (b) entries of the latest run per township, and how long
/// they have been open.
pub async fn open_items(
    pool: &Pool,
    reader: &Reader,
    req: &pb::ReportOpenItemsRequest,
    now: time::OffsetDateTime,
    reports: &OpenItemsReports,
) -> Result<pb::ReportOpenItemsResponse, Error> {
    let division = scope(reader, &req.division, "division")?;
    let (run_id, _) = run_for(&pool.get().await?, None, &division).await?;
    let counts = reports.counts(pool, run_id, &division).await?;
    let mut townships: BTreeMap<(&str, i8), pb::OpenItems> = BTreeMap::new();
    for c in counts.iter() {
        let open = townships.entry((&c.township, c.kind)).or_insert_with(|| pb::OpenItems {
            township: Some(common::DivisionCode { code: c.township.clone() }),
            kind: Kind::from_letter(c.kind as u8 as char).map_or(0, |k| list_kind(k) as i32),
            ..Default::default()
        });
        let open_for = now - c.first_seen_at;
        open.open += c.open;
        open.over_30_days += if open_for > time::Duration::days(30) { c.open } else { 0 };
        open.over_90_days += if open_for > time::Duration::days(90) { c.open } else { 0 };
        open.oldest_days = open.oldest_days.max(open_for.whole_days().max(0));
    }
    Ok(pb::ReportOpenItemsResponse { run_id: run_id.to_string(), townships: townships.into_values().collect() })
}

/// Open entries of a run in a division that were first seen at one moment
/// (a run's entries new to it share its time, so there are few such rows).
#[derive(Debug, Clone)]
pub struct OpenCount {
    township: String,
    kind: i8,
    first_seen_at: time::OffsetDateTime,
    open: i64,
}

/// What an open-items count depends on: the run, the division and the
/// decisions recorded so far (their number and the latest — a decision on
/// any replica makes a new key). Not the time: how long entries have been
/// open is worked out from `first_seen_at` when the report is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OpenItemsKey {
    run_id: Uuid,
    division: String,
    decided: (i64, Option<time::OffsetDateTime>),
}

/// Open-items counts already made, by what they depend on. The work lists
/// of a county's officers all ask for the same report, and the aggregate
/// behind it reads every open entry of the run, so a run's own division is
/// counted as the run is stored (`warm`) and any other when first asked.
#[derive(Default)]
pub struct OpenItemsReports {
    counts: std::sync::Mutex<HashMap<OpenItemsKey, std::sync::Arc<Vec<OpenCount>>>>,
    counting: tokio::sync::Mutex<()>,
}

impl OpenItemsReports {
    /// Counts kept at most; past it the oldest keys are no longer wanted, so all go.
    const KEPT: usize = 1024;

    fn get(&self, key: &OpenItemsKey) -> Option<std::sync::Arc<Vec<OpenCount>>> {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    /// The open entries of `run_id` in `division`, counted once per
    /// decision: officers opening their work lists together wait for the
    /// first one's count instead of each making it.
    async fn counts(&self, pool: &Pool, run_id: Uuid, division: &str) -> Result<std::sync::Arc<Vec<OpenCount>>, Error> {
        let key = OpenItemsKey { run_id, division: division.to_owned(), decided: decided(&pool.get().await?).await? };
        if let Some(counts) = self.get(&key) {
            return Ok(counts);
        }
        // The connection went back while waiting: holding it would starve a busy pool.
        let _counting = self.counting.lock().await;
        if let Some(counts) = self.get(&key) {
            return Ok(counts);
        }
        let counts = std::sync::Arc::new(count_open(&pool.get().await?, run_id, division).await?);
        let mut kept = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= Self::KEPT {
            kept.clear();
        }
        kept.insert(key, counts.clone());
        Ok(counts)
    }

    /// Counts a run's open entries in its own division as it is stored, so
    /// the first work list of the morning does not wait for the count.
    pub async fn warm(&self, pool: &Pool, run_id: Uuid, division: &str) -> Result<(), Error> {
        self.counts(pool, run_id, division).await.map(drop)
    }
}

/// How many decisions are recorded, and the latest.
async fn decided(client: &impl GenericClient) -> Result<(i64, Option<time::OffsetDateTime>), Error> {
    let row = client.query_one("SELECT count(*), max(recorded_at) FROM decision", &[]).await?;
    Ok((row.get(0), row.get(1)))
}

async fn count_open(client: &impl GenericClient, run_id: Uuid, division: &str) -> Result<Vec<OpenCount>, Error> {
    let rows = client
        .query(
            "SELECT left(e.village, 9) AS township, e.kind, s.first_seen_at, count(*) AS open
             FROM run_entry e
             JOIN entry_seen s ON s.entry_key = e.entry_key
             LEFT JOIN decision d ON d.entry_key = e.entry_key
             WHERE e.run_id = $1 AND e.kind IN ('a', 'b') AND starts_with(e.village, $2) AND d.entry_key IS NULL
             GROUP BY 1, 2, 3",
            &[&run_id, &division],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| OpenCount {
            township: r.get("township"),
            kind: r.get("kind"),
            first_seen_at: r.get("first_seen_at"),
            open: r.get("open"),
        })
        .collect())
}

/// The stream an export answers with: one file per township or village.
pub type Files = tokio_stream::wrappers::ReceiverStream<Result<pb::ExportListsResponse, tonic::Status>>;

/// A run's lists inside the reader's jurisdiction as one file per township
/// (or village), xlsx or CSV, identity numbers in full only for
/// `full_identity_roles`; every member exported is on record as read
/// before the first file leaves.
pub async fn export(
    pool: &Pool,
    log: &AccessLog,
    reader: &Reader,
    r: pb::ExportListsRequest,
    full_identity_roles: &[OfficerRole],
) -> Result<Files, Error> {
    let run_id = uuid_field(&r.run_id, "run_id")?;
    let division = scope(reader, &r.division, "division")?;
    let format = pb::ExportFormat::try_from(r.format).unwrap_or(pb::ExportFormat::Unspecified);
    let grouping = pb::ExportGrouping::try_from(r.grouping).unwrap_or(pb::ExportGrouping::Unspecified);
    let full = reader.sees_in_full(full_identity_roles);
    let client = pool.get().await?;
    let (run_id, as_of) = run_for(&client, run_id, &division).await?;
    let rows = client
        .query(
            "SELECT entry_key, kind, village, dibao, poor, members, explanation FROM run_entry
             WHERE run_id = $1 AND starts_with(village, $2) ORDER BY ordinal",
            &[&run_id, &division],
        )
        .await?;
    let width = if grouping == pb::ExportGrouping::Village { 12 } else { 9 };
    let mut groups: BTreeMap<String, Vec<StoredEntry>> = BTreeMap::new();
    for row in &rows {
        let e = stored(row);
        let code: String = e.village.chars().take(width).collect();
        groups.entry(code).or_default().push(e);
    }
    log.record_all(reads(reader, &persons_of(&client, groups.values().flatten()).await?, "导出比对名单")).await?;
    let officer = reader.officer.as_ref().map_or("", |o| o.officer_id.as_str());
    tracing::info!(%run_id, officer, full_identity = full, files = groups.len(), "lists exported");
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        for (code, entries) in groups {
            let (name, content) = match format {
                pb::ExportFormat::Csv => (format!("{code}_台账比对_{as_of}.csv"), Ok(export::to_csv(&entries, full))),
                _ => (format!("{code}_台账比对_{as_of}.xlsx"), export::to_xlsx(&entries, full, as_of)),
            };
            let msg = content
                .map(|content| pb::ExportListsResponse { file_name: name, content, entries: entries.len() as i64 })
                .map_err(|e| Error::Unexpected(anyhow::anyhow!("xlsx: {e}")).into());
            if tx.blocking_send(msg).is_err() {
                break;
            }
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}
