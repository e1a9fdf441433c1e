//! The household's certificate (低保证; R-PROC-1; issue 23, item 2): an
//! imported household keeps its paper one until its first change here; each
//! change of what it states issues a new number, the old one kept as
//! superseded; other townships do not read it.

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::OfficerRole;
use tonic::Code;

use crate::helpers::*;
use dibao_tests::officer;

async fn certificate(r: &mut Running, household_id: &str) -> GetCertificateResponse {
    r.client
        .get_certificate(GetCertificateRequest { household_id: household_id.into() })
        .await
        .expect("certificate")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_of_what_the_certificate_states_issues_a_new_one() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let imported = r
        .client
        .import_roster(tokio_stream::iter(vec![roster_row(1, "HH-001", renumbered("19600101", 61), 30_000)]))
        .await
        .expect("import")
        .into_inner();
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
    let household = r
        .client
        .list_households(ListHouseholdsRequest {
            division: Some(dibao_proto::common::v1::DivisionCode { code: COUNTY.into() }),
            page: None,
        })
        .await
        .expect("list")
        .into_inner()
        .households[0]
        .household_id
        .clone();
    let none = certificate(&mut r, &household).await;
    assert!(none.current.is_none() && none.earlier.is_empty(), "imported: its paper certificate stands: {none:?}");

    // A new standard changes its amount: a certificate under the county's first number.
    save_policy(&mut r.client, policy(55_000, 2026, 6)).await;
    let first = certificate(&mut r, &household).await.current.expect("issued on the change");
    assert_eq!(first.number, "220581-DB-2026-000001");
    assert!(first.reason.contains("低保标准调整"), "{first:?}");
    // Another: the next number; the first superseded, kept.
    save_policy(&mut r.client, policy(60_000, 2026, 6)).await;
    let now = certificate(&mut r, &household).await;
    let second = now.current.expect("current");
    assert_eq!(second.number, "220581-DB-2026-000002");
    assert_ne!(second.monthly_amount, first.monthly_amount);
    assert_eq!(now.earlier.len(), 1);
    assert_eq!(now.earlier[0].number, first.number);
    assert!(now.earlier[0].superseded_on.is_some());
    assert_eq!(now.printed[0], "低保证");
    assert!(now.printed.iter().any(|l| l == "证号：220581-DB-2026-000002"), "{:?}", now.printed);
    // The place and the issuer by name (R-ROSTER-3).
    assert!(now.printed.iter().any(|l| l == "所在村（社区）：梅河口市红梅镇联盟村"), "{:?}", now.printed);
    assert!(now.printed.iter().any(|l| l == "发证机关：梅河口市民政局"), "{:?}", now.printed);
    // The same standard saved again changes nothing it states: no new number.
    save_policy(&mut r.client, policy(60_000, 2026, 6)).await;
    assert_eq!(certificate(&mut r, &household).await.current.map(|c| c.number), Some(second.number.clone()));

    // Another township's caseworker does not find the household.
    let e = r
        .client
        .get_certificate(officer(
            OfficerRole::TownshipCaseworker,
            "220581102",
            GetCertificateRequest { household_id: household.clone() },
        ))
        .await
        .expect_err("another township");
    assert_eq!(e.code(), Code::NotFound);
}
