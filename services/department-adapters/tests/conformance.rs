//! The suite every department's connector passes, against the department
//! simulator over HTTP: a new department is one more line at the bottom;
//! the kit over HTTPS, trusting only the department's CA; and a department
//! read from its front-end database view.
//! Records match the generated ground truth; the department's "busy" is
//! retried and then reported unavailable with the reason; a department that
//! does not answer is cut off by the timeout; an unknown person has nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use dibao_department_adapters::departments::bank::{Bank, Banks};
use dibao_department_adapters::departments::{
    commerce, disability_federation, housing, human_resources, medical_insurance, public_security, tax,
};
use dibao_department_adapters::kit::{Connector, DepartmentTls, Kit};
use dibao_ops_tools::devpki::DevCa;
use dibao_proto::department::v1::{Item, Record};
use dibao_proto::types::IdentityNumber;
use dibao_synthetic::generator::{BANKS, Config, DeptRecord, Household};
use dibao_synthetic::simulator::{Behaviour, Simulator};
use dibao_tests::TestDb;

type Found = BTreeSet<(String, String, String, i64, i64)>;

fn found(records: &[Record]) -> Found {
    records
        .iter()
        .map(|r| {
            let item = Item::try_from(r.item).map(|i| i.as_str_name().to_owned()).unwrap_or_default();
            (item, r.source_record_id.clone(), r.source.clone(), r.amount.map_or(0, |m| m.fen), r.quantity)
        })
        .collect()
}

fn truth(records: &[DeptRecord], person: &str, items: &[Item]) -> Found {
    records
        .iter()
        .filter(|r| r.person == person && items.contains(&r.item))
        .map(|r| (r.item.as_str_name().to_owned(), r.record_id.clone(), r.source.clone(), r.amount_fen, r.quantity))
        .collect()
}

/// A fresh database with the departments' records of a generated province.
async fn departments(seed: u64, households: usize) -> (TestDb, Pool, Vec<(Household, Vec<DeptRecord>)>) {
    let db = TestDb::create().await.expect("db");
    let pool = dibao_platform::store::db::connect(&db.settings("simulator")).await.expect("pool");
    dibao_platform::store::db::migrate(&pool, "simulator", dibao_synthetic::simulator::MIGRATIONS)
        .await
        .expect("migrate");
    let province = dibao_synthetic::generate_and_load(&pool, Config::new(seed, households)).await.expect("province");
    (db, pool, province)
}

async fn conformance<C: Connector>(connector: C, key: &str) {
    let (_db, pool, province) = departments(7, 150).await;
    let sim = Simulator::start(pool.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("simulator");
    let (timeout, retries) = (Duration::from_millis(300), 2);
    let kit = Kit::new(&sim.base_url(), timeout, retries, None).expect("kit");

    // Every record this department holds on each person, exactly.
    let mut with_records = 0;
    for (h, records) in &province {
        for m in &h.members {
            let person = IdentityNumber::parse(&m.identity_number).expect("id");
            let answer = kit.query(&connector, &person, C::ITEMS).await;
            assert!(answer.unavailable.is_empty(), "{key}: {:?}", answer.unavailable);
            let expected = truth(records, &m.identity_number, C::ITEMS);
            with_records += usize::from(!expected.is_empty());
            assert_eq!(found(&answer.records), expected, "{key}: person {}", m.identity_number);
            assert!(answer.records.iter().all(|r| r.department == C::DEPARTMENT as i32 && r.as_of.is_some()));
        }
    }
    assert!(with_records > 0, "{key}: no generated person has a record here");

    // Asked about one item only, it answers that item only.
    let (h, records) = province.iter().find(|(_, r)| r.iter().any(|x| x.item == C::ITEMS[0])).expect("a record");
    let holder = records.iter().find(|x| x.item == C::ITEMS[0]).map(|x| x.person.clone()).expect("holder");
    let person = IdentityNumber::parse(&holder).expect("id");
    let answer = kit.query(&connector, &person, &C::ITEMS[..1]).await;
    assert_eq!(found(&answer.records), truth(records, &holder, &C::ITEMS[..1]), "{key}: household {}", h.index);

    // Someone the department has never heard of.
    let stranger = IdentityNumber::parse("11010519491231002X").expect("id");
    let answer = kit.query(&connector, &stranger, C::ITEMS).await;
    assert!(answer.records.is_empty() && answer.unavailable.is_empty(), "{key}: {answer:?}");

    // Busy: each call is tried 1 + retries times, then its items are unavailable with the reason.
    sim.set(key, Behaviour { error_rate: 1.0, ..Default::default() });
    let calls = connector.calls(&person, C::ITEMS).len() as u64;
    let before = sim.requests(key);
    let answer = kit.query(&connector, &person, C::ITEMS).await;
    assert_eq!(sim.requests(key) - before, calls * (1 + retries as u64), "{key}: attempts");
    assert!(answer.records.is_empty());
    for item in C::ITEMS {
        let reason =
            answer.unavailable.get(item.as_str_name()).unwrap_or_else(|| panic!("{key}: {item:?} not unavailable"));
        assert!(reason.contains("部门系统繁忙"), "{key}: {reason}");
    }

    // Down: cut off by the timeout on every attempt.
    sim.set(key, Behaviour { down: true, ..Default::default() });
    let started = Instant::now();
    let answer = kit.query(&connector, &person, C::ITEMS).await;
    assert!(started.elapsed() < timeout * (retries + 1) + Duration::from_secs(2), "{key}: {:?}", started.elapsed());
    for item in C::ITEMS {
        let reason = answer.unavailable.get(item.as_str_name()).unwrap_or_else(|| panic!("{key}: {item:?}"));
        assert!(reason.contains("无法连接") && reason.contains("毫秒内未应答"), "{key}: {reason}");
    }

    // Back to normal, answered again.
    sim.set(key, Behaviour::default());
    let answer = kit.query(&connector, &person, C::ITEMS).await;
    assert!(answer.unavailable.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_security_conforms() {
    conformance(public_security::PublicSecurity, "public_security").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_resources_conforms() {
    conformance(human_resources::HumanResources, "human_resources").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housing_conforms() {
    conformance(housing::Housing, "housing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commerce_conforms() {
    conformance(commerce::Commerce, "commerce").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banks_conform() {
    let banks = BANKS.iter().map(|(code, name)| Bank { code: (*code).into(), name: (*name).into() }).collect();
    conformance(Banks { banks }, "bank").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tax_conforms() {
    conformance(tax::Tax, "tax").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disability_federation_conforms() {
    conformance(disability_federation::DisabilityFederation, "disability_federation").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medical_insurance_conforms() {
    conformance(medical_insurance::MedicalInsurance, "medical_insurance").await;
}

/// A department's front end over HTTPS: the adapter trusts the CA it is
/// given and nothing else; a front end it does not trust never receives the
/// query, and the items say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_asks_an_https_department_trusting_only_its_ca() {
    let (_db, pool, province) = departments(11, 60).await;
    let department_ca = DevCa::generate("税务内网测试CA").expect("ca");
    let front_end = department_ca.issue("tax-frontend").expect("certificate");
    let sim = Simulator::start_https(pool, "127.0.0.1:0".parse().expect("addr"), &front_end.cert, &front_end.key)
        .await
        .expect("simulator");
    assert!(sim.base_url().starts_with("https://"));
    let timeout = Duration::from_millis(500);

    let trusting = DepartmentTls { ca_pem: department_ca.pem.cert.clone(), client: None };
    let kit = Kit::new(&sim.base_url(), timeout, 0, Some(&trusting)).expect("kit");
    let mut with_records = 0;
    for (_, records) in &province {
        for person in records.iter().filter(|r| tax::Tax::ITEMS.contains(&r.item)).map(|r| r.person.clone()) {
            let answer = kit.query(&tax::Tax, &IdentityNumber::parse(&person).expect("id"), tax::Tax::ITEMS).await;
            assert!(answer.unavailable.is_empty(), "{:?}", answer.unavailable);
            assert_eq!(found(&answer.records), truth(records, &person, tax::Tax::ITEMS));
            with_records += 1;
        }
    }
    assert!(with_records > 0, "no generated person pays income tax");

    // Another CA's front end (a spoofed address, a wrong configuration).
    let stranger_ca = DevCa::generate("其他CA").expect("ca");
    let distrusting = DepartmentTls { ca_pem: stranger_ca.pem.cert.clone(), client: None };
    let kit = Kit::new(&sim.base_url(), timeout, 0, Some(&distrusting)).expect("kit");
    let before = sim.requests("tax");
    let person = IdentityNumber::parse(&province[0].0.members[0].identity_number).expect("id");
    let answer = kit.query(&tax::Tax, &person, tax::Tax::ITEMS).await;
    assert!(answer.records.is_empty());
    let reason = answer.unavailable.get(Item::IncomeTax.as_str_name()).expect("unavailable");
    assert!(reason.contains("部门系统无法连接") && reason.contains("certificate"), "{reason}");
    assert_eq!(sim.requests("tax"), before, "an untrusted front end received the query");

    // HTTPS without the department's CA is a configuration error, not a query.
    let e = Kit::new(&sim.base_url(), timeout, 0, None).err().expect("no CA");
    assert!(e.to_string().contains("CA"), "{e}");
}

/// A department that shares by database: the real-estate register's
/// front-end view answers exactly what its API does; a view held by a lock,
/// a database that is not there and a view that is gone each leave the
/// items unavailable with the reason, and only what passes is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housing_answers_from_its_front_end_view() {
    let (db, pool, province) = departments(13, 150).await;
    let sim = Simulator::start(pool.clone(), "127.0.0.1:0".parse().expect("addr")).await.expect("simulator");
    let (timeout, retries) = (Duration::from_millis(300), 1);
    let view = Kit::view(&db.url, timeout, retries, 4).expect("view kit");
    let api = Kit::new(&sim.base_url(), timeout, retries, None).expect("api kit");
    let items = housing::Housing::ITEMS;

    let mut with_records = 0;
    for (h, records) in &province {
        for m in h.members.iter().map(|m| &m.identity_number) {
            let person = IdentityNumber::parse(m).expect("id");
            let answer = view.query(&housing::Housing, &person, items).await;
            assert!(answer.unavailable.is_empty(), "{:?}", answer.unavailable);
            assert_eq!(found(&answer.records), truth(records, m, items), "person {m}");
            // Attribute for attribute what the API gives.
            assert_eq!(answer.records, api.query(&housing::Housing, &person, items).await.records, "person {m}");
            with_records += usize::from(!answer.records.is_empty());
        }
    }
    assert!(with_records > 0, "no generated person owns a flat");
    let stranger = IdentityNumber::parse("11010519491231002X").expect("id");
    let answer = view.query(&housing::Housing, &stranger, items).await;
    assert!(answer.records.is_empty() && answer.unavailable.is_empty(), "{answer:?}");

    // The department's DBA holds the table (a reload, a migration): every
    // attempt is cut off at the timeout, and the query gives up in time.
    let owner = province.iter().flat_map(|(_, r)| r.iter()).find(|r| r.item == Item::Property).expect("owner");
    let owner = IdentityNumber::parse(&owner.person).expect("id");
    let mut locker = pool.get().await.expect("connection");
    let tx = locker.transaction().await.expect("tx");
    tx.batch_execute("LOCK TABLE dept_record IN ACCESS EXCLUSIVE MODE").await.expect("lock");
    let started = Instant::now();
    let answer = view.query(&housing::Housing, &owner, items).await;
    assert!(started.elapsed() < timeout * (retries + 1) + Duration::from_secs(1), "{:?}", started.elapsed());
    let reason = answer.unavailable.get(Item::Property.as_str_name()).expect("unavailable while locked");
    assert!(reason.contains("部门系统无法连接") && reason.contains("毫秒内未应答"), "{reason}");
    tx.rollback().await.expect("unlock");
    // Answered again at once: the connections left waiting were closed, not reused.
    let started = Instant::now();
    let answer = view.query(&housing::Housing, &owner, items).await;
    assert!(answer.unavailable.is_empty() && !answer.records.is_empty(), "{answer:?}");
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());

    // A database that is not there.
    let nowhere = Kit::view("postgres://postgres@127.0.0.1:1/qzk", timeout, 0, 1).expect("kit");
    let answer = nowhere.query(&housing::Housing, &owner, items).await;
    let reason = answer.unavailable.get(Item::Property.as_str_name()).expect("unavailable");
    assert!(reason.contains("部门系统无法连接"), "{reason}");

    // The view gone (renamed by the department): refused, with the
    // database's own words — a refusal, which the kit does not retry (its
    // unit test counts the attempts; a clock here would only measure load).
    pool.get().await.expect("c").batch_execute("DROP VIEW qzk.zjj_bdc_fwxx").await.expect("drop");
    let answer = view.query(&housing::Housing, &owner, items).await;
    let reason = answer.unavailable.get(Item::Property.as_str_name()).expect("unavailable");
    assert!(reason.contains("部门系统拒绝查询") && reason.contains("zjj_bdc_fwxx"), "{reason}");
}
