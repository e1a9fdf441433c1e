//! A division's rows as one consistent snapshot — a read-only,
//! repeatable-read transaction — streamed to the caller, every message
//! carrying the outbox position the snapshot reflects (R-SYNC-3, R-CMP-4):
//! the roster exports both roster services serve to the other side's
//! resync and to the comparison.

use deadpool_postgres::Pool;
use futures_util::TryStreamExt;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_postgres::Row;
use tokio_stream::wrappers::ReceiverStream;

use crate::Error;
use crate::events::outbox;

/// Where a snapshot stands: the last outbox row it reflects, and when it was taken.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    pub position: i64,
    pub at: prost_types::Timestamp,
}

/// The stream an export RPC answers with.
pub type Export<M> = ReceiverStream<Result<M, tonic::Status>>;

/// Streams the rows `sql` selects (its one parameter: the division's code
/// prefix), each turned into a message by `message`. The snapshot runs in a
/// task of its own; a caller that hangs up stops it.
pub fn export<M, F>(pool: Pool, sql: String, prefix: String, now: OffsetDateTime, message: F) -> Export<M>
where
    M: Send + 'static,
    F: Fn(&Row, Position) -> Result<M, Error> + Send + Sync + 'static,
{
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        if let Err(e) = stream(&pool, &sql, &prefix, now, &message, &tx).await {
            let _ = tx.send(Err(e.into())).await;
        }
    });
    ReceiverStream::new(rx)
}

async fn stream<M, F>(
    pool: &Pool,
    sql: &str,
    prefix: &str,
    now: OffsetDateTime,
    message: &F,
    out: &mpsc::Sender<Result<M, tonic::Status>>,
) -> Result<(), Error>
where
    F: Fn(&Row, Position) -> Result<M, Error>,
{
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let position: i64 = tx.query_one("SELECT coalesce(max(id), 0) FROM outbox", &[]).await?.get(0);
    let at = Position { position, at: outbox::timestamp_of(now) };
    let rows = tx.query_raw(sql, [prefix]).await?;
    futures_util::pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        if out.send(Ok(message(&row, at)?)).await.is_err() {
            // The caller hung up; nothing more to do.
            return Ok(());
        }
    }
    Ok(())
}
