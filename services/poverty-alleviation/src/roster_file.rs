//! The registered-poor roster as counties keep it (CSV or xlsx): one line
//! per member, members of a household on consecutive lines under the same
//! household number (户编号), columns found by their heading ([`COLUMNS`]).
//! Causes and help measures are written on the household's first line,
//! separated by `；`, `、`, `;` or `,`; so is the office's dibao-registered-
//! poor flag (扶贫低保户: 是 or 否, empty for 否), an optional column.

use std::io::Read;
use std::path::Path;

use dibao_platform::files::tabular::{self, CellError, Columns, Line};
pub use dibao_platform::files::tabular::{FileError, Report};
use dibao_proto::common::v1::RowError;
use dibao_proto::common::v1::{DivisionCode, IdentityNumber, Person, Relation};
use dibao_proto::events::v1::{PovertyCause, RosterMember};
use dibao_proto::poverty_alleviation::v1::{HelpMeasure, ImportRosterRequest, PoorHousehold};
use dibao_proto::types::relation_from_zh;

pub const COLUMNS: [&str; 8] =
    ["户编号", "村（社区）代码", "姓名", "身份证号", "与户主关系", "致贫原因", "帮扶措施", "扶贫低保户"];
const REQUIRED: [usize; 6] = [0, 1, 2, 3, 4, 5];

/// One household read from the file, or why it could not be.
pub type Parsed = Result<ImportRosterRequest, Vec<CellError>>;

pub fn open(path: &Path) -> Result<Households, FileError> {
    Ok(Households(tabular::open(path, &COLUMNS, &REQUIRED)?))
}

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
            Err(e) => Err(vec![(e.line, String::new(), e.message)]),
        })
    }
}

fn items(cell: &str) -> impl Iterator<Item = &str> {
    cell.split([';', '；', '、', ',', '，']).map(str::trim).filter(|s| !s.is_empty())
}

fn cause(s: &str) -> Option<PovertyCause> {
    Some(match s {
        "因病" => PovertyCause::Illness,
        "因残" => PovertyCause::Disability,
        "因学" => PovertyCause::Education,
        "因灾" => PovertyCause::Disaster,
        "缺劳力" | "缺劳动力" => PovertyCause::LackOfLabour,
        "缺土地" => PovertyCause::LackOfLand,
        "缺资金" => PovertyCause::LackOfCapital,
        "缺技术" => PovertyCause::LackOfSkills,
        "突发困难" | "因意外" => PovertyCause::SuddenHardship,
        "其他" => PovertyCause::Other,
        _ => return None,
    })
}

fn measure(s: &str) -> Option<HelpMeasure> {
    Some(match s {
        "产业帮扶" => HelpMeasure::IndustrySupport,
        "就业帮扶" => HelpMeasure::EmploymentHelp,
        "教育帮扶" | "教育资助" => HelpMeasure::EducationSupport,
        "健康帮扶" | "医疗救助" => HelpMeasure::HealthSupport,
        "易地搬迁" => HelpMeasure::Relocation,
        "生态补偿" => HelpMeasure::EcologicalCompensation,
        _ => return None,
    })
}

fn household(columns: &Columns, lines: &[Line]) -> Parsed {
    let head = &lines[0];
    let mut errors: Vec<CellError> = Vec::new();
    let mut error =
        |line: i64, column: usize, message: String| errors.push((line, COLUMNS[column].to_owned(), message));
    let key = columns.get(head, 0);
    if key.is_empty() {
        error(head.number, 0, "户编号不能为空".into());
    }
    let mut causes = Vec::new();
    for c in items(columns.get(head, 5)) {
        match cause(c) {
            Some(c) => causes.push(c as i32),
            None => error(
                head.number,
                5,
                format!("“{c}”无法识别，应为因病、因残、因学、因灾、缺劳力、缺土地、缺资金、缺技术、突发困难或其他"),
            ),
        }
    }
    let mut help_measures = Vec::new();
    for m in items(columns.get(head, 6)) {
        match measure(m) {
            Some(m) => help_measures.push(m as i32),
            None => error(
                head.number,
                6,
                format!("“{m}”无法识别，应为产业帮扶、就业帮扶、教育帮扶、健康帮扶、易地搬迁或生态补偿"),
            ),
        }
    }
    let flag = match columns.get(head, 7).trim() {
        "是" => true,
        "否" | "" => false,
        other => {
            error(head.number, 7, format!("“{other}”无法识别，应为“是”或“否”"));
            false
        }
    };
    let mut members = Vec::with_capacity(lines.len());
    for line in lines {
        let relation = relation_from_zh(columns.get(line, 4)).unwrap_or_else(|| {
            error(line.number, 4, format!("“{}”无法识别，应为户主、配偶、子女、父母等", columns.get(line, 4)));
            Relation::Unspecified
        });
        let village = columns.get(line, 1);
        if !village.is_empty() && village != columns.get(head, 1) {
            error(line.number, 1, format!("同一户各成员的村代码应一致，首行为“{}”", columns.get(head, 1)));
        }
        members.push(RosterMember {
            person: Some(Person {
                identity_number: Some(IdentityNumber { value: columns.get(line, 3).to_owned() }),
                name: columns.get(line, 2).to_owned(),
                ..Default::default()
            }),
            relation: relation as i32,
            covered: false,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ImportRosterRequest {
        row: head.number,
        household: Some(PoorHousehold {
            household_id: key.to_owned(),
            village: Some(DivisionCode { code: columns.get(head, 1).to_owned() }),
            members,
            causes,
            help_measures,
            dibao_registered_poor: flag,
            ..Default::default()
        }),
    })
}

/// The line and column an error from the service points at.
pub fn locate(error: &RowError) -> (i64, &'static str) {
    let f = error.field.as_str();
    if let Some(rest) = f.strip_prefix("household.members[") {
        let i: i64 = rest.split(']').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let column = if f.ends_with("name") { "姓名" } else { "身份证号" };
        return (error.row + i, column);
    }
    let column = match f {
        "household.village" => "村（社区）代码",
        "household.causes" => "致贫原因",
        "household.members" => "与户主关系",
        _ => "户编号",
    };
    (error.row, column)
}

/// Streams the file's households to the service's `ImportRoster`.
pub async fn import(
    client: &mut dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient<
        dibao_platform::runtime::server::CallerChannel,
    >,
    parsed: impl Iterator<Item = Parsed> + Send + 'static,
) -> Result<Report, tonic::Status> {
    tabular::stream_import(parsed, |rows| async move {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_and_measures_are_read_from_the_first_line() {
        let body = "户编号,村（社区）代码,姓名,身份证号,与户主关系,致贫原因,帮扶措施,扶贫低保户\n\
                    P1,220581101201,王建国,11010519491231002X,户主,因病；缺劳力,产业帮扶、健康帮扶,是\n\
                    P1,220581101201,王小兰,110105195001010018,女儿,,,\n\
                    P2,220581101201,张三,110105195001010026,表亲,因穷,,不知道\n";
        let parsed: Vec<Parsed> = csv(std::io::Cursor::new(body.as_bytes().to_vec())).expect("csv").collect();
        let h = parsed[0].as_ref().expect("P1").household.clone().expect("household");
        assert_eq!(h.causes, [PovertyCause::Illness as i32, PovertyCause::LackOfLabour as i32]);
        assert_eq!(h.help_measures, [HelpMeasure::IndustrySupport as i32, HelpMeasure::HealthSupport as i32]);
        assert_eq!(h.members[1].relation, Relation::Child as i32);
        assert!(h.dibao_registered_poor, "the office's flag is read from the first line");
        let errors = parsed[1].as_ref().expect_err("P2");
        let at: Vec<(i64, &str)> = errors.iter().map(|e| (e.0, e.1.as_str())).collect();
        assert_eq!(at, [(4, "致贫原因"), (4, "扶贫低保户"), (4, "与户主关系")]);
    }
}
