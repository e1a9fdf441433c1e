//! The income, eligibility and benefit engine of civil affairs: pure
//! functions over a household, its income lines and the county's policy.
//! Every amount is integer fen; every result carries the lines it counted,
//! excluded or deducted, with the rule, and an explanation in Simplified
//! Chinese that an officer can print and a household can read.
//!
//! Layout:
//! - [`policy`]: the county policy for a year, and the checks that refuse an unlawful one (R-ELIG-2, R-ELIG-4);
//! - [`household`]: members, their ages and key groups, and the composition rules (R-ROSTER-4);
//! - [`income`]: per-capita income, line by line, and supporters' contributions (R-INC-1..4);
//! - [`benefit`]: eligibility, category, covered members, the monthly amount (R-ELIG-1, R-BEN-1..3),
//!   special hardship (R-ELIG-3) and gradual exit (R-BEN-4).
//!
//! Rounding, stated once: per-capita income is rounded down to the fen
//! (the household's favour), additions are rounded down per person, and a
//! gradual-exit step is rounded down.

pub mod benefit;
pub mod household;
pub mod income;
pub mod policy;

pub use dibao_proto::types::{Fen, IdentityNumber, InvalidField};
