//! A household's members change through the signed process (issue 23,
//! item 6; R-ROSTER-4, R-SYNC-1): a newborn joins, recorded, published and
//! the household assessed again from the next month; a member of another
//! household, the dead, a missing reason, another township refused; and the roster
//! file cannot do it instead — nor re-enrol a household that exited.

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, OfficerRole, Relation};
use dibao_proto::events::v1::event_envelope::Payload;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;
use dibao_tests::officer;

fn changed(household_id: &str, members: Vec<Member>, reason: &str) -> tonic::Request<ChangeMembersRequest> {
    officer(
        OfficerRole::TownshipCaseworker,
        "220581101",
        ChangeMembersRequest { household_id: household_id.into(), members, reason: reason.into() },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_change_through_the_signed_process_and_the_roster_file_adds_only_new_households() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let rows = vec![
        roster_row(1, "HH-001", renumbered("19600101", 61), 30_000),
        roster_row(2, "HH-002", renumbered("19610101", 61), 30_000),
    ];
    let imported = r.client.import_roster(tokio_stream::iter(rows.clone())).await.expect("import").into_inner();
    assert_eq!(imported.households_applied, 2, "{:?}", imported.errors);
    let listed = r
        .client
        .list_households(ListHouseholdsRequest { division: Some(DivisionCode { code: COUNTY.into() }), page: None })
        .await
        .expect("list")
        .into_inner()
        .households;
    let id_of =
        |number: &str| listed.iter().find(|h| h.household_number == number).expect("imported").household_id.clone();
    let (first, second) = (id_of("HH-001"), id_of("HH-002"));
    let before = household_of(&mut r, &first).await;

    // A newborn joins the first household.
    let mut members = before.members.clone();
    members.push(member("20260501", "071", "王小宝", Relation::Child, WorkAbility::None, true));
    let done =
        r.client.change_members(changed(&first, members.clone(), "新生儿落户")).await.expect("changed").into_inner();
    assert_eq!(done.joined.len(), 1);
    assert!(done.left.is_empty());
    assert!(!done.joined[0].contains("20260501"), "masked: {}", done.joined[0]);
    let after = household_of(&mut r, &first).await;
    assert_eq!(after.members.len(), 5);
    assert_eq!(after.version, before.version + 1 + i64::from(done.monthly_amount != before.monthly_amount));

    // Refused, naming the field: a member of another household, no reason,
    // nothing changed; another township's caseworker does not find it.
    let mut clash = members.clone();
    clash.push(household_of(&mut r, &second).await.members[3].clone());
    let e = r.client.change_members(changed(&first, clash, "迁入")).await.expect_err("in another household");
    assert_eq!(
        e.get_details_bad_request().expect("details").field_violations[0].field,
        "members[5].person.identity_number"
    );
    let e = r.client.change_members(changed(&first, members.clone(), " ")).await.expect_err("no reason");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "reason");
    let e = r.client.change_members(changed(&first, members.clone(), "再次登记")).await.expect_err("nothing changed");
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = r
        .client
        .change_members(officer(
            OfficerRole::TownshipCaseworker,
            "220581102",
            ChangeMembersRequest { household_id: first.clone(), members: members.clone(), reason: "迁入".into() },
        ))
        .await
        .expect_err("another township");
    assert_eq!(e.code(), Code::NotFound);

    // The dead are not listed back among the living.
    r.client
        .record_death(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            RecordDeathRequest {
                identity_number: Some(id("19600101", "061")),
                died_on: Some(dibao_proto::common::v1::Date { year: 2026, month: 6, day: 1 }),
                source: "公安死亡登记".into(),
            },
        ))
        .await
        .expect("death");
    let mut relisted = members.clone();
    relisted.pop();
    relisted.push(member("20260502", "072", "王二宝", Relation::Child, WorkAbility::None, true));
    let e = r.client.change_members(changed(&first, relisted, "新生儿落户")).await.expect_err("the dead listed");
    assert_eq!(
        e.get_details_bad_request().expect("details").field_violations[0].field,
        "members[0].person.identity_number"
    );

    // Signed and kept; published as the household's next version.
    let kept: Vec<(Vec<String>, String, String)> = r
        .env
        .db
        .client()
        .await
        .expect("db")
        .query("SELECT joined, reason, officer_id FROM civil_affairs.member_change", &[])
        .await
        .expect("changes")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].1.as_str(), kept[0].2.as_str()), ("新生儿落户", "township_caseworker-220581101"));
    let composition: Vec<usize> = household_events(&r.env.broker, &r.topic)
        .into_iter()
        .filter(|(key, _)| *key == first)
        .filter_map(|(_, e)| match e.payload {
            Some(Payload::HouseholdCompositionChanged(c)) => Some(c.members.len()),
            _ => None,
        })
        .collect();
    assert_eq!(composition, [5]);

    // The roster file cannot change a household on the roster, nor bring
    // back one that exited: each row refused, naming what to use instead.
    dibao_test_mesh::exits::exit_household(&mut r.client, &second, "220581101").await;
    let again = r.client.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert_eq!((again.households_applied, again.households_unchanged), (0, 0), "{again:?}");
    let messages: Vec<(i64, &str, &str)> =
        again.errors.iter().map(|e| (e.row, e.field.as_str(), e.message.as_str())).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!((messages[0].0, messages[0].1), (1, "household.household_id"));
    assert!(messages[0].2.contains("家庭成员变更"), "{}", messages[0].2);
    assert_eq!((messages[1].0, messages[1].1), (2, "household.household_id"));
    assert!(messages[1].2.contains("提交低保申请"), "{}", messages[1].2);
    assert_eq!(household_of(&mut r, &second).await.status, HouseholdStatus::Exited as i32);
}
