//! The monthly payment roll (R-PROC-1 "certificate and payment"; seed 000
//! asks whether the benefit reached the household's passbook or card): for a
//! county and month, the roll from the roster — each enrolled household
//! with its amount and payee — prepared by the county's operator, signed by
//! its approver (not the one who prepared it), exported as each bank's
//! disbursement file, and the bank's return file imported row by row: paid,
//! or failed with the bank's reason, the failures listed for follow-up.
//! A county's month has one roll and a household is paid once for a month
//! (the database's unique keys, not only these checks, say so).

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::store::import::{ImportRow, Imported};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::{self as common, OfficerRole};
use dibao_proto::types::{DivisionCode, DivisionLevel, Fen, InvalidField, masked_account};
use time::Date;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::convert;
use crate::households::{self, Roster};

/// Who reads payees' accounts in full: the county's offices, which pay them.
pub const HANDLES_PAYMENTS: &[OfficerRole] = &[OfficerRole::CountyApprover, OfficerRole::CountyOperator];

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("发放名册{0}不存在")]
    NotFound(Uuid),
    #[error("{county}{year}年{month}月的发放名册已经编制（{roll_id}），同一月份只发放一次")]
    RollExists { county: String, year: i32, month: u8, roll_id: Uuid },
    #[error("该名册已签发")]
    AlreadySigned,
    #[error("名册尚未签发，不能导出发放文件")]
    NotSigned,
    #[error("名册编制人不能签发同一名册，请由另一名县级审批人员签发")]
    SameOfficer,
    #[error("家庭{0}不存在")]
    HouseholdNotFound(Uuid),
    #[error("没有业务编号为{0}、尚待追回的多发款项")]
    NoOverpayment(String),
}

impl Refusal for PaymentError {
    fn kind(&self) -> RefusalKind {
        match self {
            PaymentError::NotFound(_) | PaymentError::HouseholdNotFound(_) | PaymentError::NoOverpayment(_) => {
                RefusalKind::NotFound
            }
            PaymentError::SameOfficer => RefusalKind::PermissionDenied,
            PaymentError::RollExists { .. } | PaymentError::AlreadySigned | PaymentError::NotSigned => {
                RefusalKind::FailedPrecondition
            }
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            PaymentError::NotFound(_) => "ROLL_NOT_FOUND",
            PaymentError::HouseholdNotFound(_) => "HOUSEHOLD_NOT_FOUND",
            PaymentError::NoOverpayment(_) => "NO_OVERPAYMENT",
            PaymentError::RollExists { .. } => "MONTH_ALREADY_ON_A_ROLL",
            PaymentError::AlreadySigned => "ROLL_ALREADY_SIGNED",
            PaymentError::NotSigned => "ROLL_NOT_SIGNED",
            PaymentError::SameOfficer => "PREPARER_MAY_NOT_SIGN",
        }
    }
}

fn roll_id(raw: &str) -> Result<Uuid, InvalidField> {
    convert::uuid(raw, "roll_id", "名册编号格式不正确")
}

/// A roll to prepare, checked.
pub struct RollRequest {
    county: DivisionCode,
    month: Date,
}

impl RollRequest {
    pub fn check(req: &pb::PrepareRollRequest, officer: &Officer, this_month: Date) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let county = convert::division(&req.county, "county").map_err(|e| errors.push(e)).ok();
        // Outside the jurisdiction: refused before anything else is said.
        if let Some(c) = &county {
            officer.must_cover(c, "county")?;
        }
        if county.as_ref().is_some_and(|c| c.level() != DivisionLevel::County) {
            errors.push(InvalidField::new("county", "应填写6位县级行政区划代码"));
        }
        let month = convert::year_month(&req.month, "month").map_err(|e| errors.push(e)).ok();
        let next_month = dibao_platform::runtime::clock::add_months(this_month, 1);
        if month.is_some_and(|m| m > next_month) {
            errors.push(InvalidField::new("month", "只能编制本月、下月或以前月份的发放名册"));
        }
        match (county, month, errors.is_empty()) {
            (Some(county), Some(month), true) => Ok(Self { county, month }),
            _ => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// The roll of a county's month: every household enrolled (or in gradual
/// exit) on the month's last day with an amount and a payee, in village
/// order; each payment's reference is the county, the month and its place.
#[tracing::instrument(skip_all, fields(county = %r.county, month = %r.month))]
pub async fn prepare(roster: &Roster, officer: &Officer, r: RollRequest) -> Result<pb::PrepareRollResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    // One roll per county and month: the second preparer waits, then is refused.
    let key = format!("roll:{}:{}", r.county, r.month);
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key]).await?;
    if let Some(row) = tx
        .query_opt("SELECT roll_id FROM payment_roll WHERE county = $1 AND month = $2", &[&r.county.as_str(), &r.month])
        .await?
    {
        return Err(PaymentError::RollExists {
            county: r.county.to_string(),
            year: r.month.year(),
            month: r.month.month() as u8,
            roll_id: row.get("roll_id"),
        }
        .into());
    }
    let last_day = dibao_platform::runtime::clock::add_months(r.month, 1).previous_day().unwrap_or(r.month);
    let rows = tx
        .query(
            &format!(
                "SELECT {} FROM household
                 WHERE county = $1 AND status IN ($2, $3) AND enrolled_on <= $4 AND monthly_amount_fen > 0
                   AND NOT EXISTS (SELECT 1 FROM payment p WHERE p.household_id = household.household_id AND p.month = $5)
                 ORDER BY village, household_id",
                households::COLUMNS
            ),
            &[
                &r.county.as_str(),
                &(pb::HouseholdStatus::Enrolled as i32),
                &(pb::HouseholdStatus::GradualExit as i32),
                &last_day,
                &r.month,
            ],
        )
        .await?;
    let roll = Uuid::now_v7();
    let prefix = format!("{}{:04}{:02}", r.county, r.month.year(), r.month.month() as u8);
    let (mut references, mut ids, mut amounts, mut banks, mut accounts, mut holders) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut without_payee = Vec::new();
    for row in &rows {
        let household = households::household_of(row)?;
        let id: Uuid = row.get("household_id");
        let mut errors = Vec::new();
        if let Some(p) = &household.payee {
            convert::payee(p, "payee", &mut errors);
        }
        let Some(payee) = household.payee.filter(|_| errors.is_empty()) else {
            without_payee.push(id.to_string());
            continue;
        };
        references.push(format!("{prefix}{:06}", references.len() + 1));
        ids.push(id);
        amounts.push(row.get::<_, i64>("monthly_amount_fen"));
        banks.push(payee.bank.trim().to_owned());
        accounts.push(payee.account.trim().to_owned());
        holders.push(payee.holder_name.trim().to_owned());
    }
    let total: i64 = amounts.iter().sum();
    tx.execute(
        "INSERT INTO payment_roll (roll_id, county, month, status, households, total_fen, prepared_at, prepared_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &roll,
            &r.county.as_str(),
            &r.month,
            &(pb::RollStatus::Prepared as i32),
            &(ids.len() as i32),
            &total,
            &now,
            &officer.officer_id,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO payment (reference, roll_id, household_id, month, amount_fen, bank, account, holder_name, status)
         SELECT reference, $2, household_id, $3, amount_fen, bank, account, holder_name, $9
         FROM unnest($1::text[], $4::uuid[], $5::bigint[], $6::text[], $7::text[], $8::text[])
              AS p (reference, household_id, amount_fen, bank, account, holder_name)",
        &[
            &references,
            &roll,
            &r.month,
            &ids,
            &amounts,
            &banks,
            &accounts,
            &holders,
            &(pb::PaymentStatus::Pending as i32),
        ],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(roll_id = %roll, households = ids.len(), total_fen = total, "payment roll prepared");
    Ok(pb::PrepareRollResponse {
        roll_id: roll.to_string(),
        households: ids.len() as i32,
        total: Some(common::Money { fen: total }),
        households_without_payee: without_payee,
    })
}

/// A roll as stored, after the caller's jurisdiction was checked.
struct Roll {
    county: String,
    month: Date,
    status: pb::RollStatus,
    prepared_by: String,
}

/// The roll, if `reader`'s jurisdiction holds its county; otherwise as if
/// it did not exist. `lock` for a change.
async fn roll(tx: &Transaction<'_>, reader: &Reader, id: Uuid, lock: bool) -> Result<Roll, Error> {
    let sql = format!(
        "SELECT county, month, status, prepared_by FROM payment_roll WHERE roll_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = tx.query_opt(&sql, &[&id]).await?.ok_or(PaymentError::NotFound(id))?;
    let county: String = row.get("county");
    if !DivisionCode::parse(&county).is_ok_and(|c| reader.covers(&c)) {
        return Err(PaymentError::NotFound(id).into());
    }
    Ok(Roll {
        county,
        month: row.get("month"),
        status: pb::RollStatus::try_from(row.get::<_, i32>("status")).unwrap_or_default(),
        prepared_by: row.get("prepared_by"),
    })
}

/// The county approver signs a prepared roll; its preparer may not.
#[tracing::instrument(skip(roster, reader, officer))]
pub async fn sign(
    roster: &Roster,
    reader: &Reader,
    officer: &Officer,
    id: &str,
) -> Result<pb::SignRollResponse, Error> {
    let id = roll_id(id)?;
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let held = roll(&tx, reader, id, true).await?;
    if held.status != pb::RollStatus::Prepared {
        return Err(PaymentError::AlreadySigned.into());
    }
    if held.prepared_by == officer.officer_id {
        return Err(PaymentError::SameOfficer.into());
    }
    tx.execute(
        "UPDATE payment_roll SET status = $2, signed_at = $3, signed_by = $4, assertion_id = $5 WHERE roll_id = $1",
        &[&id, &(pb::RollStatus::Signed as i32), &roster.clock.now(), &officer.officer_id, &officer.assertion_id],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(roll_id = %id, "payment roll signed");
    Ok(pb::SignRollResponse {})
}

const FILE_HEADERS: [&str; 7] = ["序号", "业务编号", "户编号", "户名", "账号", "金额（元）", "摘要"];

/// One bank's disbursement file of a signed roll: the accounts in full, as
/// the bank pays them; the export on record as a read of the county.
pub async fn export(
    roster: &Roster,
    reader: &Reader,
    req: pb::ExportDisbursementRequest,
) -> Result<pb::ExportDisbursementResponse, Error> {
    let id = roll_id(&req.roll_id)?;
    let bank = req.bank.trim().to_owned();
    let format = pb::FileFormat::try_from(req.format).unwrap_or(pb::FileFormat::Unspecified);
    let mut errors = Vec::new();
    if bank.is_empty() {
        errors.push(InvalidField::new("bank", "请填写开户银行"));
    }
    if format == pb::FileFormat::Unspecified {
        errors.push(InvalidField::new("format", "请选择文件格式：CSV或xlsx"));
    }
    if !errors.is_empty() {
        return Err(Error::InvalidArgument(errors));
    }
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let held = roll(&tx, reader, id, false).await?;
    if held.status != pb::RollStatus::Signed {
        return Err(PaymentError::NotSigned.into());
    }
    let rows = tx
        .query(
            "SELECT p.reference, coalesce(h.source_id, '') AS household_number, p.holder_name, p.account, p.amount_fen
             FROM payment p JOIN household h USING (household_id)
             WHERE p.roll_id = $1 AND p.bank = $2 ORDER BY p.reference",
            &[&id, &bank],
        )
        .await?;
    tx.commit().await?;
    if rows.is_empty() {
        return Err(InvalidField::new("bank", format!("该名册中没有在“{bank}”开户的发放对象")).into());
    }
    let county = DivisionCode::parse(&held.county).map_err(|_| Error::stored("roll county"))?;
    roster.log.record(reader.bulk_entry(&county, "导出低保金发放文件")).await?;
    let memo = format!("{}年{:02}月低保金", held.month.year(), held.month.month() as u8);
    let mut total = 0i64;
    let lines: Vec<[String; 7]> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let amount: i64 = r.get("amount_fen");
            total += amount;
            [
                (i + 1).to_string(),
                r.get("reference"),
                r.get("household_number"),
                r.get("holder_name"),
                r.get("account"),
                Fen(amount).to_string().trim_end_matches('元').to_owned(),
                memo.clone(),
            ]
        })
        .collect();
    let stem = format!("disbursement-{}-{:04}{:02}-{}", held.county, held.month.year(), held.month.month() as u8, bank);
    let (filename, content) = match format {
        pb::FileFormat::Xlsx => (format!("{stem}.xlsx"), to_xlsx(&memo, &lines)?),
        _ => (format!("{stem}.csv"), dibao_platform::files::tabular::csv_document(&FILE_HEADERS, &lines)),
    };
    Ok(pb::ExportDisbursementResponse {
        filename,
        content,
        payments: lines.len() as i32,
        total: Some(common::Money { fen: total }),
    })
}

fn to_xlsx(title: &str, lines: &[[String; 7]]) -> Result<Vec<u8>, Error> {
    use rust_xlsxwriter::{Format, Workbook};
    let xlsx = |e: rust_xlsxwriter::XlsxError| Error::Unexpected(anyhow::anyhow!("xlsx: {e}"));
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("发放明细").map_err(xlsx)?;
    let bold = Format::new().set_bold();
    sheet.write_string_with_format(0, 0, title, &bold).map_err(xlsx)?;
    for (c, h) in FILE_HEADERS.iter().enumerate() {
        sheet.write_string_with_format(1, c as u16, *h, &bold).map_err(xlsx)?;
    }
    for (i, line) in lines.iter().enumerate() {
        for (c, v) in line.iter().enumerate() {
            // Accounts and amounts stay text: no spreadsheet rounds them.
            sheet.write_string(2 + i as u32, c as u16, v).map_err(xlsx)?;
        }
    }
    workbook.save_to_buffer().map_err(xlsx)
}

/// The bank's return file, on the platform's import driver: each row marks
/// one pending payment paid or failed; a row as already recorded changes
/// nothing, a row contradicting what the bank returned before is refused.
pub struct BankReturn<'a>(pub &'a Roster, pub &'a Reader);

impl ImportRow for BankReturn<'_> {
    type Row = pb::ImportBankReturnRequest;

    fn row_number(row: &Self::Row) -> i64 {
        row.row
    }

    async fn apply(&self, tx: &Transaction<'_>, row: &Self::Row) -> Result<Imported, Error> {
        let mut errors = Vec::new();
        let id = roll_id(&row.roll_id).map_err(|e| errors.push(e)).ok();
        let reference = row.reference.trim();
        if reference.is_empty() {
            errors.push(InvalidField::new("reference", "请填写业务编号"));
        }
        let reason = row.reason.trim();
        if !row.paid && reason.is_empty() {
            errors.push(InvalidField::new("reason", "发放失败的，请填写银行退回原因"));
        }
        let (Some(id), true) = (id, errors.is_empty()) else {
            return Err(Error::InvalidArgument(errors));
        };
        let held = roll(tx, self.1, id, false).await.map_err(|_| InvalidField::new("roll_id", "没有该发放名册"))?;
        if held.status != pb::RollStatus::Signed {
            return Err(InvalidField::new("roll_id", "名册尚未签发，银行不应有回盘").into());
        }
        let current: i32 = tx
            .query_opt(
                "SELECT status FROM payment WHERE roll_id = $1 AND reference = $2 FOR UPDATE",
                &[&id, &reference],
            )
            .await?
            .ok_or_else(|| InvalidField::new("reference", "该名册中没有此业务编号"))?
            .get("status");
        let status = if row.paid { pb::PaymentStatus::Paid } else { pb::PaymentStatus::Failed };
        if current == status as i32 {
            return Ok(Imported::Unchanged);
        }
        if current != pb::PaymentStatus::Pending as i32 {
            let was = if current == pb::PaymentStatus::Paid as i32 { "成功" } else { "失败" };
            return Err(InvalidField::new("paid", format!("银行此前已回盘为发放{was}，不能更改")).into());
        }
        let household: Uuid = tx
            .query_one(
                "UPDATE payment SET status = $3, reason = $4, returned_at = $5 WHERE roll_id = $1 AND reference = $2
                 RETURNING household_id",
                &[&id, &reference, &(status as i32), &reason, &self.0.clock.now()],
            )
            .await?
            .get(0);
        if status == pb::PaymentStatus::Failed {
            // A payment after a death that the bank returned is no longer overpaid.
            publish_paid_after_death(tx, &self.0.topic, household).await?;
        }
        Ok(Imported::Applied)
    }
}

const PAYMENT_COLUMNS: &str = "p.reference, p.roll_id, p.household_id, coalesce(h.source_id, '') AS household_number, \
                               p.month, p.amount_fen, p.bank, p.account, p.holder_name, p.status, p.reason";

fn payment_of(row: &Row, full: bool) -> pb::Payment {
    let account: String = row.get("account");
    pb::Payment {
        reference: row.get("reference"),
        household_id: row.get::<_, Uuid>("household_id").to_string(),
        household_number: row.get("household_number"),
        month: Some(convert::year_month_pb(row.get("month"))),
        amount: Some(common::Money { fen: row.get("amount_fen") }),
        payee: Some(pb::Payee {
            bank: row.get("bank"),
            account: if full { account } else { masked_account(&account) },
            holder_name: row.get("holder_name"),
        }),
        status: row.get("status"),
        reason: row.get("reason"),
        roll_id: row.get::<_, Uuid>("roll_id").to_string(),
    }
}

/// Whether `reader` sees accounts in full: the county's own offices.
fn sees_accounts(reader: &Reader) -> bool {
    reader.officer.as_ref().is_some_and(|o| o.role_among(HANDLES_PAYMENTS).is_some())
}

/// A roll's payments by reference, the failed only on request.
pub async fn list(
    roster: &Roster,
    reader: &Reader,
    req: pb::ListPaymentsRequest,
) -> Result<pb::ListPaymentsResponse, Error> {
    let id = roll_id(&req.roll_id)?;
    let page = req.page.unwrap_or_default();
    if !(0..=1000).contains(&page.page_size) {
        return Err(InvalidField::new("page.page_size", "每页条数应在1到1000之间").into());
    }
    let size = i64::from(if page.page_size == 0 { 100 } else { page.page_size });
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let held = roll(&tx, reader, id, false).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {PAYMENT_COLUMNS} FROM payment p JOIN household h USING (household_id)
                 WHERE p.roll_id = $1 AND p.reference > $2 AND (NOT $3 OR p.status = $4)
                 ORDER BY p.reference LIMIT $5"
            ),
            &[&id, &page.page_token, &req.failed_only, &(pb::PaymentStatus::Failed as i32), &(size + 1)],
        )
        .await?;
    tx.commit().await?;
    // Payees' names and accounts: on record as a read of the county's roll.
    let county = DivisionCode::parse(&held.county).map_err(|_| Error::stored("roll county"))?;
    roster.log.record(reader.bulk_entry(&county, "查阅低保金发放名册")).await?;
    let full = sees_accounts(reader);
    let more = rows.len() as i64 > size;
    let payments: Vec<pb::Payment> = rows.iter().take(size as usize).map(|r| payment_of(r, full)).collect();
    let next_page_token =
        if more { payments.last().map(|p| p.reference.clone()).unwrap_or_default() } else { String::new() };
    Ok(pb::ListPaymentsResponse {
        payments,
        page: Some(common::PageResponse { next_page_token }),
        status: held.status as i32,
    })
}

/// Every payment of one household, newest month first.
pub async fn history(
    roster: &Roster,
    reader: &Reader,
    req: &pb::GetPaymentHistoryRequest,
) -> Result<pb::GetPaymentHistoryResponse, Error> {
    let id = convert::uuid(&req.household_id, "household_id", "家庭编号格式不正确")?;
    let client = roster.pool.get().await?;
    let row = client
        .query_opt(&format!("SELECT {}, village FROM household WHERE household_id = $1", households::COLUMNS), &[&id])
        .await?;
    let Some(row) = row.filter(|r| DivisionCode::parse(r.get("village")).is_ok_and(|v| reader.covers(&v))) else {
        return Err(PaymentError::HouseholdNotFound(id).into());
    };
    households::log_read(roster, reader, &households::household_of(&row)?, "查阅低保金发放记录").await?;
    let full = sees_accounts(reader);
    let payments = client
        .query(
            &format!(
                "SELECT {PAYMENT_COLUMNS} FROM payment p JOIN household h USING (household_id)
                 WHERE p.household_id = $1 ORDER BY p.month DESC"
            ),
            &[&id],
        )
        .await?
        .iter()
        .map(|r| payment_of(r, full))
        .collect();
    Ok(pb::GetPaymentHistoryResponse { payments })
}

/// What a payment `p`'s household was owed for its month: the amount its
/// latest change effective by then set (`owed.to_fen`, `owed.reason`).
const OWED: &str = "JOIN LATERAL (SELECT a.to_fen, a.reason FROM amount_change a
                                  WHERE a.household_id = p.household_id AND a.effective_month <= p.month
                                  ORDER BY a.effective_month DESC, a.id DESC LIMIT 1) AS owed ON true";

/// A county's payments above what the household was owed for their month:
/// the amount in force for the month, as the household's amount changes
/// (a death's recalculation, a review, a new standard) later set it.
pub async fn overpayments(
    roster: &Roster,
    reader: &Reader,
    req: &pb::ListOverpaymentsRequest,
) -> Result<pb::ListOverpaymentsResponse, Error> {
    let county = convert::division(&req.county, "county")?;
    // Outside the jurisdiction: refused before anything else is said.
    reader.must_cover(&county, "county")?;
    if county.level() != DivisionLevel::County {
        return Err(InvalidField::new("county", "应填写6位县级行政区划代码").into());
    }
    let client = roster.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {PAYMENT_COLUMNS}, p.recovered_fen, owed.to_fen AS owed_fen, owed.reason AS owed_reason
                 FROM payment p JOIN household h USING (household_id) {OWED}
                 WHERE h.county = $1 AND p.status IN ($2, $3) AND p.amount_fen - p.recovered_fen > owed.to_fen
                 ORDER BY p.month, p.reference"
            ),
            &[&county.as_str(), &(pb::PaymentStatus::Pending as i32), &(pb::PaymentStatus::Paid as i32)],
        )
        .await?;
    let full = sees_accounts(reader);
    let overpayments: Vec<pb::Overpayment> = rows
        .iter()
        .map(|r| {
            let (paid, recovered, owed): (i64, i64, i64) =
                (r.get("amount_fen"), r.get("recovered_fen"), r.get("owed_fen"));
            pb::Overpayment {
                payment: Some(payment_of(r, full)),
                owed: Some(common::Money { fen: owed }),
                overpaid: Some(common::Money { fen: paid - recovered - owed }),
                reason: r.get("owed_reason"),
                recovered: Some(common::Money { fen: recovered }),
            }
        })
        .collect();
    let total = overpayments.iter().filter_map(|o| o.overpaid.as_ref()).map(|m| m.fen).sum();
    Ok(pb::ListOverpaymentsResponse { overpayments, total: Some(common::Money { fen: total }) })
}

/// A recovery to record, checked.
pub struct Recovery {
    reference: String,
    amount: i64,
    note: String,
}

impl Recovery {
    pub fn check(req: &pb::RecordRecoveryRequest) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let reference = req.reference.trim();
        if reference.is_empty() {
            errors.push(InvalidField::new("reference", "请填写多发款项的业务编号"));
        }
        let amount = req.amount.as_ref().map_or(0, |m| m.fen);
        if amount <= 0 {
            errors.push(InvalidField::new("amount", "追回金额应大于零（以分计）"));
        }
        let note = req.note.trim();
        if note.is_empty() {
            errors.push(InvalidField::new("note", "请写明追回方式和凭证号"));
        }
        if !errors.is_empty() {
            return Err(Error::InvalidArgument(errors));
        }
        Ok(Self { reference: reference.to_owned(), amount, note: note.to_owned() })
    }
}

/// Records money of an overpaid payment recovered: at most what is left
/// overpaid; the household's [`publish_paid_after_death`] follows.
#[tracing::instrument(skip_all, fields(reference = %r.reference))]
pub async fn record_recovery(
    roster: &Roster,
    reader: &Reader,
    officer: &Officer,
    r: Recovery,
) -> Result<pb::RecordRecoveryResponse, Error> {
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let not_found = || PaymentError::NoOverpayment(r.reference.clone());
    let row = tx
        .query_opt(
            &format!(
                "SELECT p.household_id, h.village, p.status,
                        p.amount_fen - p.recovered_fen - owed.to_fen AS outstanding
                 FROM payment p JOIN household h USING (household_id) {OWED}
                 WHERE p.reference = $1 AND p.status IN ($2, $3)
                 FOR UPDATE OF p"
            ),
            &[&r.reference, &(pb::PaymentStatus::Pending as i32), &(pb::PaymentStatus::Paid as i32)],
        )
        .await?
        // Another county's payment is as unknown as one that does not exist.
        .filter(|row| DivisionCode::parse(row.get("village")).is_ok_and(|v| reader.covers(&v)))
        .ok_or_else(not_found)?;
    let outstanding: i64 = row.get("outstanding");
    if outstanding <= 0 {
        return Err(not_found().into());
    }
    // Money still at the bank is stopped, not recovered: the bank's return
    // as failed takes it off the overpayments.
    if row.get::<_, i32>("status") == pb::PaymentStatus::Pending as i32 {
        return Err(InvalidField::new("reference", "该笔款项尚待银行回盘，应通知银行止付，不能记录追回").into());
    }
    if r.amount > outstanding {
        return Err(InvalidField::new("amount", format!("追回金额超过尚待追回的{}", Fen(outstanding))).into());
    }
    tx.execute(
        "INSERT INTO payment_recovery (reference, amount_fen, note, recorded_by, recorded_at, assertion_id, issuer)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &r.reference,
            &r.amount,
            &r.note,
            &officer.officer_id,
            &roster.clock.now(),
            &officer.assertion_id,
            &officer.issuer,
        ],
    )
    .await?;
    tx.execute(
        "UPDATE payment SET recovered_fen = recovered_fen + $2 WHERE reference = $1",
        &[&r.reference, &r.amount],
    )
    .await?;
    publish_paid_after_death(&tx, &roster.topic, row.get("household_id")).await?;
    tx.commit().await?;
    tracing::info!(amount_fen = r.amount, "overpayment recovered");
    Ok(pb::RecordRecoveryResponse { outstanding: Some(common::Money { fen: outstanding - r.amount }) })
}

/// Publishes where a household stands paid after its members' deaths
/// (`PaidAfterDeath`): per deceased member, the months after the death
/// still overpaid — paid or at the bank, above what the month was owed,
/// not recovered. The comparison's list (f) flags the member while any
/// remains. A household never paid for a month after a death publishes nothing.
pub async fn publish_paid_after_death(tx: &Transaction<'_>, topic: &str, household_id: Uuid) -> Result<(), Error> {
    use dibao_proto::events::v1::{DeceasedPaid, PaidAfterDeath, event_envelope::Payload};
    let rows = tx
        .query(
            &format!(
                "SELECT d.identity_number, d.name, d.died_on,
                        array_remove(array_agg(o.month ORDER BY o.month), NULL) AS months
                 FROM member_death d
                 LEFT JOIN LATERAL (SELECT p.month FROM payment p {OWED}
                                    WHERE p.household_id = d.household_id AND p.month > d.died_on
                                      AND p.status IN ($2, $3) AND p.amount_fen - p.recovered_fen > owed.to_fen) o ON true
                 WHERE d.household_id = $1
                 GROUP BY d.identity_number, d.name, d.died_on
                 ORDER BY d.identity_number"
            ),
            &[&household_id, &(pb::PaymentStatus::Pending as i32), &(pb::PaymentStatus::Paid as i32)],
        )
        .await?;
    // Only a household paid for a month after a death has anything to say
    // (or to take back): others publish nothing.
    let paid_after: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM payment p JOIN member_death d USING (household_id)
                            WHERE p.household_id = $1 AND p.month > d.died_on)",
            &[&household_id],
        )
        .await?
        .get(0);
    if rows.is_empty() || !paid_after {
        return Ok(());
    }
    let deceased = rows
        .iter()
        .map(|r| DeceasedPaid {
            identity_number: Some(common::IdentityNumber { value: r.get("identity_number") }),
            name: r.get("name"),
            died_on: Some(dibao_proto::types::date_to_pb(r.get("died_on"))),
            months: r.get::<_, Vec<Date>>("months").into_iter().map(convert::year_month_pb).collect(),
        })
        .collect();
    let version: i64 = tx
        .query_one(
            "UPDATE household SET version = version + 1 WHERE household_id = $1 RETURNING version",
            &[&household_id],
        )
        .await?
        .get(0);
    let payload = Payload::PaidAfterDeath(PaidAfterDeath { household_id: household_id.to_string(), deceased });
    households::publish(tx, topic, household_id, version, payload).await
}
