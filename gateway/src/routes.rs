//! The gateway's one per-method table: which methods exist outside the
//! mesh, where each goes, and who may come for it. Default deny: a method
//! of a service not listed here, or a method its service does not have, is
//! refused before anything is forwarded. Each service then applies its own
//! table (roles, jurisdiction) to the officer the gateway asserts.

use std::collections::HashSet;

use prost::Message;

/// Where a method is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// By the gateway itself.
    Local,
    /// By one service of the mesh, by its name.
    Service(&'static str),
    /// By every service (the caller names one in `x-dibao-service`).
    Named,
}

/// Who may come for a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admits {
    /// Anyone who reaches the gateway (health).
    Anyone,
    /// A logged-in officer only.
    Officers,
    /// A logged-in officer, or a departmental system allowed the method
    /// (carrying its own officers' assertions).
    OfficersAndSystems,
}

/// One line: a gRPC service (`package.Service`), where it goes, who may come.
pub struct Route {
    pub service: &'static str,
    pub target: Target,
    pub admits: Admits,
}

const fn route(service: &'static str, target: Target, admits: Admits) -> Route {
    Route { service, target, admits }
}

/// The table. The departments' adapters are not in it: only the hub asks a
/// department, from inside the mesh.
pub const ROUTES: &[Route] = &[
    route("dibao.civil_affairs.v1.CivilAffairsService", Target::Service("civil-affairs"), Admits::OfficersAndSystems),
    route("dibao.civil_affairs.v1.ComplaintService", Target::Service("civil-affairs"), Admits::Officers),
    route("dibao.civil_affairs.v1.PaymentService", Target::Service("civil-affairs"), Admits::Officers),
    route("dibao.civil_affairs.v1.ReportService", Target::Service("civil-affairs"), Admits::Officers),
    route("dibao.sync.v1.PovertyRosterViewService", Target::Service("civil-affairs"), Admits::Officers),
    route(
        "dibao.poverty_alleviation.v1.PovertyAlleviationService",
        Target::Service("poverty-alleviation"),
        Admits::OfficersAndSystems,
    ),
    route("dibao.sync.v1.DibaoRosterViewService", Target::Service("poverty-alleviation"), Admits::Officers),
    route("dibao.verification.v1.VerificationService", Target::Service("verification-hub"), Admits::OfficersAndSystems),
    route("dibao.comparison.v1.ComparisonService", Target::Service("roster-comparison"), Admits::OfficersAndSystems),
    route("dibao.ops.v1.OpsService", Target::Named, Admits::Officers),
    route("dibao.access.v1.AccessLogService", Target::Named, Admits::Officers),
    route("dibao.gateway.v1.OfficerAdminService", Target::Local, Admits::Officers),
    route("grpc.health.v1.Health", Target::Local, Admits::Anyone),
    route("grpc.reflection.v1.ServerReflection", Target::Local, Admits::OfficersAndSystems),
    route("grpc.reflection.v1alpha.ServerReflection", Target::Local, Admits::OfficersAndSystems),
];

/// The header naming the service a [`Target::Named`] call is for.
pub const SERVICE_HEADER: &str = "x-dibao-service";

/// Every method of the contracts, `/package.Service/Method`, from the
/// descriptors the services are built from.
pub struct Methods(HashSet<String>);

impl Methods {
    pub fn from_descriptors() -> Self {
        let mut all = HashSet::new();
        let sets = [dibao_proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET];
        for bytes in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(bytes) else { continue };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let name = service.name.unwrap_or_default();
                    for method in service.method {
                        all.insert(format!("/{package}.{name}/{}", method.name.unwrap_or_default()));
                    }
                }
            }
        }
        for reflection in ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] {
            all.insert(format!("/{reflection}/ServerReflectionInfo"));
        }
        Self(all)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.0.contains(path)
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }
}

/// The route of `path`, if it is a method that exists and its service is in the table.
pub fn route_of<'a>(methods: &Methods, path: &str) -> Option<&'a Route> {
    if !methods.contains(path) {
        return None;
    }
    let service = path.strip_prefix('/')?.split_once('/')?.0;
    ROUTES.iter().find(|r| r.service == service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_route_and_unknown_ones_do_not() {
        let methods = Methods::from_descriptors();
        let civil = route_of(&methods, "/dibao.civil_affairs.v1.CivilAffairsService/SignStep").expect("routed");
        assert_eq!(civil.target, Target::Service("civil-affairs"));
        assert!(route_of(&methods, "/dibao.civil_affairs.v1.CivilAffairsService/Nothing").is_none());
        assert!(route_of(&methods, "/dibao.department.v1.DepartmentService/Query").is_none(), "adapters stay inside");
        assert_eq!(route_of(&methods, "/grpc.health.v1.Health/Check").map(|r| r.admits), Some(Admits::Anyone));
    }

    /// Every service of the contracts but the departments' is reachable:
    /// a service added to the contracts and forgotten here fails this.
    #[test]
    fn every_service_of_the_contracts_has_a_line() {
        let methods = Methods::from_descriptors();
        let inside_only = ["dibao.department.v1.DepartmentService"];
        for m in methods.iter() {
            let service = m.trim_start_matches('/').split_once('/').map_or("", |(s, _)| s);
            if inside_only.contains(&service) {
                continue;
            }
            assert!(route_of(&methods, m).is_some(), "{m} has no line in the gateway's table");
        }
    }
}
