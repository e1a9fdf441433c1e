//! HR and social security (人社): pensions, social-insurance contributions,
//! employment, unemployment benefit — one query of the insured-person file.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};

use crate::kit::{Call, Connector, DeptError};

pub struct HumanResources;

impl Connector for HumanResources {
    const DEPARTMENT: Department = Department::HumanResources;

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        vec![Call {
            method: Method::GET,
            path: format!("/rsj/v1/cbry/{}", person.as_str()),
            body: None,
            items: items.to_vec(),
            source: String::new(),
        }]
    }

    fn parse(&self, call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body, &call.items)
    }
}
