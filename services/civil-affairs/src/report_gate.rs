//! The gate a verification report passes before the verification step or
//! county approval accepts it (R-VER-2). Civil affairs reads the report
//! from the hub itself, by id, over mTLS as its own system: the hub's
//! `VerificationCompleted` event only says that a report is ready, so a
//! forged event opens nothing. The report is then held against the
//! household as it stands and its own county's policy: the household's,
//! complete, of that county's thresholds, every live member checked for
//! every item the county requires, recent enough, and the version signed.

use std::collections::HashSet;
use std::time::Duration;

use dibao_platform::Error;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::runtime::server::MeshChannel;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::department::v1::Item;
use dibao_proto::labels::Label;
use dibao_proto::types::DivisionCode;
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use dibao_proto::verification::v1::{GetReportRequest, Report};
use time::OffsetDateTime;
use uuid::Uuid;

/// How long a report stays good for approval where the county's policy
/// names no period.
pub const DEFAULT_VALID_DAYS: i32 = 90;

/// The hub's reports, as civil affairs reads them (none where the hub's
/// address is not configured: then no report can be accepted).
#[derive(Clone, Default)]
pub struct Reports(pub Option<VerificationServiceClient<MeshChannel>>);

/// Why a report does not open the step.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("本系统未配置核对平台的地址，无法读取核对报告，请联系系统运维人员（R-VER-2）")]
    NoHub,
    #[error("暂时无法从核对平台读取核对报告，请稍后再办理")]
    HubUnavailable,
    #[error("核对平台没有编号为“{0}”的核对报告：请核实报告编号（R-VER-2）")]
    NotFound(String),
    #[error("核对报告“{0}”核对的不是本申请的家庭（R-VER-2）")]
    OfAnotherHousehold(String),
    #[error("核对报告“{0}”不完整（部分部门未应答或未能对照县级政策），请重新核对后再办理（R-VER-2）")]
    Incomplete(String),
    #[error("核对报告“{report}”按{used}的政策核对，而该户属于{county}，须按本县政策重新核对（R-VER-2）")]
    OtherCounty { report: String, used: String, county: String },
    #[error("核对报告“{report}”未核对以下家庭成员：{names}，请为全部成员重新核对（R-VER-2）")]
    MembersMissing { report: String, names: String },
    #[error(
        "核对报告“{report}”把家庭成员{names}作为家庭以外的亲属核对，其财产未按家庭成员计算，请重新核对（R-ELIG-2）"
    )]
    MembersAsRelatives { report: String, names: String },
    #[error(
        "核对报告“{report}”显示：{found}。配偶和未成年子女应列入同一申请，不得分户申请；确属三种单人户情形的，请在申请中注明（R-ROSTER-4）"
    )]
    RegisteredApart { report: String, found: String },
    #[error("核对报告“{report}”缺少本县要求的核对项目：{missing}（R-VER-2）")]
    ItemsMissing { report: String, missing: String },
    #[error("核对报告“{report}”完成于{completed}，已超过本县规定的{days}天有效期，请重新核对（R-VER-2）")]
    Stale { report: String, completed: String, days: i32 },
    #[error(
        "核对报告“{report}”已有第{latest}版，信息核对环节签署的是第{signed}版：新版本须经信息核对环节重新签署（R-VER-2）"
    )]
    Superseded { report: String, signed: i32, latest: i32 },
}

impl Refusal for GateError {
    fn kind(&self) -> RefusalKind {
        match self {
            GateError::NoHub | GateError::HubUnavailable => RefusalKind::Unavailable,
            _ => RefusalKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            GateError::NoHub => "VERIFICATION_HUB_NOT_CONFIGURED",
            GateError::HubUnavailable => "VERIFICATION_HUB_UNAVAILABLE",
            GateError::NotFound(_) => "REPORT_NOT_FOUND",
            GateError::OfAnotherHousehold(_) => "REPORT_OF_ANOTHER_HOUSEHOLD",
            GateError::Incomplete(_) => "REPORT_INCOMPLETE",
            GateError::OtherCounty { .. } => "REPORT_OF_ANOTHER_COUNTY",
            GateError::MembersMissing { .. } => "REPORT_MISSING_MEMBERS",
            GateError::MembersAsRelatives { .. } => "REPORT_MEMBERS_AS_RELATIVES",
            GateError::RegisteredApart { .. } => "SPOUSE_OR_CHILD_APPLYING_APART",
            GateError::ItemsMissing { .. } => "REPORT_MISSING_ITEMS",
            GateError::Stale { .. } => "REPORT_STALE",
            GateError::Superseded { .. } => "REPORT_SUPERSEDED",
        }
    }
}

/// What the report is held against.
pub struct Against<'a> {
    pub household_id: Uuid,
    /// The household as it stands: its live members.
    pub household: &'a pb::Household,
    pub county: &'a DivisionCode,
    pub policy: &'a pb::CountyPolicy,
    /// The version the verification step signed, at county approval.
    pub signed_version: Option<i32>,
    pub now: OffsetDateTime,
}

impl Reports {
    /// The latest version of report `report_id`, read from the hub.
    async fn latest(&self, report_id: &str) -> Result<Report, Error> {
        let Some(mut client) = self.0.clone() else {
            return Err(GateError::NoHub.into());
        };
        let mut request = tonic::Request::new(GetReportRequest { report_id: report_id.to_owned(), version: 0 });
        request.set_timeout(Duration::from_secs(5));
        match client.get_report(request).await {
            Ok(r) => r.into_inner().report.ok_or_else(|| GateError::NotFound(report_id.to_owned()).into()),
            Err(s) if s.code() == tonic::Code::NotFound => Err(GateError::NotFound(report_id.to_owned()).into()),
            Err(s) => {
                tracing::warn!(code = ?s.code(), message = s.message(), "verification report unavailable");
                Err(GateError::HubUnavailable.into())
            }
        }
    }

    /// Report `report_id` read from the hub and held against `a`; the
    /// report when it opens the step.
    #[tracing::instrument(skip(self, a), fields(household_id = %a.household_id))]
    pub async fn check(&self, report_id: &str, a: &Against<'_>) -> Result<Report, Error> {
        let report = self.latest(report_id).await?;
        let id = || report_id.to_owned();
        if report.household_id != a.household_id.to_string() {
            return Err(GateError::OfAnotherHousehold(id()).into());
        }
        let used = report.county.as_ref().map(|c| c.code.clone()).unwrap_or_default();
        if used != a.county.as_str() {
            let used = if used.is_empty() { "未知县".to_owned() } else { used };
            return Err(GateError::OtherCounty { report: id(), used, county: a.county.to_string() }.into());
        }
        if !report.complete {
            return Err(GateError::Incomplete(id()).into());
        }
        if let Some(signed) = a.signed_version
            && report.version != signed
        {
            return Err(GateError::Superseded { report: id(), signed, latest: report.version }.into());
        }
        let days = if a.policy.report_valid_days > 0 { a.policy.report_valid_days } else { DEFAULT_VALID_DAYS };
        let completed = completed_at(&report);
        if a.now - completed > time::Duration::days(i64::from(days)) {
            return Err(GateError::Stale { report: id(), completed: china_date(completed).to_string(), days }.into());
        }
        let checked: HashSet<&str> = report.persons.iter().map(|p| p.value.as_str()).collect();
        let members = live_members(a.household);
        let missing: Vec<&str> =
            members.iter().filter(|(number, _)| !checked.contains(number.as_str())).map(|(_, name)| *name).collect();
        if !missing.is_empty() {
            return Err(GateError::MembersMissing { report: id(), names: missing.join("、") }.into());
        }
        let relatives: HashSet<&str> = report.relatives.iter().map(|p| p.value.as_str()).collect();
        let disguised: Vec<&str> =
            members.iter().filter(|(number, _)| relatives.contains(number.as_str())).map(|(_, name)| *name).collect();
        if !disguised.is_empty() {
            return Err(GateError::MembersAsRelatives { report: id(), names: disguised.join("、") }.into());
        }
        // A spouse or minor child registered with the applicant but left out
        // of the application, unless one of the three single-person cases
        // applies (R-ROSTER-4).
        let apart: Vec<&str> =
            report.findings.iter().filter(|f| f.code == "REGISTERED_APART").map(|f| f.reason.as_str()).collect();
        if !apart.is_empty() && a.household.single_person_reason == 0 {
            return Err(GateError::RegisteredApart { report: id(), found: apart.join("；") }.into());
        }
        let missing = missing_items(&report, a.household, &a.policy.required_report_items);
        if !missing.is_empty() {
            return Err(GateError::ItemsMissing { report: id(), missing: missing.join("；") }.into());
        }
        Ok(report)
    }
}

/// When the hub completed `report`.
pub fn completed_at(report: &Report) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(report.completed_at.map_or(0, |t| t.seconds))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Each live member's identity number and name.
fn live_members(household: &pb::Household) -> Vec<(String, &str)> {
    household
        .members
        .iter()
        .filter_map(|m| m.person.as_ref())
        .filter_map(|p| Some((p.identity_number.as_ref()?.value.clone(), p.name.as_str())))
        .collect()
}

/// Per member without them, the items the report holds no answer for: the
/// county's required items, and the departments' records behind what the
/// member claims — a disability grade needs the federation's certificate
/// register, a serious illness medical insurance's registrations (R-VER-3):
/// "王建国：机动车、残疾人证".
fn missing_items(report: &Report, household: &pb::Household, required: &[i32]) -> Vec<String> {
    let answered: HashSet<(i32, &str)> = report
        .items
        .iter()
        .filter(|i| !i.unavailable)
        .filter_map(|i| Some((i.item, i.person.as_ref()?.value.as_str())))
        .collect();
    household
        .members
        .iter()
        .filter_map(|m| {
            let person = m.person.as_ref()?;
            let number = person.identity_number.as_ref()?.value.as_str();
            let mut needed: Vec<i32> = required.to_vec();
            for (claimed, item) in
                [(m.disability_grade > 0, Item::DisabilityCertificate), (m.serious_illness, Item::RegisteredIllness)]
            {
                if claimed && !needed.contains(&(item as i32)) {
                    needed.push(item as i32);
                }
            }
            let items: Vec<&str> = needed
                .iter()
                .filter(|item| !answered.contains(&(**item, number)))
                .map(|item| Item::try_from(*item).unwrap_or(Item::Unspecified).label())
                .collect();
            (!items.is_empty()).then(|| format!("{}：{}", person.name, items.join("、")))
        })
        .collect()
}

/// The records `report` holds on `person` for any of `items`.
fn records_of<'a>(report: &'a Report, person: &str, items: &[Item]) -> Vec<&'a dibao_proto::department::v1::Record> {
    report
        .items
        .iter()
        .filter(|i| items.iter().any(|item| i.item == *item as i32))
        .filter(|i| i.person.as_ref().is_some_and(|p| p.value == person))
        .filter_map(|i| i.record.as_ref())
        .collect()
}

/// A household as the departments' records certify it, and why.
pub struct Certified {
    pub household: pb::Household,
    pub income: pb::AssessHouseholdRequest,
    /// One line per change, in the officer's words, each naming its record.
    pub lines: Vec<String>,
}

impl Certified {
    pub fn changed(&self) -> bool {
        !self.lines.is_empty()
    }
}

/// What the disability federation and medical insurance certify replaces
/// what was typed at the door (R-VER-3, R-INC-3): each member's disability
/// grade becomes the most severe grade of a certificate valid on `today`
/// (none: no disability); "seriously ill" holds only with a registered
/// serious illness or outpatient special disease; and a member's
/// out-of-pocket medical spending over twelve months, by month, is the
/// illness deduction in place of any the officer typed for that member.
/// Only where the report answered the item for the member: an unanswered
/// item changes nothing (and a claim without its answer never passes the
/// gate). The changes are listed with the record each stands on.
pub fn certify(
    report: &Report,
    household: &pb::Household,
    income: &pb::AssessHouseholdRequest,
    today: time::Date,
) -> Certified {
    use dibao_proto::types::Fen;
    let mut household = household.clone();
    let mut income = income.clone();
    let mut lines = Vec::new();
    let cite = format!("核对报告{}第{}版", report.report_id, report.version);
    for m in &mut household.members {
        let Some(person) = m.person.as_ref() else { continue };
        let identity = person.identity_number.clone();
        let Some(number) = identity.as_ref().map(|n| n.value.clone()) else { continue };
        let name = person.name.clone();
        let answered = |item: Item| {
            report.items.iter().any(|i| {
                i.item == item as i32 && !i.unavailable && i.person.as_ref().is_some_and(|p| p.value == number)
            })
        };
        let records = |item: Item| records_of(report, &number, &[item]);
        let attr = |r: &dibao_proto::department::v1::Record, k: &str| r.attributes.get(k).cloned().unwrap_or_default();

        if answered(Item::DisabilityCertificate) {
            let certificates = records(Item::DisabilityCertificate);
            let valid = |r: &&&dibao_proto::department::v1::Record| {
                time::Date::parse(&attr(r, "valid_until"), time::macros::format_description!("[year]-[month]-[day]"))
                    .is_ok_and(|until| until >= today)
            };
            let best = certificates.iter().filter(valid).min_by_key(|r| r.quantity);
            let certified = best.map_or(0, |r| i32::try_from(r.quantity).unwrap_or(0));
            if certified != m.disability_grade {
                let typed = if m.disability_grade == 0 {
                    "未申报残疾".to_owned()
                } else {
                    format!("申报{}级残疾", m.disability_grade)
                };
                lines.push(match best {
                    Some(r) => format!(
                        "{name}{typed}，残联记录为{}级{}残疾（残疾人证{}，有效期至{}，{cite}），按{certified}级认定",
                        certified,
                        attr(r, "type"),
                        r.source_record_id,
                        attr(r, "valid_until")
                    ),
                    None => {
                        let lapsed: Vec<String> = certificates
                            .iter()
                            .map(|r| format!("残疾人证{}已于{}到期", r.source_record_id, attr(r, "valid_until")))
                            .collect();
                        let lapsed =
                            if lapsed.is_empty() { String::new() } else { format!("（{}）", lapsed.join("、")) };
                        format!("{name}{typed}，残联无有效残疾人证记录{lapsed}（{cite}），按无残疾认定")
                    }
                });
                m.disability_grade = certified;
            }
        }

        if answered(Item::RegisteredIllness) {
            let registrations = records(Item::RegisteredIllness);
            let serious = registrations.iter().find(|r| attr(r, "serious") == "true");
            if serious.is_some() != m.serious_illness {
                lines.push(match serious {
                    Some(r) => format!(
                        "{name}未申报重病，医保登记有{}“{}”（登记号{}，{cite}），按重病患者认定",
                        attr(r, "category"),
                        attr(r, "disease"),
                        r.source_record_id
                    ),
                    None => format!("{name}申报患重病，医保无重特大疾病或门诊特殊疾病登记（{cite}），不按重病患者认定"),
                });
                m.serious_illness = serious.is_some();
            }
        }

        if answered(Item::MedicalSpending) {
            let spent = records(Item::MedicalSpending);
            if spent.is_empty() {
                continue;
            }
            let typed = pb::IncomeKind::IllnessSpending as i32;
            let before = income.income.len();
            income.income.retain(|l| !(l.kind == typed && l.member.as_ref().is_some_and(|p| p.value == number)));
            let replaced = if income.income.len() < before { "，取代申报的因病支出" } else { "" };
            for r in spent {
                let own = r.amount.as_ref().map_or(0, |a| a.fen);
                let monthly = Fen(own / 12);
                let source =
                    format!("{}{}，{}至{}", r.source, r.source_record_id, attr(r, "period_from"), attr(r, "period_to"));
                income.income.push(pb::IncomeItem {
                    kind: typed,
                    label: format!("{name}医疗费用个人负担（{source}，{cite}）"),
                    member: identity.clone(),
                    monthly: Some(monthly.into()),
                    ..Default::default()
                });
                lines.push(format!(
                    "{name}近12个月医疗费用个人负担{}（{source}，{cite}），按月{monthly}扣减{replaced}（R-INC-3）",
                    Fen(own)
                ));
            }
        }
    }
    certify_supporters(report, &mut income, &cite, &mut lines);
    Certified { household, income, lines }
}

/// A supporter who is a close relative verified under the consent: their
/// records feed their supporter line and nothing else (R-INC-4, R-ELIG-2).
/// What they earn by the departments' records (wages or the tax office's
/// yearly income by month, whichever is more, with pensions and
/// unemployment benefit) divided by their household's size is a floor
/// under the per-capita income typed for them; an employment record makes
/// them employed for the estimate; their property, cars and businesses are
/// named on the line, never held against the household.
fn certify_supporters(report: &Report, income: &mut pb::AssessHouseholdRequest, cite: &str, lines: &mut Vec<String>) {
    use dibao_proto::types::Fen;
    let relatives: HashSet<&str> = report.relatives.iter().map(|p| p.value.as_str()).collect();
    for s in &mut income.supporters {
        let Some(number) = s.identity_number.as_ref().map(|n| n.value.trim().to_owned()) else { continue };
        if !relatives.contains(number.as_str()) {
            continue;
        }
        let of = |items: &[Item]| records_of(report, &number, items);
        let sum = |items: &[Item]| of(items).iter().map(|r| r.amount.as_ref().map_or(0, |m| m.fen)).sum::<i64>();
        let wage = sum(&[Item::Employment]);
        let monthly = wage.max(sum(&[Item::IncomeTax]) / 12) + sum(&[Item::Pension, Item::UnemploymentBenefit]);
        let mut notes = vec![format!("部门记录月收入{}", Fen(monthly))];
        let holdings: Vec<String> = of(&[Item::Property, Item::Vehicles, Item::BusinessLicence])
            .iter()
            .map(|r| format!("{}{}", r.source, r.source_record_id))
            .collect();
        if !holdings.is_empty() {
            notes.push(format!("名下有{}，不计入本户财产（R-ELIG-2）", holdings.join("、")));
        }
        if wage > 0 && !s.employed {
            s.employed = true;
            notes.push("有就业记录，按就业人员测算".to_owned());
        }
        let typed = s.household_per_capita.as_ref().map_or(0, |m| m.fen);
        if s.household_size > 0 {
            let floor = monthly / i64::from(s.household_size);
            if floor > typed {
                s.household_per_capita = Some(Fen(floor).into());
                notes.push(format!(
                    "其家庭{}人，人均收入不低于{}（申报{}），按{}计",
                    s.household_size,
                    Fen(floor),
                    Fen(typed),
                    Fen(floor)
                ));
            }
        }
        lines.push(format!("赡养人{}（{}）：{}（{cite}，R-INC-4）", s.name, s.relation, notes.join("；")));
    }
}

/// The report's findings against the county's property rules (R-ELIG-1),
/// as the engine reads them, each naming the report it came from. The hub
/// holds the rules against the members' records only, never a relative's
/// verified under the same consent (R-ELIG-2), and the gate has checked
/// that no member was verified as a relative.
pub fn property_findings(report: &Report) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| !f.rule.is_empty())
        .map(|f| format!("{}（核对报告{}第{}版）", f.reason, report.report_id, report.version))
        .collect()
}

/// The income the departments report set beside the income declared, line
/// by line, with the difference, for the officer (R-INC-1, R-VER-4): wages
/// beside the employment records; pensions and unemployment benefit beside
/// the transfers declared; the tax office's yearly income, by month, beside
/// the wages and business income declared. Monthly amounts in yuan; a line
/// only where either side has something.
pub fn income_beside(report: &Report, declared: &[pb::IncomeItem]) -> Vec<String> {
    use dibao_proto::types::Fen;
    let department = |items: &[Item], per_month: i64| -> (i64, Vec<String>) {
        let records: Vec<_> = report
            .items
            .iter()
            .filter(|i| items.iter().any(|item| i.item == *item as i32))
            .filter_map(|i| i.record.as_ref())
            .collect();
        let total = records.iter().map(|r| r.amount.as_ref().map_or(0, |m| m.fen)).sum::<i64>() / per_month;
        (total, records.iter().map(|r| format!("{}{}", r.source, r.source_record_id)).collect())
    };
    let declared_of = |kinds: &[pb::IncomeKind]| -> i64 {
        declared
            .iter()
            .filter(|d| kinds.iter().any(|k| d.kind == *k as i32))
            .map(|d| d.monthly.as_ref().map_or(0, |m| m.fen))
            .sum()
    };
    use pb::IncomeKind as K;
    let lines = [
        ("工资性收入", department(&[Item::Employment], 1), declared_of(&[K::Wage])),
        (
            "养老金、失业保险金",
            department(&[Item::Pension, Item::UnemploymentBenefit], 1),
            declared_of(&[K::CentralBasicPension, K::OtherTransfer]),
        ),
        ("纳税申报收入（年收入折月）", department(&[Item::IncomeTax], 12), declared_of(&[K::Wage, K::Business])),
    ];
    lines
        .into_iter()
        .filter(|(_, (found, _), said)| *found != 0 || *said != 0)
        .map(|(what, (found, sources), said)| {
            let sources = if sources.is_empty() { "部门无记录".to_owned() } else { sources.join("、") };
            format!("{what}：部门记录每月{}（{sources}），申报每月{}，差额{}", Fen(found), Fen(said), Fen(found - said))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dibao_proto::common::v1::{IdentityNumber, Person};
    use dibao_proto::verification::v1::{Finding, ReportItem};

    fn person(number: &str, name: &str) -> pb::Member {
        pb::Member {
            person: Some(Person {
                identity_number: Some(IdentityNumber { value: number.into() }),
                name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn answered(item: Item, number: &str, unavailable: bool) -> ReportItem {
        ReportItem {
            item: item as i32,
            person: Some(IdentityNumber { value: number.into() }),
            unavailable,
            ..Default::default()
        }
    }

    #[test]
    fn items_missing_are_named_per_member_and_an_unavailable_answer_is_no_answer() {
        // 王三 says he is disabled: the federation's answer is needed too.
        let disabled = pb::Member { disability_grade: 2, ..person("C", "王三") };
        let household = pb::Household {
            members: vec![person("A", "王一"), person("B", "王二"), disabled],
            ..Default::default()
        };
        let report = Report {
            items: vec![
                answered(Item::Vehicles, "A", false),
                answered(Item::Deposits, "A", false),
                answered(Item::Vehicles, "B", true),
                answered(Item::Vehicles, "C", false),
                answered(Item::Deposits, "C", false),
            ],
            ..Default::default()
        };
        let required = [Item::Vehicles as i32, Item::Deposits as i32];
        assert_eq!(
            missing_items(&report, &household, &required),
            vec!["王二：机动车、银行存款".to_owned(), "王三：残疾人证".to_owned()]
        );
    }

    #[test]
    fn department_income_is_set_beside_the_declared_line_by_line() {
        use dibao_proto::common::v1::Money;
        use dibao_proto::department::v1::Record;
        let record = |item: Item, fen: i64, id: &str| ReportItem {
            item: item as i32,
            record: Some(Record {
                source: "社会保险信息系统".into(),
                source_record_id: id.into(),
                amount: Some(Money { fen }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let report = Report {
            items: vec![record(Item::Employment, 110_000, "JY1"), record(Item::Pension, 10_300, "YL1")],
            ..Default::default()
        };
        let declared = [pb::IncomeItem {
            kind: pb::IncomeKind::Wage as i32,
            monthly: Some(dibao_proto::common::v1::Money { fen: 80_000 }),
            ..Default::default()
        }];
        assert_eq!(
            income_beside(&report, &declared),
            vec![
                "工资性收入：部门记录每月1100.00元（社会保险信息系统JY1），申报每月800.00元，差额300.00元".to_owned(),
                "养老金、失业保险金：部门记录每月103.00元（社会保险信息系统YL1），申报每月0.00元，差额103.00元"
                    .to_owned(),
                "纳税申报收入（年收入折月）：部门记录每月0.00元（部门无记录），申报每月800.00元，差额-800.00元"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn only_findings_against_a_county_rule_decide_and_each_names_its_report() {
        let finding =
            |reason: &str, rule: &str| Finding { reason: reason.into(), rule: rule.into(), ..Default::default() };
        let report = Report {
            report_id: "r".into(),
            version: 2,
            findings: vec![
                finding("家庭成员名下共有1辆机动车", "家庭成员名下无非生产用机动车"),
                finding("公安记录显示某人已死亡", ""),
            ],
            ..Default::default()
        };
        assert_eq!(property_findings(&report), vec!["家庭成员名下共有1辆机动车（核对报告r第2版）".to_owned()]);
    }
}
