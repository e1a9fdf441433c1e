//! The civil-affairs part of the demo (`scripts/demo.sh`): the real service,
//! against the local stack, for the demo county 220581.
//!
//! It saves the county's policy, imports a generated roster (花名册) with
//! two bad rows to show the per-row errors, takes one application through
//! every signed step and prints the explanation an officer prints for the
//! household. The service runs in this process with a clock the demo moves
//! past the 7-day public notice; everything else is the production path.
//!
//! Every officer logs in at the gateway (password and authenticator code)
//! and every call goes through it: an officer of the neighbouring county is
//! refused on the same household. At the end it prints the application's
//! signed history and the head of household's access history.
//!
//! Settings as for the `civil-affairs` and `gateway` binaries
//! (`CIVIL_AFFAIRS__…`, `GATEWAY__…`).

use std::sync::Arc;

use dibao_civil_affairs::Application;
use dibao_platform::runtime::clock::ManualClock;
use dibao_platform::runtime::server::CallerChannel;
use dibao_platform::runtime::service::Service;
use dibao_platform::runtime::shutdown::Shutdown;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation, YearMonth};
use dibao_proto::events::v1::BenefitCategory;
use dibao_proto::labels::Label;
use dibao_proto::types::Fen;

#[path = "../common/mod.rs"]
mod common;
mod verification;

use common::office as gateway;

const COUNTY: &str = "220581";
const SURNAMES: [&str; 12] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"];
const GIVEN: [&str; 12] =
    ["建国", "秀英", "桂兰", "志强", "玉梅", "德福", "春花", "海涛", "淑珍", "明亮", "小燕", "国庆"];

fn id(birth: &str, seq: u32) -> IdentityNumber {
    let body = format!("{COUNTY}{birth}{:03}", seq % 1000);
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn member(name: String, identity: IdentityNumber, relation: Relation, ability: WorkAbility, covered: bool) -> Member {
    Member {
        person: Some(Person { identity_number: Some(identity), name, sex: 0, birth_date: None }),
        relation: relation as i32,
        work_ability: ability as i32,
        covered,
        ..Default::default()
    }
}

/// Household `n` of the demo roster: a couple, a parent and a child, in one of four villages.
fn roster_household(n: u32) -> Household {
    let s = SURNAMES[(n % 12) as usize];
    let birth = |year: u32| format!("{year}{:02}{:02}", 1 + n % 12, 1 + n % 28);
    Household {
        household_id: format!("220581-{n:05}"),
        village: Some(DivisionCode { code: format!("220581101{:03}", 201 + n % 4) }),
        category: [BenefitCategory::A, BenefitCategory::B, BenefitCategory::C][(n % 3) as usize] as i32,
        members: vec![
            member(
                format!("{s}{}", GIVEN[(n % 12) as usize]),
                id(&birth(1960 + n % 20), n * 4 % 1000),
                Relation::Head,
                WorkAbility::Partial,
                true,
            ),
            member(
                format!("{s}{}", GIVEN[((n + 5) % 12) as usize]),
                id(&birth(1962 + n % 20), (n * 4 + 1) % 1000),
                Relation::Spouse,
                WorkAbility::None,
                true,
            ),
            member(
                format!("{s}{}", GIVEN[((n + 7) % 12) as usize]),
                id(&birth(1935 + n % 10), (n * 4 + 2) % 1000),
                Relation::Parent,
                WorkAbility::None,
                true,
            ),
            member(
                format!("{s}{}", GIVEN[((n + 3) % 12) as usize]),
                id(&birth(2012 + n % 6), (n * 4 + 3) % 1000),
                Relation::Child,
                WorkAbility::None,
                true,
            ),
        ],
        monthly_amount: Some(Money { fen: 80_000 + i64::from(n % 7) * 5_000 }),
        enrolled_on: Some(dibao_proto::common::v1::Date { year: 2024, month: 1 + (n % 12) as i32, day: 1 }),
        ..Default::default()
    }
}

/// The hub as an officer calls it through the gateway.
type Hub = dibao_proto::verification::v1::verification_service_client::VerificationServiceClient<CallerChannel>;
type Civil = CivilAffairsServiceClient<CallerChannel>;

/// Signs `step` of `application` as `by`.
async fn sign(
    by: &gateway::Officer,
    application: &str,
    step: ProcessStep,
    report: &str,
) -> Result<SignStepResponse, tonic::Status> {
    Civil::new(by.channel.clone())
        .sign_step(SignStepRequest {
            application_id: application.to_owned(),
            step: step as i32,
            approve: true,
            remarks: String::new(),
            verification_report_id: report.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Application::settings()?;
    let settings_url = secrecy::ExposeSecret::expose_secret(&settings.platform.database.url).to_owned();
    let certs = settings.platform.tls.ca_cert.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    // Civil affairs and the gateway run in this process on one clock the
    // demo moves past the public notice; everything else is the production path.
    let clock = ManualClock::at(time::OffsetDateTime::now_utc());
    let (stop, shutdown) = Shutdown::new();
    let app = Application::build(settings, Arc::new(clock.clone()), shutdown.clone()).await?;
    let gw_settings = dibao_gateway::Application::settings()?;
    let gw_pool = dibao_platform::store::db::connect_and_migrate(
        &gw_settings.platform.database,
        &[("service", dibao_gateway::startup::MIGRATIONS)],
    )
    .await?;
    let key = dibao_gateway::secrets::SecretKey::load(&gw_settings.own.officers.secret_key)?;
    let gw = dibao_gateway::Application::build(gw_settings, Arc::new(clock.clone()), shutdown).await?;
    println!("== 网关：{}（HTTPS登录；gRPC转发，每次调用附网关签发的经办人身份断言）", gw.addr);
    let office = gateway::Office::open(
        gw.addr.to_string(),
        certs.join("ca.pem"),
        Arc::new(clock.clone()),
        (&gw_pool, &key),
        "admin-220000",
    )
    .await?;
    let approver = office.officer("wang-shenpi", "县民政局审批员王审批", OfficerRole::CountyApprover, COUNTY).await?;
    let operator = office.officer("zhang-yewu", "县民政局业务员张业务", OfficerRole::CountyOperator, COUNTY).await?;
    let caseworker =
        office.officer("liu-zhiqiang", "乡镇经办员刘志强", OfficerRole::TownshipCaseworker, "220581101").await?;
    let committee =
        office.officer("chen-haitao", "村委会主任陈海涛", OfficerRole::VillageCommittee, "220581101201").await?;
    let reviewer =
        office.officer("wu-mingliang", "乡镇审核员吴明亮", OfficerRole::TownshipReviewer, "220581101").await?;
    let checker = office.officer("zhou-shuzhen", "核对中心周淑珍", OfficerRole::VerificationOfficer, COUNTY).await?;
    let neighbour =
        office.officer("sun-linxian", "邻县经办员孙国庆", OfficerRole::TownshipCaseworker, "220582101").await?;
    let now = clock_month(&clock);

    println!("== 县民政局保存{}年低保政策（县{COUNTY}，每人每月500.00元）", now.year);
    let policy = CountyPolicy {
        county: Some(DivisionCode { code: COUNTY.into() }),
        year: now.year,
        effective_from: Some(now),
        dibao_standard_monthly: Some(Money { fen: 50_000 }),
        national_poverty_line_monthly: Some(Money { fen: 35_000 }),
        severe_disability_addition_bp: 2_000,
        serious_illness_addition_bp: 1_000,
        elderly_addition_bp: 1_000,
        minor_addition_bp: 1_000,
        reference_incomes: vec![ReferenceIncome { item: "玉米".into(), monthly: Some(Money { fen: 3_000 }) }],
        minimum_wage_monthly: Some(Money { fen: 170_000 }),
        rural_disposable_income_monthly: Some(Money { fen: 120_000 }),
        supporter_estimate_ratio_bp: 1_000,
        property_thresholds: vec![PropertyThreshold {
            item: PropertyItem::Vehicles as i32,
            limit: 0,
            subject: RuleSubject::HouseholdMembers as i32,
            description: "家庭成员名下无非生产用机动车".into(),
        }],
        gradual_exit_step: GradualExitStep::Monthly as i32,
        full_support_review_months: 12,
        unstable_income_review_months: 6,
        elderly_age: 60,
        // Approval needs every department's answer for every member (R-VER-2).
        required_report_items: dibao_proto::departments::ALL_ITEMS.iter().map(|i| *i as i32).collect(),
        report_valid_days: 90,
        // The numbers every notice prints (R-AUD-2).
        complaint_phone: "0435-4221234".into(),
        township_complaint_phones: vec![dibao_proto::civil_affairs::v1::TownshipPhone {
            township: Some(DivisionCode { code: "220581101".into() }),
            phone: "0435-4301234".into(),
        }],
        // Special hardship at its own standards, not a dibao top-up (R-ELIG-3).
        special_hardship: Some(dibao_proto::civil_affairs::v1::SpecialHardshipStandards {
            basic_living_monthly: Some(Money { fen: 65_000 }),
            care_self_caring_monthly: Some(Money { fen: 10_000 }),
            care_partly_dependent_monthly: Some(Money { fen: 30_000 }),
            care_fully_dependent_monthly: Some(Money { fen: 60_000 }),
        }),
        ..Default::default()
    };
    let saved = Civil::new(approver.channel.clone()).save_policy(SavePolicyRequest { policy: Some(policy) }).await?;
    println!("   {}已保存，按新标准重新核算在保家庭{}户", approver.name, saved.into_inner().recalculated_households);

    println!("== {}导入县低保花名册：200户，另含2行错误数据", operator.name);
    let mut rows: Vec<ImportRosterRequest> =
        (0..200).map(|n| ImportRosterRequest { row: i64::from(n) + 2, household: Some(roster_household(n)) }).collect();
    let mut typo = roster_household(500);
    if let Some(p) = typo.members[1].person.as_mut() {
        p.identity_number = Some(IdentityNumber { value: "22058119620101001".into() });
    }
    rows.push(ImportRosterRequest { row: 202, household: Some(typo) });
    let mut no_head = roster_household(501);
    no_head.members[0].relation = Relation::Child as i32;
    rows.push(ImportRosterRequest { row: 203, household: Some(no_head) });
    let imported = Civil::new(operator.channel.clone()).import_roster(tokio_stream::iter(rows)).await?.into_inner();
    println!("   新增或更新{}户，未变化{}户", imported.households_applied, imported.households_unchanged);
    for e in &imported.errors {
        println!("   第{}行 {}：{}", e.row, e.field, e.message);
    }

    println!("== 新申请：赵家四口（户主务工，母亲年迈，孩子上学）");
    let head = id("19780315", 911);
    let household = Household {
        village: Some(DivisionCode { code: "220581101201".into() }),
        category: BenefitCategory::C as i32,
        members: vec![
            member("赵德福".into(), head.clone(), Relation::Head, WorkAbility::Full, false),
            member("钱玉梅".into(), id("19800520", 922), Relation::Spouse, WorkAbility::Partial, false),
            member("孙桂兰".into(), id("19480808", 932), Relation::Parent, WorkAbility::None, true),
            member("赵小燕".into(), id("20140901", 942), Relation::Child, WorkAbility::None, true),
        ],
        ..Default::default()
    };
    let income = vec![
        IncomeItem {
            kind: IncomeKind::Wage as i32,
            label: "户主外出务工".into(),
            monthly: Some(Money { fen: 110_000 }),
            ..Default::default()
        },
        IncomeItem {
            kind: IncomeKind::Reference as i32,
            label: "玉米4亩".into(),
            reference_item: "玉米".into(),
            units_hundredths: 400,
            ..Default::default()
        },
        IncomeItem {
            kind: IncomeKind::CentralBasicPension as i32,
            label: "母亲基础养老金".into(),
            member: Some(id("19480808", 932)),
            monthly: Some(Money { fen: 10_300 }),
            ..Default::default()
        },
        IncomeItem {
            kind: IncomeKind::IllnessSpending as i32,
            label: "母亲慢性病药费".into(),
            monthly: Some(Money { fen: 15_000 }),
            ..Default::default()
        },
    ];
    let supporters = vec![Supporter {
        name: "赵德贵".into(),
        relation: "母亲的另一子".into(),
        household_per_capita: Some(Money { fen: 80_000 }),
        employed: true,
        ..Default::default()
    }];
    let submitted = Civil::new(caseworker.channel.clone())
        .submit_application(SubmitApplicationRequest { household: Some(household), income, supporters })
        .await?
        .into_inner();
    let app_id = submitted.application_id.clone();
    println!("   {}受理申请，编号{app_id}", caseworker.name);
    println!("== {}查看该户、签署入户调查：", neighbour.name);
    let refused = Civil::new(neighbour.channel.clone())
        .get_household(GetHouseholdRequest { household_id: submitted.household_id.clone() })
        .await
        .expect_err("another county's household");
    println!("   查看被拒绝（{:?}）：{}", refused.code(), refused.message());
    let refused =
        sign(&neighbour, &app_id, ProcessStep::HomeVisit, "").await.expect_err("another county's application");
    println!("   签署被拒绝（{:?}）：{}", refused.code(), refused.message());

    for (step, by) in [(ProcessStep::HomeVisit, &caseworker), (ProcessStep::VillageReview, &committee)] {
        sign(by, &app_id, step, "").await?;
        println!("   {}已签署：{}", step.label(), by.name);
    }

    let mut hub = Hub::new(checker.channel.clone());
    let report_id = verification::verify(&mut hub, &submitted.household_id, &settings_url).await?;
    // Civil affairs reads the report from the hub itself and holds it
    // against the household and the county's policy (R-VER-2).
    let signed = sign(&checker, &app_id, ProcessStep::Verification, &report_id).await?;
    println!("   {}已签署：{}（报告{report_id}）", ProcessStep::Verification.label(), checker.name);
    // What the departments hold beside what the family declared.
    for line in signed.explanation.lines() {
        println!("   {line}");
    }
    verification::campaign(&mut hub, &mut Civil::new(checker.channel.clone()), &settings_url).await?;
    for (step, by) in [(ProcessStep::TownshipReview, &reviewer), (ProcessStep::PublicNotice, &caseworker)] {
        sign(by, &app_id, step, "").await?;
        println!("   {}已签署：{}", step.label(), by.name);
    }
    println!("== 户主赵德福的查询记录（谁查看过本人信息）");
    let url = format!("https://{}/api/access-history", office.addr);
    let (_, body) = dibao_gateway::https::post_json(
        &url,
        Some(&office.ca),
        &serde_json::json!({ "person": head.value, "village": "220581101201" }),
        Some(&approver.token),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let body: serde_json::Value = serde_json::from_slice(&body)?;
    for u in body["unavailable"].as_array().into_iter().flatten() {
        println!(
            "   （{}暂不可用：{}）",
            u["service"].as_str().unwrap_or_default(),
            u["message"].as_str().unwrap_or_default()
        );
    }
    for a in body["accesses"].as_array().into_iter().flatten() {
        println!(
            "   {}  {}  {}  {}{}",
            a["at"].as_str().unwrap_or_default().replace('T', " ").trim_end_matches('Z'),
            a["service"].as_str().unwrap_or_default(),
            match a["officer_id"].as_str().unwrap_or_default() {
                // A system's own read: a whole export, or the hub reading the household it checks.
                "" => format!("系统{}", a["caller"].as_str().unwrap_or_default()),
                officer => format!("经办人{officer}"),
            },
            a["purpose"].as_str().unwrap_or_default(),
            a["items"].as_array().filter(|i| !i.is_empty()).map_or(String::new(), |i| format!(
                "（{}）",
                i.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("、")
            )),
        );
    }
    if let Err(refused) = sign(&approver, &app_id, ProcessStep::CountyApproval, "").await {
        println!("   公示期内提交县级审批被拒绝：{}", refused.message());
    }
    clock.advance(time::Duration::days(7));
    println!("   （七天后，公示期满，无异议；审批员重新登录）");
    let approver = office.again(approver).await?;
    let done = sign(&approver, &app_id, ProcessStep::CountyApproval, "").await?;
    println!(
        "== 县级审批通过，每月低保金{}\n-- 可打印的核算说明 --\n{}",
        Fen(done.monthly_amount.map_or(0, |m| m.fen)),
        done.explanation.replace('。', "。\n")
    );

    let sample = Civil::new(approver.channel.clone())
        .draw_sample(DrawSampleRequest {
            county: Some(DivisionCode { code: COUNTY.into() }),
            percent: 30,
            full_villages: vec![DivisionCode { code: "220581101204".into() }],
        })
        .await?
        .into_inner();
    println!(
        "== 抽查（种子由系统随机产生并记录：{}）：在保{}户，新纳入{}户全查，重点村{}户全查，随机抽取{}户",
        sample.seed, sample.population, sample.new_enrolments, sample.in_full_villages, sample.drawn_at_random
    );

    println!("== 申请的签署记录（谁、以何角色、何时签署；经办人身份由网关断言证明）");
    let history = Civil::new(approver.channel.clone())
        .get_history(GetHistoryRequest { of: Some(get_history_request::Of::ApplicationId(app_id.clone())) })
        .await?
        .into_inner();
    for e in &history.entries {
        let o = e.officer.clone().unwrap_or_default();
        let at = o.signed_at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds + 8 * 3600).ok());
        let role = OfficerRole::try_from(o.role).map_or("", Label::label);
        println!(
            "   {}  {}：{}（{}），断言{}由{}签发，摘要{}",
            at.map(|t| format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute())).unwrap_or_default(),
            e.action,
            o.officer_name,
            role,
            &e.assertion_id.get(..8).unwrap_or(""),
            e.issuer,
            &e.digest.get(..12).unwrap_or("")
        );
    }

    // Upward report (R-AUD-3): this quarter's figures as recorded, then the
    // same report made again from the records, byte for byte. A report
    // reads what was recorded up to 2 s before it is asked.
    clock.advance(time::Duration::seconds(3));
    println!("== 县民政局生成本季度统计报表（只读已记录数据，可按记录重新生成）");
    let mut reports = report_service_client::ReportServiceClient::new(approver.channel.clone());
    let asked = GenerateReportRequest {
        division: Some(DivisionCode { code: COUNTY.into() }),
        period: Some(ReportPeriod { year: now.year, month: 0, quarter: (now.month + 2) / 3 }),
        reproduce_report_id: String::new(),
    };
    let report = reports.generate_report(asked).await?.into_inner().report.unwrap_or_default();
    let t = report.total.clone().unwrap_or_default();
    println!(
        "   {}{}年第{}季度：期末在保{}户{}人；名册导入{}户，审批新纳入{}户{}人，退出{}户；县级审批{}件，其中依据核对报告{}件；受理投诉举报{}件",
        report.division_name,
        now.year,
        (now.month + 2) / 3,
        t.households,
        t.persons,
        t.imported_households,
        t.enrolled_households,
        t.enrolled_persons,
        t.exited_households,
        t.approvals,
        t.approvals_verified,
        t.complaints_received,
    );
    let again = reports
        .generate_report(GenerateReportRequest { reproduce_report_id: report.report_id.clone(), ..Default::default() })
        .await?
        .into_inner();
    println!(
        "   报表{}已保存并发布；按记录重新生成：{}（SHA-256 {}…）",
        report.report_id,
        if again.identical { "与原报表逐字节一致" } else { "与原报表不一致" },
        report.sha256.get(..16).unwrap_or("")
    );

    stop.trigger();
    if let Some(relay) = app.relay {
        let _ = relay.await;
    }
    Ok(())
}

fn clock_month(clock: &ManualClock) -> YearMonth {
    use dibao_platform::runtime::clock::Clock;
    let now = clock.now();
    YearMonth { year: now.year(), month: i32::from(now.month() as u8) }
}
