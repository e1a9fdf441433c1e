//! A county's month paid as the county and its bank do it, for tests that
//! need money paid before they look at what follows (a death, a recovery):
//! the roll prepared, then — once the caller has had it signed by another
//! officer — every payment returned paid by the bank.

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::payment_service_client::PaymentServiceClient;
use dibao_proto::common::v1::{DivisionCode, YearMonth};
use dibao_tests::OfficerChannel;

/// `county`'s roll of the month starting `month`, prepared by `office`.
pub async fn prepare(
    office: &mut PaymentServiceClient<OfficerChannel>,
    county: &str,
    month: time::Date,
) -> ca::PrepareRollResponse {
    office
        .prepare_roll(ca::PrepareRollRequest {
            county: Some(DivisionCode { code: county.into() }),
            month: Some(YearMonth { year: month.year(), month: i32::from(month.month() as u8) }),
        })
        .await
        .expect("the roll")
        .into_inner()
}

/// The bank's return of a signed roll with every payment paid, imported by
/// `office`; the roll's payments.
pub async fn bank_pays_all(office: &mut PaymentServiceClient<OfficerChannel>, roll_id: &str) -> Vec<ca::Payment> {
    let payments = office
        .list_payments(ca::ListPaymentsRequest { roll_id: roll_id.into(), failed_only: false, page: None })
        .await
        .expect("the roll's payments")
        .into_inner()
        .payments;
    let rows = payments.iter().enumerate().map(|(i, p)| ca::ImportBankReturnRequest {
        row: i as i64 + 1,
        roll_id: roll_id.into(),
        reference: p.reference.clone(),
        paid: true,
        reason: String::new(),
    });
    let back = office
        .import_bank_return(tokio_stream::iter(rows.collect::<Vec<_>>()))
        .await
        .expect("the bank's return")
        .into_inner();
    assert_eq!(back.applied as usize, payments.len(), "{back:?}");
    payments
}
