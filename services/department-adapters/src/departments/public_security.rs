//! Public security (公安): household registration, vehicles, deaths —
//! one query of the population information system per person.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};
use serde_json::json;

use crate::kit::{Call, Connector, DeptError};

pub struct PublicSecurity;

impl Connector for PublicSecurity {
    const DEPARTMENT: Department = Department::PublicSecurity;

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        let codes: Vec<&str> = items.iter().filter_map(|i| transformers::item_code(*i)).collect();
        vec![Call {
            method: Method::POST,
            path: "/gaj/api/v2/rkxx/query".into(),
            body: Some(json!({"sfzhm": person.as_str(), "cxxm": codes})),
            items: items.to_vec(),
            source: String::new(),
        }]
    }

    fn parse(&self, call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        transformers::records(status, body, &call.items)
    }
}
