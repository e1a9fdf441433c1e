//! Inbox consumer: applies each event and records its event id in the same
//! Postgres transaction, commits the consumer offset only after that, and
//! drops events it has already applied.
//!
//! A record that cannot be decoded, or that the handler refuses for good, is
//! moved to `dead_letter` with the reason (in the same transaction as the
//! rest of its batch) and the partition moves on; a transient failure
//! (database down) retries the whole batch, so nothing is skipped.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use deadpool_postgres::Pool;
use deadpool_postgres::Transaction;
use dibao_proto::events::v1::EventEnvelope;
use prost::Message as _;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tracing::Instrument;

use crate::events::kafka;
use crate::runtime::settings::KafkaSettings;
use crate::runtime::shutdown::Shutdown;
use crate::runtime::telemetry;

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be applied (it contradicts the rules); it goes to
    /// the dead-letter table with this reason.
    #[error("refused: {0}")]
    Permanent(String),
    /// Try again later (a dependency is down); the batch is retried.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

impl From<tokio_postgres::Error> for HandlerError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A constraint violation will fail the same way on every retry;
        // anything else (connection lost, serialization) may pass later.
        match e.code() {
            Some(code) if code.code().starts_with("23") => HandlerError::Permanent(e.to_string()),
            _ => HandlerError::Transient(e.into()),
        }
    }
}

impl From<crate::Error> for HandlerError {
    fn from(e: crate::Error) -> Self {
        use crate::Error;
        match e {
            // Ours to retry: the database, a race.
            Error::Unavailable(_) | Error::Conflict(_) => HandlerError::Transient(anyhow::Error::new(e)),
            Error::Unexpected(inner) => match inner.downcast::<tokio_postgres::Error>() {
                Ok(pg) => HandlerError::from(pg),
                Err(other) => HandlerError::Transient(other),
            },
            // The event breaks a rule: it will every time.
            Error::InvalidArgument(_)
            | Error::NotFound(_)
            | Error::FailedPrecondition(_)
            | Error::Unauthenticated(_)
            | Error::PermissionDenied(_)
            | Error::Refused(_) => HandlerError::Permanent(e.to_string()),
        }
    }
}

/// Applies one event inside the inbox's transaction.
pub trait Handler: Send + Sync + 'static {
    fn apply(
        &self,
        tx: &Transaction<'_>,
        event: &EventEnvelope,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Runs once after the batch's events were applied, in the same
    /// transaction, before the positions move and it commits: for work
    /// cheaper once per batch than once per event (a backlog then costs
    /// less per event, not more). Fails the batch like an event would.
    fn finish_batch(&self, tx: &Transaction<'_>) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = tx;
        async { Ok(()) }
    }
}

#[derive(Debug, Clone)]
pub struct InboxConfig {
    pub topics: Vec<String>,
    /// Events applied per database transaction at most.
    pub max_batch: usize,
}

/// Consumes `config.topics` until `shutdown`. One replica per schema
/// consumes at a time (session advisory lock); the others wait to take over.
/// Errors (database or broker down) are logged and retried with backoff.
pub async fn run_inbox<H: Handler>(
    pool: Pool,
    kafka_settings: KafkaSettings,
    handler: H,
    config: InboxConfig,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let watch = shutdown.clone();
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_triggered() {
        // Dropping the consumer mid-batch rolls its transaction back:
        // neither effects nor position are written, so the batch is read again.
        let result = tokio::select! {
            r = consume_while_leader(&pool, &kafka_settings, &handler, &config, &watch) => r,
            () = shutdown.wait() => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "inbox interrupted, retrying");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.wait() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    tracing::info!("inbox stopped");
    Ok(())
}

/// How long the consumer waits for records before it checks that the broker
/// still holds the log up to its recorded positions.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// Partitions whose recorded position is beyond the broker's log end:
/// (topic, partition, recorded, log end). Only a broker that lost its data
/// (or a different cluster behind the same address) gives any.
async fn positions_beyond_log_end(
    client: &tokio_postgres::Client,
    kafka_settings: &KafkaSettings,
    topics: &[String],
) -> anyhow::Result<Vec<(String, i32, i64, i64)>> {
    let ends = kafka::high_watermarks(kafka_settings, topics).await?;
    let recorded: HashMap<(String, i32), i64> = client
        .query("SELECT topic, partition, next_offset FROM consumer_position WHERE topic = ANY($1)", &[&topics])
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    Ok(ends
        .into_iter()
        .filter_map(|(topic, p, end)| {
            let at = *recorded.get(&(topic.clone(), p))?;
            (at > end).then_some((topic, p, at, end))
        })
        .collect())
}

/// After a broker data loss the recorded positions point past the new
/// log's end: they are reset to its beginning, so every record the broker
/// holds now is read (those already applied are dropped by event id and the
/// handlers' versions). What the broker lost is not in any log any more;
/// the operator's resync (`dibao-resync`) corrects it from the other
/// side's snapshot.
async fn reset_positions_beyond_log_end(
    client: &tokio_postgres::Client,
    kafka_settings: &KafkaSettings,
    topics: &[String],
) -> anyhow::Result<()> {
    for (topic, partition, recorded, end) in positions_beyond_log_end(client, kafka_settings, topics).await? {
        tracing::error!(
            %topic, partition, recorded, log_end = end,
            "the broker's log ends before this inbox's recorded position: the broker lost data; \
             reading the partition from its beginning. Run dibao-resync to correct what was lost"
        );
        read_from_beginning(client, &topic, partition).await?;
    }
    Ok(())
}

async fn read_from_beginning(client: &tokio_postgres::Client, topic: &str, partition: i32) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE consumer_position SET next_offset = 0, last_event_id = NULL, updated_at = now()
             WHERE topic = $1 AND partition = $2",
            &[&topic, &partition],
        )
        .await?;
    Ok(())
}

/// Partitions whose record just before the recorded position is another
/// event than the one this inbox applied there: the broker's log was
/// replaced (it lost its data and new records have filled the partition
/// past the old position). Reset to the beginning, as in
/// [`reset_positions_beyond_log_end`]. Where the broker does not answer, or
/// the record there was undecodable, nothing is concluded.
async fn reset_positions_of_replaced_logs(
    client: &tokio_postgres::Client,
    kafka_settings: &KafkaSettings,
    topics: &[String],
) -> anyhow::Result<()> {
    let rows = client
        .query(
            "SELECT topic, partition, next_offset, last_event_id FROM consumer_position
             WHERE topic = ANY($1) AND next_offset > 0 AND last_event_id IS NOT NULL",
            &[&topics],
        )
        .await?;
    for row in rows {
        let (topic, partition, at, expected): (String, i32, i64, uuid::Uuid) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let Some(record) = kafka::record_at(kafka_settings, &topic, partition, at - 1, Duration::from_secs(5)).await?
        else {
            continue;
        };
        let found = decode(&record).ok().and_then(|e| uuid::Uuid::parse_str(&e.event_id).ok());
        if found.is_some_and(|f| f != expected) {
            tracing::error!(
                %topic, partition, offset = at - 1, %expected, found = ?found,
                "the broker's record before this inbox's position is another event: the broker lost data \
                 and its log was filled again; reading the partition from its beginning. \
                 Run dibao-resync to correct what was lost"
            );
            read_from_beginning(client, &topic, partition).await?;
        }
    }
    Ok(())
}

async fn consume_while_leader<H: Handler>(
    pool: &Pool,
    kafka_settings: &KafkaSettings,
    handler: &H,
    config: &InboxConfig,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    // Taken out of the pool: the session lock below lives as long as this
    // connection, and a connection handed back to the pool would keep
    // holding it after this session ends, so no later session (here or in
    // another replica) could take it. Dropped, the connection closes and the
    // lock goes with it.
    let leader = deadpool_postgres::Object::take(pool.get().await?);
    loop {
        let got: bool =
            leader.query_one("SELECT pg_try_advisory_lock(hashtext(current_schema() || '.inbox'))", &[]).await?.get(0);
        if got {
            break;
        }
        if shutdown.is_triggered() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let counts = kafka::partition_counts(kafka_settings, &config.topics).await?;
    reset_positions_beyond_log_end(&leader, kafka_settings, &config.topics).await?;
    reset_positions_of_replaced_logs(&leader, kafka_settings, &config.topics).await?;
    let positions: HashMap<(String, i32), i64> = leader
        .query("SELECT topic, partition, next_offset FROM consumer_position WHERE topic = ANY($1)", &[&config.topics])
        .await?
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let mut assignment = TopicPartitionList::new();
    for (topic, partitions) in config.topics.iter().zip(counts) {
        if partitions == 0 {
            anyhow::bail!("topic {topic} has no partitions: create it before starting the consumer");
        }
        for p in 0..partitions {
            let offset = positions.get(&(topic.clone(), p)).map_or(Offset::Beginning, |o| Offset::Offset(*o));
            assignment.add_partition_offset(topic, p, offset)?;
        }
    }
    let consumer = kafka::consumer(kafka_settings)?;
    consumer.assign(&assignment)?;
    tracing::info!(partitions = assignment.count(), "inbox is leader, resuming from its recorded positions");
    loop {
        let mut batch = match tokio::time::timeout(IDLE_CHECK, consumer.recv()).await {
            Ok(Ok(m)) => vec![m.detach()],
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "kafka consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(_) => {
                // Nothing for a while: a broker that lost its data (or was
                // replaced) may be answering "no records" at a position it
                // no longer has; start the session over, which re-reads
                // such partitions from their beginning.
                if positions_beyond_log_end(&leader, kafka_settings, &config.topics).await.is_ok_and(|p| !p.is_empty())
                {
                    anyhow::bail!("the broker's log ends before this inbox's recorded positions");
                }
                continue;
            }
        };
        // Take whatever else is already fetched, without waiting for more.
        while batch.len() < config.max_batch {
            match tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        apply_until_done(pool, handler, &batch).await;
    }
}

#[derive(Debug, thiserror::Error)]
enum BatchError {
    /// The fast path met an event the handler refused: redo the batch carefully.
    #[error("an event of the batch was refused")]
    Refused,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<tokio_postgres::Error> for BatchError {
    fn from(e: tokio_postgres::Error) -> Self {
        BatchError::Failed(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for BatchError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        BatchError::Failed(e.into())
    }
}

/// Applies a batch: first in one transaction with no savepoints (the common
/// case, a few round trips per event fewer); if any event is refused, again
/// with a savepoint per event, so only the refused one is dead-lettered.
async fn apply_until_done<H: Handler>(pool: &Pool, handler: &H, batch: &[OwnedMessage]) {
    let mut backoff = Duration::from_millis(100);
    let mut careful = false;
    loop {
        match apply_batch(pool, handler, batch, careful).await {
            Ok(()) => return,
            Err(BatchError::Refused) => careful = true,
            Err(BatchError::Failed(e)) => {
                tracing::warn!(error = %e, events = batch.len(), "inbox batch not applied, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Records the event id (dropping a duplicate) and applies the event, on `tx`.
async fn apply_one<H: Handler>(
    tx: &Transaction<'_>,
    handler: &H,
    msg: &OwnedMessage,
    event_id: uuid::Uuid,
    envelope: &EventEnvelope,
    span: &tracing::Span,
) -> Result<(), HandlerError> {
    let fresh = crate::store::db::cached::execute(
        tx,
        "INSERT INTO inbox (event_id, topic, partition, \"offset\", aggregate_key, event_type)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
        &[&event_id, &msg.topic(), &msg.partition(), &msg.offset(), &envelope.aggregate_key, &envelope.event_type],
    )
    .await?;
    if fresh == 0 {
        tracing::debug!(parent: span, %event_id, "duplicate event dropped");
        return Ok(());
    }
    handler.apply(tx, envelope).instrument(span.clone()).await
}

async fn apply_batch<H: Handler>(
    pool: &Pool,
    handler: &H,
    batch: &[OwnedMessage],
    careful: bool,
) -> Result<(), BatchError> {
    let mut client = pool.get().await?;
    let mut tx = client.transaction().await?;
    // Event id of each record read, by (topic, partition, offset).
    let mut event_ids: HashMap<(&str, i32, i64), uuid::Uuid> = HashMap::new();
    for msg in batch {
        let headers = owned_headers(msg);
        let envelope = match decode(msg) {
            Ok(env) => env,
            Err(reason) => {
                dead_letter(&tx, msg, &headers, &reason).await?;
                continue;
            }
        };
        let Ok(event_id) = uuid::Uuid::parse_str(&envelope.event_id) else {
            dead_letter(&tx, msg, &headers, &format!("event_id {:?} is not a UUID", envelope.event_id)).await?;
            continue;
        };
        event_ids.insert((msg.topic(), msg.partition(), msg.offset()), event_id);
        let span = tracing::info_span!(
            "inbox.apply",
            otel.kind = "consumer",
            event_type = %envelope.event_type,
            aggregate_key = %envelope.aggregate_key,
            topic = msg.topic(),
            partition = msg.partition(),
            offset = msg.offset(),
        );
        let context = if headers.contains_key("traceparent") { &headers } else { &envelope.trace_context };
        telemetry::set_parent(&span, context);

        if !careful {
            match apply_one(&tx, handler, msg, event_id, &envelope, &span).await {
                Ok(()) => {}
                Err(HandlerError::Permanent(_)) => {
                    tx.rollback().await?;
                    return Err(BatchError::Refused);
                }
                Err(HandlerError::Transient(e)) => {
                    tx.rollback().await?;
                    return Err(BatchError::Failed(e));
                }
            }
            continue;
        }
        let sp = tx.transaction().await?;
        match apply_one(&sp, handler, msg, event_id, &envelope, &span).await {
            Ok(()) => sp.commit().await?,
            Err(HandlerError::Permanent(reason)) => {
                sp.rollback().await?;
                tracing::warn!(parent: &span, %event_id, %reason, "event refused, dead-lettered");
                dead_letter(&tx, msg, &headers, &reason).await?;
            }
            Err(HandlerError::Transient(e)) => {
                sp.rollback().await?;
                tx.rollback().await?;
                return Err(BatchError::Failed(e));
            }
        }
    }
    if let Err(e) = handler.finish_batch(&tx).await {
        tx.rollback().await?;
        let e = match e {
            HandlerError::Transient(e) => e,
            HandlerError::Permanent(reason) => anyhow::anyhow!("finishing the batch: {reason}"),
        };
        return Err(BatchError::Failed(e));
    }
    // The position moves in the same transaction as the effects. It is set,
    // not raised: after the broker lost data the log starts again at 0, and
    // a position kept at the old, higher offset would skip the new records.
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for m in batch {
        let e = next.entry((m.topic(), m.partition())).or_insert(0);
        *e = (*e).max(m.offset() + 1);
    }
    for ((topic, partition), offset) in next {
        let last_event = event_ids.get(&(topic, partition, offset - 1));
        crate::store::db::cached::execute(
            &tx,
            "INSERT INTO consumer_position (topic, partition, next_offset, last_event_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (topic, partition) DO UPDATE
             SET next_offset = EXCLUDED.next_offset, last_event_id = EXCLUDED.last_event_id, updated_at = now()",
            &[&topic, &partition, &offset, &last_event],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn owned_headers(msg: &OwnedMessage) -> HashMap<String, String> {
    use rdkafka::message::Headers;
    let mut map = HashMap::new();
    if let Some(h) = msg.headers() {
        for header in h.iter() {
            if let Some(v) = header.value.and_then(|v| std::str::from_utf8(v).ok()) {
                map.insert(header.key.to_owned(), v.to_owned());
            }
        }
    }
    map
}

fn decode(msg: &OwnedMessage) -> Result<EventEnvelope, String> {
    let payload = msg.payload().ok_or_else(|| "record has no payload".to_owned())?;
    let env = EventEnvelope::decode(payload).map_err(|e| format!("cannot decode EventEnvelope: {e}"))?;
    if env.payload.is_none() {
        return Err(format!("event {} of type {:?} has no payload this service knows", env.event_id, env.event_type));
    }
    Ok(env)
}

async fn dead_letter(
    tx: &Transaction<'_>,
    msg: &OwnedMessage,
    headers: &HashMap<String, String>,
    reason: &str,
) -> Result<(), tokio_postgres::Error> {
    tracing::warn!(topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), %reason, "record dead-lettered");
    let key = msg.key().map(|k| String::from_utf8_lossy(k).into_owned());
    let headers = serde_json::to_value(headers).unwrap_or_default();
    tx.execute(
        "INSERT INTO dead_letter (topic, partition, \"offset\", record_key, payload, headers, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (topic, partition, \"offset\") DO NOTHING",
        &[&msg.topic(), &msg.partition(), &msg.offset(), &key, &msg.payload(), &headers, &reason],
    )
    .await?;
    Ok(())
}
