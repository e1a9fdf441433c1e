//! PostgreSQL: what every service keeps in its own schema.
//!
//! - [`db`]: the pool, the service's schema, its numbered migrations, prepared statements.

pub mod db;
