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
    let partial = report_on(&mut r, &hh, &members[..3], &REQUIRED_ITEMS).await;
    assert!(partial.complete, "{}", partial.summary);
    let e = verification_refused(&mut r, &app, &partial.report_id).await;
    assert!(e.message().contains("未核对以下家庭成员：王小明"), "{}", e.message());

    // A report on vehicles alone, where the county asks for flats and deposits too.
    let vehicles = report_on(&mut r, &hh, &members, &[Item::Vehicles]).await;
    let e = verification_refused(&mut r, &app, &vehicles.report_id).await;
    assert!(e.message().contains("缺少本县要求的核对项目：王建国：房产、银行存款"), "{}", e.message());

    // No caller chooses the thresholds: the hub reads the household's county
    // from civil affairs (R-VER-2); nor does another household's consent
    // serve this one (R-VER-1).
    let persons: Vec<IdentityNumber> = members.iter().map(|(id, ..)| id.clone()).collect();
    let e = r
        .checking
        .as_mut()
        .expect("hub")
        .hub
        .verify_household(VerifyHouseholdRequest {
            household_id: hh.clone(),
            persons,
            consent_id: theirs.consent_id.clone(),
            purpose: "低保申请审核".into(),
            ..Default::default()
        })
        .await
        .expect_err("another household's consent");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("不是为本户签署登记的"), "{}", e.message());

    // The household's own complete report opens the step; notice follows.
    let good = verified(&mut r, &hh).await;
    assert_eq!(good.county, Some(DivisionCode { code: COUNTY.into() }), "the household's own county");
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
    let mut records: Vec<DeptRecord> =
        [car(&owner, "吉A12345"), car(&brother, "吉A54321")].into_iter().flatten().collect();
    // The brother also works, for 6,000.00 yuan a month.
    records.push(DeptRecord {
        department: Department::HumanResources,
        item: Item::Employment,
        person: brother.value.clone(),
        record_id: "JY-88".into(),
        source: "就业信息系统".into(),
        as_of: time::macros::date!(2026 - 06 - 01),
        amount_fen: 600_000,
        quantity: 0,
        attrs: [("employer", "长春建材有限公司"), ("started_on", "2024-03-01")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    });
    dibao_synthetic::simulator::load(&departments.sim_pool, &records).await.expect("records");

    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;
    let report = through_notice(&mut r, &app, &hh).await;
    assert!(report.findings.iter().any(|f| f.item == Item::Vehicles as i32), "{:?}", report.findings);

    let mut family = renumbered("19800101", 11);
    family.members[0].person.as_mut().expect("head").identity_number = Some(id("19680808", "011"));
    // The family names the brother as its supporter, typed as a household
    // of three living on 300.00 yuan a head, not employed.
    let supporter = Supporter {
        name: "王建业".into(),
        relation: "兄弟".into(),
        household_per_capita: Some(dibao_proto::common::v1::Money { fen: 30_000 }),
        identity_number: Some(brother.clone()),
        household_size: 3,
        ..Default::default()
    };
    let (relatives_app, relatives_hh) =
        submit_with_supporters(&mut r.client, family, vec![wage(120_000)], vec![supporter]).await;
    to_verification(&mut r, &relatives_app).await;
    let members = signatories(&household_of(&mut r, &relatives_hh).await);
    let relatives = [(brother.clone(), "王建业".to_owned(), Relation::Sibling)];
    let items = [&REQUIRED_ITEMS[..], &[Item::Employment]].concat();
    let with_brother = report_with_relatives(&mut r, &relatives_hh, &members, &relatives, &items).await;
    assert!(with_brother.complete, "{}", with_brother.summary);
    // The brother's car is reported, apart from the members', and no rule is held against it.
    assert_eq!(with_brother.relatives, vec![brother.clone()]);
    assert!(
        with_brother.items.iter().any(|i| i.person.as_ref() == Some(&brother) && i.record.is_some()),
        "the brother's car is in the report"
    );
    assert!(with_brother.findings.iter().all(|f| f.rule.is_empty()), "{:?}", with_brother.findings);
    // His records feed the supporter line, and only it (R-INC-4).
    let signed = step(
        &mut r.client,
        &relatives_app,
        ProcessStep::Verification,
        OfficerRole::VerificationOfficer,
        &with_brother.report_id,
    )
    .await
    .expect("verification");
    let said = &signed.explanation;
    for expected in [
        "赡养人王建业（兄弟）：部门记录月收入6000.00元",
        "名下有公安交通管理系统CL-吉A54321，不计入本户财产（R-ELIG-2）",
        "有就业记录，按就业人员测算",
        "其家庭3人，人均收入不低于2000.00元（申报300.00元），按2000.00元计",
    ] {
        assert!(said.contains(expected), "missing “{expected}” in:\n{said}");
    }
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
    // Estimated from the minimum wage, as an employed supporter able to support.
    assert!(
        enrolled.explanation.contains("王建业（兄弟）赡养费170.00元")
            && enrolled.explanation.contains("当地最低工资标准"),
        "{}",
        enrolled.explanation
    );
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
    let report = report_on(&mut r, &hh, &members, &items).await;
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
    let report = report_on(&mut r, &hh, &members, &items).await;
    let apart: Vec<_> = report.findings.iter().filter(|f| f.code == "REGISTERED_APART").collect();
    assert_eq!(apart.len(), 1, "{:?}", report.findings);
    assert_eq!(apart[0].person.as_ref(), Some(&wife));
    let e = verification_refused(&mut r, &app, &report.report_id).await;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("的配偶") && e.message().contains("不得分户申请"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_federation_and_medical_insurance_certify_what_was_typed() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    // The grandfather is typed as grade-one disabled and seriously ill; the
    // federation's register holds a grade-three certificate (and a lapsed
    // grade-one one), medical insurance only his high blood pressure and
    // 6,000.00 yuan of his own spending over twelve months. The mother,
    // typed as not disabled, holds a valid grade-two certificate.
    let grandfather = id("19500303", "003");
    let mother = id("19720202", "002");
    let federation = Department::DisabilityFederation;
    let medical = Department::MedicalInsurance;
    let records = [
        health_record(
            (federation, Item::DisabilityCertificate),
            &grandfather,
            &format!("{}41", grandfather.value),
            (0, 1),
            &[("type", "肢体"), ("grade", "一级"), ("valid_until", "2025-12-31"), ("issued_on", "2015-12-31")],
            time::macros::date!(2026 - 06 - 01),
        ),
        health_record(
            (federation, Item::DisabilityCertificate),
            &grandfather,
            &format!("{}43", grandfather.value),
            (0, 3),
            &[("type", "肢体"), ("grade", "三级"), ("valid_until", "2031-01-31"), ("issued_on", "2021-02-01")],
            time::macros::date!(2026 - 06 - 01),
        ),
        health_record(
            (federation, Item::DisabilityCertificate),
            &mother,
            &format!("{}22", mother.value),
            (0, 2),
            &[("type", "听力"), ("grade", "二级"), ("valid_until", "2030-03-31"), ("issued_on", "2020-04-01")],
            time::macros::date!(2026 - 06 - 01),
        ),
        health_record(
            (medical, Item::RegisteredIllness),
            &grandfather,
            "MTB-7",
            (0, 0),
            &[
                ("disease_code", "I10.x00"),
                ("disease", "高血压"),
                ("category", "门诊慢性病"),
                ("registered_from", "2020-01-01"),
            ],
            time::macros::date!(2026 - 06 - 01),
        ),
        health_record(
            (medical, Item::MedicalSpending),
            &grandfather,
            "ZF-7",
            (600_000, 12),
            &[("period_from", "2025-06-01"), ("period_to", "2026-05-31"), ("total_cost_fen", "1500000")],
            time::macros::date!(2026 - 06 - 01),
        ),
    ];
    let departments = &r.checking.as_ref().expect("hub").departments;
    dibao_synthetic::simulator::load(&departments.sim_pool, &records).await.expect("records");

    let mut typed = household();
    typed.members[2].disability_grade = 1;
    typed.members[2].serious_illness = true;
    let spending = IncomeItem {
        kind: IncomeKind::IllnessSpending as i32,
        label: "王老汉看病支出".into(),
        member: Some(grandfather.clone()),
        monthly: Some(dibao_proto::common::v1::Money { fen: 80_000 }),
        ..Default::default()
    };
    let (app, hh) = submit(&mut r.client, typed, vec![wage(120_000), spending]).await;
    to_verification(&mut r, &app).await;
    let members = signatories(&household_of(&mut r, &hh).await);

    // A claim the report holds no answer for does not pass: the grade and
    // the illness decide money and must be checked (R-VER-3).
    let unchecked = report_on(&mut r, &hh, &members, &REQUIRED_ITEMS).await;
    let e = verification_refused(&mut r, &app, &unchecked.report_id).await;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("王老汉：残疾人证、慢特病和重特大疾病登记") && !e.message().contains("王建国："),
        "{}",
        e.message()
    );

    // With the departments' answers the step is signed, and what they
    // certify replaces what was typed, each change naming its record.
    let items =
        [&REQUIRED_ITEMS[..], &[Item::DisabilityCertificate, Item::RegisteredIllness, Item::MedicalSpending]].concat();
    let report = report_on(&mut r, &hh, &members, &items).await;
    assert!(report.complete, "{}", report.summary);
    let signed =
        step(&mut r.client, &app, ProcessStep::Verification, OfficerRole::VerificationOfficer, &report.report_id)
            .await
            .expect("verification");
    let said = &signed.explanation;
    for expected in [
        format!("王老汉申报1级残疾，残联记录为3级肢体残疾（残疾人证{}43", grandfather.value),
        "李秀英未申报残疾，残联记录为2级听力残疾".to_owned(),
        "王老汉申报患重病，医保无重特大疾病或门诊特殊疾病登记".to_owned(),
        "王老汉近12个月医疗费用个人负担6000.00元（医疗保障信息平台ZF-7，2025-06-01至2026-05-31".to_owned(),
        "按月500.00元扣减，取代申报的因病支出（R-INC-3）".to_owned(),
        format!("核对报告{}第{}版", report.report_id, report.version),
    ] {
        assert!(said.contains(&expected), "missing “{expected}” in:\n{said}");
    }
    // Kept with the application, for the reviewer and the approver to read.
    let kept = r
        .client
        .get_application(GetApplicationRequest { application_id: app.clone() })
        .await
        .expect("application")
        .into_inner()
        .application
        .expect("application");
    assert_eq!(&kept.verification_findings, said);
    let held = household_of(&mut r, &hh).await;
    assert_eq!((held.members[2].disability_grade, held.members[2].serious_illness), (3, false));
    assert_eq!(held.members[1].disability_grade, 2);

    // County approval assesses what was certified: the deduction with its
    // source; he is priced as elderly, not as severely disabled (the
    // grade-one addition typed would have been the larger).
    after_verification(&mut r, &app).await;
    r.clock.advance(time::Duration::days(8));
    let enrolled = approve(&mut r, &app).await.expect("enrolled");
    let text = &enrolled.explanation;
    assert!(text.contains("王老汉医疗费用个人负担（医疗保障信息平台ZF-7") && text.contains("500.00元"), "{text}");
    assert!(!text.contains("王老汉看病支出"), "the typed spending is replaced: {text}");
    assert!(text.contains("王老汉属于老年人") && !text.contains("重度残疾人"), "{text}");
}
