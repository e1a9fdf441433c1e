//! The disability population database's wire format and status codes: the
//! grade comes as the certificate prints it ("一级".."四级"), mapped here to
//! the record's quantity (1 most severe) and nowhere else.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    result_code: i32,
    #[serde(default)]
    result_msg: String,
    #[serde(default)]
    cjrz_list: Vec<Cjrz>,
}

#[derive(Deserialize)]
struct Cjrz {
    /// Certificate number: the identity number and two digits (type, grade).
    cjrzh: String,
    /// Type: 视力、听力、言语、肢体、智力、精神、多重.
    cjlb: String,
    /// Grade as printed: 一级 … 四级.
    cjdj: String,
    /// Valid until, `YYYY-MM-DD`.
    yxqz: String,
    /// Issued on.
    fzrq: String,
    /// The date the record is current to.
    gxrq: String,
}

/// 0 answers; 9 is the database's "busy, try again"; anything else a refusal.
fn status(code: i32, message: &str) -> Result<(), DeptError> {
    match code {
        0 => Ok(()),
        9 => Err(DeptError::Busy(message.to_owned())),
        other => Err(DeptError::Refused(format!("{other} {message}"))),
    }
}

fn grade(printed: &str) -> Result<i64, DeptError> {
    match printed.trim() {
        "一级" => Ok(1),
        "二级" => Ok(2),
        "三级" => Ok(3),
        "四级" => Ok(4),
        other => Err(DeptError::Malformed(format!("残疾等级“{other}”无法识别"))),
    }
}

pub fn records(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let answer: Answer = json(body)?;
    status(answer.result_code, &answer.result_msg)?;
    answer
        .cjrz_list
        .into_iter()
        .map(|c| {
            RecordOf {
                item: Item::DisabilityCertificate,
                source_record_id: c.cjrzh.clone(),
                source: "全国残疾人人口基础数据库".into(),
                as_of: c.gxrq,
                amount_fen: 0,
                quantity: grade(&c.cjdj)?,
                attributes: vec![
                    ("certificate_no", c.cjrzh),
                    ("type", c.cjlb),
                    ("grade", c.cjdj),
                    ("valid_until", c.yxqz),
                    ("issued_on", c.fzrq),
                ],
            }
            .into_record(Department::DisabilityFederation)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_grade_becomes_the_quantity_and_an_unknown_one_is_malformed() {
        let body = r#"{"resultCode":0,"resultMsg":"ok","cjrzList":[{"cjrzh":"52010219600101001X42","cjlb":"肢体",
            "cjdj":"二级","yxqz":"2030-05-31","fzrq":"2020-06-01","gxrq":"2026-10-31"}]}"#;
        let records = records_of(body).expect("records");
        assert_eq!(records[0].quantity, 2);
        assert_eq!(records[0].attributes["valid_until"], "2030-05-31");
        let odd = body.replace("二级", "特级");
        assert!(matches!(records_of(&odd), Err(DeptError::Malformed(m)) if m.contains("特级")));
        assert!(matches!(records_of(r#"{"resultCode":9,"resultMsg":"busy"}"#), Err(DeptError::Busy(_))));
        assert!(matches!(records_of(r#"{"resultCode":3,"resultMsg":"denied"}"#), Err(DeptError::Refused(_))));
    }

    fn records_of(body: &str) -> Result<Vec<Record>, DeptError> {
        records(StatusCode::OK, body.as_bytes())
    }
}
