//! <The department's system>'s wire format and status codes, in one place.
//! Template: copy to `src/departments/<name>/transformers.rs`.

use dibao_proto::department::v1::{Department, Item, Record};
use http::StatusCode;
use serde::Deserialize;

use crate::kit::{DeptError, RecordOf, json};

#[derive(Deserialize)]
struct Answer {
    code: String,
    message: String,
    #[serde(default)]
    data: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    as_of: String,
}

/// Every status code of the department, mapped here and nowhere else:
/// transient ones to `Busy` (retried), the rest to `Refused`.
fn status(code: &str, message: &str) -> Result<(), DeptError> {
    match code {
        "OK" => Ok(()),
        "BUSY" => Err(DeptError::Busy(message.to_owned())),
        other => Err(DeptError::Refused(format!("{other} {message}"))),
    }
}

pub fn records(http: StatusCode, body: &[u8]) -> Result<Vec<Record>, DeptError> {
    if http.is_server_error() {
        return Err(DeptError::Busy(format!("HTTP {http}")));
    }
    let answer: Answer = json(body)?;
    status(&answer.code, &answer.message)?;
    answer
        .data
        .into_iter()
        .map(|e| {
            RecordOf {
                item: Item::Unspecified, // the item this entry answers
                source_record_id: e.id,
                source: "<the department's system>".into(),
                as_of: e.as_of,
                amount_fen: 0,
                quantity: 0,
                attributes: vec![],
            }
            .into_record(Department::Unspecified)
        })
        .collect()
}
