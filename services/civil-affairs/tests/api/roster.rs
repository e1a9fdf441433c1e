//! The roster read back and brought in: lists page through a division, the export is one snapshot, imports by stream and by file (R-ROSTER-1).

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, OfficerRole};
use dibao_proto::events::v1::event_envelope::Payload;
use tonic_types::StatusExt;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_through_a_division_and_export_is_one_snapshot() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    // Two households in village 201 of township 101, one in township 102.
    let mut second = household();
    for (i, m) in second.members.iter_mut().enumerate() {
        m.person.as_mut().expect("person").identity_number = Some(id("19800101", &format!("{:03}", 11 + i)));
    }
    let mut third = household();
    third.village = Some(DivisionCode { code: "220581102201".into() });
    for (i, m) in third.members.iter_mut().enumerate() {
        m.person.as_mut().expect("person").identity_number = Some(id("19810101", &format!("{:03}", 21 + i)));
    }
    for h in [household(), second, third] {
        submit(&mut r.client, h, vec![wage(120_000)]).await;
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = r
            .client
            .list_households(ListHouseholdsRequest {
                division: Some(DivisionCode { code: "220581101".into() }),
                page: Some(dibao_proto::common::v1::PageRequest { page_size: 1, page_token: token.clone() }),
            })
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.households.into_iter().map(|h| h.household_id));
        token = page.page.expect("page").next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "township 101 has two households, one per page");
    assert_ne!(seen[0], seen[1]);

    let mut stream = r
        .client
        .export_roster(ExportRosterRequest { division: Some(DivisionCode { code: COUNTY.into() }) })
        .await
        .expect("export")
        .into_inner();
    let mut exported = Vec::new();
    while let Some(m) = stream.message().await.expect("message") {
        exported.push(m);
    }
    assert_eq!(exported.len(), 3);
    assert!(exported.iter().all(|m| m.snapshot_position == exported[0].snapshot_position));
    assert!(exported.iter().all(|m| m.household.as_ref().is_some_and(|h| h.members.len() == 4)));

    let e = r
        .client
        .list_households(ListHouseholdsRequest { division: Some(DivisionCode { code: "2205".into() }), page: None })
        .await
        .expect_err("bad division");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "division");

    // R-ROSTER-3: a code of the right shape that is no county (GB/T 2260),
    // or no township of the province's loaded table, is refused by field.
    let e = r
        .client
        .list_households(ListHouseholdsRequest { division: Some(DivisionCode { code: "229999".into() }), page: None })
        .await
        .expect_err("no such county");
    let v = &e.get_details_bad_request().expect("details").field_violations[0];
    assert_eq!(v.field, "division");
    assert!(v.description.contains("229999") && v.description.contains("GB/T 2260"), "{v:?}");
    let mut nowhere = household();
    nowhere.village = Some(DivisionCode { code: "220581199201".into() });
    let e = r
        .client
        .submit_application(dibao_tests::officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            SubmitApplicationRequest { household: Some(nowhere), ..Default::default() },
        ))
        .await
        .expect_err("no such village");
    let v = &e.get_details_bad_request().unwrap_or_else(|| panic!("{e:?}")).field_violations[0];
    assert!(v.field.ends_with("village") && v.description.contains("220581199201"), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_import_applies_whole_households_reports_rows_and_is_idempotent() {
    let mut r = start().await;
    let mut bad_id = renumbered("19850101", 31);
    bad_id.members[2].person.as_mut().expect("person").identity_number =
        Some(IdentityNumber { value: "2205811985".into() });
    // One person covered apart as clergy, two years on the site where three are needed.
    let mut single = renumbered("19860101", 41);
    single.members.truncate(1);
    single.single_person_reason = SinglePersonReason::Clergy as i32;
    single.clergy_years_in_site = 2;
    let clash = household(); // the same people as row 1
    let rows = vec![
        roster_row(1, "HH-001", household(), 50_000),
        roster_row(2, "HH-002", bad_id, 40_000),
        roster_row(3, "HH-003", renumbered("19870101", 51), 30_000),
        roster_row(4, "HH-004", single, 20_000),
        roster_row(5, "HH-005", clash, 10_000),
    ];
    let first = r.client.import_roster(tokio_stream::iter(rows.clone())).await.expect("import").into_inner();
    assert_eq!((first.households_applied, first.households_unchanged), (2, 0));
    let errors: Vec<(i64, &str)> = first.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(
        errors,
        vec![
            (2, "household.members[2].person.identity_number"),
            (4, "household.single_person_reason"),
            (5, "household.members[0].person.identity_number"),
        ]
    );
    assert!(first.errors[0].message.contains("18位"), "{}", first.errors[0].message);

    // The same file again changes nothing and reports the same rows.
    let again = r.client.import_roster(tokio_stream::iter(rows.clone())).await.expect("import").into_inner();
    assert_eq!((again.households_applied, again.households_unchanged), (0, 2));
    assert_eq!(again.errors, first.errors);

    // A household on the roster is not rewritten by a file (issue 23, item
    // 6): another amount is refused, naming the process to use instead.
    let mut changed = rows;
    changed[0] = roster_row(1, "HH-001", household(), 55_000);
    let third = r.client.import_roster(tokio_stream::iter(changed)).await.expect("import").into_inner();
    assert_eq!((third.households_applied, third.households_unchanged), (0, 1));
    let refused = third.errors.iter().find(|e| e.row == 1).expect("row 1 refused");
    assert_eq!(refused.field, "household.household_id");
    assert!(refused.message.contains("已在册") && refused.message.contains("复核"), "{}", refused.message);

    let events = household_events(&r.env.broker, &r.topic);
    let kinds: Vec<&str> = events
        .iter()
        .map(|(_, e)| match &e.payload {
            Some(Payload::HouseholdEnrolled(_)) => "enrolled",
            Some(Payload::HouseholdAmountChanged(_)) => "amount",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "enrolled").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "amount").count(), 0, "{kinds:?}");
    assert_eq!(kinds.len(), 2, "nothing else was published: {kinds:?}");
    // Each import is recorded with the officer who ran it.
    let imports = r
        .env
        .db
        .client()
        .await
        .expect("db")
        .query(
            "SELECT officer_id, applied, unchanged, refused FROM civil_affairs.roster_import ORDER BY started_at",
            &[],
        )
        .await
        .expect("imports");
    let recorded: Vec<(String, i64, i64, i64)> =
        imports.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    let office = "county_approver-220581".to_owned();
    assert_eq!(recorded, [(office.clone(), 2, 0, 3), (office.clone(), 0, 2, 3), (office, 0, 1, 4)]);
}
