//! Civil affairs: the dibao and special-hardship roster, county policy, the
//! income and benefit engine's service side, and the signed approval
//! process (R-ROSTER-1, R-PROC-*, R-ELIG-*, R-BEN-*).
//!
//! Layout — the face, then a room for each thing it holds:
//! - [`startup`]: the service as its binary and tests start it (migrations, topics, access);
//! - [`service`]: the gRPC face — parse, delegate, convert once;
//! - [`households`]: the roster's households — named rows, their queries, the events they publish;
//! - [`history`]: who signed what and when, with the proving assertion (R-PROC-2);
//! - [`application`]: the signed process — submission, steps, exits, deaths, objections (R-PROC-*);
//! - [`process`]: the order of steps and who signs each;
//! - [`report_gate`]: the hub's report read and held against the household before a step accepts it (R-VER-2);
//! - [`policy`]: county policy, its recalculation, and the engine run over a household;
//! - [`import`]: a county's roster imported on the platform's import driver (new households only);
//! - [`members`]: a household's members changed, signed, published and assessed again;
//! - [`notice`]: public notice lists in CSV and xlsx (R-PROC-3);
//! - [`review`]: reviews due (R-REV-1), signed reviews and gradual exits (R-BEN-4);
//! - [`sampling`]: reproducible random samples for checks (R-AUD-1);
//! - [`complaints`]: complaints and reports, their assignment, follow-up and close (R-AUD-2);
//! - [`payments`]: the monthly payment roll, the banks' files and their returns (R-PROC-1);
//! - [`reports`]: upward reports, monthly and quarterly, per county and rolled up (R-AUD-3);
//! - [`certificates`]: the household's certificate, issued, reissued on change, withdrawn (R-PROC-1);
//! - [`sync`]: the poverty office's events applied to the view of its roster, and its rebuild (R-SYNC-*);
//! - [`roster_file`]: a county's roster file (花名册, CSV or xlsx) read into import rows;
//! - [`convert`]: from the wire to the engine's types, naming each bad field.

pub mod application;
pub mod certificates;
pub mod complaints;
pub mod convert;
pub mod history;
pub mod households;
pub mod import;
pub mod members;
pub mod notice;
pub mod payments;
pub mod policy;
pub mod process;
pub mod report_gate;
pub mod reports;
pub mod review;
pub mod roster_file;
pub mod sampling;
pub mod service;
pub mod startup;
pub mod sync;

pub use startup::Application;
