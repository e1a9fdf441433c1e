//! The natural-person tax system's wire format and status codes.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, json};

#[derive(Deserialize)]
struct Answer {
    code: String,
    message: Option<String>,
    #[serde(default)]
    data: Vec<Grsds>,
}

#[derive(Deserialize)]
struct Grsds {
    id: String,
    /// Tax year.
    nd: i64,
    /// Taxable income, fen.
    sre_fen: i64,
    /// Tax paid, fen.
    ynse_fen: i64,
    tjrq: String,
}

fn status(http: StatusCode, code: &str, message: Option<&str>) -> Result<(), DeptError> {
    let msg = message.unwrap_or("").to_owned();
    match (http.as_u16(), code) {
        (200, "OK") => Ok(()),
        (500..=599, _) | (_, "SYS_ERROR") => Err(DeptError::Busy(msg)),
        (h, c) => Err(DeptError::Refused(format!("HTTP {h} {c} {msg}"))),
    }
}

pub fn records(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    let answer: Answer = match json(body) {
        Ok(a) => a,
        Err(_) if http.is_server_error() => return Err(DeptError::Busy(format!("HTTP {http}"))),
        Err(e) => return Err(e),
    };
    status(http, &answer.code, answer.message.as_deref())?;
    answer
        .data
        .into_iter()
        .map(|g| {
            RecordOf {
                item: Item::IncomeTax,
                source_record_id: g.id,
                source: "自然人电子税务局".into(),
                as_of: g.tjrq,
                amount_fen: g.sre_fen,
                quantity: g.nd,
                attributes: vec![("tax_paid_fen", g.ynse_fen.to_string())],
            }
            .into_record(Department::Tax)
        })
        .collect()
}
