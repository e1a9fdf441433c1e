//! The poverty-alleviation service: the registered-poor roster (R-ROSTER-2)
//! and its side of the two-way sync with civil affairs (R-SYNC-1..3).
//!
//! Layout:
//! - [`startup`]: settings, the `Application` that binds (port 0 in tests) and runs;
//! - [`service`]: the gRPC service (registration, status, deaths, candidates, import, export);
//! - [`roster_file`]: the county's registered-poor roster file (CSV or xlsx) read into import rows;
//! - [`sync`]: civil affairs' events applied to this side's view of the dibao roster,
//!   and the dibao-registered-poor flag they set or clear (R-SYNC-2).

pub mod roster_file;
pub mod service;
pub mod startup;
pub mod sync;
