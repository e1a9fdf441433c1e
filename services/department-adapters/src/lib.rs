//! Department adapters: each department's system behind one gRPC service
//! (mTLS), deployable inside that department's network. The adapter
//! trusts no caller's word: it verifies the hub's signed consent assertion
//! itself — signature, validity, person and items — and refuses without
//! one; every query, answered or refused, goes into its own hash-chained
//! access log before the answer leaves.
//!
//! Layout:
//! - [`kit`]: the connector trait, the HTTP client with timeouts and retries,
//!   and the mapping helpers every department uses;
//! - [`departments`]: one module per department (public security, HR and
//!   social security, housing, commerce, banks, tax, the disability
//!   federation, medical insurance), each with its `transformers.rs`;
//! - [`service`]: the `DepartmentService` gRPC face — the assertion first, then the department;
//! - [`startup`]: the adapter as its binary and its tests start it (settings, access).

pub mod departments;
pub mod kit;
pub mod service;
pub mod startup;

pub use startup::Application;
