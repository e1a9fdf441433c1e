//! Kafka, and exactly-once effects across it (R-SYNC-1..3).
//!
//! - [`kafka`]: producer, consumer and topic set-up that work with any Kafka-protocol broker;
//! - [`outbox`]: a change and its event in one transaction, published by the relay;
//! - [`inbox`]: an event applied and its id recorded in one transaction, dead letters aside;
//! - [`ops`]: the operator RPCs over outbox, inbox and dead letters.

pub mod inbox;
pub mod kafka;
pub mod ops;
pub mod outbox;
