//! A run's lists as files an officer opens: one workbook (or CSV) per
//! township or village, a sheet (or a section) per list, headings in
//! Simplified Chinese, identity numbers masked unless the officer's role is
//! entitled to see them in full.
//!
//! A file is a function of the run's stored entries and the masking alone —
//! no clock, no decision made since — so re-running on the same versions
//! exports the same bytes (R-CMP-4). The workbook's creation time is the
//! run's date for the same reason.

use std::borrow::Borrow;

use dibao_proto::labels::Label;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

use crate::engine::Kind;
use crate::entries::StoredEntry;

pub const HEADINGS: [&str; 13] = [
    "序号",
    "名单",
    "村（社区）代码",
    "村（社区）",
    "低保或特困户编号",
    "低保或特困户主",
    "低保或特困人数",
    "建档立卡户编号",
    "建档立卡户主",
    "建档立卡人数",
    "涉及人员身份证号",
    "说明",
    "比对项编号",
];

/// One household of an entry, from its stored form
/// `id|village|head|members|number`: the roster's own number (户编号), by
/// which officers know it — never the internal id — the head and the size.
fn household(s: &str) -> (&str, &str, &str) {
    let mut parts = s.split('|');
    let _id = parts.next();
    let _village = parts.next();
    let head = parts.next().unwrap_or("");
    let n = parts.next().unwrap_or("");
    let number = parts.next().filter(|n| !n.is_empty()).unwrap_or("—");
    (number, head, n)
}

fn mask(id: &str, full: bool) -> String {
    if full || id.len() != 18 {
        return id.to_owned();
    }
    format!("{}********{}", &id[..6], &id[14..])
}

/// The cells of one entry under [`HEADINGS`].
pub fn cells(ordinal: usize, e: &StoredEntry, full_identity: bool) -> [String; 13] {
    let side = |list: &[String]| {
        let hs: Vec<(&str, &str, &str)> = list.iter().map(|h| household(h)).collect();
        (
            hs.iter().map(|h| h.0).collect::<Vec<_>>().join("、"),
            hs.iter().map(|h| h.1).collect::<Vec<_>>().join("、"),
            hs.iter().map(|h| h.2).collect::<Vec<_>>().join("、"),
        )
    };
    let (d_ids, d_heads, d_sizes) = side(&e.dibao);
    let (p_ids, p_heads, p_sizes) = side(&e.poor);
    [
        (ordinal + 1).to_string(),
        format!("（{}）{}", e.kind.letter(), e.kind.label()),
        e.village.clone(),
        // By name (R-ROSTER-3); empty where the tables lack one.
        dibao_proto::divisions::village_place(&e.village).unwrap_or_default(),
        d_ids,
        d_heads,
        d_sizes,
        p_ids,
        p_heads,
        p_sizes,
        e.members.iter().map(|m| mask(m, full_identity)).collect::<Vec<_>>().join("、"),
        e.explanation.clone(),
        e.id.clone(),
    ]
}

/// CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
/// Chinese right), lists one after another.
pub fn to_csv<E: Borrow<StoredEntry>>(entries: &[E], full_identity: bool) -> Vec<u8> {
    dibao_platform::files::tabular::csv_document(
        &HEADINGS,
        entries.iter().enumerate().map(|(i, e)| cells(i, e.borrow(), full_identity)),
    )
}

/// An xlsx workbook with one sheet per list that has entries (sheet names
/// "（a）…" as officers call them), created "at" `run_date`.
pub fn to_xlsx(entries: &[StoredEntry], full_identity: bool, run_date: time::Date) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_ymd(run_date.year() as u16, run_date.month() as u8, run_date.day())?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created).set_author("dibao-mesh 台账比对"));
    let bold = Format::new().set_bold();
    for kind in Kind::ALL {
        let of_kind: Vec<&StoredEntry> = entries.iter().filter(|e| e.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let sheet = workbook.add_worksheet();
        sheet.set_name(format!("（{}）", kind.letter()))?;
        for (c, h) in HEADINGS.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, *h, &bold)?;
        }
        for (i, e) in of_kind.iter().enumerate() {
            // Everything as text: identity numbers and household numbers are
            // not numbers, and a spreadsheet must not round them.
            for (c, v) in cells(i, e, full_identity).iter().enumerate() {
                sheet.write_string(1 + i as u32, c as u16, v)?;
            }
        }
        for (c, w) in [6, 34, 14, 22, 10, 8, 22, 10, 8, 24, 48, 30].into_iter().enumerate() {
            sheet.set_column_width(c as u16, w)?;
        }
    }
    if entries.is_empty() {
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "本范围内无比对结果")?;
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> StoredEntry {
        StoredEntry {
            id: "0f3a".into(),
            key: "f|DB1||52010219800101001X".into(),
            kind: Kind::DeceasedPaid,
            village: "520102101201".into(),
            dibao: vec!["DB1|520102101201|王建国|3".into()],
            poor: vec![],
            members: vec!["52010219800101001X".into()],
            explanation: "王建国经公安登记于2026-03-01死亡，仍在保障家庭成员中享受待遇".into(),
        }
    }

    #[test]
    fn identity_numbers_are_masked_unless_entitled() {
        let masked = String::from_utf8(to_csv(&[entry()], false)).expect("utf8");
        assert!(masked.contains("520102********001X") && !masked.contains("52010219800101001X"));
        let full = String::from_utf8(to_csv(&[entry()], true)).expect("utf8");
        assert!(full.contains("52010219800101001X"));
        assert!(masked.starts_with('\u{feff}'));
    }

    #[test]
    fn the_same_entries_make_the_same_bytes() {
        let day = time::macros::date!(2026 - 11 - 01);
        let a = to_xlsx(&[entry()], false, day).expect("xlsx");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = to_xlsx(&[entry()], false, day).expect("xlsx");
        assert_eq!(a, b);
    }
}
