//! The gateway's cost: requests per second per core of the gateway, and the
//! latency it adds, beside calling the service directly in the same run.
//!
//! cargo run --release -p dibao-demos --example gateway_bench [SECONDS [IN_FLIGHT]]
//!
//! Civil affairs and the gateway run as their own processes (their
//! binaries, `cargo build --release --bins` first), so the gateway's CPU is
//! its process's alone. The call is `GetPolicy` (one indexed read): through
//! the gateway an officer's session is looked up, a fresh assertion signed
//! for the service and the call forwarded over mTLS; directly the bench
//! signs the same assertion itself and calls over mTLS. Peak: `IN_FLIGHT`
//! calls kept in flight for `SECONDS`; the gateway's requests per second per
//! core are the requests it forwarded over the CPU seconds its process used.
//! Then both paths paced at half the gateway's peak: p50 and p99 of each,
//! and their difference.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dibao_platform::runtime::server::CallerChannel;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, OfficerRole, YearMonth};
use dibao_tests::TestEnv;

const COUNTY: &str = "220581";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// User + system CPU seconds of process `pid` (USER_HZ 100).
fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Starts `binary` with `vars`; its pid and the address it prints.
async fn process(name: &str, vars: &HashMap<String, String>) -> anyhow::Result<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt;
    let bin = dibao_tests::service_binary(name);
    let mut child = tokio::process::Command::new(bin)
        .envs(vars)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let marker = format!("{name} listening on ");
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix(&marker) {
                return Ok::<_, anyhow::Error>(addr.to_owned());
            }
        }
        anyhow::bail!("{name} exited before listening")
    })
    .await??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

async fn get_policy(c: &mut CivilAffairsServiceClient<CallerChannel>) -> bool {
    let now = time::OffsetDateTime::now_utc();
    c.get_policy(ca::GetPolicyRequest {
        county: Some(DivisionCode { code: COUNTY.into() }),
        month: Some(YearMonth { year: now.year(), month: i32::from(now.month() as u8) }),
    })
    .await
    .is_ok()
}

/// Calls kept `in_flight` for `seconds`: completed calls per second.
async fn peak(client: &CivilAffairsServiceClient<CallerChannel>, seconds: u64, in_flight: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (mut c, done, stop) = (client.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if get_policy(&mut c).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Calls at `rate` per second for `seconds`: each call's latency, ms, sorted.
async fn paced(client: &CivilAffairsServiceClient<CallerChannel>, rate: f64, seconds: u64) -> Vec<f64> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let n = (rate * seconds as f64) as usize;
    let started = Instant::now();
    let mut calls = Vec::with_capacity(n);
    for i in 0..n {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let mut c = client.clone();
        calls.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = get_policy(&mut c).await;
            (ok, t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for c in calls {
        if let Ok((true, ms)) = c.await {
            latencies.push(ms);
        }
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let in_flight: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let env = TestEnv::start().await;
    let (mut civil_process, civil_addr) = process("civil-affairs", &env.vars("civil-affairs")).await?;
    let civil_addr: std::net::SocketAddr = civil_addr.parse()?;
    let how = dibao_test_mesh::gateway::spawn_vars(&env, &[("civil-affairs", civil_addr)]);
    let mut vars = env.vars("gateway");
    vars.extend(how.vars.iter().cloned());
    // The registry's first administrator, as `dibao-officers bootstrap` makes them; then an officer.
    let pool = dibao_platform::store::db::connect_and_migrate(
        &env.db.settings("gateway"),
        &[("service", dibao_gateway::startup::MIGRATIONS)],
    )
    .await?;
    let key = dibao_gateway::secrets::SecretKey::load(&env.certs.join("gateway-secret.key"))?;
    let officer = dibao_gateway::registry::Officer {
        officer_id: "bench-approver".into(),
        name: "基准测试审批员".into(),
        roles: vec![OfficerRole::CountyApprover],
        division: dibao_proto::types::DivisionCode::parse(COUNTY).map_err(|e| anyhow::anyhow!("{e}"))?,
        status: dibao_gateway::registry::Status::Active,
        identity_number: None,
        oidc_subject: None,
        locked_until: None,
    };
    let creds = dibao_gateway::admin::create(&pool, &key, time::OffsetDateTime::now_utc(), &officer, "bench")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut gateway_process, gateway_addr) = process("gateway", &vars).await?;
    let gateway_pid = gateway_process.id().unwrap_or(0);
    let code = dibao_gateway::client::totp_code(&creds.totp_secret, time::OffsetDateTime::now_utc().unix_timestamp())
        .ok_or_else(|| anyhow::anyhow!("secret"))?;
    let login = dibao_gateway::client::login(
        &gateway_addr,
        &env.certs.join("ca.pem"),
        &officer.officer_id,
        &creds.one_time_password,
        &code,
    )
    .await
    .map_err(|(s, m)| anyhow::anyhow!("login {s}: {m}"))?;
    let ca = std::fs::read(env.certs.join("ca.pem"))?;
    let through = CivilAffairsServiceClient::new(
        dibao_gateway::client::channel(&gateway_addr, &ca, "localhost", &login.token)
            .await
            .map_err(anyhow::Error::msg)?,
    );
    let desk = env.desk("civil-affairs", OfficerRole::CountyApprover, COUNTY);
    let direct = CivilAffairsServiceClient::new(env.officer_channel(civil_addr, desk).await);
    // The county's policy, to read.
    let mut c = through.clone();
    c.save_policy(ca::SavePolicyRequest { policy: Some(dibao_test_mesh::verification::policy(COUNTY)) }).await?;
    // Warm both paths (connections, prepared statements).
    let _ = peak(&through, 2, in_flight).await;
    let _ = peak(&direct, 2, in_flight).await;

    let direct_peak = peak(&direct, seconds, in_flight).await;
    let (cpu0, t0) = (cpu_of(gateway_pid), Instant::now());
    let gateway_peak = peak(&through, seconds, in_flight).await;
    let gateway_cores = (cpu_of(gateway_pid) - cpu0) / t0.elapsed().as_secs_f64();
    println!("peak, {in_flight} in flight, {seconds} s each, GetPolicy:");
    println!("  directly to civil affairs: {direct_peak:.0} requests/s");
    println!(
        "  through the gateway: {gateway_peak:.0} requests/s, the gateway's process {gateway_cores:.2} cores busy → {:.0} requests/s per core of the gateway",
        gateway_peak / gateway_cores.max(0.01)
    );
    let rate = (gateway_peak / 2.0).max(1.0);
    let (cpu1, t1) = (cpu_of(gateway_pid), Instant::now());
    let via = paced(&through, rate, seconds).await;
    let paced_cores = (cpu_of(gateway_pid) - cpu1) / t1.elapsed().as_secs_f64();
    let straight = paced(&direct, rate, seconds).await;
    println!("paced at half the gateway's peak, {rate:.0} requests/s for {seconds} s:");
    println!(
        "  directly: p50 {:.2} ms, p99 {:.2} ms ({} calls)",
        percentile(&straight, 0.5),
        percentile(&straight, 0.99),
        straight.len()
    );
    println!(
        "  through the gateway: p50 {:.2} ms, p99 {:.2} ms ({} calls; the gateway {paced_cores:.2} cores busy)",
        percentile(&via, 0.5),
        percentile(&via, 0.99),
        via.len()
    );
    println!(
        "  added by the gateway: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&via, 0.5) - percentile(&straight, 0.5),
        percentile(&via, 0.99) - percentile(&straight, 0.99)
    );
    let machine = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!(
        "(all on this machine's {machine} cores: the bench, civil affairs, PostgreSQL and the gateway share them)"
    );
    gateway_process.kill().await?;
    civil_process.kill().await?;
    Ok(())
}
