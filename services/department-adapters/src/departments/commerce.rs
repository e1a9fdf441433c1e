//! Commerce / market regulation (市场监管): business licences a person
//! holds, with registered capital and role.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};

use crate::kit::{Call, Connector, DeptError};

pub struct Commerce;

impl Connector for Commerce {
    const DEPARTMENT: Department = Department::Commerce;

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        vec![Call {
            method: Method::GET,
            path: format!("/scjg/api/v1/ztxx?zjhm={}", person.as_str()),
            body: None,
            items: items.to_vec(),
            source: String::new(),
        }]
    }

    fn parse(&self, _call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body)
    }
}
