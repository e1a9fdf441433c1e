//! Disability federation (残联): disability certificates (残疾人证) — number,
//! type, grade and validity — from the national disability population
//! database's query API, as the county federation shares it (seed 003).

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};
use serde_json::json;

use crate::kit::{Call, Connector, DeptError};

pub struct DisabilityFederation;

impl Connector for DisabilityFederation {
    const DEPARTMENT: Department = Department::DisabilityFederation;

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        vec![Call {
            method: Method::POST,
            path: "/cdpf/api/cjrz/query".into(),
            body: Some(json!({"zjhm": person.as_str()})),
            items: items.to_vec(),
            source: String::new(),
        }]
    }

    fn parse(&self, _call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body)
    }
}
