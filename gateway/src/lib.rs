//! The gateway (网关): the one entrance to the mesh from outside it.
//!
//! Officers log in over HTTPS with a password and an authenticator code (or
//! an ID token of the province's identity platform) and get a session; each
//! of their gRPC calls is forwarded over mTLS to the service that serves it
//! with a fresh, short-lived officer assertion signed by the gateway for that
//! service alone, which the service verifies itself. Departmental systems
//! come in with certificates from an external CA, each allowed its own
//! methods, division and rate, carrying their own officers' assertions. One
//! per-method table, default deny; health, reflection for operators,
//! Prometheus metrics, trace context on every forwarded call. The officer
//! registry is the gateway's own, managed by administrators through an RPC
//! (`dibao-officers`), every change recorded.
//!
//! Layout:
//! - [`startup`]: settings, keys, upstreams, systems, the listener;
//! - [`server`]: TLS (external CA for systems), HTTP/2 and HTTP/1.1 on one port;
//! - [`routes`]: the per-method table; [`proxy`]: who calls, and the forwarding;
//! - [`api`]: the officers' HTTPS API (login, session, password, logout, a person's access history);
//! - [`console`]: the officers' console (办公台), pages in Chinese over the same sessions and assertions;
//! - [`history`]: a person's access history from one service, for an officer;
//! - [`login`], [`sessions`], [`oidc`], [`totp`], [`secrets`]: proving an officer;
//! - [`registry`]: the officer registry's queries; [`admin`]: its RPC;
//! - [`gateway`]: what the gateway holds while it runs; [`metrics`];
//! - [`client`]: the gateway from a caller's side (login, a channel carrying the session); [`https`]: a small client.

pub mod admin;
pub mod api;
pub mod client;
pub mod console;
pub mod divisions;
pub mod gateway;
pub mod history;
pub mod https;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod proxy;
pub mod registry;
pub mod routes;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod startup;
pub mod totp;

pub use startup::Application;
