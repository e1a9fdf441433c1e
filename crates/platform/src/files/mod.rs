//! Files officers bring, and the commands that send them.
//!
//! - [`tabular`]: roster files (CSV, xlsx) read by heading, records on consecutive lines;
//! - [`command`]: connection flags, the mTLS channel and the streamed import of the operator and officer commands.

pub mod command;
pub mod tabular;
