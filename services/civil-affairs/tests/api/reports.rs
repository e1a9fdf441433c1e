//! Upward reports (R-AUD-3; issue 23, item 5): a quarter's figures equal
//! what the test imported, exited, paid and was told; the same report made
//! again from the records is the same bytes, whatever was recorded since;
//! rolled up to the province; kept, exported and published; refused outside
//! the jurisdiction and for a period not yet begun, naming the field.

use dibao_civil_affairs::startup::{self, Application};
use dibao_platform::runtime::clock::china_date;
use dibao_platform::trust::officer::Claims;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::civil_affairs::v1::complaint_service_client::ComplaintServiceClient;
use dibao_proto::civil_affairs::v1::payment_service_client::PaymentServiceClient;
use dibao_proto::civil_affairs::v1::report_service_client::ReportServiceClient;
use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{Date, DivisionCode, OfficerRole, YearMonth};
use dibao_proto::events::v1::{BenefitCategory, Programme, event_envelope::Payload};
use dibao_tests::{Spawn, TestEnv, claims, officer, spawn_with};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

fn payee(account: &str) -> Option<Payee> {
    Some(Payee { bank: "梅河口农商银行".into(), account: account.into(), holder_name: "王建国".into() })
}

fn complaint(today: Date) -> FileComplaintRequest {
    FileComplaintRequest {
        division: Some(DivisionCode { code: "220581101".into() }),
        channel: ComplaintChannel::Phone as i32,
        received_on: Some(today),
        anonymous: true,
        content: "反映有村民隐瞒务工收入享受低保".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarter_is_reported_as_recorded_rolled_up_and_made_again_byte_for_byte() {
    // The system clock: the roster's ledger is dated by the database's.
    let env = TestEnv::start().await;
    let app = spawn_with::<Application>(&env, Spawn::default()).await;
    let office = Claims {
        roles: vec![OfficerRole::CountyApprover, OfficerRole::CountyOperator],
        ..claims(OfficerRole::CountyApprover, COUNTY)
    };
    let channel = env
        .officer_channel(app.addr, env.desk(startup::SERVICE, OfficerRole::CountyApprover, COUNTY).claims(office))
        .await;
    let mut civil = CivilAffairsServiceClient::new(channel.clone());
    let mut payments = PaymentServiceClient::new(channel.clone());
    let mut complaints = ComplaintServiceClient::new(channel.clone());
    let mut reports = ReportServiceClient::new(channel);
    let today = china_date(time::OffsetDateTime::now_utc());
    let (year, month) = (today.year(), i32::from(today.month() as u8));
    let today_pb = Date { year, month, day: i32::from(today.day()) };
    save_policy(&mut civil, policy(50_000, year, month)).await;

    // Three households imported (a migration), one of which then loses its
    // last living member and leaves the roster when its exit is signed.
    let rows: Vec<ImportRosterRequest> = [("19600101", 61, 30_000), ("19610101", 61, 31_000), ("19620101", 61, 32_000)]
        .iter()
        .enumerate()
        .map(|(i, (birth, seq, fen))| {
            let h = Household { payee: payee(&format!("623052001234567890{i}")), ..renumbered(birth, *seq) };
            roster_row(i as i64 + 1, &format!("HH-{i:03}"), h, *fen)
        })
        .collect();
    let imported = civil.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert_eq!(imported.households_applied, 3, "{:?}", imported.errors);
    let mut exit = String::new();
    for seq in ["061", "062", "063", "064"] {
        exit = civil
            .record_death(officer(
                OfficerRole::TownshipCaseworker,
                "220581101",
                RecordDeathRequest {
                    identity_number: Some(id("19620101", seq)),
                    died_on: Some(today_pb),
                    source: "公安死亡登记".into(),
                },
            ))
            .await
            .expect("death")
            .into_inner()
            .exit_application_id;
    }
    // No living member left: its exit, opened by the last death, signed.
    dibao_test_mesh::exits::sign_exit(&mut civil, &exit, "220581101").await;
    // This month's roll: prepared by the operator, signed by the approver;
    // the bank pays one and fails the other.
    let roll = payments
        .prepare_roll(officer(
            OfficerRole::CountyOperator,
            COUNTY,
            PrepareRollRequest {
                county: Some(DivisionCode { code: COUNTY.into() }),
                month: Some(YearMonth { year, month }),
            },
        ))
        .await
        .expect("roll")
        .into_inner();
    assert_eq!(roll.households, 2, "{roll:?}");
    payments
        .sign_roll(officer(OfficerRole::CountyApprover, COUNTY, SignRollRequest { roll_id: roll.roll_id.clone() }))
        .await
        .expect("signed");
    let listed = payments
        .list_payments(ListPaymentsRequest { roll_id: roll.roll_id.clone(), failed_only: false, page: None })
        .await
        .expect("payments")
        .into_inner()
        .payments;
    let back = |row: i64, p: &Payment, paid: bool| ImportBankReturnRequest {
        row,
        roll_id: roll.roll_id.clone(),
        reference: p.reference.clone(),
        paid,
        reason: if paid { String::new() } else { "账户已销户".into() },
    };
    let returned = payments
        .import_bank_return(officer(
            OfficerRole::CountyOperator,
            COUNTY,
            tokio_stream::iter(vec![back(2, &listed[0], true), back(3, &listed[1], false)]),
        ))
        .await
        .expect("return")
        .into_inner();
    assert_eq!(returned.applied, 2, "{returned:?}");
    let paid_fen = listed[0].amount.as_ref().map(|m| m.fen).expect("amount");
    complaints.file_complaint(complaint(today_pb)).await.expect("complaint");
    // What a report reads is what had committed two seconds before it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let quarter = (today.month() as u8).div_ceil(3);
    let ask = |division: &str| GenerateReportRequest {
        division: Some(DivisionCode { code: division.into() }),
        period: Some(ReportPeriod { year, month: 0, quarter: i32::from(quarter) }),
        reproduce_report_id: String::new(),
    };
    let report = reports.generate_report(ask(COUNTY)).await.expect("report").into_inner().report.expect("report");
    assert_eq!(report.division_name, "梅河口市");
    let total = report.total.clone().expect("total");
    assert_eq!((total.households, total.persons), (2, 8), "{total:?}");
    assert_eq!(
        total.on_roster,
        [RosterCount {
            programme: Programme::Dibao as i32,
            category: BenefitCategory::C as i32,
            households: 2,
            persons: 8,
            monthly_amount: Some(dibao_proto::common::v1::Money { fen: 61_000 }),
        }]
    );
    assert_eq!((total.imported_households, total.enrolled_households, total.exited_households), (3, 0, 1));
    assert_eq!((total.payments_paid, total.payments_failed, total.payments_pending), (1, 1, 0));
    assert_eq!(total.paid.as_ref().map(|m| m.fen), Some(paid_fen));
    assert_eq!((total.complaints_received, total.complaints_open, total.complaints_closed), (1, 1, 0));
    assert_eq!(report.counties.len(), 1);
    assert_eq!(report.counties[0], total);
    assert_eq!(report.sha256.len(), 64);

    // Recorded since: another complaint. The report made again from the
    // records as they stood is the same bytes; a new one counts it.
    complaints.file_complaint(complaint(today_pb)).await.expect("another complaint");
    let again = reports
        .generate_report(GenerateReportRequest { reproduce_report_id: report.report_id.clone(), ..Default::default() })
        .await
        .expect("again")
        .into_inner();
    assert!(again.identical, "regenerated differently");
    assert_eq!(again.report.as_ref(), Some(&report));
    let file = || ExportReportRequest { report_id: report.report_id.clone() };
    let xlsx = reports.export_report(file()).await.expect("xlsx").into_inner();
    assert_eq!(&xlsx.content[..2], b"PK");
    assert!(xlsx.filename.starts_with("220581梅河口市"), "{}", xlsx.filename);
    assert_eq!(reports.export_report(file()).await.expect("xlsx again").into_inner().content, xlsx.content);

    // The province's auditor rolls the province up: the county's row and the same total.
    let province = reports
        .generate_report(officer(OfficerRole::ProvinceAuditor, PROVINCE, ask(PROVINCE)))
        .await
        .expect("province")
        .into_inner()
        .report
        .expect("report");
    assert_eq!(province.division_name, "吉林省");
    assert_eq!(province.counties.len(), 1, "only counties with records");
    assert_eq!(province.counties[0].households, 2);
    let listed = reports
        .list_reports(officer(
            OfficerRole::ProvinceAuditor,
            PROVINCE,
            ListReportsRequest { division: Some(DivisionCode { code: PROVINCE.into() }) },
        ))
        .await
        .expect("list")
        .into_inner()
        .reports;
    let ids: Vec<&str> = listed.iter().map(|r| r.report_id.as_str()).collect();
    assert!(ids.contains(&report.report_id.as_str()) && ids.contains(&province.report_id.as_str()), "{ids:?}");

    // Refused: another county's report and the province, a period not yet
    // begun, a township; another county's officer does not find the report.
    let e = reports
        .generate_report(officer(OfficerRole::CountyApprover, "220582", ask(COUNTY)))
        .await
        .expect_err("another county");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("division"), "{}", e.message());
    let e = reports
        .generate_report(GenerateReportRequest {
            period: Some(ReportPeriod { year: year + 1, month: 1, quarter: 0 }),
            ..ask(COUNTY)
        })
        .await
        .expect_err("not yet begun");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "period");
    let e = reports.generate_report(ask("220581101")).await.expect_err("a township");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "division");
    let e = reports
        .get_report(officer(
            OfficerRole::CountyApprover,
            "220582",
            GetReportRequest { report_id: report.report_id.clone() },
        ))
        .await
        .expect_err("another county's officer");
    assert_eq!(e.code(), Code::NotFound);

    // Published for the poverty office, which reads this topic.
    let published: Vec<String> = household_events(&env.broker, &env.topic(startup::HOUSEHOLD_TOPIC))
        .into_iter()
        .filter_map(|(_, e)| match e.payload {
            Some(Payload::UpwardReportPublished(p)) => Some(p.report_id),
            _ => None,
        })
        .collect();
    assert!(published.contains(&report.report_id) && published.contains(&province.report_id), "{published:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_month_and_last_quarter_are_reported_on_the_schedule_once() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 6)).await;
    // 2 July: June's report and the second quarter's are due. Two more
    // replicas start; the schedule runs at each start-up, and each report
    // is made once.
    r.clock.advance(time::Duration::days(22));
    let clock = std::sync::Arc::new(r.clock.clone());
    let _replicas = [
        spawn_with::<Application>(&r.env, Spawn::default().clock(clock.clone())).await,
        spawn_with::<Application>(&r.env, Spawn::default().clock(clock.clone())).await,
    ];
    let mut reports = ReportServiceClient::new(
        r.env
            .officer_channel(
                r.addr.parse().expect("addr"),
                r.env.desk(startup::SERVICE, OfficerRole::ProvinceAuditor, PROVINCE).clock(clock.clone()),
            )
            .await,
    );
    let list = ListReportsRequest { division: Some(DivisionCode { code: PROVINCE.into() }) };
    let mut made = Vec::new();
    for _ in 0..100 {
        made = reports.list_reports(list.clone()).await.expect("list").into_inner().reports;
        if made.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let periods: Vec<(String, Option<ReportPeriod>, bool)> =
        made.iter().map(|m| (m.division.clone().unwrap_or_default().code, m.period, m.scheduled)).collect();
    assert_eq!(
        periods,
        [
            (PROVINCE.to_owned(), Some(ReportPeriod { year: 2026, month: 0, quarter: 2 }), true),
            (PROVINCE.to_owned(), Some(ReportPeriod { year: 2026, month: 6, quarter: 0 }), true),
        ]
    );
    let published = household_events(&r.env.broker, &r.topic)
        .into_iter()
        .filter(|(_, e)| matches!(e.payload, Some(Payload::UpwardReportPublished(_))))
        .count();
    assert_eq!(published, 2);
}
