//! Outbox -> broker -> inbox throughput and end-to-end lag through the real
//! broker (Tansu, started here) and real Postgres.
//!
//! `cargo run --release -p dibao-demos --example pipeline_bench [EVENTS]`
//!
//! Two runs: as fast as the writers can go (throughput, and the lag a
//! backlog builds), then a paced run near 1,000 events/s (the lag of a
//! system that keeps up). Lag is commit of the writer's transaction
//! (timestamp in the event) to commit of the applier's.

use std::time::{Duration, Instant};

use dibao_platform::runtime::shutdown::Shutdown;
use dibao_platform::{events::inbox, events::kafka, events::outbox, store::db};
use dibao_tests::{Broker, TestDb, probe, random_prefix};

struct Run {
    events: i64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Outbox commit to delivery report (the relay and the broker's share).
    relay_p50_ms: f64,
    relay_p99_ms: f64,
}

async fn run(broker: &Broker, plan: probe::Plan) -> anyhow::Result<Run> {
    let writer_db = TestDb::create().await?;
    let applier_db = TestDb::create().await?;
    let ks = broker.kafka_settings(&random_prefix(), "bench");
    let topic = kafka::topic(&ks, probe::TOPIC);
    kafka::ensure_topics(&ks, &[(topic.clone(), probe::PARTITIONS)]).await?;
    let writer =
        db::connect_and_migrate(&writer_db.settings("probe"), &[("service", probe::WRITER_MIGRATIONS)]).await?;
    let applier =
        db::connect_and_migrate(&applier_db.settings("probe"), &[("service", probe::APPLIER_MIGRATIONS)]).await?;

    let (stop, stopped) = Shutdown::new();
    let relay =
        tokio::spawn(outbox::run_relay(writer.clone(), ks.clone(), outbox::RelayConfig::default(), stopped.clone()));
    let consumer = tokio::spawn(inbox::run_inbox(
        applier.clone(),
        ks.clone(),
        probe::ProbeHandler,
        inbox::InboxConfig { topics: vec![topic.clone()], max_batch: 500 },
        stopped,
    ));
    // Let the consumer join its group before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let start = Instant::now();
    probe::write(&writer, &topic, plan).await?;
    while probe::applied_count(&applier).await? < plan.events {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    stop.trigger();
    relay.await?;
    consumer.await??;

    let row = applier
        .get()
        .await?
        .query_one(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY lag),
                    max(lag)
             FROM (SELECT extract(epoch FROM applied_at - written_at)::float8 * 1000 AS lag FROM probe_applied) l",
            &[],
        )
        .await?;
    let relay = writer
        .get()
        .await?
        .query_one(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag)
             FROM (SELECT extract(epoch FROM published_at - created_at)::float8 * 1000 AS lag FROM outbox) l",
            &[],
        )
        .await?;
    let ms = |r: &tokio_postgres::Row, i: usize| -> f64 { r.get::<_, Option<f64>>(i).unwrap_or(f64::NAN) };
    Ok(Run {
        events: plan.events,
        seconds,
        p50_ms: ms(&row, 0),
        p99_ms: ms(&row, 1),
        max_ms: ms(&row, 2),
        relay_p50_ms: ms(&relay, 0),
        relay_p99_ms: ms(&relay, 1),
    })
}

fn print(label: &str, r: &Run) {
    println!(
        "{label:<28} events={:>7}  wall={:>6.2}s  throughput={:>8.0} events/s  lag p50={:>7.1}ms p99={:>7.1}ms max={:>7.1}ms  (of which outbox->delivered p50={:>7.1}ms p99={:>7.1}ms)",
        r.events,
        r.seconds,
        r.events as f64 / r.seconds,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.relay_p50_ms,
        r.relay_p99_ms
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: i64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(20_000);
    let broker = Broker::start().await?;
    println!("pipeline-bench: outbox -> Tansu (SQLite) -> inbox, {} partitions, 50 keys", probe::PARTITIONS);
    let saturated = run(&broker, probe::Plan { events, keys: 50, tasks: 8, body: 256, pause: Duration::ZERO }).await?;
    print("saturated (8 writers)", &saturated);
    // 4 writers, each pausing 4 ms after a commit: about 1,000 events/s.
    let paced = run(
        &broker,
        probe::Plan { events: events / 2, keys: 50, tasks: 4, body: 256, pause: Duration::from_millis(4) },
    )
    .await?;
    print("paced (~1,000 events/s)", &paced);
    Ok(())
}
