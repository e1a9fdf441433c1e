//! PostgreSQL: what every service keeps in its own schema, and the roster
//! kit both roster services share.
//!
//! - [`db`]: the pool, the service's schema, its numbered migrations, prepared statements;
//! - [`import`]: the streamed roster import (batch and savepoint per household, errors per row and field);
//! - [`snapshot`]: a division's rows as one consistent snapshot with its outbox position;
//! - [`rebuild`]: a roster's view of the other rebuilt from the other's snapshot, over named rows.

pub mod db;
pub mod import;
pub mod pg_tls;
pub mod rebuild;
pub mod snapshot;
