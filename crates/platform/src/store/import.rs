//! The streamed roster import both roster services run (R-ROSTER-1,
//! R-ROSTER-2). Rows are applied in batches of what has arrived (at most
//! [`ImportRow::BATCH`]): set-based where the roster can ([`ImportRow::apply_batch`],
//! a few statements for the whole batch), otherwise — and whenever that
//! fails — one transaction per batch and a savepoint per household:
//! each household whole or not at all, without a commit (and its disk
//! flush) each. A wrong row is reported with its fields and leaves the
//! others as they were; a household that collides with a concurrent change
//! (the other roster's events touching the same people) is retried in a
//! transaction of its own after what went before it committed; a failure of
//! ours fails the call, and what committed before stays — re-running the
//! same rows changes nothing.

use std::collections::VecDeque;
use std::future::Future;

use deadpool_postgres::{Pool, Transaction};
use dibao_proto::common::v1::RowError;
use futures_util::{Stream, StreamExt};

use crate::Error;
use crate::runtime::error::RefusalKind;

/// Attempts of a household that collided with a concurrent change.
const ATTEMPTS: usize = 5;

/// What became of a household's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Added, or changed to what the row says.
    Applied,
    /// Already as the row says.
    Unchanged,
}

/// How one roster applies one household's row.
pub trait ImportRow: Sync {
    type Row: Send + Sync;

    /// Rows applied in one transaction at most. A roster that applies a
    /// batch set-based takes more at once: fewer statements and commits.
    const BATCH: usize = 500;

    /// The row's number as the caller numbered it (the file's line).
    fn row_number(row: &Self::Row) -> i64;

    /// Applies `row` inside `tx` (a savepoint of the batch). A wrong row
    /// answers `Error::InvalidArgument` (or a refusal naming a field).
    fn apply(&self, tx: &Transaction<'_>, row: &Self::Row) -> impl Future<Output = Result<Imported, Error>> + Send;

    /// Applies a whole batch set-based inside `tx`, when the roster can:
    /// what became of each row, in order (a wrong row's error naming its
    /// fields, as [`ImportRow::apply`] would answer). `None`, or any error,
    /// and the batch is applied row by row instead, from a new transaction.
    fn apply_batch(
        &self,
        tx: &Transaction<'_>,
        rows: &[&Self::Row],
    ) -> impl Future<Output = Result<Option<Vec<Result<Imported, Error>>>, Error>> + Send {
        let _ = (tx, rows);
        async { Ok(None) }
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub applied: i64,
    pub unchanged: i64,
    pub errors: Vec<RowError>,
}

/// Imports `rows` with `importer`.
pub async fn run<I, S>(pool: &Pool, importer: &I, rows: S) -> Result<Outcome, Error>
where
    I: ImportRow,
    S: Stream<Item = Result<I::Row, tonic::Status>> + Unpin,
{
    let mut rows = rows.ready_chunks(I::BATCH);
    let mut out = Outcome::default();
    while let Some(chunk) = rows.next().await {
        let chunk = chunk
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|s| Error::Unavailable(format!("the caller's stream of rows broke: {s}")))?;
        let mut client = pool.get().await?;
        // Set-based first; row by row where the batch cannot be.
        if let Some(done) = whole_batch(&mut client, importer, &chunk).await? {
            out.applied += done.applied;
            out.unchanged += done.unchanged;
            out.errors.extend(done.errors);
            continue;
        }
        let mut queue: VecDeque<&I::Row> = chunk.iter().collect();
        let mut attempt = 1;
        while !queue.is_empty() {
            let mut tx = client.transaction().await?;
            let mut done = Outcome::default();
            while let Some(row) = queue.front().copied() {
                let savepoint = tx.savepoint("import_row").await?;
                let result = importer.apply(&savepoint, row).await;
                match result {
                    Ok(imported) => {
                        savepoint.commit().await?;
                        match imported {
                            Imported::Applied => done.applied += 1,
                            Imported::Unchanged => done.unchanged += 1,
                        }
                    }
                    Err(Error::Conflict(why)) if attempt < ATTEMPTS => {
                        // What went before commits; the household starts again alone.
                        savepoint.rollback().await?;
                        tracing::warn!(row = I::row_number(row), attempt, %why, "import row collided, retrying");
                        attempt += 1;
                        break;
                    }
                    Err(e) => match row_errors(I::row_number(row), e) {
                        Ok(errors) => {
                            savepoint.rollback().await?;
                            done.errors.extend(errors);
                        }
                        Err(e) => return Err(e),
                    },
                }
                queue.pop_front();
                attempt = 1;
            }
            tx.commit().await?;
            out.applied += done.applied;
            out.unchanged += done.unchanged;
            out.errors.extend(done.errors);
        }
    }
    tracing::info!(
        applied = out.applied,
        unchanged = out.unchanged,
        rejected_fields = out.errors.len(),
        "roster import finished"
    );
    Ok(out)
}

/// The batch applied by [`ImportRow::apply_batch`] in one transaction,
/// committed; `None` (nothing written) where the roster cannot, or any
/// statement or the commit failed.
async fn whole_batch<I: ImportRow>(
    client: &mut deadpool_postgres::Client,
    importer: &I,
    chunk: &[I::Row],
) -> Result<Option<Outcome>, Error> {
    let rows: Vec<&I::Row> = chunk.iter().collect();
    let tx = client.transaction().await?;
    let results = match importer.apply_batch(&tx, &rows).await {
        Ok(Some(results)) if results.len() == rows.len() => results,
        Ok(_) => return Ok(None),
        Err(e) => {
            tracing::debug!(error = %e, "the batch could not be applied set-based: row by row");
            return Ok(None);
        }
    };
    let mut done = Outcome::default();
    for (row, result) in rows.iter().zip(results) {
        match result {
            Ok(Imported::Applied) => done.applied += 1,
            Ok(Imported::Unchanged) => done.unchanged += 1,
            Err(e) => match row_errors(I::row_number(row), e) {
                Ok(errors) => done.errors.extend(errors),
                // Not a row's fault: nothing of the batch is kept.
                Err(e) => {
                    tracing::debug!(error = %e, "the batch answered an error of no row: row by row");
                    return Ok(None);
                }
            },
        }
    }
    match tx.commit().await {
        Ok(()) => Ok(Some(done)),
        Err(e) => {
            tracing::debug!(error = %e, "the batch did not commit: row by row");
            Ok(None)
        }
    }
}

/// The row's errors when `e` says the row is wrong; `e` itself otherwise.
fn row_errors(row: i64, e: Error) -> Result<Vec<RowError>, Error> {
    match e {
        Error::InvalidArgument(fields) => {
            Ok(fields.into_iter().map(|f| RowError { row, field: f.field, message: f.reason }).collect())
        }
        Error::Refused(r) => match r.kind() {
            RefusalKind::InvalidArgument { field } => Ok(vec![RowError { row, field, message: r.to_string() }]),
            _ => Err(Error::Refused(r)),
        },
        other => Err(other),
    }
}
