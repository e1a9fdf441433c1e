//! Tax (税务): personal income tax — taxable income and tax paid per year.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};

use crate::kit::{Call, Connector, DeptError};

pub struct Tax;

impl Connector for Tax {
    const DEPARTMENT: Department = Department::Tax;

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        vec![Call {
            method: Method::GET,
            path: format!("/sw/api/grsds/{}", person.as_str()),
            body: None,
            items: items.to_vec(),
            source: String::new(),
        }]
    }

    fn parse(&self, _call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body)
    }
}
