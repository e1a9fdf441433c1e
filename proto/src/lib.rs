//! The contracts of the dibao mesh and the validated types they carry.
//!
//! Layout:
//! - the generated modules mirror the proto packages (`dibao::civil_affairs::v1`, …);
//! - [`types`] holds hand-written types with invariants (identity numbers,
//!   division codes, money in fen, dates) and their conversions from the wire;
//! - [`topics`] names the event topics both sides of the sync use;
//! - [`labels`]: one trait for the Chinese names of the enums officers read;
//! - [`departments`]: the one table of which department answers which item;
//! - [`divisions`]: which division codes exist (GB/T 2260 and the loaded
//!   provinces' townships and villages) and their names;
//! - [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.

pub mod departments;
pub mod divisions;
pub mod labels;
pub mod types;

/// Event topics, as both sides of the sync name them (before the
/// deployment's prefix), with the partition count each is created with.
/// Events are keyed by household, so one household's events stay in order.
pub mod topics {
    /// Civil affairs' household events: enrolled, composition, category, amount, exit, death.
    pub const CIVIL_AFFAIRS_HOUSEHOLD: (&str, i32) = ("civil-affairs.household.v1", 6);
    /// The poverty office's household events: registered, composition, exit, return, flag, death.
    pub const POVERTY_ALLEVIATION_HOUSEHOLD: (&str, i32) = ("poverty-alleviation.household.v1", 6);
    /// The verification hub's completed reports, keyed by household.
    pub const VERIFICATION_REPORT: (&str, i32) = ("verification.report.v1", 3);
    /// The roster comparison's finished runs, for the poverty office (R-CMP-3).
    pub const COMPARISON_RUN: (&str, i32) = ("roster-comparison.run.v1", 1);
}

/// Encoded descriptors of every contract, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dibao_descriptor.bin"));

#[allow(clippy::all, missing_docs)]
pub mod dibao {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("dibao.common.v1");
        }
    }
    pub mod events {
        pub mod v1 {
            tonic::include_proto!("dibao.events.v1");
        }
    }
    pub mod civil_affairs {
        pub mod v1 {
            tonic::include_proto!("dibao.civil_affairs.v1");
        }
    }
    pub mod poverty_alleviation {
        pub mod v1 {
            tonic::include_proto!("dibao.poverty_alleviation.v1");
        }
    }
    pub mod verification {
        pub mod v1 {
            tonic::include_proto!("dibao.verification.v1");
        }
    }
    pub mod department {
        pub mod v1 {
            tonic::include_proto!("dibao.department.v1");
        }
    }
    pub mod comparison {
        pub mod v1 {
            tonic::include_proto!("dibao.comparison.v1");
        }
    }
    pub mod ops {
        pub mod v1 {
            tonic::include_proto!("dibao.ops.v1");
        }
    }
    pub mod sync {
        pub mod v1 {
            tonic::include_proto!("dibao.sync.v1");
        }
    }
    pub mod access {
        pub mod v1 {
            tonic::include_proto!("dibao.access.v1");
        }
    }
    pub mod gateway {
        pub mod v1 {
            tonic::include_proto!("dibao.gateway.v1");
        }
    }
}

pub use dibao::{
    access, civil_affairs, common, comparison, department, events, gateway, ops, poverty_alleviation, sync,
    verification,
};
