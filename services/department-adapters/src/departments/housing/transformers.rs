//! The real-estate register's wire format and status codes.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, fen_of_yuan, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    success: bool,
    error_msg: Option<String>,
    #[serde(default)]
    fwxx: Vec<Fwxx>,
}

#[derive(Deserialize)]
struct Fwxx {
    ywh: String,
    bdcqzh: String,
    zl: String,
    /// Floor area in square metres, two decimals.
    jzmj: String,
    djsj: String,
    gxsj: String,
}

/// The register answers `success: false` with a message for transient
/// faults and a 4xx for bad requests; in one place.
fn status(http: StatusCode, success: bool, msg: Option<&str>) -> Result<(), DeptError> {
    let msg = msg.unwrap_or("").to_owned();
    match (http.as_u16(), success) {
        (200, true) => Ok(()),
        (200, false) | (500..=599, _) => Err(DeptError::Busy(msg)),
        (code, _) => Err(DeptError::Refused(format!("HTTP {code} {msg}"))),
    }
}

pub fn records(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let answer: Answer = json(body)?;
    status(http, answer.success, answer.error_msg.as_deref())?;
    answer
        .fwxx
        .into_iter()
        .map(|f| {
            RecordOf {
                item: Item::Property,
                source_record_id: f.ywh,
                source: "不动产登记系统".into(),
                as_of: f.gxsj,
                amount_fen: 0,
                // Square metres × 100, exactly (the area has two decimals, like yuan).
                quantity: fen_of_yuan(&f.jzmj)?,
                attributes: vec![("certificate", f.bdcqzh), ("address", f.zl), ("registered_on", f.djsj)],
            }
            .into_record(Department::Housing)
        })
        .collect()
}
