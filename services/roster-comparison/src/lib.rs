//! Roster comparison (台账比对, R-CMP-1..4): every household that falls
//! between civil affairs' dibao and special-hardship roster and the poverty
//! office's registered-poor roster.
//!
//! Layout — the face, then a room for each thing it holds:
//! - [`startup`]: the service as its binary and tests start it (settings, the monthly run, access);
//! - [`service`]: the gRPC face — parse, delegate, convert once;
//! - [`engine`]: the comparison itself — snapshots in, lists (a)–(g) out,
//!   deterministic, at province scale in memory;
//! - [`view`]: the versioned view of both rosters as a store, read back as of a run's position;
//! - [`maintenance`]: the view kept from both rosters' events;
//! - [`live`]: the continuous comparison, kept in the transaction of each change;
//! - [`rebuild`]: the view rebuilt from both rosters' full snapshots;
//! - [`entries`]: the lists' entries as text, their ids and the run's digest;
//! - [`run`]: a run — read, compare, store with a digest, publish;
//! - [`lists`]: runs, entries, open items and files as officers read them;
//! - [`decisions`]: decisions on entries, checked with the rosters (R-CMP-3);
//! - [`registers`]: public security's death register and the officials' registry;
//! - [`register_file`]: those registers read from the departments' CSV or xlsx files;
//! - [`export`]: the lists as xlsx or CSV files, identity numbers masked by role.

pub mod decisions;
pub mod engine;
pub mod entries;
pub mod export;
pub mod lists;
pub mod live;
pub mod maintenance;
pub mod rebuild;
pub mod register_file;
pub mod registers;
pub mod run;
pub mod service;
pub mod startup;
pub mod view;

pub use startup::Application;
