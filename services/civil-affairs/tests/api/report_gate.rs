//! The report gate (R-VER-2, R-ELIG-1, R-ELIG-2): civil affairs reads the
//! hub's report itself and holds it against the household as it stands and
//! its county's policy; the report's findings reach the decision.

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, OfficerRole, Relation};
use dibao_proto::department::v1::{Department, Item};
use dibao_proto::verification::v1::VerifyHouseholdRequest;
use dibao_synthetic::generator::DeptRecord;
use tonic::Code;

use crate::helpers::*;

/// The first steps of an application, up to its verification.
async fn to_verification(r: &mut Running, app: &str) {
    let c = &mut r.client;
    step(c, app, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("home visit");
    step(c, app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "").await.expect("village review");
}

/// The steps after verification, up to the end of the notice.
async fn after_verification(r: &mut Running, app: &str) {
    let c = &mut r.client;
    step(c, app, ProcessStep::TownshipReview, OfficerRole::TownshipReviewer, "").await.expect("township review");
    step(c, app, ProcessStep::PublicNotice, OfficerRole::TownshipCaseworker, "").await.expect("notice");
}

async fn verification_refused(r: &mut Running, app: &str, report: &str) -> tonic::Status {
    step(&mut r.client, app, ProcessStep::Verification, OfficerRole::VerificationOfficer, report)
        .await
        .expect_err("the report does not open the step")
}

async fn approve(r: &mut Running, app: &str) -> Result<SignStepResponse, tonic::Status> {
    step(&mut r.client, app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_opens_the_steps_only_for_this_household_its_members_items_county_and_version() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;
    to_verification(&mut r, &app).await;
    let members = signatories(&household_of(&mut r, &hh).await);

    // A forged `VerificationCompleted` on the hub's topic names a report the hub never made.
    let forged = uuid::Uuid::now_v7().to_string();
    forge_report_event(&r, &hh, &forged).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let e = verification_refused(&mut r, &app, &forged).await;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("核对平台没有编号为"), "{}", e.message());

    // Another household's complete report.
    let (other_app, other) = submit(&mut r.client, renumbered("19800101", 11), vec![wage(120_000)]).await;
    let theirs = verified(&mut r, &other).await;
    let e = verification_refused(&mut r, &app, &theirs.report_id).await;
    assert!(e.message().contains("不是本申请的家庭"), "{}", e.message());

    // A report that leaves out a member.
    let partial = report_on(&mut r, &hh, COUNTY, &members[..3], &REQUIRED_ITEMS).await;
    assert!(partial.complete, "{}", partial.summary);
    let e = verification_refused(&mut r, &app, &partial.report_id).await;
    assert!(e.message().contains("未核对以下家庭成员：王小明"), "{}", e.message());

    // A report on vehicles alone, where the county asks for flats and deposits too.
    let vehicles = report_on(&mut r, &hh, COUNTY, &members, &[Item::Vehicles]).await;
    let e = verification_refused(&mut r, &app, &vehicles.report_id).await;
    assert!(e.message().contains("缺少本县要求的核对项目：王建国：房产、银行存款"), "{}", e.message());

    // A report held against another county's thresholds.
    let elsewhere = report_on(&mut r, &hh, "220582", &members, &REQUIRED_ITEMS).await;
    let e = verification_refused(&mut r, &app, &elsewhere.report_id).await;
    assert!(e.message().contains("按220582的政策核对") && e.message().contains("220581"), "{}", e.message());

    // The household's own complete report opens the step; notice follows.
    let good = verified(&mut r, &hh).await;
    let signed =
        step(&mut r.client, &app, ProcessStep::Verification, OfficerRole::VerificationOfficer, &good.report_id)
            .await
            .expect("verification");
    // What the departments hold beside what was declared, for the officer.
    assert!(
        signed.explanation.contains("工资性收入：部门记录每月0.00元（部门无记录），申报每月1200.00元，差额-1200.00元"),
        "{}",
        signed.explanation
    );
    after_verification(&mut r, &app).await;

    // The other household through notice on its report, which is then run
    // again (a second version) after the verification step signed the first.
    let signed = through_notice(&mut r, &other_app, &other).await;
    let rerun = r
        .checking
        .as_mut()
        .expect("hub")
        .hub
        .verify_household(VerifyHouseholdRequest {
            household_id: other.clone(),
            county: Some(DivisionCode { code: COUNTY.into() }),
            persons: signed.persons.clone(),
            consent_id: signed.consent_id.clone(),
            purpose: "低保申请审核".into(),
            items: REQUIRED_ITEMS.iter().map(|i| *i as i32).collect(),
            report_id: signed.report_id.clone(),
        })
        .await
        .expect("rerun")
        .into_inner()
        .report
        .expect("report");
    assert_eq!((rerun.report_id.as_str(), rerun.version), (signed.report_id.as_str(), 2));
    r.clock.advance(time::Duration::days(8));
    let e = approve(&mut r, &other_app).await.expect_err("superseded");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("已有第2版") && e.message().contains("签署的是第1版"), "{}", e.message());

    // The first household's report, 91 days on: past the county's period.
    r.clock.advance(time::Duration::days(83));
    let e = approve(&mut r, &app).await.expect_err("stale");
    assert!(e.message().contains("已超过本县规定的90天有效期"), "{}", e.message());

    // Nothing refused was enrolled.
    assert!(household_events(&r.env.broker, &r.topic).is_empty());
}

/// A person's household registration (户口簿), as public security holds it.
fn registered(person: &IdentityNumber, household_no: &str, relation: &str) -> DeptRecord {
    DeptRecord {
        department: Department::PublicSecurity,
        item: Item::HouseholdRegistration,
        person: person.value.clone(),
        record_id: format!("HJ-{}", person.value),
        source: "公安人口信息系统".into(),
        as_of: time::macros::date!(2026 - 06 - 01),
        amount_fen: 0,
        quantity: 0,
        attrs: [("village", VILLAGE), ("household_no", household_no), ("relation", relation)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

/// A registered car, as the traffic police's system holds it, with its
/// owner's household registration (public security answers nothing of a
/// person it has no registration of).
fn car(person: &IdentityNumber, plate: &str) -> [DeptRecord; 2] {
    let registration = registered(person, &format!("9{plate}"), "户主");
    let car = DeptRecord {
        department: Department::PublicSecurity,
        item: Item::Vehicles,
        person: person.value.clone(),
        record_id: format!("CL-{plate}"),
        source: "公安交通管理系统".into(),
        as_of: time::macros::date!(2026 - 06 - 01),
        amount_fen: 0,
        quantity: 1,
        attrs: [("plate", plate), ("brand", "大众"), ("registered_on", "2024-05-01")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };
    [registration, car]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_car_excludes_the_household_and_a_relatives_car_does_not() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    // A household whose head owns a car; another whose head's brother, who
    // signed the consent as a close relative, owns one.
    let owner = id("19700101", "001");
    let brother = id("19680808", "099");
    let departments = &r.checking.as_ref().expect("hub").departments;
    let records: Vec<DeptRecord> = [car(&owner, "吉A12345"), car(&brother, "吉A54321")].into_iter().flatten().collect();
    dibao_synthetic::simulator::load(&departments.sim_pool, &records).await.expect("records");

    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;
    let report = through_notice(&mut r, &app, &hh).await;
    assert!(report.findings.iter().any(|f| f.item == Item::Vehicles as i32), "{:?}", report.findings);

    let mut family = renumbered("19800101", 11);
    family.members[0].person.as_mut().expect("head").identity_number = Some(id("19680808", "011"));
    let (relatives_app, relatives_hh) = submit(&mut r.client, family, vec![wage(120_000)]).await;
    to_verification(&mut r, &relatives_app).await;
    let members = signatories(&household_of(&mut r, &relatives_hh).await);
    let relatives = [(brother.clone(), "王建业".to_owned(), Relation::Sibling)];
    let with_brother =
        report_with_relatives(&mut r, &relatives_hh, COUNTY, &members, &relatives, &REQUIRED_ITEMS).await;
    assert!(with_brother.complete, "{}", with_brother.summary);
    // The brother's car is reported, apart from the members', and no rule is held against it.
    assert_eq!(with_brother.relatives, vec![brother.clone()]);
    assert!(
        with_brother.items.iter().any(|i| i.person.as_ref() == Some(&brother) && i.record.is_some()),
        "the brother's car is in the report"
    );
    assert!(with_brother.findings.iter().all(|f| f.rule.is_empty()), "{:?}", with_brother.findings);
    step(
        &mut r.client,
        &relatives_app,
        ProcessStep::Verification,
        OfficerRole::VerificationOfficer,
        &with_brother.report_id,
    )
    .await
    .expect("verification");
    after_verification(&mut r, &relatives_app).await;
    r.clock.advance(time::Duration::days(8));

    // The member's car: not enrolled, and the explanation says why (R-ELIG-1).
    let e = approve(&mut r, &app).await.expect_err("a member's car");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("家庭财产不符合本县规定") && e.message().contains("吉A12345"), "{}", e.message());
    assert!(e.message().contains(&report.report_id), "the finding's report is named: {}", e.message());
    // The brother's car is not the household's (R-ELIG-2): enrolled.
    let enrolled = approve(&mut r, &relatives_app).await.expect("a relative's car changes nothing");
    assert!(enrolled.monthly_amount.is_some_and(|m| m.fen > 0), "{enrolled:?}");
    assert!(!enrolled.explanation.contains("吉A54321"), "{}", enrolled.explanation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_living_alone_is_enrolled_and_a_spouse_left_out_of_an_application_is_not() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    // A widow living alone; a married man whose wife is registered with him.
    let (widow, husband, wife) = (id("19500909", "061"), id("19750505", "062"), id("19770707", "063"));
    let records = [
        registered(&widow, "220581009201", "户主"),
        registered(&husband, "220581009202", "户主"),
        registered(&wife, "220581009202", "配偶"),
    ];
    let departments = &r.checking.as_ref().expect("hub").departments;
    dibao_synthetic::simulator::load(&departments.sim_pool, &records).await.expect("records");
    let alone = |birth: &str, seq: &str, name: &str| Household {
        village: Some(DivisionCode { code: VILLAGE.into() }),
        category: dibao_proto::events::v1::BenefitCategory::C as i32,
        members: vec![member(birth, seq, name, Relation::Head, WorkAbility::None, true)],
        ..Default::default()
    };
    let items = [REQUIRED_ITEMS.as_slice(), &[Item::HouseholdRegistration]].concat();

    // Living alone, she is an ordinary single-person household (单人户).
    let (app, hh) = submit(&mut r.client, alone("19500909", "061", "赵桂兰"), vec![]).await;
    to_verification(&mut r, &app).await;
    let members = signatories(&household_of(&mut r, &hh).await);
    let report = report_on(&mut r, &hh, COUNTY, &members, &items).await;
    assert!(report.findings.iter().all(|f| f.code != "REGISTERED_APART"), "{:?}", report.findings);
    step(&mut r.client, &app, ProcessStep::Verification, OfficerRole::VerificationOfficer, &report.report_id)
        .await
        .expect("verification");
    after_verification(&mut r, &app).await;
    r.clock.advance(time::Duration::days(8));
    let enrolled = approve(&mut r, &app).await.expect("a person living alone");
    assert!(enrolled.monthly_amount.is_some_and(|m| m.fen > 0), "{enrolled:?}");

    // He applies alone: his wife is registered with him (R-ROSTER-4).
    let (app, hh) = submit(&mut r.client, alone("19750505", "062", "钱立新"), vec![]).await;
    to_verification(&mut r, &app).await;
    let members = signatories(&household_of(&mut r, &hh).await);
    let report = report_on(&mut r, &hh, COUNTY, &members, &items).await;
    let apart: Vec<_> = report.findings.iter().filter(|f| f.code == "REGISTERED_APART").collect();
    assert_eq!(apart.len(), 1, "{:?}", report.findings);
    assert_eq!(apart[0].person.as_ref(), Some(&wife));
    let e = verification_refused(&mut r, &app, &report.report_id).await;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("的配偶") && e.message().contains("不得分户申请"), "{}", e.message());
}
