//! Roster comparison (台账比对, R-CMP-1..4): every household that falls
//! between civil affairs' dibao and special-hardship roster and the poverty
//! office's registered-poor roster.
//!
//! Layout:
//! - [`engine`]: the comparison itself — snapshots in, lists (a)–(g) out,
//!   deterministic, at province scale in memory.

pub mod engine;
