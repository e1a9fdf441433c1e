//! The real-estate register's wire format and status codes, and its
//! front-end view's columns.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use deadpool_postgres::tokio_postgres::Row;

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

fn record(f: Fwxx) -> Result<Record, DeptError> {
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
}

/// The register's front-end view `qzk.zjj_bdc_fwxx`: one row per flat and
/// owner, `jzmj numeric(12,2)`, `djsj` and `gxsj` dates. The area is read
/// as text so it converts exactly, like the API's.
pub const VIEW_SQL: &str = "SELECT ywh, bdcqzh, zl, jzmj::text, djsj::text, gxsj::text
                            FROM qzk.zjj_bdc_fwxx WHERE qlrzjhm = $1 ORDER BY ywh";

pub fn records_of_rows(rows: &[Row]) -> Result<Vec<Record>, DeptError> {
    let column = |r: &Row, i: usize| -> Result<String, DeptError> {
        r.try_get::<_, Option<String>>(i)
            .map_err(|e| DeptError::Malformed(format!("前置库视图第{}列：{e}", i + 1)))
            .map(Option::unwrap_or_default)
    };
    rows.iter()
        .map(|r| {
            record(Fwxx {
                ywh: column(r, 0)?,
                bdcqzh: column(r, 1)?,
                zl: column(r, 2)?,
                jzmj: column(r, 3)?,
                djsj: column(r, 4)?,
                gxsj: column(r, 5)?,
            })
        })
        .collect()
}

pub fn records(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let answer: Answer = json(body)?;
    status(http, answer.success, answer.error_msg.as_deref())?;
    answer.fwxx.into_iter().map(record).collect()
}
