//! From the wire to the engine's types. Every error names the field path
//! the caller sent, so a row or request can be fixed where it is wrong.

use dibao_benefit_engine::benefit::Category;
use dibao_benefit_engine::household::{Household, Member, Relation, SelfCare, SinglePersonReason, WorkAbility};
use dibao_benefit_engine::income::{IncomeKind, IncomeLine, Supporter};
use dibao_benefit_engine::policy::{
    CountyPolicy, ExitStep, KeyGroupAdditions, PropertyItem, PropertyRule, RuleSubject, SpecialHardshipStandards,
};
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1 as common;
use dibao_proto::events::v1::BenefitCategory;
use dibao_proto::types::{DivisionCode, DivisionLevel, Fen, IdentityNumber, InvalidField, required};
use time::{Date, Month};

type Errors = Vec<InvalidField>;

fn at(field: &str) -> impl Fn(InvalidField) -> InvalidField + '_ {
    move |e| e.within(field)
}

pub fn identity(v: &Option<common::IdentityNumber>, field: &str) -> Result<IdentityNumber, InvalidField> {
    IdentityNumber::try_from(required(v, field)?).map_err(at(field))
}

/// A page of a list keyed by id: its size (`default` when unset, at most
/// `most`) and the id the previous page ended at (none for the first).
pub fn page_by_id(
    page: Option<common::PageRequest>,
    default: i32,
    most: i32,
) -> Result<(i64, Option<uuid::Uuid>), InvalidField> {
    let page = page.unwrap_or_default();
    if !(0..=most).contains(&page.page_size) {
        return Err(InvalidField::new("page.page_size", format!("每页条数应在1到{most}之间")));
    }
    let size = i64::from(if page.page_size == 0 { default } else { page.page_size });
    let after = match page.page_token.as_str() {
        "" => None,
        t => Some(
            uuid::Uuid::parse_str(t)
                .map_err(|_| InvalidField::new("page.page_token", "翻页标记无效，请使用上一页返回的标记"))?,
        ),
    };
    Ok((size, after))
}

pub fn division(v: &Option<common::DivisionCode>, field: &str) -> Result<DivisionCode, InvalidField> {
    DivisionCode::try_from(required(v, field)?).map_err(at(field))
}

pub fn money(v: &Option<common::Money>, field: &str) -> Result<Fen, InvalidField> {
    Fen::non_negative(required(v, field)?).map_err(|e| InvalidField::new(field, e.reason))
}

/// A household as submitted, with its village, the category asked for and
/// the members marked covered.
pub struct Submitted {
    pub household: Household,
    pub village: DivisionCode,
    pub category: Option<Category>,
    pub covered: Vec<IdentityNumber>,
}

pub fn household(h: &pb::Household, field: &str) -> Result<Submitted, Errors> {
    let mut errors = Vec::new();
    let village = division(&h.village, &format!("{field}.village")).map_err(|e| errors.push(e)).ok();
    if let Some(v) = &village
        && v.level() != DivisionLevel::Village
    {
        errors.push(InvalidField::new(format!("{field}.village"), "应填写12位村级行政区划代码"));
    }
    let mut members = Vec::with_capacity(h.members.len());
    let mut covered = Vec::new();
    for (i, m) in h.members.iter().enumerate() {
        let f = format!("{field}.members[{i}]");
        let Some(person) = &m.person else {
            errors.push(InvalidField::new(format!("{f}.person"), "必填项缺失"));
            continue;
        };
        let id = match identity(&person.identity_number, &format!("{f}.person.identity_number")) {
            Ok(id) => id,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if person.name.trim().is_empty() {
            errors.push(InvalidField::new(format!("{f}.person.name"), "姓名不能为空"));
        }
        let relation = match common::Relation::try_from(m.relation).unwrap_or(common::Relation::Unspecified) {
            common::Relation::Head => Relation::Head,
            common::Relation::Spouse => Relation::Spouse,
            common::Relation::Child => Relation::Child,
            common::Relation::Parent => Relation::Parent,
            common::Relation::Grandchild => Relation::Grandchild,
            common::Relation::Grandparent => Relation::Grandparent,
            common::Relation::Sibling => Relation::Sibling,
            common::Relation::ChildInLaw => Relation::ChildInLaw,
            common::Relation::Other => Relation::Other,
            common::Relation::Unspecified => {
                errors.push(InvalidField::new(format!("{f}.relation"), "请填写与户主关系"));
                continue;
            }
        };
        let work_ability = match pb::WorkAbility::try_from(m.work_ability).unwrap_or(pb::WorkAbility::Unspecified) {
            pb::WorkAbility::Full => WorkAbility::Full,
            pb::WorkAbility::Partial => WorkAbility::Partial,
            pb::WorkAbility::None => WorkAbility::None,
            pb::WorkAbility::Unspecified => {
                errors.push(InvalidField::new(format!("{f}.work_ability"), "请填写劳动能力"));
                continue;
            }
        };
        let Ok(grade) = u8::try_from(m.disability_grade) else {
            errors.push(InvalidField::new(format!("{f}.disability_grade"), "残疾等级应为0至4"));
            continue;
        };
        if m.covered {
            covered.push(id.clone());
        }
        members.push(Member {
            identity: id,
            name: person.name.trim().to_owned(),
            relation,
            disability_grade: grade,
            serious_illness: m.serious_illness,
            work_ability,
            self_care: match pb::SelfCare::try_from(m.self_care).unwrap_or(pb::SelfCare::Unspecified) {
                pb::SelfCare::Unspecified => None,
                pb::SelfCare::Full => Some(SelfCare::Full),
                pb::SelfCare::Partial => Some(SelfCare::Partial),
                pb::SelfCare::None => Some(SelfCare::None),
            },
        });
    }
    let single_person =
        match pb::SinglePersonReason::try_from(h.single_person_reason).unwrap_or(pb::SinglePersonReason::Unspecified) {
            pb::SinglePersonReason::Unspecified => None,
            pb::SinglePersonReason::SevereDisabilityAlone => Some(SinglePersonReason::SevereDisabilityAlone),
            pb::SinglePersonReason::SevereDisabilitySupported => Some(SinglePersonReason::SevereDisabilitySupported),
            pb::SinglePersonReason::Clergy => {
                Some(SinglePersonReason::Clergy { years_in_site: u32::try_from(h.clergy_years_in_site).unwrap_or(0) })
            }
        };
    if let Some(p) = &h.payee {
        payee(p, &format!("{field}.payee"), &mut errors);
    }
    let category = match BenefitCategory::try_from(h.category).unwrap_or(BenefitCategory::Unspecified) {
        BenefitCategory::Unspecified => None,
        BenefitCategory::A => Some(Category::A),
        BenefitCategory::B => Some(Category::B),
        BenefitCategory::C => Some(Category::C),
    };
    match (errors.is_empty(), village) {
        (true, Some(village)) => {
            Ok(Submitted { household: Household { members, single_person }, village, category, covered })
        }
        _ => Err(errors),
    }
}

/// A payee as the bank's files need it: the bank named, an account of
/// 8 to 32 digits, the holder named.
pub fn payee(p: &pb::Payee, field: &str, errors: &mut Errors) {
    let bank = p.bank.trim();
    if bank.is_empty() || bank.chars().count() > 40 {
        errors.push(InvalidField::new(format!("{field}.bank"), "请填写开户银行（不超过40字）"));
    }
    let account = p.account.trim();
    if !(8..=32).contains(&account.len()) || !account.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(InvalidField::new(format!("{field}.account"), "账号应为8到32位数字"));
    }
    let holder = p.holder_name.trim();
    if holder.is_empty() || holder.chars().count() > 40 {
        errors.push(InvalidField::new(format!("{field}.holder_name"), "请填写账户户名"));
    }
}

pub fn category_to_pb(c: Category) -> BenefitCategory {
    match c {
        Category::A => BenefitCategory::A,
        Category::B => BenefitCategory::B,
        Category::C => BenefitCategory::C,
    }
}

pub fn income(items: &[pb::IncomeItem]) -> Result<Vec<IncomeLine>, Errors> {
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let f = format!("income[{i}]");
        let member = match &item.member {
            Some(_) => match identity(&item.member, &format!("{f}.member")) {
                Ok(id) => Some(id),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            None => None,
        };
        let monthly = match &item.monthly {
            Some(_) => match money(&item.monthly, &format!("{f}.monthly")) {
                Ok(m) => m,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            None => Fen(0),
        };
        let kind = match pb::IncomeKind::try_from(item.kind).unwrap_or(pb::IncomeKind::Unspecified) {
            pb::IncomeKind::Wage => IncomeKind::Wage,
            pb::IncomeKind::Business => IncomeKind::Business,
            pb::IncomeKind::Reference => {
                if item.units_hundredths < 0 {
                    errors.push(InvalidField::new(format!("{f}.units_hundredths"), "数量不能为负数"));
                    continue;
                }
                IncomeKind::Reference {
                    item: item.reference_item.trim().to_owned(),
                    units_hundredths: item.units_hundredths,
                }
            }
            pb::IncomeKind::OtherTransfer => IncomeKind::OtherTransfer,
            pb::IncomeKind::CentralBasicPension => IncomeKind::CentralBasicPension,
            pb::IncomeKind::PovertyProject => IncomeKind::PovertyProject,
            pb::IncomeKind::IllnessSpending => IncomeKind::IllnessSpending,
            pb::IncomeKind::JobCost => IncomeKind::JobCost,
            pb::IncomeKind::Unspecified => {
                errors.push(InvalidField::new(format!("{f}.kind"), "请填写收入类别"));
                continue;
            }
        };
        lines.push(IncomeLine { kind, label: item.label.trim().to_owned(), member, monthly });
    }
    if errors.is_empty() { Ok(lines) } else { Err(errors) }
}

pub fn supporters(items: &[pb::Supporter]) -> Result<Vec<Supporter>, Errors> {
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, s) in items.iter().enumerate() {
        let f = format!("supporters[{i}]");
        let exact = match &s.exact_monthly {
            Some(_) => money(&s.exact_monthly, &format!("{f}.exact_monthly")).map(Some),
            None => Ok(None),
        };
        let per_capita = money(&s.household_per_capita, &format!("{f}.household_per_capita"));
        if let Some(number) = s.identity_number.as_ref().filter(|n| !n.value.trim().is_empty())
            && let Err(e) = IdentityNumber::parse(number.value.trim())
        {
            errors.push(e.within(&format!("{f}.identity_number")));
        }
        if !(0..=50).contains(&s.household_size) {
            errors.push(InvalidField::new(
                format!("{f}.household_size"),
                format!("赡养人家庭人口数应为0（不详）至50，实际为{}", s.household_size),
            ));
        }
        match (exact, per_capita) {
            (Ok(exact_monthly), Ok(household_per_capita)) => out.push(Supporter {
                name: s.name.trim().to_owned(),
                relation: s.relation.trim().to_owned(),
                exact_monthly,
                household_per_capita,
                court_document: s.court_document,
                employed: s.employed,
            }),
            (a, b) => errors.extend(a.err().into_iter().chain(b.err())),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// An id the caller sends (a household, an application, a roll), refused
/// with `reason` when it is not one.
pub fn uuid(raw: &str, field: &str, reason: &str) -> Result<uuid::Uuid, InvalidField> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| InvalidField::new(field, reason))
}

/// The month of `d` as the wire carries it.
pub fn year_month_pb(d: Date) -> common::YearMonth {
    common::YearMonth { year: d.year(), month: i32::from(d.month() as u8) }
}

pub fn year_month(v: &Option<common::YearMonth>, field: &str) -> Result<Date, InvalidField> {
    let ym = required(v, field)?;
    u8::try_from(ym.month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .and_then(|m| Date::from_calendar_date(ym.year, m, 1).ok())
        .ok_or_else(|| InvalidField::new(field, format!("{}年{}月不是有效月份", ym.year, ym.month)))
}

const PHONE: &str = "电话号码应为5到20位数字，可含“-”，如0435-4221234或12345";

/// A telephone number as a notice prints it: digits, dashes between them.
fn phone(v: &str) -> bool {
    let v = v.trim();
    let digits = v.chars().filter(char::is_ascii_digit).count();
    (5..=20).contains(&digits)
        && v.chars().all(|c| c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-')
}

pub fn policy(p: &pb::CountyPolicy) -> Result<CountyPolicy, Errors> {
    let mut errors = Vec::new();
    let mut take = |r: Result<Fen, InvalidField>| r.map_err(|e| errors.push(e)).unwrap_or_default();
    let standard = take(money(&p.dibao_standard_monthly, "policy.dibao_standard_monthly"));
    let line = take(money(&p.national_poverty_line_monthly, "policy.national_poverty_line_monthly"));
    let min_wage = take(money(&p.minimum_wage_monthly, "policy.minimum_wage_monthly"));
    let rural = take(money(&p.rural_disposable_income_monthly, "policy.rural_disposable_income_monthly"));
    let county = division(&p.county, "policy.county").map_err(|e| errors.push(e)).ok();
    if county.as_ref().is_some_and(|c| c.level() != DivisionLevel::County) {
        errors.push(InvalidField::new("policy.county", "应填写6位县级行政区划代码"));
    }
    let effective = year_month(&p.effective_from, "policy.effective_from").map_err(|e| errors.push(e)).ok();
    let bp = |v: i32, f: &str, errors: &mut Errors| {
        u32::try_from(v).unwrap_or_else(|_| {
            errors.push(InvalidField::new(f, "比例不能为负数"));
            0
        })
    };
    let additions = KeyGroupAdditions {
        severe_disability_bp: bp(p.severe_disability_addition_bp, "policy.severe_disability_addition_bp", &mut errors),
        serious_illness_bp: bp(p.serious_illness_addition_bp, "policy.serious_illness_addition_bp", &mut errors),
        elderly_bp: bp(p.elderly_addition_bp, "policy.elderly_addition_bp", &mut errors),
        minor_bp: bp(p.minor_addition_bp, "policy.minor_addition_bp", &mut errors),
    };
    let ratio = bp(p.supporter_estimate_ratio_bp, "policy.supporter_estimate_ratio_bp", &mut errors);
    let mut reference_incomes = std::collections::BTreeMap::new();
    for (i, r) in p.reference_incomes.iter().enumerate() {
        match money(&r.monthly, &format!("policy.reference_incomes[{i}].monthly")) {
            Ok(m) => {
                reference_incomes.insert(r.item.trim().to_owned(), m);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut property_rules = Vec::new();
    for (i, t) in p.property_thresholds.iter().enumerate() {
        let f = format!("policy.property_thresholds[{i}]");
        let item = match pb::PropertyItem::try_from(t.item).unwrap_or(pb::PropertyItem::Unspecified) {
            pb::PropertyItem::Vehicles => PropertyItem::Vehicles,
            pb::PropertyItem::Housing => PropertyItem::Housing,
            pb::PropertyItem::Deposits => PropertyItem::Deposits,
            pb::PropertyItem::Business => PropertyItem::Business,
            pb::PropertyItem::PublicPayroll => PropertyItem::PublicPayroll,
            pb::PropertyItem::Unspecified => {
                errors.push(InvalidField::new(format!("{f}.item"), "请填写财产类别"));
                continue;
            }
        };
        let subject = match pb::RuleSubject::try_from(t.subject).unwrap_or(pb::RuleSubject::Unspecified) {
            pb::RuleSubject::HouseholdMembers => RuleSubject::HouseholdMembers,
            pb::RuleSubject::NonMembers => RuleSubject::NonMembers,
            pb::RuleSubject::Unspecified => {
                errors.push(InvalidField::new(format!("{f}.subject"), "请填写适用对象（家庭成员）"));
                continue;
            }
        };
        property_rules.push(PropertyRule { item, subject, limit: t.limit });
    }
    let exit_step = match pb::GradualExitStep::try_from(p.gradual_exit_step).unwrap_or(pb::GradualExitStep::Unspecified)
    {
        pb::GradualExitStep::Quarterly => ExitStep::Quarterly,
        pb::GradualExitStep::Monthly => ExitStep::Monthly,
        pb::GradualExitStep::Unspecified => {
            errors.push(InvalidField::new("policy.gradual_exit_step", "请选择渐退方式（逐月或逐季）"));
            ExitStep::Monthly
        }
    };
    if !p.complaint_phone.trim().is_empty() && !phone(&p.complaint_phone) {
        errors.push(InvalidField::new("policy.complaint_phone", PHONE));
    }
    let mut townships = std::collections::BTreeSet::new();
    for (i, t) in p.township_complaint_phones.iter().enumerate() {
        let f = format!("policy.township_complaint_phones[{i}]");
        match division(&t.township, &format!("{f}.township")) {
            Ok(code)
                if code.level() != DivisionLevel::Township || !county.as_ref().is_some_and(|c| c.contains(&code)) =>
            {
                errors.push(InvalidField::new(format!("{f}.township"), "应为本县所辖乡镇的9位代码"));
            }
            Ok(code) if !townships.insert(code.clone()) => {
                errors.push(InvalidField::new(format!("{f}.township"), format!("乡镇{code}重复填写")));
            }
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if !phone(&t.phone) {
            errors.push(InvalidField::new(format!("{f}.phone"), PHONE));
        }
    }
    let special_hardship = p.special_hardship.as_ref().map(|s| {
        let f = "policy.special_hardship";
        let mut take = |v: &Option<common::Money>, name: &str| {
            money(v, &format!("{f}.{name}")).map_err(|e| errors.push(e)).unwrap_or_default()
        };
        SpecialHardshipStandards {
            basic_living: take(&s.basic_living_monthly, "basic_living_monthly"),
            care_self_caring: take(&s.care_self_caring_monthly, "care_self_caring_monthly"),
            care_partly_dependent: take(&s.care_partly_dependent_monthly, "care_partly_dependent_monthly"),
            care_fully_dependent: take(&s.care_fully_dependent_monthly, "care_fully_dependent_monthly"),
        }
    });
    let (Some(county), Some(effective_from), true) = (county, effective, errors.is_empty()) else {
        return Err(errors);
    };
    let policy = CountyPolicy {
        county,
        year: p.year,
        effective_from,
        dibao_standard: standard,
        national_poverty_line: line,
        additions,
        elderly_age: if p.elderly_age == 0 { 60 } else { p.elderly_age },
        reference_incomes,
        minimum_wage: min_wage,
        rural_disposable_income: rural,
        supporter_ratio_bp: ratio,
        property_rules,
        exit_step,
        full_support_review_months: u32::try_from(p.full_support_review_months).unwrap_or(12),
        unstable_income_review_months: u32::try_from(p.unstable_income_review_months).unwrap_or(6),
        special_hardship,
    };
    policy.validate().map_err(|es| es.into_iter().map(|e| e.within("policy")).collect::<Vec<_>>())?;
    Ok(policy)
}
