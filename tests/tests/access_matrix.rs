//! The access matrix: every RPC of every service, generated from the proto
//! descriptors, called by every kind of caller that must be refused — no
//! certificate; a certificate of another CA; a system the method does not
//! admit; no officer assertion; an expired one; a tampered one; one for
//! another service; a replayed one; one from an issuer outside its scope;
//! an officer of another county; of another township of the county; of the
//! wrong role — each refused with the right code, nothing changed, no
//! person's data in the answer; then the permitted caller succeeds. A
//! method missing from its service's access table, or without a fixture
//! here, fails the test. It prints the matrix's size.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut};
use dibao_platform::runtime::access::{Rule, Rules, Scope};
use dibao_platform::trust::officer::{Claims, METADATA_KEY, OfficerSigner};
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::common::v1::{Date, DivisionCode, IdentityNumber, Money, OfficerRole, Person, Relation, YearMonth};
use dibao_proto::comparison::v1 as cmp;
use dibao_proto::department::v1 as dept;
use dibao_proto::events::v1::{BenefitCategory, ExitReason, PovertyCause, RosterMember};
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::verification::v1 as ver;
use dibao_tests::{TestEnv, claims};
use prost::Message;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

const COUNTY: &str = "220581";
const TOWNSHIP: &str = "220581101";
const VILLAGE: &str = "220581101201";
const PROVINCE: &str = "220000";

// --- raw gRPC: any method, its messages as bytes ---------------------------

#[derive(Default, Clone)]
struct Raw;
struct RawCoder;

impl Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;
    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }
    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Unary,
    ServerStream,
    ClientStream,
}

/// Calls `path` with `messages`, the assertion `officer` (encoded) in its
/// metadata; every answer message, or the status. A call that hangs fails
/// the test, naming itself, rather than holding it.
async fn call(
    channel: Channel,
    kind: Kind,
    path: &str,
    messages: &[Vec<u8>],
    officer: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(60), call_now(channel, kind, path, messages, officer))
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded(format!("{path}: no answer within 60 s"))))
}

async fn call_now(
    channel: Channel,
    kind: Kind,
    path: &str,
    messages: &[Vec<u8>],
    officer: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::try_from(path.to_owned()).expect("path");
    fn with<T>(mut r: tonic::Request<T>, officer: Option<&[u8]>) -> tonic::Request<T> {
        if let Some(bytes) = officer {
            r.metadata_mut().insert_bin(METADATA_KEY, tonic::metadata::MetadataValue::from_bytes(bytes));
        }
        r
    }
    match kind {
        Kind::Unary => {
            let r = grpc.unary(with(tonic::Request::new(messages[0].clone()), officer), path, Raw).await?;
            Ok(vec![r.into_inner()])
        }
        Kind::ServerStream => {
            let mut stream = grpc
                .server_streaming(with(tonic::Request::new(messages[0].clone()), officer), path, Raw)
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(m) = stream.message().await? {
                out.push(m);
            }
            Ok(out)
        }
        Kind::ClientStream => {
            let r = grpc
                .client_streaming(with(tonic::Request::new(tokio_stream::iter(messages.to_vec())), officer), path, Raw)
                .await?;
            Ok(vec![r.into_inner()])
        }
    }
}

// --- the mesh under test ----------------------------------------------------

fn id(birth: &str, seq: u32) -> IdentityNumber {
    let body = format!("{COUNTY}{birth}{seq:03}");
    IdentityNumber { value: format!("{body}{}", dibao_proto::types::check_character(&body)) }
}

fn person(seq: u32, name: &str) -> Option<Person> {
    Some(Person { identity_number: Some(id("19700101", seq)), name: name.into(), ..Default::default() })
}

fn dibao_household(first: u32) -> ca::Household {
    let member = |seq, name: &str, relation: Relation| ca::Member {
        person: person(seq, name),
        relation: relation as i32,
        work_ability: ca::WorkAbility::Partial as i32,
        covered: true,
        ..Default::default()
    };
    ca::Household {
        household_id: format!("M-{first}"),
        village: Some(DivisionCode { code: VILLAGE.into() }),
        category: BenefitCategory::C as i32,
        members: vec![member(first, "王建国", Relation::Head), member(first + 1, "李秀英", Relation::Spouse)],
        monthly_amount: Some(Money { fen: 40_000 }),
        enrolled_on: Some(Date { year: 2025, month: 3, day: 1 }),
        payee: Some(ca::Payee {
            bank: "梅河口农商银行".into(),
            account: format!("62305200{first:08}"),
            holder_name: "王建国".into(),
        }),
        ..Default::default()
    }
}

fn poor_household(first: u32) -> pa::PoorHousehold {
    pa::PoorHousehold {
        village: Some(DivisionCode { code: VILLAGE.into() }),
        members: vec![RosterMember {
            person: person(first, "赵大"), relation: Relation::Head as i32, covered: false
        }],
        causes: vec![PovertyCause::Illness as i32],
        ..Default::default()
    }
}

fn policy() -> ca::CountyPolicy {
    dibao_test_mesh::verification::policy(COUNTY)
}

fn this_month() -> YearMonth {
    let now = time::OffsetDateTime::now_utc();
    YearMonth { year: now.year(), month: i32::from(now.month() as u8) }
}

fn today() -> Date {
    let d = time::OffsetDateTime::now_utc().date();
    Date { year: d.year(), month: i32::from(d.month() as u8), day: i32::from(d.day()) }
}

/// One method's permitted call.
struct Fixture {
    service: &'static str,
    path: String,
    kind: Kind,
    messages: Vec<Vec<u8>>,
    /// The officer it is for (none: a method systems alone call).
    officer: Option<Claims>,
    /// A system that calls it on its own.
    system: Option<&'static str>,
    /// Whether an officer of another county is refused (false: no division).
    scoped: bool,
    /// Whether an officer of another township of the county is refused
    /// (false for a county's own settings, which its townships read).
    township_data: bool,
    /// Jurisdiction is each row's: an officer elsewhere gets every row
    /// refused by name, and nothing applied (an import of a register that
    /// spans counties takes the officer's own rows).
    rowwise: bool,
}

fn fixture(service: &'static str, path: &str, kind: Kind, messages: Vec<Vec<u8>>, officer: Claims) -> Fixture {
    Fixture {
        service,
        path: path.into(),
        kind,
        messages,
        officer: Some(officer),
        system: None,
        scoped: true,
        township_data: true,
        rowwise: false,
    }
}

fn one<M: Message>(m: M) -> Vec<Vec<u8>> {
    vec![m.encode_to_vec()]
}

fn officer(role: OfficerRole, division: &str) -> Claims {
    claims(role, division)
}

/// The same officer serving another division of the same level: another
/// county, or another township of the county.
fn elsewhere(c: &Claims, county: bool) -> Claims {
    let code = c.division.as_str();
    let division = if county {
        match code.len() {
            12 | 9 => format!("220582{}", &code[6..]),
            _ => "220582".to_owned(),
        }
    } else {
        "220581102".to_owned()
    };
    Claims { division: dibao_proto::types::DivisionCode::parse(&division).expect("division"), ..c.clone() }
}

/// A role the rule does not admit.
fn wrong_role(rule: &Rule) -> OfficerRole {
    [
        OfficerRole::VillageCommittee,
        OfficerRole::PovertyOfficer,
        OfficerRole::ProvinceAuditor,
        OfficerRole::Administrator,
        OfficerRole::TownshipCaseworker,
    ]
    .into_iter()
    .find(|r| !rule.roles.contains(r))
    .expect("a role outside the rule")
}

// --- what "nothing changed" means --------------------------------------------

/// Tables written by the audit and the pipeline, which a refused call may
/// touch (the assertion seen, the refusal recorded) or which move on their own.
const MOVING: &[&str] = &[
    "access_log",
    "seen_assertion",
    // The hub's replicas mark themselves alive twice a second.
    "hub_replica",
    "refused_attempt",
    // Each roster import is recorded with who ran it, its rows refused or not.
    "roster_import",
    "outbox",
    "processed_event",
    "consumer_position",
    "dead_letter",
    "schema_migration",
];

async fn digest(db: &tokio_postgres::Client, schema: &str) -> String {
    let tables: Vec<String> = db
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1", &[&schema])
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .filter(|t: &String| !MOVING.contains(&t.as_str()))
        .collect();
    let mut all = String::new();
    for t in tables {
        let row = db
            .query_one(
                &format!(
                    "SELECT coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM {schema}.{t} x"
                ),
                &[],
            )
            .await
            .expect("digest");
        all.push_str(&t);
        all.push_str(&row.get::<_, String>(0));
    }
    all
}

/// The schema's digest once nothing moves in it any more (events of earlier
/// calls applied), or as it is after 30 s.
async fn settled(db: &tokio_postgres::Client, schema: &str) -> String {
    let mut last = digest(db, schema).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = digest(db, schema).await;
        if now == last || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_method_refuses_every_caller_it_must_and_admits_the_permitted_one() {
    let env = TestEnv::start().await;
    // An issuer registered for another county only: its assertions about this county's officers are refused.
    let other_issuer =
        OfficerSigner::from_pkcs8("county-system", "cs-1", &OfficerSigner::generate_pkcs8()).expect("issuer");
    let issuers = env.certs.join("officer-issuers");
    let mut lines = std::fs::read_to_string(&issuers).expect("issuers");
    lines.push_str(&other_issuer.trusted_issuer_line("220582"));
    std::fs::write(&issuers, lines).expect("issuers");
    let all = dibao_test_mesh::all::start_on(env).await;
    let (env, addrs, hub_signer) = (&all.env, &all.addrs, &all.hub_signer);
    let schemas: BTreeMap<&str, &str> = dibao_test_mesh::all::SCHEMAS.iter().copied().collect();

    // --- the data the methods are about, put there the permitted way -------
    let desk = |service: &str, c: Claims| env.desk(service, c.roles[0], c.division.as_str()).claims(c);
    let caseworker = officer(OfficerRole::TownshipCaseworker, TOWNSHIP);
    let approver = officer(OfficerRole::CountyApprover, COUNTY);
    let operator = officer(OfficerRole::CountyOperator, COUNTY);
    let poverty_officer = officer(OfficerRole::PovertyOfficer, TOWNSHIP);
    let checker = officer(OfficerRole::VerificationOfficer, COUNTY);
    let sysop = officer(OfficerRole::SystemOperator, COUNTY);
    let mut civil_c = ca::civil_affairs_service_client::CivilAffairsServiceClient::new(
        env.officer_channel(
            addrs["civil-affairs"],
            desk(
                "civil-affairs",
                Claims { roles: vec![OfficerRole::CountyApprover, OfficerRole::CountyOperator], ..approver.clone() },
            ),
        )
        .await,
    );
    civil_c.save_policy(ca::SavePolicyRequest { policy: Some(policy()) }).await.expect("policy");
    let imported = civil_c
        .import_roster(tokio_stream::iter(vec![
            ca::ImportRosterRequest { row: 1, household: Some(dibao_household(1)) },
            ca::ImportRosterRequest { row: 2, household: Some(dibao_household(11)) },
            ca::ImportRosterRequest { row: 3, household: Some(dibao_household(71)) },
        ]))
        .await
        .expect("roster")
        .into_inner();
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
    let households = civil_c
        .list_households(ca::ListHouseholdsRequest { division: Some(DivisionCode { code: COUNTY.into() }), page: None })
        .await
        .expect("list")
        .into_inner()
        .households;
    let headed_by = |seq| {
        households
            .iter()
            .find(|h| {
                h.members
                    .iter()
                    .any(|m| m.person.as_ref().and_then(|p| p.identity_number.as_ref()) == Some(&id("19700101", seq)))
            })
            .expect("an imported household")
            .household_id
            .clone()
    };
    let (h1, h11, h71) = (headed_by(1), headed_by(11), headed_by(71));
    let mut civil_cw = ca::civil_affairs_service_client::CivilAffairsServiceClient::new(
        env.officer_channel(addrs["civil-affairs"], desk("civil-affairs", caseworker.clone())).await,
    );
    let mut applicant = dibao_household(21);
    applicant.household_id.clear();
    applicant.monthly_amount = None;
    applicant.enrolled_on = None;
    let application = civil_cw
        .submit_application(ca::SubmitApplicationRequest { household: Some(applicant), ..Default::default() })
        .await
        .expect("application")
        .into_inner();
    let sample = civil_c
        .draw_sample(ca::DrawSampleRequest {
            county: Some(DivisionCode { code: COUNTY.into() }),
            percent: 30,
            full_villages: vec![],
        })
        .await
        .expect("sample")
        .into_inner();
    // An upward report (R-AUD-3) of this month, to read and export.
    let mut reports_c = ca::report_service_client::ReportServiceClient::new(
        env.officer_channel(addrs["civil-affairs"], desk("civil-affairs", approver.clone())).await,
    );
    let report_month = || Some(ca::ReportPeriod { year: today().year, month: today().month, quarter: 0 });
    let upward = reports_c
        .generate_report(ca::GenerateReportRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            period: report_month(),
            reproduce_report_id: String::new(),
        })
        .await
        .expect("upward report")
        .into_inner()
        .report
        .expect("report")
        .report_id;
    // Complaints (R-AUD-2): one assigned and followed up, one just taken.
    let mut complaints_cw = ca::complaint_service_client::ComplaintServiceClient::new(
        env.officer_channel(addrs["civil-affairs"], desk("civil-affairs", caseworker.clone())).await,
    );
    let mut complaints_county = ca::complaint_service_client::ComplaintServiceClient::new(
        env.officer_channel(addrs["civil-affairs"], desk("civil-affairs", approver.clone())).await,
    );
    let intake = ca::FileComplaintRequest {
        division: Some(DivisionCode { code: TOWNSHIP.into() }),
        channel: ca::ComplaintChannel::Phone as i32,
        received_on: Some(today()),
        anonymous: true,
        content: "反映有村民隐瞒务工收入享受低保".into(),
        ..Default::default()
    };
    let due_on = {
        let d = time::OffsetDateTime::now_utc().date() + time::Duration::days(10);
        Date { year: d.year(), month: i32::from(d.month() as u8), day: i32::from(d.day()) }
    };
    let assign = |complaint_id: &str| ca::AssignComplaintRequest {
        complaint_id: complaint_id.into(),
        township: Some(DivisionCode { code: TOWNSHIP.into() }),
        due_on: Some(due_on),
        note: String::new(),
    };
    let step = |complaint_id: &str| ca::AddComplaintStepRequest {
        complaint_id: complaint_id.into(),
        action: "入户核查".into(),
        note: "已走访核实".into(),
    };
    let followed = complaints_cw.file_complaint(intake.clone()).await.expect("complaint").into_inner().complaint_id;
    complaints_county.assign_complaint(assign(&followed)).await.expect("assigned");
    complaints_cw.add_complaint_step(step(&followed)).await.expect("followed up");
    let taken = complaints_cw.file_complaint(intake.clone()).await.expect("complaint").into_inner().complaint_id;
    // Payment rolls (R-PROC-1): last month's signed, this month's prepared.
    let mut payments_op = ca::payment_service_client::PaymentServiceClient::new(
        env.officer_channel(addrs["civil-affairs"], desk("civil-affairs", operator.clone())).await,
    );
    let mut payments_approver = ca::payment_service_client::PaymentServiceClient::new(
        env.officer_channel(addrs["civil-affairs"], desk("civil-affairs", approver.clone())).await,
    );
    let first_of_month =
        dibao_platform::runtime::clock::china_date(time::OffsetDateTime::now_utc()).replace_day(1).expect("day");
    let year_month = |d: time::Date| YearMonth { year: d.year(), month: i32::from(d.month() as u8) };
    let last_month = (first_of_month - time::Duration::days(1)).replace_day(1).expect("day");
    let next_month = dibao_platform::runtime::clock::add_months(first_of_month, 1);
    let roll = |month: time::Date| ca::PrepareRollRequest {
        county: Some(DivisionCode { code: COUNTY.into() }),
        month: Some(year_month(month)),
    };
    let signed = payments_op.prepare_roll(roll(last_month)).await.expect("last month's roll").into_inner();
    payments_approver
        .sign_roll(ca::SignRollRequest { roll_id: signed.roll_id.clone() })
        .await
        .expect("last month's roll signed");
    let unsigned =
        payments_op.prepare_roll(roll(first_of_month)).await.expect("this month's roll").into_inner().roll_id;
    let paid = payments_op
        .list_payments(ca::ListPaymentsRequest { roll_id: signed.roll_id.clone(), failed_only: false, page: None })
        .await
        .expect("payments")
        .into_inner()
        .payments;
    let mut poverty_c = pa::poverty_alleviation_service_client::PovertyAlleviationServiceClient::new(
        env.officer_channel(addrs["poverty-alleviation"], desk("poverty-alleviation", poverty_officer.clone())).await,
    );
    let p1 = poverty_c
        .register_household(pa::RegisterHouseholdRequest { household: Some(poor_household(41)) })
        .await
        .expect("poor")
        .into_inner()
        .household_id;
    let mut hub_c = ver::verification_service_client::VerificationServiceClient::new(
        env.officer_channel(addrs["verification-hub"], desk("verification-hub", checker.clone())).await,
    );
    let consent = |first: u32, household: &str| ver::RegisterConsentRequest {
        consent: Some(ver::Consent {
            household_id: household.to_owned(),
            document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            signatories: vec![
                ver::Signatory { person: person(first, "王建国"), relation: Relation::Head as i32, relative: false },
                ver::Signatory {
                    person: person(first + 1, "李秀英"),
                    relation: Relation::Spouse as i32,
                    relative: false,
                },
            ],
            covered_persons: vec![id("19700101", first), id("19700101", first + 1)],
            covered_items: vec![dept::Item::Vehicles as i32],
            signed_on: Some(today()),
            valid_until: Some(Date { year: today().year + 1, ..today() }),
            no_relatives_outside_household: true,
            ..Default::default()
        }),
    };
    let c1 = hub_c.register_consent(consent(1, &h1)).await.expect("consent").into_inner().consent_id;
    let c2 = hub_c.register_consent(consent(11, &h11)).await.expect("consent").into_inner().consent_id;
    let verify = ver::VerifyHouseholdRequest {
        household_id: h1.clone(),
        persons: vec![id("19700101", 1), id("19700101", 2)],
        consent_id: c1.clone(),
        purpose: "低保复核".into(),
        items: vec![dept::Item::Vehicles as i32],
        ..Default::default()
    };
    let report =
        hub_c.verify_household(verify.clone()).await.expect("report").into_inner().report.expect("report").report_id;
    // The comparison's view takes both rosters' events; a run over the county.
    let mut cmp_c = cmp::comparison_service_client::ComparisonServiceClient::new(
        env.officer_channel(addrs["roster-comparison"], desk("roster-comparison", approver.clone())).await,
    );
    let db = env.db.client().await.expect("db");
    // Waits for the poor household itself: civil affairs' households can
    // reach the view first, and a run without it has no list (a) entry.
    for _ in 0..600 {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM roster_comparison.roster_household
                  WHERE valid_to IS NULL AND side = 'poor' AND household_id = $1",
                &[&p1],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        if n == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut run = cmp_c
        .run_comparison(cmp::RunComparisonRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            reproduce_run_id: String::new(),
        })
        .await
        .expect("run")
        .into_inner();
    let mut run_id = String::new();
    while let Some(p) = run.message().await.expect("progress") {
        run_id = p.run_id;
    }
    let entries = cmp_c
        .list_entries(cmp::ListEntriesRequest {
            run_id: run_id.clone(),
            division: Some(DivisionCode { code: COUNTY.into() }),
            ..Default::default()
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    let entry = entries
        .iter()
        .find(|e| e.kind == cmp::ListKind::PoorNotDibao as i32)
        .expect("a list (a) entry")
        .entry_id
        .clone();
    let people: Vec<String> = [1, 2, 11, 12, 21, 22, 41].iter().map(|s| id("19700101", *s).value).collect();

    // --- one permitted call per method ------------------------------------
    let civil_path = |m: &str| format!("/dibao.civil_affairs.v1.CivilAffairsService/{m}");
    let complaint_path = |m: &str| format!("/dibao.civil_affairs.v1.ComplaintService/{m}");
    let payment_path = |m: &str| format!("/dibao.civil_affairs.v1.PaymentService/{m}");
    let report_path = |m: &str| format!("/dibao.civil_affairs.v1.ReportService/{m}");
    let poverty_path = |m: &str| format!("/dibao.poverty_alleviation.v1.PovertyAlleviationService/{m}");
    let hub_path = |m: &str| format!("/dibao.verification.v1.VerificationService/{m}");
    let cmp_path = |m: &str| format!("/dibao.comparison.v1.ComparisonService/{m}");
    let township = || Some(DivisionCode { code: TOWNSHIP.into() });
    let county = || Some(DivisionCode { code: COUNTY.into() });
    let mut fixtures = vec![
        fixture(
            "civil-affairs",
            &civil_path("DrawSample"),
            Kind::Unary,
            one(ca::DrawSampleRequest { county: county(), percent: 30, full_villages: vec![] }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("ListReviewsDue"),
            Kind::Unary,
            one(ca::ListReviewsDueRequest { township: township(), as_of: None, page: None }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("RecordReview"),
            Kind::Unary,
            one(ca::RecordReviewRequest {
                household_id: h71.clone(),
                // Wages far above the standard: the review starts an exit,
                // which needs no report (keeping the amount would, R-VER-5).
                income: vec![ca::IncomeItem {
                    kind: ca::IncomeKind::Wage as i32,
                    label: "务工收入".into(),
                    monthly: Some(dibao_proto::common::v1::Money { fen: 900_000 }),
                    ..Default::default()
                }],
                remarks: "入户复核".into(),
                ..Default::default()
            }),
            officer(OfficerRole::TownshipReviewer, TOWNSHIP),
        ),
        fixture(
            "civil-affairs",
            &civil_path("ApplyMonth"),
            Kind::Unary,
            one(ca::ApplyMonthRequest { county: county(), month: Some(this_month()) }),
            operator.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("ExportPublicNotice"),
            Kind::Unary,
            one(ca::ExportPublicNoticeRequest {
                division: township(),
                kind: ca::NoticeKind::Enrolled as i32,
                format: ca::FileFormat::Csv as i32,
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &complaint_path("FileComplaint"),
            Kind::Unary,
            one(intake.clone()),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &complaint_path("AssignComplaint"),
            Kind::Unary,
            one(assign(&taken)),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &complaint_path("AddComplaintStep"),
            Kind::Unary,
            one(step(&followed)),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &complaint_path("CloseComplaint"),
            Kind::Unary,
            one(ca::CloseComplaintRequest {
                complaint_id: followed.clone(),
                outcome: ca::ComplaintOutcome::Unsubstantiated as i32,
                reply: "经核查，反映情况不属实".into(),
            }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &complaint_path("GetComplaint"),
            Kind::Unary,
            one(ca::GetComplaintRequest { complaint_id: followed.clone() }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &complaint_path("ListComplaints"),
            Kind::Unary,
            one(ca::ListComplaintsRequest { division: township(), ..Default::default() }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("GetCertificate"),
            Kind::Unary,
            one(ca::GetCertificateRequest { household_id: h1.clone() }),
            caseworker.clone(),
        ),
        fixture("civil-affairs", &payment_path("PrepareRoll"), Kind::Unary, one(roll(next_month)), operator.clone()),
        fixture(
            "civil-affairs",
            &payment_path("SignRoll"),
            Kind::Unary,
            one(ca::SignRollRequest { roll_id: unsigned.clone() }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &payment_path("ExportDisbursement"),
            Kind::Unary,
            one(ca::ExportDisbursementRequest {
                roll_id: signed.roll_id.clone(),
                bank: "梅河口农商银行".into(),
                format: ca::FileFormat::Csv as i32,
            }),
            operator.clone(),
        ),
        Fixture {
            rowwise: true,
            ..fixture(
                "civil-affairs",
                &payment_path("ImportBankReturn"),
                Kind::ClientStream,
                vec![
                    ca::ImportBankReturnRequest {
                        row: 1,
                        roll_id: signed.roll_id.clone(),
                        reference: paid[0].reference.clone(),
                        paid: true,
                        reason: String::new(),
                    }
                    .encode_to_vec(),
                ],
                operator.clone(),
            )
        },
        fixture(
            "civil-affairs",
            &payment_path("ListPayments"),
            Kind::Unary,
            one(ca::ListPaymentsRequest { roll_id: signed.roll_id.clone(), failed_only: false, page: None }),
            operator.clone(),
        ),
        fixture(
            "civil-affairs",
            &payment_path("ListOverpayments"),
            Kind::Unary,
            one(ca::ListOverpaymentsRequest { county: Some(DivisionCode { code: COUNTY.into() }) }),
            operator.clone(),
        ),
        // Paid as owed: admitted, then nothing to recover (the API test
        // records a recovery and shows another county's refused).
        fixture(
            "civil-affairs",
            &payment_path("RecordRecovery"),
            Kind::Unary,
            one(ca::RecordRecoveryRequest {
                reference: paid[0].reference.clone(),
                amount: Some(dibao_proto::common::v1::Money { fen: 100 }),
                note: "家属退回".into(),
            }),
            operator.clone(),
        ),
        fixture(
            "civil-affairs",
            &report_path("GenerateReport"),
            Kind::Unary,
            one(ca::GenerateReportRequest {
                division: county(),
                period: report_month(),
                reproduce_report_id: String::new(),
            }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &report_path("ListReports"),
            Kind::Unary,
            one(ca::ListReportsRequest { division: county() }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &report_path("GetReport"),
            Kind::Unary,
            one(ca::GetReportRequest { report_id: upward.clone() }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &report_path("ExportReport"),
            Kind::Unary,
            one(ca::ExportReportRequest { report_id: upward.clone() }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            &payment_path("GetPaymentHistory"),
            Kind::Unary,
            one(ca::GetPaymentHistoryRequest { household_id: h1.clone() }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("ImportRoster"),
            Kind::ClientStream,
            vec![ca::ImportRosterRequest { row: 1, household: Some(dibao_household(31)) }.encode_to_vec()],
            operator.clone(),
        ),
        // The hub reads the household it checks (R-VER-2).
        Fixture {
            system: Some("verification-hub"),
            ..fixture(
                "civil-affairs",
                &civil_path("GetHousehold"),
                Kind::Unary,
                one(ca::GetHouseholdRequest { household_id: h1.clone() }),
                caseworker.clone(),
            )
        },
        fixture(
            "civil-affairs",
            &civil_path("ListHouseholds"),
            Kind::Unary,
            one(ca::ListHouseholdsRequest { division: township(), page: None }),
            caseworker.clone(),
        ),
        Fixture {
            system: Some("verification-hub"),
            ..fixture(
                "civil-affairs",
                &civil_path("ExportRoster"),
                Kind::ServerStream,
                one(ca::ExportRosterRequest { division: county() }),
                approver.clone(),
            )
        },
        fixture(
            "civil-affairs",
            &civil_path("SavePolicy"),
            Kind::Unary,
            one(ca::SavePolicyRequest { policy: Some(policy()) }),
            approver.clone(),
        ),
        Fixture {
            system: Some("verification-hub"),
            township_data: false,
            ..fixture(
                "civil-affairs",
                &civil_path("GetPolicy"),
                Kind::Unary,
                one(ca::GetPolicyRequest { county: county(), month: Some(this_month()) }),
                caseworker.clone(),
            )
        },
        fixture(
            "civil-affairs",
            &civil_path("SubmitApplication"),
            Kind::Unary,
            one(ca::SubmitApplicationRequest {
                household: Some(ca::Household {
                    household_id: String::new(),
                    monthly_amount: None,
                    enrolled_on: None,
                    ..dibao_household(51)
                }),
                ..Default::default()
            }),
            caseworker.clone(),
        ),
        Fixture {
            system: Some("roster-comparison"),
            ..fixture(
                "civil-affairs",
                &civil_path("GetApplication"),
                Kind::Unary,
                one(ca::GetApplicationRequest { application_id: application.application_id.clone() }),
                caseworker.clone(),
            )
        },
        fixture(
            "civil-affairs",
            &civil_path("ListApplications"),
            Kind::Unary,
            one(ca::ListApplicationsRequest { division: township(), waiting_for_me: true, page: None }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("SignStep"),
            Kind::Unary,
            one(ca::SignStepRequest {
                application_id: application.application_id.clone(),
                step: ca::ProcessStep::HomeVisit as i32,
                approve: true,
                ..Default::default()
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("RecordObjection"),
            Kind::Unary,
            one(ca::RecordObjectionRequest {
                application_id: application.application_id.clone(),
                text: "群众反映该户有车辆".into(),
                ..Default::default()
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("StartExit"),
            Kind::Unary,
            one(ca::StartExitRequest {
                household_id: h11.clone(),
                reason: ExitReason::Moved as i32,
                remarks: "迁出".into(),
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("ChangeMembers"),
            Kind::Unary,
            one(ca::ChangeMembersRequest {
                household_id: h11.clone(),
                members: {
                    let mut members = dibao_household(11).members;
                    members.push(ca::Member {
                        person: person(15, "王小宝"),
                        relation: Relation::Child as i32,
                        work_ability: ca::WorkAbility::Partial as i32,
                        covered: true,
                        ..Default::default()
                    });
                    members
                },
                reason: "迁入".into(),
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("RecordDeath"),
            Kind::Unary,
            one(ca::RecordDeathRequest {
                identity_number: Some(id("19700101", 2)),
                died_on: Some(today()),
                source: "公安死亡登记".into(),
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("AssessHousehold"),
            Kind::Unary,
            one(ca::AssessHouseholdRequest {
                household: Some(ca::Household { household_id: String::new(), ..dibao_household(61) }),
                ..Default::default()
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("GetHistory"),
            Kind::Unary,
            one(ca::GetHistoryRequest {
                of: Some(ca::get_history_request::Of::ApplicationId(application.application_id.clone())),
            }),
            caseworker.clone(),
        ),
        fixture(
            "civil-affairs",
            &civil_path("ReproduceSample"),
            Kind::Unary,
            one(ca::ReproduceSampleRequest { sample_id: sample.sample_id.clone() }),
            approver.clone(),
        ),
        fixture(
            "civil-affairs",
            "/dibao.sync.v1.PovertyRosterViewService/RebuildPovertyView",
            Kind::ClientStream,
            vec![
                dibao_proto::sync::v1::RebuildPovertyViewRequest {
                    item: Some(dibao_proto::sync::v1::rebuild_poverty_view_request::Item::Division(DivisionCode {
                        code: "220581115".into(),
                    })),
                }
                .encode_to_vec(),
            ],
            sysop.clone(),
        ),
        fixture(
            "poverty-alleviation",
            &poverty_path("RegisterHousehold"),
            Kind::Unary,
            one(pa::RegisterHouseholdRequest { household: Some(poor_household(71)) }),
            poverty_officer.clone(),
        ),
        Fixture {
            system: Some("roster-comparison"),
            ..fixture(
                "poverty-alleviation",
                &poverty_path("GetHousehold"),
                Kind::Unary,
                one(pa::GetHouseholdRequest { household_id: p1.clone() }),
                poverty_officer.clone(),
            )
        },
        fixture(
            "poverty-alleviation",
            &poverty_path("ChangeStatus"),
            Kind::Unary,
            one(pa::ChangeStatusRequest {
                household_id: p1.clone(),
                status: pa::PovertyStatus::Exited as i32,
                exit_year: 2024,
                ..Default::default()
            }),
            poverty_officer.clone(),
        ),
        fixture(
            "poverty-alleviation",
            &poverty_path("ListCandidates"),
            Kind::Unary,
            one(pa::ListCandidatesRequest { division: township(), page: None }),
            poverty_officer.clone(),
        ),
        fixture(
            "poverty-alleviation",
            &poverty_path("RecordDeath"),
            Kind::Unary,
            one(pa::RecordDeathRequest {
                identity_number: Some(id("19700101", 41)),
                died_on: Some(today()),
                source: "公安死亡登记".into(),
            }),
            poverty_officer.clone(),
        ),
        fixture(
            "poverty-alleviation",
            &poverty_path("SetDibaoFlag"),
            Kind::Unary,
            one(pa::SetDibaoFlagRequest {
                household_id: p1.clone(),
                dibao_registered_poor: true,
                basis: "民政低保名单比对".into(),
            }),
            poverty_officer.clone(),
        ),
        fixture(
            "poverty-alleviation",
            &poverty_path("ChangeMembers"),
            Kind::Unary,
            one(pa::ChangeMembersRequest {
                household_id: p1.clone(),
                members: {
                    let mut members = poor_household(41).members;
                    members.push(RosterMember {
                        person: person(43, "赵小"),
                        relation: Relation::Child as i32,
                        covered: false,
                    });
                    members
                },
                reason: "新生儿落户".into(),
            }),
            poverty_officer.clone(),
        ),
        fixture(
            "poverty-alleviation",
            &poverty_path("ImportRoster"),
            Kind::ClientStream,
            vec![
                pa::ImportRosterRequest {
                    row: 1,
                    household: Some(pa::PoorHousehold { household_id: "P-81".into(), ..poor_household(81) }),
                }
                .encode_to_vec(),
            ],
            officer(OfficerRole::PovertyOfficer, COUNTY),
        ),
        Fixture {
            system: Some("roster-comparison"),
            ..fixture(
                "poverty-alleviation",
                &poverty_path("ExportRoster"),
                Kind::ServerStream,
                one(pa::ExportRosterRequest { division: county() }),
                officer(OfficerRole::PovertyOfficer, COUNTY),
            )
        },
        fixture(
            "poverty-alleviation",
            "/dibao.sync.v1.DibaoRosterViewService/RebuildDibaoView",
            Kind::ClientStream,
            vec![
                dibao_proto::sync::v1::RebuildDibaoViewRequest {
                    item: Some(dibao_proto::sync::v1::rebuild_dibao_view_request::Item::Division(DivisionCode {
                        code: "220581115".into(),
                    })),
                }
                .encode_to_vec(),
            ],
            sysop.clone(),
        ),
        fixture(
            "verification-hub",
            &hub_path("RegisterConsent"),
            Kind::Unary,
            one(consent(21, &application.household_id)),
            checker.clone(),
        ),
        fixture(
            "verification-hub",
            &hub_path("RevokeConsent"),
            Kind::Unary,
            one(ver::RevokeConsentRequest { consent_id: c2.clone(), reason: "本人撤回".into() }),
            checker.clone(),
        ),
        // The spouse's death is recorded above: the head alone is a live member now.
        fixture(
            "verification-hub",
            &hub_path("VerifyHousehold"),
            Kind::Unary,
            one(ver::VerifyHouseholdRequest { persons: vec![id("19700101", 1)], ..verify.clone() }),
            checker.clone(),
        ),
        Fixture {
            system: Some("civil-affairs"),
            ..fixture(
                "verification-hub",
                &hub_path("GetReport"),
                Kind::Unary,
                one(ver::GetReportRequest { report_id: report.clone(), version: 0 }),
                checker.clone(),
            )
        },
        fixture(
            "verification-hub",
            &hub_path("StartCampaign"),
            Kind::ServerStream,
            one(ver::StartCampaignRequest {
                division: township(),
                purpose: "集中核查".into(),
                campaign_id: String::new(),
            }),
            checker.clone(),
        ),
        fixture(
            "roster-comparison",
            &cmp_path("RunComparison"),
            Kind::ServerStream,
            one(cmp::RunComparisonRequest { division: county(), reproduce_run_id: String::new() }),
            approver.clone(),
        ),
        // A run's figures (no person's data) are read by the townships of its county too.
        Fixture {
            township_data: false,
            ..fixture(
                "roster-comparison",
                &cmp_path("GetRun"),
                Kind::Unary,
                one(cmp::GetRunRequest { run_id: run_id.clone() }),
                approver.clone(),
            )
        },
        fixture(
            "roster-comparison",
            &cmp_path("ListEntries"),
            Kind::Unary,
            one(cmp::ListEntriesRequest { run_id: run_id.clone(), division: township(), ..Default::default() }),
            caseworker.clone(),
        ),
        fixture(
            "roster-comparison",
            &cmp_path("RecordDecision"),
            Kind::Unary,
            one(cmp::RecordDecisionRequest {
                entry_id: entry.clone(),
                conclusion: "经入户核查，该户收入高于当地低保标准".into(),
                ..Default::default()
            }),
            caseworker.clone(),
        ),
        fixture(
            "roster-comparison",
            &cmp_path("ReportOpenItems"),
            Kind::Unary,
            one(cmp::ReportOpenItemsRequest { division: county() }),
            approver.clone(),
        ),
        fixture(
            "roster-comparison",
            &cmp_path("ExportLists"),
            Kind::ServerStream,
            one(cmp::ExportListsRequest {
                run_id: run_id.clone(),
                division: county(),
                format: cmp::ExportFormat::Csv as i32,
                ..Default::default()
            }),
            approver.clone(),
        ),
        Fixture {
            rowwise: true,
            ..fixture(
                "roster-comparison",
                &cmp_path("ImportDeathRegister"),
                Kind::ClientStream,
                vec![
                    cmp::ImportDeathRegisterRequest {
                        row: 1,
                        identity_number: Some(id("19700101", 12)),
                        name: "李秀英".into(),
                        died_on: Some(today()),
                        source: String::new(),
                    }
                    .encode_to_vec(),
                ],
                operator.clone(),
            )
        },
        fixture(
            "roster-comparison",
            &cmp_path("ImportOfficials"),
            Kind::ClientStream,
            vec![
                cmp::ImportOfficialsRequest {
                    row: 1,
                    division: township(),
                    official: Some(id("19700101", 91)),
                    official_name: "周干部".into(),
                    role: cmp::OfficialRole::DibaoHandler as i32,
                    official_village: Some(DivisionCode { code: VILLAGE.into() }),
                    person: Some(id("19700101", 91)),
                    person_name: "周干部".into(),
                    relation: "本人".into(),
                }
                .encode_to_vec(),
            ],
            operator.clone(),
        ),
        fixture(
            "roster-comparison",
            &cmp_path("RebuildView"),
            Kind::Unary,
            one(cmp::RebuildViewRequest { division: Some(DivisionCode { code: "220581115".into() }) }),
            sysop.clone(),
        ),
    ];
    // The department's query: the hub alone, with a consent assertion.
    let assertion = hub_signer.sign(dept::ConsentAssertion {
        consent_id: c1.clone(),
        person: Some(id("19700101", 1)),
        items: vec![dept::Item::Vehicles as i32],
        purpose: "低保复核".into(),
        officer_id: "checker".into(),
        issued_at: Some(dibao_platform::events::outbox::timestamp_of(time::OffsetDateTime::now_utc())),
        expires_at: Some(dibao_platform::events::outbox::timestamp_of(
            time::OffsetDateTime::now_utc() + time::Duration::minutes(4),
        )),
        audience: "public_security".into(),
        assertion_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    });
    fixtures.push(Fixture {
        service: "adapter-public-security",
        path: "/dibao.department.v1.DepartmentService/Query".into(),
        kind: Kind::Unary,
        messages: one(dept::QueryRequest { assertion: Some(assertion), items: vec![dept::Item::Vehicles as i32] }),
        officer: None,
        system: Some("verification-hub"),
        scoped: false,
        township_data: false,
        rowwise: false,
    });
    // Served by every service: the pipeline (for operators) and a person's access history.
    for service in ["civil-affairs", "poverty-alleviation", "verification-hub", "roster-comparison"] {
        for (method, message) in [
            ("GetPipelineStatus", dibao_proto::ops::v1::GetPipelineStatusRequest {}.encode_to_vec()),
            (
                "ListDeadLetters",
                dibao_proto::ops::v1::ListDeadLettersRequest { limit: 10, include_retried: true }.encode_to_vec(),
            ),
            ("RetryDeadLetter", dibao_proto::ops::v1::RetryDeadLetterRequest { id: 0 }.encode_to_vec()),
        ] {
            fixtures.push(Fixture {
                scoped: false,
                ..fixture(
                    service,
                    &format!("/dibao.ops.v1.OpsService/{method}"),
                    Kind::Unary,
                    vec![message],
                    officer(OfficerRole::SystemOperator, PROVINCE),
                )
            });
        }
    }
    for service in
        ["civil-affairs", "poverty-alleviation", "verification-hub", "roster-comparison", "adapter-public-security"]
    {
        let history = dibao_proto::access::v1::ListAccessesRequest {
            person: Some(id("19700101", 1)),
            page: None,
            village: Some(DivisionCode { code: VILLAGE.into() }),
        };
        fixtures.push(fixture(
            service,
            "/dibao.access.v1.AccessLogService/ListAccesses",
            Kind::Unary,
            one(history),
            caseworker.clone(),
        ));
    }

    // --- every method has a line in its table and a fixture here -----------
    let tables: BTreeMap<&str, Rules> = [
        ("civil-affairs", Rules::new(dibao_civil_affairs::startup::ACCESS)),
        ("poverty-alleviation", Rules::new(dibao_poverty_alleviation::startup::ACCESS)),
        ("verification-hub", Rules::new(dibao_verification_hub::startup::ACCESS)),
        ("roster-comparison", Rules::new(dibao_roster_comparison::startup::ACCESS)),
        ("adapter-public-security", Rules::new(dibao_department_adapters::startup::ACCESS)),
    ]
    .into_iter()
    .collect();
    let served: &[(&str, &[&str])] = &[
        (
            "civil-affairs",
            &[
                "dibao.civil_affairs.v1.CivilAffairsService",
                "dibao.civil_affairs.v1.ComplaintService",
                "dibao.civil_affairs.v1.PaymentService",
                "dibao.sync.v1.PovertyRosterViewService",
                "dibao.ops.v1.OpsService",
                "dibao.access.v1.AccessLogService",
            ],
        ),
        (
            "poverty-alleviation",
            &[
                "dibao.poverty_alleviation.v1.PovertyAlleviationService",
                "dibao.sync.v1.DibaoRosterViewService",
                "dibao.ops.v1.OpsService",
                "dibao.access.v1.AccessLogService",
            ],
        ),
        (
            "verification-hub",
            &[
                "dibao.verification.v1.VerificationService",
                "dibao.ops.v1.OpsService",
                "dibao.access.v1.AccessLogService",
            ],
        ),
        (
            "roster-comparison",
            &["dibao.comparison.v1.ComparisonService", "dibao.ops.v1.OpsService", "dibao.access.v1.AccessLogService"],
        ),
        ("adapter-public-security", &["dibao.department.v1.DepartmentService", "dibao.access.v1.AccessLogService"]),
    ];
    let set = prost_types::FileDescriptorSet::decode(dibao_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let mut methods = Vec::new();
    for file in &set.file {
        for svc in &file.service {
            let full = format!("{}.{}", file.package(), svc.name());
            for m in &svc.method {
                methods.push((full.clone(), format!("/{full}/{}", m.name())));
            }
        }
    }
    let fixtured: HashSet<(&str, &str)> = fixtures.iter().map(|f| (f.service, f.path.as_str())).collect();
    for (service, packages) in served {
        for (full, path) in methods.iter().filter(|(full, _)| packages.contains(&full.as_str())) {
            assert!(tables[service].of(path).is_some(), "{path} is missing from {service}'s access table ({full})");
            assert!(fixtured.contains(&(*service, path.as_str())), "no fixture for {path} on {service}");
        }
    }

    // --- the matrix -------------------------------------------------------
    let stranger = dibao_ops_tools::devpki::DevCa::generate("someone else's CA").expect("ca");
    let foreign = stranger.issue("gateway").expect("cert");
    let ca_pem = std::fs::read_to_string(env.certs.join("ca.pem")).expect("ca");
    let connect = |tls: tonic::transport::ClientTlsConfig, addr: SocketAddr| async move {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
            .expect("endpoint")
            .tls_config(tls)
            .expect("tls");
        endpoint.connect().await
    };
    let mut cells = 0usize;
    for f in &fixtures {
        let addr = addrs[f.service];
        let rule = tables[f.service].of(&f.path).expect("rule");
        let before = settled(&db, schemas[f.service]).await;
        let refused = |case: &str, result: Result<Vec<Vec<u8>>, tonic::Status>, codes: &[Code]| {
            let status = match result {
                Ok(answer) => panic!("{} — {case}: answered {answer:?}", f.path),
                Err(s) => s,
            };
            assert!(codes.contains(&status.code()), "{} — {case}: {status:?}, expected one of {codes:?}", f.path);
            let said = format!("{} {:?}", status.message(), status.details());
            for p in &people {
                assert!(!said.contains(p.as_str()), "{} — {case}: the refusal names {p}", f.path);
            }
        };
        // No certificate; a certificate of another CA.
        let anonymous = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
            .domain_name("localhost");
        // Refused in the handshake (no channel), or at the first call.
        if let Ok(ch) = connect(anonymous, addr).await {
            refused(
                "no certificate",
                call(ch, f.kind, &f.path, &f.messages, None).await,
                &[Code::Unavailable, Code::Unknown, Code::Unauthenticated, Code::Internal, Code::Cancelled],
            );
        }
        let other = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
            .identity(tonic::transport::Identity::from_pem(&foreign.cert, &foreign.key))
            .domain_name("localhost");
        // Refused in the handshake (no channel), or at the first call.
        if let Ok(ch) = connect(other, addr).await {
            refused(
                "another CA",
                call(ch, f.kind, &f.path, &f.messages, None).await,
                &[Code::Unavailable, Code::Unknown, Code::Unauthenticated, Code::Internal, Code::Cancelled],
            );
        }
        cells += 2;
        // A system the method does not admit (with a valid assertion, even).
        let intruder = ["poverty-alleviation", "civil-affairs"]
            .into_iter()
            .find(|s| !rule.systems.contains(s) && !rule.for_officers.contains(s) && *s != f.service)
            .unwrap_or("poverty-alleviation");
        let valid = |c: &Claims| {
            let d = env.desk(f.service, c.roles[0], c.division.as_str()).claims(c.clone());
            d.assertion(c)
        };
        let as_intruder = env.channel(intruder, addr).await;
        let bytes = f.officer.as_ref().map(valid);
        refused(
            "a system the method does not admit",
            call(as_intruder, f.kind, &f.path, &f.messages, bytes.as_deref()).await,
            &[Code::PermissionDenied],
        );
        cells += 1;
        if let Some(permitted) = &f.officer {
            let gateway = env.channel("gateway", addr).await;
            let mint = |c: &Claims, audience: &str, at: time::OffsetDateTime| {
                OfficerSigner::encode(&env.issuer.mint(c, audience, at, Duration::from_secs(60)))
            };
            let now = time::OffsetDateTime::now_utc();
            refused(
                "no officer assertion",
                call(gateway.clone(), f.kind, &f.path, &f.messages, None).await,
                &[Code::Unauthenticated],
            );
            refused(
                "an expired assertion",
                call(
                    gateway.clone(),
                    f.kind,
                    &f.path,
                    &f.messages,
                    Some(&mint(permitted, f.service, now - time::Duration::minutes(10))),
                )
                .await,
                &[Code::Unauthenticated],
            );
            let mut tampered =
                dibao_proto::common::v1::OfficerAssertion::decode(mint(permitted, f.service, now).as_slice())
                    .expect("assertion");
            tampered.division = Some(DivisionCode { code: PROVINCE.into() });
            tampered.roles.push(OfficerRole::CountyApprover as i32);
            refused(
                "a tampered assertion",
                call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&tampered.encode_to_vec())).await,
                &[Code::Unauthenticated],
            );
            refused(
                "an assertion for another service",
                call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&mint(permitted, "some-other-service", now)))
                    .await,
                &[Code::Unauthenticated],
            );
            let out_of_scope =
                OfficerSigner::encode(&other_issuer.mint(permitted, f.service, now, Duration::from_secs(60)));
            refused(
                "an issuer outside its scope",
                call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&out_of_scope)).await,
                &[Code::Unauthenticated],
            );
            let jurisdiction = if rule.scope == Scope::Data {
                vec![Code::NotFound, Code::PermissionDenied]
            } else {
                vec![Code::PermissionDenied]
            };
            cells += 5;
            if f.rowwise {
                for (case, county) in
                    [("an officer of another county", true), ("an officer of another township", false)]
                {
                    let answer = call(
                        gateway.clone(),
                        f.kind,
                        &f.path,
                        &f.messages,
                        Some(&valid(&elsewhere(permitted, county))),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{} — {case}: {e:?}", f.path));
                    let (applied, errors) = if f.path.ends_with("ImportBankReturn") {
                        let answer = ca::ImportBankReturnResponse::decode(answer[0].as_slice()).expect("answer");
                        (answer.applied, answer.errors)
                    } else {
                        let answer = cmp::ImportDeathRegisterResponse::decode(answer[0].as_slice()).expect("answer");
                        let result = answer.result.expect("result");
                        (result.rows_applied, result.errors)
                    };
                    assert_eq!((applied, errors.len()), (0, f.messages.len()), "{} — {case}", f.path);
                    let said = format!("{errors:?}");
                    assert!(!people.iter().any(|p| said.contains(p.as_str())), "{} — {case}: names a person", f.path);
                    cells += 1;
                }
            } else if f.scoped && rule.scope != Scope::None {
                refused(
                    "an officer of another county",
                    call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&valid(&elsewhere(permitted, true))))
                        .await,
                    &jurisdiction,
                );
                cells += 1;
                if f.township_data {
                    refused(
                        "an officer of another township",
                        call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&valid(&elsewhere(permitted, false))))
                            .await,
                        &jurisdiction,
                    );
                    cells += 1;
                }
            }
            let wrong = Claims { roles: vec![wrong_role(rule)], ..permitted.clone() };
            refused(
                "the wrong role",
                call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&valid(&wrong))).await,
                &[Code::PermissionDenied],
            );
            cells += 1;
            let after = digest(&db, schemas[f.service]).await;
            assert_eq!(before, after, "{}: a refused call changed {}", f.path, schemas[f.service]);
            // The permitted officer succeeds; the same assertion again is a replay.
            let assertion = valid(permitted);
            let answer = call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&assertion)).await;
            let answer = match (&f.path[..], answer) {
                // An operator's retry of a dead letter that does not exist: admitted, then not found.
                (p, Err(s)) if p.ends_with("RetryDeadLetter") && s.code() == Code::NotFound => Ok(vec![]),
                // A recovery of a payment not overpaid: admitted, then nothing to recover.
                (p, Err(s)) if p.ends_with("RecordRecovery") && s.code() == Code::NotFound => Ok(vec![]),
                (_, a) => a,
            };
            answer.unwrap_or_else(|e| panic!("{}: the permitted officer was refused: {e:?}", f.path));
            let settled_after = settled(&db, schemas[f.service]).await;
            refused(
                "a replayed assertion",
                call(gateway.clone(), f.kind, &f.path, &f.messages, Some(&assertion)).await,
                &[Code::Unauthenticated],
            );
            assert_eq!(
                settled_after,
                digest(&db, schemas[f.service]).await,
                "{}: the replay changed something",
                f.path
            );
            cells += 2;
        } else {
            let after = digest(&db, schemas[f.service]).await;
            assert_eq!(before, after, "{}: a refused call changed {}", f.path, schemas[f.service]);
        }
        if let Some(system) = f.system {
            let ch = env.channel(system, addr).await;
            call(ch, f.kind, &f.path, &f.messages, None)
                .await
                .unwrap_or_else(|e| panic!("{}: the permitted system {system} was refused: {e:?}", f.path));
            cells += 1;
        }
    }
    println!("access matrix: {} methods on {} services, {cells} calls", fixtures.len(), addrs.len());
    drop(all);
}
