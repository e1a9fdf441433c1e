//! A roster's view of the other roster rebuilt from the other's full
//! snapshot (R-SYNC-3): every household the snapshot holds put as it says,
//! every one it no longer holds removed, each correction reported in words
//! an operator reads. Both roster services rebuild their view with it; each
//! says what a row of its view is ([`View`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;

use deadpool_postgres::Transaction;
use dibao_proto::sync::v1::RebuildReport;
use dibao_proto::types::{DivisionCode, InvalidField};

use crate::Error;

/// Corrections listed in a report at most; the counts are complete.
const LISTED: usize = 1000;

/// A row of a view, named field by field.
pub trait ViewRow: PartialEq + Send + Sync {
    /// What differs from `held`, as an operator names it ("家庭成员", …).
    fn differences(&self, held: &Self) -> Vec<&'static str>;
    /// Its members' identity numbers (the people a change touches).
    fn members(&self) -> &[String];
}

/// One roster's view of the other.
pub trait View: Sync {
    type Row: ViewRow;
    /// How the corrections name a household of the other roster ("低保户")
    /// and that roster ("民政名单").
    const HOUSEHOLD: &'static str;
    const ROSTER: &'static str;

    /// The division's rows, locked.
    fn held(
        &self,
        tx: &Transaction<'_>,
        division: &DivisionCode,
    ) -> impl Future<Output = Result<HashMap<String, Self::Row>, Error>> + Send;
    /// Puts `row` as household `id`, added or replacing what was held.
    fn put(&self, tx: &Transaction<'_>, id: &str, row: &Self::Row) -> impl Future<Output = Result<(), Error>> + Send;
    fn remove(&self, tx: &Transaction<'_>, id: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The first message of a rebuild names the division, the others the households.
pub enum Part<H> {
    Division(dibao_proto::common::v1::DivisionCode),
    Household(H),
}

/// Reads a rebuild's stream: the division first, then its households,
/// each made a view row by `row` (`None`: not on the roster the events build).
pub async fn read<M, H, R>(
    mut stream: tonic::Streaming<M>,
    part: impl Fn(M) -> Option<Part<H>>,
    row: impl Fn(H) -> Option<(String, R)>,
) -> Result<(DivisionCode, Vec<(String, R)>), Error> {
    let order = || Error::from(InvalidField::new("division", "第一条消息应为快照所覆盖的行政区划，其后为各户"));
    let mut division = None;
    let mut snapshot = Vec::new();
    while let Some(message) =
        stream.message().await.map_err(|s| Error::Unavailable(format!("the snapshot's stream broke: {s}")))?
    {
        match (part(message), &division) {
            (Some(Part::Division(d)), None) => {
                division = Some(DivisionCode::try_from(&d).map_err(|e| e.within("division"))?)
            }
            (Some(Part::Household(h)), Some(_)) => snapshot.extend(row(h)),
            _ => return Err(order()),
        }
    }
    let division = division.ok_or_else(|| InvalidField::new("division", "必填项缺失"))?;
    Ok((division, snapshot))
}

/// Rebuilds `view` for `division` from `snapshot` in `tx`. Returns the
/// report and, sorted, every member of a household added, corrected or
/// removed (before and after), for what follows from them.
pub async fn rebuild<V: View>(
    view: &V,
    tx: &Transaction<'_>,
    division: &DivisionCode,
    snapshot: &[(String, V::Row)],
) -> Result<(RebuildReport, Vec<String>), Error> {
    let held = view.held(tx, division).await?;
    let mut report = RebuildReport { households_in_snapshot: snapshot.len() as i64, ..Default::default() };
    let note = |report: &mut RebuildReport, line: String| {
        if report.corrections.len() < LISTED {
            report.corrections.push(line);
        }
    };
    let (household, roster) = (V::HOUSEHOLD, V::ROSTER);
    let mut affected: Vec<String> = Vec::new();
    for (id, row) in snapshot {
        let line = match held.get(id) {
            Some(old) if old == row => {
                report.unchanged += 1;
                continue;
            }
            Some(old) => {
                report.updated += 1;
                affected.extend(old.members().iter().cloned());
                let mut what = row.differences(old);
                if what.is_empty() {
                    what.push("版本号");
                }
                format!("{household}{id}：{}与{roster}不一致，已按{roster}更正", what.join("、"))
            }
            None => {
                report.added += 1;
                format!("{household}{id}：视图中缺失，已按{roster}补入")
            }
        };
        note(&mut report, line);
        affected.extend(row.members().iter().cloned());
        view.put(tx, id, row).await?;
    }
    let kept: HashSet<&String> = snapshot.iter().map(|(id, _)| id).collect();
    let mut gone: Vec<(&String, &V::Row)> = held.iter().filter(|(id, _)| !kept.contains(id)).collect();
    gone.sort_by(|a, b| a.0.cmp(b.0));
    for (id, old) in gone {
        affected.extend(old.members().iter().cloned());
        view.remove(tx, id).await?;
        report.removed += 1;
        note(&mut report, format!("{household}{id}：{roster}中已无此户，已从视图删除"));
    }
    affected.sort();
    affected.dedup();
    tracing::info!(
        division = %division,
        added = report.added,
        updated = report.updated,
        removed = report.removed,
        "view rebuilt from the other roster's snapshot"
    );
    Ok((report, affected))
}
