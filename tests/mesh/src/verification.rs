//! The verification mesh under test, all real: the department simulator
//! serving a generated province from Postgres, the six adapters over mTLS
//! (each with its own schema and access log), civil affairs with the
//! county's policy, the hub, and a Tansu broker for the hub's outbox.

// Each test binary uses its own part of the mesh.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use deadpool_postgres::Pool;
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::tls::TlsMaterial;
use dibao_platform::trust::assertion::AssertionSigner;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::{
    CountyPolicy, GradualExitStep, PropertyItem, PropertyThreshold, ReferenceIncome, RuleSubject, SavePolicyRequest,
    TownshipPhone,
};
use dibao_proto::common::v1::{Date, DivisionCode, IdentityNumber, Money, OfficerRole, Person, YearMonth};
use dibao_proto::department::v1::{Department, Item};
use dibao_proto::departments;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use dibao_proto::verification::v1::{Consent, RegisterConsentRequest, Signatory, VerifyHouseholdRequest};
use dibao_synthetic::generator::{Config, DeptRecord, Household};
use dibao_synthetic::simulator::Simulator;
use dibao_tests::{OfficerChannel, Spawn, TestEnv, officer, spawn_with};

pub use dibao_proto::departments::ALL_ITEMS;

/// The generated province's code (Config's default).
pub const PROVINCE: &str = "520000";

pub struct Mesh {
    /// The hub, as a verification officer of the province unless a call names another.
    pub hub: VerificationServiceClient<OfficerChannel>,
    /// Civil affairs, as an approver and operator of the province unless a call names another.
    pub civil: CivilAffairsServiceClient<OfficerChannel>,
    pub simulator: Simulator,
    pub province: Vec<(Household, Vec<DeptRecord>)>,
    pub env: TestEnv,
    pub adapters: HashMap<&'static str, String>,
    pub hub_pool: Pool,
    pub adapter_pools: HashMap<&'static str, Pool>,
    pub signing_key: Vec<u8>,
    pub hub_vars: HashMap<String, String>,
    /// Where the (first) hub listens; civil affairs reads its reports there.
    pub hub_addr: SocketAddr,
    pub civil_addr: SocketAddr,
    pub hub_process: Option<tokio::process::Child>,
    /// The generated households on civil affairs' roster, by index: their
    /// id there, which the hub reads a household by (R-VER-2).
    pub on_roster: HashMap<usize, String>,
    _sim_pool: Pool,
    _simulator_runtime: SimulatorRuntime,
}

/// The simulator's own runtime, where it has one; let go without waiting
/// (a runtime may not be dropped where the test's runtime could block).
struct SimulatorRuntime(Option<tokio::runtime::Runtime>);

impl Drop for SimulatorRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct Options {
    pub households: usize,
    /// Run the hub as its own process (its binary), so a test can kill it.
    pub hub_process: bool,
    pub campaign_concurrency: usize,
    /// Queries per second each department allows (0: no limit).
    pub rate_per_second: u32,
    pub department_concurrency: usize,
    pub report_deadline_ms: u64,
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
    /// The counties ask close lineal relatives to sign consents too.
    pub consent_requires_relatives: bool,
    /// The housing adapter reads the register's front-end view instead of its API.
    pub housing_view: bool,
    /// The department simulator runs on a thread of its own (named
    /// `dept-simulator`), as the departments run on machines of their own:
    /// its work never queues behind the mesh's, and the benchmark can tell
    /// its CPU from the mesh's.
    pub departments_apart: bool,
    /// How long civil affairs' consumer lets the broker hold a fetch
    /// (librdkafka's `fetch.wait.max.ms`); the service's default if none.
    pub consumer_fetch_wait_ms: Option<u32>,
    /// The clock of the adapters, civil affairs and an in-process hub; the system's if none.
    pub clock: Option<Arc<dyn Clock>>,
    /// Every generated household is put on civil affairs' roster at start,
    /// so the hub can read the household it checks; a test that builds the
    /// roster itself (a campaign's county) starts without.
    pub on_roster: bool,
}

impl Options {
    /// How a service of this mesh starts: on its clock.
    pub fn spawn(&self) -> Spawn {
        match &self.clock {
            Some(c) => Spawn::default().clock(c.clone()),
            None => Spawn::default(),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            households: 200,
            hub_process: false,
            campaign_concurrency: 16,
            rate_per_second: 0,
            department_concurrency: 64,
            report_deadline_ms: 2_000,
            breaker_failures: 3,
            breaker_open_ms: 1_000,
            consent_requires_relatives: false,
            housing_view: false,
            departments_apart: false,
            consumer_fetch_wait_ms: None,
            clock: None,
            on_roster: true,
        }
    }
}

pub fn date(d: time::Date) -> Option<Date> {
    Some(Date { year: d.year(), month: i32::from(d.month() as u8), day: i32::from(d.day()) })
}

/// The county's policy: no vehicle, no registered flat, at most 5,000 yuan of
/// deposits per member, no business, for household members (R-ELIG-1).
pub fn policy(county: &str) -> CountyPolicy {
    let rule = |item: PropertyItem, limit: i64, description: &str| PropertyThreshold {
        item: item as i32,
        limit,
        subject: RuleSubject::HouseholdMembers as i32,
        description: description.into(),
    };
    CountyPolicy {
        county: Some(DivisionCode { code: county.into() }),
        year: 2026,
        effective_from: Some(YearMonth { year: 2026, month: 4 }),
        dibao_standard_monthly: Some(Money { fen: 55_000 }),
        national_poverty_line_monthly: Some(Money { fen: 35_000 }),
        severe_disability_addition_bp: 2_000,
        serious_illness_addition_bp: 1_000,
        elderly_addition_bp: 1_000,
        minor_addition_bp: 1_000,
        reference_incomes: vec![ReferenceIncome { item: "玉米".into(), monthly: Some(Money { fen: 3_000 }) }],
        minimum_wage_monthly: Some(Money { fen: 170_000 }),
        rural_disposable_income_monthly: Some(Money { fen: 120_000 }),
        supporter_estimate_ratio_bp: 1_000,
        property_thresholds: vec![
            rule(PropertyItem::Vehicles, 0, "家庭成员名下无非生产用机动车"),
            rule(PropertyItem::Housing, 0, "家庭成员在城镇无登记房产"),
            rule(PropertyItem::Deposits, 500_000, "人均存款不超过5000元"),
            rule(PropertyItem::Business, 0, "家庭成员未开办企业"),
        ],
        gradual_exit_step: GradualExitStep::Monthly as i32,
        full_support_review_months: 12,
        unstable_income_review_months: 6,
        elderly_age: 60,
        // A report holds every member's vehicles at least (R-VER-2).
        required_report_items: vec![Item::Vehicles as i32],
        // Printed on every notice (R-AUD-2).
        complaint_phone: "0435-4221234".into(),
        township_complaint_phones: vec![TownshipPhone {
            township: Some(DivisionCode { code: dibao_tests::a_township_of(county) }),
            phone: "0435-4301234".into(),
        }],
        ..Default::default()
    }
}

/// The departments' side of a verification mesh: the simulator serving a
/// generated province and one adapter per department, trusting the hub's
/// assertion key (written into the environment's certificates).
pub struct DepartmentSide {
    pub simulator: Simulator,
    pub province: Vec<(Household, Vec<DeptRecord>)>,
    /// Each adapter's address, by department name.
    pub adapters: HashMap<&'static str, String>,
    pub adapter_pools: HashMap<&'static str, Pool>,
    /// The hub's assertion key (PKCS#8), at `hub-assertion.pk8` in the certificates.
    pub signing_key: Vec<u8>,
    /// The simulator's database: a test loads a department's records there.
    pub sim_pool: Pool,
    simulator_runtime: SimulatorRuntime,
}

impl DepartmentSide {
    pub async fn start(env: &TestEnv, options: &Options) -> Self {
        let certs = env.certs.clone();
        let signing_key = AssertionSigner::generate_pkcs8();
        std::fs::write(certs.join("hub-assertion.pk8"), &signing_key).expect("key");
        let signer = AssertionSigner::from_pkcs8("hub-1", &signing_key).expect("signer");
        std::fs::write(certs.join("trusted-keys"), signer.trusted_key_line()).expect("trusted keys");
        let db = &env.db;

        // The departments' systems.
        let sim_pool = dibao_platform::store::db::connect(&db.settings("simulator")).await.expect("sim db");
        dibao_platform::store::db::migrate(&sim_pool, "simulator", dibao_synthetic::simulator::MIGRATIONS)
            .await
            .expect("sim migrate");
        let province = dibao_synthetic::generate_and_load(&sim_pool, Config::new(20261123, options.households))
            .await
            .expect("province");
        let listen = "127.0.0.1:0".parse().expect("addr");
        let (simulator, simulator_runtime) = if options.departments_apart {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("dept-simulator")
                .enable_all()
                .build()
                .expect("simulator runtime");
            // A pool of its own, whose connections that runtime drives.
            let settings = db.settings("simulator");
            let simulator = runtime
                .spawn(async move {
                    let pool = dibao_platform::store::db::connect(&settings).await.expect("sim db");
                    Simulator::start(pool, listen).await.expect("simulator")
                })
                .await
                .expect("simulator started");
            (simulator, SimulatorRuntime(Some(runtime)))
        } else {
            (Simulator::start(sim_pool.clone(), listen).await.expect("simulator"), SimulatorRuntime(None))
        };

        // One adapter per department.
        let mut adapters = HashMap::new();
        let mut adapter_pools = HashMap::new();
        for department in departments::ALL {
            type Adapter = dibao_department_adapters::Application;
            let name = departments::name(department);
            let identity = departments::adapter_identity(department);
            let schema = format!("adapter_{name}");
            let mut how = options
                .spawn()
                .var::<Adapter>("DATABASE__SCHEMA", schema.clone())
                .var::<Adapter>("TLS__CERT", certs.join(format!("{identity}.pem")).display().to_string())
                .var::<Adapter>("TLS__KEY", certs.join(format!("{identity}.key")).display().to_string())
                .var::<Adapter>("DEPARTMENT__KIND", name)
                .var::<Adapter>("DEPARTMENT__TIMEOUT_MS", "600")
                .var::<Adapter>("DEPARTMENT__RETRIES", "1")
                .var::<Adapter>("ASSERTION__TRUSTED_KEYS", certs.join("trusted-keys").display().to_string());
            how = if department == Department::Housing && options.housing_view {
                how.var::<Adapter>("DEPARTMENT__VIEW_URL", db.url.clone())
            } else {
                how.var::<Adapter>("DEPARTMENT__BASE_URL", simulator.base_url())
            };
            let app = spawn_with::<Adapter>(env, how).await;
            adapters.insert(name, app.addr.to_string());
            adapter_pools
                .insert(name, dibao_platform::store::db::connect(&db.settings(&schema)).await.expect("adapter db"));
        }
        Self { simulator, province, adapters, adapter_pools, signing_key, sim_pool, simulator_runtime }
    }

    /// The hub's environment: its key, these departments, civil affairs at
    /// `civil` for the county's policy; listening on `hub_port`, where
    /// civil affairs reads its reports.
    pub fn hub_vars(
        &self,
        env: &TestEnv,
        civil: SocketAddr,
        hub_port: u16,
        options: &Options,
    ) -> HashMap<String, String> {
        let h = "VERIFICATION_HUB";
        let mut vars = env.vars("verification-hub");
        vars.insert(format!("{h}__SERVER__LISTEN"), format!("127.0.0.1:{hub_port}"));
        vars.insert(format!("{h}__HUB__SIGNING_KEY"), env.certs.join("hub-assertion.pk8").display().to_string());
        vars.insert(format!("{h}__HUB__REPORT_DEADLINE_MS"), options.report_deadline_ms.to_string());
        vars.insert(format!("{h}__HUB__CIVIL_AFFAIRS"), civil.to_string());
        vars.insert(format!("{h}__HUB__CIVIL_AFFAIRS_SERVER_NAME"), "localhost".into());
        for department in departments::ALL {
            let name = departments::name(department);
            let d = format!("{h}__HUB__DEPARTMENTS__{}", name.to_ascii_uppercase());
            vars.insert(format!("{d}__ADDRESS"), self.adapters[name].clone());
            vars.insert(format!("{d}__SERVER_NAME"), departments::adapter_identity(department));
            vars.insert(format!("{d}__BREAKER_FAILURES"), options.breaker_failures.to_string());
            vars.insert(format!("{d}__BREAKER_OPEN_MS"), options.breaker_open_ms.to_string());
            vars.insert(format!("{d}__RATE_PER_SECOND"), options.rate_per_second.to_string());
            vars.insert(format!("{d}__CONCURRENCY"), options.department_concurrency.to_string());
        }
        vars.insert(format!("{h}__HUB__CAMPAIGN_CONCURRENCY"), options.campaign_concurrency.to_string());
        vars
    }
}

/// Civil affairs as this mesh starts it: on the options' clock, reading
/// the hub's reports at `hub_port`.
pub fn civil_spawn(options: &Options, hub_port: u16) -> Spawn {
    type Civil = dibao_civil_affairs::Application;
    let how = options
        .spawn()
        .var::<Civil>("VERIFICATION__HUB", format!("127.0.0.1:{hub_port}"))
        .var::<Civil>("VERIFICATION__HUB_SERVER_NAME", "localhost");
    match options.consumer_fetch_wait_ms {
        Some(ms) => how.var::<Civil>("KAFKA__PROPERTIES__FETCH_WAIT_MAX_MS", ms.to_string()),
        None => how,
    }
}

/// The hub started in this process with `vars`, on the options' clock; its address.
pub async fn spawn_hub_here(env: &TestEnv, vars: &HashMap<String, String>, options: &Options) -> SocketAddr {
    type Hub = dibao_verification_hub::Application;
    let how = Spawn { vars: vars.clone().into_iter().collect(), ..options.spawn() };
    spawn_with::<Hub>(env, how).await.addr
}

impl Mesh {
    pub async fn start(options: Options) -> Mesh {
        let env = TestEnv::start().await;
        let side = DepartmentSide::start(&env, &options).await;
        // The hub's port is chosen first: civil affairs, started before
        // it, reads its reports there.
        let hub_port = dibao_tests::free_port();

        // Civil affairs, with each county's policy.
        let civil = spawn_with::<dibao_civil_affairs::Application>(&env, civil_spawn(&options, hub_port)).await;
        // The province's office: approves and operates the roster.
        let office = dibao_platform::trust::officer::Claims {
            roles: vec![OfficerRole::CountyApprover, OfficerRole::CountyOperator],
            ..dibao_tests::claims(OfficerRole::CountyApprover, PROVINCE)
        };
        let desk =
            env.desk(dibao_civil_affairs::startup::SERVICE, OfficerRole::CountyApprover, PROVINCE).claims(office);
        let mut civil_client = CivilAffairsServiceClient::new(env.officer_channel(civil.addr, desk).await);
        for c in side.province.iter().map(|(h, _)| h.county().to_owned()).collect::<std::collections::BTreeSet<_>>() {
            let policy = CountyPolicy {
                consent_requires_relatives: options.consent_requires_relatives,
                // Every department answers here: a report holds every item for every member.
                required_report_items: ALL_ITEMS.iter().map(|i| *i as i32).collect(),
                ..policy(&c)
            };
            civil_client
                .save_policy(officer(OfficerRole::CountyApprover, &c, SavePolicyRequest { policy: Some(policy) }))
                .await
                .expect("policy");
        }

        let on_roster =
            if options.on_roster { put_on_roster(&mut civil_client, &side.province).await } else { HashMap::new() };

        // The hub.
        let vars = side.hub_vars(&env, civil.addr, hub_port, &options);
        let (hub_addr, hub_process) = if options.hub_process {
            let (child, addr) = spawn_hub(&vars).await;
            (addr.parse().expect("hub address"), Some(child))
        } else {
            (spawn_hub_here(&env, &vars, &options).await, None)
        };
        let hub_pool = dibao_platform::store::db::connect(&env.db.settings("verification_hub")).await.expect("hub db");
        let hub = hub_client(&env, &hub_addr.to_string()).await;
        Mesh {
            hub_addr,
            civil_addr: civil.addr,
            civil: civil_client,
            hub,
            hub_vars: vars,
            hub_process,
            on_roster,
            simulator: side.simulator,
            province: side.province,
            adapters: side.adapters,
            hub_pool,
            adapter_pools: side.adapter_pools,
            signing_key: side.signing_key,
            env,
            _sim_pool: side.sim_pool,
            _simulator_runtime: side.simulator_runtime,
        }
    }

    /// Kills the hub's process (SIGKILL) and starts it again on the same
    /// database and broker; the client is reconnected.
    pub async fn kill_and_restart_hub(&mut self) {
        if let Some(mut child) = self.hub_process.take() {
            child.kill().await.expect("kill hub");
        }
        // On its port again: civil affairs reads its reports there.
        let (child, addr) = spawn_hub(&self.hub_vars).await;
        self.hub_process = Some(child);
        self.hub = hub_client(&self.env, &addr).await;
        self.hub_addr = addr.parse().expect("hub address");
    }

    /// Another replica of the hub, on the same database and departments.
    pub async fn second_hub(&self) -> (tokio::process::Child, VerificationServiceClient<OfficerChannel>) {
        let mut vars = self.hub_vars.clone();
        vars.insert("VERIFICATION_HUB__SERVER__LISTEN".to_owned(), "127.0.0.1:0".to_owned());
        let (child, addr) = spawn_hub(&vars).await;
        (child, hub_client(&self.env, &addr).await)
    }

    /// Stops the hub's process as an operator's SIGTERM does, and waits for
    /// it to exit.
    pub async fn stop_hub(&mut self) -> std::process::ExitStatus {
        let mut child = self.hub_process.take().expect("the hub runs as its own process");
        let pid = child.id().expect("running");
        let sent = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(sent.success(), "SIGTERM not sent");
        tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
            .await
            .expect("the hub stops within 30 s")
            .expect("exit status")
    }

    pub fn kill_hub(&mut self) {
        if let Some(child) = self.hub_process.as_mut() {
            child.start_kill().expect("kill hub");
        }
    }

    pub fn tls(&self, identity: &str) -> TlsMaterial {
        self.env.tls(identity)
    }

    /// The first household matching `pred`.
    pub fn household(&self, pred: impl Fn(&Household, &[DeptRecord]) -> bool) -> (Household, Vec<DeptRecord>) {
        self.province.iter().find(|(h, r)| pred(h, r)).cloned().expect("a generated household of that kind")
    }

    /// Registers a consent signed by every adult member, covering them all
    /// for every item, valid `from`..=`until`.
    pub async fn consent(&mut self, h: &Household, from: time::Date, until: time::Date) -> String {
        self.try_consent(h, from, until, vec![], false).await.expect("consent")
    }

    /// [`Mesh::consent`], also signed by `relatives` (close lineal relatives
    /// outside the household), or with the officer's finding that there are
    /// none.
    pub async fn try_consent(
        &mut self,
        h: &Household,
        from: time::Date,
        until: time::Date,
        relatives: Vec<Signatory>,
        no_relatives_outside_household: bool,
    ) -> Result<String, tonic::Status> {
        let household_id = self.civil_id(h).await;
        self.try_consent_for(&household_id, h, from, until, relatives, no_relatives_outside_household).await
    }

    /// Household `h`'s id on civil affairs' roster (looked up by its number
    /// where the test put it there itself).
    pub async fn civil_id(&mut self, h: &Household) -> String {
        if let Some(id) = self.on_roster.get(&h.index) {
            return id.clone();
        }
        let listed = self
            .civil
            .list_households(dibao_proto::civil_affairs::v1::ListHouseholdsRequest {
                division: Some(DivisionCode { code: h.village.clone() }),
                page: Some(dibao_proto::common::v1::PageRequest { page_size: 500, page_token: String::new() }),
            })
            .await
            .expect("the village's households")
            .into_inner()
            .households;
        let number = format!("G{:06}", h.index);
        let id = listed
            .into_iter()
            .find(|x| x.household_number == number)
            .expect("the household on civil affairs' roster")
            .household_id;
        self.on_roster.insert(h.index, id.clone());
        id
    }

    /// [`Mesh::try_consent`] for civil affairs' household `household_id` (an applicant's, say).
    pub async fn try_consent_for(
        &mut self,
        household_id: &str,
        h: &Household,
        from: time::Date,
        until: time::Date,
        relatives: Vec<Signatory>,
        no_relatives_outside_household: bool,
    ) -> Result<String, tonic::Status> {
        let signatories = h
            .members
            .iter()
            .filter(|m| dibao_proto::types::IdentityNumber::parse(&m.identity_number).expect("id").age_on(from) >= 18)
            .map(|m| Signatory {
                person: Some(Person {
                    identity_number: Some(IdentityNumber { value: m.identity_number.clone() }),
                    name: m.name.clone(),
                    ..Default::default()
                }),
                relation: m.relation as i32,
                relative: false,
            })
            .chain(relatives)
            .collect();
        let registering = OfficerRole::VerificationOfficer;
        Ok(self
            .hub
            // The county's verification centre (核对中心) registers it.
            .register_consent(officer(
                registering,
                h.county(),
                RegisterConsentRequest {
                    consent: Some(Consent {
                        household_id: household_id.to_owned(),
                        document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                        signatories,
                        covered_persons: h
                            .members
                            .iter()
                            .map(|m| IdentityNumber { value: m.identity_number.clone() })
                            .collect(),
                        covered_items: ALL_ITEMS.iter().map(|i| *i as i32).collect(),
                        signed_on: date(from),
                        valid_until: date(until),
                        no_relatives_outside_household,
                        ..Default::default()
                    }),
                },
            ))
            .await?
            .into_inner()
            .consent_id)
    }

    /// A check of every member of `h`, as civil affairs holds it, under `consent_id`.
    pub fn verify_request(&self, h: &Household, consent_id: &str) -> VerifyHouseholdRequest {
        let id = self.on_roster.get(&h.index).expect("the household on civil affairs' roster (Options::on_roster)");
        Self::request_for(id, h, consent_id)
    }

    /// [`Mesh::verify_request`] for civil affairs' household `household_id`
    /// (an applicant's, say) with `h`'s members.
    pub fn request_for(household_id: &str, h: &Household, consent_id: &str) -> VerifyHouseholdRequest {
        VerifyHouseholdRequest {
            household_id: household_id.to_owned(),
            persons: h.members.iter().map(|m| IdentityNumber { value: m.identity_number.clone() }).collect(),
            consent_id: consent_id.into(),
            purpose: "低保申请审核".into(),
            ..Default::default()
        }
    }
}

/// The hub at `addr`, as a verification officer of the province unless a call names another.
async fn hub_client(env: &TestEnv, addr: &str) -> VerificationServiceClient<OfficerChannel> {
    let desk = env.desk(dibao_verification_hub::startup::SERVICE, OfficerRole::VerificationOfficer, PROVINCE);
    VerificationServiceClient::new(env.officer_channel(addr.parse().expect("hub address"), desk).await)
}

/// Starts the hub's binary with `vars`; returns it and its address.
async fn spawn_hub(vars: &HashMap<String, String>) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let bin = dibao_tests::service_binary("verification-hub");
    let mut child = tokio::process::Command::new(bin)
        .envs(vars)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("hub binary");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("hub output") {
            if let Some(addr) = line.strip_prefix("verification-hub listening on ") {
                return addr.to_owned();
            }
        }
        panic!("hub exited before listening");
    })
    .await
    .expect("hub listening");
    // Keep reading so the hub never blocks on a full pipe; its errors show in the test output.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("\"ERROR\"") {
                eprintln!("hub: {line}");
            }
        }
    });
    (child, addr)
}

/// Puts every generated household on civil affairs' roster; their ids
/// there by generated index.
async fn put_on_roster(
    civil: &mut CivilAffairsServiceClient<OfficerChannel>,
    province: &[(Household, Vec<DeptRecord>)],
) -> HashMap<usize, String> {
    use dibao_proto::civil_affairs::v1::{ExportRosterRequest, ImportRosterRequest};
    let rows: Vec<_> = province
        .iter()
        .enumerate()
        .map(|(i, (h, _))| ImportRosterRequest { row: i as i64 + 2, household: Some(roster_household(h)) })
        .collect();
    let imported = civil.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert!(imported.errors.is_empty(), "the generated province on the roster: {:?}", imported.errors);
    let mut exported = civil
        .export_roster(ExportRosterRequest { division: Some(DivisionCode { code: PROVINCE.into() }) })
        .await
        .expect("export")
        .into_inner();
    let mut ids = HashMap::new();
    while let Some(line) = exported.message().await.expect("export") {
        let Some(h) = line.household else { continue };
        if let Some(index) = h.household_number.strip_prefix('G').and_then(|n| n.parse().ok()) {
            ids.insert(index, h.household_id);
        }
    }
    assert_eq!(ids.len(), province.len(), "every generated household on the roster");
    ids
}

/// A generated household as a line of civil affairs' dibao roster.
pub fn roster_household(h: &Household) -> dibao_proto::civil_affairs::v1::Household {
    use dibao_proto::civil_affairs::v1 as ca;
    ca::Household {
        household_id: format!("G{:06}", h.index),
        village: Some(DivisionCode { code: h.village.clone() }),
        category: dibao_proto::events::v1::BenefitCategory::C as i32,
        members: h
            .members
            .iter()
            .map(|m| ca::Member {
                person: Some(Person {
                    identity_number: Some(IdentityNumber { value: m.identity_number.clone() }),
                    name: m.name.clone(),
                    ..Default::default()
                }),
                relation: m.relation as i32,
                work_ability: ca::WorkAbility::Partial as i32,
                covered: true,
                ..Default::default()
            })
            .collect(),
        monthly_amount: Some(Money { fen: 40_000 }),
        enrolled_on: Some(Date { year: 2025, month: 3, day: 1 }),
        ..Default::default()
    }
}

pub fn today() -> time::Date {
    dibao_platform::runtime::clock::china_date(time::OffsetDateTime::now_utc())
}

/// What an officer does before a household's vehicles are checked: the
/// members' consent (signed today, valid a year, covering vehicles)
/// registered, then the household verified against it. `members` are each
/// signatory's number, name and relation to the head. The report.
pub async fn vehicles_checked(
    hub: &mut VerificationServiceClient<dibao_platform::runtime::server::CallerChannel>,
    household_id: &str,
    members: &[(IdentityNumber, &str, dibao_proto::common::v1::Relation)],
    purpose: &str,
) -> dibao_proto::verification::v1::Report {
    checked(hub, household_id, members, &[], &[Item::Vehicles], today(), purpose).await
}

/// A consent's signatory and person checked: number, name, relation to the head.
pub type Signer<'a> = (IdentityNumber, &'a str, dibao_proto::common::v1::Relation);

/// [`vehicles_checked`] for `items`, with `relatives` (close lineal
/// relatives outside the household) signing and checked too, the consent
/// signed on `signed_on` (the day the officer's clock says it is).
#[allow(clippy::too_many_arguments)]
pub async fn checked(
    hub: &mut VerificationServiceClient<dibao_platform::runtime::server::CallerChannel>,
    household_id: &str,
    members: &[Signer<'_>],
    relatives: &[Signer<'_>],
    items: &[Item],
    signed_on: time::Date,
    purpose: &str,
) -> dibao_proto::verification::v1::Report {
    let signed = date(signed_on);
    let items: Vec<i32> = items.iter().map(|i| *i as i32).collect();
    let persons: Vec<IdentityNumber> = members.iter().chain(relatives).map(|(id, _, _)| id.clone()).collect();
    let signatory = |(id, name, relation): &Signer<'_>, relative: bool| Signatory {
        person: Some(Person { identity_number: Some(id.clone()), name: (*name).into(), ..Default::default() }),
        relation: *relation as i32,
        relative,
    };
    let consent = hub
        .register_consent(RegisterConsentRequest {
            consent: Some(Consent {
                household_id: household_id.into(),
                document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                signatories: members
                    .iter()
                    .map(|m| signatory(m, false))
                    .chain(relatives.iter().map(|r| signatory(r, true)))
                    .collect(),
                covered_persons: persons.clone(),
                covered_items: items.clone(),
                signed_on: signed,
                valid_until: signed.map(|d| Date { year: d.year + 1, ..d }),
                no_relatives_outside_household: relatives.is_empty(),
                ..Default::default()
            }),
        })
        .await
        .expect("consent")
        .into_inner()
        .consent_id;
    hub.verify_household(VerifyHouseholdRequest {
        household_id: household_id.into(),
        persons,
        consent_id: consent,
        purpose: purpose.into(),
        items,
        ..Default::default()
    })
    .await
    .expect("verified")
    .into_inner()
    .report
    .expect("report")
}
