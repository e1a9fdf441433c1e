//! The market-entity register's wire format and status codes.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, json};

#[derive(Deserialize)]
struct Answer {
    errcode: i64,
    errmsg: String,
    #[serde(default)]
    items: Vec<Ztxx>,
}

#[derive(Deserialize)]
struct Ztxx {
    id: String,
    tyshxydm: String,
    ztmc: String,
    /// Registered capital in 万元 (10,000 yuan), six decimals.
    zczb: String,
    zw: String,
    gxrq: String,
}

fn status(errcode: i64, errmsg: &str) -> Result<(), DeptError> {
    match errcode {
        0 => Ok(()),
        50000..=59999 => Err(DeptError::Busy(errmsg.to_owned())),
        _ => Err(DeptError::Refused(format!("{errcode} {errmsg}"))),
    }
}

/// 万元 with up to six decimals to fen, exactly (1 万元 = 1,000,000 fen).
pub fn fen_of_wan(s: &str) -> Result<i64, DeptError> {
    let bad = || DeptError::Malformed(format!("注册资本“{s}”无法识别"));
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() || frac.len() > 6 || !whole.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    whole.checked_mul(1_000_000).and_then(|w| w.checked_add(frac)).ok_or_else(bad)
}

pub fn records(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let answer: Answer = json(body)?;
    status(answer.errcode, &answer.errmsg)?;
    answer
        .items
        .into_iter()
        .map(|z| {
            RecordOf {
                item: Item::BusinessLicence,
                source_record_id: z.id,
                source: "市场主体登记系统".into(),
                as_of: z.gxrq,
                amount_fen: fen_of_wan(&z.zczb)?,
                quantity: 0,
                attributes: vec![("credit_code", z.tyshxydm), ("name", z.ztmc), ("role", z.zw)],
            }
            .into_record(Department::Commerce)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn registered_capital_in_wan_yuan_becomes_fen_exactly() {
        assert_eq!(super::fen_of_wan("30.000000"), Ok(30_000_000));
        assert_eq!(super::fen_of_wan("0.5"), Ok(500_000));
        assert_eq!(super::fen_of_wan("1.000001"), Ok(1_000_001));
        assert!(super::fen_of_wan("1.0000001").is_err());
        assert!(super::fen_of_wan("-1").is_err());
    }
}
