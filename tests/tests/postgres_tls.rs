//! PostgreSQL over TLS with the server verified (`database.ca_cert`, as
//! libpq's `sslmode=verify-full`): against a PostgreSQL of the test's own
//! that takes TLS connections only, with a certificate from a CA of its own,
//! a pool with that CA connects over TLS and civil affairs starts and
//! serves on it; a pool trusting another CA is refused before any SQL, and
//! a plain connection is refused by the server. And the schema owner
//! migrates while the service serves as a runtime role without DDL.

use dibao_ops_tools::devpki::DevCa;
use dibao_platform::runtime::settings::DatabaseSettings;
use dibao_platform::store::db;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::common::v1::{DivisionCode, OfficerRole};
use dibao_tests::{Broker, PrivatePostgres, Spawn, TestEnv, random_prefix, spawn_with};

type Civil = dibao_civil_affairs::Application;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_connect_to_postgres_over_verified_tls_and_refuse_another_ca() {
    let dir = std::env::temp_dir().join(format!("dibao-pg-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let server_ca = DevCa::generate("PostgreSQL server CA").expect("ca");
    let server = server_ca.issue("postgres").expect("server certificate");
    // The CA's own certificate, as the services are given it.
    server_ca.write_all(&dir.join("server-ca"), &[]).expect("server ca");
    DevCa::generate("another CA").expect("other").write_all(&dir.join("other-ca"), &[]).expect("other ca");

    let pg = PrivatePostgres::start_tls(&server.cert, &server.key).await.expect("postgres with TLS");
    let test_db = pg.database().await.expect("database");
    // The name the certificate carries, not the address: verify-full checks it.
    let url = test_db.url.replace("127.0.0.1", "localhost");
    let settings = |ca: Option<std::path::PathBuf>| DatabaseSettings {
        url: url.clone().into(),
        schema: "tls_check".into(),
        pool_size: 2,
        owner_url: None,
        ca_cert: ca,
    };

    let pool = db::connect(&settings(Some(dir.join("server-ca/ca.pem")))).await.expect("verified TLS");
    let client = pool.get().await.expect("connection");
    let ssl: bool = client
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(ssl, "the connection is TLS");
    drop(client);

    let refused = db::connect(&settings(Some(dir.join("other-ca/ca.pem")))).await.expect_err("another CA");
    let message = format!("{refused:#} {:?}", refused);
    assert!(message.to_lowercase().contains("certificate"), "refused for the server's certificate: {message}");
    let plain = db::connect(&settings(None)).await.expect_err("plain TCP");
    let message = format!("{plain:?}");
    assert!(
        message.contains("pg_hba") || message.to_lowercase().contains("ssl"),
        "the server refuses plain TCP: {message}"
    );

    // A service on it: civil affairs migrates and serves over verified TLS.
    let broker = Broker::start().await.expect("broker");
    let certs = dir.join("mesh");
    DevCa::generate("mesh CA").expect("mesh ca").write_all(&certs, dibao_tests::spawn::IDENTITIES).expect("mesh certs");
    let tls_db = dibao_tests::TestDb { name: test_db.name.clone(), url: url.clone() };
    let env = TestEnv::on(tls_db, broker, certs, random_prefix());
    let civil = spawn_with::<Civil>(
        &env,
        Spawn::default().var::<Civil>("DATABASE__CA_CERT", dir.join("server-ca/ca.pem").display().to_string()),
    )
    .await;
    let desk = env.desk("civil-affairs", OfficerRole::TownshipCaseworker, "220581101");
    let mut client =
        ca::civil_affairs_service_client::CivilAffairsServiceClient::new(env.officer_channel(civil.addr, desk).await);
    let listed = client
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: "220581101".into() }),
            page: None,
        })
        .await
        .expect("civil affairs answers from its database over TLS");
    assert!(listed.into_inner().households.is_empty());
    let admin = pg.admin().await.expect("admin");
    let tls_backends: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'dibao-mesh/civil_affairs' AND s.ssl",
            &[],
        )
        .await
        .expect("backends")
        .get(0);
    assert!(tls_backends >= 1, "civil affairs' connections are TLS");
    env.stop();
}

/// The schema's owner migrates; the service serves as a runtime role that
/// reads and writes rows and can do nothing else: altering or creating a
/// table fails, and so does changing a row of an append-only table (their
/// triggers, which only the owner may disable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_migrate_as_the_owner_and_serve_as_a_runtime_role_without_ddl() {
    use dibao_platform::trust::access_log::{self, AccessEntry, AccessLog};

    let env = TestEnv::start().await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (owner, runtime) = (format!("owner_{suffix}"), format!("runtime_{suffix}"));
    let admin = env.db.client().await.expect("admin");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {owner} LOGIN; CREATE ROLE {runtime} LOGIN;
             GRANT CREATE ON DATABASE \"{db}\" TO {owner};",
            db = env.db.name
        ))
        .await
        .expect("roles");
    let as_role = |role: &str| env.db.url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let civil = spawn_with::<Civil>(
        &env,
        Spawn::default()
            .var::<Civil>("DATABASE__URL", as_role(&runtime))
            .var::<Civil>("DATABASE__OWNER_URL", as_role(&owner)),
    )
    .await;
    // It serves: a call reads its tables as the runtime role.
    let desk = env.desk("civil-affairs", OfficerRole::TownshipCaseworker, "220581101");
    let mut client =
        ca::civil_affairs_service_client::CivilAffairsServiceClient::new(env.officer_channel(civil.addr, desk).await);
    client
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: "220581101".into() }),
            page: None,
        })
        .await
        .expect("civil affairs serves as the runtime role");

    let tables_owner: String = admin
        .query_one(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'civil_affairs' AND tablename = 'household'",
            &[],
        )
        .await
        .expect("owner")
        .get(0);
    assert_eq!(tables_owner, owner, "the owner role ran the migrations");

    // As the runtime role: rows yes, DDL no, append-only rows unchangeable.
    let pool = db::connect(&DatabaseSettings {
        url: as_role(&runtime).into(),
        schema: "civil_affairs".into(),
        pool_size: 2,
        owner_url: Some(as_role(&owner).into()),
        ca_cert: None,
    })
    .await
    .expect("runtime pool");
    let log = AccessLog::start(pool.clone());
    log.record(AccessEntry {
        caller: "civil-affairs".into(),
        officer_id: "officer-1".into(),
        consent_id: String::new(),
        purpose: "test".into(),
        person: "110101199003074514".into(),
        items: vec![],
        outcome: access_log::ASKED.into(),
        completes: None,
    })
    .await
    .expect("the runtime role appends to the access log");
    let client = pool.get().await.expect("runtime connection");
    for (sql, what) in [
        ("ALTER TABLE household ADD COLUMN sneaked integer", "alter a table"),
        ("CREATE TABLE sneaked (id integer)", "create a table"),
        ("DROP TABLE household", "drop a table"),
        ("ALTER TABLE access_log DISABLE TRIGGER access_log_no_change", "disable the append-only trigger"),
        ("DELETE FROM access_log", "delete from the access log"),
        ("UPDATE access_log SET purpose = 'rewritten'", "rewrite the access log"),
        ("TRUNCATE access_log", "truncate the access log"),
    ] {
        let refused = client.batch_execute(sql).await.expect_err(what);
        let message = refused.as_db_error().map(|e| e.message().to_owned()).unwrap_or_else(|| refused.to_string());
        assert!(
            message.contains("must be owner")
                || message.contains("permission denied")
                || message.contains("append-only"),
            "{what}: {message}"
        );
    }
    let rows: i64 = admin.query_one("SELECT count(*) FROM civil_affairs.access_log", &[]).await.expect("count").get(0);
    assert_eq!(rows, 1, "the access log keeps its record");
    env.stop();
}
