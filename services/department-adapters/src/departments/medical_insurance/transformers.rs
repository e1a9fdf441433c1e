//! The medical security information platform's wire format and status
//! codes (`infcode` 0 answers, -1 is the platform's own failure).

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::kit::{DeptError, RecordOf, fen_of_yuan, json};

#[derive(Deserialize)]
struct Answer<T> {
    infcode: i32,
    #[serde(default)]
    err_msg: String,
    output: Option<T>,
}

#[derive(Deserialize)]
struct Registrations {
    #[serde(default)]
    mtbdj: Vec<Mtbdj>,
}

/// One registration of a chronic, special or serious disease.
#[derive(Deserialize)]
struct Mtbdj {
    dj_id: String,
    /// Disease code and name (ICD-10 as the platform keeps it).
    bzbm: String,
    bzmc: String,
    /// 门诊慢性病, 门诊特殊疾病 or 重特大疾病.
    mtblx: String,
    kssj: String,
    /// Registered until; empty while open.
    #[serde(default)]
    jssj: String,
    gxsj: String,
}

#[derive(Deserialize)]
struct Statement {
    grzf: Option<Grzf>,
}

/// The twelve months' settlements summed.
#[derive(Deserialize)]
struct Grzf {
    tjbh: String,
    tjqj_ks: String,
    tjqj_js: String,
    /// Total cost and the person's own part, yuan with two decimals.
    zfy: String,
    grzf: String,
    /// Settlements counted.
    jsbs: i64,
    gxsj: String,
}

fn answer<T: DeserializeOwned>(http: StatusCode, body: &[u8]) -> Result<Option<T>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let a: Answer<T> = json(body)?;
    match a.infcode {
        0 => Ok(a.output),
        -1 => Err(DeptError::Busy(a.err_msg)),
        other => Err(DeptError::Refused(format!("{other} {}", a.err_msg))),
    }
}

/// Whether a registration supports "seriously ill" (重病患者): a serious
/// illness or an outpatient special disease, not an ordinary chronic one.
pub fn serious(category: &str) -> bool {
    matches!(category, "重特大疾病" | "门诊特殊疾病")
}

pub fn illnesses(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    let Some(output) = answer::<Registrations>(http, body)? else { return Ok(Vec::new()) };
    output
        .mtbdj
        .into_iter()
        .map(|m| {
            RecordOf {
                item: Item::RegisteredIllness,
                source_record_id: m.dj_id,
                source: "医疗保障信息平台".into(),
                as_of: m.gxsj,
                amount_fen: 0,
                quantity: 0,
                attributes: vec![
                    ("serious", serious(&m.mtblx).to_string()),
                    ("disease_code", m.bzbm),
                    ("disease", m.bzmc),
                    ("category", m.mtblx),
                    ("registered_from", m.kssj),
                    ("registered_until", m.jssj),
                ],
            }
            .into_record(Department::MedicalInsurance)
        })
        .collect()
}

pub fn spending(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    let Some(Statement { grzf: Some(g) }) = answer::<Statement>(http, body)? else { return Ok(Vec::new()) };
    let total = fen_of_yuan(&g.zfy)?;
    Ok(vec![
        RecordOf {
            item: Item::MedicalSpending,
            source_record_id: g.tjbh,
            source: "医疗保障信息平台".into(),
            as_of: g.gxsj,
            amount_fen: fen_of_yuan(&g.grzf)?,
            quantity: g.jsbs,
            attributes: vec![
                ("period_from", g.tjqj_ks),
                ("period_to", g.tjqj_js),
                ("total_cost_fen", total.to_string()),
            ],
        }
        .into_record(Department::MedicalInsurance)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_is_the_persons_own_part_in_fen_and_no_statement_is_no_record() {
        let body = br#"{"infcode":0,"output":{"grzf":{"tjbh":"ZF1","tjqj_ks":"2025-11-01","tjqj_js":"2026-10-31",
            "zfy":"30000.50","grzf":"12000.05","jsbs":14,"gxsj":"2026-10-31"}}}"#;
        let r = spending(StatusCode::OK, body).expect("records");
        assert_eq!((r[0].amount.as_ref().map(|m| m.fen), r[0].quantity), (Some(1_200_005), 14));
        assert_eq!(r[0].attributes["total_cost_fen"], "3000050");
        assert!(spending(StatusCode::OK, br#"{"infcode":0,"output":{"grzf":null}}"#).expect("none").is_empty());
        assert!(matches!(spending(StatusCode::OK, br#"{"infcode":-1,"err_msg":"x"}"#), Err(DeptError::Busy(_))));
        assert!(matches!(illnesses(StatusCode::OK, br#"{"infcode":2001,"err_msg":"y"}"#), Err(DeptError::Refused(_))));
    }
}
