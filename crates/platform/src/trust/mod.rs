//! Who may see a person's data, proven and recorded.
//!
//! - [`assertion`]: the signed consent assertion the hub issues per department query and every adapter checks (R-VER-1);
//! - [`access_log`]: the append-only, hash-chained log of every query of a person's data.

pub mod access_log;
pub mod assertion;
