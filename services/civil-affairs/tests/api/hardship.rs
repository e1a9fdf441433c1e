//! Special hardship (特困供养, R-ELIG-3, R-BEN-5): supported at the county's
//! basic-living and care standards, not topped up as dibao; refused, with
//! the reason, where an able supporter exists. And a cover that breaks
//! R-BEN-2 refused when it is typed, not at approval.

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{Money, OfficerRole, Relation};
use dibao_proto::events::v1::{BenefitCategory, Programme, event_envelope::Payload};
use dibao_tests::officer;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

/// Basic living 650.00 a person a month; care 100.00, 300.00 or 600.00 by self-care ability.
fn with_hardship_standards(mut p: CountyPolicy) -> CountyPolicy {
    p.special_hardship = Some(SpecialHardshipStandards {
        basic_living_monthly: Some(Money { fen: 65_000 }),
        care_self_caring_monthly: Some(Money { fen: 10_000 }),
        care_partly_dependent_monthly: Some(Money { fen: 30_000 }),
        care_fully_dependent_monthly: Some(Money { fen: 60_000 }),
    });
    p
}

/// One elderly person living alone, no work ability, as special hardship.
fn elder_alone(birth: &str, seq: &str, name: &str, self_care: SelfCare) -> Household {
    Household {
        village: Some(dibao_proto::common::v1::DivisionCode { code: VILLAGE.into() }),
        programme: Programme::SpecialHardship as i32,
        members: vec![Member {
            self_care: self_care as i32,
            ..member(birth, seq, name, Relation::Head, WorkAbility::None, true)
        }],
        ..Default::default()
    }
}

/// The central basic pension: not counted (R-INC-2), so not a source of income.
fn pension() -> IncomeItem {
    IncomeItem {
        kind: IncomeKind::CentralBasicPension as i32,
        label: "城乡居民基础养老金".into(),
        monthly: Some(Money { fen: 10_300 }),
        ..Default::default()
    }
}

fn child(name: &str, per_capita_fen: i64) -> Supporter {
    Supporter {
        name: name.into(),
        relation: "女儿".into(),
        household_per_capita: Some(Money { fen: per_capita_fen }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_hardship_is_supported_at_its_own_standards_and_refused_where_a_supporter_can_support() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, with_hardship_standards(policy(50_000, 2026, 4))).await;

    // Self-care ability decides the care standard: asked at submission.
    let e = r
        .client
        .submit_application(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            SubmitApplicationRequest {
                household: Some(elder_alone("19500303", "013", "张桂兰", SelfCare::Unspecified)),
                income: vec![],
                supporters: vec![],
            },
        ))
        .await
        .expect_err("self-care unknown");
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields = e.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "household.members[0].self_care", "{fields:?}");

    // A 76-year-old living alone, partly dependent, her daughter's household
    // below twice the standard (unable to support, R-INC-4).
    let (app, hh) = submit_with_supporters(
        &mut r.client,
        elder_alone("19500303", "013", "张桂兰", SelfCare::Partial),
        vec![pension()],
        vec![child("李春梅", 60_000)],
    )
    .await;
    through_notice(&mut r, &app, &hh).await;
    r.clock.advance(time::Duration::days(8));
    let approved =
        step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "").await.expect("approve");
    // 650.00 basic + 300.00 care: not (500.00 - 0) as a dibao top-up.
    assert_eq!(approved.monthly_amount, Some(Money { fen: 95_000 }), "{}", approved.explanation);
    for said in ["76岁老年人", "不按低保差额补助", "部分丧失生活自理能力，照料护理标准300.00元，合计950.00元"]
    {
        assert!(approved.explanation.contains(said), "{said}: {}", approved.explanation);
    }
    let events = household_events(&r.env.broker, &r.topic);
    let enrolled = events
        .iter()
        .find_map(|(_, e)| match &e.payload {
            Some(Payload::HouseholdEnrolled(ev)) if ev.household_id == hh => Some(ev.clone()),
            _ => None,
        })
        .expect("enrolment published");
    assert_eq!(enrolled.programme, Programme::SpecialHardship as i32);
    assert_eq!(enrolled.category, BenefitCategory::A as i32);
    assert_eq!(enrolled.monthly_amount, Some(Money { fen: 95_000 }));
    let certificate = r
        .client
        .get_certificate(GetCertificateRequest { household_id: hh.clone() })
        .await
        .expect("certificate")
        .into_inner()
        .current
        .expect("issued at enrolment");
    assert_eq!(certificate.number, "220581-TK-2026-000001", "特困供养证");

    // An 81-year-old whose daughter's household lives at three times the
    // standard has a supporter able to support her: refused at approval,
    // with the reason in the officer's words.
    let (app, hh) = submit_with_supporters(
        &mut r.client,
        elder_alone("19450505", "024", "赵淑芬", SelfCare::Full),
        vec![],
        vec![child("赵红", 150_000)],
    )
    .await;
    through_notice(&mut r, &app, &hh).await;
    r.clock.advance(time::Duration::days(8));
    let e = step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "")
        .await
        .expect_err("an able supporter");
    assert_eq!(e.code(), Code::FailedPrecondition);
    for said in ["赵淑芬不符合特困人员条件", "有具备赡养能力的法定赡养人"] {
        assert!(e.message().contains(said), "{said}: {}", e.message());
    }
    assert_eq!(household_of(&mut r, &hh).await.status, HouseholdStatus::Applying as i32, "nothing enrolled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_b_cover_of_one_in_four_is_refused_at_submission() {
    let mut r = start().await;
    let mut h = household();
    h.category = BenefitCategory::B as i32;
    for (i, m) in h.members.iter_mut().enumerate() {
        m.covered = i == 2;
    }
    let e = r
        .client
        .submit_application(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            SubmitApplicationRequest { household: Some(h), income: vec![wage(120_000)], supporters: vec![] },
        ))
        .await
        .expect_err("one of four covered");
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields = e.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "household.members", "{fields:?}");
    assert!(fields[0].description.contains("至少保障2人，本户4人，只保障了1人"), "{fields:?}");
}
