//! Public notice lists (R-PROC-3): what a village posts and the county keeps
//! on long-term notice. Names, household size, income and amount; identity
//! numbers masked; health details (disability, illness) never appear.

use dibao_proto::types::{Fen, IdentityNumber};

pub struct NoticeRow {
    pub village: String,
    pub head_name: String,
    pub head_identity: IdentityNumber,
    pub household_size: usize,
    /// Per-capita monthly income, where the household's income is on file.
    pub per_capita_income: Option<Fen>,
    pub category: &'static str,
    pub monthly_amount: Fen,
}

/// What the notice says a household receives: special hardship, or the dibao category.
pub fn category_label(programme: i32, category: i32) -> &'static str {
    use dibao_proto::events::v1::{BenefitCategory, Programme};
    if programme == Programme::SpecialHardship as i32 {
        return "特困供养";
    }
    match BenefitCategory::try_from(category) {
        Ok(BenefitCategory::A) => "低保A类",
        Ok(BenefitCategory::B) => "低保B类",
        Ok(BenefitCategory::C) => "低保C类",
        _ => "低保",
    }
}

const HEADERS: [&str; 8] = [
    "序号",
    "所在村",
    "户主姓名",
    "户主身份证号（已隐去）",
    "家庭人口",
    "家庭人均月收入（元）",
    "保障类别",
    "月保障金（元）",
];

/// Yuan with two decimals, without the unit, for table cells.
fn yuan(f: Fen) -> String {
    let s = f.to_string();
    s.trim_end_matches('元').to_owned()
}

fn cells(i: usize, r: &NoticeRow) -> [String; 8] {
    [
        (i + 1).to_string(),
        r.village.clone(),
        r.head_name.clone(),
        r.head_identity.masked(),
        r.household_size.to_string(),
        r.per_capita_income.map(yuan).unwrap_or_else(|| "—".to_owned()),
        r.category.to_owned(),
        yuan(r.monthly_amount),
    ]
}

/// CSV, UTF-8 with a byte-order mark so that Excel opens the Chinese text.
pub fn to_csv(rows: &[NoticeRow]) -> Vec<u8> {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
    }
    let mut out = String::from("\u{feff}");
    out.push_str(&HEADERS.join(","));
    out.push_str("\r\n");
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = cells(i, r).iter().map(|c| field(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// The same table as an xlsx workbook with a title row.
pub fn to_xlsx(title: &str, rows: &[NoticeRow]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("公示名单")?;
    let bold = Format::new().set_bold();
    sheet.write_string_with_format(0, 0, title, &bold)?;
    for (c, h) in HEADERS.iter().enumerate() {
        sheet.write_string_with_format(1, c as u16, *h, &bold)?;
    }
    for (i, r) in rows.iter().enumerate() {
        for (c, v) in cells(i, r).iter().enumerate() {
            // Amounts stay text: money is never a float, not even in a spreadsheet.
            sheet.write_string(2 + i as u32, c as u16, v)?;
        }
    }
    for (c, w) in [6, 14, 10, 22, 8, 18, 10, 14].into_iter().enumerate() {
        sheet.set_column_width(c as u16, w)?;
    }
    workbook.save_to_buffer()
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
            category: "低保C类",
            monthly_amount: Fen(56_500),
        }
    }

    #[test]
    fn csv_masks_identity_numbers_and_quotes_fields() {
        let csv = String::from_utf8(to_csv(&[row()])).expect("utf8");
        assert!(csv.starts_with('\u{feff}'));
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines[0], HEADERS.join(","));
        assert_eq!(lines[1], "1,220581101201,\"王建国, \"\"老王\"\"\",110105********002X,4,267.50,低保C类,565.00");
    }

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let bytes = to_xlsx("测试村低保公示", &[row()]).expect("xlsx");
        assert_eq!(&bytes[..2], b"PK");
    }
}
