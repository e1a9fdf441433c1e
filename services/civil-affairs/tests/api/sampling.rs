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

    let request = |seed: u64, percent: i32| DrawSampleRequest {
        county: Some(DivisionCode { code: COUNTY.into() }),
        percent,
        full_villages: vec![DivisionCode { code: "220581101202".into() }],
        seed,
        new_since: Some(dibao_proto::common::v1::Date { year: 2026, month: 1, day: 1 }),
        signature: officer(OfficerRole::CountyApprover, COUNTY),
    };
    let a = r.client.draw_sample(request(42, 30)).await.expect("sample").into_inner();
    // Village 202 in full (3), and 30 % of the other seven rounded up (3).
    assert_eq!((a.population, a.in_full_villages, a.new_enrolments, a.drawn_at_random), (10, 3, 0, 3));
    assert_eq!(a.household_ids.len(), 6);
    let b = r.client.draw_sample(request(42, 30)).await.expect("sample").into_inner();
    assert_eq!(a.household_ids, b.household_ids, "the recorded seed draws the same households");
    assert_ne!(a.sample_id, b.sample_id, "each draw is recorded");

    let chosen = r.client.draw_sample(request(0, 30)).await.expect("sample").into_inner();
    assert_ne!(chosen.seed, 0, "the service picks and returns a seed");

    let e = r.client.draw_sample(request(42, 29)).await.expect_err("below 30 %");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "percent");
}
