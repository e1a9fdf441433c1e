//! The operator's commands and what they need beyond the platform. Never
//! deployed as a service: run by a provincial operator, the local stack's
//! scripts and the tests.
//!
//! Layout:
//! - [`devpki`]: the development CA and per-service certificates of the local stack and the tests;
//! - [`resync`]: each roster's view of the other rebuilt from a full snapshot (R-SYNC-3);
//! - `src/bin/`: `dibao-ops` (pipeline status, dead letters, retry), `dibao-resync`,
//!   `dibao-access-log` (verify a chain, who looked at a person), `dibao-devcerts`,
//!   `dibao-assertion-key`.

pub mod devpki;
pub mod resync;
