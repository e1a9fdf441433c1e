//! Verification benchmark (issue 5's figures), everything real and on this
//! machine: the department simulator, the eight adapters and the hub over
//! mTLS, civil affairs for the county policy, Postgres, Tansu.
//!
//! cargo run --release -p dibao-demos --example verify_bench [-- SECONDS [checks|peak|paced|campaign] [RATES]]
//!
//! RATES are the paced rates of part 2, comma-separated (default 25,50,100,1000).
//! `VERIFY_BENCH_FETCH_WAIT_MS=500` lets civil affairs' consumer wait that
//! long a fetch instead of the service's default (a trial of what the
//! broker's polling costs the checks; Tansu holds a fetch for its whole wait).
//! `checks` runs parts 1 and 2 (`peak` and `paced` one of them), `campaign`
//! part 3 (each on a fresh mesh, so one part's connections and backlog never
//! weigh on the other); `checks` and `campaign` by default.
//!
//! A check is one person verified against all eight departments (fourteen
//! items, eight adapter queries, twelve department requests: the bank's
//! query fans out to four banks and medical insurance answers in two); at
//! peak the first six departments alone (eleven items, nine requests) run
//! beside it.
//! Prints:
//! 1. peak checks/s with zero department latency (closed loop), and per
//!    core: of this process (hub, adapters, simulator) and of the machine
//!    (everything, Postgres included);
//! 2. latency p50/p99 at paced rates up to 1,000 checks/s with 20 ms
//!    department latency, beside the departments' own p99 (request to
//!    answer, as the simulator measured it; the slowest department's), and
//!    the mesh's own part check by check (the check less its slowest
//!    department's answer to it; before the first request, after the last
//!    answer);
//! 3. a bulk campaign's department queries per second against each
//!    department's rate limit.
//!
//! With parts 1 and 2 it prints where the machine's CPU goes: the cores each
//! part keeps busy at rest (before part 1) and in each phase, and the CPU a
//! check adds to each — the mesh (hub, adapters, civil affairs: this
//! process less the simulator, which runs on threads of its own), each
//! service's Postgres backends, Postgres's own processes, the broker, the
//! simulator and its Postgres reads — and from the peak, the cores the mesh
//! with its Postgres and broker would keep busy at 1,000 checks/s.

use dibao_test_mesh::verification as mesh;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dibao_proto::common::v1::{DivisionCode, IdentityNumber};
use dibao_proto::verification::v1::StartCampaignRequest;
use dibao_synthetic::simulator::Behaviour;
use mesh::{Mesh, Options, today};

const DEPARTMENTS: [&str; 8] = [
    "public_security",
    "human_resources",
    "housing",
    "commerce",
    "bank",
    "tax",
    "disability_federation",
    "medical_insurance",
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// User + system CPU seconds in a `/proc/…/stat` line (fields 14 and 15 of
/// proc(5), counted after the command name; USER_HZ is 100 on Linux).
fn cpu_of_stat(stat: &str) -> f64 {
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// User + system CPU seconds of this process.
fn process_cpu() -> f64 {
    cpu_of_stat(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// Busy CPU seconds of the whole machine.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (v.iter().sum::<f64>() - idle) / 100.0
}

/// Where the machine's CPU goes, by part: the department simulator's
/// threads; the rest of this process (the mesh: hub, eight adapters, civil
/// affairs); each service's Postgres backends (by the application name
/// every pool gives its connections); Postgres's own processes; the broker.
const SIMULATOR: &str = "department simulator";
const SIMULATOR_DB: &str = "department simulator's Postgres reads";
const MESH: &str = "mesh (hub, eight adapters, civil affairs)";
const BROKER: &str = "broker (Tansu)";
const POSTGRES_OWN: &str = "Postgres's own processes";

async fn cpu_by_part(pool: &deadpool_postgres::Pool) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut parts: BTreeMap<String, f64> = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let cpu = cpu_of_stat(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        let part = if comm.starts_with("dept-simulator") { SIMULATOR } else { MESH };
        *parts.entry(part.to_owned()).or_default() += cpu;
    }
    let client = pool.get().await?;
    let backends: HashMap<i32, String> = client
        .query("SELECT pid, application_name FROM pg_stat_activity", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for process in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let comm = std::fs::read_to_string(process.path().join("comm")).unwrap_or_default();
        let part = match comm.trim() {
            "tansu" => BROKER.to_owned(),
            "postgres" => match backends.get(&pid).and_then(|a| a.strip_prefix("dibao-mesh/")) {
                Some("simulator") => SIMULATOR_DB.to_owned(),
                Some(schema) if schema.starts_with("adapter_") => "Postgres for the adapters".to_owned(),
                Some(schema) => format!("Postgres for {schema}"),
                None => POSTGRES_OWN.to_owned(),
            },
            _ => continue,
        };
        *parts.entry(part).or_default() +=
            cpu_of_stat(&std::fs::read_to_string(process.path().join("stat")).unwrap_or_default());
    }
    Ok(parts)
}

/// Cores each part kept busy between two samples `wall` seconds apart.
type Cores = BTreeMap<String, f64>;

fn cores(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, wall: f64) -> Cores {
    after.iter().map(|(part, s)| (part.clone(), (s - before.get(part).copied().unwrap_or(0.0)) / wall)).collect()
}

/// The cores each part keeps busy while the mesh waits for work (the
/// broker's consumers polling it, the relays polling their outboxes).
async fn at_rest(m: &Mesh) -> anyhow::Result<Cores> {
    let (before, t0) = (cpu_by_part(&m.hub_pool).await?, Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rest = cores(&before, &cpu_by_part(&m.hub_pool).await?, t0.elapsed().as_secs_f64());
    let line: Vec<String> = rest.iter().map(|(part, c)| format!("{part} {c:.2}")).collect();
    println!("at rest, cores busy: {}", line.join("; "));
    Ok(rest)
}

/// Prints the cores each part kept busy at `rate` checks/s and the CPU a
/// check adds to each (beyond its load at rest); with `project`, what the
/// mesh with its Postgres and broker (all but the departments' simulator)
/// would keep busy at 1,000 checks/s.
fn print_cpu(rest: &Cores, busy: &Cores, rate: f64, project: bool) {
    let (mut fixed, mut per_check) = (0.0, 0.0);
    let mut line = Vec::new();
    for (part, c) in busy {
        let idle = rest.get(part).copied().unwrap_or(0.0);
        let ms = 1000.0 * (c - idle).max(0.0) / rate;
        if part != SIMULATOR && part != SIMULATOR_DB {
            fixed += idle;
            per_check += ms;
        }
        line.push(format!("{part} {c:.2} cores, {ms:.2} ms a check"));
    }
    println!("  CPU: {}", line.join("; "));
    if project {
        println!(
            "  the mesh with its Postgres and broker: {per_check:.2} ms of CPU a check beyond {fixed:.2} cores at rest, so 1,000 checks/s would keep {:.1} cores busy without the departments' simulator (this machine has 2)",
            fixed + per_check
        );
    }
}

fn fetch_wait_ms() -> Option<u32> {
    let ms = std::env::var("VERIFY_BENCH_FETCH_WAIT_MS").ok()?.parse().ok()?;
    println!("civil affairs' consumer waits up to {ms} ms a fetch (VERIFY_BENCH_FETCH_WAIT_MS)");
    Some(ms)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(15);
    match std::env::args().nth(2).as_deref() {
        Some("checks") => checks(seconds, true, true).await,
        Some("peak") => checks(seconds, true, false).await,
        Some("paced") => checks(seconds, false, true).await,
        Some("campaign") => campaign().await,
        _ => {
            checks(seconds, true, true).await?;
            campaign().await
        }
    }
}

async fn checks(seconds: u64, peak: bool, paced: bool) -> anyhow::Result<()> {
    let mut m = Mesh::start(Options {
        households: 600,
        report_deadline_ms: 5_000,
        campaign_concurrency: 16,
        rate_per_second: 0,
        department_concurrency: 256,
        departments_apart: true,
        consumer_fetch_wait_ms: fetch_wait_ms(),
        ..Options::default()
    })
    .await;
    // One consent per household, every member and item.
    let households: Vec<_> = m.province.iter().map(|(h, _)| h.clone()).collect();
    let mut consented = Vec::new();
    for h in &households {
        let consent = m.consent(h, today() - time::Duration::days(5), today() + time::Duration::days(365)).await;
        let request = m.verify_request(h, &consent);
        for member in &h.members {
            consented.push((request.clone(), member.identity_number.clone()));
        }
    }
    let consented = Arc::new(consented);
    println!(
        "verify_bench: {} households, {} persons with consent; {seconds} s per phase",
        households.len(),
        consented.len()
    );

    let check = {
        let consented = consented.clone();
        move |hub: &mut dibao_proto::verification::v1::verification_service_client::VerificationServiceClient<
            dibao_tests::OfficerChannel,
        >,
              n: usize,
              items: &[i32]| {
            let (mut req, person) = consented[n % consented.len()].clone();
            req.persons = vec![IdentityNumber { value: person }];
            req.items = items.to_vec();
            let mut hub = hub.clone();
            async move {
                let t = Instant::now();
                let r = hub.verify_household(req).await;
                (t, t.elapsed(), r.map(|r| r.into_inner().report.is_some_and(|r| r.complete)).unwrap_or(false))
            }
        }
    };

    let rest = at_rest(&m).await?;

    // 1. Peak, zero latency, closed loop: the six departments of the first
    // mesh (their eleven items) beside all eight (the disability federation
    // and medical insurance added), in the same run.
    let six: Vec<i32> = dibao_proto::departments::ALL[..6]
        .iter()
        .flat_map(|d| dibao_proto::departments::items_of(*d))
        .map(|i| *i as i32)
        .collect();
    let phases: Vec<(usize, &str, Vec<i32>)> = if peak {
        [16, 64]
            .into_iter()
            .flat_map(|c| [(c, "six departments", six.clone()), (c, "eight departments", Vec::new())])
            .collect()
    } else {
        Vec::new()
    };
    for (concurrency, asked, items) in phases {
        let items = Arc::new(items);
        let done = Arc::new(AtomicU64::new(0));
        let incomplete = Arc::new(AtomicU64::new(0));
        let parts0 = cpu_by_part(&m.hub_pool).await?;
        let (cpu0, busy0, t0) = (process_cpu(), machine_busy(), Instant::now());
        let stop = t0 + Duration::from_secs(seconds);
        let mut workers = Vec::new();
        for w in 0..concurrency {
            let (mut hub, done, incomplete, check) = (m.hub.clone(), done.clone(), incomplete.clone(), check.clone());
            let items = items.clone();
            workers.push(tokio::spawn(async move {
                let mut n = w * 7919;
                while Instant::now() < stop {
                    let (_, _, complete) = check(&mut hub, n, &items).await;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                    if !complete {
                        incomplete.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        let wall = t0.elapsed().as_secs_f64();
        let (cpu, busy) = (process_cpu() - cpu0, machine_busy() - busy0);
        let rate = done.load(Ordering::Relaxed) as f64 / wall;
        println!(
            "peak, zero latency, {asked}, {concurrency} in flight: {rate:.0} checks/s ({} incomplete); this process {:.2} cores → {:.0} checks/s per core; machine {:.2} cores busy → {:.0} checks/s per busy core",
            incomplete.load(Ordering::Relaxed),
            cpu / wall,
            rate / (cpu / wall),
            busy / wall,
            rate / (busy / wall)
        );
        // The report events' publishing is part of a check's cost.
        settle(&m).await?;
        let total = t0.elapsed().as_secs_f64();
        let busy = cores(&parts0, &cpu_by_part(&m.hub_pool).await?, total);
        print_cpu(&rest, &busy, done.load(Ordering::Relaxed) as f64 / total, true);
    }

    // 2. Paced, 20 ms at every department; each rate starts once what the
    // previous phase left (report events not yet on the broker) is gone.
    if peak {
        settle(&m).await?;
    }
    for d in DEPARTMENTS {
        m.simulator.set(d, Behaviour { latency_ms: 20, ..Default::default() });
    }
    let rates: Vec<u64> = std::env::args()
        .nth(3)
        .map(|r| r.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![25, 50, 100, 1_000]);
    let rates = if paced { rates } else { vec![] };
    for rate in rates {
        m.simulator.reset_answer_times();
        m.simulator.keep_answers();
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let total = rate * seconds;
        let parts0 = cpu_by_part(&m.hub_pool).await?;
        // The checks are sent from a thread of their own, at their due
        // times to within the OS's sleep precision: tokio's timer rounds
        // up to the next millisecond and shares the mesh's two workers,
        // which would make the sender, not the mesh, late.
        let runtime = tokio::runtime::Handle::current();
        let hub = m.hub.clone();
        let check = check.clone();
        let sender = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut tasks = Vec::with_capacity(total as usize);
            for n in 0..total {
                let due = t0 + interval * n as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut hub = hub.clone();
                let fut = check(&mut hub, n as usize * 13, &[]);
                tasks.push(runtime.spawn(async move {
                    let (sent, took, complete) = fut.await;
                    // Latency from when the check was due, so a backlog
                    // counts; and from when it was sent.
                    (due.elapsed().as_secs_f64() * 1000.0, sent, took, complete)
                }));
            }
            (t0, tasks)
        });
        let (t0, tasks) = tokio::task::spawn_blocking(move || sender.join())
            .await?
            .map_err(|_| anyhow::anyhow!("sender panicked"))?;
        let (mut lat, mut sent) = (Vec::with_capacity(tasks.len()), Vec::with_capacity(tasks.len()));
        let mut incomplete = 0;
        let mut checks = Vec::with_capacity(tasks.len());
        for (n, t) in tasks.into_iter().enumerate() {
            let (ms, at, took, complete) = t.await?;
            lat.push(ms);
            sent.push(took.as_secs_f64() * 1000.0);
            incomplete += usize::from(!complete);
            checks.push((consented[(n * 13) % consented.len()].1.clone(), at, took));
        }
        let mesh = MeshTime::of(&checks, &m.simulator.take_answers());
        let wall = t0.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        sent.sort_by(f64::total_cmp);
        // The departments' own answer times, as the simulator measured them.
        let (slowest, slowest_p99) = DEPARTMENTS
            .iter()
            .map(|d| (*d, m.simulator.answer_time(d, 0.99).map_or(f64::NAN, |t| t.as_secs_f64() * 1000.0)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or(("", f64::NAN));
        let p99 = percentile(&lat, 0.99);
        settle(&m).await?;
        let parts = cpu_by_part(&m.hub_pool).await?;
        println!(
            "paced {rate} checks/s offered, 20 ms department latency: {:.0} checks/s achieved, latency p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms (from sending: p50 {:.1}, p99 {:.1} ms; {incomplete} incomplete); slowest department p99 {slowest_p99:.1} ms ({slowest}), target p99 ≤ {:.1} ms: {}",
            total as f64 / wall,
            percentile(&lat, 0.5),
            lat.last().copied().unwrap_or(f64::NAN),
            percentile(&sent, 0.5),
            percentile(&sent, 0.99),
            slowest_p99 + 2.0,
            if p99 <= slowest_p99 + 2.0 { "met" } else { "missed" }
        );
        mesh.print();
        let elapsed = t0.elapsed().as_secs_f64();
        print_cpu(&rest, &cores(&parts0, &parts, elapsed), total as f64 / elapsed, false);
    }

    Ok(())
}

/// The mesh's own part of each check, set beside the departments' answers
/// to that check's person (as the simulator saw them): the check's time
/// less its slowest department's answer time; before the first department
/// received its request; after the last department answered.
struct MeshTime {
    own: Vec<f64>,
    before: Vec<f64>,
    after: Vec<f64>,
}

impl MeshTime {
    fn of(checks: &[(String, Instant, Duration)], answers: &[dibao_synthetic::simulator::Answered]) -> Self {
        let mut by_person: std::collections::HashMap<&str, Vec<&dibao_synthetic::simulator::Answered>> =
            std::collections::HashMap::new();
        for a in answers {
            by_person.entry(a.person.as_str()).or_default().push(a);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut t = Self { own: Vec::new(), before: Vec::new(), after: Vec::new() };
        for (person, sent, took) in checks {
            let end = *sent + *took;
            let mine: Vec<_> = by_person
                .get(person.as_str())
                .into_iter()
                .flatten()
                .filter(|a| a.received >= *sent && a.received <= end)
                .collect();
            let (Some(slowest), Some(first), Some(last)) = (
                mine.iter().map(|a| a.took).max(),
                mine.iter().map(|a| a.received).min(),
                mine.iter().map(|a| a.received + a.took).max(),
            ) else {
                continue;
            };
            t.own.push(ms(took.saturating_sub(slowest)));
            t.before.push(ms(first - *sent));
            t.after.push(ms(end.saturating_duration_since(last)));
        }
        for v in [&mut t.own, &mut t.before, &mut t.after] {
            v.sort_by(f64::total_cmp);
        }
        t
    }

    fn print(&self) {
        let q = |v: &[f64]| format!("p50 {:.1}, p99 {:.1} ms", percentile(v, 0.5), percentile(v, 0.99));
        println!(
            "  the mesh's own part of each check ({} checks matched to their department answers): check less its slowest answer {}; before the first department is asked {}; after the last answers {}",
            self.own.len(),
            q(&self.own),
            q(&self.before),
            q(&self.after)
        );
    }
}

/// Waits until the hub's outbox has published every report event, so one
/// phase's backlog is not charged to the next.
async fn settle(m: &Mesh) -> anyhow::Result<()> {
    let client = m.hub_pool.get().await?;
    let t0 = Instant::now();
    loop {
        let pending: i64 =
            client.query_one("SELECT count(*) FROM outbox WHERE published_at IS NULL", &[]).await?.get(0);
        if pending == 0 || t0.elapsed() > Duration::from_secs(300) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// 3. A campaign against a rate limit of `limit` queries/s per department.
async fn campaign() -> anyhow::Result<()> {
    let limit = 50;
    let mut m = Mesh::start(Options {
        households: 600,
        report_deadline_ms: 10_000,
        campaign_concurrency: 32,
        rate_per_second: limit,
        departments_apart: true,
        consumer_fetch_wait_ms: fetch_wait_ms(),
        // The county's roster is the campaign's, put there below.
        on_roster: false,
        ..Options::default()
    })
    .await;
    for d in DEPARTMENTS {
        m.simulator.set(d, Behaviour { latency_ms: 20, ..Default::default() });
    }
    let county = m.province[0].0.county().to_owned();
    let in_county: Vec<_> = m
        .province
        .iter()
        .filter(|(h, _)| h.county() == county && h.members.len() >= 2)
        .map(|(h, _)| h.clone())
        .collect();
    let rows: Vec<_> = in_county
        .iter()
        .enumerate()
        .map(|(i, h)| dibao_proto::civil_affairs::v1::ImportRosterRequest {
            row: i as i64 + 2,
            household: Some(mesh::roster_household(h)),
        })
        .collect();
    m.civil.import_roster(tokio_stream::iter(rows)).await?;
    for h in &in_county {
        m.consent(h, today() - time::Duration::days(5), today() + time::Duration::days(365)).await;
    }
    let persons: usize = in_county.iter().map(|h| h.members.len()).sum();
    let before: Vec<u64> = DEPARTMENTS.iter().map(|d| m.simulator.requests(d)).collect();
    let t0 = Instant::now();
    let mut progress = m
        .hub
        .start_campaign(StartCampaignRequest {
            division: Some(DivisionCode { code: county.clone() }),
            purpose: "集中核查基准测试".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut last = None;
    while let Some(p) = progress.message().await? {
        last = Some(p);
    }
    let wall = t0.elapsed().as_secs_f64();
    let last = last.ok_or_else(|| anyhow::anyhow!("no progress"))?;
    println!(
        "campaign: {} households ({persons} persons) in {wall:.1} s, {} done, {} failed; limit {limit} queries/s per department",
        in_county.len(),
        last.households_done,
        last.households_failed
    );
    for (i, d) in DEPARTMENTS.iter().enumerate() {
        // The bank's adapter is one query per person for the hub (fanned out to four banks behind it).
        let asked = m.simulator.requests(d) - before[i];
        let per_person = if *d == "bank" { 4.0 } else { 1.0 };
        let rate = asked as f64 / per_person / wall;
        println!("  {d}: {rate:.1} queries/s = {:.0} % of the limit", 100.0 * rate / f64::from(limit));
    }
    Ok(())
}
