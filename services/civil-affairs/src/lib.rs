//! Civil affairs: the dibao and special-hardship roster, county policy, the
//! income and benefit engine's service side, and the signed approval
//! process (R-ROSTER-1, R-PROC-*, R-ELIG-*, R-BEN-*).
//!
//! Layout:
//! - [`startup`]: settings, the `Application` that binds (port 0 in tests) and runs;
//! - [`service`]: the gRPC service (policy registry, assessment, process);
//! - [`process`]: the order of steps and who signs each;
//! - [`sampling`]: reproducible random samples for checks (R-AUD-1);
//! - [`convert`]: from the wire to the engine's types, naming each bad field.

pub mod convert;
pub mod process;
pub mod sampling;
pub mod service;
pub mod startup;
