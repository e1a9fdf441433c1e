//! Kafka over TLS (`kafka.tls`), as a production cluster has it: a broker
//! listener with a certificate of the cluster's CA and clients proven by a
//! certificate of the clients' CA (Strimzi's `KafkaUser` with `tls`
//! authentication). Civil affairs and poverty alleviation start on it and an
//! imported household crosses from one to the other through it; a service
//! given another CA refuses the broker's certificate and does not start,
//! saying why; one without a client certificate is refused by the broker.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::runtime::service::Service;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::OfficerRole;
use dibao_test_mesh::all::{county_with, enrolled_pair};
use dibao_test_mesh::rosters::province_officer;
use dibao_tests::spawn::settings_of;
use dibao_tests::{Broker, Spawn, TestDb, TestEnv, random_prefix, spawn_with};

type Civil = dibao_civil_affairs::Application;
type Poverty = dibao_poverty_alleviation::Application;

/// `S`'s Kafka settings: TLS trusting the CA in `ca_dir`, and the client
/// certificate `S`'s name has in `clients` if given.
fn kafka_tls<S: Service>(how: Spawn, ca_dir: &Path, clients: Option<&Path>) -> Spawn {
    let how = how
        .var::<S>("KAFKA__TLS__CA_CERT", ca_dir.join("ca.pem").display().to_string())
        // `localhost` may resolve to ::1 first, where the listener is not.
        .var::<S>("KAFKA__PROPERTIES__BROKER_ADDRESS_FAMILY", "v4");
    match clients {
        Some(dir) => how
            .var::<S>("KAFKA__TLS__CERT", dir.join(format!("{}.pem", S::NAME)).display().to_string())
            .var::<S>("KAFKA__TLS__KEY", dir.join(format!("{}.key", S::NAME)).display().to_string()),
        None => how,
    }
}

/// Starting `S` as `how` says fails; what it says.
async fn refused<S: Service>(env: &TestEnv, how: Spawn) -> String {
    let settings = settings_of::<S>(env, &how.vars);
    match S::build(settings, Arc::new(SystemClock), env.shutdown()).await {
        Ok(_) => panic!("{} started", S::NAME),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_reach_kafka_over_verified_tls_and_refuse_another_ca() {
    let dir = std::env::temp_dir().join(format!("dibao-kafka-tls-{}", uuid::Uuid::new_v4().simple()));
    let cluster_ca = DevCa::generate("Kafka cluster CA").expect("cluster ca");
    cluster_ca.write_all(&dir.join("cluster"), &[]).expect("cluster ca file");
    let listener = cluster_ca.issue("kafka").expect("listener certificate");
    let clients_ca = DevCa::generate("Kafka clients CA").expect("clients ca");
    clients_ca.write_all(&dir.join("clients"), &[Civil::NAME, Poverty::NAME]).expect("client certificates");
    DevCa::generate("another CA").expect("other").write_all(&dir.join("other"), &[]).expect("other ca file");
    let clients_ca_pem = std::fs::read_to_string(dir.join("clients/ca.pem")).expect("clients ca pem");

    let broker = Broker::start_tls(&listener.cert, &listener.key, &clients_ca_pem).await.expect("broker behind TLS");
    let certs = dir.join("mesh");
    DevCa::generate("mesh CA").expect("mesh ca").write_all(&certs, dibao_tests::spawn::IDENTITIES).expect("mesh");
    let env = TestEnv::on(TestDb::create().await.expect("database"), broker, certs, random_prefix());
    let clients = dir.join("clients");

    // Another CA: the service refuses the broker's certificate and says so.
    let said = refused::<Civil>(&env, kafka_tls::<Civil>(Spawn::default(), &dir.join("other"), Some(&clients))).await;
    assert!(said.contains("cannot reach the Kafka brokers"), "{said}");
    assert!(said.to_lowercase().contains("certificate"), "names the certificate: {said}");
    let seen = env.broker.handshakes();
    assert!(!seen.is_empty() && seen.iter().all(Result::is_err), "no handshake completed: {seen:?}");

    // The right CA but no certificate of its own: the broker refuses it.
    let before = env.broker.handshakes().len();
    let said = refused::<Civil>(&env, kafka_tls::<Civil>(Spawn::default(), &dir.join("cluster"), None)).await;
    assert!(said.contains("cannot reach the Kafka brokers"), "{said}");
    let seen = env.broker.handshakes();
    assert!(
        seen[before..].iter().any(|h| h.as_ref().is_err_and(|e| e.to_lowercase().contains("no certificate"))),
        "the broker asked for a client certificate and got none: {:?}",
        &seen[before..]
    );

    // Both services over verified TLS: a household imported into civil
    // affairs reaches poverty alleviation's view through the broker.
    let before = env.broker.handshakes().len();
    let civil =
        spawn_with::<Civil>(&env, kafka_tls::<Civil>(Spawn::default(), &dir.join("cluster"), Some(&clients))).await;
    let _poverty =
        spawn_with::<Poverty>(&env, kafka_tls::<Poverty>(Spawn::default(), &dir.join("cluster"), Some(&clients))).await;
    let desk = env.desk(Civil::NAME, OfficerRole::CountyOperator, "220581").claims(province_officer("220581"));
    let mut office = CivilAffairsServiceClient::new(env.officer_channel(civil.addr, desk).await);
    county_with(&mut office, "220581", std::iter::once(enrolled_pair(0, "TLS-1", "220581101201", "19700101", "王")))
        .await;

    let db = env.db.client().await.expect("db");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let held: i64 = db
            .query_one("SELECT count(*) FROM poverty_alleviation.dibao_household", &[])
            .await
            .expect("poverty's view")
            .get(0);
        if held == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the household did not cross the broker over TLS");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = env.broker.handshakes();
    assert!(seen.len() > before, "the services connected through the TLS listener");
    assert!(seen[before..].iter().all(Result::is_ok), "every handshake of theirs completed: {:?}", &seen[before..]);
    env.stop();
}
