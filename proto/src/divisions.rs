//! Which division codes exist, and their names (R-ROSTER-3).
//!
//! Two tables, both facts shipped as data, not code:
//! - the national one, GB/T 2260 provinces, cities and counties
//!   (`data/divisions/gbt2260.csv`), compiled in: every six-digit code a
//!   service takes must be in it, and every township or village code must
//!   lie in one of its counties;
//! - per province, its townships and villages (统计用区划代码), loaded
//!   from a file `NN.csv` by [`load_dir`] at start-up: once a province's
//!   file is loaded, a township or village code of that province that is
//!   not in it is refused too. A province without a file is checked down
//!   to the county only; an operator adds its file to the directory.
//!
//! Both files are `code,name` lines after `#` comments, one of which is
//! `# as_of=YYYY-MM-DD`, the date the table is true on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, RwLock};

const NATIONAL_CSV: &str = include_str!("../data/divisions/gbt2260.csv");

/// The date the national table is true on.
pub fn national_as_of() -> &'static str {
    as_of(NATIONAL_CSV).unwrap_or("")
}

static NATIONAL: LazyLock<HashMap<u32, &'static str>> =
    LazyLock::new(|| rows(NATIONAL_CSV).filter_map(|(code, name)| Some((code.parse().ok()?, name))).collect());

/// One province's township and village names by code.
type Names = Arc<HashMap<u64, Box<str>>>;

/// Township and village names per loaded province (its two-digit code).
static LOCAL: LazyLock<RwLock<HashMap<u8, Names>>> = LazyLock::new(Default::default);

fn rows(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && *l != "code,name")
        .filter_map(|l| l.split_once(','))
        .map(|(c, n)| (c.trim(), n.trim()))
}

fn as_of(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.trim().strip_prefix("# as_of=")).map(str::trim)
}

/// The name of a province, city or county (six digits) in GB/T 2260.
pub fn national_name(code: &str) -> Option<&'static str> {
    if code.len() != 6 {
        return None;
    }
    NATIONAL.get(&code.parse().ok()?).copied()
}

/// The counties of a province or city (its six-digit code), in code order.
pub fn counties_in(code: &str) -> Vec<(&'static str, &'static str)> {
    let prefix = if code.ends_with("0000") { &code[..2] } else { &code[..code.len().min(4)] };
    let mut out: Vec<_> =
        rows(NATIONAL_CSV).filter(|(c, _)| c.starts_with(prefix) && !c.ends_with("00") && c.len() == 6).collect();
    out.sort_unstable();
    out
}

fn local(province: u8) -> Option<Names> {
    LOCAL.read().ok()?.get(&province).cloned()
}

/// The name of any code: national for six digits, the loaded province's
/// table for townships and villages.
pub fn name(code: &str) -> Option<String> {
    if code.len() == 6 {
        return national_name(code).map(str::to_owned);
    }
    let table = local(code.get(..2)?.parse().ok()?)?;
    table.get(&code.parse().ok()?).map(|n| n.to_string())
}

/// The townships (nine-digit codes) of a county in its province's loaded
/// table, in code order, with their names; none where no table is loaded.
pub fn townships_of(county: &str) -> Vec<(String, String)> {
    let Some(table) = county.get(..2).and_then(|p| p.parse().ok()).and_then(local) else { return Vec::new() };
    let Ok(county_n) = county.parse::<u64>() else { return Vec::new() };
    let mut out: Vec<(String, String)> = table
        .iter()
        .filter(|(code, _)| (100_000_000..1_000_000_000).contains(*code) && **code / 1000 == county_n)
        .map(|(code, name)| (code.to_string(), name.to_string()))
        .collect();
    out.sort_unstable();
    out
}

/// A village's place below its county, the township's name and its own
/// (`红梅镇联盟村`), where the loaded tables name both.
pub fn village_place(code: &str) -> Option<String> {
    Some(format!("{}{}", name(code.get(..9)?)?, name(code.get(..12)?)?))
}

/// Checks that `code` (digits of length 6, 9 or 12, as `DivisionCode`
/// has checked) is a division that exists; the reason names the code.
pub(crate) fn check(code: &str) -> Result<(), String> {
    let county = &code[..6];
    if national_name(county).is_none() {
        let what = if code.len() == 6 { "行政区划代码" } else { "所属县级代码" };
        return Err(format!("{what}“{county}”不在GB/T 2260行政区划代码表（{}）中，请核对", national_as_of()));
    }
    if code.len() == 6 {
        return Ok(());
    }
    let province: u8 = code[..2].parse().unwrap_or(0);
    match local(province) {
        Some(table) if !table.contains_key(&code.parse().unwrap_or(0)) => {
            let what = if code.len() == 9 { "乡镇（街道）" } else { "村（居）" };
            Err(format!(
                "{what}代码“{code}”不在{}的统计用区划代码中，请核对",
                national_name(&format!("{:02}0000", province)).unwrap_or("本省")
            ))
        }
        _ => Ok(()),
    }
}

/// A province's township and village table, as read from its file.
#[derive(Debug)]
pub struct LocalTable {
    pub province: u8,
    pub as_of: String,
    pub entries: usize,
}

/// Reads one province's township and village file and makes it the table
/// that codes of that province are checked against. Every row must be a
/// nine- or twelve-digit code of one province, in a county of the national
/// table; the first bad row is the error, and nothing is loaded then.
pub fn load_local(text: &str) -> Result<LocalTable, String> {
    let as_of = as_of(text).ok_or("没有“# as_of=日期”一行")?.to_owned();
    let mut table = HashMap::new();
    let mut province = None;
    for (n, (code, name)) in rows(text).enumerate() {
        let row = n + 1;
        if !matches!(code.len(), 9 | 12) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("第{row}行：代码“{code}”应为9位（乡镇）或12位（村）数字"));
        }
        if national_name(&code[..6]).is_none() {
            return Err(format!("第{row}行：代码“{code}”的县级代码不在GB/T 2260中"));
        }
        let p: u8 = code[..2].parse().unwrap_or(0);
        if *province.get_or_insert(p) != p {
            return Err(format!("第{row}行：代码“{code}”不属于本文件的省份"));
        }
        if name.is_empty() {
            return Err(format!("第{row}行：代码“{code}”没有名称"));
        }
        table.insert(code.parse::<u64>().unwrap_or(0), Box::from(name));
    }
    let province = province.ok_or("文件中没有代码")?;
    let entries = table.len();
    LOCAL.write().map_err(|_| "区划表加锁失败")?.insert(province, Arc::new(table));
    Ok(LocalTable { province, as_of, entries })
}

/// Loads every `NN.csv` in `dir` (NN a province code) with [`load_local`].
pub fn load_dir(dir: &Path) -> Result<Vec<LocalTable>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut loaded = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if path.extension().is_none_or(|e| e != "csv") || stem.len() != 2 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let table = load_local(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if format!("{:02}", table.province) != stem {
            return Err(format!("{}: 文件名应为其省级代码{:02}", path.display(), table.province));
        }
        loaded.push(table);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_national_table_knows_real_counties_only() {
        assert_eq!(national_name("220581"), Some("梅河口市"));
        assert_eq!(national_name("220000"), Some("吉林省"));
        assert_eq!(national_name("229999"), None);
        assert!(check("229999").expect_err("unknown").contains("229999"));
        assert!(check("229999101").expect_err("unknown county").contains("所属县级代码"));
        assert_eq!(national_as_of(), "2023-06-30");
        assert!(counties_in("220500").iter().any(|(c, n)| *c == "220581" && *n == "梅河口市"));
    }

    #[test]
    fn a_loaded_province_refuses_unknown_townships_and_names_known_ones() {
        // Province 15's own file, written here: the test owns the province.
        let table = load_local("# as_of=2023-06-30\ncode,name\n150102001,海拉尔路街道\n150102001001,团结社区\n")
            .expect("loaded");
        assert_eq!((table.province, table.entries), (15, 2));
        assert_eq!(name("150102001").as_deref(), Some("海拉尔路街道"));
        assert_eq!(village_place("150102001001").as_deref(), Some("海拉尔路街道团结社区"));
        assert_eq!(townships_of("150102"), [("150102001".to_owned(), "海拉尔路街道".to_owned())]);
        assert!(check("150102001001").is_ok());
        assert!(check("150102999").expect_err("unknown").contains("内蒙古自治区"));
        assert!(load_local("# as_of=2023-06-30\n150102001,甲\n220581101,乙\n").is_err());
        assert!(load_local("150102001,甲\n").expect_err("no date").contains("as_of"));
    }
}
