//! The access log: every query of a person's data at the hub and at each
//! adapter — caller, officer, consent, purpose, person, items, time,
//! outcome — in an append-only, hash-chained table of the service's own
//! schema (R-VER-1, X-Road-style evidence). A query is recorded as it
//! arrives (`asked`), committed while the department works and always
//! before any answer leaves; its outcome follows as a record that names it
//! (`completes`), so the log's commit is not added to the answer's time.
//!
//! Record `n`'s hash is SHA-256 over record `n-1`'s hash and `n`'s fields,
//! so [`verify_chain`] names the first record that was edited, deleted or
//! moved. One writer task per process appends in batches (one statement
//! each; the primary key on `seq` keeps replicas on one chain); a query
//! returns only once its record is committed.

use std::time::Duration;

use deadpool_postgres::Pool;
use ring::digest::{SHA256, digest};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

use crate::store::db::{DbError, Migration, cached};

pub const MIGRATIONS: &[Migration] = &[
    ("0001_access_log", include_str!("../../migrations/access_log/0001_access_log.sql")),
    ("0002_outcome_records", include_str!("../../migrations/access_log/0002_outcome_records.sql")),
];

/// Applies the access log's migrations (component `access-log`).
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    crate::store::db::migrate(pool, "access-log", MIGRATIONS).await
}

/// One access, as the service saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The caller's certificate identity.
    pub caller: String,
    pub officer_id: String,
    pub consent_id: String,
    pub purpose: String,
    /// Identity number of the person whose data was asked for.
    pub person: String,
    /// Item names, e.g. `ITEM_VEHICLES`.
    pub items: Vec<String>,
    /// `asked` (the query, recorded as it arrives), `answered: …`,
    /// `partial: …`, `refused: …`, `reported …`.
    pub outcome: String,
    /// For an outcome: the sequence number of the `asked` record it completes.
    pub completes: Option<i64>,
}

/// Outcome of a query recorded as it arrived.
pub const ASKED: &str = "asked";

/// A committed record.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub entry: AccessEntry,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    #[error("access log writer stopped")]
    Stopped,
    #[error("access log: {0}")]
    Db(String),
}

impl From<AccessLogError> for crate::Error {
    fn from(e: AccessLogError) -> Self {
        // Without its record no answer may leave (R-VER-1): unavailable, not served.
        crate::Error::Unavailable(e.to_string())
    }
}

/// A record on its way (none for a flush), and whom to tell once it is
/// committed (no one for an outcome).
type Pending = (Option<AccessEntry>, Option<oneshot::Sender<Result<i64, String>>>);

/// Handle to the process's log writer. Cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<Pending>,
}

/// Most records one append writes.
const BATCH: usize = 512;

/// Longest an outcome waits for a query's record to share its append: under
/// load outcomes ride along with queries, so they add no commits of their own.
const OUTCOME_DELAY: Duration = Duration::from_millis(50);

impl AccessLog {
    /// Starts the writer. It stops when the last handle is dropped.
    pub fn start(pool: Pool) -> Self {
        let (tx, rx) = mpsc::channel(8 * BATCH);
        tokio::spawn(write_loop(pool, rx));
        Self { tx }
    }

    /// Appends `entry` and returns its sequence number once committed.
    pub async fn record(&self, entry: AccessEntry) -> Result<i64, AccessLogError> {
        let (done, wait) = oneshot::channel();
        self.tx.send((Some(entry), Some(done))).await.map_err(|_| AccessLogError::Stopped)?;
        wait.await.map_err(|_| AccessLogError::Stopped)?.map_err(AccessLogError::Db)
    }

    /// Appends every one of `entries` and returns once all are committed:
    /// reads of personal data are on record before the data leaves.
    pub async fn record_all(&self, entries: Vec<AccessEntry>) -> Result<(), AccessLogError> {
        let mut waits = Vec::with_capacity(entries.len());
        for entry in entries {
            let (done, wait) = oneshot::channel();
            self.tx.send((Some(entry), Some(done))).await.map_err(|_| AccessLogError::Stopped)?;
            waits.push(wait);
        }
        for wait in waits {
            wait.await.map_err(|_| AccessLogError::Stopped)?.map_err(AccessLogError::Db)?;
        }
        Ok(())
    }

    /// Returns once every record handed over before it is committed: a
    /// stopping service calls it last, so that the outcomes still waiting
    /// for company are not lost with the process.
    pub async fn flush(&self) -> Result<(), AccessLogError> {
        let (done, wait) = oneshot::channel();
        self.tx.send((None, Some(done))).await.map_err(|_| AccessLogError::Stopped)?;
        wait.await.map_err(|_| AccessLogError::Stopped)?.map(|_| ()).map_err(AccessLogError::Db)
    }

    /// Appends an outcome without waiting for its commit: the answer it
    /// describes may leave first, because its query's record already is
    /// committed. A failure is logged by the writer.
    pub fn record_outcome(&self, entry: AccessEntry) {
        if let Err(mpsc::error::TrySendError::Full(pending)) = self.tx.try_send((Some(entry), None)) {
            let tx = self.tx.clone();
            tokio::spawn(async move { tx.send(pending).await });
        }
    }
}

async fn write_loop(pool: Pool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    // The last record this writer knows of: appending after it needs no read.
    let mut tail = None;
    loop {
        if batch.is_empty() && rx.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        // Someone waits for a record: append now. Only outcomes: wait a
        // little for company.
        let deadline = tokio::time::Instant::now() + OUTCOME_DELAY;
        while batch.len() < BATCH && batch.iter().all(|(_, done)| done.is_none()) {
            let room = BATCH - batch.len();
            tokio::select! {
                n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let entries: Vec<&AccessEntry> = batch.iter().filter_map(|(entry, _)| entry.as_ref()).collect();
        let result = if entries.is_empty() { Ok(0) } else { append(&pool, &entries, &mut tail).await };
        if let Err(e) = &result {
            tracing::error!(error = %e, records = entries.len(), "access log append failed");
        }
        // The k-th record of the batch took the first number + k.
        let mut k = 0;
        for (entry, done) in batch.drain(..) {
            let seq = result.as_ref().map(|first| first + k).map_err(ToString::to_string);
            k += i64::from(entry.is_some());
            if let Some(done) = done {
                let _ = done.send(seq);
            }
        }
    }
}

/// Sequence number and hash of the last record.
type Tail = (i64, Vec<u8>);

/// Tries to chain one batch onto the same tail at most this often before
/// giving up (each failure means another replica appended in between).
const APPEND_ATTEMPTS: usize = 32;

/// Appends the batch after `tail` (read from the table when unknown) in one
/// statement — atomic, one round trip — and returns the first sequence
/// number. The primary key on `seq` is what keeps the chain single: if
/// another replica appended since this writer's tail, the insert collides,
/// nothing of the batch is written, and it is chained again after the
/// table's real tail. The cached tail also means that a record deleted from
/// the end behind the writer's back leaves a gap the chain check names.
async fn append(pool: &Pool, batch: &[&AccessEntry], tail: &mut Option<Tail>) -> Result<i64, crate::Error> {
    let client = pool.get().await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (mut seq, mut prev) = match tail.take() {
            Some(known) => known,
            None => {
                // Prepared once per connection, as the insert below.
                let last =
                    cached::query_opt(&client, "SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1", &[])
                        .await?;
                last.map_or((0, vec![0; 32]), |row| (row.get(0), row.get(1)))
            }
        };
        let first = seq + 1;
        // Postgres keeps microseconds; hash exactly what is stored.
        let now = OffsetDateTime::now_utc();
        let at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
        let (mut seqs, mut ats, mut callers, mut officers, mut consents, mut purposes) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut persons, mut items, mut outcomes, mut prevs, mut hashes) = (vec![], vec![], vec![], vec![], vec![]);
        let mut completes = Vec::with_capacity(batch.len());
        for entry in batch {
            seq += 1;
            let record = AccessRecord { seq, at, entry: (*entry).clone() };
            let hash = chain_hash(&prev, &record);
            seqs.push(seq);
            ats.push(at);
            callers.push(entry.caller.as_str());
            officers.push(entry.officer_id.as_str());
            consents.push(entry.consent_id.as_str());
            purposes.push(entry.purpose.as_str());
            persons.push(entry.person.as_str());
            items.push(entry.items.join(","));
            outcomes.push(entry.outcome.as_str());
            completes.push(entry.completes);
            prevs.push(std::mem::replace(&mut prev, hash.clone()));
            hashes.push(hash);
        }
        let inserted = cached::execute(
            &client,
            "INSERT INTO access_log (seq, at, caller, officer_id, consent_id, purpose, person, items, outcome, completes,
                                     prev_hash, hash)
             SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bytea[], $12::bytea[])",
            &[
                &seqs, &ats, &callers, &officers, &consents, &purposes, &persons, &items, &outcomes, &completes, &prevs,
                &hashes,
            ],
        )
        .await;
        match inserted {
            Ok(_) => {
                *tail = Some((seq, prev));
                return Ok(first);
            }
            // Another replica took these numbers: chain again after its records.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && attempt < APPEND_ATTEMPTS => {
                tracing::debug!(attempt, "access log tail moved, chaining again");
            }
            // The tail stays unknown: the next append reads it.
            Err(e) => return Err(e.into()),
        }
    }
}

/// SHA-256 over the previous hash and every field, each length-prefixed so
/// no two different records encode alike.
pub fn chain_hash(prev: &[u8], r: &AccessRecord) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(prev);
    buf.extend_from_slice(&r.seq.to_be_bytes());
    buf.extend_from_slice(&(r.at.unix_timestamp_nanos() / 1000).to_be_bytes());
    let items = r.entry.items.join(",");
    for field in [
        &r.entry.caller,
        &r.entry.officer_id,
        &r.entry.consent_id,
        &r.entry.purpose,
        &r.entry.person,
        &items,
        &r.entry.outcome,
    ] {
        buf.extend_from_slice(&(field.len() as u64).to_be_bytes());
        buf.extend_from_slice(field.as_bytes());
    }
    // Only outcome records carry it, after every field: records written
    // before it existed hash as they did.
    if let Some(asked) = r.entry.completes {
        buf.push(b'#');
        buf.extend_from_slice(&asked.to_be_bytes());
    }
    digest(&SHA256, &buf).as_ref().to_vec()
}

/// The first record at which the chain breaks, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// Sequence number of the first record that does not verify.
    pub seq: i64,
    /// In Simplified Chinese, for the auditor.
    pub reason: String,
}

/// The outcome of checking a whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    pub records: i64,
    pub broken: Option<BrokenLink>,
}

/// Reads the whole log in order and recomputes every link.
pub async fn verify_chain(pool: &Pool) -> Result<ChainCheck, crate::Error> {
    let client = pool.get().await?;
    let mut prev = vec![0u8; 32];
    let mut expected = 1i64;
    let mut after = 0i64;
    let mut records = 0i64;
    loop {
        // Ordered by the physical sequence the rows claim; pages keep memory flat.
        let rows = client
            .query(
                "SELECT seq, at, caller, officer_id, consent_id, purpose, person, items, outcome, completes, prev_hash, hash
                 FROM access_log WHERE seq > $1 ORDER BY seq LIMIT 10000",
                &[&after],
            )
            .await?;
        if rows.is_empty() {
            return Ok(ChainCheck { records, broken: None });
        }
        for row in rows {
            let record = record_of(&row);
            let (seq, stored_prev, stored_hash): (i64, Vec<u8>, Vec<u8>) = (record.seq, row.get(10), row.get(11));
            let broken = |reason: String| Ok(ChainCheck { records, broken: Some(BrokenLink { seq, reason }) });
            if seq != expected {
                return broken(format!(
                    "第 {expected} 条至第 {} 条记录缺失（序号从 {} 跳到 {seq}）",
                    seq - 1,
                    expected - 1
                ));
            }
            if stored_prev != prev {
                return broken(format!("第 {seq} 条记录与前一条记录不衔接（记录被删除、插入或调换了顺序）"));
            }
            if chain_hash(&prev, &record) != stored_hash {
                return broken(format!("第 {seq} 条记录的内容被改动（哈希值不符）"));
            }
            prev = stored_hash;
            expected += 1;
            after = seq;
            records += 1;
        }
    }
}

fn record_of(row: &tokio_postgres::Row) -> AccessRecord {
    let items: String = row.get(7);
    AccessRecord {
        seq: row.get(0),
        at: row.get(1),
        entry: AccessEntry {
            caller: row.get(2),
            officer_id: row.get(3),
            consent_id: row.get(4),
            purpose: row.get(5),
            person: row.get(6),
            items: items.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            outcome: row.get(8),
            completes: row.get(9),
        },
    }
}

/// The `person` of a record of a system reading a whole division at once.
pub fn division_key(prefix: &str) -> String {
    format!("division:{prefix}")
}

/// The division records that include a person living in `village` (a
/// 12-digit code): its province's, city's, county's, township's and its own.
pub fn division_keys(village: &str) -> Vec<String> {
    [2, 4, 6, 9, 12].iter().filter_map(|&n| village.get(..n)).map(division_key).collect()
}

/// Every access to `person`'s data after sequence `after`, oldest first:
/// the records naming them and, given their village, the bulk reads of a
/// division that holds it.
pub async fn accesses_to(
    pool: &Pool,
    person: &str,
    village: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<AccessRecord>, crate::Error> {
    let client = pool.get().await?;
    let divisions = village.map(division_keys).unwrap_or_default();
    let rows = client
        .query(
            "SELECT seq, at, caller, officer_id, consent_id, purpose, person, items, outcome, completes
             FROM access_log WHERE (person = $1 OR person = ANY($4)) AND seq > $2 ORDER BY seq LIMIT $3",
            &[&person, &after, &limit, &divisions],
        )
        .await?;
    Ok(rows.iter().map(record_of).collect())
}
