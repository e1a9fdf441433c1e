//! The sync part of the demo (`scripts/demo.sh`): civil affairs (with the
//! demo county's roster already imported) and the poverty office's service,
//! both real, against the local stack. The poverty office registers a
//! household sharing a member with an enrolled dibao household and sees the
//! dibao flag arrive; it records the household's return to poverty for
//! illness and civil affairs sees it first on its review list (R-SYNC-2,
//! R-REV-2).
//!
//! Settings as for the two binaries (`CIVIL_AFFAIRS__…`, `POVERTY_ALLEVIATION__…`);
//! the caller's certificate is `gateway.pem` beside the CA.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::officer;
use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::runtime::service::Service;
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, OfficerRole, Person, Relation};
use dibao_proto::events::v1::{PovertyCause, RosterMember};
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let civil_settings = dibao_civil_affairs::Application::settings()?;
    let poverty_settings = dibao_poverty_alleviation::Application::settings()?;
    let certs = civil_settings.platform.tls.ca_cert.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let (_stop, shutdown) = Shutdown::new();
    let civil_app =
        dibao_civil_affairs::Application::build(civil_settings, Arc::new(SystemClock), shutdown.clone()).await?;
    let poverty_app =
        dibao_poverty_alleviation::Application::build(poverty_settings, Arc::new(SystemClock), shutdown).await?;
    // The county's offices: both rosters' operators, approver and poverty officer.
    let office = common::CountyOffice::new(&certs)?;
    let mut civil = CivilAffairsServiceClient::new(office.channel(civil_app.addr, "civil-affairs").await?);
    let mut poverty =
        PovertyAlleviationServiceClient::new(office.channel(poverty_app.addr, "poverty-alleviation").await?);

    // An enrolled household of the demo county, as civil affairs has it.
    let village = "220581101201";
    let households = civil
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: village.into() }),
            page: None,
        })
        .await?
        .into_inner()
        .households;
    let dibao = households
        .iter()
        .find(|h| h.status == ca::HouseholdStatus::Enrolled as i32)
        .ok_or_else(|| anyhow::anyhow!("no enrolled household in {village}: run the civil-affairs demo first"))?;
    let head = dibao
        .members
        .iter()
        .find(|m| m.relation == Relation::Head as i32)
        .and_then(|m| m.person.clone())
        .ok_or_else(|| anyhow::anyhow!("household without a head"))?;
    let masked = |p: &Person| {
        p.identity_number
            .as_ref()
            .and_then(|i| dibao_proto::types::IdentityNumber::try_from(i).ok())
            .map(|i| i.masked())
    };
    println!("== 民政低保户：户主{}（{}），户编号{}", head.name, masked(&head).unwrap_or_default(), dibao.household_id);

    println!("== 扶贫部门登记建档立卡户，户主为同一人，另有一名新成员");
    let child = IdentityNumber { value: "220581201003150010".into() };
    let registered = poverty
        .register_household(officer(
            OfficerRole::PovertyOfficer,
            "扶贫专干赵文华",
            "220581101",
            pa::RegisterHouseholdRequest {
                household: Some(pa::PoorHousehold {
                    village: Some(DivisionCode { code: village.into() }),
                    members: vec![
                        RosterMember { person: Some(head.clone()), relation: Relation::Head as i32, covered: false },
                        RosterMember {
                            person: Some(Person {
                                identity_number: Some(child),
                                name: format!("{}小军", head.name.chars().next().unwrap_or('王')),
                                ..Default::default()
                            }),
                            relation: Relation::Child as i32,
                            covered: false,
                        },
                    ],
                    causes: vec![PovertyCause::Illness as i32],
                    ..Default::default()
                }),
            },
        ))
        .await?
        .into_inner()
        .household_id;
    // The dibao households sharing a member are matched at registration
    // from the sync's view of the dibao roster; the flag is the office's
    // to record (R-ROSTER-2), and a later dibao enrolment or exit sets it.
    let started = Instant::now();
    let matched = loop {
        let h = poverty
            .get_household(pa::GetHouseholdRequest { household_id: registered.clone() })
            .await?
            .into_inner()
            .household
            .unwrap_or_default();
        if !h.dibao_household_ids.is_empty() || started.elapsed() > Duration::from_secs(30) {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    anyhow::ensure!(!matched.dibao_household_ids.is_empty(), "the dibao roster's view did not match within 30 s");
    println!(
        "   登记时即比对出该户成员在民政低保户{}中（保障类别{}），来自民政事件同步的低保名单",
        matched.dibao_household_ids.join("、"),
        ["未知", "A类", "B类", "C类"][matched.dibao_category.clamp(0, 3) as usize],
    );
    poverty
        .set_dibao_flag(officer(
            OfficerRole::PovertyOfficer,
            "扶贫专干赵文华",
            "220581101",
            pa::SetDibaoFlagRequest {
                household_id: registered.clone(),
                dibao_registered_poor: true,
                basis: "民政低保名单比对".into(),
            },
        ))
        .await?;
    let flagged = poverty
        .get_household(pa::GetHouseholdRequest { household_id: registered.clone() })
        .await?
        .into_inner()
        .household
        .unwrap_or_default();
    anyhow::ensure!(flagged.dibao_registered_poor, "the office's flag was not recorded");
    // The enrolment may have reached the poverty office after the
    // registration, and set the flag as the sync's before the office did.
    let who = if flagged.flag_recorded_by == "sync" { "民政事件同步" } else { "扶贫部门" };
    println!(
        "   该户已标注为“低保贫困户”：由{who}记录，依据：{}；此后民政纳入或退出低保时由同步自动更新",
        flagged.flag_basis
    );

    println!("== 扶贫部门标注该户2024年脱贫，后因病返贫");
    for (status, cause) in
        [(pa::PovertyStatus::Exited, PovertyCause::Unspecified), (pa::PovertyStatus::Returned, PovertyCause::Illness)]
    {
        poverty
            .change_status(officer(
                OfficerRole::PovertyOfficer,
                "扶贫专干赵文华",
                "220581101",
                pa::ChangeStatusRequest {
                    household_id: registered.clone(),
                    status: status as i32,
                    exit_year: 2024,
                    return_cause: cause as i32,
                },
            ))
            .await?;
    }
    let started = Instant::now();
    let due = loop {
        let due = civil
            .list_reviews_due(ca::ListReviewsDueRequest {
                township: Some(DivisionCode { code: "220581101".into() }),
                as_of: None,
                page: None,
            })
            .await?
            .into_inner()
            .reviews;
        if due.first().is_some_and(|r| r.priority) || started.elapsed() > Duration::from_secs(30) {
            break due;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first = due.first().filter(|r| r.priority).ok_or_else(|| anyhow::anyhow!("no priority review within 30 s"))?;
    println!("   民政复核名单（乡镇220581101）排在第一位的是：户编号{}，{}", first.household_id, first.reason);
    println!("   本页列出待复核{}户，返贫优先户排在最前", due.len());
    Ok(())
}
