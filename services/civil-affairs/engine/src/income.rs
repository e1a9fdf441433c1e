//! Household per-capita income, line by line (R-INC-1..4).

use dibao_proto::types::{Fen, IdentityNumber, InvalidField};

use crate::household::{Household, WorkAbility};
use crate::policy::CountyPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomeKind {
    /// Wages and salaries: counted.
    Wage,
    /// Business and self-employment: counted.
    Business,
    /// Crops or migrant work valued at the county reference figure
    /// (R-INC-1): `units` in hundredths (mu of land, persons away working).
    Reference { item: String, units_hundredths: i64 },
    /// Other transfers and pensions: counted.
    OtherTransfer,
    /// Central basic pension of rural residents' basic pension insurance:
    /// not counted (R-INC-2).
    CentralBasicPension,
    /// Income from poverty-alleviation projects: not counted for members
    /// without work ability (R-INC-2), otherwise counted; it also opens the
    /// gradual exit (R-BEN-4).
    PovertyProject,
    /// Rigid spending caused by illness: deducted (R-INC-3).
    IllnessSpending,
    /// Necessary costs of taking a job: deducted (R-INC-3).
    JobCost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomeLine {
    pub kind: IncomeKind,
    /// What the officer wrote, shown back in the explanation.
    pub label: String,
    /// The member the line belongs to, if any.
    pub member: Option<IdentityNumber>,
    /// Monthly amount; ignored for `Reference`, which the county values.
    pub monthly: Fen,
}

/// A legal supporter outside the household (R-INC-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supporter {
    pub name: String,
    /// e.g. "儿子", "女儿".
    pub relation: String,
    /// Support determined exactly (agreement, court order), per month.
    pub exact_monthly: Option<Fen>,
    /// Per-capita monthly income of the supporter's own household.
    pub household_per_capita: Fen,
    pub court_document: bool,
    /// Employed supporters are estimated from the minimum wage, others from
    /// rural per-capita disposable income.
    pub employed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Treatment {
    Counted,
    Excluded,
    Deducted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssessedLine {
    pub label: String,
    pub amount: Fen,
    pub treatment: Treatment,
    pub rule: &'static str,
    /// Why, in Chinese, for the explanation.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomeAssessment {
    pub lines: Vec<AssessedLine>,
    pub counted: Fen,
    pub deducted: Fen,
    /// Counted minus deducted, never below zero.
    pub net: Fen,
    pub household_size: i64,
    /// `net / household_size`, rounded down.
    pub per_capita: Fen,
    /// Counted income from poverty-alleviation projects (R-BEN-4).
    pub poverty_project_income: Fen,
}

impl IncomeAssessment {
    /// Counted income that belongs to one member.
    pub fn counted_for(&self, lines: &[IncomeLine], member: &IdentityNumber) -> Fen {
        Fen(lines
            .iter()
            .zip(&self.lines)
            .filter(|(l, a)| l.member.as_ref() == Some(member) && a.treatment == Treatment::Counted)
            .map(|(_, a)| a.amount.0)
            .sum())
    }
}

/// What a supporter is counted for (R-INC-4).
pub fn supporter_contribution(s: &Supporter, policy: &CountyPolicy) -> AssessedLine {
    let label = format!("{}（{}）赡养费", s.name, s.relation);
    let twice = Fen(policy.dibao_standard.0 * 2);
    if s.household_per_capita < twice && !s.court_document {
        return AssessedLine {
            label,
            amount: Fen(0),
            treatment: Treatment::Excluded,
            rule: "R-INC-4",
            note: format!(
                "赡养人家庭人均收入{}低于低保标准的2倍{}，且无法律文书，视为无赡养能力，不计算赡养费",
                s.household_per_capita, twice
            ),
        };
    }
    if let Some(exact) = s.exact_monthly {
        return AssessedLine {
            label,
            amount: exact,
            treatment: Treatment::Counted,
            rule: "R-INC-4",
            note: "按能够准确认定的赡养费计算".to_owned(),
        };
    }
    let (base, base_name) = if s.employed {
        (policy.minimum_wage, "当地最低工资标准")
    } else {
        (policy.rural_disposable_income, "农村居民人均可支配收入")
    };
    let amount = Fen(base.0 * i64::from(policy.supporter_ratio_bp) / 10_000);
    AssessedLine {
        label,
        amount,
        treatment: Treatment::Counted,
        rule: "R-INC-4",
        note: format!(
            "难以准确认定，按{base_name}{base}的{}.{:02}%测算",
            policy.supporter_ratio_bp / 100,
            policy.supporter_ratio_bp % 100
        ),
    }
}

/// Assesses every line; refuses lines that name an unknown member or item.
pub fn assess_income(
    household: &Household,
    lines: &[IncomeLine],
    supporters: &[Supporter],
    policy: &CountyPolicy,
) -> Result<IncomeAssessment, Vec<InvalidField>> {
    let mut errors = Vec::new();
    let mut assessed = Vec::with_capacity(lines.len() + supporters.len());
    for (i, line) in lines.iter().enumerate() {
        let member = match &line.member {
            Some(id) => match household.members.iter().find(|m| &m.identity == id) {
                Some(m) => Some(m),
                None => {
                    errors.push(InvalidField::new(
                        format!("income[{i}].member"),
                        format!("身份证号码{}不是本户成员", id.masked()),
                    ));
                    continue;
                }
            },
            None => None,
        };
        if line.monthly.0 < 0 {
            errors.push(InvalidField::new(format!("income[{i}].monthly"), "金额不能为负数"));
            continue;
        }
        let (amount, treatment, rule, note) = match &line.kind {
            IncomeKind::Wage | IncomeKind::Business | IncomeKind::OtherTransfer => {
                (line.monthly, Treatment::Counted, "R-INC-1", "计入家庭收入".to_owned())
            }
            IncomeKind::Reference { item, units_hundredths } => {
                let Some(per_unit) = policy.reference_incomes.get(item) else {
                    errors.push(InvalidField::new(
                        format!("income[{i}].item"),
                        format!("本县政策中没有“{item}”的收入计算标准"),
                    ));
                    continue;
                };
                let amount = Fen(per_unit.0 * units_hundredths / 100);
                let note = format!(
                    "按本县{item}收入标准每单位每月{per_unit}×{}.{:02}计算",
                    units_hundredths / 100,
                    units_hundredths % 100
                );
                (amount, Treatment::Counted, "R-INC-1", note)
            }
            IncomeKind::CentralBasicPension => (
                line.monthly,
                Treatment::Excluded,
                "R-INC-2",
                "城乡居民基本养老保险中的基础养老金不计入家庭收入".to_owned(),
            ),
            IncomeKind::PovertyProject => match member {
                Some(m) if m.work_ability == WorkAbility::None => (
                    line.monthly,
                    Treatment::Excluded,
                    "R-INC-2",
                    "无劳动能力成员的扶贫项目保底收益不计入家庭收入".to_owned(),
                ),
                _ => (line.monthly, Treatment::Counted, "R-INC-1", "扶贫项目收入计入家庭收入".to_owned()),
            },
            IncomeKind::IllnessSpending => {
                (line.monthly, Treatment::Deducted, "R-INC-3", "因病增加的刚性支出，核算收入时扣减".to_owned())
            }
            IncomeKind::JobCost => {
                (line.monthly, Treatment::Deducted, "R-INC-3", "必要的就业成本，核算收入时扣减".to_owned())
            }
        };
        assessed.push(AssessedLine { label: line.label.clone(), amount, treatment, rule, note });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let poverty_project_income = Fen(lines
        .iter()
        .zip(&assessed)
        .filter(|(l, a)| l.kind == IncomeKind::PovertyProject && a.treatment == Treatment::Counted)
        .map(|(_, a)| a.amount.0)
        .sum());
    assessed.extend(supporters.iter().map(|s| supporter_contribution(s, policy)));
    let sum = |t: Treatment| Fen(assessed.iter().filter(|a| a.treatment == t).map(|a| a.amount.0).sum());
    let counted = sum(Treatment::Counted);
    let deducted = sum(Treatment::Deducted);
    let net = Fen((counted.0 - deducted.0).max(0));
    let household_size = household.members.len() as i64;
    // Rounded down to the fen, in the household's favour.
    let per_capita = Fen(net.0 / household_size.max(1));
    Ok(IncomeAssessment { lines: assessed, counted, deducted, net, household_size, per_capita, poverty_project_income })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::household::tests::member;
    use crate::household::{Household, Relation, WorkAbility};
    use crate::policy::tests::county;

    fn family() -> Household {
        Household {
            members: vec![
                member("19700101", "001", Relation::Head, WorkAbility::Full),
                member("19720202", "002", Relation::Spouse, WorkAbility::Partial),
                member("19500303", "003", Relation::Parent, WorkAbility::None),
                member("20150404", "004", Relation::Child, WorkAbility::None),
            ],
            single_person: None,
        }
    }

    fn line(kind: IncomeKind, member: Option<&IdentityNumber>, fen: i64) -> IncomeLine {
        IncomeLine { kind, label: "测试".to_owned(), member: member.cloned(), monthly: Fen(fen) }
    }

    #[test]
    fn counts_excludes_and_deducts_each_line_by_its_rule() {
        let h = family();
        let head = h.members[0].identity.clone();
        let grandma = h.members[2].identity.clone();
        let lines = vec![
            line(IncomeKind::Wage, Some(&head), 80_000),
            // 5.5 mu of maize at 30.00 yuan per mu per month = 165.00 yuan.
            line(IncomeKind::Reference { item: "玉米".to_owned(), units_hundredths: 550 }, None, 0),
            line(IncomeKind::CentralBasicPension, Some(&grandma), 10_300),
            line(IncomeKind::PovertyProject, Some(&grandma), 5_000),
            line(IncomeKind::IllnessSpending, Some(&grandma), 20_000),
            line(IncomeKind::JobCost, Some(&head), 5_000),
        ];
        let a = assess_income(&h, &lines, &[], &county()).expect("valid");
        // Counted 800.00 + 165.00 = 965.00; deducted 200.00 + 50.00 = 250.00;
        // net 715.00 over 4 members = 178.75 per person.
        assert_eq!(a.counted, Fen(96_500));
        assert_eq!(a.deducted, Fen(25_000));
        assert_eq!(a.net, Fen(71_500));
        assert_eq!(a.per_capita, Fen(17_875));
        assert_eq!(a.lines[1].amount, Fen(16_500));
        assert_eq!(a.lines[2].treatment, Treatment::Excluded);
        assert_eq!(a.lines[2].rule, "R-INC-2");
        assert_eq!(a.lines[3].treatment, Treatment::Excluded, "project income of a member without work ability");
        assert_eq!(a.poverty_project_income, Fen(0));
        assert_eq!(a.counted_for(&lines, &head), Fen(80_000));
    }

    #[test]
    fn per_capita_rounds_down_to_the_fen_and_net_never_goes_negative() {
        let h = family();
        let a = assess_income(&h, &[line(IncomeKind::Wage, None, 100_003)], &[], &county()).expect("valid");
        assert_eq!(a.per_capita, Fen(25_000), "1000.03 / 4 = 250.0075 -> 250.00");
        let b = assess_income(
            &h,
            &[line(IncomeKind::Wage, None, 1_000), line(IncomeKind::IllnessSpending, None, 50_000)],
            &[],
            &county(),
        )
        .expect("valid");
        assert_eq!(b.net, Fen(0));
    }

    #[test]
    fn supporters_below_twice_the_standard_count_nothing() {
        let p = county(); // standard 500.00, twice = 1000.00
        let poor = Supporter {
            name: "张一".into(),
            relation: "儿子".into(),
            exact_monthly: Some(Fen(30_000)),
            household_per_capita: Fen(99_999),
            court_document: false,
            employed: true,
        };
        let c = supporter_contribution(&poor, &p);
        assert_eq!((c.amount, c.treatment.clone()), (Fen(0), Treatment::Excluded));
        assert!(c.note.contains("999.99元") && c.note.contains("1000.00元"));

        let court = Supporter { court_document: true, ..poor.clone() };
        assert_eq!(supporter_contribution(&court, &p).amount, Fen(30_000), "a court document overrides");

        let estimated = Supporter { exact_monthly: None, household_per_capita: Fen(150_000), ..poor.clone() };
        // Employed: minimum wage 1700.00 x 10 % = 170.00.
        assert_eq!(supporter_contribution(&estimated, &p).amount, Fen(17_000));
        let farmer = Supporter { employed: false, ..estimated };
        // Not employed: rural disposable income 1200.00 x 10 % = 120.00.
        assert_eq!(supporter_contribution(&farmer, &p).amount, Fen(12_000));
    }

    #[test]
    fn unknown_members_and_items_are_named() {
        let h = family();
        let stranger = crate::household::tests::id("19900101", "009");
        let e = assess_income(
            &h,
            &[
                line(IncomeKind::Wage, Some(&stranger), 100),
                line(IncomeKind::Reference { item: "榴莲".into(), units_hundredths: 100 }, None, 0),
            ],
            &[],
            &county(),
        )
        .expect_err("invalid");
        assert_eq!(e[0].field, "income[0].member");
        assert_eq!(e[1].field, "income[1].item");
        assert!(e[1].reason.contains("榴莲"));
    }
}
