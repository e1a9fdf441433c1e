//! The report (R-VER-4): every item for every person from every department
//! with its source and as-of time, what was unavailable and why, and
//! findings held against the county's property rules in plain Chinese.
//! It reports; civil affairs decides.

use std::collections::HashSet;

use dibao_proto::civil_affairs::v1::{CountyPolicy, PropertyItem, PropertyThreshold, RuleSubject};
use dibao_proto::common::v1::IdentityNumber as PbIdentity;
use dibao_proto::department::v1::{Department, Item, Record};
use dibao_proto::types::{Fen, IdentityNumber};
use dibao_proto::verification::v1::{Finding, ReportItem};

use dibao_proto::departments::department_of;
use dibao_proto::labels::Label;

use crate::fanout::Answer;

fn pb_id(p: &IdentityNumber) -> Option<PbIdentity> {
    Some(PbIdentity { value: p.as_str().to_owned() })
}

/// Report items of one person's answers: a record per item found, an empty
/// item where the department holds nothing, an unavailable item with its reason.
pub fn items_of(person: &IdentityNumber, asked: &[Item], answers: &[(Department, Answer)]) -> Vec<ReportItem> {
    let mut out = Vec::new();
    for item in asked {
        let Some(department) = department_of(*item) else { continue };
        let Some((_, answer)) = answers.iter().find(|(d, _)| *d == department) else { continue };
        let records: Vec<&Record> = answer.records.iter().filter(|r| r.item == *item as i32).collect();
        for r in &records {
            out.push(ReportItem {
                department: department as i32,
                item: *item as i32,
                person: pb_id(person),
                record: Some((*r).clone()),
                unavailable: false,
                unavailable_reason: String::new(),
            });
        }
        if let Some((_, reason)) = answer.unavailable.iter().find(|(i, _)| i == item) {
            out.push(ReportItem {
                department: department as i32,
                item: *item as i32,
                person: pb_id(person),
                record: None,
                unavailable: true,
                unavailable_reason: reason.clone(),
            });
        } else if records.is_empty() {
            out.push(ReportItem {
                department: department as i32,
                item: *item as i32,
                person: pb_id(person),
                record: None,
                unavailable: false,
                unavailable_reason: String::new(),
            });
        }
    }
    out
}

fn yuan(fen: i64) -> String {
    Fen(fen).to_string()
}

fn of(items: &[ReportItem], item: Item) -> impl Iterator<Item = (&ReportItem, &Record)> {
    items.iter().filter(move |i| i.item == item as i32).filter_map(|i| i.record.as_ref().map(|r| (i, r)))
}

fn masked(i: &ReportItem) -> String {
    i.person.as_ref().and_then(|p| IdentityNumber::parse(&p.value).ok()).map(|p| p.masked()).unwrap_or_default()
}

fn attr<'a>(r: &'a Record, k: &str) -> &'a str {
    r.attributes.get(k).map_or("", String::as_str)
}

/// Findings: facts every officer must see (a death, a missing registration)
/// and the county's property rules on household members (R-ELIG-1): a
/// relative verified under the consent (one of `relatives`) is not one, and
/// rules on non-members are never applied (R-ELIG-2).
pub fn findings(
    items: &[ReportItem],
    persons: &[IdentityNumber],
    relatives: &HashSet<String>,
    policy: Option<&CountyPolicy>,
    on: time::Date,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, r) in of(items, Item::Death) {
        out.push(Finding {
            item: Item::Death as i32,
            person: i.person.clone(),
            reason: format!(
                "公安记录显示{}已于{}死亡（{}，记录号{}）",
                masked(i),
                attr(r, "died_on"),
                r.source,
                r.source_record_id
            ),
            department: Department::PublicSecurity as i32,
            rule: String::new(),
            code: "DEATH".into(),
        });
    }
    let asked_registration: Vec<&ReportItem> = items
        .iter()
        .filter(|i| i.item == Item::HouseholdRegistration as i32 && i.record.is_none() && !i.unavailable)
        .collect();
    for i in asked_registration {
        out.push(Finding {
            item: Item::HouseholdRegistration as i32,
            person: i.person.clone(),
            reason: format!("公安户籍系统中查无{}的户籍登记，请核实身份证号码", masked(i)),
            department: Department::PublicSecurity as i32,
            rule: String::new(),
            code: "NO_REGISTRATION".into(),
        });
    }
    out.extend(registered_apart(items, persons, on));
    let Some(policy) = policy else { return out };
    let is_member = |p: &str| !relatives.contains(p);
    let members = persons.iter().filter(|p| is_member(p.as_str())).count().max(1) as i64;
    let of_members: Vec<ReportItem> =
        items.iter().filter(|i| i.person.as_ref().is_some_and(|p| is_member(&p.value))).cloned().collect();
    for rule in &policy.property_thresholds {
        if RuleSubject::try_from(rule.subject) != Ok(RuleSubject::HouseholdMembers) {
            continue;
        }
        if let Some(f) = threshold(&of_members, rule, members) {
            out.push(f);
        }
    }
    out
}

/// Who else the household register (户口簿) lists with a person checked
/// (R-ROSTER-4): their spouse, or the minor children of the head and spouse,
/// registered with them but not among those checked — each once, for the
/// officer to see, as a spouse and minor children may not apply apart.
fn registered_apart(items: &[ReportItem], persons: &[IdentityNumber], on: time::Date) -> Vec<Finding> {
    let checked: HashSet<&str> = persons.iter().map(IdentityNumber::as_str).collect();
    let mut named: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in of(items, Item::HouseholdRegistration) {
        let own = attr(r, "relation_to_head");
        for entry in attr(r, "registered_with").split(';') {
            let Some((number, relation)) = entry.split_once(':') else { continue };
            let Ok(other) = IdentityNumber::parse(number) else { continue };
            if checked.contains(number) || named.contains(number) {
                continue;
            }
            let who = match (own, relation) {
                ("户主", "配偶") | ("配偶", "户主") => "配偶",
                ("户主" | "配偶", "子女") if other.age_on(on) < 18 => "未成年子女",
                _ => continue,
            };
            named.insert(number.to_owned());
            out.push(Finding {
                item: Item::HouseholdRegistration as i32,
                person: pb_id(&other),
                reason: format!(
                    "公安户籍登记显示{}的{who}{}与其同户登记，未列入本次核对的人员；配偶和未成年子女应列入同一申请（{}，记录号{}，R-ROSTER-4）",
                    masked(i),
                    other.masked(),
                    r.source,
                    r.source_record_id
                ),
                department: Department::PublicSecurity as i32,
                rule: String::new(),
                code: "REGISTERED_APART".into(),
            });
        }
    }
    out
}

fn threshold(items: &[ReportItem], rule: &PropertyThreshold, members: i64) -> Option<Finding> {
    let describe = if rule.description.is_empty() { String::new() } else { format!("（{}）", rule.description) };
    let finding = |item: Item, department: Department, reason: String| Finding {
        item: item as i32,
        person: None,
        reason,
        department: department as i32,
        rule: rule.description.clone(),
        code: "PROPERTY".into(),
    };
    match PropertyItem::try_from(rule.item).ok()? {
        PropertyItem::Vehicles => {
            let found: Vec<String> = of(items, Item::Vehicles)
                .map(|(i, r)| format!("{}名下{}（{}）", masked(i), attr(r, "plate"), attr(r, "brand")))
                .collect();
            (found.len() as i64 > rule.limit).then(|| {
                finding(
                    Item::Vehicles,
                    Department::PublicSecurity,
                    format!(
                        "家庭成员名下共有{}辆机动车：{}；本县规定不超过{}辆{describe}",
                        found.len(),
                        found.join("、"),
                        rule.limit
                    ),
                )
            })
        }
        PropertyItem::Housing => {
            let hundredths: i64 = of(items, Item::Property).map(|(_, r)| r.quantity).sum();
            let found: Vec<String> =
                of(items, Item::Property).map(|(i, r)| format!("{}名下{}", masked(i), attr(r, "address"))).collect();
            (hundredths > rule.limit * 100).then(|| {
                finding(
                    Item::Property,
                    Department::Housing,
                    format!(
                        "家庭成员名下登记房产合计{}.{:02}平方米（{}）；本县规定不超过{}平方米{describe}",
                        hundredths / 100,
                        hundredths % 100,
                        found.join("、"),
                        rule.limit
                    ),
                )
            })
        }
        PropertyItem::Deposits => {
            let total: i64 = of(items, Item::Deposits).map(|(_, r)| r.amount.map_or(0, |m| m.fen)).sum();
            let per_member = total / members;
            (per_member > rule.limit).then(|| {
                finding(
                    Item::Deposits,
                    Department::Bank,
                    format!(
                        "家庭成员存款合计{}，人均{}；本县规定人均不超过{}{describe}",
                        yuan(total),
                        yuan(per_member),
                        yuan(rule.limit)
                    ),
                )
            })
        }
        PropertyItem::Business => {
            let capital: i64 = of(items, Item::BusinessLicence).map(|(_, r)| r.amount.map_or(0, |m| m.fen)).sum();
            let found: Vec<String> = of(items, Item::BusinessLicence)
                .map(|(i, r)| format!("{}为{}的{}", masked(i), attr(r, "name"), attr(r, "role")))
                .collect();
            (!found.is_empty() && capital > rule.limit).then(|| {
                finding(
                    Item::BusinessLicence,
                    Department::Commerce,
                    format!(
                        "{}，注册资本合计{}；本县规定不超过{}{describe}",
                        found.join("；"),
                        yuan(capital),
                        yuan(rule.limit)
                    ),
                )
            })
        }
        PropertyItem::PublicPayroll | PropertyItem::Unspecified => None,
    }
}

/// One paragraph for the officer: what was checked, found and missing.
pub fn summary(persons: usize, items: &[ReportItem], findings: &[Finding], policy_note: &str) -> String {
    let records = items.iter().filter(|i| i.record.is_some()).count();
    let mut missing: Vec<String> = items
        .iter()
        .filter(|i| i.unavailable)
        .map(|i| {
            let d = Department::try_from(i.department).map_or("", Label::label);
            let item = Item::try_from(i.item).map_or("", Label::label);
            format!("{d}·{item}")
        })
        .collect();
    missing.sort();
    missing.dedup();
    let mut s = format!("核对{persons}人，取得部门记录{records}条，发现需关注事项{}项。", findings.len());
    if missing.is_empty() {
        s.push_str("各部门均已应答。");
    } else {
        s.push_str(&format!("以下项目暂未取得：{}（原因见各项）。", missing.join("、")));
    }
    if !policy_note.is_empty() {
        s.push_str(policy_note);
    }
    s.push_str("本报告只反映核对结果，是否符合条件由民政部门审核确认。");
    s
}
