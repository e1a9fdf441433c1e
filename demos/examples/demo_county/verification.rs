//! The demo's economic-status verification (R-VER-1..4): the Zhao family's
//! records are put into the department simulator — the stand-in for the
//! departments' own systems — then a consent is registered with the hub and
//! the household is verified against all six departments through their
//! adapters; the report is printed as the officer reads it.
//!
//! The hub is called through the gateway, as the verification officer;
//! `DEMO_SIMULATOR_SCHEMA` is the simulator's schema in the demo database.

use dibao_platform::runtime::settings::DatabaseSettings;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Person, Relation};
use dibao_proto::department::v1::{Department, Item};
use dibao_proto::labels::Label;
use dibao_proto::types::Fen;
use dibao_proto::verification::v1::{
    Consent, RegisterConsentRequest, Signatory, StartCampaignRequest, VerifyHouseholdRequest,
};
use dibao_synthetic::generator::DeptRecord;

use super::{Hub, id, roster_household};

use dibao_proto::departments::ALL_ITEMS as ITEMS;

struct Member {
    name: &'static str,
    id: IdentityNumber,
    relation: Relation,
}

fn family() -> Vec<Member> {
    vec![
        Member { name: "赵德福", id: id("19780315", 911), relation: Relation::Head },
        Member { name: "钱玉梅", id: id("19800520", 922), relation: Relation::Spouse },
        Member { name: "孙桂兰", id: id("19480808", 932), relation: Relation::Parent },
        Member { name: "赵小燕", id: id("20140901", 942), relation: Relation::Child },
    ]
}

/// What the departments hold on the family.
fn records() -> Vec<DeptRecord> {
    let as_of = time::OffsetDateTime::now_utc().date().previous_day().unwrap_or(time::Date::MIN);
    let rec = |m: &Member, department, item, key: &str, source: &str, amount_fen, attrs: &[(&str, &str)]| DeptRecord {
        department,
        item,
        person: m.id.value.clone(),
        record_id: format!("DEMO-{key}-{}", &m.id.value[14..]),
        source: source.into(),
        as_of,
        amount_fen,
        quantity: 0,
        attrs: attrs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    };
    let f = family();
    let mut out: Vec<DeptRecord> = f
        .iter()
        .map(|m| {
            let relation = match m.relation {
                Relation::Head => "户主",
                Relation::Spouse => "配偶",
                Relation::Parent => "母亲",
                _ => "子女",
            };
            rec(
                m,
                Department::PublicSecurity,
                Item::HouseholdRegistration,
                "HJ",
                "公安人口信息系统",
                0,
                &[("village", "220581101201"), ("household_no", "220581009117"), ("relation", relation)],
            )
        })
        .collect();
    out.push(rec(
        &f[0],
        Department::HumanResources,
        Item::Employment,
        "JY",
        "就业信息系统",
        110_000,
        &[("employer", "长春市宏达建筑劳务有限公司"), ("started_on", "2025-03-01")],
    ));
    out.push(rec(
        &f[2],
        Department::HumanResources,
        Item::Pension,
        "YL",
        "社会保险信息系统",
        10_300,
        &[("kind", "城乡居民基本养老保险")],
    ));
    out.push(rec(
        &f[0],
        Department::Bank,
        Item::Deposits,
        "CKrcc",
        "农村信用合作社",
        320_000,
        &[("bank", "rcc"), ("account", "6228****3301")],
    ));
    out.push(rec(
        &f[1],
        Department::Bank,
        Item::Deposits,
        "CKpsbc",
        "中国邮政储蓄银行",
        150_000,
        &[("bank", "psbc"), ("account", "6217****0417")],
    ));
    out
}

/// Verifies the application's household through the hub; returns the report id.
pub async fn verify(hub: &mut Hub, household_id: &str, db_url: &str) -> anyhow::Result<String> {
    let sim = simulator_db(db_url).await?;
    dibao_platform::store::db::migrate(&sim, "simulator", dibao_synthetic::simulator::MIGRATIONS).await?;
    dibao_synthetic::simulator::load(&sim, &records()).await?;
    println!("   （演示：赵家在各部门的记录已放入部门模拟器）");

    let f = family();
    let today = time::OffsetDateTime::now_utc().date();
    let date = |d: time::Date| dibao_proto::common::v1::Date {
        year: d.year(),
        month: i32::from(d.month() as u8),
        day: i32::from(d.day()),
    };
    let consent_id = hub
        .register_consent(RegisterConsentRequest {
            consent: Some(Consent {
                // The household it was signed for, as civil affairs holds it (R-VER-1).
                household_id: household_id.to_owned(),
                // The scanned, signed 授权书's SHA-256.
                document_sha256: "5d41402abc4b2a76b9719d911017c592ae29b3f9d8f1d2b3c8e4f6a7b8c9d0e1".into(),
                signatories: f
                    .iter()
                    .filter(|m| m.relation != Relation::Child)
                    .map(|m| Signatory {
                        person: Some(Person {
                            identity_number: Some(m.id.clone()),
                            name: m.name.into(),
                            ..Default::default()
                        }),
                        relation: m.relation as i32,
                        relative: false,
                    })
                    .collect(),
                covered_persons: f.iter().map(|m| m.id.clone()).collect(),
                covered_items: ITEMS.iter().map(|i| *i as i32).collect(),
                signed_on: Some(date(today)),
                valid_until: Some(date(today + time::Duration::days(365))),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .consent_id;
    println!("== 核对：登记授权书{consent_id}（户主、配偶、母亲签字，覆盖全家四人、十一项）");
    let report = hub
        .verify_household(VerifyHouseholdRequest {
            household_id: household_id.to_owned(),
            persons: f.iter().map(|m| m.id.clone()).collect(),
            consent_id,
            purpose: "低保申请审核".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .report
        .ok_or_else(|| anyhow::anyhow!("the hub returned no report"))?;
    println!("   核对报告{}（第{}版）：{}", report.report_id, report.version, report.summary);
    for m in &f {
        println!("   {}：", m.name);
        for i in report.items.iter().filter(|i| i.person.as_ref() == Some(&m.id)) {
            let d = Department::try_from(i.department).map_or("", Label::label);
            let item = Item::try_from(i.item).map_or("", Label::label);
            match &i.record {
                Some(r) => {
                    let amount = r.amount.map_or(0, |a| a.fen);
                    let amount = if amount > 0 { format!("，金额{}", Fen(amount)) } else { String::new() };
                    let as_of = r.as_of.map_or(0, |t| t.seconds);
                    let as_of = time::OffsetDateTime::from_unix_timestamp(as_of + 8 * 3600)
                        .map(|t| t.date().to_string())
                        .unwrap_or_default();
                    println!("     {d}·{item}：{} 记录{}{amount}（数据截至{as_of}）", r.source, r.source_record_id);
                }
                None if i.unavailable => println!("     {d}·{item}：未取得，{}", i.unavailable_reason),
                None => println!("     {d}·{item}：无记录"),
            }
        }
    }
    if report.findings.is_empty() {
        println!("   对照县级财产标准：未发现需关注事项");
    }
    for finding in &report.findings {
        println!("   需关注：{}", finding.reason);
    }
    Ok(report.report_id)
}

/// A small bulk campaign (R-VER-5) over township 220581101: the demo
/// roster's 200 households, each with a consent on file, their members
/// registered with public security (every fortieth head owns a car),
/// verified within the departments' limits with progress as it goes.
pub async fn campaign(hub: &mut Hub, civil: &mut super::Civil, db_url: &str) -> anyhow::Result<()> {
    let sim = simulator_db(db_url).await?;
    // Each household's id on civil affairs' roster, by the county's household number.
    let mut on_roster = std::collections::HashMap::new();
    let mut page_token = String::new();
    loop {
        let page = civil
            .list_households(dibao_proto::civil_affairs::v1::ListHouseholdsRequest {
                division: Some(DivisionCode { code: "220581101".into() }),
                page: Some(dibao_proto::common::v1::PageRequest { page_size: 500, page_token }),
            })
            .await?
            .into_inner();
        on_roster.extend(page.households.into_iter().map(|h| (h.household_number, h.household_id)));
        page_token = page.page.map(|p| p.next_page_token).unwrap_or_default();
        if page_token.is_empty() {
            break;
        }
    }
    let as_of = time::OffsetDateTime::now_utc().date().previous_day().unwrap_or(time::Date::MIN);
    let mut records = Vec::new();
    let today = time::OffsetDateTime::now_utc().date();
    let date = |d: time::Date| dibao_proto::common::v1::Date {
        year: d.year(),
        month: i32::from(d.month() as u8),
        day: i32::from(d.day()),
    };
    for n in 0..200 {
        let h = roster_household(n);
        let village = h.village.as_ref().map(|v| v.code.clone()).unwrap_or_default();
        let persons: Vec<IdentityNumber> =
            h.members.iter().filter_map(|m| m.person.as_ref()?.identity_number.clone()).collect();
        for (i, p) in persons.iter().enumerate() {
            let rec = |department, item, key: &str, source: &str, amount_fen, attrs: Vec<(&str, String)>| DeptRecord {
                department,
                item,
                person: p.value.clone(),
                record_id: format!("DEMO-{key}-{n}-{i}"),
                source: source.into(),
                as_of,
                amount_fen,
                quantity: if item == Item::Vehicles { 1 } else { 0 },
                attrs: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            };
            records.push(rec(
                Department::PublicSecurity,
                Item::HouseholdRegistration,
                "HJ",
                "公安人口信息系统",
                0,
                vec![
                    ("village", village.clone()),
                    ("household_no", format!("220581{n:06}")),
                    ("relation", "家庭成员".into()),
                ],
            ));
            if i == 0 && n % 40 == 7 {
                records.push(rec(
                    Department::PublicSecurity,
                    Item::Vehicles,
                    "CL",
                    "公安交通管理系统",
                    0,
                    vec![
                        ("plate", format!("吉A{:05}", 31_000 + n)),
                        ("brand", "哈弗H6".into()),
                        ("registered_on", "2025-06-18".into()),
                    ],
                ));
            }
        }
        // Adults sign; everyone in the household is covered.
        let signatories = h
            .members
            .iter()
            .filter(|m| m.relation != Relation::Child as i32)
            .filter_map(|m| {
                let p = m.person.clone()?;
                Some(Signatory { person: Some(p), relation: m.relation, relative: false })
            })
            .collect();
        hub.register_consent(RegisterConsentRequest {
            consent: Some(Consent {
                household_id: on_roster
                    .get(&h.household_id)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("household {} not on the roster", h.household_id))?,
                document_sha256: format!("{:064x}", 0xd1ba0_u64 + u64::from(n)),
                signatories,
                covered_persons: persons,
                covered_items: ITEMS.iter().map(|i| *i as i32).collect(),
                signed_on: Some(date(today)),
                valid_until: Some(date(today + time::Duration::days(365))),
                ..Default::default()
            }),
        })
        .await?;
    }
    dibao_synthetic::simulator::load(&sim, &records).await?;
    println!("== 集中核查：乡镇220581101在保家庭（演示花名册200户已签授权书，新申请的赵家另有授权书）");
    let mut progress = hub
        .start_campaign(StartCampaignRequest {
            division: Some(DivisionCode { code: "220581101".into() }),
            purpose: "2026年低保集中核查".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut shown = -1;
    let mut last = None;
    while let Some(p) = progress.message().await? {
        let at = (p.households_done + p.households_failed) / 50;
        if at != shown || p.households_remaining == 0 {
            shown = at;
            println!(
                "   进度：已核{}户，未能核对{}户，待核{}户",
                p.households_done, p.households_failed, p.households_remaining
            );
        }
        last = Some(p);
    }
    let Some(last) = last else { return Ok(()) };
    for d in &last.departments {
        let name = Department::try_from(d.department).map_or("", Label::label);
        println!("   {name}：已应答{}户，未应答{}户", d.done, d.failed);
    }
    println!("   需关注的家庭{}户：{}", last.households_with_findings.len(), last.households_with_findings.join("、"));
    Ok(())
}

/// The department simulator's records (`DEMO_SIMULATOR_SCHEMA`, by default `department_simulator`).
async fn simulator_db(db_url: &str) -> anyhow::Result<deadpool_postgres::Pool> {
    let schema = std::env::var("DEMO_SIMULATOR_SCHEMA").unwrap_or_else(|_| "department_simulator".into());
    Ok(dibao_platform::store::db::connect(&DatabaseSettings {
        url: db_url.to_owned().into(),
        schema,
        pool_size: 2,
        owner_url: None,
        ca_cert: None,
    })
    .await?)
}
