//! Civil affairs through its real path: gRPC over mTLS, real Postgres, the
//! real broker. Rules cited by id from DOMAIN.md.

use std::sync::Arc;
use std::time::Duration;

use dibao_civil_affairs::startup::{self, Application};
use dibao_platform::runtime::clock::{Clock, ManualClock};
use dibao_platform::runtime::server::connect;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation, YearMonth};
use dibao_proto::events::v1::{BenefitCategory, EventEnvelope, event_envelope::Payload};
use dibao_tests::{Broker, Spawn, TestEnv, officer, spawn_with};
use prost::Message as _;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const COUNTY: &str = "220581";
const VILLAGE: &str = "220581101201";

struct Running {
    client: CivilAffairsServiceClient<Channel>,
    addr: String,
    clock: ManualClock,
    topic: String,
    env: TestEnv,
}

async fn start() -> Running {
    let env = TestEnv::start().await;
    let clock = ManualClock::at(time::macros::datetime!(2026-06-10 09:00 UTC));
    let app = spawn_with::<Application>(&env, Spawn::default().clock(Arc::new(clock.clone()))).await;
    Running {
        client: CivilAffairsServiceClient::new(app.channel(&env, "gateway").await),
        addr: app.addr.to_string(),
        clock,
        topic: env.topic(startup::HOUSEHOLD_TOPIC),
        env,
    }
}

/// A valid identity number for a birth date and sequence, check character computed.
fn id(birth: &str, seq: &str) -> IdentityNumber {
    let body = format!("{COUNTY}{birth}{seq}");
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn member(birth: &str, seq: &str, name: &str, relation: Relation, ability: WorkAbility, covered: bool) -> Member {
    Member {
        person: Some(Person { identity_number: Some(id(birth, seq)), name: name.into(), sex: 0, birth_date: None }),
        relation: relation as i32,
        disability_grade: 0,
        serious_illness: false,
        work_ability: ability as i32,
        covered,
    }
}

fn household() -> Household {
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

fn wage(fen: i64) -> IncomeItem {
    IncomeItem {
        kind: IncomeKind::Wage as i32,
        label: "务工收入".into(),
        monthly: Some(Money { fen }),
        ..Default::default()
    }
}

fn policy(standard_fen: i64, year: i32, month: i32) -> CountyPolicy {
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

async fn save_policy(c: &mut CivilAffairsServiceClient<Channel>, p: CountyPolicy) -> SavePolicyResponse {
    c.save_policy(SavePolicyRequest { policy: Some(p), signature: officer(OfficerRole::CountyApprover, COUNTY) })
        .await
        .expect("policy")
        .into_inner()
}

/// Submits an application; returns its id and the household it created.
async fn submit(c: &mut CivilAffairsServiceClient<Channel>, h: Household, income: Vec<IncomeItem>) -> (String, String) {
    let r = c
        .submit_application(SubmitApplicationRequest {
            household: Some(h),
            income,
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
            supporters: vec![],
        })
        .await
        .expect("submit")
        .into_inner();
    (r.application_id, r.household_id)
}

async fn step(
    c: &mut CivilAffairsServiceClient<Channel>,
    application_id: &str,
    step: ProcessStep,
    role: OfficerRole,
    report: &str,
) -> Result<SignStepResponse, tonic::Status> {
    c.sign_step(SignStepRequest {
        application_id: application_id.into(),
        step: step as i32,
        approve: true,
        remarks: String::new(),
        verification_report_id: report.into(),
        signature: officer(role, VILLAGE),
    })
    .await
    .map(tonic::Response::into_inner)
}

/// Publishes the verification hub's `VerificationCompleted` for
/// `household` on the broker, as the hub does when a report is done.
async fn deliver_report(r: &Running, household: &str, report_id: &str, complete: bool) {
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
async fn verify_with(r: &mut Running, app: &str, report: &str) -> Result<SignStepResponse, tonic::Status> {
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
async fn through_notice(r: &mut Running, app: &str, household: &str) {
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

async fn export_notice(
    c: &mut CivilAffairsServiceClient<Channel>,
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
fn household_events(broker: &Broker, topic: &str) -> Vec<(String, EventEnvelope)> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_process_enrols_the_household_and_publishes_it_once() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;

    // Out of order: the village review cannot come before the home visit (R-PROC-1).
    let e = step(&mut r.client, &app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "")
        .await
        .expect_err("order");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("当前应办理“入户调查”"), "{}", e.message());

    through_notice(&mut r, &app, &hh).await;

    // The notice list (R-PROC-3): names, size, income, proposed amount;
    // the identity number masked, health details absent.
    let notice = export_notice(&mut r.client, VILLAGE, NoticeKind::Applicants, FileFormat::Csv).await.expect("notice");
    assert_eq!(notice.households, 1);
    assert!(notice.filename.ends_with(".csv"), "{}", notice.filename);
    let csv = String::from_utf8(notice.content).expect("utf-8");
    let head_id = id("19700101", "001").value;
    assert!(
        csv.contains(&format!(
            "1,{VILLAGE},王建国,{}********{},4,300.00,低保C类,500.00",
            &head_id[..6],
            &head_id[14..]
        )),
        "{csv}"
    );
    assert!(!csv.contains(&head_id) && !csv.contains("残疾") && !csv.contains("疾病"), "{csv}");
    let e = export_notice(&mut r.client, VILLAGE, NoticeKind::Unspecified, FileFormat::Csv).await.expect_err("kind");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "kind");

    // During the 7-day notice, approval is refused (R-PROC-1).
    let e = step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "")
        .await
        .expect_err("notice");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("公示期为7天") && e.message().contains("2026-06-17"), "{}", e.message());

    // An objection holds approval until it is resolved.
    let objection = r
        .client
        .record_objection(RecordObjectionRequest {
            application_id: app.clone(),
            text: "村民反映该户有外出务工收入未申报".into(),
            resolved: false,
            objection_id: String::new(),
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
        })
        .await
        .expect("objection")
        .into_inner()
        .objection_id;
    r.clock.advance(time::Duration::days(8));
    let e = step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "")
        .await
        .expect_err("objection");
    assert!(e.message().contains("1条异议尚未处理"), "{}", e.message());
    r.client
        .record_objection(RecordObjectionRequest {
            application_id: app.clone(),
            text: "经入户核实，务工收入已如实申报".into(),
            resolved: true,
            objection_id: objection,
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
        })
        .await
        .expect("resolve");

    let approved =
        step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "").await.expect("approve");
    // (500.00 - 1200.00 / 4) x 2 covered + elderly 50.00 + minor 50.00 = 500.00.
    assert_eq!(approved.monthly_amount, Some(Money { fen: 50_000 }));
    assert_eq!(approved.next_step, ProcessStep::Enrolment as i32);
    assert!(approved.explanation.contains("每月低保金合计500.00元"), "{}", approved.explanation);

    let events = household_events(&r.env.broker, &r.topic);
    let enrolled: Vec<_> =
        events.iter().filter(|(_, e)| matches!(e.payload, Some(Payload::HouseholdEnrolled(_)))).collect();
    assert_eq!(enrolled.len(), 1, "one enrolment event: {events:?}");
    let (key, envelope) = enrolled[0];
    let Some(Payload::HouseholdEnrolled(ev)) = &envelope.payload else { unreachable!("filtered above") };
    assert_eq!(key, &ev.household_id, "keyed by household");
    assert_eq!(ev.monthly_amount, Some(Money { fen: 50_000 }));
    assert_eq!(ev.members.iter().filter(|m| m.covered).count(), 2);

    let h = r
        .client
        .get_household(GetHouseholdRequest { household_id: ev.household_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .household
        .expect("household");
    assert_eq!(h.status, HouseholdStatus::Enrolled as i32);
    assert_eq!(h.monthly_amount, Some(Money { fen: 50_000 }));
    // Once enrolled the household leaves the applicants' notice for the long-term one.
    let applicants = export_notice(&mut r.client, COUNTY, NoticeKind::Applicants, FileFormat::Csv).await.expect("csv");
    assert_eq!(applicants.households, 0);
    let long_term = export_notice(&mut r.client, COUNTY, NoticeKind::Enrolled, FileFormat::Xlsx).await.expect("xlsx");
    assert_eq!(long_term.households, 1);
    assert!(long_term.filename.ends_with(".xlsx") && long_term.content.starts_with(b"PK"), "{}", long_term.filename);

    // A new standard from July recalculates the household (R-ELIG-4):
    // (600.00 - 300.00) x 2 + 60.00 + 60.00 = 720.00.
    let saved = save_policy(&mut r.client, policy(60_000, 2026, 7)).await;
    assert_eq!(saved.recalculated_households, 1);
    let h = r
        .client
        .get_household(GetHouseholdRequest { household_id: ev.household_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .household
        .expect("household");
    assert_eq!(h.monthly_amount, Some(Money { fen: 72_000 }));
    let events = household_events(&r.env.broker, &r.topic);
    let changed: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match &e.payload {
            Some(Payload::HouseholdAmountChanged(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].monthly_amount, Some(Money { fen: 72_000 }));
    assert_eq!(changed[0].effective_month, Some(YearMonth { year: 2026, month: 7 }));

    // The same people cannot be put into a second household (R-ROSTER-4).
    let e = r
        .client
        .submit_application(SubmitApplicationRequest {
            household: Some(household()),
            income: vec![],
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
            supporters: vec![],
        })
        .await
        .expect_err("twice");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("household.members[0]"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_is_wrong() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;

    // A bad identity number: the field is named, in the message and in BadRequest.
    let mut bad = household();
    bad.members[1].person.as_mut().expect("person").identity_number =
        Some(IdentityNumber { value: "220581197202020021".into() });
    let e = r
        .client
        .submit_application(SubmitApplicationRequest {
            household: Some(bad),
            income: vec![],
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
            supporters: vec![],
        })
        .await
        .expect_err("bad id");
    assert_eq!(e.code(), Code::InvalidArgument);
    let details = e.get_details_bad_request().expect("details");
    assert_eq!(details.field_violations[0].field, "household.members[1].person.identity_number");
    assert!(details.field_violations[0].description.contains("校验位"), "{details:?}");

    // A single-person household outside the three exceptions (R-ROSTER-4).
    let mut single = household();
    single.members.truncate(1);
    let e = r
        .client
        .submit_application(SubmitApplicationRequest {
            household: Some(single),
            income: vec![],
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
            supporters: vec![],
        })
        .await
        .expect_err("single");
    assert_eq!(
        e.get_details_bad_request().expect("details").field_violations[0].field,
        "household.single_person_reason"
    );

    // A policy excluding for what non-members own (R-ELIG-2).
    let mut forbidden = policy(50_000, 2026, 5);
    forbidden.property_thresholds[0].subject = RuleSubject::NonMembers as i32;
    let e = r
        .client
        .save_policy(SavePolicyRequest {
            policy: Some(forbidden),
            signature: officer(OfficerRole::CountyApprover, COUNTY),
        })
        .await
        .expect_err("forbidden");
    assert_eq!(
        e.get_details_bad_request().expect("details").field_violations[0].field,
        "policy.property_thresholds[0]"
    );
    assert!(e.message().contains("R-ELIG-2"));

    // Category B covering one member of four (R-BEN-2).
    let mut b = household();
    b.category = BenefitCategory::B as i32;
    b.members[3].covered = false;
    let e = r
        .client
        .assess_household(AssessHouseholdRequest {
            household: Some(b),
            income: vec![wage(120_000)],
            ..Default::default()
        })
        .await
        .expect_err("one covered");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "covered");

    let (app, hh) = submit(&mut r.client, household(), vec![wage(120_000)]).await;
    // An unsigned step (R-PROC-2).
    let e = r
        .client
        .sign_step(SignStepRequest {
            application_id: app.clone(),
            step: ProcessStep::HomeVisit as i32,
            approve: true,
            signature: None,
            ..Default::default()
        })
        .await
        .expect_err("unsigned");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "signature");
    // Signed by the wrong role.
    let e = step(&mut r.client, &app, ProcessStep::HomeVisit, OfficerRole::CountyApprover, "").await.expect_err("role");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "signature.role");
    // Verification without a report (R-VER-2): approval can never be reached without one.
    step(&mut r.client, &app, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("visit");
    step(&mut r.client, &app, ProcessStep::VillageReview, OfficerRole::VillageCommittee, "").await.expect("review");
    let e = step(&mut r.client, &app, ProcessStep::Verification, OfficerRole::VerificationOfficer, "")
        .await
        .expect_err("no report");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "verification_report_id");
    // A report the hub never made, one about another household, an incomplete one (R-VER-2).
    let e = step(
        &mut r.client,
        &app,
        ProcessStep::Verification,
        OfficerRole::VerificationOfficer,
        "0190f5c2-0000-7000-8000-00000000b001",
    )
    .await
    .expect_err("unknown report");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(e.message().contains("尚未送达"), "{}", e.message());
    deliver_report(&r, "0190f5c2-0000-7000-8000-0000000000ff", "0190f5c2-0000-7000-8000-00000000b002", true).await;
    let e = verify_with(&mut r, &app, "0190f5c2-0000-7000-8000-00000000b002").await.expect_err("other household");
    assert!(e.message().contains("不是本申请的家庭"), "{}", e.message());
    deliver_report(&r, &hh, "0190f5c2-0000-7000-8000-00000000b003", false).await;
    let e = verify_with(&mut r, &app, "0190f5c2-0000-7000-8000-00000000b003").await.expect_err("incomplete");
    assert!(e.message().contains("不完整"), "{}", e.message());

    // Nothing refused left a trace: no household event was published.
    assert!(household_events(&r.env.broker, &r.topic).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assessment_explains_every_line_in_chinese() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let a = r
        .client
        .assess_household(AssessHouseholdRequest {
            household: Some(household()),
            income: vec![
                wage(120_000),
                IncomeItem {
                    kind: IncomeKind::CentralBasicPension as i32,
                    label: "基础养老金".into(),
                    monthly: Some(Money { fen: 10_300 }),
                    ..Default::default()
                },
            ],
            month: Some(YearMonth { year: 2026, month: 6 }),
            ..Default::default()
        })
        .await
        .expect("assess")
        .into_inner();
    assert!(a.eligible);
    assert_eq!(a.per_capita_income, Some(Money { fen: 30_000 }));
    assert_eq!(a.monthly_amount, Some(Money { fen: 50_000 }));
    assert_eq!(a.lines[1].treatment, "excluded");
    assert_eq!(a.lines[1].rule_id, "R-INC-2");
    assert!(a.explanation.contains("不计入收入：基础养老金103.00元"), "{}", a.explanation);
}

#[tokio::test]
async fn the_binary_answers_health_and_reflection_over_mtls() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let env = TestEnv::start().await;
    let port = dibao_tests::free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_civil-affairs"))
        .envs(env.vars("civil-affairs"))
        .env("CIVIL_AFFAIRS__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn civil-affairs");
    let tls = env.tls("ops");
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(c) = connect(&tls, &format!("127.0.0.1:{port}"), "localhost").await {
            channel = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = channel.expect("civil-affairs listening");
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: "dibao.civil_affairs.v1.CivilAffairsService".into() })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(channel.clone())
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("reflection")
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            stream.message().await.expect("message").and_then(|m| m.message_response)
        else {
            panic!("reflection did not list services");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.iter().any(|n| n == "dibao.civil_affairs.v1.CivilAffairsService"), "{names:?}");
    }
    let mut ops = dibao_proto::ops::v1::ops_service_client::OpsServiceClient::new(channel);
    let status = ops.get_pipeline_status(dibao_proto::ops::v1::GetPipelineStatusRequest {}).await.expect("ops");
    assert_eq!(status.into_inner().outbox_pending, 0);
    let pid = child.id().expect("pid");
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill").success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stops").expect("status");
    assert!(exit.success(), "graceful stop: {exit:?}");
}

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

fn roster_row(row: i64, source: &str, h: Household, amount_fen: i64) -> ImportRosterRequest {
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

fn renumbered(birth: &str, first_seq: usize) -> Household {
    let mut h = household();
    for (i, m) in h.members.iter_mut().enumerate() {
        m.person.as_mut().expect("person").identity_number = Some(id(birth, &format!("{:03}", first_seq + i)));
    }
    h
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_are_reproducible_and_cover_full_villages_and_new_enrolments() {
    let mut r = start().await;
    // Ten enrolled households: seven in village 201, three in village 202.
    let rows: Vec<ImportRosterRequest> = (0..10)
        .map(|i| {
            let mut h = renumbered(&format!("{}0101", 1960 + i), 61);
            if i >= 7 {
                h.village = Some(DivisionCode { code: "220581101202".into() });
            }
            roster_row(i64::from(i) + 1, &format!("HH-{i:03}"), h, 30_000)
        })
        .collect();
    let imported = r.client.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert_eq!(imported.households_applied, 10, "{:?}", imported.errors);

    let request = |seed: u64, percent: i32| DrawSampleRequest {
        county: Some(DivisionCode { code: COUNTY.into() }),
        percent,
        full_villages: vec![DivisionCode { code: "220581101202".into() }],
        seed,
        new_since: Some(dibao_proto::common::v1::Date { year: 2026, month: 1, day: 1 }),
        signature: officer(OfficerRole::CountyApprover, COUNTY),
    };
    let a = r.client.draw_sample(request(42, 30)).await.expect("sample").into_inner();
    // Village 202 in full (3), and 30 % of the other seven rounded up (3).
    assert_eq!((a.population, a.in_full_villages, a.new_enrolments, a.drawn_at_random), (10, 3, 0, 3));
    assert_eq!(a.household_ids.len(), 6);
    let b = r.client.draw_sample(request(42, 30)).await.expect("sample").into_inner();
    assert_eq!(a.household_ids, b.household_ids, "the recorded seed draws the same households");
    assert_ne!(a.sample_id, b.sample_id, "each draw is recorded");

    let chosen = r.client.draw_sample(request(0, 30)).await.expect("sample").into_inner();
    assert_ne!(chosen.seed, 0, "the service picks and returns a seed");

    let e = r.client.draw_sample(request(42, 29)).await.expect_err("below 30 %");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "percent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deaths_reach_the_roster_and_exits_follow_the_signed_path() {
    let mut r = start().await;
    let mut clergy = renumbered("19550101", 71);
    clergy.members.truncate(1);
    clergy.single_person_reason = SinglePersonReason::Clergy as i32;
    clergy.clergy_years_in_site = 5;
    clergy.category = BenefitCategory::A as i32;
    let rows = vec![roster_row(1, "HH-001", household(), 50_000), roster_row(2, "HH-002", clergy, 50_000)];
    let imported = r.client.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert_eq!(imported.households_applied, 2, "{:?}", imported.errors);
    let death = |person: IdentityNumber| RecordDeathRequest {
        identity_number: Some(person),
        died_on: Some(dibao_proto::common::v1::Date { year: 2026, month: 6, day: 1 }),
        source: "公安死亡登记 2026-0601-17".into(),
        signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
    };

    // The grandfather dies: the event goes out, the household stays.
    let grandfather = id("19500303", "003");
    let d = r.client.record_death(death(grandfather.clone())).await.expect("death").into_inner();
    assert!(d.exit_application_id.is_empty(), "three members remain");
    let e = r.client.record_death(death(grandfather.clone())).await.expect_err("twice");
    assert_eq!(e.code(), Code::NotFound);

    // The household's income rose: exit through home visit, township review, county approval.
    let e = r
        .client
        .start_exit(StartExitRequest {
            household_id: d.household_id.clone(),
            reason: 0,
            remarks: String::new(),
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
        })
        .await
        .expect_err("no reason");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "reason");
    let exit = r
        .client
        .start_exit(StartExitRequest {
            household_id: d.household_id.clone(),
            reason: dibao_proto::events::v1::ExitReason::Income as i32,
            remarks: "儿子稳定就业，家庭人均收入超过标准".into(),
            signature: officer(OfficerRole::TownshipCaseworker, "220581101"),
        })
        .await
        .expect("exit")
        .into_inner()
        .application_id;
    let e = step(&mut r.client, &exit, ProcessStep::TownshipReview, OfficerRole::TownshipReviewer, "")
        .await
        .expect_err("order");
    assert!(e.message().contains("当前应办理“入户调查”"), "{}", e.message());
    step(&mut r.client, &exit, ProcessStep::HomeVisit, OfficerRole::TownshipCaseworker, "").await.expect("visit");
    step(&mut r.client, &exit, ProcessStep::TownshipReview, OfficerRole::TownshipReviewer, "").await.expect("review");
    let done = step(&mut r.client, &exit, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "")
        .await
        .expect("approve");
    assert_eq!(done.next_step, ProcessStep::Exit as i32);
    let h = r
        .client
        .get_household(GetHouseholdRequest { household_id: d.household_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .household
        .expect("household");
    assert_eq!(h.status, HouseholdStatus::Exited as i32);
    assert_eq!(h.monthly_amount, Some(Money { fen: 0 }));

    // The only member of a single-person household dies: its exit starts.
    let monk = id("19550101", "071");
    let d2 = r.client.record_death(death(monk)).await.expect("death").into_inner();
    assert!(!d2.exit_application_id.is_empty());

    let events = household_events(&r.env.broker, &r.topic);
    let deceased: Vec<_> = events
        .iter()
        .filter_map(|(k, e)| match &e.payload {
            Some(Payload::MemberDeceased(m)) => Some((k.clone(), m.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(deceased.len(), 2);
    // Events of different households sit on different partitions: find, don't index.
    let (key, _) =
        deceased.iter().find(|(_, m)| m.identity_number.as_ref() == Some(&grandfather)).expect("grandfather");
    assert_eq!(key, &d.household_id, "keyed by household");
    let exited: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match &e.payload {
            Some(Payload::HouseholdExited(x)) => Some(x.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(exited.len(), 1);
    assert_eq!(exited[0].reason, dibao_proto::events::v1::ExitReason::Income as i32);
    assert_eq!(exited[0].members.len(), 4);
}

/// Submits and signs every step through county approval; returns the household id.
async fn enrolled(r: &mut Running, h: Household, income: Vec<IncomeItem>) -> String {
    let (app, hh) = submit(&mut r.client, h, income).await;
    through_notice(r, &app, &hh).await;
    r.clock.advance(time::Duration::days(8));
    step(&mut r.client, &app, ProcessStep::CountyApproval, OfficerRole::CountyApprover, "").await.expect("approve");
    let households = r
        .client
        .list_households(ListHouseholdsRequest { division: Some(DivisionCode { code: VILLAGE.into() }), page: None })
        .await
        .expect("list")
        .into_inner()
        .households;
    // The household whose application this was: the only one enrolled today.
    let today = r.clock.now().date();
    households
        .into_iter()
        .find(|h| {
            h.enrolled_on.is_some_and(|d| {
                (d.year, d.month, d.day) == (today.year(), today.month() as i32, i32::from(today.day()))
            })
        })
        .map(|h| h.household_id)
        .expect("enrolled")
}

fn project(fen: i64) -> IncomeItem {
    IncomeItem {
        kind: IncomeKind::PovertyProject as i32,
        label: "扶贫车间务工".into(),
        monthly: Some(Money { fen }),
        ..Default::default()
    }
}

async fn reviews_due(r: &mut Running, as_of: (i32, i32, i32)) -> Vec<ReviewDue> {
    r.client
        .list_reviews_due(ListReviewsDueRequest {
            township: Some(DivisionCode { code: "220581101".into() }),
            as_of: Some(dibao_proto::common::v1::Date { year: as_of.0, month: as_of.1, day: as_of.2 }),
            page: None,
        })
        .await
        .expect("reviews due")
        .into_inner()
        .reviews
}

async fn review(
    r: &mut Running,
    household_id: &str,
    income: Vec<IncomeItem>,
) -> Result<RecordReviewResponse, tonic::Status> {
    r.client
        .record_review(RecordReviewRequest {
            household_id: household_id.into(),
            income,
            supporters: vec![],
            property_findings: vec![],
            remarks: "入户复核".into(),
            signature: officer(OfficerRole::TownshipReviewer, "220581101"),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn apply_month(r: &mut Running, year: i32, month: i32) -> ApplyMonthResponse {
    r.client
        .apply_month(ApplyMonthRequest {
            county: Some(DivisionCode { code: COUNTY.into() }),
            month: Some(YearMonth { year, month }),
        })
        .await
        .expect("apply month")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_fall_due_raise_lower_or_stop_the_benefit_and_gradual_exits_step_down() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let id = enrolled(&mut r, household(), vec![wage(120_000)]).await;

    // Members able to work: due six months after enrolment on 2026-06-18 (R-REV-1).
    assert!(reviews_due(&mut r, (2026, 12, 17)).await.is_empty());
    let due = reviews_due(&mut r, (2026, 12, 31)).await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].household_id, id);
    assert_eq!(due[0].due_on, Some(dibao_proto::common::v1::Date { year: 2026, month: 12, day: 18 }));
    assert!(due[0].reason.contains("有劳动能力"), "{}", due[0].reason);
    assert_eq!(due[0].head.as_ref().map(|p| p.name.as_str()), Some("王建国"));

    // Only township officers sign a review; the field is named.
    r.clock.advance(time::Duration::days(185));
    let e = r
        .client
        .record_review(RecordReviewRequest {
            household_id: id.clone(),
            signature: officer(OfficerRole::VillageCommittee, VILLAGE),
            ..Default::default()
        })
        .await
        .expect_err("village signs");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "signature.role");

    // More wages lower the amount: (500.00 - 1600.00 / 4) x 2 + 50.00 + 50.00 = 300.00.
    let lowered = review(&mut r, &id, vec![wage(160_000)]).await.expect("review");
    assert_eq!(lowered.outcome, ReviewOutcome::Lowered as i32);
    assert_eq!(lowered.monthly_amount, Some(Money { fen: 30_000 }));
    assert_eq!(lowered.next_due_on, Some(dibao_proto::common::v1::Date { year: 2027, month: 6, day: 20 }));
    assert!(reviews_due(&mut r, (2026, 12, 31)).await.is_empty(), "reviewed, no longer due");

    // Project income lifts per-capita income to 600.00, above the standard
    // but below twice it: 18 months stepping down monthly from 300.00 (R-BEN-4).
    let gradual = review(&mut r, &id, vec![project(240_000)]).await.expect("review");
    assert_eq!(gradual.outcome, ReviewOutcome::GradualExit as i32);
    assert_eq!(gradual.monthly_amount, Some(Money { fen: 30_000 }));
    assert!(gradual.explanation.contains("继续享受低保18个月"), "{}", gradual.explanation);
    assert_eq!(apply_month(&mut r, 2026, 12).await, ApplyMonthResponse { stepped_down: 0, exited: 0 });
    // Month 2 pays 300.00 x 17 / 18 = 283.33.
    assert_eq!(apply_month(&mut r, 2027, 1).await, ApplyMonthResponse { stepped_down: 1, exited: 0 });
    assert_eq!(apply_month(&mut r, 2027, 1).await, ApplyMonthResponse { stepped_down: 0, exited: 0 }, "idempotent");
    // Month 18 pays 300.00 / 18 = 16.66; month 19 the household exits.
    assert_eq!(apply_month(&mut r, 2028, 5).await, ApplyMonthResponse { stepped_down: 1, exited: 0 });
    assert_eq!(apply_month(&mut r, 2028, 6).await, ApplyMonthResponse { stepped_down: 0, exited: 1 });
    let e = review(&mut r, &id, vec![]).await.expect_err("exited");
    assert_eq!(e.code(), Code::FailedPrecondition);

    let events = household_events(&r.env.broker, &r.topic);
    let mine: Vec<_> = events.iter().filter(|(k, _)| k == &id).map(|(_, e)| e).collect();
    let amounts: Vec<i64> = mine
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::HouseholdAmountChanged(c)) => c.monthly_amount.map(|m| m.fen),
            _ => None,
        })
        .collect();
    assert_eq!(amounts, [30_000, 28_333, 1_666], "one event per change, in order");
    assert!(matches!(
        mine.last().and_then(|e| e.payload.as_ref()),
        Some(Payload::HouseholdExited(x)) if x.reason == dibao_proto::events::v1::ExitReason::GradualExitEnded as i32
    ));

    // Income far above the standard without project income: the exit is
    // opened on the signed path; payment continues until county approval.
    let other = enrolled(&mut r, renumbered("19800505", 11), vec![wage(120_000)]).await;
    let stopped = review(&mut r, &other, vec![wage(900_000)]).await.expect("review");
    assert_eq!(stopped.outcome, ReviewOutcome::ExitStarted as i32);
    assert!(!stopped.exit_application_id.is_empty());
    assert!(stopped.explanation.contains("已启动退出程序"), "{}", stopped.explanation);
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
