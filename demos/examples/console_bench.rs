//! A county office's morning at the console: a county of 20,000 households
//! (every service of the mesh and the gateway, as the tests start them),
//! `OFFICERS` officers logged in at once, each opening their work list, an
//! application with its household, a verification report and a list of the
//! county's comparison, `ROUNDS` times over. Prints, per page, the time to
//! the whole answer (p50, p95; over one kept-alive HTTPS connection per
//! officer, so it is the gateway's and the services' time plus a loopback
//! round trip) and the bytes it sends.
//!
//! cargo build --release --bins && cargo run --release -p dibao-demos --example console_bench [HOUSEHOLDS [OFFICERS [ROUNDS]]]
//!
//! Targets (issue 20): p95 ≤ 150 ms, no page over 300 KB.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation};
use dibao_proto::comparison::v1 as cmp;
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::events::v1::BenefitCategory;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use dibao_test_mesh::gateway;

const COUNTY: &str = "220581";

fn id(n: usize) -> IdentityNumber {
    // Unique per n: a birth date a day apart for every 900 people.
    let birth = time::macros::date!(1950 - 01 - 01) + time::Duration::days((n / 900) as i64);
    let body = format!("{COUNTY}{:04}{:02}{:02}{:03}", birth.year(), birth.month() as u8, birth.day(), n % 900 + 100);
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn village(i: usize) -> String {
    format!("{COUNTY}{:03}{:03}", 101 + i % 10, 201 + (i / 10) % 10)
}

const SURNAMES: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
const GIVEN: [&str; 10] = ["建国", "秀英", "志强", "桂兰", "德福", "玉梅", "小燕", "海涛", "春生", "丽娟"];

fn member(n: usize, relation: Relation) -> ca::Member {
    ca::Member {
        person: Some(Person {
            identity_number: Some(id(n)),
            name: format!("{}{}", SURNAMES[n % 10], GIVEN[(n / 10) % 10]),
            ..Default::default()
        }),
        relation: relation as i32,
        work_ability: ca::WorkAbility::Partial as i32,
        covered: true,
        ..Default::default()
    }
}

fn household(i: usize) -> ca::Household {
    ca::Household {
        household_id: format!("MB-{i}"),
        village: Some(DivisionCode { code: village(i) }),
        category: BenefitCategory::C as i32,
        members: vec![member(2 * i, Relation::Head), member(2 * i + 1, Relation::Spouse)],
        monthly_amount: Some(Money { fen: 40_000 }),
        enrolled_on: Some(dibao_proto::common::v1::Date { year: 2025, month: 3, day: 1 }),
        ..Default::default()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let households = args.first().copied().unwrap_or(20_000);
    let officers = args.get(1).copied().unwrap_or(20);
    let rounds = args.get(2).copied().unwrap_or(5);

    let all = dibao_test_mesh::all::start().await;
    let upstreams: Vec<(&str, std::net::SocketAddr)> = all.addrs.iter().map(|(k, v)| (*k, *v)).collect();
    let gw = gateway::start(&all.env, &upstreams).await;
    let office = gw.officer("bench-office", &[OfficerRole::CountyApprover, OfficerRole::CountyOperator], COUNTY).await;
    let mut civil = CivilAffairsServiceClient::new(office.clone());
    civil.save_policy(ca::SavePolicyRequest { policy: Some(dibao_test_mesh::verification::policy(COUNTY)) }).await?;

    let started = Instant::now();
    let rows: Vec<ca::ImportRosterRequest> =
        (0..households).map(|i| ca::ImportRosterRequest { row: i as i64 + 1, household: Some(household(i)) }).collect();
    let imported = civil.import_roster(tokio_stream::iter(rows)).await?.into_inner();
    anyhow::ensure!(imported.errors.is_empty(), "import: {:?}", &imported.errors[..imported.errors.len().min(3)]);
    println!("county {COUNTY}: {households} households imported in {:.1} s", started.elapsed().as_secs_f64());

    // Applications waiting in every township, a verified household, a comparison run.
    let intake = gw.officer("bench-intake", &[OfficerRole::TownshipCaseworker], &format!("{COUNTY}101")).await;
    let mut applications = Vec::new();
    for i in 0..30 {
        let n = households + i;
        let mut h = household(n);
        h.village = Some(DivisionCode { code: village(i * 10) });
        h.household_id.clear();
        h.monthly_amount = None;
        h.enrolled_on = None;
        let submitted = CivilAffairsServiceClient::new(intake.clone())
            .submit_application(ca::SubmitApplicationRequest {
                household: Some(h),
                income: vec![ca::IncomeItem {
                    kind: ca::IncomeKind::Wage as i32,
                    label: "零工".into(),
                    monthly: Some(Money { fen: 20_000 }),
                    ..Default::default()
                }],
                supporters: vec![],
            })
            .await?
            .into_inner();
        applications.push(submitted.application_id);
    }
    let checker = gw.officer("bench-checker", &[OfficerRole::VerificationOfficer], COUNTY).await;
    let listed = civil
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: village(0) }),
            page: Some(dibao_proto::common::v1::PageRequest { page_size: 1, page_token: String::new() }),
        })
        .await?
        .into_inner()
        .households;
    let first = listed.first().ok_or_else(|| anyhow::anyhow!("no household"))?;
    let members: Vec<(IdentityNumber, &str, Relation)> = first
        .members
        .iter()
        .filter_map(|m| {
            let p = m.person.as_ref()?;
            Some((p.identity_number.clone()?, p.name.as_str(), Relation::try_from(m.relation).ok()?))
        })
        .collect();
    let report = dibao_test_mesh::verification::vehicles_checked(
        &mut VerificationServiceClient::new(checker),
        &first.household_id,
        &members,
        "低保复核",
    )
    .await
    .report_id;
    let db = all.env.db.client().await?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM roster_comparison.roster_household WHERE valid_to IS NULL AND side = 'dibao'",
                &[],
            )
            .await?
            .get(0);
        if n >= households as i64 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the comparison's view holds {n} of {households}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut run = ComparisonServiceClient::new(office.clone())
        .run_comparison(cmp::RunComparisonRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            reproduce_run_id: String::new(),
        })
        .await?
        .into_inner();
    while run.message().await?.is_some() {}
    println!(
        "setup: 30 applications, a verification report, a comparison run; {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The morning: every officer logged in, all at once.
    let mut tokens = Vec::new();
    for o in 0..officers {
        // County office staff; the caseworker's role puts the township's applications on their list.
        let roles = [OfficerRole::CountyApprover, OfficerRole::VerificationOfficer, OfficerRole::TownshipCaseworker];
        tokens.push(gw.token(&format!("officer-{o:02}"), &roles, COUNTY).await);
    }
    let base = format!("https://{}", gw.addr);
    let pages = [
        ("我的待办 /work", "/work".to_owned()),
        ("申请 /applications/{id}", String::new()),
        ("核对报告 /reports/{id}", format!("/reports/{report}")),
        ("台账比对 /comparison?kind=2", format!("/comparison?kind={}", cmp::ListKind::DibaoNotPoor as i32)),
    ];
    let morning = Instant::now();
    let mut tasks = Vec::new();
    for (o, token) in tokens.into_iter().enumerate() {
        let (ca_path, base, pages, applications) = (gw.ca.clone(), base.clone(), pages.clone(), applications.clone());
        tasks.push(tokio::spawn(async move {
            let client = dibao_gateway::https::KeepAlive::new(&ca_path).map_err(anyhow::Error::msg)?;
            let mut seen: Vec<(usize, f64, usize, u16)> = Vec::new();
            for r in 0..rounds {
                for (p, (_, path)) in pages.iter().enumerate() {
                    let path = if path.is_empty() {
                        format!("/applications/{}", applications[(o + r) % applications.len()])
                    } else {
                        path.clone()
                    };
                    let t = Instant::now();
                    let (status, body) =
                        client.get(&format!("{base}{path}"), &token).await.map_err(anyhow::Error::msg)?;
                    seen.push((p, t.elapsed().as_secs_f64() * 1000.0, body.len(), status.as_u16()));
                }
            }
            Ok::<_, anyhow::Error>(seen)
        }));
    }
    let mut by_page: BTreeMap<usize, (Vec<f64>, usize, Vec<u16>)> = BTreeMap::new();
    for task in tasks {
        for (p, ms, bytes, status) in task.await?? {
            let e = by_page.entry(p).or_default();
            e.0.push(ms);
            e.1 = e.1.max(bytes);
            e.2.push(status);
        }
    }
    println!(
        "the morning: {officers} officers at once, {rounds} rounds of {} pages each, {:.1} s",
        pages.len(),
        morning.elapsed().as_secs_f64()
    );
    for (p, (mut times, largest, statuses)) in by_page {
        times.sort_by(f64::total_cmp);
        let not_ok = statuses.iter().filter(|s| **s != 200).count();
        println!(
            "  {:<34} p50 {:>6.1} ms  p95 {:>6.1} ms  max {:>6.1} ms  largest {:>7} bytes{}",
            pages[p].0,
            percentile(&times, 0.50),
            percentile(&times, 0.95),
            times.last().copied().unwrap_or(f64::NAN),
            largest,
            if not_ok > 0 { format!("  ({not_ok} answers not 200)") } else { String::new() }
        );
    }
    println!(
        "targets: p95 <= 150 ms, no page over 300 KB (all on this machine's 2 cores: services, PostgreSQL, Tansu, gateway, the officers)"
    );
    Ok(())
}
