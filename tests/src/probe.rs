//! The pipeline probe: the smallest real producer and consumer of the
//! platform's outbox and inbox. The writer changes a row and enqueues an
//! event in one transaction; the applier applies each event into its own
//! database and refuses one that arrives out of order for its key. The fault
//! test drives it as two processes; the benchmark runs it in one.

use std::time::Duration;

use deadpool_postgres::Pool;
use deadpool_postgres::Transaction;
use dibao_platform::events::inbox::{Handler, HandlerError};
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_proto::events::v1::{EventEnvelope, PipelineProbe, event_envelope::Payload};

pub const TOPIC: &str = "pipeline-probe.events";
pub const PARTITIONS: i32 = 3;

pub const WRITER_MIGRATIONS: &[dibao_platform::store::db::Migration] = &[(
    "0001_probe_written",
    "CREATE TABLE probe_written (
         aggregate_key text NOT NULL,
         sequence bigint NOT NULL,
         written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
         PRIMARY KEY (aggregate_key, sequence))",
)];

pub const APPLIER_MIGRATIONS: &[dibao_platform::store::db::Migration] = &[(
    "0001_probe_applied",
    "CREATE TABLE probe_applied (
         aggregate_key text NOT NULL,
         sequence bigint NOT NULL,
         written_at timestamptz NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
         applied_order bigserial,
         PRIMARY KEY (aggregate_key, sequence))",
)];

/// What to write: `events` spread evenly over `keys`, by `tasks` concurrent writers.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub events: i64,
    pub keys: i64,
    pub tasks: i64,
    /// Bytes of body per event.
    pub body: usize,
    /// Pause between transactions of one task (to drive a steady rate).
    pub pause: Duration,
}

pub fn key_name(k: i64) -> String {
    format!("household-{k:05}")
}

/// Writes the plan, resuming after what an earlier run already wrote.
pub async fn write(pool: &Pool, topic: &str, plan: Plan) -> anyhow::Result<()> {
    let per_key = plan.events / plan.keys;
    let mut tasks = Vec::new();
    for t in 0..plan.tasks {
        let pool = pool.clone();
        let topic = topic.to_owned();
        tasks.push(tokio::spawn(async move {
            let keys: Vec<i64> = (0..plan.keys).filter(|k| k % plan.tasks == t).collect();
            let mut next = Vec::with_capacity(keys.len());
            let client = pool.get().await?;
            for k in &keys {
                let done: Option<i64> = client
                    .query_one("SELECT max(sequence) FROM probe_written WHERE aggregate_key = $1", &[&key_name(*k)])
                    .await?
                    .get(0);
                next.push(done.unwrap_or(0) + 1);
            }
            drop(client);
            let body = vec![b'x'; plan.body];
            loop {
                let mut wrote = false;
                for (i, k) in keys.iter().enumerate() {
                    if next[i] > per_key {
                        continue;
                    }
                    write_one(&pool, &topic, &key_name(*k), next[i], &body).await?;
                    next[i] += 1;
                    wrote = true;
                    if !plan.pause.is_zero() {
                        tokio::time::sleep(plan.pause).await;
                    }
                }
                if !wrote {
                    return Ok::<(), anyhow::Error>(());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn write_one(pool: &Pool, topic: &str, key: &str, sequence: i64, body: &[u8]) -> anyhow::Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("INSERT INTO probe_written (aggregate_key, sequence) VALUES ($1, $2)", &[&key, &sequence]).await?;
    outbox::enqueue(
        &tx,
        NewEvent {
            topic,
            aggregate_type: "pipeline_probe",
            aggregate_key: key,
            aggregate_version: sequence,
            producer: "pipeline-probe",
            payload: Payload::PipelineProbe(PipelineProbe {
                sequence,
                body: body.to_vec(),
                written_at: Some(outbox::now_timestamp()),
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Waits until the relay has published every row.
pub async fn wait_published(pool: &Pool, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let pending: i64 = match pool.get().await {
            Ok(c) => c.query_one("SELECT count(*) FROM outbox WHERE published_at IS NULL", &[]).await?.get(0),
            Err(_) => i64::MAX,
        };
        if pending == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{pending} outbox rows still unpublished after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Applies probe events; refuses one that is not the next of its key.
pub struct ProbeHandler;

impl Handler for ProbeHandler {
    async fn apply(&self, tx: &Transaction<'_>, event: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(Payload::PipelineProbe(probe)) = &event.payload else {
            return Err(HandlerError::Permanent(format!("unexpected event type {}", event.event_type)));
        };
        let last: Option<i64> = tx
            .query_one("SELECT max(sequence) FROM probe_applied WHERE aggregate_key = $1", &[&event.aggregate_key])
            .await?
            .get(0);
        let expected = last.unwrap_or(0) + 1;
        if probe.sequence != expected {
            return Err(HandlerError::Permanent(format!(
                "out of order for {}: expected sequence {expected}, got {}",
                event.aggregate_key, probe.sequence
            )));
        }
        let written = probe.written_at.as_ref().map_or(0.0, |t| t.seconds as f64 + f64::from(t.nanos) / 1e9);
        tx.execute(
            "INSERT INTO probe_applied (aggregate_key, sequence, written_at) VALUES ($1, $2, to_timestamp($3))",
            &[&event.aggregate_key, &probe.sequence, &written],
        )
        .await?;
        Ok(())
    }
}

pub async fn applied_count(pool: &Pool) -> anyhow::Result<i64> {
    Ok(pool.get().await?.query_one("SELECT count(*) FROM probe_applied", &[]).await?.get(0))
}
