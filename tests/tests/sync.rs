//! Both rosters through their real path — two services over mTLS, each with
//! its own schema, the real broker between them — and each change on one
//! roster showing on the other (R-SYNC-1, R-SYNC-2, R-REV-2).

use dibao_test_mesh::exits as mesh;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use dibao_platform::trust::officer::Claims;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation};
use dibao_proto::events::v1::{BenefitCategory, PovertyCause, RosterMember};
use dibao_proto::ops::v1::GetPipelineStatusRequest;
use dibao_proto::ops::v1::ops_service_client::OpsServiceClient;
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_tests::{OfficerChannel, Spawn, TestEnv, claims, officer, spawn_with};
use tonic_types::StatusExt;

const COUNTY: &str = "220581";
const TOWNSHIP: &str = "220581101";
const VILLAGE: &str = "220581101201";

struct Mesh {
    /// Each service as its county's office (import, register, record), unless a call names another officer.
    civil: CivilAffairsServiceClient<OfficerChannel>,
    poverty: PovertyAlleviationServiceClient<OfficerChannel>,
    /// The poverty service's ops RPCs, as a system operator calls them.
    poverty_ops: OpsServiceClient<OfficerChannel>,
    poverty_addr: SocketAddr,
    civil_addr: SocketAddr,
    env: TestEnv,
    /// Servers, relays and inboxes of both services, awaited on restart.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn start() -> Mesh {
    start_on(TestEnv::start().await, true).await
}

/// Both services on `env`; their inboxes only if `inboxes`.
async fn start_on(env: TestEnv, inboxes: bool) -> Mesh {
    type Civil = dibao_civil_affairs::Application;
    type Poverty = dibao_poverty_alleviation::Application;
    let civil = spawn_with::<Civil>(&env, Spawn::default().var::<Civil>("RUN__INBOX", inboxes.to_string())).await;
    let poverty = spawn_with::<Poverty>(&env, Spawn::default().var::<Poverty>("RUN__INBOX", inboxes.to_string())).await;
    let office = Claims {
        roles: vec![OfficerRole::CountyOperator, OfficerRole::CountyApprover, OfficerRole::PovertyOfficer],
        ..claims(OfficerRole::CountyOperator, COUNTY)
    };
    let desk = |service: &str| env.desk(service, OfficerRole::CountyOperator, COUNTY).claims(office.clone());
    let operator = env.desk("poverty-alleviation", OfficerRole::SystemOperator, COUNTY);
    let mut m = Mesh {
        civil: CivilAffairsServiceClient::new(env.officer_channel(civil.addr, desk("civil-affairs")).await),
        poverty: PovertyAlleviationServiceClient::new(
            env.officer_channel(poverty.addr, desk("poverty-alleviation")).await,
        ),
        poverty_ops: OpsServiceClient::new(env.officer_channel(poverty.addr, operator).await),
        poverty_addr: poverty.addr,
        civil_addr: civil.addr,
        env,
        tasks: Vec::new(),
    };
    for app in [civil.started, poverty.started] {
        let server = app.server;
        m.tasks.push(tokio::spawn(async move {
            let _ = server.await;
        }));
        m.tasks.extend(app.relay);
        if let Some(inbox) = app.inbox {
            m.tasks.push(tokio::spawn(async move {
                let _ = inbox.await;
            }));
        }
    }
    m
}

impl Mesh {
    /// Stops both services (gracefully: servers drained, relays flushed,
    /// inboxes' transactions finished or rolled back) and starts them again
    /// on the same database and broker, with or without their inboxes.
    async fn restart(self, inboxes: bool) -> Mesh {
        self.env.stop();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(30), task).await.expect("services stop").expect("join");
        }
        let (db, broker, certs, prefix) = self.env.into_parts();
        start_on(TestEnv::on(db, broker, certs, prefix), inboxes).await
    }

    /// Channels to both services as a system operator calls them.
    async fn ops_channels(&self) -> (OfficerChannel, OfficerChannel) {
        let operator = |service: &str| self.env.desk(service, OfficerRole::SystemOperator, COUNTY);
        (
            self.env.officer_channel(self.civil_addr, operator("civil-affairs")).await,
            self.env.officer_channel(self.poverty_addr, operator("poverty-alleviation")).await,
        )
    }
}

fn id(birth: &str, seq: u32) -> IdentityNumber {
    let body = format!("{COUNTY}{birth}{seq:03}");
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn person(birth: &str, seq: u32, name: &str) -> Option<Person> {
    Some(Person { identity_number: Some(id(birth, seq)), name: name.into(), ..Default::default() })
}

/// A couple (n, n + 1) as a dibao roster household with the county's number `source`.
fn dibao(source: &str, n: u32, village: &str) -> ca::ImportRosterRequest {
    let member = |seq, name: &str, relation: Relation| ca::Member {
        person: person("19600101", seq, name),
        relation: relation as i32,
        work_ability: ca::WorkAbility::None as i32,
        covered: true,
        ..Default::default()
    };
    ca::ImportRosterRequest {
        row: 1,
        household: Some(ca::Household {
            household_id: source.into(),
            village: Some(DivisionCode { code: village.into() }),
            category: BenefitCategory::A as i32,
            members: vec![member(n, "王建国", Relation::Head), member(n + 1, "李秀英", Relation::Spouse)],
            monthly_amount: Some(Money { fen: 90_000 }),
            ..Default::default()
        }),
    }
}

/// A registered-poor household: members `seqs`, the first the head.
fn poor(seqs: &[u32], village: &str) -> pa::PoorHousehold {
    pa::PoorHousehold {
        village: Some(DivisionCode { code: village.into() }),
        members: seqs
            .iter()
            .enumerate()
            .map(|(i, s)| RosterMember {
                person: person("19600101", *s, if i == 0 { "王建国" } else { "王小兰" }),
                relation: if i == 0 { Relation::Head } else { Relation::Child } as i32,
                covered: false,
            })
            .collect(),
        causes: vec![PovertyCause::Illness as i32],
        ..Default::default()
    }
}

/// Polls until `check` holds, for up to 30 s; the last value on failure.
async fn eventually<T: std::fmt::Debug, F: Future<Output = T>>(
    what: &str,
    mut f: impl FnMut() -> F,
    check: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = f().await;
        if check(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: still {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn import(m: &mut Mesh, rows: Vec<ca::ImportRosterRequest>) -> Vec<String> {
    let r = m.civil.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let list = m
        .civil
        .list_households(ca::ListHouseholdsRequest { division: Some(DivisionCode { code: COUNTY.into() }), page: None })
        .await
        .expect("list")
        .into_inner();
    list.households.into_iter().map(|h| h.household_id).collect()
}

async fn register(m: &mut Mesh, h: pa::PoorHousehold) -> String {
    m.poverty
        .register_household(officer(
            OfficerRole::PovertyOfficer,
            TOWNSHIP,
            pa::RegisterHouseholdRequest { household: Some(h) },
        ))
        .await
        .expect("register")
        .into_inner()
        .household_id
}

async fn poor_household(c: &PovertyAlleviationServiceClient<OfficerChannel>, id: &str) -> pa::PoorHousehold {
    c.clone()
        .get_household(pa::GetHouseholdRequest { household_id: id.into() })
        .await
        .expect("get")
        .into_inner()
        .household
        .expect("household")
}

async fn change(m: &mut Mesh, id: &str, status: pa::PovertyStatus, cause: PovertyCause) {
    m.poverty
        .change_status(officer(
            OfficerRole::PovertyOfficer,
            TOWNSHIP,
            pa::ChangeStatusRequest {
                household_id: id.into(),
                status: status as i32,
                exit_year: 2024,
                return_cause: cause as i32,
            },
        ))
        .await
        .expect("change status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_on_one_roster_shows_on_the_other() {
    let mut m = start().await;

    // Registered before the dibao enrolment of its head (seq 1), P1 is
    // flagged once civil affairs' event arrives; P2 is registered after,
    // flagged by the office as it registers it (R-ROSTER-2).
    let p1 = register(&mut m, poor(&[1, 50], VILLAGE)).await;
    let dibao_ids =
        import(&mut m, vec![dibao("D-1", 1, VILLAGE), dibao("D-2", 3, VILLAGE), dibao("D-3", 5, VILLAGE)]).await;
    assert_eq!(dibao_ids.len(), 3);
    let p2 = register(&mut m, pa::PoorHousehold { dibao_registered_poor: true, ..poor(&[3, 4], VILLAGE) }).await;

    let poverty = m.poverty.clone();
    let h1 = eventually("P1 flagged", || poor_household(&poverty, &p1), |h| h.dibao_registered_poor).await;
    assert_eq!((h1.flag_recorded_by.as_str(), h1.flag_basis.as_str()), ("sync", "民政低保（特困）纳入"), "{h1:?}");
    assert_eq!(h1.dibao_category, BenefitCategory::A as i32);
    assert_eq!(h1.dibao_household_ids.len(), 1);
    let d1 = h1.dibao_household_ids[0].clone();
    let h2 =
        eventually("D-2 matched with P2", || poor_household(&poverty, &p2), |h| h.dibao_household_ids.len() == 1).await;
    assert!(h2.dibao_registered_poor && h2.flag_recorded_by != "sync" && h2.flag_basis == "建档立卡登记", "{h2:?}");
    let d2 = h2.dibao_household_ids[0].clone();

    // D-3 has no registered-poor member: a candidate for the poverty office (R-REV-2).
    let candidates = eventually(
        "D-3 is the only candidate",
        || {
            let mut c = m.poverty.clone();
            async move {
                c.list_candidates(pa::ListCandidatesRequest {
                    division: Some(DivisionCode { code: TOWNSHIP.into() }),
                    page: None,
                })
                .await
                .expect("candidates")
                .into_inner()
                .candidates
            }
        },
        |c| c.len() == 1,
    )
    .await;
    assert!(candidates[0].members.iter().any(|i| i == &id("19600101", 5)), "{candidates:?}");

    // P1 exits poverty and returns for illness: D-1 is reviewed first (R-REV-2).
    // P3, not on the dibao roster, returns too: a candidate for the next adjustment.
    let p3 = register(&mut m, poor(&[20, 21], VILLAGE)).await;
    for p in [&p1, &p3] {
        change(&mut m, p, pa::PovertyStatus::Exited, PovertyCause::Unspecified).await;
        change(&mut m, p, pa::PovertyStatus::Returned, PovertyCause::Illness).await;
    }
    let due = eventually(
        "priority reviews",
        || {
            let mut c = m.civil.clone();
            async move {
                c.list_reviews_due(ca::ListReviewsDueRequest {
                    township: Some(DivisionCode { code: TOWNSHIP.into() }),
                    as_of: None,
                    page: None,
                })
                .await
                .expect("reviews due")
                .into_inner()
                .reviews
            }
        },
        |r| r.len() == 2,
    )
    .await;
    assert!(due.iter().all(|r| r.priority), "{due:?}");
    let on_roster = due.iter().find(|r| r.household_id == d1).expect("D-1 due");
    assert!(on_roster.reason.contains("因病返贫"), "{}", on_roster.reason);
    let candidate = due.iter().find(|r| r.household_id.is_empty()).expect("P3 as a candidate");
    // Named by the office's household number, never by its internal id.
    let number = poor_household(&m.poverty, &p3).await.household_number;
    assert_eq!(candidate.household_number, number);
    assert!(
        candidate.reason.contains(&format!("户编号{number}")) && !candidate.reason.contains(&p3),
        "{}",
        candidate.reason
    );
    assert!(candidate.reason.contains("不在低保名单"), "{}", candidate.reason);

    // A death recorded by the poverty office reaches the dibao roster ...
    m.poverty
        .record_death(officer(
            OfficerRole::PovertyOfficer,
            TOWNSHIP,
            pa::RecordDeathRequest {
                identity_number: Some(id("19600101", 2)),
                died_on: Some(dibao_proto::common::v1::Date { year: 2026, month: 10, day: 3 }),
                source: "村委会报告".into(),
            },
        ))
        .await
        .expect_err("seq 2 is only on the dibao roster");
    m.poverty
        .record_death(officer(
            OfficerRole::PovertyOfficer,
            TOWNSHIP,
            pa::RecordDeathRequest {
                identity_number: Some(id("19600101", 1)),
                died_on: Some(dibao_proto::common::v1::Date { year: 2026, month: 10, day: 3 }),
                source: "村委会报告".into(),
            },
        ))
        .await
        .expect("death on the poverty roster");
    let civil = m.civil.clone();
    let d1_now = || {
        let mut c = civil.clone();
        let d1 = d1.clone();
        async move {
            c.get_household(ca::GetHouseholdRequest { household_id: d1 })
                .await
                .expect("get")
                .into_inner()
                .household
                .expect("household")
        }
    };
    eventually("the death known to civil affairs", d1_now, |h| h.deceased.iter().any(|i| i == &id("19600101", 1)))
        .await;

    // ... and one recorded by civil affairs reaches the poverty roster.
    m.civil
        .record_death(officer(
            OfficerRole::TownshipCaseworker,
            TOWNSHIP,
            ca::RecordDeathRequest {
                identity_number: Some(id("19600101", 4)),
                died_on: Some(dibao_proto::common::v1::Date { year: 2026, month: 10, day: 5 }),
                source: "公安死亡登记".into(),
            },
        ))
        .await
        .expect("death on the dibao roster");
    eventually(
        "the death known to the poverty office",
        || poor_household(&poverty, &p2),
        |h| h.deceased.iter().any(|i| i == &id("19600101", 4)),
    )
    .await;

    // D-2's exit, signed through, clears P2's flag (R-SYNC-2).
    mesh::exit_household(&mut m.civil, &d2, TOWNSHIP).await;
    // Seq 3 (D-2's head) still links P2 to D-2 after seq 4's death.
    assert!(poor_household(&poverty, &p2).await.dibao_registered_poor);
    let h2 = eventually("P2's flag cleared", || poor_household(&poverty, &p2), |h| !h.dibao_registered_poor).await;
    assert!(h2.dibao_household_ids.is_empty());
    // The operator's view: the poverty service's inbox has applied every
    // civil-affairs event, partition by partition, nothing dead-lettered.
    let status = eventually(
        "poverty inbox caught up",
        || {
            let mut c = m.poverty_ops.clone();
            async move { c.get_pipeline_status(GetPipelineStatusRequest {}).await.expect("status").into_inner() }
        },
        |s| s.consumer_lag.iter().all(|l| l.lag == 0) && s.outbox_pending == 0,
    )
    .await;
    let civil_partitions = status.consumer_lag.iter().filter(|l| l.topic.ends_with("civil-affairs.household.v1"));
    assert_eq!(civil_partitions.count(), 6, "every partition of the civil-affairs topic: {status:?}");
    assert_eq!(status.consumer_lag.len(), 7, "and the comparison's runs: {status:?}");
    assert!(status.consumer_lag.iter().map(|l| l.high_watermark).sum::<i64>() > 0, "{status:?}");
    assert!(status.lag_error.is_empty() && status.dead_letters_open == 0, "{status:?}");
    assert!(status.last_applied_event_type.starts_with("dibao.events.v1."), "{status:?}");

    // P1 shared only its head with D-1; since his death nothing links them.
    let h1 = poor_household(&poverty, &p1).await;
    assert!(!h1.dibao_registered_poor && h1.dibao_household_ids.is_empty(), "{h1:?}");
    assert_eq!(h1.deceased, [id("19600101", 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registered_poor_roster_file_imports_with_errors_by_line_and_column() {
    let mut m = start().await;
    let dibao_ids = import(&mut m, vec![dibao("D-9", 30, VILLAGE)]).await;
    let dir = std::env::temp_dir().join(format!("dibao-poor-roster-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let line = |key: &str, seq: u32, name: &str, relation: &str, causes: &str| {
        let flag = if key == "P-1" && !causes.is_empty() { "是" } else { "" };
        format!("{key},{VILLAGE},{name},{},{relation},{causes},产业帮扶,{flag}\n", id("19600101", seq).value)
    };
    // P-1 shares its head (seq 30) with the dibao household D-9; P-2's second line has an unknown relation.
    let csv = [
        "户编号,村（社区）代码,姓名,身份证号,与户主关系,致贫原因,帮扶措施,扶贫低保户\n".to_owned(),
        line("P-1", 30, "王建国", "户主", "因病；缺劳力"),
        line("P-1", 60, "王小兰", "女儿", ""),
        line("P-2", 61, "张三", "户主", "因残"),
        line("P-2", 62, "张四", "表亲", ""),
    ]
    .concat();
    let file = dir.join("建档立卡.csv");
    std::fs::write(&file, csv).expect("csv");
    // The poverty office's officer imports through the gateway, logged in.
    let gw = dibao_test_mesh::gateway::start(&m.env, &[("poverty-alleviation", m.poverty_addr)]).await;
    let token = gw.token("poverty-220581", &[OfficerRole::PovertyOfficer], COUNTY).await;
    let token_file = dir.join("token");
    std::fs::write(&token_file, &token).expect("token");
    let run = || {
        tokio::process::Command::new(dibao_tests::service_binary("poor-roster-import"))
            .args(["--server", &gw.addr.to_string(), "--ca"])
            .arg(&gw.ca)
            .arg("--token")
            .arg(&token_file)
            .arg(&file)
            .output()
    };
    let out = run().await.expect("poor-roster-import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("读取2户：新增或更新1户，未变化0户，有误1行"), "{stdout}");
    assert!(stdout.contains("第5行【与户主关系】“表亲”无法识别"), "{stdout}");
    let again = run().await.expect("again");
    assert!(String::from_utf8_lossy(&again.stdout).contains("新增或更新0户，未变化1户"), "{again:?}");

    // The imported household carries the office's flag from its file, and
    // D-9, which shares its head, as a registered one does.
    let poverty = m.poverty.clone();
    let exported = || {
        let mut c = poverty.clone();
        async move {
            let mut stream = c
                .export_roster(pa::ExportRosterRequest { division: Some(DivisionCode { code: VILLAGE.into() }) })
                .await
                .expect("export")
                .into_inner();
            let mut out = Vec::new();
            while let Some(m) = stream.message().await.expect("message") {
                out.extend(m.household);
            }
            out
        }
    };
    let roster = eventually("P-1 matched", exported, |r| r.len() == 1 && r[0].dibao_household_ids == dibao_ids).await;
    assert!(roster[0].dibao_registered_poor && roster[0].flag_basis == "建档立卡名单导入", "{:?}", roster[0]);
    assert_eq!(roster[0].members.len(), 2);

    // The file cannot change a household already registered (issue 23,
    // item 6): a member added to P-1's lines is refused, naming the process.
    let grown = [
        "户编号,村（社区）代码,姓名,身份证号,与户主关系,致贫原因,帮扶措施,扶贫低保户\n".to_owned(),
        line("P-1", 30, "王建国", "户主", "因病；缺劳力"),
        line("P-1", 60, "王小兰", "女儿", ""),
        line("P-1", 63, "王小宝", "儿子", ""),
    ]
    .concat();
    std::fs::write(&file, grown).expect("csv");
    let refused = run().await.expect("refused");
    let said = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(3), "{said}");
    assert!(said.contains("已在库") && said.contains("成员变更"), "{said}");
    // The office changes the members itself; the change reaches its roster.
    let members: Vec<RosterMember> =
        [(30, "王建国", Relation::Head), (60, "王小兰", Relation::Child), (63, "王小宝", Relation::Child)]
            .into_iter()
            .map(|(seq, name, relation)| RosterMember {
                person: person("19600101", seq, name),
                relation: relation as i32,
                covered: false,
            })
            .collect();
    let change = |members: Vec<RosterMember>, reason: &str| {
        officer(
            OfficerRole::PovertyOfficer,
            TOWNSHIP,
            pa::ChangeMembersRequest { household_id: roster[0].household_id.clone(), members, reason: reason.into() },
        )
    };
    let e = m.poverty.change_members(change(members.clone(), "")).await.expect_err("no reason");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "reason");
    m.poverty.change_members(change(members.clone(), "新生儿落户")).await.expect("members changed");
    let e = m.poverty.change_members(change(members, "新生儿落户")).await.expect_err("nothing changed");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    eventually("P-1's newborn", exported, |r| r.len() == 1 && r[0].members.len() == 3).await;
    // Kept with why and who recorded it.
    let kept = m
        .env
        .db
        .client()
        .await
        .expect("db")
        .query_one("SELECT joined, reason, officer_id FROM poverty_alleviation.member_change", &[])
        .await
        .expect("the change kept");
    assert_eq!(kept.get::<_, Vec<String>>(0), [id("19600101", 63).value]);
    assert_eq!(
        (kept.get::<_, String>(1), kept.get::<_, String>(2)),
        ("新生儿落户".to_owned(), "poverty_officer-220581101".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_corrects_every_divergence_between_the_views() {
    let mut m = start().await;
    // Registered before D-1's enrolment, which flags P-1 (R-SYNC-2).
    let p1 = register(&mut m, poor(&[70, 80], VILLAGE)).await;
    let p2 = register(&mut m, poor(&[90, 91], VILLAGE)).await;
    let dibao_ids = import(&mut m, vec![dibao("D-1", 70, VILLAGE), dibao("D-2", 72, VILLAGE)]).await;
    let poverty = m.poverty.clone();
    let h1 = eventually("P-1 flagged", || poor_household(&poverty, &p1), |h| h.dibao_registered_poor).await;
    let d1 = h1.dibao_household_ids[0].clone();
    let d2 = dibao_ids.iter().find(|d| **d != d1).expect("D-2").clone();
    let db = m.env.db.client().await.expect("db");
    let count = |sql: &'static str| {
        let db = &db;
        move || async move { db.query_one(sql, &[]).await.expect("count").get::<_, i64>(0) }
    };
    eventually(
        "civil affairs sees both registered households",
        count("SELECT count(*) FROM civil_affairs.poverty_household"),
        |n| *n == 2,
    )
    .await;
    eventually(
        "the poverty office sees both dibao households",
        count("SELECT count(*) FROM poverty_alleviation.dibao_household"),
        |n| *n == 2,
    )
    .await;

    // Divergences as lost events or a broker's data loss leave them.
    db.batch_execute(&format!(
        "DELETE FROM poverty_alleviation.dibao_member WHERE dibao_household_id = '{d2}';
         DELETE FROM poverty_alleviation.dibao_household WHERE dibao_household_id = '{d2}';
         UPDATE poverty_alleviation.dibao_household SET category = 3 WHERE dibao_household_id = '{d1}';
         UPDATE poverty_alleviation.poor_household SET dibao_registered_poor = false, dibao_category = 0,
                dibao_household_ids = '{{}}' WHERE household_id = '{p1}';
         INSERT INTO poverty_alleviation.dibao_household VALUES ('ghost', '{VILLAGE}', 1, 1, true, 1);
         DELETE FROM civil_affairs.poverty_member WHERE poor_household_id = '{p2}';
         DELETE FROM civil_affairs.poverty_household WHERE poor_household_id = '{p2}';
         UPDATE civil_affairs.poverty_household SET status = 2, exit_year = 2024 WHERE poor_household_id = '{p1}';"
    ))
    .await
    .expect("diverge");

    let (civil, poverty_channel) = m.ops_channels().await;
    let done = dibao_ops_tools::resync::resync(civil, poverty_channel, COUNTY).await.expect("resync");
    let d = &done.dibao_view;
    assert_eq!((d.households_in_snapshot, d.added, d.updated, d.removed, d.unchanged), (2, 1, 1, 1, 0), "{d:?}");
    assert_eq!(d.flags_changed, 1, "P-1's flag restored: {d:?}");
    assert!(d.corrections.iter().any(|c| c.contains("ghost") && c.contains("已从视图删除")), "{d:?}");
    let p = &done.poverty_view;
    assert_eq!((p.households_in_snapshot, p.added, p.updated, p.removed, p.unchanged), (2, 1, 1, 0, 0), "{p:?}");
    assert!(p.corrections.iter().any(|c| c.contains(&p1) && c.contains("脱贫/返贫状态")), "{p:?}");
    let h1 = poor_household(&m.poverty, &p1).await;
    assert!(h1.dibao_registered_poor && h1.dibao_household_ids == [d1.clone()], "{h1:?}");

    // A second run finds nothing to correct.
    let (civil, poverty_channel) = m.ops_channels().await;
    let again = dibao_ops_tools::resync::resync(civil, poverty_channel, COUNTY).await.expect("again");
    for r in [&again.dibao_view, &again.poverty_view] {
        assert_eq!((r.added, r.updated, r.removed, r.flags_changed, r.unchanged), (0, 0, 0, 0, 2), "{r:?}");
    }

    // Events after the resync still apply on top of it.
    change(&mut m, &p2, pa::PovertyStatus::Exited, PovertyCause::Unspecified).await;
    eventually(
        "P-2's exit reaches civil affairs",
        count("SELECT count(*) FROM civil_affairs.poverty_household WHERE status = 2 AND exit_year = 2024"),
        |n| *n == 1,
    )
    .await;
}

/// Waits until both services' outboxes have published everything: up to
/// 90 s, for a relay whose producer is stuck after the broker lost its data
/// gives it up only after 10 s without a delivery report.
async fn all_published(db: &tokio_postgres::Client) {
    let started = tokio::time::Instant::now();
    loop {
        let unpublished: i64 = db
            .query_one(
                "SELECT (SELECT count(*) FROM civil_affairs.outbox WHERE published_at IS NULL)
                      + (SELECT count(*) FROM poverty_alleviation.outbox WHERE published_at IS NULL)",
                &[],
            )
            .await
            .expect("outbox")
            .get(0);
        if unpublished == 0 {
            println!("both outboxes published after {:.1} s", started.elapsed().as_secs_f64());
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{unpublished} events still unpublished after 90 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_broker_loses_its_data_events_flow_again_and_resync_corrects_what_was_lost() {
    let mut m = start().await;
    let p1 = register(&mut m, poor(&[100], VILLAGE)).await;
    import(&mut m, vec![dibao("W-1", 100, VILLAGE)]).await;
    let poverty = m.poverty.clone();
    eventually("P-1 flagged before the loss", || poor_household(&poverty, &p1), |h| h.dibao_registered_poor).await;
    let db = m.env.db.client().await.expect("db");
    let civil_sees = |id: String| {
        let db = &db;
        move || {
            let id = id.clone();
            async move {
                db.query_one(
                    "SELECT count(*) FROM civil_affairs.poverty_household WHERE poor_household_id = $1",
                    &[&id],
                )
                .await
                .expect("view")
                .get::<_, i64>(0)
            }
        }
    };
    eventually("civil affairs sees P-1", civil_sees(p1.clone()), |n| *n == 1).await;

    // Events published while the consumers are away, then lost with the broker's data.
    let mut m = m.restart(false).await;
    import(&mut m, vec![dibao("W-2", 110, VILLAGE)]).await;
    let p2 = register(&mut m, poor(&[110], VILLAGE)).await;
    let p3 = register(&mut m, poor(&[120], VILLAGE)).await;
    all_published(&db).await;
    m.env.broker.wipe().await.expect("wipe");
    // As the operator's broker start-up does: the topics exist before anyone produces.
    let ks = m.env.broker.kafka_settings(&m.env.prefix, "operator");
    let topics: Vec<(String, i32)> =
        [dibao_proto::topics::CIVIL_AFFAIRS_HOUSEHOLD, dibao_proto::topics::POVERTY_ALLEVIATION_HOUSEHOLD]
            .iter()
            .map(|(name, partitions)| (dibao_platform::events::kafka::topic(&ks, name), *partitions))
            .collect();
    dibao_platform::events::kafka::ensure_topics(&ks, &topics).await.expect("topics");

    // Published after the loss by the same relays (whose producer the empty
    // broker no longer knows), consumed by inboxes whose recorded positions
    // are beyond the new logs' ends.
    let p4 = register(&mut m, poor(&[130], VILLAGE)).await;
    import(&mut m, vec![dibao("W-4", 130, VILLAGE)]).await;
    all_published(&db).await;
    let mut m = m.restart(true).await;
    let poverty = m.poverty.clone();
    eventually("P-4 flagged after the loss", || poor_household(&poverty, &p4), |h| h.dibao_registered_poor).await;
    eventually("civil affairs sees P-4", civil_sees(p4.clone()), |n| *n == 1).await;
    // What the broker lost is missing on the other side.
    assert!(!poor_household(&m.poverty, &p2).await.dibao_registered_poor, "W-2's enrolment was lost");
    assert_eq!(civil_sees(p3.clone())().await, 0, "P-3's registration was lost");

    let (civil, poverty_channel) = m.ops_channels().await;
    let done = dibao_ops_tools::resync::resync(civil, poverty_channel, COUNTY).await.expect("resync");
    let d = &done.dibao_view;
    assert_eq!((d.added, d.updated, d.removed, d.flags_changed), (1, 0, 0, 1), "W-2 added, P-2 flagged: {d:?}");
    let p = &done.poverty_view;
    assert_eq!((p.added, p.removed), (2, 0), "P-2 and P-3 added: {p:?}");
    assert!(poor_household(&m.poverty, &p2).await.dibao_registered_poor);
    assert_eq!(civil_sees(p3.clone())().await, 1);

    // And the pipeline goes on: a new change arrives, every partition caught up.
    let p5 = register(&mut m, poor(&[140], VILLAGE)).await;
    import(&mut m, vec![dibao("W-5", 140, VILLAGE)]).await;
    let poverty = m.poverty.clone();
    eventually("P-5 flagged", || poor_household(&poverty, &p5), |h| h.dibao_registered_poor).await;
    let ops = m.poverty_ops.clone();
    eventually(
        "no lag on any partition",
        || async {
            let status = ops.clone().get_pipeline_status(GetPipelineStatusRequest {}).await.expect("ops").into_inner();
            status.consumer_lag.iter().map(|l| l.lag).collect::<Vec<_>>()
        },
        |lags| !lags.is_empty() && lags.iter().all(|l| *l == 0),
    )
    .await;
}

async fn set_flag(m: &mut Mesh, township: &str, id: &str, flag: bool, basis: &str) -> Result<i64, tonic::Status> {
    m.poverty
        .set_dibao_flag(officer(
            OfficerRole::PovertyOfficer,
            township,
            pa::SetDibaoFlagRequest { household_id: id.into(), dibao_registered_poor: flag, basis: basis.into() },
        ))
        .await
        .map(|r| r.into_inner().version)
}

/// The flag is the office's record (R-ROSTER-2; issue 23, item 7): as it
/// registers or changes it, until a dibao enrolment or exit touching the
/// household sets it as the sync's (R-SYNC-2); where the office's flag and
/// the dibao roster disagree, the comparison's list (e) reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_keeps_its_own_flag_until_an_enrolment_or_exit_sets_it() {
    let mut m = start().await;
    let dibao_ids = import(&mut m, vec![dibao("D-1", 150, VILLAGE)]).await;
    let db = m.env.db.client().await.expect("db");
    eventually(
        "D-1's enrolment reached the poverty office",
        || async { db.query_one("SELECT count(*) FROM poverty_alleviation.dibao_household", &[]).await.expect("view") },
        |r| r.get::<_, i64>(0) == 1,
    )
    .await;

    // Registered after D-1's enrolment, unflagged by the office: matched
    // with D-1, the flag kept as the office recorded it.
    let p1 = register(&mut m, poor(&[150, 151], VILLAGE)).await;
    let h1 = poor_household(&m.poverty, &p1).await;
    assert!(!h1.dibao_registered_poor && h1.dibao_household_ids == dibao_ids, "{h1:?}");
    assert!(h1.flag_recorded_by != "sync" && h1.flag_basis == "建档立卡登记", "{h1:?}");
    // Flagged by the office though no dibao household shares a member.
    let p2 = register(&mut m, pa::PoorHousehold { dibao_registered_poor: true, ..poor(&[160], VILLAGE) }).await;
    let h2 = poor_household(&m.poverty, &p2).await;
    assert!(h2.dibao_registered_poor && h2.dibao_household_ids.is_empty(), "{h2:?}");

    // The office's own change: its basis required and named; outside the
    // officer's township the household is not there; then recorded.
    let e = set_flag(&mut m, TOWNSHIP, &p1, true, " ").await.expect_err("no basis");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("basis"), "{}", e.message());
    let e = set_flag(&mut m, "220581102", &p1, true, "低保证复印件").await.expect_err("another township");
    assert_eq!(e.code(), tonic::Code::NotFound, "{}", e.message());
    assert!(!poor_household(&m.poverty, &p1).await.dibao_registered_poor, "a refused change changes nothing");
    let version = set_flag(&mut m, TOWNSHIP, &p1, true, "低保证复印件").await.expect("set");
    let h1 = poor_household(&m.poverty, &p1).await;
    assert!(h1.dibao_registered_poor && h1.version == version && h1.flag_basis == "低保证复印件", "{h1:?}");
    assert!(h1.flag_recorded_at.is_some() && h1.flag_recorded_by != "sync", "{h1:?}");
    assert_eq!(set_flag(&mut m, TOWNSHIP, &p1, true, "再次核对").await.expect("again"), version, "already so");
    // Civil affairs' view of the poverty roster carries the office's flags.
    let civil_flag = |id: String| {
        let db = &db;
        move || {
            let id = id.clone();
            async move {
                db.query_one(
                    "SELECT dibao_registered_poor FROM civil_affairs.poverty_household WHERE poor_household_id = $1",
                    &[&id],
                )
                .await
                .map(|r| r.get::<_, bool>(0))
                .ok()
            }
        }
    };
    eventually("civil affairs sees P1 flagged", civil_flag(p1.clone()), |f| *f == Some(true)).await;
    eventually("civil affairs sees P2 flagged", civil_flag(p2.clone()), |f| *f == Some(true)).await;

    // D-1's exit clears P1's flag, recorded as the sync's; P2, which shares
    // no one with D-1, keeps the office's.
    mesh::exit_household(&mut m.civil, &dibao_ids[0], TOWNSHIP).await;
    let poverty = m.poverty.clone();
    let h1 = eventually("P1's flag cleared", || poor_household(&poverty, &p1), |h| !h.dibao_registered_poor).await;
    assert_eq!((h1.flag_recorded_by.as_str(), h1.flag_basis.as_str()), ("sync", "民政低保（特困）退出"), "{h1:?}");
    assert!(poor_household(&m.poverty, &p2).await.dibao_registered_poor);
}
