//! The comparison through its real path: civil affairs and the poverty
//! office load the planted rosters through their own import RPCs, their
//! events reach the comparison's view through the broker, the registers are
//! imported over gRPC, and every run, listing, decision and export goes over
//! mTLS (R-CMP-1..4).

use dibao_test_mesh::rosters as mesh;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, OfficerRole, Relation};
use dibao_proto::comparison::v1 as pb;
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_roster_comparison::entries::entry_id;
use dibao_synthetic::rosters::{self, RosterConfig, Row};
use dibao_tests::officer;
use mesh::{Mesh, date, start, start_with};

/// The planted rows, imported through both services and the comparison's
/// register RPCs; returns the expected entry ids, translated from the
/// planted ids to the ids the services gave the households.
async fn load(mesh: &mut Mesh, households: usize) -> BTreeSet<String> {
    let mut rows = Vec::new();
    let mut expected = Vec::new();
    rosters::plant(&RosterConfig::new(61, households), |r| rows.push(r), |k| expected.push(k));

    let mut dibao = Vec::new();
    let mut poor = Vec::new();
    let mut deaths = Vec::new();
    let mut officials: HashMap<String, Vec<pb::ImportOfficialsRequest>> = HashMap::new();
    // Each planted household by its first member: the services give their own ids.
    let mut planted_of: HashMap<String, String> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let line = i as i64 + 2;
        match row {
            Row::Dibao(d) => {
                planted_of.insert(format!("d{}", d.members[0].identity_number), d.id.clone());
                dibao.push(ca::ImportRosterRequest { row: line, household: Some(d.to_civil_affairs()) });
            }
            Row::Poor(p) => {
                planted_of.insert(format!("p{}", p.members[0].identity_number), p.id.clone());
                poor.push(pa::ImportRosterRequest { row: line, household: Some(p.to_poverty_alleviation()) });
            }
            Row::Death(d) => deaths.push(pb::ImportDeathRegisterRequest {
                row: line,
                identity_number: Some(IdentityNumber { value: d.identity_number.clone() }),
                name: d.name.clone(),
                died_on: date(d.died_on),
                source: "公安人口信息系统".into(),
            }),
            Row::Official(o) => {
                let county = o.village[..6].to_owned();
                officials.entry(county.clone()).or_default().push(pb::ImportOfficialsRequest {
                    row: line,
                    division: Some(DivisionCode { code: county }),
                    official: Some(IdentityNumber { value: o.official_id.clone() }),
                    official_name: o.official_name.clone(),
                    role: if o.role == "低保经办人员" {
                        pb::OfficialRole::DibaoHandler
                    } else {
                        pb::OfficialRole::VillageCommittee
                    } as i32,
                    official_village: Some(DivisionCode { code: o.village.clone() }),
                    person: Some(IdentityNumber { value: o.person_id.clone() }),
                    person_name: o.person_name.clone(),
                    relation: o.relation.into(),
                });
            }
        }
    }
    let (n_dibao, n_poor) = (dibao.len(), poor.len());
    let civil = mesh.civil.import_roster(futures_util::stream::iter(dibao)).await.expect("civil import").into_inner();
    assert!(
        civil.errors.is_empty(),
        "civil affairs refused planted rows: {:?}",
        &civil.errors[..civil.errors.len().min(3)]
    );
    // As a province migrates: the dibao roster's enrolments have reached
    // the poverty office before it loads its own roster, whose flags (some
    // planted wrong) are the office's record; a later enrolment or exit
    // would set them as the sync's (R-SYNC-2).
    let client = mesh.env.db.client().await.expect("db");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let held: i64 = client
            .query_one("SELECT count(*) FROM poverty_alleviation.dibao_household", &[])
            .await
            .expect("poverty's dibao view")
            .get(0);
        if held == n_dibao as i64 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "poverty's dibao view holds {held}/{n_dibao}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pov = mesh.poverty.import_roster(futures_util::stream::iter(poor)).await.expect("poverty import").into_inner();
    assert!(
        pov.errors.is_empty(),
        "the poverty office refused planted rows: {:?}",
        &pov.errors[..pov.errors.len().min(3)]
    );
    let d = mesh
        .comparison
        .import_death_register(futures_util::stream::iter(deaths))
        .await
        .expect("deaths")
        .into_inner()
        .result
        .expect("result");
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    for (_, rows) in officials {
        let o = mesh
            .comparison
            .import_officials(futures_util::stream::iter(rows))
            .await
            .expect("officials")
            .into_inner()
            .result
            .expect("result");
        assert!(o.errors.is_empty(), "{:?}", o.errors);
    }

    // The services' ids for the planted ones, from their own exports.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut export = mesh
        .civil
        .export_roster(ca::ExportRosterRequest { division: Some(DivisionCode { code: "520000".into() }) })
        .await
        .expect("civil export")
        .into_inner();
    while let Some(h) = export.message().await.expect("civil export") {
        let h = h.household.expect("household");
        for m in &h.members {
            let id =
                m.person.as_ref().and_then(|p| p.identity_number.as_ref()).map(|i| i.value.clone()).unwrap_or_default();
            if let Some(planted) = planted_of.get(&format!("d{id}")) {
                ids.insert(planted.clone(), h.household_id.clone());
            }
        }
    }
    let mut export = mesh
        .poverty
        .export_roster(pa::ExportRosterRequest { division: Some(DivisionCode { code: "520000".into() }) })
        .await
        .expect("poverty export")
        .into_inner();
    while let Some(h) = export.message().await.expect("poverty export") {
        let h = h.household.expect("household");
        for m in &h.members {
            let id =
                m.person.as_ref().and_then(|p| p.identity_number.as_ref()).map(|i| i.value.clone()).unwrap_or_default();
            if let Some(planted) = planted_of.get(&format!("p{id}")) {
                ids.insert(planted.clone(), h.household_id.clone());
            }
        }
    }
    assert_eq!(ids.len(), n_dibao + n_poor, "every planted household found in its roster's export");

    // Wait until the view holds both rosters and every flag the poverty office recorded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let view: Vec<String> = client
            .query(
                "SELECT household_id FROM roster_comparison.roster_household
                 WHERE valid_to IS NULL AND on_roster AND side = 'poor' AND flagged ORDER BY 1",
                &[],
            )
            .await
            .expect("view")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let flagged: Vec<String> = client
            .query(
                "SELECT household_id::text FROM poverty_alleviation.poor_household WHERE dibao_registered_poor ORDER BY 1",
                &[],
            )
            .await
            .expect("poverty")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let counts = client
            .query_one(
                "SELECT count(*) FILTER (WHERE side = 'dibao'), count(*) FILTER (WHERE side = 'poor')
                 FROM roster_comparison.roster_household WHERE valid_to IS NULL AND on_roster",
                &[],
            )
            .await
            .expect("counts");
        let (d, p): (i64, i64) = (counts.get(0), counts.get(1));
        // The flags are final once the poverty office has applied every
        // civil-affairs event (under load it lags; equal partial sets are not enough).
        let poverty_view: i64 = client
            .query_one("SELECT count(*) FROM poverty_alleviation.dibao_household", &[])
            .await
            .expect("poverty's dibao view")
            .get(0);
        if d == n_dibao as i64
            && p == n_poor as i64
            && poverty_view == n_dibao as i64
            && view == flagged
            && !flagged.is_empty()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "view did not converge: {d}/{n_dibao} dibao, {p}/{n_poor} poor, poverty's dibao view {poverty_view}/{n_dibao}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The planted keys with the services' ids, list (e) among them: the
    // flags the office's roster carries wrong, in both directions.
    assert!(expected.iter().any(|k| k.starts_with('e')), "no flag mismatch planted");
    expected
        .into_iter()
        .map(|k| {
            let mut parts: Vec<String> = k.split('|').map(str::to_owned).collect();
            for side in [1, 2] {
                let mut translated: Vec<String> =
                    parts[side].split(',').filter(|s| !s.is_empty()).map(|s| ids[s].clone()).collect();
                translated.sort();
                parts[side] = translated.join(",");
            }
            entry_id(&parts.join("|"))
        })
        .collect()
}

async fn run(mesh: &mut Mesh, division: &str, reproduce: &str) -> (String, Vec<pb::RunComparisonResponse>) {
    let mut stream = mesh
        .comparison
        .run_comparison(pb::RunComparisonRequest {
            division: (!division.is_empty()).then(|| DivisionCode { code: division.into() }),
            reproduce_run_id: reproduce.into(),
        })
        .await
        .expect("run")
        .into_inner();
    let mut seen = Vec::new();
    while let Some(m) = stream.message().await.expect("progress") {
        seen.push(m);
    }
    let last = seen.last().expect("progress reported");
    assert_eq!(last.phase, "done");
    (last.run_id.clone(), seen)
}

/// Asserts two sets of entry ids are equal, naming a few of the differences.
#[track_caller]
fn assert_same(left: &BTreeSet<String>, right: &BTreeSet<String>, what: &str) {
    let only_left: Vec<_> = left.difference(right).take(5).collect();
    let only_right: Vec<_> = right.difference(left).take(5).collect();
    assert!(
        only_left.is_empty() && only_right.is_empty(),
        "{what}: {} against {} entries; only on the left {only_left:?}, only on the right {only_right:?}",
        left.len(),
        right.len()
    );
}

/// Lists the continuous comparison's entries instead of a run's.
const LIVE: &str = "live";

/// Every entry id of a run (or of the continuous lists), over all lists.
async fn all_ids(mesh: &mut Mesh, run_id: &str) -> BTreeSet<String> {
    entries(mesh, run_id, pb::ListKind::Unspecified).await.into_iter().map(|e| e.entry_id).collect()
}

async fn entries(mesh: &mut Mesh, run_id: &str, kind: pb::ListKind) -> Vec<pb::Entry> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = mesh
            .comparison
            .list_entries(pb::ListEntriesRequest {
                run_id: if run_id == LIVE { String::new() } else { run_id.into() },
                kind: kind as i32,
                division: None,
                page: Some(dibao_proto::common::v1::PageRequest { page_size: 500, page_token: token }),
                continuous: run_id == LIVE,
            })
            .await
            .expect("list")
            .into_inner();
        out.extend(page.entries);
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            return out;
        }
    }
}

async fn export(mesh: &mut Mesh, run_id: &str, format: pb::ExportFormat, role: OfficerRole) -> Vec<(String, Vec<u8>)> {
    let mut stream = mesh
        .comparison
        .export_lists(officer(
            role,
            "520102",
            pb::ExportListsRequest {
                run_id: run_id.into(),
                division: None,
                format: format as i32,
                grouping: pb::ExportGrouping::Township as i32,
            },
        ))
        .await
        .expect("export")
        .into_inner();
    let mut files = Vec::new();
    while let Some(f) = stream.message().await.expect("file") {
        files.push((f.file_name, f.content));
    }
    files
}

#[tokio::test]
async fn planted_rosters_through_the_services_every_case_found_reproducible_decided_exported() {
    let mut mesh = start().await;
    let expected = load(&mut mesh, 700).await;

    let (run_id, progress) = run(&mut mesh, "", "").await;
    let phases: Vec<&str> = progress.iter().map(|p| p.phase.as_str()).collect();
    assert!(phases.contains(&"extract") && phases.contains(&"compare") && phases.contains(&"store"), "{phases:?}");

    // Precision and recall, through the real path.
    let mut found = BTreeSet::new();
    let mut per_list = Vec::new();
    for kind in [
        pb::ListKind::PoorNotDibao,
        pb::ListKind::DibaoNotPoor,
        pb::ListKind::OnBoth,
        pb::ListKind::MembersDiffer,
        pb::ListKind::FlagMismatch,
        pb::ListKind::DeceasedPaid,
        pb::ListKind::OfficialRelative,
    ] {
        let listed = entries(&mut mesh, &run_id, kind).await;
        per_list.push((kind, listed.len()));
        found.extend(listed.into_iter().map(|e| e.entry_id));
    }
    println!("lists: {per_list:?}");
    let missed: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(missed.is_empty() && extra.is_empty(), "missed {missed:?}, extra {extra:?}");
    for (kind, n) in &per_list {
        if *kind != pb::ListKind::FlagMismatch {
            assert!(*n > 0, "nothing planted in {kind:?}");
        }
    }
    // The continuous comparison, kept change by change as the events
    // arrived, ends in the same lists as the full run.
    assert_same(&all_ids(&mut mesh, LIVE).await, &found, "continuous against the full run");

    // The run records what it ran on.
    let first = mesh
        .comparison
        .get_run(pb::GetRunRequest { run_id: run_id.clone() })
        .await
        .expect("run")
        .into_inner()
        .run
        .expect("run");
    assert!(first.view_position > 0 && first.dibao_events > 0 && first.poverty_events > 0 && first.digest.len() == 64);
    let xlsx = export(&mut mesh, &run_id, pb::ExportFormat::Xlsx, OfficerRole::CountyApprover).await;
    let csv = export(&mut mesh, &run_id, pb::ExportFormat::Csv, OfficerRole::CountyApprover).await;
    assert!(!xlsx.is_empty() && xlsx.len() == csv.len());

    // A change on the poverty roster: a member of a household on both rosters dies there.
    let on_both = entries(&mut mesh, &run_id, pb::ListKind::OnBoth).await;
    let household = on_both[0].poor_households[0].household_id.clone();
    let h = mesh
        .poverty
        .get_household(pa::GetHouseholdRequest { household_id: household.clone() })
        .await
        .expect("household")
        .into_inner()
        .household
        .expect("household");
    // Each household named by its roster's own number (户编号), in the lists
    // and the exports, never by the services' internal ids.
    let dibao = &on_both[0].dibao_households[0];
    let on_civil = mesh
        .civil
        .get_household(ca::GetHouseholdRequest { household_id: dibao.household_id.clone() })
        .await
        .expect("civil household")
        .into_inner()
        .household
        .expect("household");
    assert!(!on_civil.household_number.is_empty() && !h.household_number.is_empty(), "both rosters number them");
    assert_eq!(dibao.household_number, on_civil.household_number, "the dibao household by the county's number");
    assert_eq!(on_both[0].poor_households[0].household_number, h.household_number, "the poor one by the office's");
    let sheets: String = csv.iter().map(|(_, c)| String::from_utf8_lossy(c).into_owned()).collect();
    assert!(sheets.contains(&on_civil.household_number) && sheets.contains(&h.household_number), "exported by number");
    assert!(!sheets.contains(&dibao.household_id) && !sheets.contains(&household), "no internal id exported");
    let dead =
        h.members.iter().find(|m| m.relation != Relation::Head as i32).or(h.members.first()).cloned().expect("member");
    let dead_id = dead.person.and_then(|p| p.identity_number).expect("id");
    mesh.poverty
        .record_death(officer(
            OfficerRole::PovertyOfficer,
            "520102",
            pa::RecordDeathRequest {
                identity_number: Some(dead_id),
                died_on: date(time::macros::date!(2026 - 10 - 01)),
                source: "村委会报告".into(),
            },
        ))
        .await
        .expect("death");
    let client = mesh.env.db.client().await.expect("db");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let position: i64 = client
            .query_one("SELECT last_value FROM roster_comparison.view_position", &[])
            .await
            .expect("position")
            .get(0);
        if position > first.view_position {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the death never reached the view");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both rosters react to a death (the other side records it too): run
    // until the view has settled, when the full run and the continuous lists agree.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let second_id = loop {
        let (id, _) = run(&mut mesh, "", "").await;
        if all_ids(&mut mesh, LIVE).await == all_ids(&mut mesh, &id).await {
            break id;
        }
        assert!(tokio::time::Instant::now() < deadline, "continuous and full lists never agreed after the change");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let second = mesh
        .comparison
        .get_run(pb::GetRunRequest { run_id: second_id })
        .await
        .expect("run")
        .into_inner()
        .run
        .expect("run");
    assert_ne!(second.digest, first.digest, "the change shows in the next run");

    // Re-run on the first run's versions: the same entries, the same files, byte for byte.
    let (again_id, _) = run(&mut mesh, "", &run_id).await;
    let again = mesh
        .comparison
        .get_run(pb::GetRunRequest { run_id: again_id.clone() })
        .await
        .expect("run")
        .into_inner()
        .run
        .expect("run");
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.reproduces_run_id, run_id);
    assert_eq!(again.view_position, first.view_position);
    assert_eq!(export(&mut mesh, &again_id, pb::ExportFormat::Xlsx, OfficerRole::CountyApprover).await, xlsx);
    assert_eq!(export(&mut mesh, &again_id, pb::ExportFormat::Csv, OfficerRole::CountyApprover).await, csv);

    // Masking: a village committee member's export shows no full identity number.
    let deceased = entries(&mut mesh, &run_id, pb::ListKind::DeceasedPaid).await;
    let full = deceased[0].members[0].value.clone();
    let masked = export(&mut mesh, &run_id, pb::ExportFormat::Csv, OfficerRole::TownshipReviewer).await;
    let text = |files: &[(String, Vec<u8>)]| {
        files.iter().map(|(_, b)| String::from_utf8_lossy(b).into_owned()).collect::<String>()
    };
    assert!(text(&csv).contains(&full), "an entitled officer sees the number");
    assert!(!text(&masked).contains(&full), "a village committee member does not");
    assert!(text(&masked).contains(&format!("{}********{}", &full[..6], &full[14..])));
    assert!(csv.iter().all(|(name, _)| name.ends_with(".csv") && name.contains("台账比对")));

    // Decisions (R-CMP-3).
    let open_before = mesh
        .comparison
        .report_open_items(pb::ReportOpenItemsRequest { division: None })
        .await
        .expect("open")
        .into_inner();
    let count = |r: &pb::ReportOpenItemsResponse, k: pb::ListKind| {
        r.townships.iter().filter(|t| t.kind == k as i32).map(|t| t.open).sum::<i64>()
    };
    let a = entries(&mut mesh, &run_id, pb::ListKind::PoorNotDibao).await;
    let b = entries(&mut mesh, &run_id, pb::ListKind::DibaoNotPoor).await;
    let decide = |entry: &str, conclusion: &str, role| {
        officer(
            role,
            "520102",
            pb::RecordDecisionRequest {
                entry_id: entry.into(),
                application_id: String::new(),
                conclusion: conclusion.into(),
            },
        )
    };
    let refused = mesh
        .comparison
        .record_decision(decide(
            &a[0].entry_id,
            "经入户核查，家庭人均收入高于当地低保标准，不符合条件",
            OfficerRole::PovertyOfficer,
        ))
        .await
        .expect_err("wrong role");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(refused.message().contains("应由"), "{}", refused.message());
    let short = mesh
        .comparison
        .record_decision(decide(&a[0].entry_id, "不符合", OfficerRole::TownshipCaseworker))
        .await
        .expect_err("no reasons");
    assert!(short.message().contains("conclusion"), "{}", short.message());
    mesh.comparison
        .record_decision(decide(
            &a[0].entry_id,
            "经入户核查，家庭人均收入高于当地低保标准，不符合条件",
            OfficerRole::TownshipCaseworker,
        ))
        .await
        .expect("decision on (a)");
    mesh.comparison
        .record_decision(decide(
            &b[0].entry_id,
            "按扶贫对象认定标准核查，家庭人均纯收入高于扶贫标准，不予认定",
            OfficerRole::PovertyOfficer,
        ))
        .await
        .expect("decision on (b)");
    let twice = mesh
        .comparison
        .record_decision(decide(&a[0].entry_id, "再次记录的结论，应被拒绝并说明原因", OfficerRole::TownshipCaseworker))
        .await
        .expect_err("twice");
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition);
    let listed = entries(&mut mesh, &run_id, pb::ListKind::PoorNotDibao).await;
    let decided =
        listed.iter().find(|e| e.entry_id == a[0].entry_id).and_then(|e| e.decision.clone()).expect("decision shown");
    assert!(decided.conclusion.contains("不符合条件"));
    // The open-items report is on the latest run (the re-run), where both entries appear again.
    let open_after = mesh
        .comparison
        .report_open_items(pb::ReportOpenItemsRequest { division: None })
        .await
        .expect("open")
        .into_inner();
    assert_eq!(count(&open_after, pb::ListKind::PoorNotDibao), count(&open_before, pb::ListKind::PoorNotDibao) - 1);
    assert_eq!(count(&open_after, pb::ListKind::DibaoNotPoor), count(&open_before, pb::ListKind::DibaoNotPoor) - 1);

    // A county's run lists only entries touching the county.
    let county = a[0].village.as_ref().expect("village").code[..6].to_owned();
    let (county_run, _) = run(&mut mesh, &county, "").await;
    let county_a = entries(&mut mesh, &county_run, pb::ListKind::PoorNotDibao).await;
    assert!(!county_a.is_empty() && county_a.len() < a.len());
    assert!(
        county_a
            .iter()
            .all(|e| e.poor_households.iter().any(|h| h.village.as_ref().is_some_and(|v| v.code.starts_with(&county))))
    );

    // The view loses changes (as after a broker's data was wiped): one
    // household of each roster gone from it. Rebuilt from both rosters'
    // snapshots, it is whole again and the lists are those of before.
    let (latest, _) = run(&mut mesh, "", "").await;
    let before = all_ids(&mut mesh, &latest).await;
    client
        .execute(
            "DELETE FROM roster_comparison.roster_household WHERE side = 'poor' AND household_id = $1",
            &[&on_both[1].poor_households[0].household_id],
        )
        .await
        .expect("lose a poor household");
    client
        .execute(
            "DELETE FROM roster_comparison.roster_household WHERE side = 'dibao' AND household_id = $1",
            &[&b[1].dibao_households[0].household_id],
        )
        .await
        .expect("lose a dibao household");
    let whole = || pb::RebuildViewRequest { division: Some(DivisionCode { code: "520000".into() }) };
    let refused = mesh.comparison.rebuild_view(whole()).await.expect_err("only operators rebuild");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let rebuilt = mesh.comparison_ops.rebuild_view(whole()).await.expect("rebuild").into_inner();
    assert_eq!((rebuilt.dibao_corrected, rebuilt.poor_corrected), (1, 1), "{rebuilt:?}");
    assert!(rebuilt.dibao_checked > 100 && rebuilt.poor_checked > 100);
    let (after, _) = run(&mut mesh, "", "").await;
    assert_same(&all_ids(&mut mesh, &after).await, &before, "full run after the rebuild");
    assert_same(&all_ids(&mut mesh, LIVE).await, &before, "the continuous lists after the rebuild");
    let again = mesh.comparison_ops.rebuild_view(whole()).await.expect("rebuild").into_inner();
    assert_eq!((again.dibao_corrected, again.poor_corrected), (0, 0), "a whole view needs no correction");
}

/// R-CMP-3: a decision that says the entry ended in an enrolment names it,
/// and the department that made it confirms it is that household's.
#[tokio::test]
async fn a_decision_naming_an_enrolment_is_checked_with_the_department_that_made_it() {
    let mut mesh = start().await;
    load(&mut mesh, 300).await;
    let (run_id, _) = run(&mut mesh, "", "").await;
    let a = entries(&mut mesh, &run_id, pb::ListKind::PoorNotDibao).await;
    let b = entries(&mut mesh, &run_id, pb::ListKind::DibaoNotPoor).await;
    let on_both = entries(&mut mesh, &run_id, pb::ListKind::OnBoth).await;
    let family = |e: &&pb::Entry, n: &[pb::EntryHousehold]| n.len() == 1 && n[0].members >= 2 && e.decision.is_none();
    let (a0, a1) = {
        let mut it = a.iter().filter(|e| family(e, &e.poor_households));
        (it.next().expect("an (a) family"), it.next().expect("another (a) family"))
    };
    let b0 = b.iter().find(|e| family(e, &e.dibao_households)).expect("a (b) family");

    // The run reached the poverty office through the broker: its candidate
    // list points at the run's list (b).
    let county = b0.village.as_ref().expect("village").code[..6].to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let latest = loop {
        let listed = mesh
            .poverty
            .list_candidates(pa::ListCandidatesRequest {
                division: Some(DivisionCode { code: county.clone() }),
                page: None,
            })
            .await
            .expect("candidates")
            .into_inner();
        match listed.latest_comparison {
            Some(latest) if latest.run_id == run_id => break latest,
            _ if std::time::Instant::now() > deadline => panic!("the run never reached the poverty office"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert_eq!(latest.dibao_not_poor, b.len() as i64);
    assert_eq!(latest.flag_mismatches, entries(&mut mesh, &run_id, pb::ListKind::FlagMismatch).await.len() as i64);
    let decide = |entry: &pb::Entry, application: &str, role| {
        officer(
            role,
            "520102",
            pb::RecordDecisionRequest {
                entry_id: entry.entry_id.clone(),
                application_id: application.into(),
                conclusion: String::new(),
            },
        )
    };
    let caseworker = OfficerRole::TownshipCaseworker;
    let refused = |e: tonic::Status, says: &str| {
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{}", e.message());
        assert!(e.message().contains("application_id") && e.message().contains(says), "{}", e.message());
    };

    // Civil affairs takes the (a) family's application (its members as the
    // poverty roster lists them), and another family's.
    let apply = async |mesh: &mut Mesh, entry: &pb::Entry| {
        let poor = mesh
            .poverty
            .get_household(pa::GetHouseholdRequest { household_id: entry.poor_households[0].household_id.clone() })
            .await
            .expect("poor household")
            .into_inner()
            .household
            .expect("household");
        let household = ca::Household {
            village: poor.village.clone(),
            category: dibao_proto::events::v1::BenefitCategory::C as i32,
            members: poor
                .members
                .iter()
                .map(|m| ca::Member {
                    person: m.person.clone(),
                    relation: m.relation,
                    work_ability: ca::WorkAbility::Partial as i32,
                    covered: true,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        mesh.civil
            .submit_application(officer(
                caseworker,
                "520102",
                ca::SubmitApplicationRequest { household: Some(household), income: vec![], supporters: vec![] },
            ))
            .await
            .expect("application")
            .into_inner()
            .application_id
    };
    let application = apply(&mut mesh, a0).await;
    let other_family = apply(&mut mesh, a1).await;

    refused(mesh.comparison.record_decision(decide(a0, "申请-0117", caseworker)).await.expect_err("not an id"), "格式");
    let unknown = uuid::Uuid::new_v4().to_string();
    refused(
        mesh.comparison.record_decision(decide(a0, &unknown, caseworker)).await.expect_err("unknown"),
        "民政部门没有",
    );
    refused(
        mesh.comparison.record_decision(decide(a0, &other_family, caseworker)).await.expect_err("another family's"),
        "没有相同成员",
    );
    refused(
        mesh.comparison.record_decision(decide(&on_both[0], &application, caseworker)).await.expect_err("(c)"),
        "只有（a）（b）类",
    );
    mesh.comparison.record_decision(decide(a0, &application, caseworker)).await.expect("the family's application");

    // The poverty office registers the (b) family (its members as civil
    // affairs lists them), and names that registration.
    let dibao = mesh
        .civil
        .get_household(ca::GetHouseholdRequest { household_id: b0.dibao_households[0].household_id.clone() })
        .await
        .expect("dibao household")
        .into_inner()
        .household
        .expect("household");
    let registration = mesh
        .poverty
        .register_household(officer(
            OfficerRole::PovertyOfficer,
            "520102",
            pa::RegisterHouseholdRequest {
                household: Some(pa::PoorHousehold {
                    village: dibao.village.clone(),
                    members: dibao
                        .members
                        .iter()
                        .map(|m| dibao_proto::events::v1::RosterMember {
                            person: m.person.clone(),
                            relation: m.relation,
                            covered: true,
                        })
                        .collect(),
                    causes: vec![dibao_proto::events::v1::PovertyCause::Illness as i32],
                    status: pa::PovertyStatus::InPoverty as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("registration")
        .into_inner()
        .household_id;
    let poverty = OfficerRole::PovertyOfficer;
    refused(
        mesh.comparison.record_decision(decide(b0, &application, poverty)).await.expect_err("a civil application"),
        "扶贫部门没有",
    );
    refused(
        mesh.comparison
            .record_decision(decide(b0, &a0.poor_households[0].household_id, poverty))
            .await
            .expect_err("another household"),
        "没有相同成员",
    );
    mesh.comparison.record_decision(decide(b0, &registration, poverty)).await.expect("the family's registration");

    // Only the accepted decisions were recorded, each with what it named.
    let decided = entries(&mut mesh, &run_id, pb::ListKind::PoorNotDibao).await;
    let shown = decided.iter().find(|e| e.entry_id == a0.entry_id).and_then(|e| e.decision.clone()).expect("shown");
    assert_eq!(shown.application_id, application);
    assert!(decided.iter().find(|e| e.entry_id == a1.entry_id).is_some_and(|e| e.decision.is_none()));
    let decided = entries(&mut mesh, &run_id, pb::ListKind::DibaoNotPoor).await;
    let shown = decided.iter().find(|e| e.entry_id == b0.entry_id).and_then(|e| e.decision.clone()).expect("shown");
    assert_eq!(shown.application_id, registration);
}

#[tokio::test]
async fn bad_register_rows_are_named_and_change_nothing() {
    let mut mesh = start().await;
    let good = "110105195001010039";
    let rows = vec![
        pb::ImportDeathRegisterRequest {
            row: 2,
            identity_number: Some(IdentityNumber { value: "11010519491231002X".into() }),
            name: "王建国".into(),
            died_on: date(time::macros::date!(2026 - 01 - 05)),
            source: String::new(),
        },
        pb::ImportDeathRegisterRequest {
            row: 3,
            identity_number: Some(IdentityNumber { value: "110105194912310022".into() }),
            name: "张三".into(),
            died_on: date(time::macros::date!(2026 - 01 - 05)),
            source: String::new(),
        },
        pb::ImportDeathRegisterRequest {
            row: 4,
            identity_number: Some(IdentityNumber { value: good.into() }),
            name: String::new(),
            died_on: date(time::macros::date!(2099 - 01 - 05)),
            source: String::new(),
        },
    ];
    let answer = mesh
        .comparison
        .import_death_register(futures_util::stream::iter(rows))
        .await
        .expect("import")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(answer.rows_applied, 1);
    let fields: Vec<(i64, &str)> = answer.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(fields, [(3, "identity_number"), (4, "name"), (4, "died_on")], "{:?}", answer.errors);

    // The officials' registry is one document: one wrong row, nothing changes.
    let row = |n: i64, person: &str, relation: &str| pb::ImportOfficialsRequest {
        row: n,
        division: Some(DivisionCode { code: "110105".into() }),
        official: Some(IdentityNumber { value: "11010519491231002X".into() }),
        official_name: "王主任".into(),
        role: pb::OfficialRole::VillageCommittee as i32,
        official_village: Some(DivisionCode { code: "110105001001".into() }),
        person: Some(IdentityNumber { value: person.into() }),
        person_name: "王小明".into(),
        relation: relation.into(),
    };
    let answer = mesh
        .comparison
        .import_officials(dibao_tests::by(
            dibao_test_mesh::rosters::province_officer("110000"),
            futures_util::stream::iter(vec![row(2, good, "子女"), row(3, good, "朋友")]),
        ))
        .await
        .expect("import")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(answer.rows_applied, 0);
    assert_eq!(answer.errors.len(), 2, "{:?}", answer.errors); // a friend is no close relative; the pair repeats
    assert!(answer.errors.iter().any(|e| e.row == 3 && e.field == "relation"));
    let client = mesh.env.db.client().await.expect("db");
    let n: i64 =
        client.query_one("SELECT count(*) FROM roster_comparison.official_link", &[]).await.expect("count").get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_monthly_comparison_runs_by_itself_once() {
    // Day 1: whatever today is, this month's run is due and none was made.
    let mesh = start_with(1).await;
    let client = mesh.env.db.client().await.expect("db");
    let finished = || async {
        client
            .query_one(
                "SELECT count(*) FROM roster_comparison.comparison_run WHERE division = '' AND finished_at IS NOT NULL",
                &[],
            )
            .await
            .expect("runs")
            .get::<_, i64>(0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while finished().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no monthly run");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Done for the month: the schedule does not run it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(finished().await, 1);
}

/// R-CMP-2 (f), issue 23 item 1: a household paid for a month after its member's death
/// keeps the member on list (f) — though the member has left the household
/// — until the overpayment is recovered; civil affairs tells the comparison
/// through the broker (`PaidAfterDeath`).
#[tokio::test]
async fn a_death_paid_for_stays_on_list_f_until_the_overpayment_is_recovered() {
    let mut mesh = start().await;
    // A person living alone on the dibao roster, paid through the bank.
    let mut rows = Vec::new();
    rosters::plant(&RosterConfig::new(61, 60), |r| rows.push(r), |_| {});
    let alone = rows
        .iter()
        .find_map(|r| match r {
            Row::Dibao(d) if d.members.len() == 1 && !d.special_hardship => Some(d.clone()),
            _ => None,
        })
        .expect("a person living alone");
    let person = alone.members[0].identity_number.clone();
    let household = ca::Household {
        payee: Some(ca::Payee {
            bank: "贵阳农商银行".into(),
            account: "6230520012345678901".into(),
            holder_name: alone.members[0].name.clone(),
        }),
        ..alone.to_civil_affairs()
    };
    let imported = mesh
        .civil
        .import_roster(futures_util::stream::iter(vec![ca::ImportRosterRequest { row: 2, household: Some(household) }]))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(imported.households_applied, 1, "{:?}", imported.errors);
    let county = alone.village[..6].to_owned();
    let today = dibao_platform::runtime::clock::china_date(time::OffsetDateTime::now_utc());
    let last_month = (today.replace_day(1).expect("day") - time::Duration::days(1)).replace_day(1).expect("day");
    let roll = dibao_test_mesh::payments::prepare(&mut mesh.payments, &county, last_month).await;
    assert_eq!(roll.households, 1, "{roll:?}");
    mesh.payments
        .sign_roll(officer(OfficerRole::CountyApprover, &county, ca::SignRollRequest { roll_id: roll.roll_id.clone() }))
        .await
        .expect("signed");
    let paid = dibao_test_mesh::payments::bank_pays_all(&mut mesh.payments, &roll.roll_id).await;
    let reference = paid[0].reference.clone();

    // The death, recorded the month before the one paid: the payment is overpaid.
    let died_on = last_month - time::Duration::days(10);
    mesh.civil
        .record_death(officer(
            OfficerRole::TownshipCaseworker,
            &alone.village[..9],
            ca::RecordDeathRequest {
                identity_number: Some(IdentityNumber { value: person.clone() }),
                died_on: date(died_on),
                source: "公安死亡登记".into(),
            },
        ))
        .await
        .expect("death");
    let listed = |e: &pb::Entry| e.members.iter().any(|m| m.value == person);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let flagged = loop {
        if let Some(e) = entries(&mut mesh, LIVE, pb::ListKind::DeceasedPaid).await.into_iter().find(listed) {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "the overpaid death never reached list (f)");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(flagged.explanation.contains("多发的保障金尚未追回"), "{}", flagged.explanation);
    assert!(flagged.explanation.contains(&alone.members[0].name), "{}", flagged.explanation);
    // A full run on the same view says the same.
    let (run_id, _) = run(&mut mesh, "", "").await;
    assert!(entries(&mut mesh, &run_id, pb::ListKind::DeceasedPaid).await.iter().any(listed), "the full run lists it");

    // Recovered in full: off list (f).
    let overpaid = mesh
        .payments
        .list_overpayments(ca::ListOverpaymentsRequest { county: Some(DivisionCode { code: county.clone() }) })
        .await
        .expect("overpayments")
        .into_inner();
    assert_eq!(overpaid.overpayments.len(), 1, "{overpaid:?}");
    let recovered = mesh
        .payments
        .record_recovery(ca::RecordRecoveryRequest {
            reference,
            amount: overpaid.total,
            note: "家属退回，收据0001".into(),
        })
        .await
        .expect("recovered")
        .into_inner();
    assert_eq!(recovered.outstanding.map(|m| m.fen), Some(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while entries(&mut mesh, LIVE, pb::ListKind::DeceasedPaid).await.iter().any(listed) {
        assert!(tokio::time::Instant::now() < deadline, "list (f) kept the recovered death");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
