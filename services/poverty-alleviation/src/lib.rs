//! The poverty-alleviation service: the registered-poor roster (R-ROSTER-2)
//! and its side of the two-way sync with civil affairs (R-SYNC-1..3).
//!
//! Layout — the face, then a room for each thing it holds:
//! - [`startup`]: the service as its binary and tests start it (migrations, topics, access);
//! - [`service`]: the gRPC face — parse, delegate, convert once;
//! - [`households`]: the roster's households — registration, status, deaths, candidates, export;
//! - [`import`]: the county's roster imported on the platform's import driver;
//! - [`sync`]: civil affairs' events applied to this side's view of the dibao roster, the
//!   dibao-registered-poor flag they set or clear (R-SYNC-2), and the view's rebuild;
//! - [`roster_file`]: the county's registered-poor roster file (CSV or xlsx) read into import rows.

pub mod households;
pub mod import;
pub mod roster_file;
pub mod service;
pub mod startup;
pub mod sync;

pub use startup::Application;
