//! Which department answers which item (R-VER-3): the one table the hub
//! routes its queries by and each adapter answers from.

use crate::department::v1::{Department, Item};

/// Every department the mesh asks, in the order reports list them.
pub const ALL: [Department; 8] = [
    Department::PublicSecurity,
    Department::HumanResources,
    Department::Housing,
    Department::Commerce,
    Department::Bank,
    Department::Tax,
    Department::DisabilityFederation,
    Department::MedicalInsurance,
];

/// Every item the departments answer, department by department.
pub const ALL_ITEMS: [Item; 14] = [
    Item::HouseholdRegistration,
    Item::Vehicles,
    Item::Death,
    Item::Pension,
    Item::SocialInsurance,
    Item::Employment,
    Item::UnemploymentBenefit,
    Item::Property,
    Item::BusinessLicence,
    Item::Deposits,
    Item::IncomeTax,
    Item::DisabilityCertificate,
    Item::RegisteredIllness,
    Item::MedicalSpending,
];

/// Each department with its settings name and the items it answers.
const TABLE: [(Department, &str, &[Item]); 8] = [
    (Department::PublicSecurity, "public_security", &[Item::HouseholdRegistration, Item::Vehicles, Item::Death]),
    (
        Department::HumanResources,
        "human_resources",
        &[Item::Pension, Item::SocialInsurance, Item::Employment, Item::UnemploymentBenefit],
    ),
    (Department::Housing, "housing", &[Item::Property]),
    (Department::Commerce, "commerce", &[Item::BusinessLicence]),
    (Department::Bank, "bank", &[Item::Deposits]),
    (Department::Tax, "tax", &[Item::IncomeTax]),
    (Department::DisabilityFederation, "disability_federation", &[Item::DisabilityCertificate]),
    (Department::MedicalInsurance, "medical_insurance", &[Item::RegisteredIllness, Item::MedicalSpending]),
];

/// The department that answers `item`.
pub fn department_of(item: Item) -> Option<Department> {
    TABLE.iter().find(|(_, _, items)| items.contains(&item)).map(|(d, _, _)| *d)
}

/// The items `department` answers (a `const fn`, so an adapter's
/// connector can name its items as a constant).
pub const fn items_of(department: Department) -> &'static [Item] {
    let mut i = 0;
    while i < TABLE.len() {
        if TABLE[i].0 as i32 == department as i32 {
            return TABLE[i].2;
        }
        i += 1;
    }
    &[]
}

/// The department's name in settings (`public_security`, …).
pub fn name(department: Department) -> &'static str {
    TABLE.iter().find(|(d, _, _)| *d == department).map_or("", |(_, name, _)| name)
}

/// The department named `name` in settings.
pub fn parse(name: &str) -> Option<Department> {
    TABLE.iter().find(|(_, n, _)| *n == name).map(|(d, _, _)| *d)
}

/// Its adapter's certificate identity, e.g. `adapter-public-security`.
pub fn adapter_identity(department: Department) -> String {
    format!("adapter-{}", name(department).replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_listed_once_in_the_table_order() {
        let table: Vec<Item> = TABLE.iter().flat_map(|(_, _, items)| items.iter().copied()).collect();
        assert_eq!(table, ALL_ITEMS);
    }

    #[test]
    fn every_item_has_exactly_one_department() {
        let items: Vec<Item> = ALL.iter().flat_map(|d| items_of(*d).iter().copied()).collect();
        for v in 1..=14 {
            let item = Item::try_from(v).expect("item");
            assert_eq!(items.iter().filter(|i| **i == item).count(), 1, "{item:?}");
            assert!(department_of(item).is_some_and(|d| items_of(d).contains(&item)));
        }
        assert_eq!(department_of(Item::Unspecified), None);
        assert_eq!(parse("public_security"), Some(Department::PublicSecurity));
        assert_eq!(adapter_identity(Department::HumanResources), "adapter-human-resources");
    }
}
