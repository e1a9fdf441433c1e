//! The contracts of the dibao mesh and the validated types they carry.
//!
//! Layout:
//! - the generated modules mirror the proto packages (`dibao::civil_affairs::v1`, …);
//! - [`types`] holds hand-written types with invariants (identity numbers,
//!   division codes, money in fen, dates) and their conversions from the wire;
//! - [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.

pub mod types;

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
}

pub use dibao::{civil_affairs, common, comparison, department, events, ops, poverty_alleviation, verification};
