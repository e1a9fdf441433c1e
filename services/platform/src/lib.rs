//! What every dibao-mesh service shares, so that no service repeats it.
//!
//! Layout:
//! - [`assertion`]: the signed consent assertion the hub issues and every adapter checks (R-VER-1);
//! - [`access_log`]: the append-only, hash-chained log of every query of a person's data;
//! - [`cli`]: connection flags and the mTLS channel of the operator and officer commands;
//! - [`clock`]: the time a service acts on, settable in tests;
//! - [`settings`]: typed, layered settings (defaults, env file, `SERVICE__SECTION__KEY`), validated at start-up;
//! - [`telemetry`]: tracing, OpenTelemetry export, W3C trace context across gRPC and Kafka;
//! - [`error`]: the one error type and its table onto `tonic::Status`;
//! - [`db`]: the Postgres pool, the service's schema and its numbered migrations;
//! - [`tls`]: mTLS certificates, caller identity and the per-method access policy;
//! - [`resync`]: each roster's view of the other rebuilt from a full snapshot (R-SYNC-3);
//! - [`server`]: the gRPC server every service runs (health, reflection, ops, graceful shutdown);
//! - [`binary`]: a service binary's whole `main` — settings, telemetry, build, serve, flush;
//! - [`kafka`]: producer, consumer and topic set-up that work with any Kafka-protocol broker;
//! - [`outbox`] and [`inbox`]: exactly-once effects across the broker;
//! - [`ops`]: the operator RPCs over outbox, inbox and dead letters;
//! - [`devpki`]: the development CA and per-service certificates of the local stack;
//! - [`tabular`]: roster files (CSV, xlsx) read by heading, records on consecutive lines;
//! - [`shutdown`]: one signal that every task of a service watches.

pub mod access_log;
pub mod assertion;
pub mod binary;
pub mod cli;
pub mod clock;
pub mod db;
pub mod devpki;
pub mod error;
pub mod inbox;
pub mod kafka;
pub mod ops;
pub mod outbox;
pub mod resync;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod tabular;
pub mod telemetry;
pub mod tls;
pub mod workers;

pub use error::Error;
