//! Members, key groups, and the composition rules of a dibao household (R-ROSTER-4).

use dibao_proto::labels::Label;
use dibao_proto::types::{IdentityNumber, InvalidField};
use time::Date;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Head,
    Spouse,
    Child,
    Parent,
    Grandchild,
    Grandparent,
    Sibling,
    ChildInLaw,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WorkAbility {
    None,
    Partial,
    Full,
}

/// Ability to look after oneself (生活自理能力): it sets a special-hardship
/// person's care standard (R-ELIG-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfCare {
    Full,
    Partial,
    None,
}

impl Label for SelfCare {
    fn label(self) -> &'static str {
        match self {
            SelfCare::Full => "生活能够自理",
            SelfCare::Partial => "部分丧失生活自理能力",
            SelfCare::None => "完全丧失生活自理能力",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub identity: IdentityNumber,
    pub name: String,
    pub relation: Relation,
    /// 0 = none, 1-4 = disability grade (1 most severe).
    pub disability_grade: u8,
    pub serious_illness: bool,
    pub work_ability: WorkAbility,
    /// Asked of special-hardship persons only.
    pub self_care: Option<SelfCare>,
}

impl Member {
    pub fn age_on(&self, on: Date) -> i32 {
        self.identity.age_on(on)
    }

    /// Grades 1 and 2 are severe disability.
    pub fn severely_disabled(&self) -> bool {
        matches!(self.disability_grade, 1 | 2)
    }

    pub fn disabled(&self) -> bool {
        self.disability_grade > 0
    }
}

/// The three cases in which one person may form a dibao household (R-ROSTER-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinglePersonReason {
    /// An adult with severe disability and no work ability living alone.
    SevereDisabilityAlone,
    /// An adult jobless severely disabled person supported by family who
    /// cannot form a household of their own, on their own application.
    SevereDisabilitySupported,
    /// Religious clergy living in a religious site for three years or more.
    Clergy { years_in_site: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Household {
    pub members: Vec<Member>,
    pub single_person: Option<SinglePersonReason>,
}

/// Key groups that receive an addition (R-BEN-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyGroup {
    SevereDisability,
    SeriousIllness,
    Elderly,
    Minor,
}

impl Label for KeyGroup {
    fn label(self) -> &'static str {
        match self {
            KeyGroup::SevereDisability => "重度残疾人",
            KeyGroup::SeriousIllness => "重病患者",
            KeyGroup::Elderly => "老年人",
            KeyGroup::Minor => "未成年人",
        }
    }
}

/// Every key group `m` belongs to on `on`.
pub fn key_groups(m: &Member, on: Date, elderly_age: i32) -> Vec<KeyGroup> {
    let age = m.age_on(on);
    let mut groups = Vec::new();
    if m.severely_disabled() {
        groups.push(KeyGroup::SevereDisability);
    }
    if m.serious_illness {
        groups.push(KeyGroup::SeriousIllness);
    }
    if age >= elderly_age {
        groups.push(KeyGroup::Elderly);
    }
    if age < 18 {
        groups.push(KeyGroup::Minor);
    }
    groups
}

/// Checks the household as a unit (R-ROSTER-4), naming each problem.
/// Whether a spouse or minor child sits in another household is the
/// roster's check, not the engine's.
pub fn validate_composition(h: &Household, on: Date) -> Result<(), Vec<InvalidField>> {
    let mut errors = Vec::new();
    if h.members.is_empty() {
        return Err(vec![InvalidField::new("household.members", "家庭成员不能为空")]);
    }
    let heads = h.members.iter().filter(|m| m.relation == Relation::Head).count();
    if heads != 1 {
        errors.push(InvalidField::new("household.members", format!("应有且只有一名户主，实际为{heads}名")));
    }
    if h.members.iter().filter(|m| m.relation == Relation::Spouse).count() > 1 {
        errors.push(InvalidField::new("household.members", "户主配偶不能多于一人"));
    }
    for (i, m) in h.members.iter().enumerate() {
        if h.members[..i].iter().any(|o| o.identity == m.identity) {
            errors.push(InvalidField::new(
                format!("household.members[{i}].identity_number"),
                format!("身份证号码{}重复出现", m.identity.masked()),
            ));
        }
        if m.disability_grade > 4 {
            errors.push(InvalidField::new(
                format!("household.members[{i}].disability_grade"),
                format!("残疾等级应为0（无）或1至4级，实际为{}", m.disability_grade),
            ));
        }
    }
    match (h.members.len(), h.single_person) {
        // A person who really lives alone is an ordinary single-person
        // household (单人户); whether a spouse or minor child is registered
        // with them is for the verification report (R-ROSTER-4).
        (1, None) => {}
        (1, Some(reason)) => {
            let m = &h.members[0];
            let adult = m.age_on(on) >= 18;
            let ok = match reason {
                SinglePersonReason::SevereDisabilityAlone => {
                    adult && m.severely_disabled() && m.work_ability == WorkAbility::None
                }
                SinglePersonReason::SevereDisabilitySupported => adult && m.severely_disabled(),
                SinglePersonReason::Clergy { years_in_site } => years_in_site >= 3,
            };
            if !ok {
                let why = match reason {
                    SinglePersonReason::SevereDisabilityAlone => {
                        "该情形要求申请人为成年、一级或二级残疾且完全丧失劳动能力"
                    }
                    SinglePersonReason::SevereDisabilitySupported => "该情形要求申请人为成年且一级或二级残疾",
                    SinglePersonReason::Clergy { .. } => "该情形要求在宗教场所居住满三年",
                };
                errors.push(InvalidField::new("household.single_person_reason", format!("{why}（R-ROSTER-4）")));
            }
        }
        (_, Some(_)) => errors.push(InvalidField::new("household.single_person_reason", "多人家庭不应填写单人户情形")),
        (_, None) => {}
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::date;

    /// Builds a valid identity number born on `birth` (region 220581, sequence 001 male/002 female).
    pub fn id(birth: &str, seq: &str) -> IdentityNumber {
        let body = format!("220581{birth}{seq}");
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body.bytes().zip(weights).map(|(d, w)| u32::from(d - b'0') * w).sum();
        let check = b"10X98765432"[(sum % 11) as usize] as char;
        IdentityNumber::parse(&format!("{body}{check}")).expect("valid test id")
    }

    pub fn member(birth: &str, seq: &str, relation: Relation, ability: WorkAbility) -> Member {
        Member {
            identity: id(birth, seq),
            name: format!("成员{seq}"),
            relation,
            disability_grade: 0,
            serious_illness: false,
            work_ability: ability,
            self_care: None,
        }
    }

    const ON: Date = date!(2026 - 06 - 01);

    #[test]
    fn key_groups_follow_age_and_health() {
        let mut m = member("19600601", "001", Relation::Head, WorkAbility::None);
        m.disability_grade = 2;
        assert_eq!(key_groups(&m, ON, 60), vec![KeyGroup::SevereDisability, KeyGroup::Elderly]);
        let child = member("20080602", "002", Relation::Child, WorkAbility::None);
        assert_eq!(key_groups(&child, ON, 60), vec![KeyGroup::Minor], "17 years old the day before the birthday");
        let adult = member("20080601", "003", Relation::Child, WorkAbility::Full);
        assert!(key_groups(&adult, ON, 60).is_empty(), "18 on the day");
    }

    #[test]
    fn a_person_living_alone_is_a_household_and_the_three_reasons_are_checked_when_given() {
        let alone = Household {
            members: vec![member("19800101", "001", Relation::Head, WorkAbility::Full)],
            single_person: None,
        };
        assert_eq!(validate_composition(&alone, ON), Ok(()));

        let mut disabled = alone.clone();
        disabled.members[0].disability_grade = 1;
        disabled.members[0].work_ability = WorkAbility::None;
        disabled.single_person = Some(SinglePersonReason::SevereDisabilityAlone);
        assert_eq!(validate_composition(&disabled, ON), Ok(()));

        let mut mild = disabled.clone();
        mild.members[0].disability_grade = 3;
        assert!(validate_composition(&mild, ON).expect_err("grade 3")[0].reason.contains("一级或二级"));

        let clergy = Household {
            members: alone.members.clone(),
            single_person: Some(SinglePersonReason::Clergy { years_in_site: 2 }),
        };
        assert!(validate_composition(&clergy, ON).expect_err("2 years")[0].reason.contains("满三年"));
    }

    #[test]
    fn one_head_and_unique_members() {
        let h = Household {
            members: vec![
                member("19800101", "001", Relation::Head, WorkAbility::Full),
                member("19800101", "001", Relation::Spouse, WorkAbility::Full),
            ],
            single_person: None,
        };
        let e = validate_composition(&h, ON).expect_err("duplicate");
        assert_eq!(e[0].field, "household.members[1].identity_number");
    }
}
