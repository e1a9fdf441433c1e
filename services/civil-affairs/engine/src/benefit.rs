//! Eligibility, category, covered members and the monthly amount
//! (R-ELIG-1, R-BEN-1..3), special hardship (R-ELIG-3) and gradual exit
//! (R-BEN-4), each with an explanation in Simplified Chinese.

use dibao_proto::labels::Label;
use std::fmt::Write as _;

use dibao_proto::types::{Fen, IdentityNumber, InvalidField};
use time::Date;

use crate::household::{Household, KeyGroup, Member, SelfCare, WorkAbility, key_groups};
use crate::income::{IncomeAssessment, IncomeLine, Treatment};
use crate::policy::{CountyPolicy, ExitStep};

/// Benefit category (分类施保).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// No work ability, severe poverty: the whole household at the full standard.
    A,
    /// Partly able: top-up, at least two covered members.
    B,
    /// Temporary difficulty: top-up, at least two covered members.
    C,
}

impl Label for Category {
    fn label(self) -> &'static str {
        match self {
            Category::A => "A类",
            Category::B => "B类",
            Category::C => "C类",
        }
    }
}

/// The category the household's work ability suggests: A when no member
/// can work at all; B when nobody can work fully but someone partly, or a
/// member is severely disabled or seriously ill; C otherwise.
pub fn suggested_category(h: &Household) -> Category {
    let best = h.members.iter().map(|m| m.work_ability).max().unwrap_or(WorkAbility::None);
    let burdened = h.members.iter().any(|m| m.severely_disabled() || m.serious_illness);
    match best {
        WorkAbility::None => Category::A,
        WorkAbility::Partial => Category::B,
        WorkAbility::Full if burdened => Category::B,
        WorkAbility::Full => Category::C,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addition {
    pub member: IdentityNumber,
    pub name: String,
    pub group: KeyGroup,
    pub amount: Fen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenefitAssessment {
    pub eligible: bool,
    pub category: Category,
    pub covered: Vec<IdentityNumber>,
    /// Top-up before additions.
    pub top_up: Fen,
    pub additions: Vec<Addition>,
    pub monthly_amount: Fen,
    pub explanation: String,
}

/// What the officer decided beside the figures.
pub struct BenefitRequest<'a> {
    pub household: &'a Household,
    pub income: &'a IncomeAssessment,
    pub category: Category,
    /// Members covered, for B and C; ignored for A (the whole household).
    pub covered: &'a [IdentityNumber],
    /// Findings against the county's property rules, from the verification
    /// report; any finding means the property test fails (R-ELIG-1).
    pub property_findings: &'a [String],
    pub on: Date,
}

/// The addition of one covered member: the largest of its key groups (a
/// member in several groups gets one addition, not their sum).
fn addition_for(m: &Member, policy: &CountyPolicy, on: Date) -> Option<Addition> {
    let bp = |g: KeyGroup| match g {
        KeyGroup::SevereDisability => policy.additions.severe_disability_bp,
        KeyGroup::SeriousIllness => policy.additions.serious_illness_bp,
        KeyGroup::Elderly => policy.additions.elderly_bp,
        KeyGroup::Minor => policy.additions.minor_bp,
    };
    let group = key_groups(m, on, policy.elderly_age).into_iter().filter(|g| bp(*g) > 0).max_by_key(|g| bp(*g))?;
    let amount = Fen(policy.dibao_standard.0 * i64::from(bp(group)) / 10_000);
    Some(Addition { member: m.identity.clone(), name: m.name.clone(), group, amount })
}

/// The members a category covers (R-BEN-2): the whole household for A;
/// for B and C those marked, at least two unless the household is one
/// person. Checked at submission as at approval, so a wrong cover is
/// refused when it is typed, not a fortnight later.
pub fn covered_members<'h>(
    h: &'h Household,
    category: Category,
    covered: &[IdentityNumber],
) -> Result<Vec<&'h Member>, Vec<InvalidField>> {
    let size = h.members.len();
    match category {
        Category::A => Ok(h.members.iter().collect()),
        Category::B | Category::C => {
            let mut out = Vec::new();
            for (i, id) in covered.iter().enumerate() {
                match h.members.iter().find(|m| &m.identity == id) {
                    Some(m) if !out.iter().any(|o: &&Member| o.identity == m.identity) => out.push(m),
                    Some(_) => {
                        return Err(vec![InvalidField::new(format!("covered[{i}]"), "保障成员重复")]);
                    }
                    None => {
                        return Err(vec![InvalidField::new(
                            format!("covered[{i}]"),
                            format!("身份证号码{}不是本户成员", id.masked()),
                        )]);
                    }
                }
            }
            let minimum = size.min(2);
            if out.len() < minimum {
                return Err(vec![InvalidField::new(
                    "covered",
                    format!(
                        "{}家庭除单人户外每户至少保障2人，本户{size}人，只保障了{}人（R-BEN-2）",
                        category.label(),
                        out.len()
                    ),
                )]);
            }
            Ok(out)
        }
    }
}

/// Assesses eligibility and the monthly amount (R-ELIG-1, R-BEN-1..3).
pub fn assess_benefit(req: &BenefitRequest<'_>, policy: &CountyPolicy) -> Result<BenefitAssessment, Vec<InvalidField>> {
    let h = req.household;
    let size = h.members.len();
    let covered = covered_members(h, req.category, req.covered)?;

    let standard = policy.dibao_standard;
    let per_capita = req.income.per_capita;
    let income_ok = per_capita < standard;
    let property_ok = req.property_findings.is_empty();
    let eligible = income_ok && property_ok;

    let (top_up, additions) = if eligible {
        let top_up = match req.category {
            // Full support at the standard, whole household (R-BEN-2; 002: 按低保标准给予全额保障).
            Category::A => Fen(standard.0 * size as i64),
            Category::B | Category::C => Fen((standard.0 - per_capita.0) * covered.len() as i64),
        };
        let additions: Vec<Addition> = covered.iter().filter_map(|m| addition_for(m, policy, req.on)).collect();
        (top_up, additions)
    } else {
        (Fen(0), Vec::new())
    };
    let monthly_amount = Fen(top_up.0 + additions.iter().map(|a| a.amount.0).sum::<i64>());

    let mut text = String::new();
    explain_income(&mut text, req.income);
    let _ = write!(text, "本县低保标准为每人每月{standard}。");
    if !income_ok {
        let _ = write!(text, "家庭人均月收入{per_capita}不低于低保标准，不符合低保条件（R-ELIG-1）。");
    } else {
        let _ = write!(text, "家庭人均月收入{per_capita}低于低保标准。");
    }
    if !property_ok {
        let _ = write!(text, "家庭财产不符合本县规定：{}（R-ELIG-1）。", req.property_findings.join("；"));
    }
    if eligible {
        let _ = write!(text, "符合低保条件（R-ELIG-1），按{}施保。", req.category.label());
        match req.category {
            Category::A => {
                let _ = write!(text, "A类家庭按户全额保障：{standard}×{size}人={top_up}（R-BEN-2）。");
            }
            Category::B | Category::C => {
                let _ = write!(
                    text,
                    "补差金额=（低保标准{standard}−人均收入{per_capita}）×保障人数{}人={top_up}（R-BEN-1）。",
                    covered.len()
                );
            }
        }
        for a in &additions {
            let _ = write!(text, "{}属于{}，加发{}（R-BEN-3）。", a.name, a.group.label(), a.amount);
        }
        let _ = write!(text, "每月低保金合计{monthly_amount}。");
    }
    Ok(BenefitAssessment {
        eligible,
        category: req.category,
        covered: covered.iter().map(|m| m.identity.clone()).collect(),
        top_up,
        additions,
        monthly_amount,
        explanation: text,
    })
}

fn explain_income(text: &mut String, income: &IncomeAssessment) {
    let _ = write!(text, "家庭共{}人。", income.household_size);
    for (treatment, head) in
        [(Treatment::Counted, "计入收入"), (Treatment::Excluded, "不计入收入"), (Treatment::Deducted, "扣减支出")]
    {
        let items: Vec<String> = income
            .lines
            .iter()
            .filter(|l| l.treatment == treatment)
            .map(|l| format!("{}{}（{}，{}）", l.label, l.amount, l.note, l.rule))
            .collect();
        if !items.is_empty() {
            let _ = write!(text, "{head}：{}。", items.join("；"));
        }
    }
    let _ = write!(
        text,
        "家庭月收入合计{}，扣减{}后为{}，人均月收入{}（R-INC-1）。",
        income.counted, income.deducted, income.net, income.per_capita
    );
}

/// Special hardship (R-ELIG-3): no work ability, no income of one's own, no
/// supporter able to support, and elderly, disabled or under 16.
/// `supporters_able` is true when any legal supporter was counted for support.
pub fn special_hardship(
    m: &Member,
    own_counted_income: Fen,
    supporters_able: bool,
    policy: &CountyPolicy,
    on: Date,
) -> Result<String, String> {
    let age = m.age_on(on);
    let mut missing = Vec::new();
    if m.work_ability != WorkAbility::None {
        missing.push("仍有劳动能力".to_owned());
    }
    if own_counted_income.0 > 0 {
        missing.push(format!("本人有收入{own_counted_income}"));
    }
    if supporters_able {
        missing.push("有具备赡养能力的法定赡养人".to_owned());
    }
    let group = if age >= policy.elderly_age {
        Some(format!("{age}岁老年人"))
    } else if m.disabled() {
        Some(format!("{}级残疾人", m.disability_grade))
    } else if age < 16 {
        Some(format!("{age}岁未满16周岁"))
    } else {
        missing.push(format!("{age}岁，既非老年人、残疾人，也非未满16周岁的未成年人"));
        None
    };
    match (missing.is_empty(), group) {
        (true, Some(g)) => Ok(format!(
            "{}为{g}，无劳动能力、无生活来源、无法定赡养人或赡养人无赡养能力，应纳入特困人员救助供养（R-ELIG-3）。",
            m.name
        )),
        _ => Err(format!("{}不符合特困人员条件：{}（R-ELIG-3）。", m.name, missing.join("；"))),
    }
}

/// A special-hardship household as the officer submitted it (R-ELIG-3).
pub struct HardshipRequest<'a> {
    pub household: &'a Household,
    /// The income lines as typed, in the order `income` assessed them.
    pub lines: &'a [IncomeLine],
    pub income: &'a IncomeAssessment,
    /// Findings against the county's property rules, from the report.
    pub property_findings: &'a [String],
    pub on: Date,
}

/// Each member's self-care ability, which sets a special-hardship person's
/// care standard (R-ELIG-3); every member without one named. Asked at
/// submission and at every assessment.
pub fn self_care_of(h: &Household) -> Result<Vec<SelfCare>, Vec<InvalidField>> {
    let mut errors = Vec::new();
    let mut care = Vec::with_capacity(h.members.len());
    for (i, m) in h.members.iter().enumerate() {
        match m.self_care {
            Some(s) => care.push(s),
            None => errors.push(InvalidField::new(
                format!("household.members[{i}].self_care"),
                "特困供养人员须填写生活自理能力（能够自理、部分丧失或完全丧失），据此确定照料护理标准",
            )),
        }
    }
    if errors.is_empty() { Ok(care) } else { Err(errors) }
}

/// Special-hardship support (R-ELIG-3, R-BEN-5): each member must qualify
/// on their own — no work ability, no income, no supporter able to
/// support, and elderly, disabled or under 16 — and is then supported at
/// the county's basic-living standard plus the care standard of their
/// self-care ability; not a dibao top-up. A member with work ability or
/// income makes the household a dibao case, not special hardship.
pub fn assess_special_hardship(
    req: &HardshipRequest<'_>,
    policy: &CountyPolicy,
) -> Result<BenefitAssessment, Vec<InvalidField>> {
    let h = req.household;
    let Some(standards) = policy.special_hardship else {
        return Err(vec![InvalidField::new(
            "household.programme",
            format!("{}年本县政策未设置特困人员基本生活标准和照料护理标准，暂不能按特困供养认定", policy.year),
        )]);
    };
    let care = self_care_of(h)?;
    let typed = &req.income.lines[..req.lines.len().min(req.income.lines.len())];
    // Income no member is named for is the household's: it is everyone's source.
    let shared: i64 = req
        .lines
        .iter()
        .zip(typed)
        .filter(|(l, a)| l.member.is_none() && a.treatment == Treatment::Counted)
        .map(|(_, a)| a.amount.0)
        .sum();
    let supporters_able =
        req.income.lines[typed.len()..].iter().any(|a| a.rule == "R-INC-4" && a.treatment == Treatment::Counted);

    let mut text = String::new();
    explain_income(&mut text, req.income);
    let mut qualified = Vec::new();
    let mut refused = Vec::new();
    for m in &h.members {
        let own = Fen(req.income.counted_for(req.lines, &m.identity).0 + shared);
        match special_hardship(m, own, supporters_able, policy, req.on) {
            Ok(why) => qualified.push(why),
            Err(why) => refused.push(why),
        }
    }
    let property_ok = req.property_findings.is_empty();
    let eligible = refused.is_empty() && property_ok;
    for why in qualified.iter().chain(&refused) {
        text.push_str(why);
    }
    if !property_ok {
        let _ = write!(text, "财产不符合本县规定：{}（R-ELIG-1）。", req.property_findings.join("；"));
    }
    let mut monthly = 0;
    if eligible {
        let _ = write!(
            text,
            "特困人员按本县基本生活标准和照料护理标准供养，不按低保差额补助：基本生活标准每人每月{}",
            standards.basic_living
        );
        for (m, s) in h.members.iter().zip(&care) {
            let amount = standards.basic_living.0 + standards.care(*s).0;
            monthly += amount;
            let _ = write!(text, "；{}{}，照料护理标准{}，合计{}", m.name, s.label(), standards.care(*s), Fen(amount));
        }
        let _ = write!(text, "。每月特困供养金合计{}。", Fen(monthly));
    } else {
        text.push_str("不予纳入特困人员救助供养（R-ELIG-3）。");
    }
    Ok(BenefitAssessment {
        eligible,
        // Supported wholly, as category A is (the roster's 特困 default).
        category: Category::A,
        covered: h.members.iter().map(|m| m.identity.clone()).collect(),
        top_up: Fen(0),
        additions: Vec::new(),
        monthly_amount: Fen(monthly),
        explanation: text,
    })
}

/// A gradual exit (R-BEN-4): the benefit continues, stepping down, for 18
/// months, or 24 with a disabled member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradualExit {
    pub months: u32,
    pub step: ExitStep,
    /// The monthly amount when income rose above the standard.
    pub base: Fen,
    pub explanation: String,
}

impl GradualExit {
    /// Amount paid in month `m` of the exit (1-based); zero after the last.
    /// Monthly: month m pays base x (N - m + 1) / N. Quarterly: every month
    /// of quarter q pays base x (Q - q + 1) / Q, with Q = N / 3.
    pub fn amount_in_month(&self, m: u32) -> Fen {
        if m == 0 || m > self.months {
            return Fen(0);
        }
        let (steps, step) = match self.step {
            ExitStep::Monthly => (self.months, m),
            ExitStep::Quarterly => (self.months / 3, (m - 1) / 3 + 1),
        };
        Fen(self.base.0 * i64::from(steps - step + 1) / i64::from(steps))
    }
}

/// Whether the household leaves by gradual exit: income from
/// poverty-alleviation projects lifted per-capita income to at least the
/// standard but below twice it.
pub fn gradual_exit(h: &Household, income: &IncomeAssessment, base: Fen, policy: &CountyPolicy) -> Option<GradualExit> {
    let standard = policy.dibao_standard;
    let pc = income.per_capita;
    if income.poverty_project_income.0 == 0 || pc < standard || pc.0 >= standard.0 * 2 {
        return None;
    }
    let disabled = h.members.iter().any(Member::disabled);
    let months = if disabled { 24 } else { 18 };
    let step = match policy.exit_step {
        ExitStep::Monthly => "逐月",
        ExitStep::Quarterly => "逐季",
    };
    let explanation = format!(
        "家庭因扶贫项目收入{}，人均月收入{pc}超过低保标准{standard}但低于标准的2倍，{}继续享受低保{months}个月，补助水平{step}递减（R-BEN-4）。",
        income.poverty_project_income,
        if disabled { "因家中有残疾人，" } else { "" },
    );
    Some(GradualExit { months, step: policy.exit_step, base, explanation })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::household::tests::member;
    use crate::household::{Relation, SinglePersonReason};
    use crate::income::{IncomeKind, IncomeLine, assess_income};
    use crate::policy::tests::county;
    use time::macros::date;

    const ON: Date = date!(2026 - 06 - 01);

    fn four() -> Household {
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

    fn wage(fen: i64) -> IncomeLine {
        IncomeLine { kind: IncomeKind::Wage, label: "务工收入".into(), member: None, monthly: Fen(fen) }
    }

    #[test]
    fn category_c_tops_up_the_gap_for_the_covered_members_plus_additions() {
        let h = four();
        let policy = county(); // standard 500.00
        let income = assess_income(&h, &[wage(120_000)], &[], &policy).expect("income"); // 300.00 per person
        let covered = [h.members[2].identity.clone(), h.members[3].identity.clone()];
        let a = assess_benefit(
            &BenefitRequest {
                household: &h,
                income: &income,
                category: Category::C,
                covered: &covered,
                property_findings: &[],
                on: ON,
            },
            &policy,
        )
        .expect("assess");
        assert!(a.eligible);
        // (500.00 - 300.00) x 2 = 400.00; grandparent (76, elderly 10 %) 50.00;
        // child (11, minor 10 %) 50.00; total 500.00.
        assert_eq!(a.top_up, Fen(40_000));
        assert_eq!(a.additions.iter().map(|x| x.amount).collect::<Vec<_>>(), vec![Fen(5_000), Fen(5_000)]);
        assert_eq!(a.monthly_amount, Fen(50_000));
        assert!(
            a.explanation.contains("（低保标准500.00元−人均收入300.00元）×保障人数2人=400.00元"),
            "{}",
            a.explanation
        );
        assert!(a.explanation.contains("每月低保金合计500.00元"));
    }

    #[test]
    fn category_a_pays_the_full_standard_for_the_whole_household() {
        let mut h = four();
        for m in &mut h.members {
            m.work_ability = WorkAbility::None;
        }
        h.members[0].disability_grade = 1;
        h.members[0].serious_illness = true;
        let policy = county();
        assert_eq!(suggested_category(&h), Category::A);
        let income = assess_income(&h, &[wage(40_000)], &[], &policy).expect("income");
        let a = assess_benefit(
            &BenefitRequest {
                household: &h,
                income: &income,
                category: Category::A,
                covered: &[],
                property_findings: &[],
                on: ON,
            },
            &policy,
        )
        .expect("assess");
        // 500.00 x 4 = 2000.00; head severely disabled and ill gets the larger
        // addition only (20 % = 100.00), grandparent 50.00, child 50.00.
        assert_eq!(a.top_up, Fen(200_000));
        assert_eq!(a.additions[0].group, KeyGroup::SevereDisability);
        assert_eq!(a.additions[0].amount, Fen(10_000));
        assert_eq!(a.monthly_amount, Fen(220_000));
        assert_eq!(a.covered.len(), 4);
    }

    #[test]
    fn category_b_covering_one_member_is_refused() {
        let h = four();
        let policy = county();
        let income = assess_income(&h, &[], &[], &policy).expect("income");
        let covered = [h.members[2].identity.clone()];
        let e = assess_benefit(
            &BenefitRequest {
                household: &h,
                income: &income,
                category: Category::B,
                covered: &covered,
                property_findings: &[],
                on: ON,
            },
            &policy,
        )
        .expect_err("one member");
        assert_eq!(e[0].field, "covered");
        assert!(e[0].reason.contains("至少保障2人") && e[0].reason.contains("R-BEN-2"));
    }

    #[test]
    fn a_single_person_household_covers_its_one_member() {
        let mut m = member("19800101", "001", Relation::Head, WorkAbility::None);
        m.disability_grade = 1;
        let h = Household { members: vec![m], single_person: Some(SinglePersonReason::SevereDisabilityAlone) };
        let policy = county();
        let income = assess_income(&h, &[wage(10_000)], &[], &policy).expect("income");
        let covered = [h.members[0].identity.clone()];
        let a = assess_benefit(
            &BenefitRequest {
                household: &h,
                income: &income,
                category: Category::B,
                covered: &covered,
                property_findings: &[],
                on: ON,
            },
            &policy,
        )
        .expect("assess");
        // (500.00 - 100.00) x 1 + severe disability 100.00 = 500.00.
        assert_eq!(a.monthly_amount, Fen(50_000));
    }

    fn category_c<'a>(
        h: &'a Household,
        income: &'a IncomeAssessment,
        covered: &'a [IdentityNumber],
        findings: &'a [String],
    ) -> BenefitRequest<'a> {
        BenefitRequest { household: h, income, category: Category::C, covered, property_findings: findings, on: ON }
    }

    #[test]
    fn income_at_the_standard_or_a_property_finding_is_not_eligible() {
        let h = four();
        let policy = county();
        let covered: Vec<_> = h.members.iter().map(|m| m.identity.clone()).collect();
        let at_standard = assess_income(&h, &[wage(200_000)], &[], &policy).expect("income"); // exactly 500.00
        let at = assess_benefit(&category_c(&h, &at_standard, &covered, &[]), &policy).expect("assess");
        assert!(!at.eligible);
        assert_eq!(at.monthly_amount, Fen(0));
        assert!(at.explanation.contains("不低于低保标准"));

        let low = assess_income(&h, &[wage(40_000)], &[], &policy).expect("income");
        let findings = vec!["户主名下有小型汽车1辆".to_owned()];
        let car = assess_benefit(&category_c(&h, &low, &covered, &findings), &policy).expect("assess");
        assert!(!car.eligible);
        assert!(car.explanation.contains("户主名下有小型汽车1辆"));
    }

    #[test]
    fn special_hardship_needs_every_condition() {
        let policy = county();
        let elder = member("19500303", "003", Relation::Head, WorkAbility::None);
        assert!(special_hardship(&elder, Fen(0), false, &policy, ON).expect("qualifies").contains("76岁老年人"));
        let reasons = special_hardship(&elder, Fen(100), true, &policy, ON).expect_err("income and supporter");
        assert!(reasons.contains("本人有收入1.00元") && reasons.contains("法定赡养人"), "{reasons}");
        let adult = member("19900101", "005", Relation::Head, WorkAbility::None);
        assert!(special_hardship(&adult, Fen(0), false, &policy, ON).expect_err("36").contains("36岁"));
        let orphan = member("20120101", "006", Relation::Head, WorkAbility::None);
        assert!(special_hardship(&orphan, Fen(0), false, &policy, ON).expect("14").contains("未满16周岁"));
    }

    #[test]
    fn special_hardship_is_paid_at_the_basic_living_and_care_standards_not_as_a_top_up() {
        use crate::income::{Supporter, assess_income};
        let policy = county(); // basic 650.00; care 100.00 / 300.00 / 600.00
        let mut elder = member("19500303", "003", Relation::Head, WorkAbility::None);
        elder.self_care = Some(SelfCare::Partial);
        let alone = Household { members: vec![elder.clone()], single_person: None };
        let pension = IncomeLine {
            kind: IncomeKind::CentralBasicPension,
            label: "基础养老金".into(),
            member: Some(elder.identity.clone()),
            monthly: Fen(10_300),
        };
        let lines = [pension];
        let daughter = Supporter {
            name: "王春花".into(),
            relation: "女儿".into(),
            exact_monthly: None,
            household_per_capita: Fen(60_000),
            court_document: false,
            employed: false,
        };
        let income = assess_income(&alone, &lines, std::slice::from_ref(&daughter), &policy).expect("income");
        let req = HardshipRequest { household: &alone, lines: &lines, income: &income, property_findings: &[], on: ON };
        let a = assess_special_hardship(&req, &policy).expect("assessed");
        assert!(a.eligible, "{}", a.explanation);
        assert_eq!(a.monthly_amount, Fen(95_000), "650.00 + 300.00");
        assert_eq!(a.category, Category::A);
        assert!(
            a.explanation.contains("部分丧失生活自理能力，照料护理标准300.00元，合计950.00元"),
            "{}",
            a.explanation
        );
        assert!(a.explanation.contains("不按低保差额补助"), "{}", a.explanation);

        // A daughter whose household lives at twice the standard can support her (R-INC-4).
        let able = Supporter { household_per_capita: Fen(150_000), ..daughter };
        let income = assess_income(&alone, &lines, &[able], &policy).expect("income");
        let a = assess_special_hardship(&HardshipRequest { income: &income, ..req }, &policy).expect("assessed");
        assert!(!a.eligible);
        assert_eq!(a.monthly_amount, Fen(0));
        assert!(a.explanation.contains("有具备赡养能力的法定赡养人"), "{}", a.explanation);

        // Self-care unknown: the field is named; no standards: the programme is.
        let mut unknown = alone.clone();
        unknown.members[0].self_care = None;
        let income = assess_income(&unknown, &[], &[], &policy).expect("income");
        let e = assess_special_hardship(
            &HardshipRequest { household: &unknown, lines: &[], income: &income, property_findings: &[], on: ON },
            &policy,
        )
        .expect_err("self-care");
        assert_eq!(e[0].field, "household.members[0].self_care");
        let none = CountyPolicy { special_hardship: None, ..policy.clone() };
        let income = assess_income(&alone, &[], &[], &none).expect("income");
        let e = assess_special_hardship(
            &HardshipRequest { household: &alone, lines: &[], income: &income, property_findings: &[], on: ON },
            &none,
        )
        .expect_err("no standards");
        assert_eq!(e[0].field, "household.programme");
    }

    #[test]
    fn gradual_exit_lasts_18_or_24_months_and_steps_down() {
        let mut policy = county();
        let h = four();
        let project = IncomeLine {
            kind: IncomeKind::PovertyProject,
            label: "合作社分红".into(),
            member: Some(h.members[0].identity.clone()),
            monthly: Fen(100_000),
        };
        // 1000.00 project + 1400.00 wage = 2400.00 / 4 = 600.00: above 500.00, below 1000.00.
        let income = assess_income(&h, &[project.clone(), wage(140_000)], &[], &policy).expect("income");
        let exit = gradual_exit(&h, &income, Fen(36_000), &policy).expect("gradual exit");
        assert_eq!(exit.months, 18);
        assert_eq!(exit.amount_in_month(1), Fen(36_000));
        assert_eq!(exit.amount_in_month(2), Fen(34_000), "360.00 x 17/18");
        assert_eq!(exit.amount_in_month(18), Fen(2_000));
        assert_eq!(exit.amount_in_month(19), Fen(0));

        policy.exit_step = ExitStep::Quarterly;
        let mut disabled = h.clone();
        disabled.members[3].disability_grade = 3;
        let exit = gradual_exit(&disabled, &income, Fen(36_000), &policy).expect("gradual exit");
        assert_eq!(exit.months, 24);
        assert!(exit.explanation.contains("24个月") && exit.explanation.contains("逐季"));
        // 8 quarters: months 1-3 pay 360.00, months 4-6 pay 315.00 (x 7/8), months 22-24 pay 45.00.
        assert_eq!(exit.amount_in_month(3), Fen(36_000));
        assert_eq!(exit.amount_in_month(4), Fen(31_500));
        assert_eq!(exit.amount_in_month(24), Fen(4_500));

        // Without project income, or at twice the standard, there is no gradual exit.
        let plain = assess_income(&h, &[wage(240_000)], &[], &policy).expect("income");
        assert!(gradual_exit(&h, &plain, Fen(36_000), &policy).is_none());
        let high = assess_income(&h, &[project, wage(300_000)], &[], &policy).expect("income");
        assert!(gradual_exit(&h, &high, Fen(36_000), &policy).is_none(), "1000.00 per person is twice the standard");
    }
}
