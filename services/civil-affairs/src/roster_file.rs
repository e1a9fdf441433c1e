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

use dibao_platform::files::tabular::{self, Columns, Line};
use dibao_proto::civil_affairs::v1::{
    Household, ImportRosterRequest, Member, SelfCare, SinglePersonReason, WorkAbility,
};
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Money, Person, Relation, RowError};
use dibao_proto::events::v1::{BenefitCategory, Programme};
use dibao_proto::types::{Fen, relation_from_zh};

/// Column headings, in the order written by [`write_csv_header`].
pub const COLUMNS: [&str; 17] = [
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
    // The payee (社会化发放), on the household's first line; the head holds the account.
    "开户银行",
    "账号",
    // A special-hardship person's, setting their care standard (R-ELIG-3).
    "生活自理能力",
];
const REQUIRED: [usize; 9] = [0, 1, 2, 3, 4, 6, 7, 8, 12];

pub use dibao_platform::files::tabular::{FileError, Report};

/// One household read from the file, or why it could not be.
pub type Parsed = Result<ImportRosterRequest, Vec<RowError>>;

/// Reads a roster file by its extension (`.csv` or `.xlsx`); a CSV file is
/// streamed, memory staying at one household whatever its size.
pub fn open(path: &Path) -> Result<Households, FileError> {
    Ok(Households(tabular::open(path, &COLUMNS, &REQUIRED)?))
}

/// Reads CSV from any reader.
pub fn csv(reader: impl Read + Send + 'static) -> Result<Households, FileError> {
    Ok(Households(tabular::csv(reader, &COLUMNS, &REQUIRED)?))
}

/// The households of a roster file, in file order.
pub struct Households(tabular::Table);

impl Iterator for Households {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        Some(match self.0.next()? {
            Ok(lines) => household(&self.0.columns, &lines),
            Err(e) => Err(vec![RowError { row: e.line, field: String::new(), message: e.message }]),
        })
    }
}

fn household(columns: &Columns, lines: &[Line]) -> Parsed {
    {
        let head = &lines[0];
        let first = head.number;
        let key = columns.get(head, 0);
        let mut errors = Vec::new();
        let mut error = |line: i64, column: usize, message: String| {
            errors.push(RowError { row: line, field: columns.heading(column).to_owned(), message })
        };
        if key.is_empty() {
            error(first, 0, "户编号不能为空".into());
        }
        // Household-level columns are read from the first line of the household.
        let programme = match columns.get(head, 5) {
            "" | "低保" | "最低生活保障" => Programme::Dibao,
            "特困" | "特困供养" | "特困人员" => Programme::SpecialHardship,
            other => {
                error(first, 5, format!("“{other}”无法识别，应为“低保”或“特困”"));
                Programme::Unspecified
            }
        };
        let category = match columns.get(head, 6).trim_end_matches('类') {
            "A" | "a" => BenefitCategory::A,
            "B" | "b" => BenefitCategory::B,
            "C" | "c" => BenefitCategory::C,
            "" if programme == Programme::SpecialHardship => BenefitCategory::A,
            other => {
                error(first, 6, format!("“{other}”无法识别，应为A类、B类或C类"));
                BenefitCategory::Unspecified
            }
        };
        let amount = Fen::parse_yuan(columns.get(head, 7)).map_err(|e| error(first, 7, e.reason)).ok();
        let enrolled_on = tabular::date(columns.get(head, 8)).map_err(|m| error(first, 8, m)).ok();
        let single = match columns.get(head, 13) {
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
        let (bank, account) = (columns.get(head, 14).trim(), columns.get(head, 15).trim());
        let payee = (!bank.is_empty() || !account.is_empty()).then(|| dibao_proto::civil_affairs::v1::Payee {
            bank: bank.to_owned(),
            account: account.to_owned(),
            holder_name: lines
                .iter()
                .find(|l| relation_from_zh(columns.get(l, 4)) == Some(Relation::Head))
                .map(|l| columns.get(l, 2).to_owned())
                .unwrap_or_default(),
        });
        let mut members = Vec::with_capacity(lines.len());
        for cells in lines {
            let line = cells.number;
            let relation = relation_from_zh(columns.get(cells, 4)).unwrap_or_else(|| {
                error(line, 4, format!("“{}”无法识别，应为户主、配偶、子女、父母等", columns.get(cells, 4)));
                Relation::Unspecified
            });
            let grade = match columns.get(cells, 9) {
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
            let yes_no = |column: usize, errors: &mut dyn FnMut(i64, usize, String)| {
                tabular::yes_no(columns.get(cells, column)).unwrap_or_else(|| {
                    errors(line, column, format!("“{}”无法识别，应为“是”或“否”", columns.get(cells, column)));
                    false
                })
            };
            let serious_illness = yes_no(10, &mut error);
            let covered = yes_no(12, &mut error);
            let work_ability = match columns.get(cells, 11) {
                "" => WorkAbility::Unspecified,
                "完全" | "有劳动能力" | "健康" => WorkAbility::Full,
                "部分" | "部分丧失劳动能力" | "弱劳动力" => WorkAbility::Partial,
                "无" | "丧失劳动能力" | "无劳动能力" => WorkAbility::None,
                other => {
                    error(line, 11, format!("“{other}”无法识别，应为完全、部分或无"));
                    WorkAbility::Unspecified
                }
            };
            let self_care = match columns.get(cells, 16) {
                "" => SelfCare::Unspecified,
                "自理" | "能够自理" | "生活能够自理" | "全自理" => SelfCare::Full,
                "半失能" | "部分失能" | "部分丧失" | "部分丧失生活自理能力" => SelfCare::Partial,
                "失能" | "完全失能" | "全失能" | "完全丧失" | "完全丧失生活自理能力" => {
                    SelfCare::None
                }
                other => {
                    error(line, 16, format!("“{other}”无法识别，应为自理、半失能或失能"));
                    SelfCare::Unspecified
                }
            };
            members.push(Member {
                person: Some(Person {
                    identity_number: Some(IdentityNumber { value: columns.get(cells, 3).to_owned() }),
                    name: columns.get(cells, 2).to_owned(),
                    sex: 0,
                    birth_date: None,
                }),
                relation: relation as i32,
                disability_grade: grade,
                serious_illness,
                work_ability: work_ability as i32,
                covered,
                self_care: self_care as i32,
            });
            // Household-level columns must agree on every line of the household.
            for column in [1, 5, 6, 7, 8] {
                let (here, there) = (columns.get(cells, column), columns.get(head, column));
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
                village: Some(DivisionCode { code: columns.get(head, 1).to_owned() }),
                programme: programme as i32,
                category: category as i32,
                members,
                single_person_reason: single as i32,
                monthly_amount: amount.map(|f| Money { fen: f.0 }),
                enrolled_on,
                payee,
                ..Default::default()
            }),
        })
    }
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
        } else if f.ends_with("self_care") {
            "生活自理能力"
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
        "household.payee.bank" => "开户银行",
        "household.payee.account" | "household.payee.holder_name" => "账号",
        _ => "户编号",
    };
    (error.row, column)
}

/// Streams the households read from a file to the service's `ImportRoster`
/// (each applied whole or not at all on the service side) and gathers one
/// report: what the file could not say and what the service refused.
pub async fn import(
    client: &mut dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient<
        dibao_platform::runtime::server::CallerChannel,
    >,
    parsed: impl Iterator<Item = Parsed> + Send + 'static,
) -> Result<Report, tonic::Status> {
    let records = parsed.map(|p| p.map_err(|e| e.into_iter().map(|e| (e.row, e.field, e.message)).collect()));
    tabular::stream_import(records, |rows| async move {
        let response = client.import_roster(rows).await?.into_inner();
        let errors = response
            .errors
            .iter()
            .map(|e| {
                let (line, column) = locate(e);
                (line, column.to_owned(), e.message.clone())
            })
            .collect();
        Ok(tabular::Answer { applied: response.households_applied, unchanged: response.households_unchanged, errors })
    })
    .await
}

/// The heading row of a roster file, for officers starting one.
pub fn write_csv_header(out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all("\u{feff}".as_bytes())?;
    writeln!(out, "{}", COLUMNS.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dibao_proto::common::v1::Date;

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
