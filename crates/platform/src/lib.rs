//! What every dibao-mesh service shares, so that no service repeats it.
//! Platform imports no service; a service's own rules stay in the service.
//!
//! Layout, by concern:
//! - [`runtime`]: a service's life — settings, telemetry, the error table,
//!   the gRPC server with mTLS and the access policy, the binary's `main`,
//!   background workers, the clock, shutdown;
//! - [`store`]: PostgreSQL — the pool, the service's schema and its numbered
//!   migrations;
//! - [`events`]: Kafka and exactly-once effects across it — producer,
//!   consumer and topics, the outbox, the inbox, the operator RPCs over them;
//! - [`trust`]: the signed consent assertion the hub issues and every
//!   adapter checks (R-VER-1), and the hash-chained access log of every
//!   query of a person's data;
//! - [`files`]: roster files (CSV, xlsx) read by heading, and the client
//!   side of the import commands.

pub mod events;
pub mod files;
pub mod runtime;
pub mod store;
pub mod trust;

pub use runtime::error::Error;
