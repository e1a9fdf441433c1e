//! Civil affairs: the dibao and special-hardship roster, county policy, the
//! income and benefit engine's service side, and the signed approval
//! process (R-ROSTER-1, R-PROC-*, R-ELIG-*, R-BEN-*).
//!
//! Layout:
//! - [`startup`]: settings, the `Application` that binds (port 0 in tests) and runs;
//! - [`service`]: the gRPC service (policy registry, assessment, process);
//! - [`process`]: the order of steps and who signs each;
//! - [`notice`]: public notice lists in CSV and xlsx (R-PROC-3);
//! - [`review`]: reviews due (R-REV-1), signed reviews and gradual exits (R-BEN-4);
//! - [`roster_file`]: a county's roster file (花名册, CSV or xlsx) read into import rows;
//! - [`sampling`]: reproducible random samples for checks (R-AUD-1);
//! - [`sync`]: the poverty office's events applied to the view of its roster (R-SYNC-1, 2);
//! - [`convert`]: from the wire to the engine's types, naming each bad field.

pub mod convert;
pub mod notice;
pub mod process;
pub mod review;
pub mod roster_file;
pub mod sampling;
pub mod service;
pub mod startup;
pub mod sync;
