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
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation, YearMonth};
use dibao_proto::events::v1::{BenefitCategory, EventEnvelope};
use dibao_tests::{Broker, OfficerChannel, Spawn, TestEnv, claims, officer, spawn_with};
use prost::Message as _;

pub const COUNTY: &str = "220581";
pub const VILLAGE: &str = "220581101201";

pub struct Running {
    /// Civil affairs as the county's office (approver and operator), unless a call names another officer.
    pub client: CivilAffairsServiceClient<OfficerChannel>,
    pub addr: String,
    pub clock: ManualClock,
    pub topic: String,
    pub env: TestEnv,
}

pub async fn start() -> Running {
    let env = TestEnv::start().await;
    let clock = ManualClock::at(time::macros::datetime!(2026-06-10 09:00 UTC));
    let app = spawn_with::<Application>(&env, Spawn::default().clock(Arc::new(clock.clone()))).await;
    // The county's office: approves and operates the roster.
    let county_office = Claims {
        roles: vec![OfficerRole::CountyApprover, OfficerRole::CountyOperator],
        ..claims(OfficerRole::CountyApprover, COUNTY)
    };
    let desk = env
        .desk(startup::SERVICE, OfficerRole::CountyApprover, COUNTY)
        .claims(county_office)
        .clock(Arc::new(clock.clone()));
    Running {
        client: CivilAffairsServiceClient::new(env.officer_channel(app.addr, desk).await),
        addr: app.addr.to_string(),
        clock,
        topic: env.topic(startup::HOUSEHOLD_TOPIC),
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
    // The caseworker of the household's own township.
    let township: String = h.village.as_ref().map(|v| v.code[..9].to_owned()).unwrap_or_default();
    let r = c
        .submit_application(officer(
            OfficerRole::TownshipCaseworker,
            &township,
            SubmitApplicationRequest { household: Some(h), income, supporters: vec![] },
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

/// Publishes the verification hub's `VerificationCompleted` for
/// `household` on the broker, as the hub does when a report is done.
pub async fn deliver_report(r: &Running, household: &str, report_id: &str, complete: bool) {
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
            complete,
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

/// Signs the verification step with `report`, waiting for its event to reach civil affairs.
pub async fn verify_with(r: &mut Running, app: &str, report: &str) -> Result<SignStepResponse, tonic::Status> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let result =
            step(&mut r.client, app, ProcessStep::Verification, OfficerRole::VerificationOfficer, report).await;
        match &result {
            Err(e) if e.message().contains("尚未送达") && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => return result,
        }
    }
}

/// Signs every step up to and including the public notice, the
/// verification with a complete report the hub made for `household`.
pub async fn through_notice(r: &mut Running, app: &str, household: &str) {
    let report = uuid::Uuid::now_v7().to_string();
    deliver_report(r, household, &report, true).await;
    let c = &mut r.client;
    step(c, app, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("home visit");
    step(c, app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "").await.expect("village review");
    verify_with(r, app, &report).await.expect("verification");
    let c = &mut r.client;
    step(c, app, ProcessStep::TownshipReview, OfficerRole::TownshipReviewer, "").await.expect("township review");
    step(c, app, ProcessStep::PublicNotice, OfficerRole::TownshipCaseworker, "").await.expect("notice");
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
