//! Medical insurance (医保): registered outpatient chronic and special
//! diseases and serious illnesses (门诊慢特病、重特大疾病), and a person's
//! out-of-pocket spending over the last twelve months — two queries of the
//! medical security information platform, each answering its own item, so
//! one can fail while the other answers.

mod transformers;

use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::IdentityNumber;
use http::{Method, StatusCode};

use crate::kit::{Call, Connector, DeptError};

pub struct MedicalInsurance;

impl Connector for MedicalInsurance {
    const DEPARTMENT: Department = Department::MedicalInsurance;

    fn calls(&self, person: &IdentityNumber, items: &[Item]) -> Vec<Call> {
        let call = |path: String, item: Item| Call {
            method: Method::GET,
            path,
            body: None,
            items: vec![item],
            source: String::new(),
        };
        let mut calls = Vec::new();
        if items.contains(&Item::RegisteredIllness) {
            calls.push(call(format!("/hsa/v1/mtbdj?certno={}", person.as_str()), Item::RegisteredIllness));
        }
        if items.contains(&Item::MedicalSpending) {
            calls.push(call(format!("/hsa/v1/grzf?certno={}&months=12", person.as_str()), Item::MedicalSpending));
        }
        calls
    }

    fn parse(&self, call: &Call, status: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
        if call.items.contains(&Item::MedicalSpending) {
            transformers::spending(status, body)
        } else {
            transformers::illnesses(status, body)
        }
    }
}
