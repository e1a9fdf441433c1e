//! Tables as counties keep them — CSV (UTF-8, with or without a byte-order
//! mark) or the first sheet of an xlsx workbook: a heading row, columns
//! found by their heading in any order, and records on consecutive lines
//! under the same key (a household's members under its number). Each roster
//! says what its columns mean; this module reads them, and writes the
//! tables the services hand out ([`csv_document`]).

use std::io::Read;
use std::path::Path;

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

/// A line of the file: its number as a spreadsheet shows it, and its cells.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: i64,
    pub cells: Vec<String>,
}

/// A line that could not be read at all.
#[derive(Debug, Clone)]
pub struct LineError {
    pub line: i64,
    pub message: String,
}

/// Where each of a roster's columns is in this file.
#[derive(Debug, Clone)]
pub struct Columns {
    headings: &'static [&'static str],
    index: Vec<Option<usize>>,
}

impl Columns {
    fn find(headings: &'static [&'static str], required: &[usize], found: &[String]) -> Result<Self, FileError> {
        let mut index = vec![None; headings.len()];
        for (i, h) in found.iter().enumerate() {
            let h = h.trim().trim_start_matches('\u{feff}');
            if let Some(c) = headings.iter().position(|c| *c == h) {
                index[c] = Some(i);
            }
        }
        let missing: Vec<_> = required.iter().filter(|c| index[**c].is_none()).map(|c| headings[*c]).collect();
        if missing.is_empty() { Ok(Self { headings, index }) } else { Err(FileError::MissingColumns(missing)) }
    }

    /// The trimmed cell of `column` (its position in the roster's headings); empty when absent.
    pub fn get<'a>(&self, line: &'a Line, column: usize) -> &'a str {
        self.index[column].and_then(|i| line.cells.get(i)).map_or("", |s| s.trim())
    }

    pub fn heading(&self, column: usize) -> &'static str {
        self.headings[column]
    }
}

type Lines = Box<dyn Iterator<Item = Result<Line, LineError>> + Send>;

pub struct Table {
    pub columns: Columns,
    lines: std::iter::Peekable<Lines>,
}

/// Reads a file by its extension (`.xlsx`, else CSV) against a roster's headings.
pub fn open(path: &Path, headings: &'static [&'static str], required: &[usize]) -> Result<Table, FileError> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("xlsx")) {
        xlsx(path, headings, required)
    } else {
        csv(std::fs::File::open(path).map_err(FileError::Io)?, headings, required)
    }
}

/// Streams CSV: memory stays at one record whatever the file's size.
pub fn csv(
    reader: impl Read + Send + 'static,
    headings: &'static [&'static str],
    required: &[usize],
) -> Result<Table, FileError> {
    let mut r = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(reader);
    let found: Vec<String> = r.headers().map_err(FileError::Csv)?.iter().map(str::to_owned).collect();
    let columns = Columns::find(headings, required, &found)?;
    // Line 1 is the heading; a record's line is its position in the file.
    let lines: Lines = Box::new(r.into_records().enumerate().map(|(i, rec)| {
        let number = i as i64 + 2;
        rec.map(|rec| Line { number, cells: rec.iter().map(str::to_owned).collect() })
            .map_err(|e| LineError { line: number, message: format!("CSV格式有误：{e}") })
    }));
    Ok(Table { columns, lines: lines.peekable() })
}

/// Reads the first sheet of an xlsx workbook.
pub fn xlsx(path: &Path, headings: &'static [&'static str], required: &[usize]) -> Result<Table, FileError> {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut book: Xlsx<_> = open_workbook(path).map_err(|e: calamine::XlsxError| FileError::Xlsx(e.to_string()))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| FileError::Xlsx("工作簿中没有工作表".into()))?
        .map_err(|e| FileError::Xlsx(e.to_string()))?;
    let text = |c: &Data| match c {
        // Numbers typed into cells (codes, grades) read back as written.
        Data::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
        other => other.to_string(),
    };
    let start = range.start().map_or(0, |(row, _)| i64::from(row));
    let mut rows = range.rows().enumerate();
    let found: Vec<String> = rows.next().map(|(_, r)| r.iter().map(text).collect()).unwrap_or_default();
    let columns = Columns::find(headings, required, &found)?;
    let lines: Vec<_> =
        rows.map(|(i, r)| Ok(Line { number: start + i as i64 + 1, cells: r.iter().map(text).collect() })).collect();
    let lines: Lines = Box::new(lines.into_iter());
    Ok(Table { columns, lines: lines.peekable() })
}

impl Iterator for Table {
    /// The consecutive lines of one record (the same key in the roster's
    /// first column), or a line that could not be read.
    type Item = Result<Vec<Line>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = loop {
            match self.lines.next()? {
                Err(e) => return Some(Err(e)),
                // Blank lines (often at the end of a sheet) are skipped, and end a record.
                Ok(line) if line.cells.iter().all(|c| c.trim().is_empty()) => continue,
                Ok(line) => break line,
            }
        };
        let key = self.columns.get(&first, 0).to_owned();
        let mut record = vec![first];
        while let Some(Ok(next)) = self.lines.peek() {
            if key.is_empty() || self.columns.get(next, 0) != key {
                break;
            }
            if let Some(Ok(line)) = self.lines.next() {
                record.push(line);
            }
        }
        Some(Ok(record))
    }
}

/// What an import did, each error at its line and column.
#[derive(Debug, Default)]
pub struct Report {
    pub records_read: i64,
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
            self.records_read,
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

/// A cell's error: (line, column, message).
pub type CellError = (i64, String, String);

/// What the service answered to a streamed import: applied, unchanged, and
/// its errors already placed at their line and column.
pub struct Answer {
    pub applied: i64,
    pub unchanged: i64,
    pub errors: Vec<CellError>,
}

/// Streams the records read from a file to an import RPC (`call`) and
/// gathers one report: what the file could not say and what the service
/// refused. Reading blocks; it runs beside the stream, a bounded channel
/// apart, so memory stays flat whatever the file's size.
pub async fn stream_import<T, F, Fut>(
    records: impl Iterator<Item = Result<T, Vec<CellError>>> + Send + 'static,
    call: F,
) -> Result<Report, tonic::Status>
where
    T: Send + 'static,
    F: FnOnce(tokio_stream::wrappers::ReceiverStream<T>) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, tonic::Status>>,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let reader = tokio::task::spawn_blocking(move || {
        let (mut read, mut errors) = (0i64, Vec::new());
        for record in records {
            read += 1;
            match record {
                Ok(request) => {
                    if tx.blocking_send(request).is_err() {
                        break;
                    }
                }
                Err(e) => errors.extend(e),
            }
        }
        (read, errors)
    });
    let answer = call(tokio_stream::wrappers::ReceiverStream::new(rx)).await?;
    let (records_read, mut errors) =
        reader.await.map_err(|e| tonic::Status::from(crate::Error::Unexpected(anyhow::anyhow!("file reader: {e}"))))?;
    errors.extend(answer.errors);
    errors.sort_by_key(|e| e.0);
    Ok(Report { records_read, applied: answer.applied, unchanged: answer.unchanged, errors })
}

/// A date cell as rosters write it (2025-03-01, 2025/3/1, 2025.3.1); the
/// message says how to write it otherwise.
pub fn date(s: &str) -> Result<dibao_proto::common::v1::Date, String> {
    let bad = || format!("日期“{s}”应写作年-月-日，如2025-03-01");
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let (year, month, day) =
        (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    let date = dibao_proto::common::v1::Date { year, month, day };
    time::Date::try_from(&date).map_err(|_| bad())?;
    Ok(date)
}

/// "是"/"否" as rosters write them; `None` for anything else.
/// A table as the services hand it out in CSV: UTF-8 with a byte-order
/// mark (so that spreadsheet programs read the Chinese right), lines ended
/// CRLF, fields quoted where they must be; rows may be shorter than the
/// heading (a closing line of one cell).
pub fn csv_document<R, C>(headings: &[&str], rows: impl IntoIterator<Item = R>) -> Vec<u8>
where
    R: IntoIterator<Item = C>,
    C: AsRef<[u8]>,
{
    let mut w = ::csv::WriterBuilder::new().terminator(::csv::Terminator::CRLF).flexible(true).from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = w.write_record(headings);
    for row in rows {
        let _ = w.write_record(row);
    }
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend(w.into_inner().unwrap_or_default());
    out
}

pub fn yes_no(cell: &str) -> Option<bool> {
    match cell {
        "是" | "Y" | "y" => Some(true),
        "" | "否" | "N" | "n" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADINGS: &[&str] = &["户编号", "姓名", "备注"];

    #[test]
    fn records_are_consecutive_lines_under_one_key_and_blank_lines_are_skipped() {
        let body = "\u{feff}姓名,户编号\n张三,H1\n李四,H1\n\n王五,H2\n";
        let table = csv(std::io::Cursor::new(body.as_bytes().to_vec()), HEADINGS, &[0, 1]).expect("csv");
        let columns = table.columns.clone();
        let records: Vec<Vec<Line>> = table.map(|r| r.expect("record")).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].iter().map(|l| l.number).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(columns.get(&records[1][0], 1), "王五");
        assert_eq!(columns.get(&records[1][0], 2), "", "an absent optional column reads empty");
    }

    #[test]
    fn a_missing_required_column_is_named() {
        let e =
            csv(std::io::Cursor::new("户编号\nH1\n".as_bytes().to_vec()), HEADINGS, &[0, 1]).err().expect("missing");
        assert_eq!(e.to_string(), "表头缺少以下列：姓名");
    }
}
