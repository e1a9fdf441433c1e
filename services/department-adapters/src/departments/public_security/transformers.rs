//! The population information system's wire format and status codes.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, json};

const SOURCE: &str = "公安人口信息系统";

pub fn item_code(item: Item) -> Option<&'static str> {
    match item {
        Item::HouseholdRegistration => Some("HJ"),
        Item::Vehicles => Some("CL"),
        Item::Death => Some("SW"),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Answer {
    code: String,
    msg: String,
    gxsj: Option<String>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    hjxx: Option<Hjxx>,
    #[serde(default)]
    clxx: Vec<Clxx>,
    swxx: Option<Swxx>,
}

#[derive(Deserialize)]
struct Hjxx {
    jlbh: String,
    hh: String,
    hjdz: String,
    yhzgx: String,
    /// The others the household register (户口簿) lists.
    #[serde(default)]
    hjcy: Vec<Hjcy>,
}

#[derive(Deserialize)]
struct Hjcy {
    sfzhm: String,
    yhzgx: String,
}

#[derive(Deserialize)]
struct Clxx {
    jlbh: String,
    hphm: String,
    ppxh: String,
    djrq: String,
}

#[derive(Deserialize)]
struct Swxx {
    jlbh: String,
    swrq: String,
    zxlx: String,
}

/// The system's status codes, in one place.
fn status(code: &str, msg: &str) -> Result<bool, DeptError> {
    match code {
        "0000" => Ok(true),
        // No such person: no records (the hub reports the missing registration).
        "1004" => Ok(false),
        "9999" => Err(DeptError::Busy(msg.to_owned())),
        _ => Err(DeptError::Refused(format!("{code} {msg}"))),
    }
}

pub fn records(http: StatusCode, body: &[u8], items: &[Item]) -> Result<Vec<Record>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let answer: Answer = json(body)?;
    if !status(&answer.code, &answer.msg)? {
        return Ok(vec![]);
    }
    let data = answer.data.ok_or_else(|| DeptError::Malformed("缺少data".into()))?;
    let as_of = answer.gxsj.ok_or_else(|| DeptError::Malformed("缺少更新时间gxsj".into()))?;
    let mut out = Vec::new();
    let mut push = |r: RecordOf| -> Result<(), DeptError> {
        if items.contains(&r.item) {
            out.push(r.into_record(Department::PublicSecurity)?);
        }
        Ok(())
    };
    if let Some(h) = data.hjxx {
        push(RecordOf {
            item: Item::HouseholdRegistration,
            source_record_id: h.jlbh,
            source: SOURCE.into(),
            as_of: as_of.clone(),
            amount_fen: 0,
            quantity: 0,
            attributes: vec![
                ("household_no", h.hh),
                ("registered_at", h.hjdz),
                ("relation_to_head", h.yhzgx),
                // `number:relation;…`, the register's others (R-ROSTER-4).
                (
                    "registered_with",
                    h.hjcy.iter().map(|c| format!("{}:{}", c.sfzhm, c.yhzgx)).collect::<Vec<_>>().join(";"),
                ),
            ],
        })?;
    }
    for c in data.clxx {
        push(RecordOf {
            item: Item::Vehicles,
            source_record_id: c.jlbh,
            source: "公安交通管理系统".into(),
            as_of: as_of.clone(),
            amount_fen: 0,
            quantity: 1,
            attributes: vec![("plate", c.hphm), ("brand", c.ppxh), ("registered_on", c.djrq)],
        })?;
    }
    if let Some(s) = data.swxx {
        push(RecordOf {
            item: Item::Death,
            source_record_id: s.jlbh,
            source: SOURCE.into(),
            as_of,
            amount_fen: 0,
            quantity: 0,
            attributes: vec![("died_on", s.swrq), ("cancellation", s.zxlx)],
        })?;
    }
    Ok(out)
}
