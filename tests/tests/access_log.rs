//! The hash-chained access log (R-VER-1) against a real Postgres: replicas
//! extend one chain, outcome records name their query, and whatever is
//! changed after the fact is named by the chain check.

use std::collections::HashMap;

use dibao_platform::trust::access_log::{self, ASKED, AccessEntry, AccessLog, AccessRecord};
use dibao_tests::{TestDb, access_records};

fn entry(replica: usize, person: &str, outcome: &str, completes: Option<i64>) -> AccessEntry {
    AccessEntry {
        caller: format!("verification-hub-{replica}"),
        officer_id: "officer-1".into(),
        consent_id: "0190f0a8-0000-7000-8000-000000000001".into(),
        purpose: "低保申请审核".into(),
        person: person.into(),
        items: vec!["ITEM_VEHICLES".into(), "ITEM_PROPERTY".into()],
        outcome: outcome.into(),
        completes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_appending_at_once_extend_one_chain_and_outcomes_name_their_queries() {
    let db = TestDb::create().await.expect("db");
    let pool = dibao_platform::store::db::connect(&db.settings("hub")).await.expect("pool");
    access_log::migrate(&pool).await.expect("migrate");
    // Two replicas of one service: two writers, one table, neither knowing
    // the other's tail.
    let replicas = [AccessLog::start(pool.clone()), AccessLog::start(pool.clone())];
    let person = "110101199003074514";
    let mut tasks = Vec::new();
    for i in 0..200 {
        let log = replicas[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let asked = log.record(entry(i % 2, person, ASKED, None)).await.expect("query recorded");
            log.record_outcome(entry(i % 2, person, &format!("answered: {i} records"), Some(asked)));
            asked
        }));
    }
    let mut queries = Vec::new();
    for t in tasks {
        queries.push(t.await.expect("task"));
    }
    let records = access_records(&pool, person, 400).await;
    assert_eq!(records.len(), 400, "every query and every outcome is on record");
    let check = access_log::verify_chain(&pool).await.expect("chain");
    assert_eq!((check.records, check.broken), (400, None));
    // Sequence numbers run without a gap, whoever wrote them.
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>());
    // Each outcome names an earlier query of the same replica, once.
    let by_seq: HashMap<i64, &AccessRecord> = records.iter().map(|r| (r.seq, r)).collect();
    let mut completed: Vec<i64> = Vec::new();
    for r in records.iter().filter(|r| r.entry.completes.is_some()) {
        let q = by_seq[&r.entry.completes.expect("completes")];
        assert!(q.seq < r.seq && q.entry.outcome == ASKED && q.entry.caller == r.entry.caller, "{r:?} → {q:?}");
        completed.push(q.seq);
    }
    completed.sort_unstable();
    queries.sort_unstable();
    assert_eq!(completed, queries);
}

#[tokio::test]
async fn a_changed_outcome_link_or_a_record_deleted_from_the_end_is_named() {
    let db = TestDb::create().await.expect("db");
    let pool = dibao_platform::store::db::connect(&db.settings("adapter")).await.expect("pool");
    access_log::migrate(&pool).await.expect("migrate");
    let log = AccessLog::start(pool.clone());
    let person = "110101199003074514";
    for i in 0..3 {
        let asked = log.record(entry(0, person, ASKED, None)).await.expect("query");
        log.record_outcome(entry(0, person, &format!("answered: {i} records"), Some(asked)));
    }
    assert_eq!(access_records(&pool, person, 6).await.len(), 6);
    assert_eq!(access_log::verify_chain(&pool).await.expect("chain").broken, None);

    let client = pool.get().await.expect("client");
    client.batch_execute("ALTER TABLE access_log DISABLE TRIGGER USER").await.expect("disable");
    // Pointing an outcome at another query is an edit like any other.
    let outcome: i64 = client
        .query_one("SELECT min(seq) FROM access_log WHERE completes IS NOT NULL", &[])
        .await
        .expect("outcome")
        .get(0);
    client.execute("UPDATE access_log SET completes = completes + 2 WHERE seq = $1", &[&outcome]).await.expect("edit");
    let broken = access_log::verify_chain(&pool).await.expect("chain").broken.expect("edit detected");
    assert_eq!(broken.seq, outcome);
    assert!(broken.reason.contains("内容被改动"), "{}", broken.reason);
    client.execute("UPDATE access_log SET completes = completes - 2 WHERE seq = $1", &[&outcome]).await.expect("undo");
    assert_eq!(access_log::verify_chain(&pool).await.expect("chain").broken, None);

    // The last record removed behind the writer's back: the chain alone
    // cannot tell, but the writer knows its tail, so the next record leaves
    // the gap where it was, and the check names it.
    client.execute("DELETE FROM access_log WHERE seq = 6", &[]).await.expect("delete");
    assert_eq!(access_log::verify_chain(&pool).await.expect("chain").broken, None);
    log.record(entry(0, person, ASKED, None)).await.expect("next query");
    let broken = access_log::verify_chain(&pool).await.expect("chain").broken.expect("deletion detected");
    assert_eq!(broken.seq, 7);
    assert!(broken.reason.contains("第 6 条") && broken.reason.contains("缺失"), "{}", broken.reason);
}

/// A flush writes what waits: the outcomes held back to share the next
/// query's append are committed when it returns, and the numbers a flush
/// shares a batch with stay right. A stopping service flushes last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_commits_the_outcomes_waiting_for_company() {
    let db = TestDb::create().await.expect("db");
    let pool = dibao_platform::store::db::connect(&db.settings("hub")).await.expect("pool");
    access_log::migrate(&pool).await.expect("migrate");
    let log = AccessLog::start(pool.clone());
    let person = "110101199003074514";
    let asked = log.record(entry(0, person, ASKED, None)).await.expect("query recorded");
    log.record_outcome(entry(0, person, "answered: 2 records", Some(asked)));
    log.flush().await.expect("flush");
    let client = pool.get().await.expect("client");
    let n: i64 = client.query_one("SELECT count(*) FROM access_log", &[]).await.expect("count").get(0);
    assert_eq!(n, 2, "the outcome waited past the flush");
    // A flush in the same batch as records takes no number of its own.
    let (a, _, b) =
        tokio::join!(log.record(entry(0, person, ASKED, None)), log.flush(), log.record(entry(0, person, ASKED, None)));
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!((a, b), (3, 4));
    let check = access_log::verify_chain(&pool).await.expect("chain");
    assert_eq!((check.records, check.broken), (4, None));
}
