//! Who may see a person's data, proven and recorded.
//!
//! - [`assertion`]: the signed consent assertion the hub issues per department query and every adapter checks (R-VER-1);
//! - [`officer`]: officer assertions — minted by an issuer per call, verified by every service, seen once;
//! - [`access_log`]: the append-only, hash-chained log of every query of a person's data;
//! - [`history`]: a person's access history, served by every service that keeps the log;
//! - [`relatives`]: the officials' registry as the services acting on households keep it (优亲厚友).

pub mod access_log;
pub mod assertion;
pub mod history;
pub mod officer;
pub mod relatives;
