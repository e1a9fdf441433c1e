//! The monthly payment roll (R-PROC-1; issue 23, item 2): prepared from the
//! roster, signed by another officer, exported per bank, the bank's return
//! file with one failure imported, the failure listed, the month paid once.

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{DivisionCode, OfficerRole, YearMonth};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;
use dibao_tests::officer;

fn payee(bank: &str, account: &str) -> Option<Payee> {
    Some(Payee { bank: bank.into(), account: account.into(), holder_name: "王建国".into() })
}

fn prepare(month: i32) -> PrepareRollRequest {
    PrepareRollRequest {
        county: Some(DivisionCode { code: COUNTY.into() }),
        month: Some(YearMonth { year: 2026, month }),
    }
}

fn returned(row: i64, roll_id: &str, reference: &str, paid: bool, reason: &str) -> ImportBankReturnRequest {
    ImportBankReturnRequest { row, roll_id: roll_id.into(), reference: reference.into(), paid, reason: reason.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_is_rolled_signed_exported_returned_with_a_failure_and_paid_once() {
    let mut r = start().await;
    // Three enrolled households: two paid through two banks, one without an account.
    let payees = [payee("梅河口农商银行", "6230520012345678901"), payee("中国邮政储蓄银行", "6210981234567890"), None];
    let rows: Vec<ImportRosterRequest> = payees
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let h = Household { payee: p.clone(), ..renumbered(&format!("{}0101", 1960 + i), 61) };
            roster_row(i as i64 + 1, &format!("HH-{i:03}"), h, 30_000 + i as i64 * 1_000)
        })
        .collect();
    let imported = r.client.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert_eq!(imported.households_applied, 3, "{:?}", imported.errors);
    // A bad account is refused with its field, the household kept out.
    let bad = Household { payee: payee("梅河口农商银行", "62305A"), ..renumbered("19700707", 61) };
    let refused = r
        .client
        .import_roster(tokio_stream::iter(vec![roster_row(9, "HH-BAD", bad, 30_000)]))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(refused.errors.len(), 1, "{refused:?}");
    assert_eq!(refused.errors[0].field, "household.payee.account");

    let mut payments = dibao_proto::civil_affairs::v1::payment_service_client::PaymentServiceClient::new(
        r.env
            .officer_channel(
                r.addr.parse().expect("addr"),
                r.env
                    .desk("civil-affairs", OfficerRole::CountyOperator, COUNTY)
                    .clock(std::sync::Arc::new(r.clock.clone())),
            )
            .await,
    );
    // Two months ahead is refused, naming the field.
    let e = payments.prepare_roll(prepare(8)).await.expect_err("too far ahead");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "month");
    let roll = payments.prepare_roll(prepare(6)).await.expect("roll").into_inner();
    assert_eq!(roll.households, 2);
    assert_eq!(roll.total.as_ref().map(|m| m.fen), Some(30_000 + 31_000));
    assert_eq!(roll.households_without_payee.len(), 1, "{roll:?}");
    // The month has its roll: a second is refused.
    let e = payments.prepare_roll(prepare(6)).await.expect_err("twice");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("同一月份只发放一次"), "{}", e.message());

    // Not exported before it is signed; not signed by who prepared it.
    let export = |bank: &str, format: FileFormat| ExportDisbursementRequest {
        roll_id: roll.roll_id.clone(),
        bank: bank.into(),
        format: format as i32,
    };
    let e = payments.export_disbursement(export("梅河口农商银行", FileFormat::Csv)).await.expect_err("unsigned");
    assert_eq!(e.code(), Code::FailedPrecondition);
    let sign = SignRollRequest { roll_id: roll.roll_id.clone() };
    let e = payments
        .sign_roll(dibao_tests::by(
            dibao_platform::trust::officer::Claims {
                roles: vec![OfficerRole::CountyApprover],
                ..dibao_tests::claims(OfficerRole::CountyOperator, COUNTY)
            },
            sign.clone(),
        ))
        .await
        .expect_err("the preparer signs");
    assert_eq!(e.code(), Code::PermissionDenied);
    // Another county's approver does not find it.
    let e =
        payments.sign_roll(officer(OfficerRole::CountyApprover, "220582", sign.clone())).await.expect_err("elsewhere");
    assert_eq!(e.code(), Code::NotFound);
    payments.sign_roll(officer(OfficerRole::CountyApprover, COUNTY, sign.clone())).await.expect("signed");

    // Each bank's file: its own payees, accounts in full for the bank.
    let file = payments.export_disbursement(export("梅河口农商银行", FileFormat::Csv)).await.expect("csv").into_inner();
    assert_eq!((file.payments, file.total.as_ref().map(|m| m.fen)), (1, Some(30_000)));
    let csv = String::from_utf8(file.content).expect("utf-8");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines[0], "序号,业务编号,户编号,户名,账号,金额（元）,摘要");
    assert_eq!(lines[1], "1,220581202606000001,HH-000,王建国,6230520012345678901,300.00,2026年06月低保金");
    let xlsx =
        payments.export_disbursement(export("中国邮政储蓄银行", FileFormat::Xlsx)).await.expect("xlsx").into_inner();
    assert_eq!(&xlsx.content[..2], b"PK");
    let e = payments.export_disbursement(export("某某银行", FileFormat::Csv)).await.expect_err("no such bank");
    assert_eq!(e.get_details_bad_request().expect("details").field_violations[0].field, "bank");

    // The bank's return: one paid, one failed; a bad row named, the rest applied.
    let id = roll.roll_id.as_str();
    let back = payments
        .import_bank_return(tokio_stream::iter(vec![
            returned(2, id, "220581202606000001", true, ""),
            returned(3, id, "220581202606000002", false, "账户已销户"),
            returned(4, id, "220581202606000099", true, ""),
            returned(5, id, "220581202606000001", false, ""),
        ]))
        .await
        .expect("return")
        .into_inner();
    assert_eq!((back.applied, back.unchanged), (2, 0), "{back:?}");
    let errors: Vec<(i64, &str)> = back.errors.iter().map(|e| (e.row, e.field.as_str())).collect();
    assert_eq!(errors, [(4, "reference"), (5, "reason")], "{back:?}");
    // The same file again changes nothing; contradicting the bank's answer is refused.
    let again = payments
        .import_bank_return(tokio_stream::iter(vec![
            returned(2, id, "220581202606000001", true, ""),
            returned(3, id, "220581202606000002", true, ""),
        ]))
        .await
        .expect("again")
        .into_inner();
    assert_eq!((again.applied, again.unchanged, again.errors.len()), (0, 1, 1), "{again:?}");

    // The failure listed for follow-up; a township reader sees the account masked.
    let failed = payments
        .list_payments(ListPaymentsRequest { roll_id: id.into(), failed_only: true, page: None })
        .await
        .expect("failed")
        .into_inner();
    assert_eq!(failed.payments.len(), 1);
    assert_eq!(failed.payments[0].reason, "账户已销户");
    assert_eq!(failed.payments[0].payee.as_ref().map(|p| p.account.as_str()), Some("6210981234567890"));
    let household = failed.payments[0].household_id.clone();
    let history = payments
        .get_payment_history(officer(
            OfficerRole::TownshipCaseworker,
            "220581101",
            GetPaymentHistoryRequest { household_id: household.clone() },
        ))
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.payments.len(), 1);
    assert_eq!(history.payments[0].status, PaymentStatus::Failed as i32);
    assert_eq!(history.payments[0].payee.as_ref().map(|p| p.account.as_str()), Some("************7890"));
    let e = payments
        .get_payment_history(officer(
            OfficerRole::TownshipCaseworker,
            "220581102",
            GetPaymentHistoryRequest { household_id: household },
        ))
        .await
        .expect_err("another township");
    assert_eq!(e.code(), Code::NotFound);

    // Next month's roll takes the same households again, each once.
    let july = payments.prepare_roll(prepare(7)).await.expect("july").into_inner();
    assert_eq!(july.households, 2);

    // Deaths recorded late (issue 23, item 1): every member of HH-000 died
    // in May, so nothing was owed from June; June's payment is to recover,
    // July's (sent, not returned) to stop.
    let overpaid = || ListOverpaymentsRequest { county: Some(DivisionCode { code: COUNTY.into() }) };
    assert!(payments.list_overpayments(overpaid()).await.expect("none yet").into_inner().overpayments.is_empty());
    for seq in ["061", "062", "063", "064"] {
        r.client
            .record_death(officer(
                OfficerRole::TownshipCaseworker,
                "220581101",
                RecordDeathRequest {
                    identity_number: Some(crate::helpers::id("19600101", seq)),
                    died_on: Some(dibao_proto::common::v1::Date { year: 2026, month: 5, day: 20 }),
                    source: "公安死亡登记".into(),
                },
            ))
            .await
            .expect("death");
    }
    let listed = payments.list_overpayments(overpaid()).await.expect("overpayments").into_inner();
    let seen: Vec<(i32, i32, i64, i64)> = listed
        .overpayments
        .iter()
        .map(|o| {
            let p = o.payment.as_ref().expect("payment");
            let month = p.month.as_ref().map_or(0, |m| m.month);
            (month, p.status, o.owed.as_ref().map_or(-1, |m| m.fen), o.overpaid.as_ref().map_or(-1, |m| m.fen))
        })
        .collect();
    assert_eq!(
        seen,
        [(6, PaymentStatus::Paid as i32, 0, 30_000), (7, PaymentStatus::Pending as i32, 0, 30_000)],
        "{listed:?}"
    );
    assert!(listed.overpayments[0].reason.contains("家庭成员均已死亡"), "{listed:?}");
    assert_eq!(listed.total.map(|m| m.fen), Some(60_000));

    // Recovered (追回): checked by field, at most what is left, unknown to
    // another county; what is left stays listed. July's is stopped by the
    // bank's return.
    let reference = |i: usize| listed.overpayments[i].payment.as_ref().expect("payment").reference.clone();
    let (june, july_ref) = (reference(0), reference(1));
    let household_id = listed.overpayments[0].payment.as_ref().expect("payment").household_id.clone();
    let recover = |reference: &str, fen: i64, note: &str| RecordRecoveryRequest {
        reference: reference.into(),
        amount: Some(dibao_proto::common::v1::Money { fen }),
        note: note.into(),
    };
    let fields = |e: tonic::Status| -> Vec<String> {
        e.get_details_bad_request().expect("details").field_violations.into_iter().map(|v| v.field).collect()
    };
    let e = payments.record_recovery(recover(&june, 0, " ")).await.expect_err("nothing");
    assert_eq!(fields(e), ["amount", "note"]);
    let e = payments.record_recovery(recover(&june, 30_001, "家属退回")).await.expect_err("too much");
    assert_eq!(fields(e), ["amount"]);
    let e = payments
        .record_recovery(officer(OfficerRole::CountyOperator, "220582", recover(&june, 10_000, "家属退回")))
        .await
        .expect_err("another county");
    assert_eq!(e.code(), Code::NotFound);
    let left = payments.record_recovery(recover(&june, 10_000, "家属退回现金，收据0001")).await.expect("part");
    assert_eq!(left.into_inner().outstanding.map(|m| m.fen), Some(20_000));
    let listed = payments.list_overpayments(overpaid()).await.expect("overpayments").into_inner();
    let june_left = &listed.overpayments[0];
    assert_eq!(
        (june_left.overpaid.as_ref().map(|m| m.fen), june_left.recovered.as_ref().map(|m| m.fen)),
        (Some(20_000), Some(10_000))
    );
    let left = payments.record_recovery(recover(&june, 20_000, "银行冲正，凭证0002")).await.expect("rest");
    assert_eq!(left.into_inner().outstanding.map(|m| m.fen), Some(0));
    let e = payments.record_recovery(recover(&june, 1, "再次")).await.expect_err("nothing left");
    assert_eq!(e.code(), Code::NotFound);
    // Money still at the bank is stopped, not recovered.
    let e = payments.record_recovery(recover(&july_ref, 100, "家属退回")).await.expect_err("at the bank");
    assert_eq!(fields(e), ["reference"]);
    payments
        .sign_roll(officer(OfficerRole::CountyApprover, COUNTY, SignRollRequest { roll_id: july.roll_id.clone() }))
        .await
        .expect("july signed");
    let back = payments
        .import_bank_return(tokio_stream::iter(vec![returned(1, &july.roll_id, &july_ref, false, "户主死亡，停发")]))
        .await
        .expect("return")
        .into_inner();
    assert_eq!(back.applied, 1, "{back:?}");
    let listed = payments.list_overpayments(overpaid()).await.expect("overpayments").into_inner();
    assert!(listed.overpayments.is_empty() && listed.total.map(|m| m.fen) == Some(0), "{listed:?}");

    // Each change told the other services where the household stands:
    // per deceased member, the months after the death still overpaid.
    let months: Vec<Vec<usize>> = household_events(&r.env.broker, &r.topic)
        .into_iter()
        .filter(|(key, _)| *key == household_id)
        .filter_map(|(_, e)| match e.payload {
            Some(dibao_proto::events::v1::event_envelope::Payload::PaidAfterDeath(p)) => {
                Some(p.deceased.iter().map(|d| d.months.len()).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(months[months.len() - 4..], [vec![2; 4], vec![2; 4], vec![1; 4], vec![0; 4]], "{months:?}");
}
