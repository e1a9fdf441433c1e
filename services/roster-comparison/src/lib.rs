//! Roster comparison (台账比对, R-CMP-1..4): every household that falls
//! between civil affairs' dibao and special-hardship roster and the poverty
//! office's registered-poor roster.
//!
//! Layout:
//! - [`engine`]: the comparison itself — snapshots in, lists (a)–(g) out,
//!   deterministic, at province scale in memory;
//! - [`view`]: the service's versioned view of both rosters, kept from their
//!   events and read back as of a run's position;
//! - [`live`]: the continuous comparison, kept in the transaction of each change;
//! - [`rebuild`]: the view rebuilt from both rosters' full snapshots;
//! - [`registers`]: public security's death register and the officials' registry;
//! - [`register_file`]: those registers read from the departments' CSV or xlsx files;
//! - [`run`]: a run — read, compare, store with a digest, publish;
//! - [`export`]: the lists as xlsx or CSV files, identity numbers masked by role;
//! - [`service`]: the gRPC service; [`startup`]: settings, the application, the monthly run.

pub mod engine;
pub mod export;
pub mod live;
pub mod rebuild;
pub mod register_file;
pub mod registers;
pub mod run;
pub mod service;
pub mod startup;
pub mod view;
