//! Division names (行政区划名称) beside their codes on the console: the
//! shipped tables (`dibao_proto::divisions`), and over them the province's
//! own names, imported from a file (`dibao-officers
//! divisions FILE`, one `code,name` a line) into the gateway's schema and
//! held in memory, reloaded every minute so an import shows without a
//! restart. A code the table lacks is shown as the code alone.

use std::collections::HashMap;
use std::sync::RwLock;

use deadpool_postgres::Pool;
use dibao_platform::Error;
use dibao_proto::types::DivisionCode;

/// How often the names are read again.
pub const RELOAD: std::time::Duration = std::time::Duration::from_secs(60);

/// The names by code.
#[derive(Default)]
pub struct Divisions(RwLock<HashMap<String, String>>);

impl Divisions {
    /// Reads the table again.
    pub async fn reload(&self, pool: &Pool) -> Result<usize, Error> {
        let rows = pool.get().await?.query("SELECT code, name FROM division", &[]).await?;
        let names: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let n = names.len();
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = names;
        Ok(n)
    }

    /// The name of `code`: the imported table's, else the shipped division
    /// tables' (GB/T 2260 and the loaded provinces' townships and villages).
    pub fn name(&self, code: &str) -> Option<String> {
        let imported = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(code).cloned();
        imported.or_else(|| dibao_proto::divisions::name(code))
    }

    /// `code` as an officer reads it: `name（code）`, or the code alone.
    pub fn label(&self, code: &str) -> String {
        match self.name(code) {
            Some(name) => format!("{name}（{code}）"),
            None => code.to_owned(),
        }
    }
}

/// A line of an import that was not taken, and why.
#[derive(Debug, PartialEq)]
pub struct Rejected {
    pub line: usize,
    pub field: &'static str,
    pub reason: String,
}

/// The rows of a `code,name` file (a header line `code,name` or
/// `代码,名称` is skipped), each checked; the good ones, and the bad with
/// their line and field.
pub fn parse(text: &str) -> (Vec<(String, String)>, Vec<Rejected>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || (i == 0 && (line.starts_with("code") || line.starts_with("代码"))) {
            continue;
        }
        let (code, name) = line.split_once(',').unwrap_or((line, ""));
        let (code, name) = (code.trim(), name.trim());
        if let Err(e) = DivisionCode::parse(code) {
            bad.push(Rejected { line: i + 1, field: "code", reason: e.reason });
        } else if name.is_empty() || name.chars().count() > 64 {
            bad.push(Rejected { line: i + 1, field: "name", reason: "名称应为1至64个字".into() });
        } else {
            good.push((code.to_owned(), name.to_owned()));
        }
    }
    (good, bad)
}

/// Imports `rows` (a code already there takes the new name), in one transaction.
pub async fn import(pool: &Pool, rows: &[(String, String)]) -> Result<u64, Error> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let mut n = 0;
    for (code, name) in rows {
        n += tx
            .execute(
                "INSERT INTO division (code, name) VALUES ($1, $2)
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, imported_at = now()",
                &[code, name],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_taken_line_by_line_and_a_bad_line_is_named() {
        let (good, bad) = parse("代码,名称\n220581,梅河口市\n220581101,山城镇\n22058,短\n220581101201,\n");
        assert_eq!(good, vec![("220581".into(), "梅河口市".into()), ("220581101".into(), "山城镇".into())]);
        assert_eq!(bad.len(), 2);
        assert_eq!((bad[0].line, bad[0].field), (4, "code"));
        assert_eq!((bad[1].line, bad[1].field), (5, "name"));
    }

    #[test]
    fn a_code_without_a_name_is_shown_alone() {
        let d = Divisions::default();
        d.0.write().expect("lock").insert("220581".into(), "梅河口市旧称".into());
        // The imported name over the shipped one; the shipped one, else the code.
        assert_eq!(d.label("220581"), "梅河口市旧称（220581）");
        assert_eq!(d.label("220582"), "集安市（220582）");
        assert_eq!(d.label("229999"), "229999");
    }
}
