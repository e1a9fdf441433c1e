//! Reviews and gradual exits (R-REV-1, R-BEN-4).

use dibao_platform::runtime::clock::Clock;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, Money, OfficerRole, YearMonth};
use dibao_proto::events::v1::event_envelope::Payload;
use dibao_tests::officer;
use tonic::Code;

use crate::helpers::*;

/// Submits and signs every step through county approval; returns the household id.
async fn enrolled(r: &mut Running, h: Household, income: Vec<IncomeItem>) -> String {
    let (app, hh) = submit(&mut r.client, h, income).await;
    through_notice(r, &app, &hh).await;
    r.clock.advance(time::Duration::days(8));
    step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "").await.expect("approve");
    let households = r
        .client
        .list_households(ListHouseholdsRequest { division: Some(DivisionCode { code: VILLAGE.into() }), page: None })
        .await
        .expect("list")
        .into_inner()
        .households;
    // The household whose application this was: the only one enrolled today.
    let today = r.clock.now().date();
    households
        .into_iter()
        .find(|h| {
            h.enrolled_on.is_some_and(|d| {
                (d.year, d.month, d.day) == (today.year(), today.month() as i32, i32::from(today.day()))
            })
        })
        .map(|h| h.household_id)
        .expect("enrolled")
}

fn project(fen: i64) -> IncomeItem {
    IncomeItem {
        kind: IncomeKind::PovertyProject as i32,
        label: "扶贫车间务工".into(),
        monthly: Some(Money { fen }),
        ..Default::default()
    }
}

async fn reviews_due(r: &mut Running, as_of: (i32, i32, i32)) -> Vec<ReviewDue> {
    r.client
        .list_reviews_due(ListReviewsDueRequest {
            township: Some(DivisionCode { code: "220581101".into() }),
            as_of: Some(dibao_proto::common::v1::Date { year: as_of.0, month: as_of.1, day: as_of.2 }),
            page: None,
        })
        .await
        .expect("reviews due")
        .into_inner()
        .reviews
}

async fn review(
    r: &mut Running,
    household_id: &str,
    income: Vec<IncomeItem>,
) -> Result<RecordReviewResponse, tonic::Status> {
    review_on(r, household_id, income, "").await
}

/// A review standing on the hub's report `report`.
async fn review_on(
    r: &mut Running,
    household_id: &str,
    income: Vec<IncomeItem>,
    report: &str,
) -> Result<RecordReviewResponse, tonic::Status> {
    r.client
        .record_review(officer(
            OfficerRole::TownshipReviewer,
            "220581101",
            RecordReviewRequest {
                household_id: household_id.into(),
                income,
                supporters: vec![],
                property_findings: vec![],
                remarks: "入户复核".into(),
                verification_report_id: report.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Applies `month` once it has come (a month in the future is refused):
/// the clock is moved to its first day if it is not there yet.
async fn apply_month(r: &mut Running, year: i32, month: i32) -> ApplyMonthResponse {
    use dibao_platform::runtime::clock::Clock;
    let first = time::Date::from_calendar_date(year, time::Month::try_from(month as u8).expect("month"), 1)
        .expect("date")
        .midnight()
        .assume_utc();
    let now = r.clock.now();
    if now < first {
        r.clock.advance(first - now);
    }
    r.client
        .apply_month(ApplyMonthRequest {
            county: Some(DivisionCode { code: COUNTY.into() }),
            month: Some(YearMonth { year, month }),
        })
        .await
        .expect("apply month")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_fall_due_raise_lower_or_stop_the_benefit_and_gradual_exits_step_down() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let id = enrolled(&mut r, household(), vec![wage(120_000)]).await;

    // Members able to work: due six months after enrolment on 2026-06-18 (R-REV-1).
    assert!(reviews_due(&mut r, (2026, 12, 17)).await.is_empty());
    let due = reviews_due(&mut r, (2026, 12, 31)).await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].household_id, id);
    assert_eq!(due[0].due_on, Some(dibao_proto::common::v1::Date { year: 2026, month: 12, day: 18 }));
    assert!(due[0].reason.contains("有劳动能力"), "{}", due[0].reason);
    assert_eq!(due[0].head.as_ref().map(|p| p.name.as_str()), Some("王建国"));

    // Only township officers sign a review.
    r.clock.advance(time::Duration::days(185));
    let e = r
        .client
        .record_review(officer(
            OfficerRole::VillageCommittee,
            VILLAGE,
            RecordReviewRequest { household_id: id.clone(), ..Default::default() },
        ))
        .await
        .expect_err("village signs");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // More wages lower the amount: (500.00 - 1600.00 / 4) x 2 + 50.00 + 50.00 = 300.00.
    let lowered = review(&mut r, &id, vec![wage(160_000)]).await.expect("review");
    assert_eq!(lowered.outcome, ReviewOutcome::Lowered as i32);
    assert_eq!(lowered.monthly_amount, Some(Money { fen: 30_000 }));
    assert_eq!(lowered.next_due_on, Some(dibao_proto::common::v1::Date { year: 2027, month: 6, day: 20 }));
    assert!(reviews_due(&mut r, (2026, 12, 31)).await.is_empty(), "reviewed, no longer due");

    // Project income lifts per-capita income to 600.00, above the standard
    // but below twice it: 18 months stepping down monthly from 300.00 (R-BEN-4).
    let gradual = review(&mut r, &id, vec![project(240_000)]).await.expect("review");
    assert_eq!(gradual.outcome, ReviewOutcome::GradualExit as i32);
    assert_eq!(gradual.monthly_amount, Some(Money { fen: 30_000 }));
    assert!(gradual.explanation.contains("继续享受低保18个月"), "{}", gradual.explanation);
    assert_eq!(apply_month(&mut r, 2026, 12).await, ApplyMonthResponse { stepped_down: 0, exited: 0 });
    // Month 2 pays 300.00 x 17 / 18 = 283.33.
    assert_eq!(apply_month(&mut r, 2027, 1).await, ApplyMonthResponse { stepped_down: 1, exited: 0 });
    assert_eq!(apply_month(&mut r, 2027, 1).await, ApplyMonthResponse { stepped_down: 0, exited: 0 }, "idempotent");
    // Month 18 pays 300.00 / 18 = 16.66; month 19 the household exits.
    assert_eq!(apply_month(&mut r, 2028, 5).await, ApplyMonthResponse { stepped_down: 1, exited: 0 });
    assert_eq!(apply_month(&mut r, 2028, 6).await, ApplyMonthResponse { stepped_down: 0, exited: 1 });
    let e = review(&mut r, &id, vec![]).await.expect_err("exited");
    assert_eq!(e.code(), Code::FailedPrecondition);

    let events = household_events(&r.env.broker, &r.topic);
    let mine: Vec<_> = events.iter().filter(|(k, _)| k == &id).map(|(_, e)| e).collect();
    let amounts: Vec<i64> = mine
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::HouseholdAmountChanged(c)) => c.monthly_amount.map(|m| m.fen),
            _ => None,
        })
        .collect();
    assert_eq!(amounts, [30_000, 28_333, 1_666], "one event per change, in order");
    assert!(matches!(
        mine.last().and_then(|e| e.payload.as_ref()),
        Some(Payload::HouseholdExited(x)) if x.reason == dibao_proto::events::v1::ExitReason::GradualExitEnded as i32
    ));

    // Income far above the standard without project income: the exit is
    // opened on the signed path; payment continues until county approval.
    let other = enrolled(&mut r, renumbered("19800505", 11), vec![wage(120_000)]).await;
    let stopped = review(&mut r, &other, vec![wage(900_000)]).await.expect("review");
    assert_eq!(stopped.outcome, ReviewOutcome::ExitStarted as i32);
    assert!(!stopped.exit_application_id.is_empty());
    assert!(stopped.explanation.contains("已启动退出程序"), "{}", stopped.explanation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_keeps_or_raises_the_amount_only_on_a_report_newer_than_the_last_review() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let id = enrolled(&mut r, household(), vec![wage(120_000)]).await;
    r.clock.advance(time::Duration::days(185));

    // The income declared at the door, unchanged or lower: no report, no decision (R-VER-5).
    let e = review(&mut r, &id, vec![wage(120_000)]).await.expect_err("kept without a report");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("须附上次复核") && e.message().contains("R-VER-5"), "{}", e.message());
    let e = review(&mut r, &id, vec![]).await.expect_err("raised without a report");
    assert!(e.message().contains("须附上次复核"), "{}", e.message());

    // On a report made since the enrolment: kept.
    let report = verified(&mut r, &id).await.report_id;
    let kept = review_on(&mut r, &id, vec![wage(120_000)], &report).await.expect("kept on a report");
    assert_eq!(kept.outcome, ReviewOutcome::Unchanged as i32);
    // The same report at the next review is older than that review.
    r.clock.advance(time::Duration::days(30));
    let e = review_on(&mut r, &id, vec![wage(120_000)], &report).await.expect_err("report before the last review");
    assert!(e.message().contains("不晚于上次复核"), "{}", e.message());
    // A fresh one.
    let fresh = verified(&mut r, &id).await.report_id;
    let kept = review_on(&mut r, &id, vec![wage(120_000)], &fresh).await.expect("kept on a fresh report");
    assert_eq!(kept.outcome, ReviewOutcome::Unchanged as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_on_a_report_takes_what_the_departments_certify_since() {
    use dibao_proto::department::v1::{Department, Item};
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let id = enrolled(&mut r, household(), vec![wage(120_000)]).await;
    r.clock.advance(time::Duration::days(185));

    // Since the enrolment the grandfather was certified grade-two disabled
    // and spent 2,400.00 yuan of his own on treatment.
    let grandfather = crate::helpers::id("19500303", "003");
    let records = [
        health_record(
            (Department::DisabilityFederation, Item::DisabilityCertificate),
            &grandfather,
            &format!("{}42", grandfather.value),
            (0, 2),
            &[("type", "肢体"), ("grade", "二级"), ("valid_until", "2036-08-31"), ("issued_on", "2026-09-01")],
            time::macros::date!(2026 - 12 - 01),
        ),
        health_record(
            (Department::MedicalInsurance, Item::MedicalSpending),
            &grandfather,
            "ZF-R1",
            (240_000, 6),
            &[("period_from", "2025-12-01"), ("period_to", "2026-11-30"), ("total_cost_fen", "800000")],
            time::macros::date!(2026 - 12 - 01),
        ),
    ];
    let departments = &r.checking.as_ref().expect("hub").departments;
    dibao_synthetic::simulator::load(&departments.sim_pool, &records).await.expect("records");

    let members = signatories(&household_of(&mut r, &id).await);
    let items = [&REQUIRED_ITEMS[..], &[Item::DisabilityCertificate, Item::MedicalSpending]].concat();
    let report = report_on(&mut r, &id, &members, &items).await;
    assert!(report.complete, "{}", report.summary);
    let reviewed = review_on(&mut r, &id, vec![wage(120_000)], &report.report_id).await.expect("reviewed");
    // Severely disabled now (a larger addition than the elderly one) and
    // 200.00 yuan a month deducted: raised.
    assert_eq!(reviewed.outcome, ReviewOutcome::Raised as i32, "{}", reviewed.explanation);
    let text = &reviewed.explanation;
    assert!(text.contains("王老汉未申报残疾，残联记录为2级肢体残疾"), "{text}");
    assert!(text.contains("按月200.00元扣减") && text.contains("王老汉属于重度残疾人"), "{text}");
    let held = household_of(&mut r, &id).await;
    assert_eq!(held.members[2].disability_grade, 2);
}
