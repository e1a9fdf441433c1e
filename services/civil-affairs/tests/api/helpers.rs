//! What the civil-affairs tests share: the service started on the harness
//! with a clock the test moves, a county's household and policy, roster
//! rows, and the calls the tests make.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use dibao_civil_affairs::startup::{self, Application};
use dibao_platform::runtime::clock::ManualClock;
use dibao_platform::trust::officer::Claims;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::complaint_service_client::ComplaintServiceClient;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation, YearMonth};
use dibao_proto::department::v1::Item;
use dibao_proto::events::v1::{BenefitCategory, EventEnvelope};
use dibao_proto::verification::v1::Report;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use dibao_test_mesh::verification::{self as mesh, DepartmentSide};
use dibao_tests::{Broker, OfficerChannel, Spawn, TestEnv, claims, officer, spawn_with};
use prost::Message as _;

pub const PROVINCE: &str = "220000";
pub const COUNTY: &str = "220581";
pub const VILLAGE: &str = "220581101201";
/// The items the county's policy asks a report to hold for every member (R-VER-2).
pub const REQUIRED_ITEMS: [Item; 3] = [Item::Vehicles, Item::Property, Item::Deposits];

pub struct Running {
    /// Civil affairs as the county's office (approver and operator), unless a call names another officer.
    pub client: CivilAffairsServiceClient<OfficerChannel>,
    /// Its complaints (R-AUD-2), on the same channel.
    pub complaints: ComplaintServiceClient<OfficerChannel>,
    pub addr: String,
    pub clock: ManualClock,
    pub topic: String,
    /// The verification hub with its adapters and the departments, where started.
    pub checking: Option<Checking>,
    pub env: TestEnv,
}

/// The hub civil affairs reads its reports from, the six adapters and the
/// departments' simulator, all on the test's clock.
pub struct Checking {
    /// The hub, as a verification officer of the province unless a call names another.
    pub hub: VerificationServiceClient<OfficerChannel>,
    pub departments: DepartmentSide,
}

/// Civil affairs alone: no report can be read, so no verification step signed.
pub async fn start() -> Running {
    start_with(false).await
}

/// Civil affairs with the verification hub it reads reports from (R-VER-2).
pub async fn start_verifying() -> Running {
    start_with(true).await
}

async fn start_with(checking: bool) -> Running {
    let env = TestEnv::start().await;
    let clock = ManualClock::at(time::macros::datetime!(2026-06-10 09:00 UTC));
    let options = mesh::Options { households: 2, clock: Some(Arc::new(clock.clone())), ..mesh::Options::default() };
    let hub_port = dibao_tests::free_port();
    let departments = if checking { Some(DepartmentSide::start(&env, &options).await) } else { None };
    let how = match departments {
        Some(_) => mesh::civil_spawn(&options, hub_port),
        None => Spawn::default().clock(Arc::new(clock.clone())),
    };
    let app = spawn_with::<Application>(&env, how).await;
    let checking = match departments {
        Some(departments) => {
            let vars = departments.hub_vars(&env, app.addr, hub_port, &options);
            let hub = mesh::spawn_hub_here(&env, &vars, &options).await;
            let desk =
                env.desk("verification-hub", OfficerRole::VerificationOfficer, PROVINCE).clock(Arc::new(clock.clone()));
            Some(Checking { hub: VerificationServiceClient::new(env.officer_channel(hub, desk).await), departments })
        }
        None => None,
    };
    // The county's office: approves and operates the roster.
    let county_office = Claims {
        roles: vec![OfficerRole::CountyApprover, OfficerRole::CountyOperator],
        ..claims(OfficerRole::CountyApprover, COUNTY)
    };
    let desk = env
        .desk(startup::SERVICE, OfficerRole::CountyApprover, COUNTY)
        .claims(county_office)
        .clock(Arc::new(clock.clone()));
    let channel = env.officer_channel(app.addr, desk).await;
    Running {
        client: CivilAffairsServiceClient::new(channel.clone()),
        complaints: ComplaintServiceClient::new(channel),
        addr: app.addr.to_string(),
        clock,
        topic: env.topic(startup::HOUSEHOLD_TOPIC),
        checking,
        env,
    }
}

/// A valid identity number for a birth date and sequence, check character computed.
pub fn id(birth: &str, seq: &str) -> IdentityNumber {
    let body = format!("{COUNTY}{birth}{seq}");
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

pub fn member(birth: &str, seq: &str, name: &str, relation: Relation, ability: WorkAbility, covered: bool) -> Member {
    Member {
        person: Some(Person { identity_number: Some(id(birth, seq)), name: name.into(), sex: 0, birth_date: None }),
        relation: relation as i32,
        disability_grade: 0,
        serious_illness: false,
        work_ability: ability as i32,
        covered,
        ..Default::default()
    }
}

pub fn household() -> Household {
    Household {
        village: Some(DivisionCode { code: VILLAGE.into() }),
        category: BenefitCategory::C as i32,
        members: vec![
            member("19700101", "001", "王建国", Relation::Head, WorkAbility::Full, false),
            member("19720202", "002", "李秀英", Relation::Spouse, WorkAbility::Partial, false),
            member("19500303", "003", "王老汉", Relation::Parent, WorkAbility::None, true),
            member("20150404", "004", "王小明", Relation::Child, WorkAbility::None, true),
        ],
        ..Default::default()
    }
}

pub fn wage(fen: i64) -> IncomeItem {
    IncomeItem {
        kind: IncomeKind::Wage as i32,
        label: "务工收入".into(),
        monthly: Some(Money { fen }),
        ..Default::default()
    }
}

pub fn policy(standard_fen: i64, year: i32, month: i32) -> CountyPolicy {
    CountyPolicy {
        county: Some(DivisionCode { code: COUNTY.into() }),
        year,
        effective_from: Some(YearMonth { year, month }),
        dibao_standard_monthly: Some(Money { fen: standard_fen }),
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
        required_report_items: REQUIRED_ITEMS.iter().map(|i| *i as i32).collect(),
        complaint_phone: "0435-4221234".into(),
        township_complaint_phones: vec![TownshipPhone {
            township: Some(DivisionCode { code: "220581101".into() }),
            phone: "0435-4301234".into(),
        }],
        ..Default::default()
    }
}

pub async fn save_policy(c: &mut CivilAffairsServiceClient<OfficerChannel>, p: CountyPolicy) -> SavePolicyResponse {
    c.save_policy(officer(OfficerRole::CountyApprover, COUNTY, SavePolicyRequest { policy: Some(p) }))
        .await
        .expect("policy")
        .into_inner()
}

/// Submits an application; returns its id and the household it created.
pub async fn submit(
    c: &mut CivilAffairsServiceClient<OfficerChannel>,
    h: Household,
    income: Vec<IncomeItem>,
) -> (String, String) {
    submit_with_supporters(c, h, income, vec![]).await
}

/// [`submit`], with legal supporters outside the household (R-INC-4).
pub async fn submit_with_supporters(
    c: &mut CivilAffairsServiceClient<OfficerChannel>,
    h: Household,
    income: Vec<IncomeItem>,
    supporters: Vec<Supporter>,
) -> (String, String) {
    // The caseworker of the household's own township.
    let township: String = h.village.as_ref().map(|v| v.code[..9].to_owned()).unwrap_or_default();
    let r = c
        .submit_application(officer(
            OfficerRole::TownshipCaseworker,
            &township,
            SubmitApplicationRequest { household: Some(h), income, supporters },
        ))
        .await
        .expect("submit")
        .into_inner();
    (r.application_id, r.household_id)
}

pub async fn step(
    c: &mut CivilAffairsServiceClient<OfficerChannel>,
    application_id: &str,
    step: ProcessStep,
    role: OfficerRole,
    report: &str,
) -> Result<SignStepResponse, tonic::Status> {
    c.sign_step(officer(
        role,
        VILLAGE,
        SignStepRequest {
            application_id: application_id.into(),
            step: step as i32,
            approve: true,
            remarks: String::new(),
            verification_report_id: report.into(),
        },
    ))
    .await
    .map(tonic::Response::into_inner)
}

/// Publishes a `VerificationCompleted` for `household` on the hub's topic
/// with a raw producer, as a forger with access to the broker would: the
/// event only says a report is ready, and opens nothing by itself.
pub async fn forge_report_event(r: &Running, household: &str, report_id: &str) {
    use dibao_proto::events::v1::{VerificationCompleted, event_envelope::Payload};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let topic = r.topic.replace(startup::HOUSEHOLD_TOPIC, dibao_proto::topics::VERIFICATION_REPORT.0);
    let envelope = EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: "dibao.events.v1.VerificationCompleted".into(),
        aggregate_type: "verification.household".into(),
        aggregate_key: household.into(),
        aggregate_version: 1,
        producer: "verification-hub".into(),
        payload: Some(Payload::VerificationCompleted(VerificationCompleted {
            report_id: report_id.into(),
            report_version: 1,
            household_id: household.into(),
            completed_at: None,
            complete: true,
            finding_count: 0,
        })),
        ..Default::default()
    };
    let producer: FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", r.env.broker.address()).create().expect("producer");
    producer
        .send(FutureRecord::to(&topic).key(household).payload(&envelope.encode_to_vec()), Duration::from_secs(10))
        .await
        .expect("report event delivered");
}

/// Household `household` as civil affairs holds it.
pub async fn household_of(r: &mut Running, household: &str) -> Household {
    r.client
        .get_household(GetHouseholdRequest { household_id: household.into() })
        .await
        .expect("household")
        .into_inner()
        .household
        .expect("household")
}

/// Each member's number, name and relation, as a consent's signatories.
pub fn signatories(h: &Household) -> Vec<(IdentityNumber, String, Relation)> {
    h.members
        .iter()
        .filter_map(|m| {
            let p = m.person.as_ref()?;
            Some((p.identity_number.clone()?, p.name.clone(), Relation::try_from(m.relation).ok()?))
        })
        .collect()
}

/// The hub's report on `persons` of household `household`, checked for
/// `items` under its county's thresholds, under a consent they signed
/// today (the test's clock).
pub async fn report_on(
    r: &mut Running,
    household: &str,
    persons: &[(IdentityNumber, String, Relation)],
    items: &[Item],
) -> Report {
    report_with_relatives(r, household, persons, &[], items).await
}

/// [`report_on`], with `relatives` outside the household signing the
/// consent as close relatives and checked too.
pub async fn report_with_relatives(
    r: &mut Running,
    household: &str,
    persons: &[(IdentityNumber, String, Relation)],
    relatives: &[(IdentityNumber, String, Relation)],
    items: &[Item],
) -> Report {
    let today = dibao_platform::runtime::clock::china_date(dibao_platform::runtime::clock::Clock::now(&r.clock));
    let (persons, relatives) = (borrowed(persons), borrowed(relatives));
    let checking = r.checking.as_mut().expect("started with the hub (start_verifying)");
    mesh::checked(&mut checking.hub, household, &persons, &relatives, items, today, "低保申请审核").await
}

fn borrowed(list: &[(IdentityNumber, String, Relation)]) -> Vec<mesh::Signer<'_>> {
    list.iter().map(|(id, name, relation)| (id.clone(), name.as_str(), *relation)).collect()
}

/// A complete report on every member of `household` for the county's required items.
pub async fn verified(r: &mut Running, household: &str) -> Report {
    let members = signatories(&household_of(r, household).await);
    let report = report_on(r, household, &members, &REQUIRED_ITEMS).await;
    assert!(report.complete, "{}", report.summary);
    report
}

/// Signs every step up to and including the public notice, the
/// verification on a complete report the hub made for `household`; that report.
pub async fn through_notice(r: &mut Running, app: &str, household: &str) -> Report {
    let report = verified(r, household).await;
    let c = &mut r.client;
    step(c, app, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("home visit");
    step(c, app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "").await.expect("village review");
    step(c, app, ProcessStep::Verification, OfficerRole::VerificationOfficer, &report.report_id)
        .await
        .expect("verification");
    step(c, app, ProcessStep::TownshipReview, OfficerRole::TownshipReviewer, "").await.expect("township review");
    step(c, app, ProcessStep::PublicNotice, OfficerRole::TownshipCaseworker, "").await.expect("notice");
    report
}

pub async fn export_notice(
    c: &mut CivilAffairsServiceClient<OfficerChannel>,
    division: &str,
    kind: NoticeKind,
    format: FileFormat,
) -> Result<ExportPublicNoticeResponse, tonic::Status> {
    c.export_public_notice(ExportPublicNoticeRequest {
        division: Some(DivisionCode { code: division.into() }),
        kind: kind as i32,
        format: format as i32,
    })
    .await
    .map(tonic::Response::into_inner)
}

/// Every household event on the topic, read from the beginning for a few seconds.
pub fn household_events(broker: &Broker, topic: &str) -> Vec<(String, EventEnvelope)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.address())
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.push((key, EventEnvelope::decode(m.payload().unwrap_or_default()).expect("envelope")));
        }
    }
    out
}

pub fn roster_row(row: i64, source: &str, h: Household, amount_fen: i64) -> ImportRosterRequest {
    ImportRosterRequest {
        row,
        household: Some(Household {
            household_id: source.into(),
            monthly_amount: Some(Money { fen: amount_fen }),
            enrolled_on: Some(dibao_proto::common::v1::Date { year: 2025, month: 3, day: 1 }),
            ..h
        }),
    }
}

pub fn renumbered(birth: &str, first_seq: usize) -> Household {
    let mut h = household();
    for (i, m) in h.members.iter_mut().enumerate() {
        m.person.as_mut().expect("person").identity_number = Some(id(birth, &format!("{:03}", first_seq + i)));
    }
    h
}

/// A record of the disability federation's or medical insurance's system
/// on `person`, current to `as_of`.
pub fn health_record(
    (department, item): (dibao_proto::department::v1::Department, Item),
    person: &IdentityNumber,
    record_id: &str,
    (amount_fen, quantity): (i64, i64),
    attrs: &[(&str, &str)],
    as_of: time::Date,
) -> dibao_synthetic::generator::DeptRecord {
    use dibao_proto::department::v1::Department;
    dibao_synthetic::generator::DeptRecord {
        department,
        item,
        person: person.value.clone(),
        record_id: record_id.into(),
        source: if department == Department::DisabilityFederation {
            "全国残疾人人口基础数据库"
        } else {
            "医疗保障信息平台"
        }
        .into(),
        as_of,
        amount_fen,
        quantity,
        attrs: attrs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    }
}
