//! One module per department: its connector (which calls answer which
//! items) beside `transformers.rs` (its wire structs, status codes and
//! mapping onto records). A new department is a copy of one of these plus
//! its mapping, a variant of [`Kind`], and a line in `startup::run_kind`.

pub mod bank;
pub mod commerce;
pub mod housing;
pub mod human_resources;
pub mod public_security;
pub mod tax;

use dibao_proto::department::v1::Department;

/// Which department an adapter process serves (`department.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PublicSecurity,
    HumanResources,
    Housing,
    Commerce,
    Bank,
    Tax,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Kind::PublicSecurity, Kind::HumanResources, Kind::Housing, Kind::Commerce, Kind::Bank, Kind::Tax];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Settings value and the stem of the adapter's certificate identity.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PublicSecurity => "public_security",
            Kind::HumanResources => "human_resources",
            Kind::Housing => "housing",
            Kind::Commerce => "commerce",
            Kind::Bank => "bank",
            Kind::Tax => "tax",
        }
    }

    /// The adapter's certificate identity, e.g. `adapter-public-security`.
    pub fn identity(self) -> String {
        format!("adapter-{}", self.name().replace('_', "-"))
    }

    pub fn department(self) -> Department {
        match self {
            Kind::PublicSecurity => Department::PublicSecurity,
            Kind::HumanResources => Department::HumanResources,
            Kind::Housing => Department::Housing,
            Kind::Commerce => Department::Commerce,
            Kind::Bank => Department::Bank,
            Kind::Tax => Department::Tax,
        }
    }

    pub fn of(department: Department) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.department() == department)
    }
}
