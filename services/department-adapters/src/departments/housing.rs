//! Housing (住建 / 不动产登记): property registered to a person — from the
//! register's query API, or from the front-end view (前置库) many registers
//! keep instead.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};
use serde_json::json;

use crate::kit::{Call, Connector, DeptError, ViewCall};
use deadpool_postgres::tokio_postgres::Row;

pub struct Housing;

impl Connector for Housing {
    const DEPARTMENT: Department = Department::Housing;

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

    const OFFERS_VIEW: bool = true;

    fn view_calls(&self, items: &[Item]) -> Vec<ViewCall> {
        vec![ViewCall { sql: transformers::VIEW_SQL.into(), items: items.to_vec(), source: String::new() }]
    }

    fn parse_rows(&self, _call: &ViewCall, rows: &[Row]) -> Result<Vec<Record>, DeptError> {
        transformers::records_of_rows(rows)
    }
}
