//! The two rosters under faults (R-SYNC-3): 1,000 random changes on both,
//! through each service's real binary, while the broker, each inbox and each
//! relay (each in a process of its own) are killed with SIGKILL at random and
//! Postgres is crashed and restarted once. Afterwards both sides agree
//! exactly, every event was applied once, nothing was lost.
//!
//! The civil-affairs binary is found beside this package's own; `cargo test
//! --workspace` builds both.

use dibao_test_mesh::exits as mesh;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::runtime::server::connect;
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::trust::officer::Claims;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::Relation;
use dibao_proto::common::v1::{Date, DivisionCode, IdentityNumber, Money, OfficerRole, Person};
use dibao_proto::events::v1::{BenefitCategory, PovertyCause, RosterMember};
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_tests::{Broker, Desk, OfficerChannel, PrivatePostgres, TestDb, free_port, random_prefix, service_env};
use std::sync::Arc;
use tokio::process::{Child, Command};
use tonic::service::interceptor::InterceptedService;

const COUNTY: &str = "220581";
const TOWNSHIP: &str = "220581101";
const VILLAGE: &str = "220581101201";
const CHANGES: usize = 1_000;
const PERSONS: u32 = 900;

/// Small, seeded, reproducible: the seed is printed, `SYNC_FAULTS_SEED` replays it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn identity(k: u32) -> IdentityNumber {
    let body = format!("{COUNTY}1960{:02}{:02}{:03}", 1 + k / 28_000 % 12, 1 + k / 1000 % 28, k % 1000);
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn person(k: u32) -> Option<Person> {
    Some(Person { identity_number: Some(identity(k)), name: format!("村民{k}"), ..Default::default() })
}

/// `message` as a call of an officer of `role` serving the township.
fn officer<T>(role: OfficerRole, message: T) -> tonic::Request<T> {
    dibao_tests::officer(role, TOWNSHIP, message)
}

fn relation(i: usize) -> i32 {
    (if i == 0 { Relation::Head } else { Relation::Child }) as i32
}

/// One service role in a process of its own.
struct Process {
    name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    logs: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{}.log", self.name)))
            .expect("log file");
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "info,rdkafka=warn")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// Started again if it exited on its own (e.g. it was restarted while
    /// the broker was down and gave up waiting for it).
    fn keep_running(&mut self) {
        let exited = match self.child.as_mut() {
            Some(c) => c.try_wait().ok().flatten().is_some(),
            None => false,
        };
        if exited {
            self.spawn();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.logs.join(format!("{}.log", self.name))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- {} ---\n{}", self.name, lines[lines.len().saturating_sub(15)..].join("\n"))
    }
}

struct Mesh {
    civil: CivilAffairsServiceClient<OfficerChannel>,
    poverty: PovertyAlleviationServiceClient<OfficerChannel>,
    /// civil relay, civil inbox, poverty relay, poverty inbox.
    workers: Vec<Process>,
    /// The API processes, never killed.
    apis: Vec<Process>,
    /// The test's own connection, for ids and the final accounting.
    sql: tokio_postgres::Client,
    civil_addr: String,
    poverty_addr: String,
}

impl Mesh {
    fn logs(&self) -> String {
        self.apis.iter().chain(&self.workers).map(Process::log_tail).collect::<Vec<_>>().join("\n")
    }
}

async fn start(db: &TestDb, broker: &Broker, certs: &Path, logs: &Path) -> Mesh {
    let prefix = random_prefix();
    let poverty_bin = dibao_tests::service_binary("poverty-alleviation");
    let civil_bin = dibao_tests::service_binary("civil-affairs");
    let role = |service: &str, binary: &Path, name: &str, relay: bool, inbox: bool, port: u16| {
        let env_name = service.to_ascii_uppercase().replace('-', "_");
        let mut env = service_env(service, db, &service.replace('-', "_"), broker, &prefix, certs);
        env.push((format!("{env_name}__DATABASE__POOL_SIZE"), "4".to_owned()));
        env.push((format!("{env_name}__TELEMETRY__LOG_FORMAT"), "pretty".to_owned()));
        env.push((format!("{env_name}__SERVER__LISTEN"), format!("127.0.0.1:{port}")));
        env.push((format!("{env_name}__RUN__RELAY"), relay.to_string()));
        env.push((format!("{env_name}__RUN__INBOX"), inbox.to_string()));
        Process { name: name.to_owned(), binary: binary.to_owned(), env, logs: logs.to_owned(), child: None }
    };
    let (civil_port, poverty_port) = (free_port(), free_port());
    let mut apis = vec![
        role("civil-affairs", &civil_bin, "civil-api", false, false, civil_port),
        role("poverty-alleviation", &poverty_bin, "poverty-api", false, false, poverty_port),
    ];
    for api in &mut apis {
        api.spawn();
    }
    let read = |f: &str| std::fs::read_to_string(certs.join(f)).expect("pem");
    let tls = TlsMaterial::from_pem(&read("ca.pem"), &read("gateway.pem"), &read("gateway.key"));
    let channel = |port: u16| {
        let tls = tls.clone();
        async move {
            for _ in 0..300 {
                if let Ok(c) = connect(&tls, &format!("127.0.0.1:{port}"), "localhost").await {
                    return c;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("service on port {port} did not come up within 30 s")
        }
    };
    // Both offices of the township's county: import, register, record.
    let signer = Arc::new(dibao_ops_tools::devpki::officer_issuer(certs).expect("officer issuer"));
    let office = Claims {
        roles: vec![OfficerRole::CountyOperator, OfficerRole::CountyApprover, OfficerRole::PovertyOfficer],
        ..dibao_tests::claims(OfficerRole::CountyOperator, COUNTY)
    };
    let desk = |service: &str| Desk::new(signer.clone(), service, office.clone()).credentials();
    let civil =
        CivilAffairsServiceClient::new(InterceptedService::new(channel(civil_port).await, desk("civil-affairs")));
    let poverty = PovertyAlleviationServiceClient::new(InterceptedService::new(
        channel(poverty_port).await,
        desk("poverty-alleviation"),
    ));
    // Migrations ran in the API processes; the workers start on a migrated schema.
    let mut workers = vec![
        role("civil-affairs", &civil_bin, "civil-relay", true, false, 0),
        role("civil-affairs", &civil_bin, "civil-inbox", false, true, 0),
        role("poverty-alleviation", &poverty_bin, "poverty-relay", true, false, 0),
        role("poverty-alleviation", &poverty_bin, "poverty-inbox", false, true, 0),
    ];
    for w in &mut workers {
        w.spawn();
    }
    Mesh {
        civil,
        poverty,
        workers,
        apis,
        sql: db.client().await.expect("db"),
        civil_addr: format!("127.0.0.1:{civil_port}"),
        poverty_addr: format!("127.0.0.1:{poverty_port}"),
    }
}

/// The driver's own record of both rosters, to choose valid changes.
#[derive(Default)]
struct Model {
    /// Source id -> (members, category B?, exited, any member dead).
    dibao: Vec<(String, Vec<u32>, bool, bool, bool)>,
    /// Source id -> (members, poverty status, any member dead).
    poor: Vec<(String, Vec<u32>, pa::PovertyStatus, bool)>,
    civil_owner: HashMap<u32, usize>,
    poor_owner: HashMap<u32, usize>,
    dead: BTreeSet<u32>,
    persons_used: BTreeSet<u32>,
}

impl Model {
    /// 1-3 persons free on `side`'s roster, often members of the other roster.
    fn pick(&self, rng: &mut Rng, civil_side: bool) -> Vec<u32> {
        // A dibao household of one needs one of the three single-person
        // grounds (R-ROSTER-4); the driver keeps to households of two or three.
        let n = if civil_side { 2 + rng.below(2) } else { 1 + rng.below(3) };
        let mut out = Vec::new();
        for _ in 0..20 {
            if out.len() == n {
                break;
            }
            let other: Vec<u32> = if civil_side {
                self.poor_owner.keys().copied().collect()
            } else {
                self.civil_owner.keys().copied().collect()
            };
            let k = if !other.is_empty() && rng.chance(50) {
                other[rng.below(other.len())]
            } else {
                rng.below(PERSONS as usize) as u32
            };
            let owner = if civil_side { &self.civil_owner } else { &self.poor_owner };
            if !owner.contains_key(&k) && !self.dead.contains(&k) && !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// Whether a live one of `members` is on an enrolled dibao household:
    /// the flag an office that knows the dibao roster records.
    fn on_dibao(&self, members: &[u32]) -> bool {
        members.iter().any(|k| !self.dead.contains(k) && self.civil_owner.get(k).is_some_and(|i| !self.dibao[*i].3))
    }
}

fn dibao_row(source: &str, members: &[u32], category_b: bool) -> ca::ImportRosterRequest {
    ca::ImportRosterRequest {
        row: 2,
        household: Some(ca::Household {
            household_id: source.into(),
            village: Some(DivisionCode { code: VILLAGE.into() }),
            category: if category_b { BenefitCategory::B } else { BenefitCategory::A } as i32,
            members: members
                .iter()
                .enumerate()
                .map(|(i, k)| ca::Member {
                    person: person(*k),
                    relation: relation(i),
                    work_ability: ca::WorkAbility::None as i32,
                    covered: true,
                    ..Default::default()
                })
                .collect(),
            monthly_amount: Some(Money { fen: 60_000 }),
            ..Default::default()
        }),
    }
}

/// A line of the office's roster file; `flagged` is the office's own
/// dibao-registered-poor flag, as it records it (R-ROSTER-2).
fn poor_row(source: &str, members: &[u32], flagged: bool) -> pa::ImportRosterRequest {
    pa::ImportRosterRequest {
        row: 2,
        household: Some(pa::PoorHousehold {
            household_id: source.into(),
            village: Some(DivisionCode { code: VILLAGE.into() }),
            members: members
                .iter()
                .enumerate()
                .map(|(i, k)| RosterMember { person: person(*k), relation: relation(i), covered: false })
                .collect(),
            causes: vec![PovertyCause::Illness as i32],
            dibao_registered_poor: flagged,
            ..Default::default()
        }),
    }
}

async fn import_dibao(m: &mut Mesh, row: ca::ImportRosterRequest) {
    let r = m.civil.import_roster(tokio_stream::iter(vec![row])).await.expect("civil import").into_inner();
    assert!(r.errors.is_empty(), "civil import refused: {:?}", r.errors);
}

async fn import_poor(m: &mut Mesh, row: pa::ImportRosterRequest) {
    let r = m.poverty.import_roster(tokio_stream::iter(vec![row])).await.expect("poverty import").into_inner();
    assert!(r.errors.is_empty(), "poverty import refused: {:?}", r.errors);
}

/// The id a service gave the household it imported under the county's number `source`.
async fn id_of(m: &Mesh, table: &str, source: &str) -> String {
    m.sql
        .query_one(&format!("SELECT household_id::text FROM {table} WHERE source_id = $1"), &[&source])
        .await
        .expect("household by source id")
        .get(0)
}

/// One random change on one of the rosters; returns what it was.
async fn change(m: &mut Mesh, model: &mut Model, rng: &mut Rng, serial: usize) -> &'static str {
    let enrolled: Vec<usize> = (0..model.dibao.len()).filter(|i| !model.dibao[*i].3 && !model.dibao[*i].4).collect();
    let poor: Vec<usize> = (0..model.poor.len()).filter(|i| !model.poor[*i].3).collect();
    let roll = rng.below(100);
    match roll {
        0..=19 => {
            let members = model.pick(rng, true);
            if members.len() < 2 {
                return "nothing";
            }
            let source = format!("D{serial}");
            import_dibao(m, dibao_row(&source, &members, false)).await;
            let index = model.dibao.len();
            for k in &members {
                model.civil_owner.insert(*k, index);
                model.persons_used.insert(*k);
            }
            model.dibao.push((source, members, false, false, false));
            "dibao enrolment"
        }
        // An enrolled household's members change through the signed
        // process, not a re-import (which only adds new households).
        20..=36 if !enrolled.is_empty() => {
            let i = enrolled[rng.below(enrolled.len())];
            let mut members = model.dibao[i].1.clone();
            if members.len() > 2 && rng.chance(50) {
                let gone = members.pop().expect("member");
                model.civil_owner.remove(&gone);
            } else if let Some(k) = model.pick(rng, true).first() {
                members.push(*k);
                model.civil_owner.insert(*k, i);
            } else {
                return "nothing";
            }
            let id = id_of(m, "civil_affairs.household", &model.dibao[i].0).await;
            let listed = dibao_row(&model.dibao[i].0, &members, model.dibao[i].2).household.expect("household").members;
            m.civil
                .change_members(officer(
                    OfficerRole::TownshipCaseworker,
                    ca::ChangeMembersRequest { household_id: id, members: listed, reason: "家庭成员变更".into() },
                ))
                .await
                .expect("members changed");
            model.dibao[i].1 = members;
            "dibao composition"
        }
        37..=42 if !enrolled.is_empty() => {
            let i = enrolled[rng.below(enrolled.len())];
            let id = id_of(m, "civil_affairs.household", &model.dibao[i].0).await;
            mesh::exit_household(&mut m.civil, &id, TOWNSHIP).await;
            model.dibao[i].3 = true;
            "dibao exit"
        }
        43..=47 if !enrolled.is_empty() => {
            let i = enrolled[rng.below(enrolled.len())];
            let members = &model.dibao[i].1;
            let k = members[rng.below(members.len())];
            m.civil
                .record_death(officer(
                    OfficerRole::TownshipCaseworker,
                    ca::RecordDeathRequest {
                        identity_number: Some(identity(k)),
                        died_on: Some(Date { year: 2026, month: 10, day: 1 + (serial % 28) as i32 }),
                        source: "公安死亡登记".into(),
                    },
                ))
                .await
                .expect("civil death");
            mark_dead(model, k);
            "dibao death"
        }
        48..=67 => {
            let members = model.pick(rng, false);
            if members.is_empty() {
                return "nothing";
            }
            let source = format!("P{serial}");
            import_poor(m, poor_row(&source, &members, model.on_dibao(&members))).await;
            let index = model.poor.len();
            for k in &members {
                model.poor_owner.insert(*k, index);
                model.persons_used.insert(*k);
            }
            model.poor.push((source, members, pa::PovertyStatus::InPoverty, false));
            "poor registration"
        }
        68..=77 if !poor.is_empty() => {
            let i = poor[rng.below(poor.len())];
            let mut members = model.poor[i].1.clone();
            if members.len() > 1 && rng.chance(50) {
                let gone = members.pop().expect("member");
                model.poor_owner.remove(&gone);
            } else if let Some(k) = model.pick(rng, false).first() {
                members.push(*k);
                model.poor_owner.insert(*k, i);
            }
            if members == model.poor[i].1 {
                return "nothing";
            }
            let id = id_of(m, "poverty_alleviation.poor_household", &model.poor[i].0).await;
            let listed = poor_row(&model.poor[i].0, &members, false).household.expect("household").members;
            m.poverty
                .change_members(officer(
                    OfficerRole::PovertyOfficer,
                    pa::ChangeMembersRequest { household_id: id, members: listed, reason: "家庭成员变更".into() },
                ))
                .await
                .expect("poor members changed");
            model.poor[i].1 = members;
            "poor composition"
        }
        78..=92 if !poor.is_empty() => {
            let i = poor[rng.below(poor.len())];
            let next = if model.poor[i].2 == pa::PovertyStatus::Exited {
                pa::PovertyStatus::Returned
            } else {
                pa::PovertyStatus::Exited
            };
            let id = id_of(m, "poverty_alleviation.poor_household", &model.poor[i].0).await;
            m.poverty
                .change_status(officer(
                    OfficerRole::PovertyOfficer,
                    pa::ChangeStatusRequest {
                        household_id: id,
                        status: next as i32,
                        exit_year: 2024,
                        return_cause: PovertyCause::Illness as i32,
                    },
                ))
                .await
                .expect("change status");
            model.poor[i].2 = next;
            "poor status"
        }
        93..=99 if !poor.is_empty() => {
            let i = poor[rng.below(poor.len())];
            let members = &model.poor[i].1;
            let k = members[rng.below(members.len())];
            m.poverty
                .record_death(officer(
                    OfficerRole::PovertyOfficer,
                    pa::RecordDeathRequest {
                        identity_number: Some(identity(k)),
                        died_on: Some(Date { year: 2026, month: 10, day: 1 + (serial % 28) as i32 }),
                        source: "村委会报告".into(),
                    },
                ))
                .await
                .expect("poverty death");
            mark_dead(model, k);
            "poor death"
        }
        _ => "nothing",
    }
}

/// A dead person's households are left alone from now on (no composition
/// change, no exit): what a death does to them is the services' business.
fn mark_dead(model: &mut Model, k: u32) {
    model.dead.insert(k);
    if let Some(i) = model.civil_owner.get(&k) {
        model.dibao[*i].4 = true;
    }
    if let Some(i) = model.poor_owner.get(&k) {
        model.poor[*i].3 = true;
    }
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_through_kills_and_a_postgres_crash_leave_both_rosters_in_exact_agreement() {
    let seed = std::env::var("SYNC_FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_d1ba0);
    println!("seed {seed} (SYNC_FAULTS_SEED replays it)");
    let mut rng = Rng(seed);
    let pg = PrivatePostgres::start().await.expect("private postgres");
    let db = pg.database().await.expect("db");
    let mut broker = Broker::start().await.expect("broker");
    let certs = std::env::temp_dir().join(format!("dibao-faults-{}", uuid::Uuid::new_v4().simple()));
    DevCa::generate("sync faults CA")
        .expect("ca")
        .write_all(&certs, &["civil-affairs", "poverty-alleviation", "gateway", "ops"])
        .expect("certs");
    let logs = certs.join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    let mut m = start(&db, &broker, &certs, &logs).await;
    let mut model = Model::default();
    let mut kills: Vec<String> = Vec::new();
    let mut done: HashMap<&'static str, usize> = HashMap::new();
    let mut serial = 0;
    let mut changes = 0;
    while changes < CHANGES {
        serial += 1;
        let what = change(&mut m, &mut model, &mut rng, serial).await;
        if what == "nothing" {
            continue;
        }
        changes += 1;
        *done.entry(what).or_default() += 1;
        // A kill every 75 changes or so, each victim chosen at random and
        // started again a little later, the next change already under way.
        if changes % 75 == 37 {
            for w in &mut m.workers {
                w.keep_running();
            }
            let victim = rng.below(m.workers.len() + 1);
            if victim == m.workers.len() {
                broker.kill().await.expect("kill broker");
                kills.push("broker".into());
                tokio::time::sleep(Duration::from_millis(200 + rng.below(1500) as u64)).await;
                broker.restart().await.expect("restart broker");
            } else {
                m.workers[victim].kill().await;
                kills.push(m.workers[victim].name.clone());
                tokio::time::sleep(Duration::from_millis(100 + rng.below(1000) as u64)).await;
                m.workers[victim].spawn();
            }
        }
        if changes == CHANGES / 2 {
            pg.crash_and_restart().await.expect("postgres restart");
            m.sql = db.client().await.expect("db after restart");
            kills.push("postgres (crash and restart)".into());
            // The API processes' pooled connections died with the server;
            // a read through each shows they have new ones before we go on.
            for _ in 0..100 {
                let civil = m
                    .civil
                    .list_households(ca::ListHouseholdsRequest {
                        division: Some(DivisionCode { code: VILLAGE.into() }),
                        page: None,
                    })
                    .await;
                let poverty = m.poverty.list_candidates(pa::ListCandidatesRequest::default()).await;
                if civil.is_ok() && poverty.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    for w in &mut m.workers {
        w.keep_running();
    }
    println!("changes: {done:?}");
    println!("kills ({}): {kills:?}", kills.len());
    assert!(kills.len() >= 11, "at least 10 kills and the Postgres restart: {kills:?}");

    // Everything each side published reaches the other, once.
    let check = &m.sql;
    let civil_topic = format!("%{}", dibao_proto::topics::CIVIL_AFFAIRS_HOUSEHOLD.0);
    let poverty_topic = format!("%{}", dibao_proto::topics::POVERTY_ALLEVIATION_HOUSEHOLD.0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        for w in &mut m.workers {
            w.keep_running();
        }
        let missing = count(
            check,
            "SELECT (SELECT count(*) FROM civil_affairs.outbox o
                     WHERE NOT EXISTS (SELECT 1 FROM poverty_alleviation.inbox i WHERE i.event_id = o.event_id))
                  + (SELECT count(*) FROM poverty_alleviation.outbox o
                     WHERE NOT EXISTS (SELECT 1 FROM civil_affairs.inbox i WHERE i.event_id = o.event_id))",
        )
        .await;
        if missing == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{missing} events not applied after 240 s\n{}", m.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (producer, consumer, topic) in [
        ("civil_affairs", "poverty_alleviation", &civil_topic),
        ("poverty_alleviation", "civil_affairs", &poverty_topic),
    ] {
        let published = count(check, &format!("SELECT count(*) FROM {producer}.outbox")).await;
        let applied = check
            .query_one(
                &format!("SELECT count(*), count(DISTINCT event_id) FROM {consumer}.inbox WHERE topic LIKE $1"),
                &[topic],
            )
            .await
            .expect("inbox");
        let (rows, distinct): (i64, i64) = (applied.get(0), applied.get(1));
        println!("{producer} -> {consumer}: {published} events published, {rows} applied");
        assert_eq!((rows, distinct), (published, published), "each of {producer}'s events applied exactly once");
        let dead = count(check, &format!("SELECT count(*) FROM {consumer}.dead_letter")).await;
        assert_eq!(dead, 0, "nothing dead-lettered by {consumer}\n{}", m.logs());
    }

    // Each view holds exactly the other roster, version for version: the
    // resync compares every household of each side's full snapshot with the
    // other's view and would correct (and report) any difference.
    let read = |f: &str| std::fs::read_to_string(certs.join(f)).expect("pem");
    let gateway = TlsMaterial::from_pem(&read("ca.pem"), &read("gateway.pem"), &read("gateway.key"));
    let signer = Arc::new(dibao_ops_tools::devpki::officer_issuer(&certs).expect("officer issuer"));
    let operator = |service: &str| {
        Desk::new(signer.clone(), service, dibao_tests::claims(OfficerRole::SystemOperator, COUNTY)).credentials()
    };
    let comparison = dibao_ops_tools::resync::resync(
        InterceptedService::new(
            connect(&gateway, &m.civil_addr, "localhost").await.expect("civil"),
            operator("civil-affairs"),
        ),
        InterceptedService::new(
            connect(&gateway, &m.poverty_addr, "localhost").await.expect("poverty"),
            operator("poverty-alleviation"),
        ),
        COUNTY,
    )
    .await
    .expect("full comparison");
    for (view, r) in [("dibao view", &comparison.dibao_view), ("registered-poor view", &comparison.poverty_view)] {
        println!("{view}: {} households compared", r.households_in_snapshot);
        assert_eq!(
            (r.added, r.updated, r.removed, r.flags_changed, r.unchanged),
            (0, 0, 0, 0, r.households_in_snapshot),
            "the {view} differs from the roster it mirrors:\n{}",
            r.corrections.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    // Every flag as the dibao roster itself (not the view) says it should be.
    let wrong_flags = count(
        check,
        "SELECT count(*) FROM poverty_alleviation.poor_household h
         WHERE h.dibao_registered_poor IS DISTINCT FROM EXISTS (
             SELECT 1 FROM poverty_alleviation.poor_member p
             JOIN civil_affairs.household_member m ON m.identity_number = p.identity_number AND m.live
             JOIN civil_affairs.household d ON d.household_id = m.household_id AND d.status IN (2, 3)
             WHERE p.household_id = h.household_id AND p.live)",
    )
    .await;
    assert_eq!(wrong_flags, 0, "registered-poor households whose flag the dibao roster contradicts");
    let flagged =
        count(check, "SELECT count(*) FROM poverty_alleviation.poor_household WHERE dibao_registered_poor").await;
    println!(
        "households: {} dibao, {} registered poor, {flagged} flagged; persons used {}, dead {}",
        model.dibao.len(),
        model.poor.len(),
        model.persons_used.len(),
        model.dead.len()
    );
    assert!(flagged > 0, "the run should have made some households flagged");
    for w in &mut m.workers {
        w.kill().await;
    }
    for a in &mut m.apis {
        a.kill().await;
    }
    let _ = std::fs::remove_dir_all(&certs);
}
