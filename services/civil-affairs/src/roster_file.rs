//! A county's existing roster (花名册) as the counties keep it: one line per
//! member in CSV or xlsx, members of a household on consecutive lines under
//! the same household number (户编号). Columns are found by their heading,
//! in any order; [`COLUMNS`] lists them.
//!
//! Reading turns lines into [`ImportRosterRequest`]s, one per household,
//! carrying the line of its first member; what cannot be read (an amount
//! that is not money, an unknown relation) is reported per line and column
//! and the household is left out. [`locate`] turns the service's field paths
//! back into a line and a column, so every error an officer sees names the
//! cell to fix.

use std::io::Read;
use std::path::Path;

use dibao_proto::civil_affairs::v1::{
    Household, ImportRosterRequest, Member, RowError, SinglePersonReason, WorkAbility,
};
use dibao_proto::common::v1::{Date, DivisionCode, IdentityNumber, Money, Person, Relation};
use dibao_proto::events::v1::{BenefitCategory, Programme};
use dibao_proto::types::Fen;

/// Column headings, in the order written by [`write_csv_header`].
pub const COLUMNS: [&str; 14] = [
    "户编号",
    "村（社区）代码",
    "姓名",
    "身份证号",
    "与户主关系",
    "保障类型",
    "保障类别",
    "月保障金（元）",
    "纳入日期",
    "残疾等级",
    "是否重病",
    "劳动能力",
    "是否享受",
    "单人户原因",
];
const REQUIRED: [usize; 9] = [0, 1, 2, 3, 4, 6, 7, 8, 12];

#[derive(Debug)]
pub enum FileError {
    Io(std::io::Error),
    Csv(csv::Error),
    Xlsx(String),
    /// Required columns the heading row lacks.
    MissingColumns(Vec<&'static str>),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "无法读取文件：{e}"),
            Self::Csv(e) => write!(f, "CSV文件格式有误：{e}"),
            Self::Xlsx(e) => write!(f, "xlsx文件无法打开：{e}"),
            Self::MissingColumns(c) => write!(f, "表头缺少以下列：{}", c.join("、")),
        }
    }
}

impl std::error::Error for FileError {}

/// One household read from the file, or why it could not be.
pub type Parsed = Result<ImportRosterRequest, Vec<RowError>>;

/// Reads a file by its extension (`.csv` or `.xlsx`).
pub fn open(path: &Path) -> Result<Box<dyn Iterator<Item = Parsed> + Send>, FileError> {
    let is_xlsx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if is_xlsx {
        Ok(Box::new(xlsx(path)?))
    } else {
        Ok(Box::new(csv(std::fs::File::open(path).map_err(FileError::Io)?)?))
    }
}

/// Streams a CSV roster (UTF-8, with or without a byte-order mark); memory
/// stays at one household whatever the file's size.
pub fn csv(reader: impl Read + Send + 'static) -> Result<impl Iterator<Item = Parsed> + Send, FileError> {
    let mut r = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(reader);
    let headings: Vec<String> = r.headers().map_err(FileError::Csv)?.iter().map(str::to_owned).collect();
    let index = columns(&headings)?;
    // Line 1 is the heading; a record's line is its position in the file.
    let lines = r.into_records().enumerate().map(|(i, rec)| {
        let line = i as i64 + 2;
        match rec {
            Ok(rec) => Ok((line, rec.iter().map(str::to_owned).collect())),
            Err(e) => {
                Err(vec![RowError { row: line, field: String::new(), message: format!("CSV格式有误：{e}") }])
            }
        }
    });
    Ok(Households::new(index, lines))
}

/// Reads the first sheet of an xlsx roster.
pub fn xlsx(path: &Path) -> Result<impl Iterator<Item = Parsed> + Send + use<>, FileError> {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut book: Xlsx<_> = open_workbook(path).map_err(|e: calamine::XlsxError| FileError::Xlsx(e.to_string()))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| FileError::Xlsx("工作簿中没有工作表".into()))?
        .map_err(|e| FileError::Xlsx(e.to_string()))?;
    let text = |c: &Data| match c {
        // Numbers typed into cells (household numbers, grades) read back as written.
        Data::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
        other => other.to_string(),
    };
    let start = range.start().map_or(0, |(row, _)| row as i64);
    let mut rows = range.rows().enumerate();
    let headings: Vec<String> = rows.next().map(|(_, r)| r.iter().map(text).collect()).unwrap_or_default();
    let index = columns(&headings)?;
    let lines: Vec<_> = rows.map(|(i, r)| Ok((start + i as i64 + 1, r.iter().map(text).collect::<Vec<_>>()))).collect();
    Ok(Households::new(index, lines.into_iter()))
}

fn columns(headings: &[String]) -> Result<[Option<usize>; 14], FileError> {
    let mut index = [None; 14];
    for (i, h) in headings.iter().enumerate() {
        let h = h.trim().trim_start_matches('\u{feff}');
        if let Some(c) = COLUMNS.iter().position(|c| *c == h) {
            index[c] = Some(i);
        }
    }
    let missing: Vec<_> = REQUIRED.iter().filter(|c| index[**c].is_none()).map(|c| COLUMNS[*c]).collect();
    if missing.is_empty() { Ok(index) } else { Err(FileError::MissingColumns(missing)) }
}

type Line = Result<(i64, Vec<String>), Vec<RowError>>;

/// Groups consecutive lines with the same household number.
struct Households<I: Iterator<Item = Line>> {
    index: [Option<usize>; 14],
    lines: std::iter::Peekable<I>,
}

impl<I: Iterator<Item = Line>> Households<I> {
    fn new(index: [Option<usize>; 14], lines: I) -> Self {
        Self { index, lines: lines.peekable() }
    }

    fn cell<'a>(&self, cells: &'a [String], column: usize) -> &'a str {
        cell(&self.index, cells, column)
    }
}

fn cell<'a>(index: &[Option<usize>; 14], cells: &'a [String], column: usize) -> &'a str {
    index[column].and_then(|i| cells.get(i)).map_or("", |s| s.trim())
}

impl<I: Iterator<Item = Line>> Iterator for Households<I> {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        let (first, cells) = loop {
            match self.lines.next()? {
                Err(e) => return Some(Err(e)),
                // Blank lines (often at the end of a sheet) are skipped.
                Ok((_, cells)) if cells.iter().all(|c| c.trim().is_empty()) => continue,
                Ok(line) => break line,
            }
        };
        let key = self.cell(&cells, 0).to_owned();
        let mut members = vec![(first, cells)];
        let index = self.index;
        while let Some(Ok((_, next))) = self.lines.peek() {
            if key.is_empty() || cell(&index, next, 0) != key {
                break;
            }
            if let Some(Ok(line)) = self.lines.next() {
                members.push(line);
            }
        }
        Some(self.household(first, &key, &members))
    }
}

impl<I: Iterator<Item = Line>> Households<I> {
    fn household(&self, first: i64, key: &str, lines: &[(i64, Vec<String>)]) -> Parsed {
        let mut errors = Vec::new();
        let mut error = |line: i64, column: usize, message: String| {
            errors.push(RowError { row: line, field: COLUMNS[column].to_owned(), message })
        };
        if key.is_empty() {
            error(first, 0, "户编号不能为空".into());
        }
        let (_, head) = &lines[0];
        // Household-level columns are read from the first line of the household.
        let programme = match self.cell(head, 5) {
            "" | "低保" | "最低生活保障" => Programme::Dibao,
            "特困" | "特困供养" | "特困人员" => Programme::SpecialHardship,
            other => {
                error(first, 5, format!("“{other}”无法识别，应为“低保”或“特困”"));
                Programme::Unspecified
            }
        };
        let category = match self.cell(head, 6).trim_end_matches('类') {
            "A" | "a" => BenefitCategory::A,
            "B" | "b" => BenefitCategory::B,
            "C" | "c" => BenefitCategory::C,
            "" if programme == Programme::SpecialHardship => BenefitCategory::A,
            other => {
                error(first, 6, format!("“{other}”无法识别，应为A类、B类或C类"));
                BenefitCategory::Unspecified
            }
        };
        let amount = Fen::parse_yuan(self.cell(head, 7)).map_err(|e| error(first, 7, e.reason)).ok();
        let enrolled_on = parse_date(self.cell(head, 8)).map_err(|m| error(first, 8, m)).ok();
        let single = match self.cell(head, 13) {
            "" => SinglePersonReason::Unspecified,
            "重度残疾单独施保" | "重残单独施保" => SinglePersonReason::SevereDisabilityAlone,
            "重度残疾由兄弟姐妹赡养" | "重残兄弟姐妹赡养" => {
                SinglePersonReason::SevereDisabilitySupported
            }
            "宗教教职人员" => SinglePersonReason::Clergy,
            other => {
                error(first, 13, format!("“{other}”不是可单独立户的情形（R-ROSTER-4）"));
                SinglePersonReason::Unspecified
            }
        };
        let mut members = Vec::with_capacity(lines.len());
        for (line, cells) in lines {
            let line = *line;
            let relation = match self.cell(cells, 4) {
                "户主" | "本人" => Relation::Head,
                "配偶" | "妻" | "夫" | "妻子" | "丈夫" => Relation::Spouse,
                "子女" | "子" | "女" | "儿子" | "女儿" | "长子" | "长女" | "次子" | "次女" => {
                    Relation::Child
                }
                "父母" | "父亲" | "母亲" | "父" | "母" => Relation::Parent,
                "孙子女" | "孙子" | "孙女" | "外孙子" | "外孙女" => Relation::Grandchild,
                "祖父母" | "祖父" | "祖母" | "外祖父" | "外祖母" => Relation::Grandparent,
                "兄弟姐妹" | "兄" | "弟" | "姐" | "妹" => Relation::Sibling,
                "儿媳" | "女婿" => Relation::ChildInLaw,
                "其他" => Relation::Other,
                other => {
                    error(line, 4, format!("“{other}”无法识别，应为户主、配偶、子女、父母等"));
                    Relation::Unspecified
                }
            };
            let grade = match self.cell(cells, 9) {
                "" | "0" | "无" => 0,
                "1" | "一级" => 1,
                "2" | "二级" => 2,
                "3" | "三级" => 3,
                "4" | "四级" => 4,
                other => {
                    error(line, 9, format!("“{other}”无法识别，应为一级至四级或留空"));
                    0
                }
            };
            let yes_no = |column: usize, errors: &mut dyn FnMut(i64, usize, String)| match self.cell(cells, column) {
                "是" | "Y" | "y" => true,
                "" | "否" | "N" | "n" => false,
                other => {
                    errors(line, column, format!("“{other}”无法识别，应为“是”或“否”"));
                    false
                }
            };
            let serious_illness = yes_no(10, &mut error);
            let covered = yes_no(12, &mut error);
            let work_ability = match self.cell(cells, 11) {
                "" => WorkAbility::Unspecified,
                "完全" | "有劳动能力" | "健康" => WorkAbility::Full,
                "部分" | "部分丧失劳动能力" | "弱劳动力" => WorkAbility::Partial,
                "无" | "丧失劳动能力" | "无劳动能力" => WorkAbility::None,
                other => {
                    error(line, 11, format!("“{other}”无法识别，应为完全、部分或无"));
                    WorkAbility::Unspecified
                }
            };
            members.push(Member {
                person: Some(Person {
                    identity_number: Some(IdentityNumber { value: self.cell(cells, 3).to_owned() }),
                    name: self.cell(cells, 2).to_owned(),
                    sex: 0,
                    birth_date: None,
                }),
                relation: relation as i32,
                disability_grade: grade,
                serious_illness,
                work_ability: work_ability as i32,
                covered,
            });
            // Household-level columns must agree on every line of the household.
            for column in [1, 5, 6, 7, 8] {
                let (here, there) = (self.cell(cells, column), self.cell(head, column));
                if !here.is_empty() && here != there {
                    error(line, column, format!("同一户各成员的“{}”应一致，首行为“{there}”", COLUMNS[column]));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ImportRosterRequest {
            row: first,
            household: Some(Household {
                household_id: key.to_owned(),
                village: Some(DivisionCode { code: self.cell(head, 1).to_owned() }),
                programme: programme as i32,
                category: category as i32,
                members,
                single_person_reason: single as i32,
                monthly_amount: amount.map(|f| Money { fen: f.0 }),
                enrolled_on,
                ..Default::default()
            }),
        })
    }
}

fn parse_date(s: &str) -> Result<Date, String> {
    let bad = || format!("日期“{s}”应写作年-月-日，如2025-03-01");
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let (year, month, day) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    let date = Date { year, month, day };
    time::Date::try_from(&date).map_err(|_| bad())?;
    Ok(date)
}

/// The line and column an error from the service points at: member fields
/// to the member's line (members are on consecutive lines from the
/// household's first), household fields to the household's first line.
pub fn locate(error: &RowError) -> (i64, &'static str) {
    let f = error.field.as_str();
    let line_of = |i: usize| error.row + i as i64;
    if let Some(rest) = f.strip_prefix("household.members[") {
        let i: usize = rest.split(']').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let column = if f.ends_with("identity_number") {
            "身份证号"
        } else if f.ends_with("name") {
            "姓名"
        } else if f.ends_with("relation") {
            "与户主关系"
        } else if f.ends_with("disability_grade") {
            "残疾等级"
        } else if f.ends_with("work_ability") {
            "劳动能力"
        } else if f.ends_with("covered") {
            "是否享受"
        } else {
            "姓名"
        };
        return (line_of(i), column);
    }
    let column = match f {
        "household.household_id" => "户编号",
        "household.village" => "村（社区）代码",
        "household.category" | "household.covered" => "保障类别",
        "household.monthly_amount" => "月保障金（元）",
        "household.enrolled_on" => "纳入日期",
        "household.single_person_reason" | "household.members" => "单人户原因",
        _ => "户编号",
    };
    (error.row, column)
}

/// What an import did, each error at its line and column.
#[derive(Debug, Default)]
pub struct Report {
    pub households_read: i64,
    pub applied: i64,
    pub unchanged: i64,
    /// (line, column, message), in line order.
    pub errors: Vec<(i64, String, String)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rejected: std::collections::BTreeSet<i64> = self.errors.iter().map(|e| e.0).collect();
        writeln!(
            f,
            "读取{}户：新增或更新{}户，未变化{}户，有误{}行（有误的户未导入，其余已导入）。",
            self.households_read,
            self.applied,
            self.unchanged,
            rejected.len()
        )?;
        for (line, column, message) in &self.errors {
            writeln!(f, "  第{line}行【{column}】{message}")?;
        }
        Ok(())
    }
}

/// Streams the households read from a file to the service's `ImportRoster`
/// (each applied whole or not at all on the service side) and gathers one
/// report: what the file could not say and what the service refused.
pub async fn import(
    client: &mut dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient<
        tonic::transport::Channel,
    >,
    parsed: impl Iterator<Item = Parsed> + Send + 'static,
) -> Result<Report, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    // Reading the file blocks; it runs beside the stream, a bounded channel apart.
    let reader = tokio::task::spawn_blocking(move || {
        let (mut read, mut errors) = (0i64, Vec::new());
        for household in parsed {
            read += 1;
            match household {
                Ok(request) => {
                    if tx.blocking_send(request).is_err() {
                        break;
                    }
                }
                Err(e) => errors.extend(e.into_iter().map(|e| (e.row, e.field, e.message))),
            }
        }
        (read, errors)
    });
    let response = client.import_roster(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
    let (households_read, mut errors) = reader.await.map_err(|e| tonic::Status::internal(e.to_string()))?;
    errors.extend(response.errors.iter().map(|e| {
        let (line, column) = locate(e);
        (line, column.to_owned(), e.message.clone())
    }));
    errors.sort_by_key(|e| e.0);
    Ok(Report {
        households_read,
        applied: response.households_applied,
        unchanged: response.households_unchanged,
        errors,
    })
}

/// The heading row of a roster file, for officers starting one.
pub fn write_csv_header(out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all("\u{feff}".as_bytes())?;
    writeln!(out, "{}", COLUMNS.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "户编号,村（社区）代码,姓名,身份证号,与户主关系,保障类型,保障类别,月保障金（元）,纳入日期,残疾等级,是否重病,劳动能力,是否享受";

    fn read(body: &str) -> Vec<Parsed> {
        csv(std::io::Cursor::new(format!("\u{feff}{HEAD}\n{body}").into_bytes())).expect("csv").collect()
    }

    #[test]
    fn members_on_consecutive_lines_make_one_household() {
        let parsed = read(
            "H1,220581101201,王建国,11010519491231002X,户主,低保,C类,565.50,2025-03-01,,否,部分,是\n\
             H1,220581101201,李秀英,110105195001010018,配偶,低保,C类,565.50,2025-03-01,二级,是,无,是\n\
             \n\
             H2,220581101202,张三,110105195001010026,户主,特困,,800,2024/1/5,,,无,是\n",
        );
        assert_eq!(parsed.len(), 2);
        let h1 = parsed[0].as_ref().expect("h1");
        assert_eq!(h1.row, 2);
        let h = h1.household.as_ref().expect("household");
        assert_eq!(h.members.len(), 2);
        assert_eq!(h.monthly_amount, Some(Money { fen: 56_550 }));
        assert_eq!(h.members[1].disability_grade, 2);
        assert!(h.members[1].serious_illness);
        let h2 = parsed[1].as_ref().expect("h2").household.as_ref().expect("household");
        assert_eq!(h2.programme, Programme::SpecialHardship as i32);
        assert_eq!(h2.category, BenefitCategory::A as i32);
        assert_eq!(h2.enrolled_on, Some(Date { year: 2024, month: 1, day: 5 }));
    }

    #[test]
    fn unreadable_cells_are_reported_by_line_and_column() {
        let parsed = read(
            "H1,220581101201,王建国,11010519491231002X,户主,低保,D类,5六5,2025-02-30,,否,部分,是\n\
             H1,220581101201,李秀英,110105195001010018,表亲,低保,D类,5六5,2025-02-30,,否,无,是\n\
             H2,220581101202,张三,110105195001010026,户主,低保,A,800,2024-01-05,,,无,是\n",
        );
        let errors = parsed[0].as_ref().expect_err("h1");
        let at: Vec<(i64, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(at, [(2, "保障类别"), (2, "月保障金（元）"), (2, "纳入日期"), (3, "与户主关系")]);
        assert!(parsed[1].is_ok(), "the next household is read on its own");
    }

    #[test]
    fn a_missing_column_is_named() {
        let e = csv(std::io::Cursor::new(b"\xe6\x88\xb7\xe7\xbc\x96\xe5\x8f\xb7\n".to_vec())).err().expect("missing");
        assert!(e.to_string().contains("身份证号"), "{e}");
    }

    #[test]
    fn service_errors_point_back_at_the_cell() {
        let e =
            RowError { row: 7, field: "household.members[2].person.identity_number".into(), message: String::new() };
        assert_eq!(locate(&e), (9, "身份证号"));
        let e = RowError { row: 7, field: "household.monthly_amount".into(), message: String::new() };
        assert_eq!(locate(&e), (7, "月保障金（元）"));
    }
}
