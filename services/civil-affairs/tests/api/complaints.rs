//! Complaints and reports (R-AUD-2; issue 23, item 4): intake, assignment
//! to a township with a deadline, signed follow-up and close; who reported
//! kept from the township; the officer complained of kept off the case; the
//! overdue ones listed per township.

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{Date, DivisionCode, OfficerRole};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;
use dibao_tests::officer;

const TOWNSHIP: &str = "220581101";
const OTHER_TOWNSHIP: &str = "220581102";

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn fields(e: &tonic::Status) -> Vec<String> {
    e.get_details_bad_request().map(|b| b.field_violations.into_iter().map(|v| v.field).collect()).unwrap_or_default()
}

async fn get(r: &mut Running, role: OfficerRole, division: &str, id: &str) -> Result<Complaint, tonic::Status> {
    r.complaints
        .get_complaint(officer(role, division, GetComplaintRequest { complaint_id: id.into() }))
        .await
        .map(|c| c.into_inner().complaint.expect("complaint"))
}

async fn add_step(r: &mut Running, role: OfficerRole, division: &str, id: &str) -> Result<(), tonic::Status> {
    r.complaints
        .add_complaint_step(officer(
            role,
            division,
            AddComplaintStepRequest {
                complaint_id: id.into(),
                action: "入户核查".into(),
                note: "走访邻里并调阅收入材料，该户务工收入与申报一致".into(),
            },
        ))
        .await
        .map(|_| ())
}

fn close_request(id: &str) -> CloseComplaintRequest {
    CloseComplaintRequest {
        complaint_id: id.into(),
        outcome: ComplaintOutcome::PartlySubstantiated as i32,
        reply: "经核查，该户务工收入属实，另有一处耕地流转收入未申报，已责成补充申报并重新核算。".into(),
    }
}

#[tokio::test]
async fn a_complaint_is_taken_assigned_followed_up_and_closed_and_an_overdue_one_listed() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;
    // The caseworker's home visit: the complaint below concerns them.
    step(&mut r.client, &app, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("home visit");

    // Bad intake names each field and keeps nothing.
    let e = r
        .complaints
        .file_complaint(officer(
            OfficerRole::TownshipCaseworker,
            TOWNSHIP,
            FileComplaintRequest {
                division: Some(DivisionCode { code: TOWNSHIP.into() }),
                received_on: date(2026, 6, 11),
                anonymous: true,
                complainant_name: "刘某".into(),
                household_id: "not-an-id".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("bad intake");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(fields(&e), ["channel", "received_on", "anonymous", "content", "household_id"], "{}", e.message());

    // Taken by the township by phone, naming the household and the
    // application (whose signers it concerns).
    let intake = FileComplaintRequest {
        division: Some(DivisionCode { code: TOWNSHIP.into() }),
        channel: ComplaintChannel::Phone as i32,
        received_on: date(2026, 6, 10),
        complainant_name: "刘桂芝".into(),
        complainant_contact: "13904351234".into(),
        content: "反映王建国家有耕地流转收入未申报，仍申请低保。".into(),
        household_id: hh.clone(),
        application_id: app.clone(),
        ..Default::default()
    };
    let filed = r
        .complaints
        .file_complaint(officer(OfficerRole::TownshipCaseworker, TOWNSHIP, intake.clone()))
        .await
        .expect("filed")
        .into_inner();
    assert_eq!(filed.complaint_number, "220581-2026-000001");
    let id = filed.complaint_id;
    // A household outside the division it is filed in is, to the caller, not there.
    let e = r
        .complaints
        .file_complaint(officer(
            OfficerRole::CountyApprover,
            COUNTY,
            FileComplaintRequest { division: Some(DivisionCode { code: OTHER_TOWNSHIP.into() }), ..intake.clone() },
        ))
        .await
        .expect_err("household elsewhere");
    assert_eq!(fields(&e), ["household_id", "application_id"], "{}", e.message());

    // The county assigns it; a township of another county or a deadline
    // beyond sixty days is refused, naming the field.
    let assign = |township: &str, due_on| AssignComplaintRequest {
        complaint_id: id.clone(),
        township: Some(DivisionCode { code: township.into() }),
        due_on,
        note: "请于期限内核实并报告".into(),
    };
    let e = r.complaints.assign_complaint(assign("220582101", date(2026, 6, 30))).await.expect_err("other county");
    assert_eq!(fields(&e), ["township"], "{}", e.message());
    let e = r.complaints.assign_complaint(assign(TOWNSHIP, date(2026, 9, 30))).await.expect_err("too late");
    assert_eq!(fields(&e), ["due_on"], "{}", e.message());
    // A township's own officer may not assign.
    let e = r
        .complaints
        .assign_complaint(officer(OfficerRole::TownshipCaseworker, TOWNSHIP, assign(TOWNSHIP, date(2026, 6, 30))))
        .await
        .expect_err("township assigns");
    assert_eq!(e.code(), Code::PermissionDenied);
    r.complaints.assign_complaint(assign(TOWNSHIP, date(2026, 6, 30))).await.expect("assigned");

    // The township reads it without who reported; the county reads them.
    let seen = get(&mut r, OfficerRole::TownshipCaseworker, TOWNSHIP, &id).await.expect("township reads");
    assert_eq!((seen.complainant_name.as_str(), seen.complainant_contact.as_str()), ("", ""));
    assert_eq!(seen.status, ComplaintStatus::Assigned as i32);
    assert_eq!(seen.due_on, date(2026, 6, 30));
    let seen = get(&mut r, OfficerRole::CountyApprover, COUNTY, &id).await.expect("county reads");
    assert_eq!(seen.complainant_name, "刘桂芝");
    // Another township's officer finds nothing.
    let e = get(&mut r, OfficerRole::TownshipCaseworker, OTHER_TOWNSHIP, &id).await.expect_err("other township");
    assert_eq!(e.code(), Code::NotFound);
    let e = add_step(&mut r, OfficerRole::TownshipCaseworker, OTHER_TOWNSHIP, &id).await.expect_err("other township");
    assert_eq!(e.code(), Code::NotFound);
    // The officer complained of takes no step on it.
    let e = add_step(&mut r, OfficerRole::TownshipCaseworker, TOWNSHIP, &id).await.expect_err("about them");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("涉及您本人"), "{}", e.message());
    // Not closed before it is followed up.
    let e = r.complaints.close_complaint(close_request(&id)).await.expect_err("no follow-up");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("尚无核查记录"), "{}", e.message());

    add_step(&mut r, OfficerRole::TownshipReviewer, TOWNSHIP, &id).await.expect("followed up");
    // Closing is the county approver's.
    let e = r
        .complaints
        .close_complaint(officer(OfficerRole::TownshipCaseworker, TOWNSHIP, close_request(&id)))
        .await
        .expect_err("township closes");
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = r
        .complaints
        .close_complaint(CloseComplaintRequest { reply: " ".into(), ..close_request(&id) })
        .await
        .expect_err("no reply");
    assert_eq!(fields(&e), ["reply"]);
    r.complaints.close_complaint(close_request(&id)).await.expect("closed");
    let closed = get(&mut r, OfficerRole::CountyApprover, COUNTY, &id).await.expect("closed");
    assert_eq!(closed.status, ComplaintStatus::Closed as i32);
    assert_eq!(closed.outcome, ComplaintOutcome::PartlySubstantiated as i32);
    let actions: Vec<&str> = closed.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions, ["受理", "交办", "入户核查", "办结"]);
    let who: Vec<&str> =
        closed.steps.iter().map(|s| s.officer.as_ref().map_or("", |o| o.officer_id.as_str())).collect();
    assert_eq!(
        who,
        [
            "township_caseworker-220581101",
            "county_approver-220581",
            "township_reviewer-220581101",
            "county_approver-220581"
        ]
    );
    assert!(closed.steps.iter().all(|s| !s.assertion_id.is_empty() && !s.issuer.is_empty()), "{closed:?}");
    assert!(closed.steps[1].note.contains("2026年06月30日"), "{:?}", closed.steps[1]);
    let e = add_step(&mut r, OfficerRole::TownshipReviewer, TOWNSHIP, &id).await.expect_err("closed");
    assert_eq!(e.code(), Code::FailedPrecondition);

    // An anonymous letter to the county, assigned with a short deadline,
    // is overdue once the deadline passes while it is open.
    let letter = r
        .complaints
        .file_complaint(FileComplaintRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            channel: ComplaintChannel::Letter as i32,
            received_on: date(2026, 6, 10),
            anonymous: true,
            content: "反映某村委会成员亲属违规享受低保。".into(),
            ..Default::default()
        })
        .await
        .expect("letter")
        .into_inner();
    assert_eq!(letter.complaint_number, "220581-2026-000002");
    r.complaints
        .assign_complaint(AssignComplaintRequest {
            complaint_id: letter.complaint_id.clone(),
            township: Some(DivisionCode { code: TOWNSHIP.into() }),
            due_on: date(2026, 6, 12),
            note: String::new(),
        })
        .await
        .expect("assigned");
    r.clock.advance(time::Duration::days(3));
    let list = |division: &str, overdue_only| ListComplaintsRequest {
        division: Some(DivisionCode { code: division.into() }),
        open_only: false,
        overdue_only,
        page: None,
    };
    let overdue = r.complaints.list_complaints(list(COUNTY, true)).await.expect("overdue").into_inner();
    let ids: Vec<&str> = overdue.complaints.iter().map(|c| c.complaint_id.as_str()).collect();
    assert_eq!(ids, [letter.complaint_id.as_str()]);
    assert!(overdue.complaints[0].overdue);
    let counts: Vec<(String, i32, i32)> = overdue
        .townships
        .iter()
        .map(|t| (t.township.as_ref().map(|d| d.code.clone()).unwrap_or_default(), t.open, t.overdue))
        .collect();
    assert_eq!(counts, [(TOWNSHIP.to_owned(), 1, 1)]);
    // The township it is assigned to sees it; another township sees none.
    let mine = r
        .complaints
        .list_complaints(officer(OfficerRole::TownshipCaseworker, TOWNSHIP, list(TOWNSHIP, false)))
        .await
        .expect("township")
        .into_inner();
    assert_eq!(mine.complaints.len(), 2);
    let theirs = r
        .complaints
        .list_complaints(officer(OfficerRole::TownshipCaseworker, OTHER_TOWNSHIP, list(OTHER_TOWNSHIP, false)))
        .await
        .expect("other township")
        .into_inner();
    assert!(theirs.complaints.is_empty() && theirs.townships.is_empty(), "{theirs:?}");
    let e = r
        .complaints
        .list_complaints(officer(OfficerRole::TownshipCaseworker, OTHER_TOWNSHIP, list(TOWNSHIP, false)))
        .await
        .expect_err("outside");
    assert_eq!(e.code(), Code::PermissionDenied);

    // The steps are on record and cannot be rewritten.
    let db = r.env.db.client().await.expect("db");
    assert!(db.execute("UPDATE civil_affairs.complaint_step SET note = 'x'", &[]).await.is_err(), "append-only");
}
