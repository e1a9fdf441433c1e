//! The roster read back and brought in: lists page through a division, the export is one snapshot, imports by stream and by file (R-ROSTER-1).

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber};
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
    third.village = Some(DivisionCode { code: "220581102301".into() });
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_import_applies_whole_households_reports_rows_and_is_idempotent() {
    let mut r = start().await;
    let mut bad_id = renumbered("19850101", 31);
    bad_id.members[2].person.as_mut().expect("person").identity_number =
        Some(IdentityNumber { value: "2205811985".into() });
    let mut single = renumbered("19860101", 41);
    single.members.truncate(1);
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

    // A corrected amount updates that household only.
    let mut changed = rows;
    changed[0] = roster_row(1, "HH-001", household(), 55_000);
    let third = r.client.import_roster(tokio_stream::iter(changed)).await.expect("import").into_inner();
    assert_eq!((third.households_applied, third.households_unchanged), (1, 1));

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
    assert_eq!(kinds.iter().filter(|k| **k == "amount").count(), 1, "{kinds:?}");
    assert_eq!(kinds.len(), 3, "nothing else was published: {kinds:?}");
}

/// A roster file line for member `m` of a household.
fn roster_line(key: &str, village: &str, m: &Member, relation: &str, amount: &str) -> String {
    let p = m.person.as_ref().expect("person");
    let id = &p.identity_number.as_ref().expect("id").value;
    let covered = if m.covered { "是" } else { "否" };
    format!("{key},{village},{},{id},{relation},低保,C类,{amount},2025-03-01,,否,部分,{covered}\n", p.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_files_import_through_the_command_and_errors_name_line_and_column() {
    let mut r = start().await;
    let good = household();
    let relations = ["户主", "配偶", "父母", "子女"];
    let mut csv = String::from("\u{feff}");
    csv.push_str(&dibao_civil_affairs::roster_file::COLUMNS[..13].join(","));
    csv.push('\n');
    for (m, rel) in good.members.iter().zip(relations) {
        csv.push_str(&roster_line("F-001", VILLAGE, m, rel, "565.00"));
    }
    // Line 6 onwards: a second household whose spouse's identity number has a wrong check character.
    let mut bad = renumbered("19800505", 21);
    let spouse = bad.members[1].person.as_mut().expect("person").identity_number.as_mut().expect("id");
    let last = if spouse.value.ends_with('0') { '1' } else { '0' };
    spouse.value.replace_range(17.., &last.to_string());
    for (m, rel) in bad.members.iter().zip(relations) {
        csv.push_str(&roster_line("F-002", VILLAGE, m, rel, "300"));
    }
    let dir = r.env.certs.clone();
    let file = dir.join("花名册.csv");
    std::fs::write(&file, &csv).expect("write csv");

    let run = |file: std::path::PathBuf| {
        let dir = dir.clone();
        let server = r.addr.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_roster-import"))
                .args(["--server", &server, "--ca"])
                .arg(dir.join("ca.pem"))
                .arg("--cert")
                .arg(dir.join("gateway.pem"))
                .arg("--key")
                .arg(dir.join("gateway.key"))
                .arg(file)
                .output()
                .await
                .expect("roster-import")
        }
    };
    let out = run(file.clone()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "errors make a non-zero exit: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("读取2户：新增或更新1户，未变化0户，有误1行"), "{stdout}");
    assert!(stdout.contains("第7行【身份证号】"), "the spouse's line and column: {stdout}");

    // The same roster as xlsx, the bad line fixed: the first household is
    // unchanged, the second now imported.
    let fixed = renumbered("19800505", 21);
    let xlsx = dir.join("花名册.xlsx");
    {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (c, h) in dibao_civil_affairs::roster_file::COLUMNS[..13].iter().enumerate() {
            sheet.write_string(0, c as u16, *h).expect("heading");
        }
        let lines: Vec<String> = good
            .members
            .iter()
            .zip(relations)
            .map(|(m, rel)| roster_line("F-001", VILLAGE, m, rel, "565.00"))
            .chain(fixed.members.iter().zip(relations).map(|(m, rel)| roster_line("F-002", VILLAGE, m, rel, "300")))
            .collect();
        for (i, line) in lines.iter().enumerate() {
            for (c, v) in line.trim_end().split(',').enumerate() {
                // The county number typed as a number, as spreadsheets do.
                if c == 1 {
                    sheet.write_number(1 + i as u32, c as u16, v.parse::<f64>().expect("n")).expect("cell");
                } else {
                    sheet.write_string(1 + i as u32, c as u16, v).expect("cell");
                }
            }
        }
        book.save(&xlsx).expect("save xlsx");
    }
    let report = dibao_civil_affairs::roster_file::import(
        &mut r.client,
        dibao_civil_affairs::roster_file::open(&xlsx).expect("open xlsx"),
    )
    .await
    .expect("import");
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!((report.records_read, report.applied, report.unchanged), (2, 1, 1), "{report}");
    // Re-running the same file changes nothing.
    let again = run(xlsx).await;
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("新增或更新0户，未变化2户"), "{again:?}");
}
