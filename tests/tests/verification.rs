//! The verification hub end to end (R-VER-1..4): consent, the six
//! adapters over mTLS, the simulator's departments, civil affairs' policy.

use dibao_test_mesh::verification as mesh;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dibao_platform::events::outbox::timestamp_of as timestamp;
use dibao_platform::runtime::server::connect;
use dibao_platform::trust::access_log;
use dibao_platform::trust::assertion::AssertionSigner;
use dibao_proto::access::v1::ListAccessesRequest;
use dibao_proto::access::v1::access_log_service_client::AccessLogServiceClient;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, OfficerRole, PageRequest, Person, Relation};
use dibao_proto::department::v1::department_service_client::DepartmentServiceClient;
use dibao_proto::department::v1::{ConsentAssertion, Item, QueryRequest};
use dibao_proto::verification::v1::{
    Consent, GetReportRequest, RegisterConsentRequest, Report, RevokeConsentRequest, Signatory,
};
use dibao_synthetic::generator::DeptRecord;
use dibao_synthetic::simulator::Behaviour;
use dibao_tests::access_records;
use mesh::{ALL_ITEMS, Mesh, Options, today};
use time::Duration as Days;

/// What a report holds for one person and item, comparable with the generator's records.
type Found = BTreeSet<(String, String, String, i64, i64)>;

fn found_in_report(report: &Report, person: &str) -> Found {
    report
        .items
        .iter()
        .filter(|i| i.person.as_ref().is_some_and(|p| p.value == person))
        .filter_map(|i| {
            let r = i.record.as_ref()?;
            let item = Item::try_from(i.item).ok()?.as_str_name().to_owned();
            Some((item, r.source_record_id.clone(), r.source.clone(), r.amount.map_or(0, |m| m.fen), r.quantity))
        })
        .collect()
}

fn ground_truth(records: &[DeptRecord], person: &str) -> Found {
    records
        .iter()
        .filter(|r| r.person == person)
        .map(|r| (r.item.as_str_name().to_owned(), r.record_id.clone(), r.source.clone(), r.amount_fen, r.quantity))
        .collect()
}

fn has(records: &[DeptRecord], item: Item) -> bool {
    records.iter().any(|r| r.item == item)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_equal_the_departments_records_with_findings_against_county_policy() {
    let mut m = Mesh::start(Options::default()).await;
    // A sample covering every kind of record, and plain households.
    let mut sample = Vec::new();
    for item in [
        Item::Vehicles,
        Item::Property,
        Item::BusinessLicence,
        Item::Deposits,
        Item::Death,
        Item::IncomeTax,
        Item::Pension,
        Item::Employment,
    ] {
        sample.push(m.household(|h, r| has(r, item) && !sample_has(&sample, h.index)));
    }
    sample.extend(
        m.province
            .iter()
            .filter(|(_, r)| r.len() == r.iter().filter(|x| x.item == Item::HouseholdRegistration).count())
            .take(3)
            .cloned(),
    );
    let mut report_ids = Vec::new();
    for (h, records) in &sample {
        let consent = m.consent(h, today() - Days::days(3), today() + Days::days(365)).await;
        let report = m
            .hub
            .verify_household(m.verify_request(h, &consent))
            .await
            .expect("verify")
            .into_inner()
            .report
            .expect("report");
        assert!(report.complete, "household {} report incomplete: {}", h.index, report.summary);
        assert_eq!(report.version, 1);
        for member in &h.members {
            assert_eq!(
                found_in_report(&report, &member.identity_number),
                ground_truth(records, &member.identity_number),
                "household {} member {}",
                h.index,
                member.identity_number
            );
        }
        // Every item of every person appears: found, or checked and nothing held.
        for member in &h.members {
            for item in ALL_ITEMS {
                assert!(
                    report.items.iter().any(|i| i.item == item as i32
                        && i.person.as_ref().is_some_and(|p| p.value == member.identity_number)),
                    "item {item:?} missing for a member of household {}",
                    h.index
                );
            }
        }
        // Provenance: the department's as-of date, as the start of that day in China.
        let registration = report
            .items
            .iter()
            .find(|i| i.item == Item::HouseholdRegistration as i32)
            .and_then(|i| i.record.as_ref())
            .expect("registration");
        assert_eq!(
            registration.as_of.expect("as of").seconds,
            time::macros::datetime!(2026-10-31 00:00 +8).unix_timestamp()
        );
        // Findings against the county's rules: a vehicle, a flat, a business, a death are each named.
        let finding = |item: Item| report.findings.iter().find(|f| f.item == item as i32).map(|f| f.reason.clone());
        if has(records, Item::Vehicles) {
            let reason = finding(Item::Vehicles).expect("vehicle finding");
            assert!(reason.contains("机动车") && reason.contains("本县规定不超过0辆"), "{reason}");
        }
        if has(records, Item::Property) {
            assert!(finding(Item::Property).expect("property finding").contains("平方米"));
        }
        if has(records, Item::BusinessLicence) {
            assert!(finding(Item::BusinessLicence).expect("business finding").contains("注册资本合计"));
        }
        if has(records, Item::Death) {
            assert!(finding(Item::Death).expect("death finding").contains("死亡"));
        }
        let deposits: i64 = records.iter().filter(|r| r.item == Item::Deposits).map(|r| r.amount_fen).sum();
        assert_eq!(
            finding(Item::Deposits).is_some(),
            deposits / h.members.len() as i64 > 500_000,
            "household {}",
            h.index
        );
        if records.iter().all(|r| r.item == Item::HouseholdRegistration) {
            assert!(report.findings.is_empty(), "nothing to find in household {}: {:?}", h.index, report.findings);
        }
        assert!(report.summary.contains("是否符合条件由民政部门审核确认"));
        report_ids.push((report.report_id.clone(), report));
    }
    // Stored and retrievable, as returned.
    for (id, report) in &report_ids {
        let stored = m
            .hub
            .get_report(GetReportRequest { report_id: id.clone(), version: 0 })
            .await
            .expect("get")
            .into_inner()
            .report
            .expect("report");
        assert_eq!(&stored, report);
    }
    // Re-running a verification stores its next version.
    let (h, _) = &sample[0];
    let consent = report_ids[0].1.consent_id.clone();
    let mut again = m.verify_request(h, &consent);
    again.report_id = report_ids[0].0.clone();
    let v2 = m.hub.verify_household(again).await.expect("verify again").into_inner().report.expect("report");
    assert_eq!((v2.report_id.as_str(), v2.version), (report_ids[0].0.as_str(), 2));
    let v1 = m
        .hub
        .get_report(GetReportRequest { report_id: v2.report_id.clone(), version: 1 })
        .await
        .expect("v1")
        .into_inner()
        .report
        .expect("r");
    assert_eq!(v1.version, 1);
    // Each completed report is published.
    let client = m.hub_pool.get().await.expect("db");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = client
            .query_one("SELECT count(*) FILTER (WHERE published_at IS NOT NULL), count(*) FROM outbox", &[])
            .await
            .expect("outbox");
        let (published, all): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(all, report_ids.len() as i64 + 1);
        if published == all {
            break;
        }
        assert!(Instant::now() < deadline, "{published} of {all} report events published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The citizen's question: who looked at my data? Each check is on
    // record as the query ("asked", committed before the report left) and
    // what came of it (the report), which names the query.
    let person = &h.members[0].identity_number;
    access_records(&m.hub_pool, person, 4).await;
    let desk = m.env.desk(dibao_verification_hub::startup::SERVICE, OfficerRole::VerificationOfficer, h.township());
    let mut history = AccessLogServiceClient::new(m.env.officer_channel(m.hub_addr, desk).await);
    let all = history
        .list_accesses(ListAccessesRequest {
            person: Some(IdentityNumber { value: person.clone() }),
            page: Some(PageRequest::default()),
            village: Some(DivisionCode { code: h.village.clone() }),
        })
        .await
        .expect("accesses")
        .into_inner()
        .accesses;
    // Reading the reports, and the history itself, is on record too.
    let (reads, accesses): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| a.outcome == "read");
    assert_eq!(reads.iter().filter(|r| r.purpose == "查阅查询记录").count(), 1, "{reads:?}");
    assert!(reads.iter().all(|r| r.purpose == "查阅查询记录" || r.purpose == "查阅核对报告"), "{reads:?}");
    assert_eq!(accesses.len(), 4, "{accesses:?}");
    assert!(
        accesses.iter().all(|a| a.caller == "gateway"
            && a.officer_id == "verification_officer-520000"
            && a.purpose == "低保申请审核"
            && a.items.len() == ALL_ITEMS.len()),
        "{accesses:?}"
    );
    let asked: BTreeSet<i64> =
        accesses.iter().filter(|a| a.outcome == access_log::ASKED && a.completes == 0).map(|a| a.sequence).collect();
    let reported: BTreeSet<i64> =
        accesses.iter().filter(|a| a.outcome.starts_with("reported ")).map(|a| a.completes).collect();
    assert_eq!(asked.len(), 2, "{accesses:?}");
    assert_eq!(reported, asked, "each report names its query");
    // And every adapter logged its queries about that person and what it
    // answered, chain intact.
    for (name, pool) in &m.adapter_pools {
        let mine = access_records(pool, person, 4).await;
        assert_eq!(mine.len(), 4, "{name}: {mine:?}");
        assert!(mine.iter().all(|r| r.entry.caller == "verification-hub"), "{name}: {mine:?}");
        let asked: BTreeSet<i64> = mine
            .iter()
            .filter(|r| r.entry.outcome == access_log::ASKED && r.entry.completes.is_none())
            .map(|r| r.seq)
            .collect();
        let answered: BTreeSet<i64> =
            mine.iter().filter(|r| r.entry.outcome.starts_with("answered")).filter_map(|r| r.entry.completes).collect();
        assert_eq!((asked.len(), &answered), (2, &asked), "{name}: {mine:?}");
        assert!(mine.iter().all(|r| r.entry.completes.is_none_or(|q| q < r.seq)), "{name}: outcome before its query");
        assert_eq!(access_log::verify_chain(pool).await.expect("chain").broken, None);
    }
}

/// A register that shares by database: the housing adapter reads its
/// front-end view, over the same mTLS, consent and access log as the rest;
/// the report holds the same flats, and the register's API is never called.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_department_that_shares_by_database_view_is_checked_the_same_way() {
    let mut m = Mesh::start(Options { households: 120, housing_view: true, ..Options::default() }).await;
    let (h, records) = m.household(|_, r| has(r, Item::Property));
    let consent = m.consent(&h, today() - Days::days(3), today() + Days::days(365)).await;
    let report = m
        .hub
        .verify_household(m.verify_request(&h, &consent))
        .await
        .expect("verify")
        .into_inner()
        .report
        .expect("report");
    assert!(report.complete, "{}", report.summary);
    for member in &h.members {
        assert_eq!(found_in_report(&report, &member.identity_number), ground_truth(&records, &member.identity_number));
    }
    let finding = report.findings.iter().find(|f| f.item == Item::Property as i32).expect("property finding");
    assert!(finding.reason.contains("平方米"), "{}", finding.reason);
    assert_eq!(m.simulator.requests("housing"), 0, "the register's API was called");
    assert!(m.simulator.requests("tax") > 0);
    // The housing adapter logged each member's query like any other.
    let logged: i64 = m.adapter_pools["housing"]
        .get()
        .await
        .expect("c")
        .query_one("SELECT count(*) FROM access_log WHERE consent_id = $1 AND outcome = 'asked'", &[&consent])
        .await
        .expect("count")
        .get(0);
    assert_eq!(logged, h.members.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_complete_report_opens_the_verification_step_of_civil_affairs() {
    use dibao_proto::civil_affairs::v1 as ca;
    // The applicant is not on the roster yet.
    let mut m = Mesh::start(Options { households: 30, on_roster: false, ..Options::default() }).await;
    let (h, _) = m.household(|h, _| h.members.len() >= 2);
    // An applicant: the roster line's household, without its roster id, amount or enrolment date.
    let household = ca::Household {
        household_id: String::new(),
        monthly_amount: None,
        enrolled_on: None,
        ..mesh::roster_household(&h)
    };
    let submitted = m
        .civil
        .submit_application(dibao_tests::officer(
            OfficerRole::TownshipCaseworker,
            h.township(),
            ca::SubmitApplicationRequest { household: Some(household), ..Default::default() },
        ))
        .await
        .expect("submit")
        .into_inner();
    for (step, role) in [
        (ca::ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker),
        (ca::ProcessStep::VillageReview, OfficerRole::VillageCommittee),
    ] {
        m.civil
            .sign_step(dibao_tests::officer(
                role,
                &h.village,
                ca::SignStepRequest {
                    application_id: submitted.application_id.clone(),
                    step: step as i32,
                    approve: true,
                    ..Default::default()
                },
            ))
            .await
            .expect("step");
    }
    // The officer verifies the application's household through the hub, under its consent.
    let consent = m
        .try_consent_for(&submitted.household_id, &h, today() - Days::days(1), today() + Days::days(180), vec![], false)
        .await
        .expect("consent");
    let request = Mesh::request_for(&submitted.household_id, &h, &consent);
    let report = m.hub.verify_household(request).await.expect("verify").into_inner().report.expect("report");
    assert!(report.complete, "{}", report.summary);
    // Civil affairs reads it from the hub and the step accepts it (R-VER-2).
    let signed = m
        .civil
        .sign_step(dibao_tests::officer(
            OfficerRole::VerificationOfficer,
            &h.village,
            ca::SignStepRequest {
                application_id: submitted.application_id.clone(),
                step: ca::ProcessStep::Verification as i32,
                approve: true,
                verification_report_id: report.report_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("verification step refused: {}", e.message()));
    assert_eq!(signed.into_inner().next_step, ca::ProcessStep::TownshipReview as i32);
}

fn sample_has(sample: &[(dibao_synthetic::generator::Household, Vec<DeptRecord>)], index: usize) -> bool {
    sample.iter().any(|(h, _)| h.index == index)
}

/// R-VER-2, R-ELIG-2: the hub reads the household it checks from civil
/// affairs — its county, whose thresholds the report applies and whose
/// jurisdiction the officer must hold, and its live members. A household
/// no one holds, or outside the officer's jurisdiction, is not found alike;
/// a consent serves only the household it was signed for, by its members.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_is_of_the_household_civil_affairs_holds_not_the_callers_word() {
    let mut m = Mesh::start(Options { households: 40, ..Options::default() }).await;
    let (h, _) = m.household(|h, _| h.members.len() >= 2);
    let (neighbour, _) = m.household(|o, _| o.index != h.index && o.county() == h.county());
    let (far, _) = m.household(|o, _| o.county() != h.county());
    let own = m.consent(&h, today() - Days::days(3), today() + Days::days(365)).await;
    let theirs = m.consent(&neighbour, today() - Days::days(3), today() + Days::days(365)).await;

    // The neighbour's members under this household's id, with the
    // neighbour's own consent: refused, no department asked (R-VER-1).
    let mut borrowed = m.verify_request(&h, &theirs);
    borrowed.persons = neighbour.members.iter().map(|p| IdentityNumber { value: p.identity_number.clone() }).collect();
    let e = m.hub.verify_household(borrowed).await.expect_err("another household's consent");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("不是为本户签署登记的"), "{}", e.message());
    // Nor can the neighbour's members sign a consent for this household: its
    // signatories are its live members, relatives outside it marked as such.
    let h_id = m.civil_id(&h).await;
    let e = m
        .try_consent_for(&h_id, &neighbour, today() - Days::days(1), today() + Days::days(30), vec![], false)
        .await
        .expect_err("signed by another household");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let fields = tonic_types::StatusExt::get_details_bad_request(&e).expect("details").field_violations;
    assert!(
        fields.iter().any(|f| f.field == "consent.signatories[0].person.identity_number"
            && f.description.contains("不是该户在民政业务系统中的在世成员")),
        "{fields:?}"
    );
    assert!(fields.iter().any(|f| f.field == "consent.covered_persons[0]"), "{fields:?}");

    // The scan itself: the hub computes its digest and keeps it beside the
    // consent (R-VER-1); a typed digest that is not the scan's is refused.
    let scan = "%PDF-1.4 授权书扫描件（全体成年成员签字）".as_bytes().to_vec();
    let adults: Vec<Signatory> = h
        .members
        .iter()
        .filter(|p| dibao_proto::types::IdentityNumber::parse(&p.identity_number).expect("id").age_on(today()) >= 18)
        .map(|p| Signatory {
            person: Some(Person {
                identity_number: Some(IdentityNumber { value: p.identity_number.clone() }),
                name: p.name.clone(),
                ..Default::default()
            }),
            relation: p.relation as i32,
            relative: false,
        })
        .collect();
    let with_scan = |typed: &str| {
        dibao_tests::officer(
            OfficerRole::VerificationOfficer,
            h.county(),
            RegisterConsentRequest {
                consent: Some(Consent {
                    household_id: h_id.clone(),
                    document: scan.clone(),
                    document_sha256: typed.into(),
                    signatories: adults.clone(),
                    covered_persons: h
                        .members
                        .iter()
                        .map(|p| IdentityNumber { value: p.identity_number.clone() })
                        .collect(),
                    covered_items: vec![Item::Vehicles as i32],
                    signed_on: mesh::date(today()),
                    valid_until: mesh::date(today() + Days::days(30)),
                    no_relatives_outside_household: true,
                    ..Default::default()
                }),
            },
        )
    };
    let e = m.hub.register_consent(with_scan(&"0".repeat(64))).await.expect_err("a digest not the scan's");
    let fields = tonic_types::StatusExt::get_details_bad_request(&e).expect("details").field_violations;
    assert_eq!(fields[0].field, "consent.document_sha256", "{fields:?}");
    let kept = m.hub.register_consent(with_scan("")).await.expect("with its scan").into_inner().consent_id;
    let row = m
        .hub_pool
        .get()
        .await
        .expect("db")
        .query_one(
            "SELECT c.document_sha256, c.digest_computed, d.content FROM consent c JOIN consent_document d USING (consent_id)
             WHERE consent_id = $1::text::uuid",
            &[&kept],
        )
        .await
        .expect("kept");
    let computed = dibao_platform::trust::assertion::hex(ring::digest::digest(&ring::digest::SHA256, &scan).as_ref());
    assert_eq!(row.get::<_, String>(0), computed);
    assert!(row.get::<_, bool>(1), "the digest is the hub's");
    assert_eq!(row.get::<_, Vec<u8>>(2), scan, "the scan itself is kept");

    // No household of that id, a malformed id, a household of another
    // county's officer: not found alike, nothing said of which.
    let e = m
        .hub
        .verify_household(Mesh::request_for("0190f5c2-0000-7000-8000-000000000001", &h, &own))
        .await
        .expect_err("no such household");
    assert_eq!(e.code(), tonic::Code::NotFound);
    let unknown = e.message().replace("0190f5c2-0000-7000-8000-000000000001", "");
    let e = m.hub.verify_household(Mesh::request_for("H1", &h, &own)).await.expect_err("malformed");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let field = tonic_types::StatusExt::get_details_bad_request(&e).expect("details").field_violations;
    assert_eq!(field[0].field, "household_id", "{field:?}");
    let request = m.verify_request(&h, &own);
    let household_id = request.household_id.clone();
    let e = m
        .hub
        .verify_household(dibao_tests::officer(OfficerRole::VerificationOfficer, far.county(), request))
        .await
        .expect_err("outside the officer's county");
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert_eq!(e.message().replace(&household_id, ""), unknown, "outside reads as absent");
    assert_eq!(m.simulator.total_requests(), 0, "a department was asked");
    let tried = access_log::accesses_to(&m.hub_pool, &h.members[0].identity_number, None, 0, 100).await.expect("log");
    assert!(
        tried.iter().any(|r| r.entry.outcome.starts_with("refused") && r.entry.outcome.contains("jurisdiction")),
        "the attempt from outside is on record: {tried:?}"
    );

    // The household's own check: the county is the household's, as civil affairs holds it.
    let report = m.hub.verify_household(m.verify_request(&h, &own)).await.expect("own").into_inner().report;
    let report = report.expect("report");
    assert_eq!(report.county, Some(DivisionCode { code: h.county().into() }));
    assert_eq!(report.household_id, household_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checks_outside_a_consent_are_refused_and_no_department_is_asked() {
    let mut m = Mesh::start(Options { households: 20, ..Options::default() }).await;
    let (h, _) = m.household(|h, _| h.members.len() >= 2);
    let (stranger, _) = m.household(|o, _| o.index != h.index);
    let fresh = m.consent(&h, today() - Days::days(3), today() + Days::days(365)).await;
    let expired = m.consent(&h, today() - Days::days(3), today() - Days::days(1)).await;
    let revoked = m.consent(&h, today() - Days::days(3), today() + Days::days(365)).await;
    m.hub
        .revoke_consent(dibao_tests::officer(
            OfficerRole::VerificationOfficer,
            h.county(),
            RevokeConsentRequest { consent_id: revoked.clone(), reason: "户主书面撤回授权".into() },
        ))
        .await
        .expect("revoke");

    let mut outside = m.verify_request(&h, &fresh);
    outside.persons.push(IdentityNumber { value: stranger.members[0].identity_number.clone() });
    let e = m.hub.verify_household(outside).await.expect_err("person outside the consent");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(
        e.message().contains(&format!("persons[{}]", h.members.len()))
            && e.message().contains("不在授权书的授权范围内"),
        "{}",
        e.message()
    );

    let e = m.hub.verify_household(m.verify_request(&h, &expired)).await.expect_err("expired");
    assert!(e.message().contains("已于") && e.message().contains("到期"), "{}", e.message());
    let e = m.hub.verify_household(m.verify_request(&h, &revoked)).await.expect_err("revoked");
    assert!(e.message().contains("撤销"), "{}", e.message());
    let e = m
        .hub
        .verify_household(m.verify_request(&h, "0190f5c2-0000-7000-8000-000000000000"))
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), tonic::Code::NotFound);

    // Straight to an adapter, as the hub's own identity (a bug, a stolen
    // certificate): a forged, a tampered and a missing assertion.
    let person = h.members[0].identity_number.clone();
    let now = time::OffsetDateTime::now_utc();
    let assertion = |items: Vec<Item>| ConsentAssertion {
        consent_id: fresh.clone(),
        person: Some(IdentityNumber { value: person.clone() }),
        items: items.iter().map(|i| *i as i32).collect(),
        purpose: "低保申请审核".into(),
        officer_id: "officer-5".into(),
        issued_at: Some(timestamp(now)),
        expires_at: Some(timestamp(now + Days::minutes(5))),
        audience: "public_security".into(),
        assertion_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    };
    let forger = AssertionSigner::from_pkcs8("hub-1", &AssertionSigner::generate_pkcs8()).expect("key");
    let hub_key = AssertionSigner::from_pkcs8("hub-1", &m.signing_key).expect("key");
    let mut widened = hub_key.sign(assertion(vec![Item::Vehicles]));
    widened.items.push(Item::Death as i32);
    let mut other_person = hub_key.sign(assertion(vec![Item::Vehicles, Item::Death]));
    other_person.person = Some(IdentityNumber { value: stranger.members[0].identity_number.clone() });
    let stale = hub_key.sign(ConsentAssertion {
        issued_at: Some(timestamp(now - Days::minutes(20))),
        expires_at: Some(timestamp(now - Days::minutes(10))),
        ..assertion(vec![Item::Vehicles])
    });
    let narrow = hub_key.sign(assertion(vec![Item::HouseholdRegistration]));
    let for_tax = hub_key.sign(ConsentAssertion { audience: "tax".into(), ..assertion(vec![Item::Vehicles]) });
    let cases = [
        ("forged", Some(forger.sign(assertion(vec![Item::Vehicles, Item::Death])))),
        ("widened", Some(widened)),
        ("other person", Some(other_person)),
        ("expired", Some(stale)),
        ("out of scope", Some(narrow)),
        ("for another department", Some(for_tax)),
        ("missing", None),
    ];
    let mut adapter = DepartmentServiceClient::new(
        connect(&m.tls("verification-hub"), &m.adapters["public_security"], "adapter-public-security")
            .await
            .expect("adapter"),
    );
    for (case, a) in cases {
        let e = adapter
            .query(QueryRequest { assertion: a, items: vec![Item::Vehicles as i32, Item::Death as i32] })
            .await
            .expect_err(case);
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{case}: {}", e.message());
        assert!(e.message().starts_with("拒绝查询"), "{case}: {}", e.message());
    }
    // Another mesh identity may not call an adapter at all.
    let mut as_gateway = DepartmentServiceClient::new(
        connect(&m.tls("gateway"), &m.adapters["public_security"], "adapter-public-security").await.expect("adapter"),
    );
    let e = as_gateway
        .query(QueryRequest {
            assertion: Some(hub_key.sign(assertion(vec![Item::Vehicles]))),
            items: vec![Item::Vehicles as i32],
        })
        .await
        .expect_err("gateway");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    assert_eq!(m.simulator.total_requests(), 0, "a department was asked without consent");
    // Every refusal is on record, at the hub and at the adapter.
    let hub_log = access_log::accesses_to(&m.hub_pool, &person, None, 0, 100).await.expect("hub log");
    assert_eq!(hub_log.len(), 3, "{hub_log:?}");
    assert!(hub_log.iter().all(|r| r.entry.outcome.starts_with("refused")));
    let adapter_log =
        access_log::accesses_to(&m.adapter_pools["public_security"], &person, None, 0, 100).await.expect("log");
    // Forged, widened, expired, out of scope, for another department: five
    // name this person (the others name a stranger or no one; the gateway
    // never got past mTLS policy).
    assert_eq!(adapter_log.len(), 5, "{adapter_log:?}");
    assert!(adapter_log.iter().all(|r| r.entry.outcome.starts_with("refused")));

    // Within the consent, the same household is checked.
    let ok = m.hub.verify_household(m.verify_request(&h, &fresh)).await.expect("within consent").into_inner();
    assert!(ok.report.expect("report").complete);
    assert!(m.simulator.total_requests() > 0);

    // A valid assertion is accepted once; sent again (a captured request
    // replayed), it is refused and the department not asked.
    let once = hub_key.sign(assertion(vec![Item::Vehicles]));
    let query = || QueryRequest { assertion: Some(once.clone()), items: vec![Item::Vehicles as i32] };
    adapter.query(query()).await.expect("first use");
    let asked = m.simulator.total_requests();
    let e = adapter.query(query()).await.expect_err("replayed");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(e.message().contains("已使用过"), "{}", e.message());
    assert_eq!(m.simulator.total_requests(), asked, "a replayed assertion reached the department");
}

/// R-VER-1: where county policy asks for it, close lineal relatives within
/// three generations sign the consent too; a consent of the members alone
/// is then refused before any department is asked, unless the officer found
/// the household has no such relatives outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn where_the_county_asks_relatives_sign_the_consent_too() {
    let mut m = Mesh::start(Options { households: 20, consent_requires_relatives: true, ..Options::default() }).await;
    let (h, _) = m.household(|h, _| h.members.len() >= 2);
    // A married-out daughter living in another household of the province.
    let (other, _) = m.household(|o, _| {
        o.index != h.index
            && o.members.iter().any(|p| {
                dibao_proto::types::IdentityNumber::parse(&p.identity_number).expect("id").age_on(today()) >= 18
            })
    });
    let daughter = other
        .members
        .iter()
        .find(|p| dibao_proto::types::IdentityNumber::parse(&p.identity_number).expect("id").age_on(today()) >= 18)
        .expect("adult")
        .clone();
    let relative = |relative: bool| Signatory {
        person: Some(Person {
            identity_number: Some(IdentityNumber { value: daughter.identity_number.clone() }),
            name: daughter.name.clone(),
            ..Default::default()
        }),
        relation: Relation::Child as i32,
        relative,
    };
    let (from, until) = (today() - Days::days(3), today() + Days::days(365));

    let members_only = m.consent(&h, from, until).await;
    let e = m.hub.verify_household(m.verify_request(&h, &members_only)).await.expect_err("no relatives");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains(h.county()) && e.message().contains("直系亲属在授权书上签字"), "{}", e.message());
    assert_eq!(m.simulator.total_requests(), 0, "a department was asked under an insufficient consent");
    let person = h.members[0].identity_number.clone();
    let refused = access_log::accesses_to(&m.hub_pool, &person, None, 0, 100).await.expect("hub log");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].entry.outcome.starts_with("refused") && refused[0].entry.outcome.contains("直系亲属"));

    // A relative's signature and the finding that there are none exclude
    // each other: the registration is refused, naming the field.
    let e = m.try_consent(&h, from, until, vec![relative(true)], true).await.expect_err("both");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("consent.no_relatives_outside_household"), "{}", e.message());

    // Signed by the daughter as a relative: checked.
    let with_relative = m.try_consent(&h, from, until, vec![relative(true)], false).await.expect("with relative");
    let r = m.hub.verify_household(m.verify_request(&h, &with_relative)).await.expect("with relative");
    assert!(r.into_inner().report.expect("report").complete);
    // The officer found no relatives outside the household: checked.
    let none_outside = m.try_consent(&h, from, until, vec![], true).await.expect("none outside");
    let r = m.hub.verify_household(m.verify_request(&h, &none_outside)).await.expect("none outside");
    assert!(r.into_inner().report.expect("report").complete);
    // The daughter signing but not marked as a relative is not one of the
    // household's members: the registration is refused, naming her line.
    let e = m.try_consent(&h, from, until, vec![relative(false)], false).await.expect_err("unmarked");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
    assert!(e.message().contains("consent.signatories[") && e.message().contains("请标注为亲属"), "{}", e.message());
}

/// A hub stopped by its operator right after answering keeps the record of
/// what it answered: outcomes waiting to share an append are written before
/// the process ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_hub_keeps_the_outcomes_of_its_last_answers() {
    let mut m = Mesh::start(Options { households: 20, hub_process: true, ..Options::default() }).await;
    let (h, _) = m.household(|h, _| h.members.len() >= 2);
    let consent = m.consent(&h, today() - Days::days(3), today() + Days::days(365)).await;
    let report = m.hub.verify_household(m.verify_request(&h, &consent)).await.expect("report").into_inner();
    let report_id = report.report.expect("report").report_id;
    let status = m.stop_hub().await;
    assert!(status.success(), "{status:?}");
    for member in &h.members {
        let records = access_log::accesses_to(&m.hub_pool, &member.identity_number, None, 0, 100).await.expect("log");
        let outcomes: Vec<_> = records.iter().filter(|r| r.entry.outcome.starts_with("reported")).collect();
        assert_eq!(outcomes.len(), 1, "{records:?}");
        assert!(outcomes[0].entry.outcome.contains(&report_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_failing_or_down_department_costs_only_its_own_items() {
    let deadline_ms = 1_500;
    let mut m = Mesh::start(Options {
        households: 30,
        report_deadline_ms: deadline_ms,
        breaker_failures: 2,
        breaker_open_ms: 1_000,
        ..Options::default()
    })
    .await;
    let (h, records) = m.household(|_, r| has(r, Item::Deposits));
    let consent = m.consent(&h, today() - Days::days(3), today() + Days::days(365)).await;
    let verify = |m: &mut Mesh| {
        let mut hub = m.hub.clone();
        let req = m.verify_request(&h, &consent);
        async move {
            let started = Instant::now();
            let report = hub.verify_household(req).await.expect("verify").into_inner().report.expect("report");
            (report, started.elapsed())
        }
    };
    let unavailable = |r: &Report, item: Item| -> Vec<String> {
        r.items
            .iter()
            .filter(|i| i.item == item as i32 && i.unavailable)
            .map(|i| i.unavailable_reason.clone())
            .collect()
    };

    // Slow (300 ms) is still answered.
    m.simulator.set("tax", Behaviour { latency_ms: 300, ..Default::default() });
    let (report, _) = verify(&mut m).await;
    assert!(report.complete, "{}", report.summary);

    // Down: housing holds every request. The report still comes within the
    // deadline, property unavailable with the reason, everything else answered.
    m.simulator.set("housing", Behaviour { down: true, ..Default::default() });
    let (report, took) = verify(&mut m).await;
    // The deadline holds whatever the department does (margin for a loaded CI machine).
    assert!(took < Duration::from_millis(deadline_ms + 1_500), "report took {took:?}");
    assert!(!report.complete);
    let reasons = unavailable(&report, Item::Property);
    assert_eq!(reasons.len(), h.members.len(), "{reasons:?}");
    assert!(reasons.iter().all(|r| r.contains("无法连接") || r.contains("时限")), "{reasons:?}");
    assert!(report.summary.contains("住房城乡建设·房产"), "{}", report.summary);
    for member in &h.members {
        let mut expected = ground_truth(&records, &member.identity_number);
        expected.retain(|(item, ..)| item != "ITEM_PROPERTY");
        assert_eq!(found_in_report(&report, &member.identity_number), expected);
    }
    // Two failed reports open the breaker: the third does not ask housing at all.
    let _ = verify(&mut m).await;
    let asked = m.simulator.requests("housing");
    let (report, _) = verify(&mut m).await;
    assert_eq!(m.simulator.requests("housing"), asked, "housing asked through an open breaker");
    assert!(
        unavailable(&report, Item::Property).iter().all(|r| r.contains("熔断")),
        "{:?}",
        unavailable(&report, Item::Property)
    );
    assert!(unavailable(&report, Item::Vehicles).is_empty());

    // Housing recovers; after the breaker's pause one trial closes it again
    // (the trial's report may still miss the members asked beside it).
    m.simulator.set("housing", Behaviour::default());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (trial, _) = verify(&mut m).await;
    assert!(unavailable(&trial, Item::Property).len() < h.members.len(), "the trial went through");
    let (report, _) = verify(&mut m).await;
    assert!(report.complete, "{}", report.summary);

    // One bank failing: deposits from the others, that bank named as unavailable.
    m.simulator.set("bank:rcc", Behaviour { error_rate: 1.0, ..Default::default() });
    let (report, _) = verify(&mut m).await;
    let reasons = unavailable(&report, Item::Deposits);
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| r.contains("农村信用合作社") && r.contains("系统繁忙")),
        "{reasons:?}"
    );
    let from_others: i64 = report
        .items
        .iter()
        .filter_map(|i| i.record.as_ref())
        .filter(|r| r.item == Item::Deposits as i32)
        .map(|r| r.amount.map_or(0, |a| a.fen))
        .sum();
    let expected: i64 =
        records.iter().filter(|r| r.item == Item::Deposits && r.source != "农村信用合作社").map(|r| r.amount_fen).sum();
    assert_eq!(from_others, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_deleted_or_reordered_access_record_is_detected_and_named() {
    let mut m = Mesh::start(Options { households: 10, ..Options::default() }).await;
    for (h, _) in m.province.clone().iter().take(3) {
        let consent = m.consent(h, today() - Days::days(3), today() + Days::days(365)).await;
        m.hub.verify_household(m.verify_request(h, &consent)).await.expect("verify");
    }
    let pool = &m.hub_pool;
    // Three queries and their outcomes (written after each report left).
    let deadline = Instant::now() + Duration::from_secs(10);
    let check = loop {
        let check = access_log::verify_chain(pool).await.expect("chain");
        if check.records >= 6 || Instant::now() > deadline {
            break check;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(check.records >= 6, "{check:?}");
    assert_eq!(check.broken, None);
    let client = pool.get().await.expect("db");
    // Whoever tampers must first get past the append-only trigger.
    let e = client.execute("UPDATE access_log SET outcome = 'x' WHERE seq = 3", &[]).await.expect_err("append-only");
    assert!(e.as_db_error().is_some_and(|d| d.message().contains("append-only")), "{e:?}");
    client.batch_execute("ALTER TABLE access_log DISABLE TRIGGER USER").await.expect("disable");

    let original: String =
        client.query_one("SELECT officer_id FROM access_log WHERE seq = 3", &[]).await.expect("record").get(0);
    client.execute("UPDATE access_log SET officer_id = 'someone-else' WHERE seq = 3", &[]).await.expect("edit");
    let broken = access_log::verify_chain(pool).await.expect("chain").broken.expect("edit detected");
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("内容被改动"), "{}", broken.reason);
    client.execute("UPDATE access_log SET officer_id = $1 WHERE seq = 3", &[&original]).await.expect("undo");
    assert_eq!(access_log::verify_chain(pool).await.expect("chain").broken, None);

    client.execute("DELETE FROM access_log WHERE seq = 5", &[]).await.expect("delete");
    let broken = access_log::verify_chain(pool).await.expect("chain").broken.expect("deletion detected");
    assert_eq!(broken.seq, 6);
    assert!(broken.reason.contains("第 5 条") && broken.reason.contains("缺失"), "{}", broken.reason);

    // Reordering: records 2 and 4 swap places.
    client
        .batch_execute(
            "UPDATE access_log SET seq = -2 WHERE seq = 2;
             UPDATE access_log SET seq = 2 WHERE seq = 4;
             UPDATE access_log SET seq = 4 WHERE seq = -2;",
        )
        .await
        .expect("swap");
    let broken = access_log::verify_chain(pool).await.expect("chain").broken.expect("reorder detected");
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("不衔接") || broken.reason.contains("内容被改动"), "{}", broken.reason);
}

/// Who else the household register lists (R-ROSTER-4): a check that leaves
/// out the applicant's spouse, registered with them, reports it for the
/// officer; a check of the whole household reports nothing of the kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spouse_registered_with_the_applicant_but_left_out_is_a_finding() {
    use dibao_proto::common::v1::Relation as GenRelation;
    let mut m = Mesh::start(Options { households: 40, ..Options::default() }).await;
    let (h, _) = m.household(|h, r| {
        h.members.iter().any(|p| p.relation == GenRelation::Spouse)
            && r.iter().filter(|x| x.item == Item::Death).count() == 0
    });
    let consent = m.consent(&h, today() - Days::days(1), today() + Days::days(180)).await;
    let spouse = h.members.iter().find(|p| p.relation == GenRelation::Spouse).expect("spouse").identity_number.clone();
    let registered_apart = |report: &Report| -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| f.item == Item::HouseholdRegistration as i32 && f.reason.contains("同户登记"))
            .map(|f| f.person.as_ref().map(|p| p.value.clone()).unwrap_or_default())
            .collect()
    };
    let whole = m.hub.verify_household(m.verify_request(&h, &consent)).await.expect("verify").into_inner();
    assert_eq!(registered_apart(&whole.report.expect("report")), Vec::<String>::new());
    let mut without_spouse = m.verify_request(&h, &consent);
    without_spouse.persons.retain(|p| p.value != spouse);
    let report = m.hub.verify_household(without_spouse).await.expect("verify").into_inner().report.expect("report");
    assert_eq!(registered_apart(&report), vec![spouse.clone()]);
    let reason = report.findings.iter().find(|f| f.reason.contains("同户登记")).expect("finding").reason.clone();
    assert!(reason.contains("的配偶") && reason.contains("R-ROSTER-4") && !reason.contains(&spouse), "{reason}");
}

/// R-VER-1: a consent signed longer before its registration than the
/// county allows (a backdated signature makes adults of minors, who need
/// not sign), or valid for longer than it allows, is refused with the field
/// named; within both limits it is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backdated_or_overlong_consent_is_refused() {
    use tonic_types::StatusExt;
    let mut m = Mesh::start(Options { households: 10, ..Options::default() }).await;
    let (h, _) = m.household(|h, _| h.members.len() >= 2);
    let field = |e: &tonic::Status| {
        e.get_details_bad_request().map(|d| d.field_violations[0].field.clone()).unwrap_or_default()
    };
    let e = m
        .try_consent(&h, today() - Days::days(31), today() + Days::days(100), vec![], true)
        .await
        .expect_err("backdated");
    assert_eq!(field(&e), "consent.signed_on", "{}", e.message());
    assert!(e.message().contains("30天"), "{}", e.message());
    let e = m
        .try_consent(&h, today() - Days::days(1), today() + Days::days(400), vec![], true)
        .await
        .expect_err("too long");
    assert_eq!(field(&e), "consent.valid_until", "{}", e.message());
    assert!(e.message().contains("12个月"), "{}", e.message());
    m.try_consent(&h, today() - Days::days(30), today() + Days::days(365), vec![], true).await.expect("within both");
}
