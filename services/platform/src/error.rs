//! The one error type of the mesh and its one table onto `tonic::Status`.
//!
//! Internal detail is logged and never returned; invalid input is answered
//! `InvalidArgument` with `google.rpc.BadRequest` naming the field, and a
//! message in Simplified Chinese an officer can act on.

use dibao_proto::types::InvalidField;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more fields are wrong; each is named.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidArgument(Vec<InvalidField>),
    /// The thing asked for does not exist; the text says what, in Chinese.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is valid but the state forbids it now (an open objection,
    /// a missing verification report); the text says why, in Chinese.
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// A concurrent change won; the caller may re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller's identity may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A dependency (database, broker, department) cannot be reached now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The status for invalid input: every offending field with its reason.
pub fn invalid(errors: Vec<InvalidField>) -> Status {
    Error::InvalidArgument(errors).into()
}

/// The status for a failure of ours (database, broker, stored data): logged
/// by the table, answered as an internal error without the detail.
pub fn internal(e: impl Into<Error>) -> Status {
    e.into().into()
}

impl From<InvalidField> for Error {
    fn from(e: InvalidField) -> Self {
        Error::InvalidArgument(vec![e])
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.is_closed() || e.as_db_error().is_none() {
            return Error::Unavailable(format!("database: {e}"));
        }
        Error::Unexpected(anyhow::Error::new(e))
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::Unavailable(format!("database pool: {e}"))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        // Exhaustive on purpose: a new variant must decide its code here.
        match e {
            Error::InvalidArgument(fields) => {
                let mut details = ErrorDetails::new();
                for f in &fields {
                    details.add_bad_request_violation(f.field.clone(), f.reason.clone());
                }
                let message =
                    fields.iter().map(|f| format!("{}：{}", f.field, f.reason)).collect::<Vec<_>>().join("；");
                Status::with_error_details(Code::InvalidArgument, format!("输入有误：{message}"), details)
            }
            Error::NotFound(what) => Status::not_found(what),
            Error::FailedPrecondition(why) => Status::failed_precondition(why),
            Error::Conflict(why) => Status::aborted(why),
            Error::PermissionDenied(why) => Status::permission_denied(why),
            Error::Unavailable(detail) => {
                tracing::warn!(error = %detail, "dependency unavailable");
                Status::unavailable("服务暂时不可用，请稍后重试")
            }
            Error::Unexpected(e) => {
                tracing::error!(error = ?e, "unexpected error");
                Status::internal("系统内部错误，已记录，请联系运维人员")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_the_field_in_details_and_message() {
        let status: Status =
            Error::from(InvalidField::new("household.members[0].identity_number", "身份证号码应为18位，实际为17位"))
                .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("household.members[0].identity_number"));
        let bad = status.get_details_bad_request().expect("BadRequest details");
        assert_eq!(bad.field_violations[0].field, "household.members[0].identity_number");
    }

    #[test]
    fn internals_are_never_returned() {
        let status: Status = Error::Unexpected(anyhow::anyhow!("relation \"secret_table\" does not exist")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret_table"));
    }
}
