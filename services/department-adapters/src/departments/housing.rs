//! Housing (住建 / 不动产登记): property registered to a person.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};
use serde_json::json;

use crate::kit::{Call, Connector, DeptError};

pub struct Housing;

impl Connector for Housing {
    const DEPARTMENT: Department = Department::Housing;
    const ITEMS: &'static [Item] = &[Item::Property];

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        vec![Call {
            method: Method::POST,
            path: "/zjj/bdc/cx".into(),
            body: Some(json!({"qlrzjhm": person.as_str()})),
            items: items.to_vec(),
            source: String::new(),
        }]
    }

    fn parse(&self, _call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body)
    }
}
