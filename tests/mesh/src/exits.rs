//! A dibao household's exit signed through (StartExit, then home visit,
//! township review, county approval), as the sync tests need it.

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::OfficerRole;
use dibao_tests::{OfficerChannel, officer};

/// Exits `household_id` (moved out of the county), every step signed by the
/// officers of `township`.
pub async fn exit_household(civil: &mut CivilAffairsServiceClient<OfficerChannel>, household_id: &str, township: &str) {
    let exit = civil
        .start_exit(officer(
            OfficerRole::TownshipCaseworker,
            township,
            ca::StartExitRequest {
                household_id: household_id.to_owned(),
                reason: dibao_proto::events::v1::ExitReason::Moved as i32,
                remarks: "迁出本县".into(),
            },
        ))
        .await
        .expect("start exit")
        .into_inner()
        .application_id;
    sign_exit(civil, &exit, township).await;
}

/// Signs an opened exit (`exit`, an application id) through home visit,
/// township review and county approval, by the officers of `township`.
pub async fn sign_exit(civil: &mut CivilAffairsServiceClient<OfficerChannel>, exit: &str, township: &str) {
    for (step, role) in [
        (ca::ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker),
        (ca::ProcessStep::TownshipReview, OfficerRole::TownshipReviewer),
        (ca::ProcessStep::CountyApproval, OfficerRole::CountyApprover),
    ] {
        civil
            .sign_step(officer(
                role,
                township,
                ca::SignStepRequest {
                    application_id: exit.to_owned(),
                    step: step as i32,
                    approve: true,
                    ..Default::default()
                },
            ))
            .await
            .expect("exit step");
    }
}
