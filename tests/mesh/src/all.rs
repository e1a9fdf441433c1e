//! Every service of the mesh in this process on one environment — civil
//! affairs, the poverty office, the hub (linked to civil affairs and to one
//! department's adapter), the roster comparison (linked to both rosters) —
//! and the public-security adapter over the department simulator: what the
//! tests that follow officers across every service start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use dibao_platform::runtime::clock::Clock;

use dibao_platform::trust::assertion::AssertionSigner;
use dibao_platform::trust::officer::Claims;
use dibao_synthetic::simulator::Simulator;
use dibao_tests::{OfficerChannel, Spawn, TestApp, TestEnv, spawn_with};

/// Each service by name, with its schema.
pub const SCHEMAS: &[(&str, &str)] = &[
    ("civil-affairs", "civil_affairs"),
    ("poverty-alleviation", "poverty_alleviation"),
    ("verification-hub", "verification_hub"),
    ("roster-comparison", "roster_comparison"),
    ("adapter-public-security", "adapter_public_security"),
];

pub struct All {
    pub env: TestEnv,
    pub addrs: BTreeMap<&'static str, SocketAddr>,
    /// Where each serves its metrics.
    pub metrics: BTreeMap<&'static str, SocketAddr>,
    /// The hub's consent-assertion key, as the adapter trusts it.
    pub hub_signer: AssertionSigner,
    _apps: Vec<TestApp>,
    _simulator: Simulator,
}

/// Every service on `env` (whose trusted issuers a test may have extended).
pub async fn start_on(env: TestEnv) -> All {
    start_with(env, None).await
}

/// The same, every service on `clock` when given (a clock the test moves:
/// each service checks officer assertions against its own clock, so they
/// share the gateway's).
pub async fn start_with(env: TestEnv, clock: Option<Arc<dyn Clock>>) -> All {
    let base = || match &clock {
        Some(c) => Spawn::default().clock(c.clone()),
        None => Spawn::default(),
    };
    let hub_key = AssertionSigner::generate_pkcs8();
    std::fs::write(env.certs.join("hub-assertion.pk8"), &hub_key).expect("key");
    let hub_signer = AssertionSigner::from_pkcs8("hub-1", &hub_key).expect("signer");
    std::fs::write(env.certs.join("trusted-keys"), hub_signer.trusted_key_line()).expect("trusted keys");
    let sim_pool = dibao_platform::store::db::connect(&env.db.settings("simulator")).await.expect("sim db");
    dibao_platform::store::db::migrate(&sim_pool, "simulator", dibao_synthetic::simulator::MIGRATIONS)
        .await
        .expect("simulator schema");
    let simulator = Simulator::start(sim_pool, "127.0.0.1:0".parse().expect("addr")).await.expect("simulator");
    type Adapter = dibao_department_adapters::Application;
    let certs = &env.certs;
    let adapter = spawn_with::<Adapter>(
        &env,
        base()
            .var::<Adapter>("DATABASE__SCHEMA", "adapter_public_security")
            .var::<Adapter>("TLS__CERT", certs.join("adapter-public-security.pem").display().to_string())
            .var::<Adapter>("TLS__KEY", certs.join("adapter-public-security.key").display().to_string())
            .var::<Adapter>("DEPARTMENT__KIND", "public_security")
            .var::<Adapter>("DEPARTMENT__BASE_URL", simulator.base_url())
            .var::<Adapter>("DEPARTMENT__TIMEOUT_MS", "1000")
            .var::<Adapter>("DEPARTMENT__RETRIES", "0")
            .var::<Adapter>("ASSERTION__TRUSTED_KEYS", certs.join("trusted-keys").display().to_string()),
    )
    .await;
    // The hub's port is chosen first: civil affairs, started before it,
    // reads its reports there.
    let hub_port = dibao_tests::free_port();
    type Civil = dibao_civil_affairs::Application;
    let civil = spawn_with::<Civil>(
        &env,
        base()
            .var::<Civil>("VERIFICATION__HUB", format!("127.0.0.1:{hub_port}"))
            .var::<Civil>("VERIFICATION__HUB_SERVER_NAME", "localhost"),
    )
    .await;
    let poverty = spawn_with::<dibao_poverty_alleviation::Application>(&env, base()).await;
    type Hub = dibao_verification_hub::Application;
    let hub = spawn_with::<Hub>(
        &env,
        base()
            .var::<Hub>("SERVER__LISTEN", format!("127.0.0.1:{hub_port}"))
            .var::<Hub>("HUB__SIGNING_KEY", certs.join("hub-assertion.pk8").display().to_string())
            .var::<Hub>("HUB__CIVIL_AFFAIRS", civil.addr.to_string())
            .var::<Hub>("HUB__CIVIL_AFFAIRS_SERVER_NAME", "localhost")
            .var::<Hub>("HUB__DEPARTMENTS__PUBLIC_SECURITY__ADDRESS", adapter.addr.to_string())
            .var::<Hub>("HUB__DEPARTMENTS__PUBLIC_SECURITY__SERVER_NAME", "adapter-public-security"),
    )
    .await;
    type Comparison = dibao_roster_comparison::Application;
    let comparison = spawn_with::<Comparison>(
        &env,
        base()
            .var::<Comparison>("COMPARISON__MONTHLY_RUN_DAY", "0")
            .var::<Comparison>("COMPARISON__CIVIL_AFFAIRS", civil.addr.to_string())
            .var::<Comparison>("COMPARISON__CIVIL_AFFAIRS_SERVER_NAME", "localhost")
            .var::<Comparison>("COMPARISON__POVERTY_ALLEVIATION", poverty.addr.to_string())
            .var::<Comparison>("COMPARISON__POVERTY_ALLEVIATION_SERVER_NAME", "localhost"),
    )
    .await;
    let apps = [
        ("civil-affairs", &civil),
        ("poverty-alleviation", &poverty),
        ("verification-hub", &hub),
        ("roster-comparison", &comparison),
        ("adapter-public-security", &adapter),
    ];
    let addrs = apps.iter().map(|(name, app)| (*name, app.addr)).collect();
    let metrics = apps.iter().filter_map(|(name, app)| Some((*name, app.started.metrics?))).collect();
    All {
        env,
        addrs,
        metrics,
        hub_signer,
        _apps: vec![adapter, civil, poverty, hub, comparison],
        _simulator: simulator,
    }
}

/// Every service on a fresh environment.
pub async fn start() -> All {
    start_on(TestEnv::start().await).await
}

impl All {
    /// `service` as the gateway calls it for `officer`.
    pub async fn channel(&self, service: &'static str, officer: &Claims) -> OfficerChannel {
        let desk = self.env.desk(service, officer.roles[0], officer.division.as_str()).claims(officer.clone());
        self.env.officer_channel(self.addrs[service], desk).await
    }
}

/// A household of two on the dibao roster as a county's roster file has it
/// (number `number`, category C, 400.00 yuan a month since 2025-03-01):
/// member `n` is born on `born` (YYYYMMDD) in `county` and named `surname`
/// and `n`; the head is `2 * i`, the spouse `2 * i + 1`.
pub fn enrolled_pair(
    i: usize,
    number: &str,
    village: &str,
    born: &str,
    surname: &str,
) -> dibao_proto::civil_affairs::v1::Household {
    use dibao_proto::civil_affairs::v1 as ca;
    use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, Person, Relation};
    let county = &village[..6];
    let member = |n: usize, relation: Relation| {
        let body = format!("{county}{born}{:03}", n + 100);
        ca::Member {
            person: Some(Person {
                identity_number: Some(IdentityNumber {
                    value: format!("{body}{}", dibao_proto::types::check_character(&body)),
                }),
                name: format!("{surname}{n}"),
                ..Default::default()
            }),
            relation: relation as i32,
            work_ability: ca::WorkAbility::Partial as i32,
            covered: true,
            ..Default::default()
        }
    };
    ca::Household {
        household_id: number.to_owned(),
        village: Some(DivisionCode { code: village.to_owned() }),
        category: dibao_proto::events::v1::BenefitCategory::C as i32,
        members: vec![member(2 * i, Relation::Head), member(2 * i + 1, Relation::Spouse)],
        monthly_amount: Some(Money { fen: 40_000 }),
        enrolled_on: Some(dibao_proto::common::v1::Date { year: 2025, month: 3, day: 1 }),
        ..Default::default()
    }
}

/// `county`'s policy saved and `households` imported into civil affairs'
/// roster, as the county's operator on `civil` does; no row refused.
pub async fn county_with(
    civil: &mut dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient<
        dibao_platform::runtime::server::CallerChannel,
    >,
    county: &str,
    households: impl Iterator<Item = dibao_proto::civil_affairs::v1::Household>,
) {
    use dibao_proto::civil_affairs::v1 as ca;
    civil
        .save_policy(ca::SavePolicyRequest { policy: Some(crate::verification::policy(county)) })
        .await
        .expect("policy");
    let rows: Vec<ca::ImportRosterRequest> = households
        .enumerate()
        .map(|(i, h)| ca::ImportRosterRequest { row: i as i64 + 1, household: Some(h) })
        .collect();
    let imported = civil.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
}

/// A household's members as a consent names them: identity number, name, relation.
pub fn members_of(
    h: &dibao_proto::civil_affairs::v1::Household,
) -> Vec<(dibao_proto::common::v1::IdentityNumber, &str, dibao_proto::common::v1::Relation)> {
    h.members
        .iter()
        .filter_map(|m| {
            let p = m.person.as_ref()?;
            Some((
                p.identity_number.clone()?,
                p.name.as_str(),
                dibao_proto::common::v1::Relation::try_from(m.relation).ok()?,
            ))
        })
        .collect()
}

impl All {
    /// Waits until the comparison's view holds `n` households of the dibao
    /// roster (they come through the broker).
    pub async fn comparison_sees(&self, n: usize) {
        let db = self.env.db.client().await.expect("db");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let held: i64 = db
                .query_one(
                    "SELECT count(*) FROM roster_comparison.roster_household WHERE valid_to IS NULL AND side = 'dibao'",
                    &[],
                )
                .await
                .expect("view")
                .get(0);
            if held >= n as i64 {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the comparison's view holds {held} of {n}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Runs a comparison of `division` as the officer of `channel`, to its end.
pub async fn compare(channel: dibao_platform::runtime::server::CallerChannel, division: &str) {
    use dibao_proto::comparison::v1 as cmp;
    let mut run = cmp::comparison_service_client::ComparisonServiceClient::new(channel)
        .run_comparison(cmp::RunComparisonRequest {
            division: Some(dibao_proto::common::v1::DivisionCode { code: division.into() }),
            reproduce_run_id: String::new(),
        })
        .await
        .expect("run")
        .into_inner();
    while run.message().await.expect("progress").is_some() {}
}
