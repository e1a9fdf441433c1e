//! Public notice lists (R-PROC-3): what a village posts and the county keeps
//! on long-term notice. Names, household size, income and amount; identity
//! numbers masked; health details (disability, illness) never appear.

use std::collections::HashMap;

use dibao_benefit_engine::policy::CountyPolicy;
use dibao_platform::Error;
use dibao_platform::files::tabular;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::china_date;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::common::v1::Relation;
use dibao_proto::labels::chinese_date;
use dibao_proto::types::{DivisionCode, Fen, IdentityNumber, InvalidField};
use tokio_postgres::{GenericClient, Row};

use crate::convert;
use crate::households::{self, Roster};
use crate::policy;
use crate::process::NOTICE_DAYS;

pub struct NoticeRow {
    pub village: String,
    pub head_name: String,
    pub head_identity: IdentityNumber,
    pub household_size: usize,
    /// Per-capita monthly income, where the household's income is on file.
    pub per_capita_income: Option<Fen>,
    pub category: String,
    pub monthly_amount: Fen,
    /// When the household is on notice: 2026年12月01日至2026年12月08日.
    pub period: String,
}

/// Whom to call about a notice (R-AUD-2): the county's civil-affairs
/// department and the townships' numbers from the county's policy.
#[derive(Debug, Default)]
pub struct Contacts(pub Vec<(String, String)>);

impl Contacts {
    /// The numbers in `policy` for a notice of `division`: the county's, and
    /// those of the townships inside the division (all of them for a county).
    pub fn of(policy: &pb::CountyPolicy, division: &DivisionCode) -> Self {
        let mut out = Vec::new();
        if !policy.complaint_phone.trim().is_empty() {
            let county = division.county().and_then(|c| c.name()).unwrap_or_else(|| "县（市、区）".to_owned());
            out.push((format!("{county}民政部门"), policy.complaint_phone.trim().to_owned()));
        }
        for t in &policy.township_complaint_phones {
            let code = t.township.as_ref().map(|c| c.code.as_str()).unwrap_or_default();
            let Ok(township) = DivisionCode::parse(code) else { continue };
            if division.contains(&township) || township.contains(division) {
                let name = township.name().unwrap_or_else(|| format!("乡镇（街道）{code}"));
                out.push((name, t.phone.trim().to_owned()));
            }
        }
        Self(out)
    }

    /// 监督举报电话：梅河口市民政部门 0435-4221234；红梅镇 0435-4301234
    pub fn line(&self) -> String {
        if self.0.is_empty() {
            return "监督举报电话：县级民政部门尚未在政策中登记".to_owned();
        }
        let parts: Vec<String> = self.0.iter().map(|(who, phone)| format!("{who} {phone}")).collect();
        format!("监督举报电话：{}", parts.join("；"))
    }
}

/// What the notice says a household receives: special hardship, or the dibao category.
pub fn category_label(programme: i32, category: i32) -> String {
    use dibao_proto::events::v1::{BenefitCategory, Programme};
    use dibao_proto::labels::Label;
    if programme == Programme::SpecialHardship as i32 {
        return Programme::SpecialHardship.label().to_owned();
    }
    match BenefitCategory::try_from(category) {
        Ok(c @ (BenefitCategory::A | BenefitCategory::B | BenefitCategory::C)) => {
            format!("{}{}", Programme::Dibao.label(), c.label())
        }
        _ => Programme::Dibao.label().to_owned(),
    }
}

const HEADERS: [&str; 9] = [
    "序号",
    "所在村",
    "户主姓名",
    "户主身份证号（已隐去）",
    "家庭人口",
    "家庭人均月收入（元）",
    "保障类别",
    "月保障金（元）",
    "公示期",
];

/// Yuan with two decimals, without the unit, for table cells.
fn yuan(f: Fen) -> String {
    let s = f.to_string();
    s.trim_end_matches('元').to_owned()
}

fn cells(i: usize, r: &NoticeRow) -> [String; 9] {
    [
        (i + 1).to_string(),
        // By name (R-ROSTER-3); the code where the tables lack one.
        dibao_proto::divisions::village_place(&r.village).unwrap_or_else(|| r.village.clone()),
        r.head_name.clone(),
        r.head_identity.masked(),
        r.household_size.to_string(),
        r.per_capita_income.map(yuan).unwrap_or_else(|| "—".to_owned()),
        r.category.clone(),
        yuan(r.monthly_amount),
        r.period.clone(),
    ]
}

/// The table in CSV, then a line of one cell: the numbers to call.
pub fn to_csv(rows: &[NoticeRow], contacts: &Contacts) -> Vec<u8> {
    let table = rows.iter().enumerate().map(|(i, r)| cells(i, r).to_vec());
    tabular::csv_document(&HEADERS, table.chain(std::iter::once(vec![contacts.line()])))
}

/// The same table as an xlsx workbook: a title row, the numbers to call,
/// then the table.
pub fn to_xlsx(title: &str, rows: &[NoticeRow], contacts: &Contacts) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("公示名单")?;
    let bold = Format::new().set_bold();
    sheet.write_string_with_format(0, 0, title, &bold)?;
    sheet.write_string(1, 0, contacts.line())?;
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string_with_format(2, c as u16, *h, &bold)?;
    }
    for (i, r) in rows.iter().enumerate() {
        for (c, v) in cells(i, r).iter().enumerate() {
            // Amounts stay text: money is never a float, not even in a spreadsheet.
            sheet.write_string(3 + i as u32, c as u16, v)?;
        }
    }
    for (c, w) in [6, 14, 10, 22, 8, 18, 10, 14, 30].into_iter().enumerate() {
        sheet.set_column_width(c as u16, w)?;
    }
    workbook.save_to_buffer()
}

/// A notice to export, checked.
pub struct NoticeRequest {
    pub division: DivisionCode,
    pub kind: pb::NoticeKind,
    pub format: pb::FileFormat,
}

impl NoticeRequest {
    pub fn check(req: &pb::ExportPublicNoticeRequest, reader: &Reader) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let division = convert::division(&req.division, "division").map_err(|e| errors.push(e)).ok();
        // Outside the jurisdiction: refused before anything else is said.
        if let Some(d) = &division {
            reader.must_cover(d, "division")?;
        }
        if division.as_ref().is_some_and(|d| d.county().is_none()) {
            errors.push(InvalidField::new("division", "应填写县级、乡镇级或村级行政区划代码"));
        }
        let kind = pb::NoticeKind::try_from(req.kind).unwrap_or(pb::NoticeKind::Unspecified);
        if kind == pb::NoticeKind::Unspecified {
            errors.push(InvalidField::new("kind", "请选择公示类型：审批公示或长期公示"));
        }
        let format = pb::FileFormat::try_from(req.format).unwrap_or(pb::FileFormat::Unspecified);
        if format == pb::FileFormat::Unspecified {
            errors.push(InvalidField::new("format", "请选择文件格式：CSV或xlsx"));
        }
        match division.filter(|_| errors.is_empty()) {
            Some(division) => Ok(Self { division, kind, format }),
            None => Err(Error::InvalidArgument(errors)),
        }
    }
}

/// The households a notice lists, with their stored income: applications
/// on notice awaiting county approval (R-PROC-1), or every enrolled household.
#[tracing::instrument(skip(client))]
async fn listed(client: &impl GenericClient, kind: pb::NoticeKind, prefix: &str) -> Result<Vec<Row>, Error> {
    let columns = households::COLUMNS;
    Ok(match kind {
        pb::NoticeKind::Applicants => {
            client
                .query(
                    &format!(
                        "SELECT {columns}, income, notice_started_at
                         FROM household JOIN (
                             SELECT household_id, max(notice_started_at) AS notice_started_at FROM application
                             WHERE status = 'open' AND kind = 'enrol' AND notice_started_at IS NOT NULL
                             GROUP BY household_id) AS on_notice USING (household_id)
                         WHERE village LIKE $1 || '%'
                         ORDER BY village, household_id"
                    ),
                    &[&prefix],
                )
                .await?
        }
        _ => {
            client
                .query(
                    &format!(
                        "SELECT {columns}, income, NULL::timestamptz AS notice_started_at FROM household
                         WHERE village LIKE $1 || '%' AND status IN ($2, $3)
                         ORDER BY village, household_id"
                    ),
                    &[&prefix, &(pb::HouseholdStatus::Enrolled as i32), &(pb::HouseholdStatus::GradualExit as i32)],
                )
                .await?
        }
    })
}

/// The notice of a division as a file. Per-capita income and, for
/// applicants, the proposed amount come from the engine with the policy in
/// force; without a policy the notice still lists the household, income "—".
/// The heads it names are on record as read by `reader`, in one record,
/// before the file leaves.
pub async fn export(
    roster: &Roster,
    reader: &Reader,
    n: NoticeRequest,
) -> Result<pb::ExportPublicNoticeResponse, Error> {
    let client = roster.pool.get().await?;
    let rows = listed(&**client, n.kind, n.division.prefix()).await?;
    let month = households::first_of_month(roster.clock.now());
    let today = china_date(roster.clock.now());
    let mut policies: HashMap<String, Option<(CountyPolicy, pb::CountyPolicy)>> = HashMap::new();
    let mut notice = Vec::with_capacity(rows.len());
    for row in &rows {
        let household = households::household_of(row)?;
        let income = households::income_of(row, &household.household_id)?;
        let village = household.village.as_ref().map(|v| v.code.clone()).unwrap_or_default();
        let county = village.get(..6).unwrap_or_default().to_owned();
        if !policies.contains_key(&county) {
            let policy = match DivisionCode::parse(&county) {
                Ok(c) => policy::in_force(&**client, &c, month).await.ok(),
                Err(_) => None,
            };
            policies.insert(county.clone(), policy);
        }
        let assessed = policies[&county].as_ref().and_then(|(p, _)| policy::assess(&household, &income, p, month).ok());
        let Some(head) = household
            .members
            .iter()
            .find(|m| m.relation == Relation::Head as i32)
            .or(household.members.first())
            .and_then(|m| m.person.as_ref())
        else {
            continue;
        };
        let Ok(head_identity) = convert::identity(&head.identity_number, "head") else { continue };
        let monthly_amount = match (n.kind, &assessed) {
            (pb::NoticeKind::Applicants, Some((_, b))) => b.monthly_amount,
            _ => Fen(household.monthly_amount.as_ref().map_or(0, |m| m.fen)),
        };
        notice.push(NoticeRow {
            village,
            head_name: head.name.clone(),
            head_identity,
            household_size: household.members.len(),
            per_capita_income: assessed.as_ref().map(|(i, _)| i.per_capita),
            category: category_label(household.programme, household.category),
            monthly_amount,
            period: match row.get::<_, Option<time::OffsetDateTime>>("notice_started_at") {
                Some(started) => {
                    let from = china_date(started);
                    format!("{}至{}", chinese_date(from), chinese_date(from + time::Duration::days(NOTICE_DAYS)))
                }
                None => format!("自{}起长期公示", chinese_date(today)),
            },
        });
    }
    drop(client);
    let entries = notice.iter().map(|r| reader.entry(r.head_identity.as_str(), "查阅公示名单")).collect();
    roster.log.record_all(entries).await?;
    let division = &n.division;
    let (what, title) = match n.kind {
        pb::NoticeKind::Applicants => ("applicants", format!("{}最低生活保障审批公示（公示期7天）", division.place())),
        _ => ("enrolled", format!("{}最低生活保障及特困供养长期公示", division.place())),
    };
    // The numbers of the division's county, from its policy in force.
    let contacts = match n.division.county().and_then(|c| policies.get(c.as_str())) {
        Some(Some((_, wire))) => Contacts::of(wire, division),
        _ => match n.division.county() {
            Some(c) => {
                let client = roster.pool.get().await?;
                policy::in_force_if_any(&**client, &c, month)
                    .await?
                    .map(|(_, wire)| Contacts::of(&wire, division))
                    .unwrap_or_default()
            }
            None => Contacts::default(),
        },
    };
    let date = today;
    let (ext, content) = match n.format {
        pb::FileFormat::Xlsx => {
            ("xlsx", to_xlsx(&title, &notice, &contacts).map_err(|e| Error::Unexpected(anyhow::anyhow!("xlsx: {e}")))?)
        }
        _ => ("csv", to_csv(&notice, &contacts)),
    };
    Ok(pb::ExportPublicNoticeResponse {
        filename: format!("public-notice-{what}-{}-{date}.{ext}", division.as_str()),
        content,
        households: i32::try_from(notice.len()).unwrap_or(i32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> NoticeRow {
        NoticeRow {
            village: "220581101201".into(),
            head_name: "王建国, \"老王\"".into(),
            head_identity: IdentityNumber::parse("11010519491231002X").expect("id"),
            household_size: 4,
            per_capita_income: Some(Fen(26_750)),
            category: "低保C类".to_owned(),
            monthly_amount: Fen(56_500),
            period: "2026年12月01日至2026年12月08日".to_owned(),
        }
    }

    fn contacts() -> Contacts {
        Contacts(vec![("县（市、区）民政部门".to_owned(), "0435-4221234".to_owned())])
    }

    #[test]
    fn csv_masks_identity_numbers_and_quotes_fields() {
        let csv = String::from_utf8(to_csv(&[row()], &contacts())).expect("utf8");
        assert!(csv.starts_with('\u{feff}'));
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[0], HEADERS.join(","));
        assert_eq!(
            lines[1],
            "1,220581101201,\"王建国, \"\"老王\"\"\",110105********002X,4,267.50,低保C类,565.00,\
             2026年12月01日至2026年12月08日"
        );
        assert_eq!(lines[2], "监督举报电话：县（市、区）民政部门 0435-4221234");
    }

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let bytes = to_xlsx("测试村低保公示", &[row()], &contacts()).expect("xlsx");
        assert_eq!(&bytes[..2], b"PK");
    }
}
