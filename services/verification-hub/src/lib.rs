//! The verification hub (家庭经济状况核对, R-VER-*): under a registered,
//! signed consent it asks every department's adapter about each person of a
//! household and reports what it found, with provenance, against the
//! county's property rules. It checks and reports; civil affairs decides.
//!
//! Layout:
//! - [`consent`]: the consent registry and what a consent permits (R-VER-1);
//! - [`fanout`]: the department links — signed assertions, deadlines,
//!   concurrency, pace and circuit breakers;
//! - [`report`]: report items, findings and the summary (R-VER-4);
//! - [`campaign`]: bulk campaigns over a county or township, resumable (R-VER-5);
//! - [`service`]: the gRPC service; [`startup`]: settings and the `Application`.

pub mod campaign;
pub mod consent;
pub mod fanout;
pub mod report;
pub mod service;
pub mod startup;
