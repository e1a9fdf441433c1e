//! County policy for one year (R-ELIG-4, R-INC-1..4, R-BEN-2..4, R-REV-1).

use std::collections::BTreeMap;

use dibao_proto::types::{DivisionCode, Fen, InvalidField};
use time::Date;

use crate::household::SelfCare;

/// How a gradual exit steps down (R-BEN-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStep {
    Monthly,
    Quarterly,
}

/// Additions for key groups (R-BEN-3), in basis points of the standard per
/// covered member of the group (1000 = 10 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyGroupAdditions {
    pub severe_disability_bp: u32,
    pub serious_illness_bp: u32,
    pub elderly_bp: u32,
    pub minor_bp: u32,
}

/// Who a property rule looks at. Only household members may be judged by
/// what they own (R-ELIG-2); relatives' means feed supporter estimates only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSubject {
    HouseholdMembers,
    NonMembers,
}

/// What a property rule limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyItem {
    /// Motor vehicles other than those needed for production or disability.
    Vehicles,
    /// Commercial or urban housing beyond the family home.
    Housing,
    /// Bank deposits and securities, in fen per member.
    Deposits,
    /// Registered businesses and their capital, in fen.
    Business,
    /// Being on the public payroll: no national or provincial criterion, so
    /// no county may exclude on it (R-ELIG-2).
    PublicPayroll,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyRule {
    pub item: PropertyItem,
    pub subject: RuleSubject,
    /// Count, square metres or fen, by item.
    pub limit: i64,
}

/// The county's special-hardship standards (R-ELIG-3), per person per
/// month: the basic-living standard, and the care standard by the person's
/// ability to look after themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialHardshipStandards {
    pub basic_living: Fen,
    pub care_self_caring: Fen,
    pub care_partly_dependent: Fen,
    pub care_fully_dependent: Fen,
}

impl SpecialHardshipStandards {
    /// The care standard of a person who looks after themselves as `s` says.
    pub fn care(&self, s: SelfCare) -> Fen {
        match s {
            SelfCare::Full => self.care_self_caring,
            SelfCare::Partial => self.care_partly_dependent,
            SelfCare::None => self.care_fully_dependent,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountyPolicy {
    pub county: DivisionCode,
    pub year: i32,
    /// First day of the month from which the policy applies.
    pub effective_from: Date,
    /// Dibao standard, per person per month.
    pub dibao_standard: Fen,
    /// National poverty line converted to a monthly figure, the floor of the standard.
    pub national_poverty_line: Fen,
    pub additions: KeyGroupAdditions,
    /// Age from which a member counts as elderly for additions and special hardship.
    pub elderly_age: i32,
    /// County reference incomes (R-INC-1): item -> fen per unit per month
    /// (per mu for crops, per person for migrant work).
    pub reference_incomes: BTreeMap<String, Fen>,
    pub minimum_wage: Fen,
    pub rural_disposable_income: Fen,
    /// Share of the reference figure counted as a supporter's estimated
    /// contribution (R-INC-4), in basis points.
    pub supporter_ratio_bp: u32,
    pub property_rules: Vec<PropertyRule>,
    pub exit_step: ExitStep,
    pub full_support_review_months: u32,
    pub unstable_income_review_months: u32,
    /// None where the county has set no special-hardship standards.
    pub special_hardship: Option<SpecialHardshipStandards>,
}

impl CountyPolicy {
    /// Refuses a policy that breaks national rules, naming each field.
    pub fn validate(&self) -> Result<(), Vec<InvalidField>> {
        let mut errors = Vec::new();
        if self.dibao_standard < self.national_poverty_line {
            errors.push(InvalidField::new(
                "dibao_standard_monthly",
                format!(
                    "低保标准{}低于国家扶贫标准{}，按规定不得低于国家扶贫标准（R-ELIG-4）",
                    self.dibao_standard, self.national_poverty_line
                ),
            ));
        }
        if self.national_poverty_line.0 <= 0 {
            errors.push(InvalidField::new("national_poverty_line_monthly", "国家扶贫标准必须大于零"));
        }
        if self.effective_from.day() != 1 {
            errors.push(InvalidField::new("effective_from", "生效时间应为某月1日"));
        }
        if self.supporter_ratio_bp > 10_000 {
            errors.push(InvalidField::new("supporter_estimate_ratio_bp", "赡养费测算比例不能超过100%"));
        }
        if !(50..=80).contains(&self.elderly_age) {
            errors.push(InvalidField::new("elderly_age", format!("老年人年龄线{}岁不合理", self.elderly_age)));
        }
        for (i, rule) in self.property_rules.iter().enumerate() {
            let field = format!("property_thresholds[{i}]");
            if rule.subject == RuleSubject::NonMembers {
                errors.push(InvalidField::new(
                    field.clone(),
                    "不得以非家庭成员（如子女、亲属）拥有的财产或身份排除申请家庭；赡养人情况只用于计算赡养费（R-ELIG-2）",
                ));
            }
            if rule.item == PropertyItem::PublicPayroll {
                errors.push(InvalidField::new(
                    field.clone(),
                    "“家庭成员有财政供养人员”不是国家和省规定的认定条件，不得作为排除条件（R-ELIG-2）",
                ));
            }
            if rule.limit < 0 {
                errors.push(InvalidField::new(field, "财产限额不能为负数"));
            }
        }
        if let Some(s) = &self.special_hardship {
            // Special hardship supports a person wholly: its basic-living
            // standard is not below the dibao standard it would otherwise top up to.
            if s.basic_living < self.dibao_standard {
                errors.push(InvalidField::new(
                    "special_hardship.basic_living_monthly",
                    format!("特困人员基本生活标准{}低于本县低保标准{}", s.basic_living, self.dibao_standard),
                ));
            }
            let cares = [
                ("care_self_caring_monthly", s.care_self_caring),
                ("care_partly_dependent_monthly", s.care_partly_dependent),
                ("care_fully_dependent_monthly", s.care_fully_dependent),
            ];
            for (field, fen) in cares {
                if fen.0 < 0 {
                    errors.push(InvalidField::new(format!("special_hardship.{field}"), "照料护理标准不能为负数"));
                }
            }
            if s.care_partly_dependent < s.care_self_caring || s.care_fully_dependent < s.care_partly_dependent {
                errors.push(InvalidField::new(
                    "special_hardship.care_fully_dependent_monthly",
                    "照料护理标准应随失能程度提高：完全失能不低于半失能，半失能不低于能够自理",
                ));
            }
        }
        for (item, fen) in &self.reference_incomes {
            if fen.0 < 0 {
                errors.push(InvalidField::new(format!("reference_incomes[{item}]"), "参考收入不能为负数"));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::date;

    /// A county policy with round numbers used across the engine's tests:
    /// standard 500.00 yuan, additions 10 % (severe disability 20 %).
    pub fn county() -> CountyPolicy {
        CountyPolicy {
            county: DivisionCode::parse("220581").expect("county"),
            year: 2026,
            effective_from: date!(2026 - 04 - 01),
            dibao_standard: Fen(50_000),
            national_poverty_line: Fen(35_000),
            additions: KeyGroupAdditions {
                severe_disability_bp: 2_000,
                serious_illness_bp: 1_000,
                elderly_bp: 1_000,
                minor_bp: 1_000,
            },
            elderly_age: 60,
            reference_incomes: [("玉米".to_owned(), Fen(3_000)), ("外出务工".to_owned(), Fen(180_000))].into(),
            minimum_wage: Fen(170_000),
            rural_disposable_income: Fen(120_000),
            supporter_ratio_bp: 1_000,
            property_rules: vec![PropertyRule {
                item: PropertyItem::Vehicles,
                subject: RuleSubject::HouseholdMembers,
                limit: 0,
            }],
            exit_step: ExitStep::Monthly,
            full_support_review_months: 12,
            unstable_income_review_months: 6,
            special_hardship: Some(SpecialHardshipStandards {
                basic_living: Fen(65_000),
                care_self_caring: Fen(10_000),
                care_partly_dependent: Fen(30_000),
                care_fully_dependent: Fen(60_000),
            }),
        }
    }

    #[test]
    fn a_lawful_policy_passes() {
        assert_eq!(county().validate(), Ok(()));
    }

    #[test]
    fn a_standard_below_the_poverty_line_is_refused() {
        let mut p = county();
        p.dibao_standard = Fen(34_999);
        let errors = p.validate().expect_err("below line");
        assert_eq!(errors[0].field, "dibao_standard_monthly");
        assert!(errors[0].reason.contains("349.99元") && errors[0].reason.contains("350.00元"));
    }

    #[test]
    fn special_hardship_below_the_dibao_standard_or_with_care_out_of_order_is_refused() {
        let mut p = county();
        p.special_hardship = Some(SpecialHardshipStandards {
            basic_living: Fen(49_999),
            care_self_caring: Fen(10_000),
            care_partly_dependent: Fen(5_000),
            care_fully_dependent: Fen(60_000),
        });
        let errors = p.validate().expect_err("refused");
        assert_eq!(errors[0].field, "special_hardship.basic_living_monthly");
        assert!(errors[0].reason.contains("499.99元"), "{}", errors[0].reason);
        assert_eq!(errors[1].field, "special_hardship.care_fully_dependent_monthly");
        p.special_hardship = None;
        assert_eq!(p.validate(), Ok(()), "a county may set none");
    }

    #[test]
    fn excluding_for_what_non_members_own_or_are_is_refused() {
        let mut p = county();
        p.property_rules.push(PropertyRule {
            item: PropertyItem::Vehicles,
            subject: RuleSubject::NonMembers,
            limit: 0,
        });
        p.property_rules.push(PropertyRule {
            item: PropertyItem::PublicPayroll,
            subject: RuleSubject::HouseholdMembers,
            limit: 0,
        });
        let errors = p.validate().expect_err("forbidden");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "property_thresholds[1]");
        assert!(errors[0].reason.contains("R-ELIG-2"));
        assert_eq!(errors[1].field, "property_thresholds[2]");
        assert!(errors[1].reason.contains("财政供养"));
    }
}
