//! The one error type of the mesh and its one table onto `tonic::Status`.
//!
//! Every function below a tonic method returns `Result<T, Error>`; each RPC
//! converts once, at its edge ([`respond`]). Internal detail is logged and
//! never returned; invalid input is answered `InvalidArgument` with
//! `google.rpc.BadRequest` naming the field, and a message in Simplified
//! Chinese an officer can act on. A service's own rules refuse through a
//! small enum of its crate implementing [`Refusal`]: the answer carries the
//! enum's stable `reason` as `google.rpc.ErrorInfo`, so a caller (and a
//! test) tells refusals apart by kind, not by their Chinese text.

use std::collections::HashMap;

use dibao_proto::types::InvalidField;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `google.rpc.ErrorInfo.domain` of every refusal of the mesh.
pub const DOMAIN: &str = "dibao-mesh";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more fields are wrong; each is named.
    #[error("invalid input: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidArgument(Vec<InvalidField>),
    /// The thing asked for does not exist; the text says what, in Chinese.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is valid but the state forbids it now; the text says why, in Chinese.
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// A concurrent change won; the caller may re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller is not proven (no client certificate, no valid assertion).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller's identity may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A dependency (database, broker, department) cannot be reached now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A service's own rule refused: its crate's enum, with a stable reason.
    #[error("refused ({reason}): {0}", reason = .0.reason())]
    Refused(Box<dyn Refusal>),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// How a refusal is answered: the row of the table it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalKind {
    /// The request names something wrong; `field` is its path.
    InvalidArgument {
        field: String,
    },
    NotFound,
    FailedPrecondition,
    Conflict,
    PermissionDenied,
    /// Another system this one depends on cannot answer now; the message
    /// says which, for the officer (never internal detail).
    Unavailable,
}

/// A refusal by a service's own rules, as one variant of a small
/// `thiserror` enum of its crate (`ProcessError::NoticeNotOver { until }`).
/// Its `Display` is the officer's message, in Chinese.
pub trait Refusal: std::error::Error + Send + Sync + 'static {
    /// The row of the table it answers as.
    fn kind(&self) -> RefusalKind;
    /// A stable name, `NOTICE_NOT_OVER`: sent as `google.rpc.ErrorInfo.reason`.
    fn reason(&self) -> &'static str;
}

impl<R: Refusal> From<R> for Error {
    fn from(r: R) -> Self {
        Error::Refused(Box::new(r))
    }
}

impl From<InvalidField> for Error {
    fn from(e: InvalidField) -> Self {
        Error::InvalidArgument(vec![e])
    }
}

impl From<Vec<InvalidField>> for Error {
    fn from(e: Vec<InvalidField>) -> Self {
        Error::InvalidArgument(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        if e.is_closed() || e.as_db_error().is_none() {
            return Error::Unavailable(format!("database: {e}"));
        }
        // A deadlock or serialization failure (another transaction touching
        // the same rows at the same moment): the caller retries.
        if matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
        {
            tracing::warn!(error = %e, "collided with a concurrent change");
            return Error::Conflict("与同时进行的变更冲突，请重试".to_owned());
        }
        Error::Unexpected(anyhow::Error::new(e))
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::Unavailable(format!("database pool: {e}"))
    }
}

impl Error {
    /// Stored data that no longer reads back (a body that does not decode):
    /// ours to fix, answered as an internal error.
    pub fn stored(what: impl std::fmt::Display) -> Self {
        Error::Unexpected(anyhow::anyhow!("stored data: {what}"))
    }

    /// The refusal's stable reason, when a service's rule refused.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Error::Refused(r) => Some(r.reason()),
            _ => None,
        }
    }
}

/// The edge of every RPC: its handler's result, converted once.
pub fn respond<T>(result: Result<T, Error>) -> Result<tonic::Response<T>, Status> {
    result.map(tonic::Response::new).map_err(Status::from)
}

fn bad_request(code: Code, fields: &[InvalidField], mut details: ErrorDetails) -> Status {
    for f in fields {
        details.add_bad_request_violation(f.field.clone(), f.reason.clone());
    }
    let message = fields.iter().map(|f| format!("{}：{}", f.field, f.reason)).collect::<Vec<_>>().join("；");
    Status::with_error_details(code, format!("输入有误：{message}"), details)
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        // Exhaustive on purpose: a new variant must decide its code here.
        match e {
            Error::InvalidArgument(fields) => bad_request(Code::InvalidArgument, &fields, ErrorDetails::new()),
            Error::NotFound(what) => Status::not_found(what),
            Error::FailedPrecondition(why) => Status::failed_precondition(why),
            Error::Conflict(why) => Status::aborted(why),
            Error::Unauthenticated(why) => Status::unauthenticated(why),
            Error::PermissionDenied(why) => Status::permission_denied(why),
            Error::Refused(refusal) => {
                let info = ErrorDetails::with_error_info(refusal.reason(), DOMAIN, HashMap::<String, String>::new());
                let message = refusal.to_string();
                let code = match refusal.kind() {
                    RefusalKind::InvalidArgument { field } => {
                        return bad_request(Code::InvalidArgument, &[InvalidField::new(field, message)], info);
                    }
                    RefusalKind::NotFound => Code::NotFound,
                    RefusalKind::FailedPrecondition => Code::FailedPrecondition,
                    RefusalKind::Conflict => Code::Aborted,
                    RefusalKind::PermissionDenied => Code::PermissionDenied,
                    RefusalKind::Unavailable => Code::Unavailable,
                };
                Status::with_error_details(code, message, info)
            }
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

/// The reason of a refusal as a caller reads it from the status
/// (`google.rpc.ErrorInfo.reason`); `None` for any other answer.
pub fn reason_of(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|i| i.reason)
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

    #[derive(Debug, thiserror::Error)]
    enum DemoRefusal {
        #[error("公示期未满，{until}后方可审批")]
        NoticeNotOver { until: &'static str },
        #[error("“{0}”应由县级审批人员签署")]
        WrongSigner(&'static str),
    }

    impl Refusal for DemoRefusal {
        fn kind(&self) -> RefusalKind {
            match self {
                DemoRefusal::NoticeNotOver { .. } => RefusalKind::FailedPrecondition,
                DemoRefusal::WrongSigner(_) => RefusalKind::InvalidArgument { field: "signature.role".into() },
            }
        }
        fn reason(&self) -> &'static str {
            match self {
                DemoRefusal::NoticeNotOver { .. } => "NOTICE_NOT_OVER",
                DemoRefusal::WrongSigner(_) => "WRONG_SIGNER",
            }
        }
    }

    #[test]
    fn a_refusal_answers_with_its_kind_its_reason_and_the_officers_message() {
        let status: Status = Error::from(DemoRefusal::NoticeNotOver { until: "2026-06-17" }).into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "公示期未满，2026-06-17后方可审批");
        assert_eq!(reason_of(&status).as_deref(), Some("NOTICE_NOT_OVER"));
        let status: Status = Error::from(DemoRefusal::WrongSigner("县级审批")).into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason_of(&status).as_deref(), Some("WRONG_SIGNER"));
        let bad = status.get_details_bad_request().expect("BadRequest details");
        assert_eq!(bad.field_violations[0].field, "signature.role");
        assert!(status.message().contains("signature.role"), "{}", status.message());
    }

    #[test]
    fn internals_are_never_returned() {
        let status: Status = Error::Unexpected(anyhow::anyhow!("relation \"secret_table\" does not exist")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret_table"));
    }
}
