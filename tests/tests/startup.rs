//! A service that cannot start says what is wrong and where, and exits non-zero.

use std::process::Output;

use dibao_tests::{Broker, TestDb, free_port, random_prefix};

async fn run_probe(vars: &[(&str, String)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipeline-probe"));
    cmd.arg("apply").env("PIPELINE_PROBE_ENV_FILE", "/dev/null");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run pipeline-probe")
}

fn base(db: &str, broker: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PIPELINE_PROBE__DATABASE__URL", db.to_owned()),
        ("PIPELINE_PROBE__DATABASE__SCHEMA", "probe".to_owned()),
        ("PIPELINE_PROBE__KAFKA__BROKERS", broker.to_owned()),
        ("PIPELINE_PROBE__KAFKA__TOPIC_PREFIX", random_prefix()),
        ("PIPELINE_PROBE__KAFKA__GROUP_ID", "startup".to_owned()),
    ]
}

#[tokio::test]
async fn a_missing_setting_is_named() {
    let mut vars = base("postgres://postgres@127.0.0.1:5432/postgres", "127.0.0.1:1");
    vars.retain(|(k, _)| *k != "PIPELINE_PROBE__KAFKA__BROKERS");
    let out = run_probe(&vars).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("kafka.brokers") && err.contains("PIPELINE_PROBE__KAFKA__BROKERS"), "{err}");
}

#[tokio::test]
async fn an_invalid_setting_is_named() {
    let mut vars = base("postgres://postgres@127.0.0.1:5432/postgres", "127.0.0.1:1");
    vars.push(("PIPELINE_PROBE__DATABASE__POOL_SIZE", "many".to_owned()));
    let out = run_probe(&vars).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("pool_size"), "{err}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_with_its_address() {
    let port = free_port();
    let vars = base(&format!("postgres://postgres@127.0.0.1:{port}/dibao"), "127.0.0.1:1");
    let out = run_probe(&vars).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot reach Postgres at 127.0.0.1:{port}/dibao")), "{err}");
}

#[tokio::test]
async fn an_unreachable_broker_is_named_with_its_address() {
    let db = TestDb::create().await.expect("db");
    let port = free_port();
    let out = run_probe(&base(&db.url, &format!("127.0.0.1:{port}"))).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot reach the Kafka brokers at 127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn with_everything_reachable_it_starts_and_stops_on_sigterm() {
    let db = TestDb::create().await.expect("db");
    let broker = Broker::start().await.expect("broker");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipeline-probe"));
    cmd.arg("apply").env("PIPELINE_PROBE_ENV_FILE", "/dev/null").stdout(std::process::Stdio::piped());
    for (k, v) in base(&db.url, &broker.address()) {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn");
    let pid = child.id().expect("pid");
    // Up when its tables exist (migrations ran after the checks passed).
    let client = db.client().await.expect("client");
    let mut up = false;
    for _ in 0..200 {
        if client
            .query_opt("SELECT 1 FROM pg_tables WHERE schemaname = 'probe' AND tablename = 'inbox'", &[])
            .await
            .expect("q")
            .is_some()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "probe never migrated its schema");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(status.success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("stops within 30 s")
        .expect("output");
    assert!(out.status.success(), "graceful stop exits 0: {:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied: 0"));
}
