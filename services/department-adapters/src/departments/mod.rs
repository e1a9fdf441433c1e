//! One module per department: its connector (which calls answer which
//! items) beside `transformers.rs` (its wire structs, status codes and
//! mapping onto records). A new department is a copy of the template plus
//! its mapping, its row in `dibao_proto::departments`, and a line in
//! `startup::serve_department`.

pub mod bank;
pub mod commerce;
pub mod disability_federation;
pub mod housing;
pub mod human_resources;
pub mod medical_insurance;
pub mod public_security;
pub mod tax;
