//! Civil affairs through its real path: gRPC over mTLS, real Postgres, the
//! real broker; one test binary, a module per concern. Rules cited by id
//! from DOMAIN.md.

mod assessment;
mod binary;
mod certificates;
mod complaints;
mod hardship;
mod helpers;
mod members;
mod payments;
mod process;
mod report_gate;
mod reports;
mod reviews;
mod roster;
mod sampling;
mod separation;
