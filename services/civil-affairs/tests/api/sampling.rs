//! Audit samples: reproducible, full villages and new enrolments covered (R-AUD-1).

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, OfficerRole};
use dibao_tests::officer;
use tonic_types::StatusExt;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_are_reproducible_and_cover_full_villages_and_new_enrolments() {
    let mut r = start().await;
    // Ten enrolled households: seven in village 201, three in village 202.
    let rows: Vec<ImportRosterRequest> = (0..10)
        .map(|i| {
            let mut h = renumbered(&format!("{}0101", 1960 + i), 61);
            if i >= 7 {
                h.village = Some(DivisionCode { code: "220581101202".into() });
            }
            roster_row(i64::from(i) + 1, &format!("HH-{i:03}"), h, 30_000)
        })
        .collect();
    let imported = r.client.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert_eq!(imported.households_applied, 10, "{:?}", imported.errors);

    let request = |percent: i32| {
        officer(
            OfficerRole::CountyApprover,
            COUNTY,
            DrawSampleRequest {
                county: Some(DivisionCode { code: COUNTY.into() }),
                percent,
                full_villages: vec![DivisionCode { code: "220581101202".into() }],
            },
        )
    };
    // The first sample of the county: every household is new since no sample.
    let a = r.client.draw_sample(request(30)).await.expect("sample").into_inner();
    assert_eq!((a.population, a.in_full_villages), (10, 3), "{a:?}");
    assert_ne!(a.seed, 0, "the service draws the seed");
    // The next sample: new enrolments are those since the previous one (none).
    let b = r.client.draw_sample(request(30)).await.expect("sample").into_inner();
    // Village 202 in full (3), and 30 % of the other seven rounded up (3).
    assert_eq!((b.population, b.in_full_villages, b.new_enrolments, b.drawn_at_random), (10, 3, 0, 3));
    assert_eq!(b.household_ids.len(), 6);
    assert_ne!(a.sample_id, b.sample_id, "each draw is recorded");
    assert_ne!(a.seed, b.seed, "each draw has a seed of its own, the caller chooses none");

    // The recorded seed draws the same sample again, from the recorded population.
    let again = r
        .client
        .reproduce_sample(officer(
            OfficerRole::ProvinceAuditor,
            "220000",
            ReproduceSampleRequest { sample_id: b.sample_id.clone() },
        ))
        .await
        .expect("reproduce")
        .into_inner();
    let drawn = again.sample.expect("sample");
    assert_eq!(drawn.household_ids, b.household_ids, "the recorded seed redraws the same households");
    assert_eq!(again.recorded_household_ids, b.household_ids);
    assert_eq!(drawn.seed, b.seed);

    let e = r.client.draw_sample(request(29)).await.expect_err("below 30 %");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "percent");
    // Another county's officer may not draw this county's sample.
    let e = r
        .client
        .draw_sample(officer(
            OfficerRole::CountyApprover,
            "220582",
            DrawSampleRequest {
                county: Some(DivisionCode { code: COUNTY.into() }),
                percent: 30,
                full_villages: vec![],
            },
        ))
        .await
        .expect_err("another county");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
}
