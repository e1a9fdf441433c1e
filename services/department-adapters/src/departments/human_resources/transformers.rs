//! The insured-person file's wire format and status codes.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, fen_of_yuan, json};

#[derive(Deserialize)]
struct Answer {
    status: u16,
    result: Option<Result_>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Result_ {
    #[serde(default)]
    ylj: Vec<Ylj>,
    #[serde(default)]
    jf: Vec<Jf>,
    #[serde(default)]
    jy: Vec<Jy>,
    #[serde(default)]
    sy: Vec<Sy>,
}

#[derive(Deserialize)]
struct Ylj {
    id: String,
    xz: String,
    yffje: String,
    tjrq: String,
}

#[derive(Deserialize)]
struct Jf {
    id: String,
    dw: String,
    jfjs: String,
    jfys: i64,
    tjrq: String,
}

#[derive(Deserialize)]
struct Jy {
    id: String,
    dw: String,
    rzrq: String,
    yxgz: String,
    tjrq: String,
}

#[derive(Deserialize)]
struct Sy {
    id: String,
    yffje: String,
    lqys: i64,
    tjrq: String,
}

/// HTTP status carries the outcome here, in one place.
fn status(http: StatusCode, error: Option<&str>) -> Result<(), DeptError> {
    let msg = error.unwrap_or("").to_owned();
    match http.as_u16() {
        200 => Ok(()),
        429 | 500..=599 => Err(DeptError::Busy(format!("HTTP {} {msg}", http.as_u16()))),
        _ => Err(DeptError::Refused(format!("HTTP {} {msg}", http.as_u16()))),
    }
}

pub fn records(http: StatusCode, body: &[u8], items: &[Item]) -> Result<Vec<Record>, DeptError> {
    let answer: Answer = match json(body) {
        Ok(a) => a,
        Err(e) => return status(http, None).and(Err(e)),
    };
    status(StatusCode::from_u16(answer.status).unwrap_or(http), answer.error.as_deref())?;
    let r = answer.result.ok_or_else(|| DeptError::Malformed("缺少result".into()))?;
    let src = "社会保险信息系统";
    let mut all = Vec::new();
    for p in r.ylj {
        all.push(RecordOf {
            item: Item::Pension,
            source_record_id: p.id,
            source: src.into(),
            as_of: p.tjrq,
            amount_fen: fen_of_yuan(&p.yffje)?,
            quantity: 0,
            attributes: vec![("kind", p.xz)],
        });
    }
    for c in r.jf {
        all.push(RecordOf {
            item: Item::SocialInsurance,
            source_record_id: c.id,
            source: src.into(),
            as_of: c.tjrq,
            amount_fen: fen_of_yuan(&c.jfjs)?,
            quantity: c.jfys,
            attributes: vec![("employer", c.dw)],
        });
    }
    for j in r.jy {
        all.push(RecordOf {
            item: Item::Employment,
            source_record_id: j.id,
            source: "就业信息系统".into(),
            as_of: j.tjrq,
            amount_fen: fen_of_yuan(&j.yxgz)?,
            quantity: 0,
            attributes: vec![("employer", j.dw), ("started_on", j.rzrq)],
        });
    }
    for s in r.sy {
        all.push(RecordOf {
            item: Item::UnemploymentBenefit,
            source_record_id: s.id,
            source: "失业保险信息系统".into(),
            as_of: s.tjrq,
            amount_fen: fen_of_yuan(&s.yffje)?,
            quantity: s.lqys,
            attributes: vec![],
        });
    }
    all.into_iter().filter(|r| items.contains(&r.item)).map(|r| r.into_record(Department::HumanResources)).collect()
}
