//! The banks' deposit-inquiry front end: wire format and return codes.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, fen_of_yuan, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    ret_code: String,
    ret_msg: String,
    #[serde(default)]
    accounts: Vec<Account>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    seq: String,
    acct_no: String,
    balance: String,
    currency: String,
    as_of: String,
}

fn status(code: &str, msg: &str) -> Result<(), DeptError> {
    match code {
        "000000" => Ok(()),
        c if c.starts_with("E9") => Err(DeptError::Busy(msg.to_owned())),
        c => Err(DeptError::Refused(format!("{c} {msg}"))),
    }
}

pub fn records(http: StatusCode, body: &[u8], bank: &str) -> Result<Vec<Record>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let answer: Answer = json(body)?;
    status(&answer.ret_code, &answer.ret_msg)?;
    answer
        .accounts
        .into_iter()
        .map(|a| {
            if a.currency != "CNY" {
                return Err(DeptError::Malformed(format!("币种“{}”不是人民币", a.currency)));
            }
            RecordOf {
                item: Item::Deposits,
                source_record_id: a.seq,
                source: bank.to_owned(),
                as_of: a.as_of,
                amount_fen: fen_of_yuan(&a.balance)?,
                quantity: 0,
                attributes: vec![("account", a.acct_no)],
            }
            .into_record(Department::Bank)
        })
        .collect()
}
