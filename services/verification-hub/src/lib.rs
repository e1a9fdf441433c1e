//! The verification hub (家庭经济状况核对, R-VER-*): under a registered,
//! signed consent it asks every department's adapter about each person of a
//! household and reports what it found, with provenance, against the
//! county's property rules. It checks and reports; civil affairs decides.
//!
//! Layout — the face, then a room for each thing it holds:
//! - [`startup`]: the service as its binary and tests start it (settings, links, access);
//! - [`service`]: the gRPC face — parse, delegate, convert once;
//! - [`consent`]: the consent registry and what a consent permits (R-VER-1);
//! - [`households`]: the household checked, its county and live members, as civil affairs holds it;
//! - [`verify`]: one household checked — consent, departments, report, access log;
//! - [`fanout`]: the department links — signed assertions, deadlines,
//!   concurrency, pace and circuit breakers;
//! - [`replicas`]: the replicas alive, among which each department's rate is shared;
//! - [`report`]: report items, findings and the summary (R-VER-4);
//! - [`reports`]: reports stored by version with their event, read back;
//! - [`campaign`]: bulk campaigns over a county or township, resumable (R-VER-5).
//!
//! Who looked at a person's data is the platform's access history, which
//! the hub serves over its access log as every service does.

pub mod campaign;
pub mod consent;
pub mod fanout;
pub mod households;
pub mod replicas;
pub mod report;
pub mod reports;
pub mod service;
pub mod startup;
pub mod verify;

pub use startup::Application;
