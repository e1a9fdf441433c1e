//! The two registers as departments hand them over (CSV or xlsx, columns
//! found by their heading): public security's death register
//! ([`DEATH_COLUMNS`]) and the registry of dibao handlers and village
//! committee members with their close relatives ([`OFFICIAL_COLUMNS`]: one
//! line per person, the official's own line with relation 本人). The
//! registry covers the county of its first line's village.

use std::path::Path;

use dibao_platform::files::tabular::{self, CellError, Columns, Line};
pub use dibao_platform::files::tabular::{FileError, Report};
use dibao_platform::runtime::server::CallerChannel as Channel;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber};
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::comparison::v1::{ImportDeathRegisterRequest, ImportOfficialsRequest, OfficialRole, RegisterImport};

pub const DEATH_COLUMNS: [&str; 4] = ["身份证号", "姓名", "死亡日期", "信息来源"];
const DEATH_REQUIRED: [usize; 3] = [0, 1, 2];

pub const OFFICIAL_COLUMNS: [&str; 7] =
    ["干部身份证号", "干部姓名", "身份", "所在村（社区）代码", "人员身份证号", "人员姓名", "关系"];
const OFFICIAL_REQUIRED: [usize; 7] = [0, 1, 2, 3, 4, 5, 6];

/// A register file as read: its columns, its lines, and the lines that
/// could not be read at all (reported like any wrong line, the rest imported).
pub struct RegisterFile {
    pub columns: Columns,
    pub lines: Vec<Line>,
    pub unreadable: Vec<CellError>,
}

pub fn open_deaths(path: &Path) -> Result<RegisterFile, FileError> {
    all_lines(tabular::open(path, &DEATH_COLUMNS, &DEATH_REQUIRED)?)
}

pub fn open_officials(path: &Path) -> Result<RegisterFile, FileError> {
    all_lines(tabular::open(path, &OFFICIAL_COLUMNS, &OFFICIAL_REQUIRED)?)
}

/// Registers are small (a county's deaths of a month, its officials): read whole.
fn all_lines(table: tabular::Table) -> Result<RegisterFile, FileError> {
    let columns = table.columns.clone();
    let (mut lines, mut unreadable) = (Vec::new(), Vec::new());
    for record in table {
        match record {
            Ok(group) => lines.extend(group),
            Err(e) => unreadable.push((e.line, String::new(), e.message)),
        }
    }
    Ok(RegisterFile { columns, lines, unreadable })
}

fn identity(cell: &str) -> Option<IdentityNumber> {
    (!cell.is_empty()).then(|| IdentityNumber { value: cell.to_owned() })
}

/// The death register's lines as import rows; a date that cannot be read
/// is the file's error, at its line and column.
pub fn death_rows(columns: &Columns, lines: &[Line]) -> (Vec<ImportDeathRegisterRequest>, Vec<CellError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for line in lines {
        let died_on = match tabular::date(columns.get(line, 2)) {
            Ok(d) => Some(d),
            Err(m) => {
                errors.push((line.number, columns.heading(2).to_owned(), m));
                continue;
            }
        };
        rows.push(ImportDeathRegisterRequest {
            row: line.number,
            identity_number: identity(columns.get(line, 0)),
            name: columns.get(line, 1).to_owned(),
            died_on,
            source: columns.get(line, 3).to_owned(),
        });
    }
    (rows, errors)
}

/// The registry's lines as import rows, for the county of the first line's village.
pub fn official_rows(columns: &Columns, lines: &[Line]) -> (Vec<ImportOfficialsRequest>, Vec<CellError>) {
    let county: String = lines.first().map(|l| columns.get(l, 3).chars().take(6).collect()).unwrap_or_default();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for line in lines {
        let role = match columns.get(line, 2) {
            "低保经办人员" | "经办人员" => OfficialRole::DibaoHandler,
            "村委会成员" | "村干部" | "村（居）委会成员" => OfficialRole::VillageCommittee,
            other => {
                errors.push((
                    line.number,
                    columns.heading(2).to_owned(),
                    format!("“{other}”无法识别，应为低保经办人员或村委会成员"),
                ));
                continue;
            }
        };
        rows.push(ImportOfficialsRequest {
            row: line.number,
            division: Some(DivisionCode { code: county.clone() }),
            official: identity(columns.get(line, 0)),
            official_name: columns.get(line, 1).to_owned(),
            role: role as i32,
            official_village: Some(DivisionCode { code: columns.get(line, 3).to_owned() }),
            person: identity(columns.get(line, 4)),
            person_name: columns.get(line, 5).to_owned(),
            relation: columns.get(line, 6).to_owned(),
        });
    }
    (rows, errors)
}

/// The file's column an error from the service points at.
fn column_of(field: &str, headings: &[&'static str], fields: &[&str]) -> String {
    fields.iter().position(|f| *f == field).map_or(String::new(), |i| headings[i].to_owned())
}

fn report(answer: RegisterImport, mut errors: Vec<CellError>, headings: &[&'static str], fields: &[&str]) -> Report {
    errors.extend(answer.errors.iter().map(|e| (e.row, column_of(&e.field, headings, fields), e.message.clone())));
    errors.sort_by_key(|e| e.0);
    let rejected: std::collections::BTreeSet<i64> = errors.iter().map(|e| e.0).collect();
    Report {
        records_read: answer.rows_applied + answer.rows_unchanged + rejected.len() as i64,
        applied: answer.rows_applied,
        unchanged: answer.rows_unchanged,
        errors,
    }
}

pub async fn import_deaths(channel: Channel, file: RegisterFile) -> Result<Report, tonic::Status> {
    let (rows, mut errors) = death_rows(&file.columns, &file.lines);
    errors.extend(file.unreadable);
    let answer = ComparisonServiceClient::new(channel)
        .import_death_register(futures_util::stream::iter(rows))
        .await?
        .into_inner()
        .result
        .unwrap_or_default();
    Ok(report(answer, errors, &DEATH_COLUMNS, &["identity_number", "name", "died_on", "source"]))
}

pub async fn import_officials(channel: Channel, file: RegisterFile) -> Result<Report, tonic::Status> {
    let (rows, mut errors) = official_rows(&file.columns, &file.lines);
    errors.extend(file.unreadable);
    if !errors.is_empty() {
        // The registry is one document: nothing is sent while a line is wrong.
        return Ok(report(RegisterImport::default(), errors, &OFFICIAL_COLUMNS, &[]));
    }
    let answer = ComparisonServiceClient::new(channel)
        .import_officials(futures_util::stream::iter(rows))
        .await?
        .into_inner()
        .result
        .unwrap_or_default();
    Ok(report(
        answer,
        errors,
        &OFFICIAL_COLUMNS,
        &["official", "official_name", "role", "official_village", "person", "person_name", "relation"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn death_register_lines_become_rows_and_bad_dates_are_named() {
        let file = "身份证号,姓名,死亡日期\n11010519491231002X,王建国,2026-03-01\n110105195001010039,张三,三月\n";
        let table =
            tabular::csv(std::io::Cursor::new(file.as_bytes().to_vec()), &DEATH_COLUMNS, &DEATH_REQUIRED).expect("csv");
        let file = all_lines(table).expect("lines");
        let (rows, errors) = death_rows(&file.columns, &file.lines);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].row, 2);
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].0, errors[0].1.as_str()), (3, "死亡日期"));
    }

    #[test]
    fn the_registry_covers_the_county_of_its_first_village() {
        let file = "干部身份证号,干部姓名,身份,所在村（社区）代码,人员身份证号,人员姓名,关系\n\
                    11010519491231002X,王主任,村委会成员,110105001001,11010519491231002X,王主任,本人\n\
                    11010519491231002X,王主任,村委会成员,110105001001,110105195001010039,王小明,子女\n\
                    11010519491231002X,王主任,村长,110105001001,110105196001010041,李四,配偶\n";
        let table = tabular::csv(std::io::Cursor::new(file.as_bytes().to_vec()), &OFFICIAL_COLUMNS, &OFFICIAL_REQUIRED)
            .expect("csv");
        let file = all_lines(table).expect("lines");
        let (rows, errors) = official_rows(&file.columns, &file.lines);
        assert_eq!(rows.len(), 2, "the official's lines share a key and still come one by one");
        assert_eq!(rows[1].division.as_ref().map(|d| d.code.as_str()), Some("110105"));
        assert_eq!((errors[0].0, errors[0].1.as_str()), (4, "身份"));
    }
}
