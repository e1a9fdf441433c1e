//! Separation of duties (001): the officer who signed an application's
//! township review does not approve it for the county; no officer takes in,
//! signs for or reviews a household they belong to. Each refused with the
//! reason, the attempt recorded with who made it.

use dibao_platform::trust::officer::Claims;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::OfficerRole;
use dibao_tests::{by, claims};
use tonic::Code;

use crate::helpers::*;

/// An officer of `roles` serving `division`, with their own identity number.
fn officer(id_: &str, roles: &[OfficerRole], division: &str, identity: Option<&str>) -> Claims {
    Claims {
        officer_id: id_.into(),
        roles: roles.to_vec(),
        identity_number: identity.map(|i| dibao_proto::types::IdentityNumber::parse(i).expect("identity")),
        ..claims(roles[0], division)
    }
}

async fn refused_attempts(r: &Running) -> Vec<(String, String)> {
    let db = r.env.db.client().await.expect("db");
    db.query("SELECT officer_id, reason FROM civil_affairs.refused_attempt ORDER BY id", &[])
        .await
        .expect("refused attempts")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_officer_does_not_review_and_approve_the_same_application() {
    let mut r = start_verifying().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;
    // One officer holding both roles, at the county.
    let both = officer("wu-mingliang", &[OfficerRole::TownshipReviewer, OfficerRole::CountyApprover], COUNTY, None);
    let report = verified(&mut r, &hh).await.report_id;
    step(&mut r.client, &app, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("visit");
    step(&mut r.client, &app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "").await.expect("village");
    step(&mut r.client, &app, ProcessStep::Verification, OfficerRole::VerificationOfficer, &report)
        .await
        .expect("verification");
    let sign = |step: ProcessStep, who: &Claims| {
        by(
            who.clone(),
            SignStepRequest { application_id: app.clone(), step: step as i32, approve: true, ..Default::default() },
        )
    };
    r.client.sign_step(sign(ProcessStep::TownshipReview, &both)).await.expect("township review");
    step(&mut r.client, &app, ProcessStep::PublicNotice, OfficerRole::TownshipCaseworker, "").await.expect("notice");
    r.clock.advance(time::Duration::days(8));
    let e = r.client.sign_step(sign(ProcessStep::CountyApproval, &both)).await.expect_err("the same officer");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("不能由同一人签署"), "{}", e.message());
    assert_eq!(refused_attempts(&r).await, [("wu-mingliang".to_owned(), e.message().to_owned())]);
    // Another approver signs.
    step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "").await.expect("approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_does_not_act_on_their_own_household() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let h = household();
    let member = h.members[1].person.as_ref().and_then(|p| p.identity_number.clone()).expect("member").value;
    // The caseworker is the household's spouse.
    let caseworker = officer("li-xiuying", &[OfficerRole::TownshipCaseworker], "220581101", Some(&member));
    let e = r
        .client
        .submit_application(by(
            caseworker.clone(),
            SubmitApplicationRequest { household: Some(h.clone()), income: vec![wage(120_000)], supporters: vec![] },
        ))
        .await
        .expect_err("own household");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("应当回避"), "{}", e.message());
    // Another caseworker takes it in; the spouse may not sign its steps either.
    let (app, _) = submit(&mut r.client, h, vec![wage(120_000)]).await;
    let e = r
        .client
        .sign_step(by(
            caseworker,
            SignStepRequest {
                application_id: app.clone(),
                step: ProcessStep::HomeVisit as i32,
                approve: true,
                ..Default::default()
            },
        ))
        .await
        .expect_err("own household");
    assert_eq!(e.code(), Code::PermissionDenied);
    let attempts = refused_attempts(&r).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts.iter().all(|(who, why)| who == "li-xiuying" && why.contains("应当回避")), "{attempts:?}");
    // Nothing of the refused submission stays: one application, one household.
    let db = r.env.db.client().await.expect("db");
    let n: i64 = db.query_one("SELECT count(*) FROM civil_affairs.application", &[]).await.expect("count").get(0);
    assert_eq!(n, 1);
    // The refusals are on record and cannot be rewritten.
    assert!(db.execute("DELETE FROM civil_affairs.refused_attempt", &[]).await.is_err(), "append-only");
    assert!(
        db.execute("UPDATE civil_affairs.application_step SET officer_id = 'x'", &[]).await.is_err(),
        "append-only"
    );
}
