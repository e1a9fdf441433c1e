//! The comparison part of the demo (`scripts/demo.sh`): civil affairs (the
//! demo county's dibao roster already imported), the poverty office and the
//! roster comparison, all real, against the local stack. The poverty office
//! imports its registered-poor roster of the county (most of it the same
//! families, some not on dibao, some with a member less); public security's
//! death register and the officials' registry are imported; the comparison
//! of county 220581 runs with its progress, prints each list's size, waits
//! for the poverty office to learn of the run through the broker, and
//! writes the township workbooks to `DEMO_EXPORTS` (default
//! `.stack/exports`); an officer records a conclusion on a list (a) entry
//! and the open items per township are reported.
//!
//! Settings as for the three binaries (`CIVIL_AFFAIRS__…`,
//! `POVERTY_ALLEVIATION__…`, `ROSTER_COMPARISON__…`); the caller's
//! certificate is `gateway.pem` beside the CA.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::officer;
use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::runtime::service::Service;
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{Date, DivisionCode, IdentityNumber, OfficerRole, PageRequest, Person};
use dibao_proto::comparison::v1 as pb;
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::events::v1::{PovertyCause, RosterMember};
use dibao_proto::labels::Label;
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_roster_comparison::engine::Kind;
use dibao_synthetic::generator::{Config, Generator};

const COUNTY: &str = "220581";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let civil_settings = dibao_civil_affairs::Application::settings()?;
    let poverty_settings = dibao_poverty_alleviation::Application::settings()?;
    let comparison_settings = dibao_roster_comparison::Application::settings()?;
    let certs = civil_settings.platform.tls.ca_cert.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let (_stop, shutdown) = Shutdown::new();
    let civil_app =
        dibao_civil_affairs::Application::build(civil_settings, Arc::new(SystemClock), shutdown.clone()).await?;
    let poverty_app =
        dibao_poverty_alleviation::Application::build(poverty_settings, Arc::new(SystemClock), shutdown.clone())
            .await?;
    let comparison_app =
        dibao_roster_comparison::Application::build(comparison_settings, Arc::new(SystemClock), shutdown).await?;
    // The county's offices: both rosters' operators, approver and poverty officer.
    let office = common::CountyOffice::new(&certs)?;
    let mut civil = CivilAffairsServiceClient::new(office.channel(civil_app.addr, "civil-affairs").await?);
    let mut poverty =
        PovertyAlleviationServiceClient::new(office.channel(poverty_app.addr, "poverty-alleviation").await?);
    let mut comparison = ComparisonServiceClient::new(office.channel(comparison_app.addr, "roster-comparison").await?);

    // The county's dibao roster, as civil affairs has it.
    let mut dibao = Vec::new();
    let mut token = String::new();
    loop {
        let page = civil
            .list_households(ca::ListHouseholdsRequest {
                division: Some(DivisionCode { code: COUNTY.into() }),
                page: Some(PageRequest { page_size: 500, page_token: token }),
            })
            .await?
            .into_inner();
        dibao.extend(page.households.into_iter().filter(|h| h.status == ca::HouseholdStatus::Enrolled as i32));
        token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if token.is_empty() {
            break;
        }
    }
    anyhow::ensure!(!dibao.is_empty(), "no enrolled household in county {COUNTY}: run the civil-affairs demo first");

    // The poverty office's roster: seven in ten of the same families (one in
    // ten of those with a member fewer), and families dibao does not have.
    let mut rows = Vec::new();
    for (i, h) in dibao.iter().enumerate() {
        if i % 10 >= 7 {
            continue;
        }
        let mut members: Vec<RosterMember> = h
            .members
            .iter()
            .map(|m| RosterMember { person: m.person.clone(), relation: m.relation, covered: true })
            .collect();
        if i % 10 == 3 && members.len() > 1 {
            members.pop();
        }
        rows.push(pa::PoorHousehold {
            household_id: format!("JD{COUNTY}{i:05}"),
            village: h.village.clone(),
            members,
            causes: vec![PovertyCause::Illness as i32],
            status: pa::PovertyStatus::InPoverty as i32,
            // The office's own flag: one in ten never marked, for list (e).
            dibao_registered_poor: i % 10 != 5,
            ..Default::default()
        });
    }
    let villages: Vec<DivisionCode> = dibao.iter().filter_map(|h| h.village.clone()).collect();
    for (i, h) in Generator::new(Config::new(20261124, 30)).map(|(h, _)| h).enumerate() {
        rows.push(pa::PoorHousehold {
            household_id: format!("JD{COUNTY}9{i:04}"),
            village: Some(villages[i % villages.len()].clone()),
            members: h
                .members
                .iter()
                .map(|m| RosterMember {
                    person: Some(Person {
                        identity_number: Some(IdentityNumber { value: m.identity_number.clone() }),
                        name: m.name.clone(),
                        ..Default::default()
                    }),
                    relation: m.relation as i32,
                    covered: true,
                })
                .collect(),
            causes: vec![PovertyCause::LackOfLabour as i32],
            status: pa::PovertyStatus::InPoverty as i32,
            // On no dibao roster, yet one in ten marked by the office: list (e).
            dibao_registered_poor: i % 10 == 4,
            ..Default::default()
        });
    }
    let requests: Vec<pa::ImportRosterRequest> = rows
        .into_iter()
        .enumerate()
        .map(|(i, h)| pa::ImportRosterRequest { row: i as i64 + 2, household: Some(h) })
        .collect();
    let imported = poverty.import_roster(futures_util::stream::iter(requests)).await?.into_inner();
    println!(
        "== 扶贫办导入建档立卡名单（县{COUNTY}）：新增或更新{}户，未变化{}户，有误{}行",
        imported.households_applied,
        imported.households_unchanged,
        imported.errors.len()
    );
    for e in &imported.errors {
        println!("   第{}行【{}】{}", e.row, e.field, e.message);
    }

    // Public security's death register: two recipients died last spring.
    let dead: Vec<&ca::Member> = dibao.iter().skip(5).step_by(40).filter_map(|h| h.members.last()).take(2).collect();
    let deaths: Vec<pb::ImportDeathRegisterRequest> = dead
        .iter()
        .enumerate()
        .map(|(i, m)| pb::ImportDeathRegisterRequest {
            row: i as i64 + 2,
            identity_number: m.person.as_ref().and_then(|p| p.identity_number.clone()),
            name: m.person.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            died_on: Some(Date { year: 2026, month: 4, day: 12 + i as i32 }),
            source: "公安人口信息系统".into(),
        })
        .collect();
    let d = comparison
        .import_death_register(futures_util::stream::iter(deaths))
        .await?
        .into_inner()
        .result
        .unwrap_or_default();
    println!("== 导入公安死亡人员信息：{}条", d.rows_applied);

    // The officials' registry: a village committee member, his wife, and a
    // recipient who is his sister.
    let official = &dibao[1].members[0];
    let sister = &dibao[12].members[0];
    let village = dibao[1].village.clone();
    let line = |row: i64, person: &ca::Member, relation: &str| pb::ImportOfficialsRequest {
        row,
        division: Some(DivisionCode { code: COUNTY.into() }),
        official: official.person.as_ref().and_then(|p| p.identity_number.clone()),
        official_name: official.person.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
        role: pb::OfficialRole::VillageCommittee as i32,
        official_village: village.clone(),
        person: person.person.as_ref().and_then(|p| p.identity_number.clone()),
        person_name: person.person.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
        relation: relation.into(),
    };
    let o = comparison
        .import_officials(futures_util::stream::iter(vec![line(2, official, "本人"), line(3, sister, "兄弟姐妹")]))
        .await?
        .into_inner()
        .result
        .unwrap_or_default();
    println!("== 导入经办人员及村干部近亲属备案表：{}条，有误{}条", o.rows_applied, o.errors.len());

    // The comparison's view follows both rosters' events; wait until it holds both.
    let expected_poor = imported.households_applied + imported.households_unchanged;
    for _ in 0..300 {
        let live = comparison
            .list_entries(pb::ListEntriesRequest {
                kind: pb::ListKind::OnBoth as i32,
                division: Some(DivisionCode { code: COUNTY.into() }),
                page: Some(PageRequest { page_size: 1000, page_token: String::new() }),
                continuous: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        let on_both: i64 = live.entries.iter().map(|e| e.poor_households.len() as i64).sum();
        if on_both + 30 >= expected_poor {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    println!("== 县{COUNTY}台账比对：");
    let mut progress = comparison
        .run_comparison(pb::RunComparisonRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            reproduce_run_id: String::new(),
        })
        .await?
        .into_inner();
    let mut last = None;
    while let Some(p) = progress.message().await? {
        let step = match p.phase.as_str() {
            "extract" => format!("读取两个名单{}户", p.households_total),
            "compare" => "比对完成".to_owned(),
            "store" => format!("保存比对结果{}/{}条", p.households_done, p.households_total),
            "done" => format!("完成，共{}条", p.households_total),
            other => other.to_owned(),
        };
        println!("   进度：{step}");
        last = Some(p);
    }
    let last = last.ok_or_else(|| anyhow::anyhow!("the run reported nothing"))?;
    for (kind, size) in Kind::ALL.iter().zip(&last.list_sizes) {
        println!("   （{}）{}：{}条", kind.letter(), kind.label(), size.entries);
    }
    // The run's event reaches the poverty office through the broker.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let latest = poverty
            .list_candidates(pa::ListCandidatesRequest {
                division: Some(DivisionCode { code: COUNTY.into() }),
                page: None,
            })
            .await?
            .into_inner()
            .latest_comparison;
        match latest {
            Some(l) if l.run_id == last.run_id => {
                println!(
                    "== 扶贫部门收到比对结果：（b）类{}户、（e）类{}户待其认定或更正",
                    l.dibao_not_poor, l.flag_mismatches
                );
                break;
            }
            _ if std::time::Instant::now() > deadline => {
                anyhow::bail!("the run's event did not reach the poverty office")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }

    let dir = std::path::PathBuf::from(std::env::var("DEMO_EXPORTS").unwrap_or_else(|_| ".stack/exports".into()));
    std::fs::create_dir_all(&dir)?;
    let mut files = comparison
        .export_lists(officer(
            OfficerRole::CountyApprover,
            "王审批",
            COUNTY,
            pb::ExportListsRequest {
                run_id: last.run_id.clone(),
                division: Some(DivisionCode { code: COUNTY.into() }),
                format: pb::ExportFormat::Xlsx as i32,
                grouping: pb::ExportGrouping::Township as i32,
            },
        ))
        .await?
        .into_inner();
    while let Some(f) = files.message().await? {
        std::fs::write(dir.join(&f.file_name), &f.content)?;
        println!("== 导出 {}（{}条）", dir.join(&f.file_name).display(), f.entries);
    }

    let a = comparison
        .list_entries(pb::ListEntriesRequest {
            run_id: last.run_id.clone(),
            kind: pb::ListKind::PoorNotDibao as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries;
    if let Some(first) = a.first() {
        let township = first.village.as_ref().map(|v| v.code[..9].to_owned()).unwrap_or_default();
        comparison
            .record_decision(officer(
                OfficerRole::TownshipCaseworker,
                "李经办",
                &township,
                pb::RecordDecisionRequest {
                    entry_id: first.entry_id.clone(),
                    application_id: String::new(),
                    conclusion: "经入户核查，家庭有稳定务工收入，人均收入高于当地低保标准，不符合低保条件".into(),
                },
            ))
            .await?;
        // Officers name a household by its roster's number (户编号) and head, never by an internal id.
        let named = first.poor_households.first().map_or(String::new(), |h| match h.household_number.as_str() {
            "" => format!("（户主{}）", h.head_name),
            number => format!("{number}（户主{}）", h.head_name),
        });
        println!("== 乡镇经办人对建档立卡户{named}作出书面结论（不符合低保条件）");
    }
    let open = comparison
        .report_open_items(pb::ReportOpenItemsRequest { division: Some(DivisionCode { code: COUNTY.into() }) })
        .await?
        .into_inner();
    for t in &open.townships {
        let kind = if t.kind == pb::ListKind::PoorNotDibao as i32 { "（a）" } else { "（b）" };
        println!("   乡镇{} {kind}待处理{}条", t.township.as_ref().map(|d| d.code.as_str()).unwrap_or(""), t.open);
    }
    Ok(())
}
