//! Officers across the mesh: a relative on the officials' registry keeps an
//! officer off the household in every service that acts on it (civil
//! affairs, the hub, the comparison), each refusal recorded; and a
//! citizen's access history, asked through the gateway, lists every read
//! of their data by every path with the officer who made it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use dibao_platform::trust::officer::Claims;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{Date, DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation};
use dibao_proto::comparison::v1 as cmp;
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::department::v1::Item;
use dibao_proto::events::v1::{BenefitCategory, PovertyCause, RosterMember};
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_proto::verification::v1 as ver;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use dibao_test_mesh::all::All;
use dibao_test_mesh::gateway;
use dibao_tests::claims;
use tonic::Code;

const COUNTY: &str = "220581";
const TOWNSHIP: &str = "220581101";
const VILLAGE: &str = "220581101201";

fn id(seq: u32) -> IdentityNumber {
    let body = format!("{COUNTY}19700101{seq:03}");
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn person(seq: u32, name: &str) -> Option<Person> {
    Some(Person { identity_number: Some(id(seq)), name: name.into(), ..Default::default() })
}

fn today() -> Date {
    let d = time::OffsetDateTime::now_utc().date();
    Date { year: d.year(), month: i32::from(d.month() as u8), day: i32::from(d.day()) }
}

struct Mesh {
    all: All,
    /// The dibao household (members 1 and 2) and the registered-poor one sharing member 2.
    dibao: String,
    poor: String,
}

/// Every service, the county's policy, a dibao household and a
/// registered-poor household sharing a member.
async fn start() -> Mesh {
    let all = dibao_test_mesh::all::start().await;
    let office = Claims {
        roles: vec![OfficerRole::CountyApprover, OfficerRole::CountyOperator],
        ..claims(OfficerRole::CountyApprover, COUNTY)
    };
    let mut civil_c = CivilAffairsServiceClient::new(all.channel("civil-affairs", &office).await);
    let policy = dibao_test_mesh::verification::policy(COUNTY);
    civil_c.save_policy(ca::SavePolicyRequest { policy: Some(policy) }).await.expect("policy");
    let member = |seq, name: &str, relation: Relation| ca::Member {
        person: person(seq, name),
        relation: relation as i32,
        work_ability: ca::WorkAbility::Partial as i32,
        covered: true,
        ..Default::default()
    };
    let household = ca::Household {
        household_id: "H-1".into(),
        village: Some(DivisionCode { code: VILLAGE.into() }),
        category: BenefitCategory::C as i32,
        members: vec![member(1, "王建国", Relation::Head), member(2, "王小明", Relation::Child)],
        monthly_amount: Some(Money { fen: 40_000 }),
        enrolled_on: Some(Date { year: 2025, month: 3, day: 1 }),
        ..Default::default()
    };
    let imported = civil_c
        .import_roster(tokio_stream::iter(vec![ca::ImportRosterRequest { row: 1, household: Some(household) }]))
        .await
        .expect("roster")
        .into_inner();
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
    let dibao = civil_c
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: VILLAGE.into() }),
            page: None,
        })
        .await
        .expect("list")
        .into_inner()
        .households[0]
        .household_id
        .clone();
    let poverty_officer = claims(OfficerRole::PovertyOfficer, TOWNSHIP);
    let mut poverty_c =
        PovertyAlleviationServiceClient::new(all.channel("poverty-alleviation", &poverty_officer).await);
    let poor = poverty_c
        .register_household(pa::RegisterHouseholdRequest {
            household: Some(pa::PoorHousehold {
                village: Some(DivisionCode { code: VILLAGE.into() }),
                members: vec![
                    RosterMember { person: person(2, "王小明"), relation: Relation::Head as i32, covered: false },
                    RosterMember { person: person(3, "王小红"), relation: Relation::Sibling as i32, covered: false },
                ],
                causes: vec![PovertyCause::Illness as i32],
                ..Default::default()
            }),
        })
        .await
        .expect("poor household")
        .into_inner()
        .household_id;
    Mesh { all, dibao, poor }
}

impl Mesh {
    async fn channel(&self, service: &'static str, officer: &Claims) -> dibao_tests::OfficerChannel {
        self.all.channel(service, officer).await
    }

    /// Waits until `sql` counts at least one row.
    async fn until(&self, what: &str, sql: &str) {
        let db = self.all.env.db.client().await.expect("db");
        for _ in 0..300 {
            let n: i64 = db.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(0);
            if n > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what} did not arrive within 30 s");
    }

    /// A comparison run over the county once both rosters are in its view; the entries with member 2.
    async fn entries_with_member_2(&self, reader: &Claims) -> Vec<cmp::Entry> {
        self.until("both rosters in the comparison's view", "SELECT count(*) FILTER (WHERE side = 'poor') * count(*) FILTER (WHERE side = 'dibao') FROM roster_comparison.roster_household WHERE valid_to IS NULL").await;
        let mut c = ComparisonServiceClient::new(self.channel("roster-comparison", reader).await);
        let mut run = c
            .run_comparison(cmp::RunComparisonRequest {
                division: Some(DivisionCode { code: COUNTY.into() }),
                reproduce_run_id: String::new(),
            })
            .await
            .expect("run")
            .into_inner();
        while run.message().await.expect("progress").is_some() {}
        c.list_entries(cmp::ListEntriesRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries
        .into_iter()
        .filter(|e| e.members.iter().any(|m| m.value == id(2).value))
        .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_relative_keeps_an_officer_off_the_household_in_every_service() {
    let m = start().await;
    // The officials' registry: 周干部 (member 90) is the father of 王小明 (member 2).
    let operator = claims(OfficerRole::CountyOperator, COUNTY);
    let mut comparison = ComparisonServiceClient::new(m.channel("roster-comparison", &operator).await);
    let row = |n: i64, person: IdentityNumber, name: &str, relation: &str| cmp::ImportOfficialsRequest {
        row: n,
        division: Some(DivisionCode { code: TOWNSHIP.into() }),
        official: Some(id(90)),
        official_name: "周干部".into(),
        role: cmp::OfficialRole::DibaoHandler as i32,
        official_village: Some(DivisionCode { code: VILLAGE.into() }),
        person: Some(person),
        person_name: name.into(),
        relation: relation.into(),
    };
    let imported = comparison
        .import_officials(tokio_stream::iter(vec![row(1, id(90), "周干部", "本人"), row(2, id(2), "王小明", "子女")]))
        .await
        .expect("registry")
        .into_inner()
        .result
        .expect("result");
    assert_eq!((imported.rows_applied, imported.errors.len()), (2, 0), "{imported:?}");
    // The registry reaches civil affairs and the hub through the broker.
    m.until("civil affairs' registry", "SELECT count(*) FROM civil_affairs.official_relative WHERE person <> official")
        .await;
    m.until("the hub's registry", "SELECT count(*) FROM verification_hub.official_relative WHERE person <> official")
        .await;

    // 周干部 holds every role of the township; each step on his son's household is refused.
    let zhou = Claims {
        officer_id: "zhou".into(),
        name: "周干部".into(),
        roles: vec![OfficerRole::TownshipReviewer, OfficerRole::TownshipCaseworker, OfficerRole::VerificationOfficer],
        identity_number: Some(dibao_proto::types::IdentityNumber::parse(&id(90).value).expect("id")),
        ..claims(OfficerRole::TownshipReviewer, TOWNSHIP)
    };
    let mut civil = CivilAffairsServiceClient::new(m.channel("civil-affairs", &zhou).await);
    let e = civil
        .record_review(ca::RecordReviewRequest {
            household_id: m.dibao.clone(),
            remarks: "复核".into(),
            ..Default::default()
        })
        .await
        .expect_err("review of a relative's household");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("应当回避"), "{}", e.message());
    let caseworker = claims(OfficerRole::TownshipCaseworker, TOWNSHIP);
    let exit = CivilAffairsServiceClient::new(m.channel("civil-affairs", &caseworker).await)
        .start_exit(ca::StartExitRequest {
            household_id: m.dibao.clone(),
            reason: dibao_proto::events::v1::ExitReason::Moved as i32,
            remarks: "迁出".into(),
        })
        .await
        .expect("exit started by another caseworker")
        .into_inner()
        .application_id;
    let e = civil
        .sign_step(ca::SignStepRequest {
            application_id: exit,
            step: ca::ProcessStep::HomeVisit as i32,
            approve: true,
            ..Default::default()
        })
        .await
        .expect_err("a step on a relative's household");
    assert_eq!(e.code(), Code::PermissionDenied);
    let db = m.all.env.db.client().await.expect("db");
    let recorded: i64 = db
        .query_one("SELECT count(*) FROM civil_affairs.refused_attempt WHERE officer_id = 'zhou'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(recorded, 2, "both attempts recorded");

    // The hub: another officer registers the consent; 周干部 may not verify.
    let checker = claims(OfficerRole::VerificationOfficer, COUNTY);
    let mut hub = VerificationServiceClient::new(m.channel("verification-hub", &checker).await);
    let consent = hub
        .register_consent(ver::RegisterConsentRequest {
            consent: Some(ver::Consent {
                household_id: m.dibao.clone(),
                document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                signatories: vec![
                    ver::Signatory { person: person(1, "王建国"), relation: Relation::Head as i32, relative: false },
                    ver::Signatory {
                        person: person(2, "王小明"), relation: Relation::Child as i32, relative: false
                    },
                ],
                covered_persons: vec![id(1), id(2)],
                covered_items: vec![Item::Vehicles as i32],
                signed_on: Some(today()),
                valid_until: Some(Date { year: today().year + 1, ..today() }),
                no_relatives_outside_household: true,
                ..Default::default()
            }),
        })
        .await
        .expect("consent")
        .into_inner()
        .consent_id;
    let verify = ver::VerifyHouseholdRequest {
        household_id: m.dibao.clone(),
        persons: vec![id(1), id(2)],
        consent_id: consent,
        purpose: "低保复核".into(),
        ..Default::default()
    };
    let e = VerificationServiceClient::new(m.channel("verification-hub", &zhou).await)
        .verify_household(verify)
        .await
        .expect_err("verifying a relative's household");
    assert_eq!(e.code(), Code::PermissionDenied);
    let refused: i64 = db
        .query_one(
            "SELECT count(*) FROM verification_hub.access_log WHERE officer_id = 'zhou' AND outcome LIKE 'refused:%'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(refused, 2, "the attempt is on record for both persons");

    // The comparison: his son's entry is not his to decide.
    let approver = claims(OfficerRole::CountyApprover, COUNTY);
    let entries = m.entries_with_member_2(&approver).await;
    let entry = entries.first().expect("an entry with the son").entry_id.clone();
    let e = ComparisonServiceClient::new(m.channel("roster-comparison", &zhou).await)
        .record_decision(cmp::RecordDecisionRequest {
            entry_id: entry,
            conclusion: "经核实两边名单均无误，予以保留".into(),
            ..Default::default()
        })
        .await
        .expect_err("deciding on a relative's entry");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("应当回避"), "{}", e.message());
    let refused: i64 = db
        .query_one(
            "SELECT count(*) FROM roster_comparison.access_log WHERE officer_id = 'zhou' AND outcome LIKE 'refused:%'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(refused >= 1, "the attempt is on record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_citizens_access_history_lists_every_read_of_their_data_by_every_path() {
    let m = start().await;
    let upstreams: Vec<(&str, SocketAddr)> = m.all.addrs.iter().map(|(k, v)| (*k, *v)).collect();
    let gw = gateway::start(&m.all.env, &upstreams).await;
    let citizen = id(2).value;
    // Each officer logs in at the gateway and reads 王小明's data their way.
    let caseworker = gw.officer("liu-caseworker", &[OfficerRole::TownshipCaseworker], TOWNSHIP).await;
    CivilAffairsServiceClient::new(caseworker)
        .get_household(ca::GetHouseholdRequest { household_id: m.dibao.clone() })
        .await
        .expect("the household");
    let poverty_officer = gw.officer("zhao-poverty", &[OfficerRole::PovertyOfficer], TOWNSHIP).await;
    PovertyAlleviationServiceClient::new(poverty_officer)
        .get_household(pa::GetHouseholdRequest { household_id: m.poor.clone() })
        .await
        .expect("the poor household");
    let mut hub =
        VerificationServiceClient::new(gw.officer("zhou-checker", &[OfficerRole::VerificationOfficer], COUNTY).await);
    let members = [(id(1), "王建国", Relation::Head), (id(2), "王小明", Relation::Child)];
    let report = dibao_test_mesh::verification::vehicles_checked(&mut hub, &m.dibao, &members, "低保复核").await;
    hub.get_report(ver::GetReportRequest { report_id: report.report_id, version: 0 }).await.expect("report read");
    let approver_token = gw.token("wang-approver", &[OfficerRole::CountyApprover], COUNTY).await;
    let approver = Claims { officer_id: "wang-approver".into(), ..claims(OfficerRole::CountyApprover, COUNTY) };
    // The comparison's lists, read through the gateway.
    let _ = m.entries_with_member_2(&approver).await;
    let mut lists = ComparisonServiceClient::new(gw.channel(&approver_token).await);
    let listed = lists
        .list_entries(cmp::ListEntriesRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    assert!(!listed.is_empty(), "the county's entries");

    // The county approver answers the citizen: who looked at my data?
    let url = format!("https://{}/api/access-history", gw.addr);
    let (status, body) = dibao_gateway::https::post_json(
        &url,
        Some(&gw.ca),
        &serde_json::json!({ "person": citizen, "village": VILLAGE }),
        Some(&approver_token),
    )
    .await
    .expect("history");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, 200, "{body}");
    assert!(body["unavailable"].as_array().is_some_and(Vec::is_empty), "{body}");
    let by_service: BTreeMap<String, BTreeSet<String>> =
        body["accesses"].as_array().expect("accesses").iter().filter(|a| a["purpose"] != "查阅查询记录").fold(
            BTreeMap::new(),
            |mut map, a| {
                map.entry(a["service"].as_str().unwrap_or("").to_owned())
                    .or_default()
                    .insert(a["officer_id"].as_str().unwrap_or("").to_owned());
                map
            },
        );
    // (The county office listed the village's households while the test set up: on record too;
    // and the hub read the household it checked, as itself, with no officer's name.)
    assert_eq!(
        by_service.get("civil-affairs"),
        Some(&BTreeSet::from(["liu-caseworker".to_owned(), "county_approver-220581".to_owned(), String::new()])),
        "{body}"
    );
    assert!(
        body["accesses"].as_array().expect("accesses").iter().any(|a| a["service"] == "civil-affairs"
            && a["caller"] == "verification-hub"
            && a["purpose"] == "查阅家庭信息"),
        "the hub's read of the household it checked: {body}"
    );
    assert_eq!(by_service.get("poverty-alleviation"), Some(&BTreeSet::from(["zhao-poverty".to_owned()])), "{body}");
    assert_eq!(by_service.get("verification-hub"), Some(&BTreeSet::from(["zhou-checker".to_owned()])), "{body}");
    assert_eq!(
        by_service.get("adapter-public-security"),
        Some(&BTreeSet::from(["zhou-checker".to_owned()])),
        "the department's query names the officer: {body}"
    );
    assert!(by_service.get("roster-comparison").is_some_and(|o| o.contains("wang-approver")), "{body}");
    assert!(body["person"].as_str().is_some_and(|p| p.contains("********")), "the answer masks the number: {body}");
    // An officer of another county may not ask about this village.
    let outsider = gw.token("other-approver", &[OfficerRole::CountyApprover], "220582").await;
    let (status, _) = dibao_gateway::https::post_json(
        &url,
        Some(&gw.ca),
        &serde_json::json!({ "person": citizen, "village": VILLAGE }),
        Some(&outsider),
    )
    .await
    .expect("history");
    assert_eq!(status, 403);
    // The number is never taken from a URL.
    let (status, _) = dibao_gateway::https::request_json(
        http::Method::GET,
        &format!("{url}?person={citizen}&village={VILLAGE}"),
        Some(&gw.ca),
        &serde_json::json!({}),
        Some(&outsider),
    )
    .await
    .expect("history by GET");
    assert_eq!(status, 404);
}
