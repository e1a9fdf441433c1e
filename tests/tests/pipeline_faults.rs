//! Outbox -> broker -> inbox under faults, through real processes, real
//! Postgres and the real broker.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use dibao_tests::{Broker, TestDb, random_prefix};
use tokio::process::{Child, Command};

const EVENTS: i64 = 10_000;
const KEYS: i64 = 50;

struct Probe {
    db_url: String,
    prefix: String,
    broker: String,
    logs: PathBuf,
}

impl Probe {
    fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .expect("log file");
        Command::new(env!("CARGO_BIN_EXE_pipeline-probe"))
            .args(args)
            .env("PIPELINE_PROBE_ENV_FILE", "/dev/null")
            .env("PIPELINE_PROBE__DATABASE__URL", &self.db_url)
            .env("PIPELINE_PROBE__DATABASE__SCHEMA", "probe")
            .env("PIPELINE_PROBE__KAFKA__BROKERS", &self.broker)
            .env("PIPELINE_PROBE__KAFKA__TOPIC_PREFIX", &self.prefix)
            .env("PIPELINE_PROBE__KAFKA__GROUP_ID", format!("{}-applier", self.prefix))
            .env("RUST_LOG", "info,rdkafka=warn")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn pipeline-probe")
    }

    fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

async fn applied(client: &tokio_postgres::Client) -> i64 {
    client.query_one("SELECT count(*) FROM probe.probe_applied", &[]).await.map(|r| r.get(0)).unwrap_or(0)
}

async fn wait_applied(client: &tokio_postgres::Client, at_least: i64, probe: &Probe) {
    for _ in 0..1200 {
        if applied(client).await >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {at_least} events applied after 120 s\nwriter:\n{}\napplier:\n{}",
        probe.log_tail("writer"),
        probe.log_tail("applier")
    );
}

async fn wait_exit(child: &mut Child, name: &str, probe: &Probe) {
    let status = tokio::time::timeout(Duration::from_secs(300), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within 300 s\n{}", probe.log_tail(name)))
        .expect("wait");
    assert!(status.success(), "{name} failed: {status}\n{}", probe.log_tail(name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_arrive_once_in_order_through_broker_and_consumer_kills() {
    let mut broker = Broker::start().await.expect("broker");
    let writer_db = TestDb::create().await.expect("writer db");
    let applier_db = TestDb::create().await.expect("applier db");
    let logs = std::env::temp_dir().join(format!("dibao-fault-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&logs).expect("logs dir");
    let prefix = random_prefix();
    let writer =
        Probe { db_url: writer_db.url.clone(), prefix: prefix.clone(), broker: broker.address(), logs: logs.clone() };
    let applier = Probe { db_url: applier_db.url.clone(), prefix, broker: broker.address(), logs };
    let check = applier_db.client().await.expect("client");

    let mut applier_proc = applier.spawn("applier", &["apply", "--expect", &EVENTS.to_string()]);
    let mut writer_proc = writer
        .spawn("writer", &["write", "--events", &EVENTS.to_string(), "--keys", &KEYS.to_string(), "--tasks", "8"]);

    wait_applied(&check, 1_500, &applier).await;
    broker.kill().await.expect("kill broker");
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart().await.expect("restart broker");

    wait_applied(&check, 4_000, &applier).await;
    applier_proc.start_kill().expect("kill applier");
    applier_proc.wait().await.expect("reap applier");
    applier_proc = applier.spawn("applier", &["apply", "--expect", &EVENTS.to_string()]);

    wait_applied(&check, 6_500, &applier).await;
    broker.kill().await.expect("kill broker");
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart().await.expect("restart broker");

    wait_exit(&mut writer_proc, "writer", &writer).await;
    wait_exit(&mut applier_proc, "applier", &applier).await;

    // Exactly once: every (key, sequence) once, nothing more.
    assert_eq!(applied(&check).await, EVENTS, "applied rows");
    let inbox: i64 = check.query_one("SELECT count(*) FROM probe.inbox", &[]).await.expect("inbox").get(0);
    assert_eq!(inbox, EVENTS, "inbox records one row per event id");
    let dead: Vec<String> = check
        .query("SELECT reason FROM probe.dead_letter", &[])
        .await
        .expect("dead letters")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(dead.is_empty(), "no dead letters expected, got {dead:?}");

    // In order per key: by the order rows were applied, each key's
    // sequences run 1, 2, …, 200 with no gap or swap.
    let rows = check
        .query(
            "SELECT aggregate_key, array_agg(sequence ORDER BY applied_order) FROM probe.probe_applied GROUP BY 1",
            &[],
        )
        .await
        .expect("per key");
    assert_eq!(rows.len() as i64, KEYS);
    for row in rows {
        let key: String = row.get(0);
        let seqs: Vec<i64> = row.get(1);
        let expected: Vec<i64> = (1..=EVENTS / KEYS).collect();
        assert_eq!(seqs, expected, "order of {key}");
    }
    let writer_client = writer_db.client().await.expect("writer client");
    let unpublished: i64 = writer_client
        .query_one("SELECT count(*) FROM probe.outbox WHERE published_at IS NULL", &[])
        .await
        .expect("outbox")
        .get(0);
    assert_eq!(unpublished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_is_dead_lettered_with_its_reason_and_the_partition_moves_on() {
    use dibao_platform::runtime::shutdown::Shutdown;
    use dibao_platform::{events::inbox, events::kafka, events::outbox, store::db};
    use dibao_tests::probe;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let broker = Broker::start().await.expect("broker");
    let dbx = TestDb::create().await.expect("db");
    let prefix = random_prefix();
    let ks = broker.kafka_settings(&prefix, "dl-test");
    let topic = kafka::topic(&ks, probe::TOPIC);
    // One partition so the bad record sits in front of the good one.
    kafka::ensure_topics(&ks, &[(topic.clone(), 1)]).await.expect("topic");
    let mut settings = dbx.settings("svc");
    settings.pool_size = 4;
    let pool = db::connect_and_migrate(&settings, &[("service", probe::APPLIER_MIGRATIONS)]).await.expect("db");
    // This process both writes and applies, so it needs the writer's table too.
    db::migrate(&pool, "probe-writer", probe::WRITER_MIGRATIONS).await.expect("writer tables");

    let raw: FutureProducer = kafka::producer(&ks).expect("producer");
    raw.send(
        FutureRecord::to(&topic).key("household-00000").payload(&b"\xff\x00not a protobuf"[..]),
        Duration::from_secs(10),
    )
    .await
    .expect("raw send");

    let (stop, stopped) = Shutdown::new();
    let relay = tokio::spawn(outbox::run_relay(pool.clone(), ks.clone(), Default::default(), stopped.clone()));
    let inbox_task = tokio::spawn(inbox::run_inbox(
        pool.clone(),
        ks.clone(),
        probe::ProbeHandler,
        inbox::InboxConfig { topics: vec![topic.clone()], max_batch: 10 },
        stopped,
    ));
    probe::write(&pool, &topic, probe::Plan { events: 3, keys: 1, tasks: 1, body: 8, pause: Duration::ZERO })
        .await
        .expect("write");

    for _ in 0..300 {
        if probe::applied_count(&pool).await.expect("count") == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(probe::applied_count(&pool).await.expect("count"), 3, "events behind the bad record are applied");
    let client = pool.get().await.expect("client");
    let dead = client.query("SELECT reason, record_key, \"offset\" FROM dead_letter", &[]).await.expect("dl");
    assert_eq!(dead.len(), 1);
    let reason: String = dead[0].get(0);
    assert!(reason.contains("cannot decode EventEnvelope"), "{reason}");
    assert_eq!(dead[0].get::<_, Option<String>>(1).as_deref(), Some("household-00000"));
    assert_eq!(dead[0].get::<_, i64>(2), 0);
    stop.trigger();
    inbox_task.await.expect("join").expect("inbox");
    relay.await.expect("relay");
}
