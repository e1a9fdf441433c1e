//! A service's life: from settings to a served, stoppable process.
//!
//! - [`settings`]: typed, layered settings (defaults, env file, `SERVICE__SECTION__KEY`), validated at start-up;
//! - [`telemetry`]: tracing, OpenTelemetry export, W3C trace context across gRPC and Kafka;
//! - [`error`]: the one error type and its table onto `tonic::Status`;
//! - [`tls`]: mTLS certificates and the caller's identity from its certificate;
//! - [`access`]: each service's access table, enforced on every call: systems by certificate, officers by assertion;
//! - [`metrics`]: the Prometheus text every deployable serves on its metrics listener;
//! - [`server`]: the gRPC server every service runs (health, reflection, ops, graceful shutdown);
//! - [`service`]: a deployable as its binary and its tests start it, and the start-up every service shares;
//! - [`binary`]: a service binary's whole `main` — settings, telemetry, build, serve, flush;
//! - [`workers`]: the outbox relay and the inbox consumer beside the server;
//! - [`clock`]: the time a service acts on, settable in tests;
//! - [`shutdown`]: one signal that every task of a service watches.

pub mod access;
pub mod binary;
pub mod clock;
pub mod error;
pub mod metrics;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
pub mod workers;
