//! The signed process: every step in order, refusals naming what is wrong, deaths and exits (R-PROC-*, R-VER-2).

use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{IdentityNumber, Money, OfficerRole, YearMonth};
use dibao_proto::events::v1::{BenefitCategory, event_envelope::Payload};
use dibao_tests::officer;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_process_enrols_the_household_and_publishes_it_once() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;

    // Out of order: the village review cannot come before the home visit (R-PROC-1).
    let e = step(&mut r.client, &app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "")
        .await
        .expect_err("order");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("当前应办理“入户调查”"), "{}", e.message());

    through_notice(&mut r, &app, &hh).await;

    // The notice list (R-PROC-3): names, size, income, proposed amount;
    // the identity number masked, health details absent.
    let notice = export_notice(&mut r.client, VILLAGE, NoticeKind::Applicants, FileFormat::Csv).await.expect("notice");
    assert_eq!(notice.households, 1);
    assert!(notice.filename.ends_with(".csv"), "{}", notice.filename);
    let csv = String::from_utf8(notice.content).expect("utf-8");
    let head_id = id("19700101", "001").value;
    assert!(
        csv.contains(&format!(
            "1,红梅镇联盟村,王建国,{}********{},4,300.00,低保C类,500.00",
            &head_id[..6],
            &head_id[14..]
        )),
        "{csv}"
    );
    assert!(!csv.contains(&head_id) && !csv.contains("残疾") && !csv.contains("疾病"), "{csv}");
    // The notice's dates and whom to call (R-PROC-1, R-AUD-2), by the
    // county's and the township's names (R-ROSTER-3).
    assert!(csv.contains(",500.00,2026年06月10日至2026年06月17日\r\n"), "{csv}");
    assert!(csv.contains("监督举报电话：梅河口市民政部门 0435-4221234；红梅镇 0435-4301234"), "{csv}");
    let e = export_notice(&mut r.client, VILLAGE, NoticeKind::Unspecified, FileFormat::Csv).await.expect_err("kind");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "kind");

    // During the 7-day notice, approval is refused (R-PROC-1).
    let e = step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "")
        .await
        .expect_err("notice");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("公示期为7天") && e.message().contains("2026-06-17"), "{}", e.message());

    // An objection holds approval until it is resolved.
    let objection = r
        .client
        .record_objection(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            RecordObjectionRequest {
                application_id: app.clone(),
                text: "村民反映该户有外出务工收入未申报".into(),
                resolved: false,
                objection_id: String::new(),
            },
        ))
        .await
        .expect("objection")
        .into_inner()
        .objection_id;
    r.clock.advance(time::Duration::days(8));
    let e = step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "")
        .await
        .expect_err("objection");
    assert!(e.message().contains("1条异议尚未处理"), "{}", e.message());
    r.client
        .record_objection(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            RecordObjectionRequest {
                application_id: app.clone(),
                text: "经入户核实，务工收入已如实申报".into(),
                resolved: true,
                objection_id: objection,
            },
        ))
        .await
        .expect("resolve");

    let approved =
        step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "").await.expect("approve");
    // (500.00 - 1200.00 / 4) x 2 covered + elderly 50.00 + minor 50.00 = 500.00.
    assert_eq!(approved.monthly_amount, Some(Money { fen: 50_000 }));
    assert_eq!(approved.next_step, ProcessStep::Enrolment as i32);
    assert!(approved.explanation.contains("每月低保金合计500.00元"), "{}", approved.explanation);

    let events = household_events(&r.env.broker, &r.topic);
    let enrolled: Vec<_> =
        events.iter().filter(|(_, e)| matches!(e.payload, Some(Payload::HouseholdEnrolled(_)))).collect();
    assert_eq!(enrolled.len(), 1, "one enrolment event: {events:?}");
    let (key, envelope) = enrolled[0];
    let Some(Payload::HouseholdEnrolled(ev)) = &envelope.payload else { unreachable!("filtered above") };
    assert_eq!(key, &ev.household_id, "keyed by household");
    assert_eq!(ev.monthly_amount, Some(Money { fen: 50_000 }));
    assert_eq!(ev.members.iter().filter(|m| m.covered).count(), 2);
    // Enrolled on application, it is given the county's next household number.
    assert_eq!(ev.household_number, format!("{COUNTY}000001"));

    let h = r
        .client
        .get_household(GetHouseholdRequest { household_id: ev.household_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .household
        .expect("household");
    assert_eq!(h.status, HouseholdStatus::Enrolled as i32);
    assert_eq!(h.monthly_amount, Some(Money { fen: 50_000 }));
    assert_eq!(h.household_number, ev.household_number, "the household is read with its number");
    // Enrolled, it holds its certificate (低保证, R-PROC-1), printed as issued.
    let certificate = r
        .client
        .get_certificate(GetCertificateRequest { household_id: ev.household_id.clone() })
        .await
        .expect("certificate")
        .into_inner();
    let current = certificate.current.expect("a certificate at enrolment");
    assert_eq!((current.number.as_str(), current.reason.as_str()), ("220581-DB-2026-000001", "审批纳入"));
    assert!(certificate.printed.iter().any(|l| l == "月保障金：500.00元"), "{:?}", certificate.printed);
    assert!(certificate.printed.iter().any(|l| l == "户主：王建国"), "{:?}", certificate.printed);
    // Once enrolled the household leaves the applicants' notice for the long-term one.
    let applicants = export_notice(&mut r.client, COUNTY, NoticeKind::Applicants, FileFormat::Csv).await.expect("csv");
    assert_eq!(applicants.households, 0);
    let long_term = export_notice(&mut r.client, COUNTY, NoticeKind::Enrolled, FileFormat::Xlsx).await.expect("xlsx");
    assert_eq!(long_term.households, 1);
    assert!(long_term.filename.ends_with(".xlsx") && long_term.content.starts_with(b"PK"), "{}", long_term.filename);

    // A new standard from July recalculates the household (R-ELIG-4):
    // (600.00 - 300.00) x 2 + 60.00 + 60.00 = 720.00.
    let saved = save_policy(&mut r.client, policy(60_000, 2026, 7)).await;
    assert_eq!(saved.recalculated_households, 1);
    let h = r
        .client
        .get_household(GetHouseholdRequest { household_id: ev.household_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .household
        .expect("household");
    assert_eq!(h.monthly_amount, Some(Money { fen: 72_000 }));
    let events = household_events(&r.env.broker, &r.topic);
    let changed: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match &e.payload {
            Some(Payload::HouseholdAmountChanged(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].monthly_amount, Some(Money { fen: 72_000 }));
    assert_eq!(changed[0].effective_month, Some(YearMonth { year: 2026, month: 7 }));

    // The same people cannot be put into a second household (R-ROSTER-4).
    let e = r
        .client
        .submit_application(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            SubmitApplicationRequest { household: Some(household()), income: vec![], supporters: vec![] },
        ))
        .await
        .expect_err("twice");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("household.members[0]"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_is_wrong() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;

    // A bad identity number: the field is named, in the message and in BadRequest.
    let mut bad = household();
    bad.members[1].person.as_mut().expect("person").identity_number =
        Some(IdentityNumber { value: "220581197202020021".into() });
    let e = r
        .client
        .submit_application(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            SubmitApplicationRequest { household: Some(bad), income: vec![], supporters: vec![] },
        ))
        .await
        .expect_err("bad id");
    assert_eq!(e.code(), Code::InvalidArgument);
    let details = e.get_details_bad_request().expect("details");
    assert_eq!(details.field_violations[0].field, "household.members[1].person.identity_number");
    assert!(details.field_violations[0].description.contains("校验位"), "{details:?}");

    // One person covered apart as clergy, without the three years on the site (R-ROSTER-4).
    let mut single = household();
    single.members.truncate(1);
    single.single_person_reason = SinglePersonReason::Clergy as i32;
    single.clergy_years_in_site = 2;
    let e = r
        .client
        .submit_application(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            SubmitApplicationRequest { household: Some(single), income: vec![], supporters: vec![] },
        ))
        .await
        .expect_err("single");
    assert_eq!(
        e.get_details_bad_request().expect("details").field_violations[0].field,
        "household.single_person_reason"
    );

    // A policy excluding for what non-members own (R-ELIG-2).
    let mut forbidden = policy(50_000, 2026, 5);
    forbidden.property_thresholds[0].subject = RuleSubject::NonMembers as i32;
    let e = r
        .client
        .save_policy(officer(OfficerRole::CountyApprover, COUNTY, SavePolicyRequest { policy: Some(forbidden) }))
        .await
        .expect_err("forbidden");
    assert_eq!(
        e.get_details_bad_request().expect("details").field_violations[0].field,
        "policy.property_thresholds[0]"
    );
    assert!(e.message().contains("R-ELIG-2"));

    // Category B covering one member of four (R-BEN-2).
    let mut b = household();
    b.category = BenefitCategory::B as i32;
    b.members[3].covered = false;
    let e = r
        .client
        .assess_household(AssessHouseholdRequest {
            household: Some(b),
            income: vec![wage(120_000)],
            ..Default::default()
        })
        .await
        .expect_err("one covered");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "covered");

    let (app, _) = submit(&mut r.client, household(), vec![wage(120_000)]).await;
    // A step signed without a proven officer (R-PROC-2): refused before any handler.
    let mut unsigned = CivilAffairsServiceClient::new(r.env.channel("gateway", r.addr.parse().expect("addr")).await);
    let e = unsigned
        .sign_step(SignStepRequest {
            application_id: app.clone(),
            step: ProcessStep::HomeVisit as i32,
            approve: true,
            ..Default::default()
        })
        .await
        .expect_err("unsigned");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    // Signed by a role the step does not admit.
    let e = step(&mut r.client, &app, ProcessStep::HomeVisit, OfficerRole::CountyApprover, "").await.expect_err("role");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    // Verification without a report (R-VER-2): approval can never be reached without one.
    step(&mut r.client, &app, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("visit");
    step(&mut r.client, &app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "").await.expect("review");
    let e = step(&mut r.client, &app, ProcessStep::Verification, OfficerRole::VerificationOfficer, "")
        .await
        .expect_err("no report");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "verification_report_id");
    // Without the hub's address no report can be read, so none is accepted (R-VER-2).
    let e = step(
        &mut r.client,
        &app,
        ProcessStep::Verification,
        OfficerRole::VerificationOfficer,
        "0190f5c2-0000-7000-8000-00000000b001",
    )
    .await
    .expect_err("no hub");
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(e.message().contains("未配置核对平台的地址"), "{}", e.message());

    // Nothing refused left a trace: no household event was published.
    assert!(household_events(&r.env.broker, &r.topic).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deaths_reach_the_roster_and_exits_follow_the_signed_path() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let mut clergy = renumbered("19550101", 71);
    clergy.members.truncate(1);
    clergy.single_person_reason = SinglePersonReason::Clergy as i32;
    clergy.clergy_years_in_site = 5;
    clergy.category = BenefitCategory::A as i32;
    // Four elderly members, every one covered.
    let mut elders = renumbered("19580101", 31);
    for m in &mut elders.members {
        m.covered = true;
    }
    let rows = vec![
        roster_row(1, "HH-001", household(), 50_000),
        roster_row(2, "HH-002", clergy, 50_000),
        roster_row(3, "HH-003", elders, 50_000),
    ];
    let imported = r.client.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert_eq!(imported.households_applied, 3, "{:?}", imported.errors);
    let death = |person: IdentityNumber| {
        officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            RecordDeathRequest {
                identity_number: Some(person),
                died_on: Some(dibao_proto::common::v1::Date { year: 2026, month: 6, day: 1 }),
                source: "公安死亡登记 2026-0601-17".into(),
            },
        )
    };

    // The grandfather dies: the event goes out, the household stays.
    let grandfather = id("19500303", "003");
    let d = r.client.record_death(death(grandfather.clone())).await.expect("death").into_inner();
    assert!(d.exit_application_id.is_empty(), "three members remain");
    let e = r.client.record_death(death(grandfather.clone())).await.expect_err("twice");
    assert_eq!(e.code(), Code::NotFound);

    // The household's income rose: exit through home visit, township review, county approval.
    let e = r
        .client
        .start_exit(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            StartExitRequest { household_id: d.household_id.clone(), reason: 0, remarks: String::new() },
        ))
        .await
        .expect_err("no reason");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "reason");
    let exit = r
        .client
        .start_exit(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            StartExitRequest {
                household_id: d.household_id.clone(),
                reason: dibao_proto::events::v1::ExitReason::Income as i32,
                remarks: "儿子稳定就业，家庭人均收入超过标准".into(),
            },
        ))
        .await
        .expect("exit")
        .into_inner()
        .application_id;
    let e = step(&mut r.client, &exit, ProcessStep::TownshipReview, OfficerRole::TownshipReviewer, "")
        .await
        .expect_err("order");
    assert!(e.message().contains("当前应办理“入户调查”"), "{}", e.message());
    step(&mut r.client, &exit, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("visit");
    step(&mut r.client, &exit, ProcessStep::TownshipReview, OfficerRole::TownshipReviewer, "").await.expect("review");
    let done = step(&mut r.client, &exit, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "")
        .await
        .expect("approve");
    assert_eq!(done.next_step, ProcessStep::Exit as i32);
    let h = r
        .client
        .get_household(GetHouseholdRequest { household_id: d.household_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .household
        .expect("household");
    assert_eq!(h.status, HouseholdStatus::Exited as i32);
    assert_eq!(h.monthly_amount, Some(Money { fen: 0 }));

    // The only member of a single-person household dies: its exit starts.
    let monk = id("19550101", "071");
    let d2 = r.client.record_death(death(monk)).await.expect("death").into_inner();
    assert!(!d2.exit_application_id.is_empty());
    // One of four covered elders dies: the three others are assessed again.
    let d3 = r.client.record_death(death(id("19580101", "032"))).await.expect("death").into_inner();
    assert!(d3.exit_application_id.is_empty());

    let events = household_events(&r.env.broker, &r.topic);
    let deceased: Vec<_> = events
        .iter()
        .filter_map(|(k, e)| match &e.payload {
            Some(Payload::MemberDeceased(m)) => Some((k.clone(), m.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(deceased.len(), 3);
    // Events of different households sit on different partitions: find, don't index.
    let (key, _) =
        deceased.iter().find(|(_, m)| m.identity_number.as_ref() == Some(&grandfather)).expect("grandfather");
    assert_eq!(key, &d.household_id, "keyed by household");
    let exited: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match &e.payload {
            Some(Payload::HouseholdExited(x)) => Some(x.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(exited.len(), 1);
    assert_eq!(exited[0].reason, dibao_proto::events::v1::ExitReason::Income as i32);
    assert_eq!(exited[0].members.len(), 4);

    // Deaths stop the money from the month after: the grandfather's
    // household assessed again without him, the monk's paid nothing.
    let changes: Vec<(String, i64, i32, String)> = events
        .iter()
        .filter_map(|(k, e)| match &e.payload {
            Some(Payload::HouseholdAmountChanged(c)) => Some((
                k.clone(),
                c.monthly_amount.map_or(-1, |m| m.fen),
                c.effective_month.map_or(0, |m| m.year * 100 + m.month),
                c.reason.clone(),
            )),
            _ => None,
        })
        .collect();
    let after = |household: &str| {
        changes
            .iter()
            .find(|(k, .., reason)| k == household && reason.contains("死亡"))
            .cloned()
            .unwrap_or_else(|| panic!("no amount change after the death in household {household}: {changes:?}"))
    };
    let (_, amount, month, reason) = after(&d3.household_id);
    assert_eq!(month, 202607, "{reason}");
    assert!(reason.contains("按在世成员重新核定") && amount > 0, "{reason}");
    let (_, amount, month, reason) = after(&d2.household_id);
    assert_eq!((amount, month), (0, 202607), "{reason}");
    assert!(reason.contains("均已死亡"), "{reason}");
}
