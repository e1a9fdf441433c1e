//! Banks (银行): deposits. One query fans out to every bank configured,
//! each answering for its own accounts; the report sums them and keeps
//! each bank as the record's source. A bank that does not answer makes
//! deposits unavailable "at that bank", not the others' answers lost.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};
use serde_json::json;

use crate::kit::{Call, Connector, DeptError};

/// A bank's code (its path on the inquiry front end) and name.
#[derive(Debug, Clone)]
pub struct Bank {
    pub code: String,
    pub name: String,
}

pub struct Banks {
    pub banks: Vec<Bank>,
}

impl Connector for Banks {
    const DEPARTMENT: Department = Department::Bank;

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        self.banks
            .iter()
            .map(|b| Call {
                method: Method::POST,
                path: format!("/bank/{}/deposit-inquiry", b.code),
                body: Some(json!({"idNo": person.as_str()})),
                items: items.to_vec(),
                source: b.name.clone(),
            })
            .collect()
    }

    fn parse(&self, call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body, &call.source)
    }
}
