//! A comparison run: the view read as of one position, compared, the
//! division's entries stored in list order with a digest, the entries'
//! first sighting kept for ageing, and `ComparisonCompleted` published for
//! the poverty office (R-CMP-1..4). The run's rows, its entries and its
//! event are written in one transaction: a run is there whole or not at all.

use std::sync::Arc;

use deadpool_postgres::Pool;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::Error;
use dibao_proto::events::v1::{ComparisonCompleted, event_envelope::Payload};
use dibao_proto::types::DivisionCode;
use time::Date;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::engine::{self, Kind};
use crate::entries::{Digest, StoredEntry, in_scope, stored};
use crate::view;

/// Progress of a run as it streams to the caller.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub run_id: Uuid,
    pub phase: &'static str,
    pub done: i64,
    pub total: i64,
    /// Entries per list, (a) to (g), once known.
    pub sizes: Vec<i64>,
    pub finished: Option<time::OffsetDateTime>,
}

pub struct Runs {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    /// This service's topic, where completed runs are published.
    pub topic: String,
}

pub const PRODUCER: &str = "roster-comparison";
const AGGREGATE: &str = "roster_comparison.run";
/// Entries written per statement.
const CHUNK: usize = 5_000;

impl Runs {
    /// Runs a comparison of `division` (the whole view when `None`), or
    /// re-runs `reproduce` on the position and date it ran on.
    pub async fn run(
        &self,
        division: Option<DivisionCode>,
        reproduce: Option<Uuid>,
        progress: mpsc::Sender<Progress>,
    ) -> Result<Uuid, Error> {
        let run_id = Uuid::now_v7();
        let started = self.clock.now();
        let mut client = self.pool.get().await?;
        let ((division, scope), position, dibao_events, poverty_events, as_of) = match reproduce {
            Some(earlier) => {
                let row = client
                    .query_opt(
                        "SELECT division, scope, view_position, dibao_events, poverty_events, as_of
                         FROM comparison_run WHERE run_id = $1 AND finished_at IS NOT NULL",
                        &[&earlier],
                    )
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("比对批次{earlier}不存在或未完成")))?;
                let scope = (row.get::<_, String>(0), row.get::<_, String>(1));
                (scope, row.get(2), row.get(3), row.get(4), row.get::<_, Date>(5))
            }
            None => {
                let tx = client.transaction().await?;
                let (position, d, p) = view::position_now(&tx).await?;
                tx.commit().await?;
                let scope = division.map(|d| (d.as_str().to_owned(), d.prefix().to_owned())).unwrap_or_default();
                (scope, position, d, p, china_date(started))
            }
        };
        let say = |phase, done, total, sizes: Vec<i64>, finished| {
            let _ = progress.try_send(Progress { run_id, phase, done, total, sizes, finished });
        };

        let (input, labels) = view::load(&client, position).await.map_err(Error::Unexpected)?;
        let households = (input.dibao.len() + input.poor.len()) as i64;
        say("extract", households, households, Vec::new(), None);
        let (input, lists) = tokio::task::spawn_blocking(move || {
            let lists = engine::compare(&input, as_of);
            (input, lists)
        })
        .await
        .map_err(|e| Error::Unexpected(e.into()))?;
        let mut sizes = vec![0i64; Kind::ALL.len()];
        for e in lists.entries.iter().filter(|e| in_scope(&input, &lists, e, &scope)) {
            sizes[e.kind as usize] += 1;
        }
        let total: i64 = sizes.iter().sum();
        say("compare", households, households, sizes.clone(), None);

        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO comparison_run (run_id, division, scope, view_position, dibao_events, poverty_events, as_of,
                                         reproduces, started_at, dibao_households, poor_households)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &run_id,
                &division,
                &scope,
                &position,
                &dibao_events,
                &poverty_events,
                &as_of,
                &reproduce,
                &started,
                &(input.dibao.len() as i64),
                &(input.poor.len() as i64),
            ],
        )
        .await?;
        // The entries go in with one binary COPY (a province's lists are
        // millions of rows), made as text a chunk at a time so they never
        // sit in memory as strings all at once.
        let sink = tx
            .copy_in(
                "COPY run_entry (run_id, ordinal, entry_key, kind, village, dibao, poor, members, explanation)
                 FROM STDIN BINARY",
            )
            .await?;
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::UUID,
                Type::INT4,
                Type::TEXT,
                Type::CHAR,
                Type::TEXT,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT,
            ],
        );
        futures_util::pin_mut!(writer);
        let mut digest = Digest::default();
        let mut stream = stored(&input, &labels, &lists, &scope).peekable();
        let mut chunk: Vec<StoredEntry> = Vec::with_capacity(CHUNK);
        let mut ordinal = 0i32;
        while stream.peek().is_some() {
            chunk.clear();
            chunk.extend(stream.by_ref().take(CHUNK));
            digest.add(&chunk);
            for e in &chunk {
                let kind = e.kind.letter() as u8 as i8;
                writer
                    .as_mut()
                    .write(&[
                        &run_id,
                        &ordinal,
                        &e.id,
                        &kind,
                        &e.village,
                        &e.dibao,
                        &e.poor,
                        &e.members,
                        &e.explanation,
                    ])
                    .await?;
                ordinal += 1;
            }
            say("store", i64::from(ordinal), total, sizes.clone(), None);
        }
        writer.finish().await?;
        // When each entry was first reported, for ageing: every list but
        // (c), which asks nothing of anyone. One statement, on the server.
        tx.execute(
            "INSERT INTO entry_seen (entry_key, first_run, first_seen_at)
             SELECT entry_key, run_id, $2 FROM run_entry WHERE run_id = $1 AND kind <> 'c'
             ON CONFLICT (entry_key) DO NOTHING",
            &[&run_id, &started],
        )
        .await?;
        let digest = digest.finish();
        let finished = self.clock.now();
        tx.execute(
            "UPDATE comparison_run SET finished_at = $2, list_sizes = $3, digest = $4 WHERE run_id = $1",
            &[&run_id, &finished, &sizes, &digest],
        )
        .await?;
        let list_sizes = Kind::ALL.iter().zip(&sizes).map(|(k, n)| (k.letter().to_string(), *n)).collect();
        outbox::enqueue(
            &tx,
            NewEvent {
                topic: &self.topic,
                aggregate_type: AGGREGATE,
                aggregate_key: &run_id.to_string(),
                aggregate_version: 1,
                producer: PRODUCER,
                payload: Payload::ComparisonCompleted(ComparisonCompleted {
                    run_id: run_id.to_string(),
                    division: Some(dibao_proto::common::v1::DivisionCode { code: division.clone() }),
                    completed_at: Some(outbox::timestamp_of(finished)),
                    list_sizes,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%run_id, %division, position, entries = total, digest = %digest, "comparison run finished");
        say("done", total, total, sizes, Some(finished));
        Ok(run_id)
    }
}

/// Runs started and not finished, and the latest finished run: when, and
/// its lists' sizes; read at each scrape.
pub fn metrics(pool: Pool) -> dibao_platform::runtime::metrics::Source {
    use dibao_platform::runtime::metrics::Text;
    std::sync::Arc::new(move |mut text: Text| {
        let pool = pool.clone();
        Box::pin(async move {
            let read = async {
                let client = pool.get().await.map_err(|e| e.to_string())?;
                client
                    .query_one(
                        "SELECT (SELECT count(*) FROM comparison_run WHERE finished_at IS NULL),
                                l.finished_at, coalesce(l.list_sizes, '{}'), coalesce(l.dibao_households + l.poor_households, 0)
                         FROM (SELECT 1) one
                         LEFT JOIN LATERAL (SELECT finished_at, list_sizes, dibao_households, poor_households
                                            FROM comparison_run WHERE finished_at IS NOT NULL
                                            ORDER BY finished_at DESC LIMIT 1) l ON true",
                        &[],
                    )
                    .await
                    .map_err(|e| e.to_string())
            };
            match read.await {
                Ok(row) => {
                    text.family("dibao_comparison_runs_running", "gauge", "Comparison runs started and not finished.");
                    text.sample("dibao_comparison_runs_running", &[], row.get::<_, i64>(0));
                    let finished: Option<time::OffsetDateTime> = row.get(1);
                    text.family(
                        "dibao_comparison_last_finished_timestamp_seconds",
                        "gauge",
                        "When the latest comparison run finished (0 before the first).",
                    );
                    text.sample(
                        "dibao_comparison_last_finished_timestamp_seconds",
                        &[],
                        finished.map_or(0, |t| t.unix_timestamp()),
                    );
                    text.family("dibao_comparison_last_households", "gauge", "Households the latest run compared.");
                    text.sample("dibao_comparison_last_households", &[], row.get::<_, i64>(3));
                    text.family(
                        "dibao_comparison_last_list_size",
                        "gauge",
                        "Entries of each list (a)-(g) in the latest run.",
                    );
                    for (i, n) in row.get::<_, Vec<i64>>(2).iter().enumerate() {
                        let list = ((b'a' + i as u8) as char).to_string();
                        text.sample("dibao_comparison_last_list_size", &[("list", &list)], n);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "comparison progress for the metrics"),
            }
            text
        })
    })
}
