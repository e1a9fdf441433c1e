//! <Department> (<部门>): <items>, one query of <the department's system>.
//! Template: copy to `src/departments/<name>.rs` (see README.md here).

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};
use serde_json::json;

use crate::kit::{Call, Connector, DeptError};

pub struct NewDepartment;

impl Connector for NewDepartment {
    const DEPARTMENT: Department = Department::Unspecified; // your department

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        vec![Call {
            method: Method::POST,
            path: "/<the department's path>".into(),
            body: Some(json!({"<its id field>": person.as_str()})),
            items: items.to_vec(),
            source: String::new(),
        }]
    }

    fn parse(&self, _call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body)
    }
}
