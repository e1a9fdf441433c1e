//! How soon a roster change shows in the continuous comparison's lists
//! (issue 6: "a roster change updates the affected lists within a second"):
//!
//! cargo run --release -p dibao-demos --example continuous_bench [-- RATE SECONDS HOUSEHOLDS]
//!
//! Civil affairs, the poverty office and the comparison run in this process
//! over mTLS, with a fresh database and a Tansu broker of their own. Civil
//! affairs imports HOUSEHOLDS dibao households (default 20,000) and the
//! comparison's view takes them in (each a list (b) entry). Then the poverty
//! office registers, RATE a second (default 100) for SECONDS (default 30),
//! households with the members of dibao households: each turns a (b) entry
//! into a (c) entry. A poller reads the continuous lists every 10 ms;
//! latency is from the registration's commit (its RPC returned) to its
//! household in a (c) entry. Prints p50, p99 and the largest.

use dibao_test_mesh::rosters as mesh;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::common::v1::OfficerRole;
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_synthetic::rosters::{self, RosterConfig, Row};
use dibao_tests::officer;
use tokio::sync::Mutex;

/// When each registered household was committed or first seen.
type Seen = HashMap<String, Instant>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rate = args.first().copied().unwrap_or(100);
    let seconds = args.get(1).copied().unwrap_or(30);
    let households = args.get(2).copied().unwrap_or(20_000) as usize;
    let mut mesh = mesh::start().await;

    // Dibao households only: every planted row of the dibao side, none of the poverty side yet.
    let mut dibao = Vec::new();
    rosters::plant(
        &RosterConfig::new(7, households),
        |r| {
            if let Row::Dibao(d) = r {
                dibao.push(d)
            }
        },
        |_| {},
    );
    let requests: Vec<ca::ImportRosterRequest> = dibao
        .iter()
        .enumerate()
        .map(|(i, d)| ca::ImportRosterRequest { row: i as i64 + 2, household: Some(d.to_civil_affairs()) })
        .collect();
    let started = Instant::now();
    let imported = mesh.civil.import_roster(futures_util::stream::iter(requests)).await?.into_inner();
    anyhow::ensure!(imported.errors.is_empty(), "civil affairs refused rows: {:?}", &imported.errors[..1]);
    let client = mesh.env.db.client().await?;
    loop {
        let n: i64 =
            client.query_one("SELECT count(*) FROM roster_comparison.live_entry WHERE kind = 'b'", &[]).await?.get(0);
        if n as usize >= dibao.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "setup: {} dibao households imported and in the comparison's lists in {:.1} s",
        dibao.len(),
        started.elapsed().as_secs_f64()
    );

    // The poller: every (c) entry written since the last look, by the
    // registered-poor households it names.
    // Registrations committed and not yet seen; and households seen before
    // their registration's task noted its commit (a fast pipeline can win).
    let pending: Arc<Mutex<(Seen, Seen)>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (pending, latencies, stop) = (pending.clone(), latencies.clone(), stop.clone());
        let client = mesh.env.db.client().await?;
        tokio::spawn(async move {
            let mut seen: i64 = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let rows = client
                    .query(
                        "SELECT position, households FROM roster_comparison.live_entry WHERE kind = 'c' AND position > $1",
                        &[&seen],
                    )
                    .await
                    .unwrap_or_default();
                let now = Instant::now();
                let mut guard = pending.lock().await;
                let (pending, early) = &mut *guard;
                for row in rows {
                    seen = seen.max(row.get(0));
                    for h in row.get::<_, Vec<String>>(1) {
                        if let Some(p) = h.strip_prefix("p:") {
                            match pending.remove(p) {
                                Some(t0) => latencies.lock().await.push(now.duration_since(t0).as_secs_f64() * 1000.0),
                                None => {
                                    early.entry(p.to_owned()).or_insert(now);
                                }
                            }
                        }
                    }
                }
                drop(guard);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Registrations at RATE a second, each with its own task.
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, d) in dibao.iter().take(total).enumerate() {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let mut poverty = mesh.poverty.clone();
        let pending = pending.clone();
        let latencies = latencies.clone();
        let household = rosters::PoorRow {
            id: format!("PB{i:08}"),
            village: d.village.clone(),
            status: rosters::PoorStatus::InPoverty,
            flagged: false,
            members: d.members.clone(),
        }
        .to_poverty_alleviation();
        tasks.push(tokio::spawn(async move {
            let response = poverty
                .register_household(officer(
                    OfficerRole::PovertyOfficer,
                    "520102",
                    pa::RegisterHouseholdRequest { household: Some(household) },
                ))
                .await;
            let committed = Instant::now();
            if let Ok(r) = response {
                let id = r.into_inner().household_id;
                let mut guard = pending.lock().await;
                let (pending, early) = &mut *guard;
                match early.remove(&id) {
                    Some(t1) => {
                        latencies.lock().await.push(t1.saturating_duration_since(committed).as_secs_f64() * 1000.0)
                    }
                    None => {
                        pending.insert(id, committed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let offered = started.elapsed().as_secs_f64();
    // Let the last ones arrive (or give up after 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.lock().await.0.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = poller.await;
    let mut l = latencies.lock().await.clone();
    l.sort_by(f64::total_cmp);
    let missing = pending.lock().await.0.len();
    println!(
        "{} registrations offered at {rate}/s over {offered:.1} s; {} seen in a (c) entry, {missing} not within 30 s after the last",
        total,
        l.len()
    );
    println!(
        "latency commit -> continuous list: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target: within 1 s)",
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
