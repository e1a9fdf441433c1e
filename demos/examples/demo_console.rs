//! The last part of the demo (`scripts/demo.sh`): the mesh is left running
//! with the officers' console at the gateway, and this hands the demo
//! county's officers to whoever opens it.
//!
//! Against the running gateway (HTTPS at `DEMO_CONSOLE_ADDR`) and its
//! registry, it bootstraps a second administrator, who puts one new
//! application in the caseworker's work list (submitted through the
//! gateway as the caseworker) and then resets the credentials of each of
//! the demo county's officers through the registry's RPC — as an
//! administrator does for an officer who lost their authenticator — and
//! prints them, with their authenticator secrets: demo only. The logins
//! are also written to `DEMO_LOGINS` (readable by the owner only).
//!
//! Settings as for the `gateway` binary (`GATEWAY__…`).

use std::sync::Arc;

use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::runtime::service::Service;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation};
use dibao_proto::events::v1::BenefitCategory;
use dibao_proto::labels::Label;

mod common;

use common::office as gateway;

/// The demo county's officers, as `demo_county` enrolled them.
const OFFICERS: &[(&str, &str, OfficerRole, &str)] = &[
    ("liu-zhiqiang", "乡镇经办员刘志强", OfficerRole::TownshipCaseworker, "220581101"),
    ("chen-haitao", "村委会主任陈海涛", OfficerRole::VillageCommittee, "220581101201"),
    ("zhou-shuzhen", "核对中心周淑珍", OfficerRole::VerificationOfficer, "220581"),
    ("wu-mingliang", "乡镇审核员吴明亮", OfficerRole::TownshipReviewer, "220581101"),
    ("wang-shenpi", "县民政局审批员王审批", OfficerRole::CountyApprover, "220581"),
    ("zhang-yewu", "县民政局业务员张业务", OfficerRole::CountyOperator, "220581"),
    ("sun-linxian", "邻县经办员孙国庆", OfficerRole::TownshipCaseworker, "220582101"),
];

fn identity(body: &str) -> IdentityNumber {
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(body)) }
}

/// A household of two for the caseworker's home visit.
fn application() -> SubmitApplicationRequest {
    let member = |name: &str, id: IdentityNumber, relation: Relation, ability: WorkAbility| Member {
        person: Some(Person { identity_number: Some(id), name: name.into(), ..Default::default() }),
        relation: relation as i32,
        work_ability: ability as i32,
        covered: true,
        ..Default::default()
    };
    SubmitApplicationRequest {
        household: Some(Household {
            village: Some(DivisionCode { code: "220581101202".into() }),
            category: BenefitCategory::B as i32,
            members: vec![
                member("李春花", identity("22058119580412051"), Relation::Head, WorkAbility::None),
                member("李国庆", identity("22058119881001053"), Relation::Child, WorkAbility::Partial),
            ],
            ..Default::default()
        }),
        income: vec![IncomeItem {
            kind: IncomeKind::Wage as i32,
            label: "儿子零工".into(),
            monthly: Some(Money { fen: 60_000 }),
            ..Default::default()
        }],
        supporters: vec![],
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("DEMO_CONSOLE_ADDR")?;
    let settings = dibao_gateway::Application::settings()?;
    let ca = settings.platform.tls.ca_cert.clone();
    let pool = dibao_platform::store::db::connect(&settings.platform.database).await?;
    let key = dibao_gateway::secrets::SecretKey::load(&settings.own.officers.secret_key)?;
    let office = gateway::Office::open(addr.clone(), ca, Arc::new(SystemClock), (&pool, &key), "admin-console").await?;

    let caseworker = OFFICERS[0].0;
    let channel = office.session(caseworker, &office.reset(caseworker).await?).await?;
    let submitted = CivilAffairsServiceClient::new(channel).submit_application(application()).await?.into_inner();
    println!("   乡镇经办员刘志强受理李春花家的低保申请（{}），待入户调查", submitted.application_id);

    let mut logins = String::from("经办人编号\t姓名\t角色\t辖区\t口令\t动态口令密钥\n");
    println!("\n== 演示用经办人（仅限演示：口令与动态口令密钥在此明文给出）");
    for (id, name, role, division) in OFFICERS {
        // Last, so no login here has used the authenticator's current code.
        let creds = office.reset(id).await?;
        println!("   {name}（{}，辖区{division}）", role.label());
        println!("      经办人编号 {id}   口令 {}   动态口令密钥 {}", creds.one_time_password, creds.totp_secret);
        logins.push_str(&format!(
            "{id}\t{name}\t{}\t{division}\t{}\t{}\n",
            role.label(),
            creds.one_time_password,
            creds.totp_secret
        ));
    }
    if let Ok(path) = std::env::var("DEMO_LOGINS") {
        write_private(&path, &logins)?;
        println!("   （同上，另存于{path}）");
    }
    Ok(())
}

/// `text` to `path`, readable by its owner only.
fn write_private(path: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())
}
