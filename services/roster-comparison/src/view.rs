//! The comparison's view of both rosters, as a store: versioned rows of
//! each roster's households, written by their events ([`crate::maintenance`])
//! and the rebuild, and read back as of one position for a run.
//!
//! Every change takes the next view position under a shared lock on
//! `view_source`; a run takes its position under the exclusive lock
//! ([`position_now`]), so every change numbered at or below it has
//! committed before the run reads, and reading "as of P" later returns the
//! same rows (R-CMP-4).

use deadpool_postgres::Transaction;
use dibao_platform::store::db::cached;
use dibao_proto::events::v1::RosterMember;
use futures_util::{StreamExt, pin_mut};

use crate::engine::{self, Input, OfficialLink, OfficialRole, PovertyStatus, Programme};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Dibao,
    Poor,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Dibao => "dibao",
            Side::Poor => "poor",
        }
    }
}

/// Takes the next view position for a change made in `tx`.
pub async fn next_position(tx: &Transaction<'_>) -> Result<i64, tokio_postgres::Error> {
    // The table lock first, the number second: a run that holds the
    // exclusive lock sees no change numbered below its position still open.
    tx.batch_execute("LOCK TABLE view_source IN ROW EXCLUSIVE MODE").await?;
    Ok(cached::query_opt(tx, "SELECT nextval('view_position')", &[]).await?.map_or(0, |r| r.get(0)))
}

/// The view's position now, with the events applied per roster up to it.
pub async fn position_now(tx: &Transaction<'_>) -> Result<(i64, i64, i64), tokio_postgres::Error> {
    tx.batch_execute("LOCK TABLE view_source IN EXCLUSIVE MODE").await?;
    let row = tx
        .query_one(
            "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM view_position),
                    (SELECT events_applied FROM view_source WHERE side = 'dibao'),
                    (SELECT events_applied FROM view_source WHERE side = 'poor')",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// A household's row as the view holds it now.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub village: String,
    pub on_roster: bool,
    pub programme: i32,
    pub status: i32,
    pub flagged: bool,
    pub members: Vec<String>,
    pub names: Vec<String>,
    pub version: i64,
    /// The roster's own number of the household (户编号).
    pub number: String,
    /// Deceased members still overpaid after their death (dibao side).
    pub dead_paid: Vec<DeadPaid>,
}

/// A deceased member whose household is still overpaid for months after
/// the death, as civil affairs' `PaidAfterDeath` says: list (f).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadPaid {
    pub person: String,
    pub died_on: time::Date,
    pub name: String,
}

impl DeadPaid {
    /// The three parallel columns the view stores them in.
    pub(crate) fn columns(all: &[DeadPaid]) -> (Vec<String>, Vec<time::Date>, Vec<String>) {
        let persons = all.iter().map(|d| d.person.clone()).collect();
        let dates = all.iter().map(|d| d.died_on).collect();
        let names = all.iter().map(|d| d.name.clone()).collect();
        (persons, dates, names)
    }

    pub(crate) fn from_columns(persons: Vec<String>, dates: Vec<time::Date>, names: Vec<String>) -> Vec<DeadPaid> {
        let mut names = names.into_iter();
        persons
            .into_iter()
            .zip(dates)
            .map(|(person, died_on)| DeadPaid { person, died_on, name: names.next().unwrap_or_default() })
            .collect()
    }
}

pub(crate) fn members_of(members: &[RosterMember]) -> (Vec<String>, Vec<String>) {
    let mut listed: Vec<(bool, String, String)> = members
        .iter()
        .filter_map(|m| {
            let p = m.person.as_ref()?;
            let id = p.identity_number.as_ref()?.value.trim().to_ascii_uppercase();
            let head = m.relation == dibao_proto::common::v1::Relation::Head as i32;
            Some((!head, id, p.name.clone()))
        })
        .collect();
    // Head first, then as listed: the export shows the head's name.
    listed.sort_by_key(|(not_head, _, _)| *not_head);
    listed.into_iter().map(|(_, id, name)| (id, name)).unzip()
}

pub(crate) async fn held(tx: &Transaction<'_>, side: Side, id: &str) -> Result<Option<Held>, tokio_postgres::Error> {
    let rows = cached::pipeline(
        tx,
        &[
            (INDEX_LOOKUPS_ONLY, &[]),
            (
                "SELECT village, on_roster, programme, status, flagged, members, names, version, household_number,
                        dead_paid, dead_paid_on, dead_paid_names
                 FROM roster_household WHERE side = $1 AND household_id = $2 AND valid_to IS NULL FOR UPDATE",
                &[&side.as_str(), &id],
            ),
        ],
    )
    .await?;
    Ok(rows.get(1).and_then(|r| r.first()).map(|r| Held {
        village: r.get(0),
        on_roster: r.get(1),
        programme: r.get(2),
        status: r.get(3),
        flagged: r.get(4),
        members: r.get(5),
        names: r.get(6),
        version: r.get(7),
        number: r.get(8),
        dead_paid: DeadPaid::from_columns(r.get(9), r.get(10), r.get(11)),
    }))
}

/// For the rest of the transaction, index lookups only. The view starts
/// empty and grows by millions of rows; a plan cached while it was small
/// (statistics say "tiny table") would go on scanning it whole per event —
/// cost growing with the rosters instead of with the change.
pub const INDEX_LOOKUPS_ONLY: &str = "SELECT set_config('enable_seqscan', 'off', true), \
     set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)";

/// Writes `new` as the household's row from the next position on, and
/// returns that position. One round trip: the statements are pipelined and
/// use the position through `currval` (the session's own), after the lock
/// [`next_position`] explains.
pub(crate) async fn put(tx: &Transaction<'_>, side: Side, id: &str, new: &Held) -> Result<i64, tokio_postgres::Error> {
    let county: String = new.village.chars().take(6).collect();
    let side = side.as_str();
    let (dead, dead_on, dead_names) = DeadPaid::columns(&new.dead_paid);
    let rows = cached::pipeline(
        tx,
        &[
            ("LOCK TABLE view_source IN ROW EXCLUSIVE MODE", &[]),
            ("SELECT nextval('view_position')", &[]),
            (
                "UPDATE roster_household SET valid_to = currval('view_position')
                 WHERE side = $1 AND household_id = $2 AND valid_to IS NULL",
                &[&side, &id],
            ),
            (
                "INSERT INTO roster_household (side, household_id, village, county, on_roster, programme, status, flagged,
                                               members, names, version, household_number, dead_paid, dead_paid_on,
                                               dead_paid_names, valid_from)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, currval('view_position'))",
                &[
                    &side,
                    &id,
                    &new.village,
                    &county,
                    &new.on_roster,
                    &new.programme,
                    &new.status,
                    &new.flagged,
                    &new.members,
                    &new.names,
                    &new.version,
                    &new.number,
                    &dead,
                    &dead_on,
                    &dead_names,
                ],
            ),
            ("UPDATE view_source SET events_applied = events_applied + 1 WHERE side = $1", &[&side]),
        ],
    )
    .await?;
    Ok(rows.get(1).and_then(|r| r.first()).map_or(0, |r| r.get(0)))
}

/// Strings by index, packed in one buffer (the heads' names of a roster).
#[derive(Debug, Clone, Default)]
pub struct Names {
    text: String,
    ends: Vec<u32>,
}

impl Names {
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u32);
    }

    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.ends.get(i).map_or("", |&end| &self.text[start..end as usize])
    }
}

/// What a run knows of each household beyond the engine's input, by the
/// input's index: for the lists and the exports.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// Head's name per dibao, then per registered-poor household.
    pub dibao_heads: Names,
    pub poor_heads: Names,
    /// The roster's own number (户编号) per dibao, then per registered-poor household.
    pub dibao_numbers: Names,
    pub poor_numbers: Names,
    /// Name of each person in the death register.
    pub death_names: std::collections::HashMap<engine::Person, String>,
    /// Name of each linked person of the officials' registry.
    pub official_names: std::collections::HashMap<engine::Person, String>,
}

/// Reads the whole view as of `position` into the engine's input (ranked
/// with [`engine::normalise`]) and the labels by the same indices.
///
/// One COPY per table, parsed as it streams into the engine's packed
/// rosters: a province's rosters arrive in seconds without an object per
/// household or member.
pub async fn load(client: &tokio_postgres::Client, position: i64) -> anyhow::Result<(Input, Labels)> {
    let mut input = Input::default();
    let mut labels = Labels::default();
    let households = format!(
        "COPY (SELECT side, household_id, village, programme, status, flagged, array_to_string(members, ','), coalesce(names[1], ''),
                      household_number, array_to_string(dead_paid, ','), array_to_string(dead_paid_on, ','),
                      array_to_string(dead_paid_names, E'\x1f')
               FROM roster_household
               WHERE on_roster AND valid_from <= {position} AND (valid_to IS NULL OR valid_to > {position})) TO STDOUT"
    );
    copy_lines(client, &households, |f| {
        let members = f[6].split(',').filter(|s| !s.is_empty()).filter_map(engine::pack);
        let id = unescape(f[1]);
        if f[0] == "dibao" {
            let programme = if f[3] == "2" { Programme::SpecialHardship } else { Programme::Dibao };
            let i = input.push_dibao(&id, f[2], programme, members);
            labels.dibao_heads.push(&unescape(f[7]));
            labels.dibao_numbers.push(&unescape(f[8]));
            if !f[9].is_empty() {
                let names = unescape(f[11]);
                let dead = f[9].split(',').zip(f[10].split(',')).zip(names.split('\u{1f}'));
                for ((person, died_on), name) in dead {
                    if let (Some(p), Ok(d)) = (
                        engine::pack(person),
                        time::Date::parse(died_on, &time::format_description::well_known::Iso8601::DATE),
                    ) {
                        input.dead_paid.push((i, p, d));
                        labels.death_names.entry(p).or_insert_with(|| name.to_owned());
                    }
                }
            }
        } else {
            let status = match f[4] {
                "2" => PovertyStatus::Exited,
                "3" => PovertyStatus::Returned,
                _ => PovertyStatus::InPoverty,
            };
            input.push_poor(&id, f[2], status, f[5] == "t", members);
            labels.poor_heads.push(&unescape(f[7]));
            labels.poor_numbers.push(&unescape(f[8]));
        }
    })
    .await?;

    let deaths = format!(
        "COPY (SELECT identity_number, died_on, name FROM death_record
               WHERE valid_from <= {position} AND (valid_to IS NULL OR valid_to > {position})) TO STDOUT"
    );
    copy_lines(client, &deaths, |f| {
        if let (Some(p), Ok(d)) =
            (engine::pack(f[0]), time::Date::parse(f[1], &time::format_description::well_known::Iso8601::DATE))
        {
            input.deaths.push((p, d));
            labels.death_names.insert(p, unescape(f[2]));
        }
    })
    .await?;
    let officials = format!(
        "COPY (SELECT person_id, official_id, official_name, role, relation, person_name FROM official_link
               WHERE valid_from <= {position} AND (valid_to IS NULL OR valid_to > {position})) TO STDOUT"
    );
    copy_lines(client, &officials, |f| {
        if let (Some(person), Some(official)) = (engine::pack(f[0]), engine::pack(f[1])) {
            input.officials.push(OfficialLink {
                person,
                official,
                official_name: unescape(f[2]),
                role: if f[3] == "1" { OfficialRole::DibaoHandler } else { OfficialRole::VillageCommittee },
                relation: unescape(f[4]),
            });
            labels.official_names.insert(person, unescape(f[5]));
        }
    })
    .await?;
    engine::normalise(&mut input);
    Ok((input, labels))
}

/// Runs a `COPY … TO STDOUT` (text format) and hands each line's fields to `each`.
async fn copy_lines(client: &tokio_postgres::Client, sql: &str, mut each: impl FnMut(&[&str])) -> anyhow::Result<()> {
    let stream = client.copy_out(sql).await?;
    pin_mut!(stream);
    let mut carry: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        carry.extend_from_slice(&chunk?);
        let mut start = 0;
        while let Some(end) = carry[start..].iter().position(|&b| b == b'\n') {
            let line = std::str::from_utf8(&carry[start..start + end])?;
            let mut fields = [""; 12];
            for (slot, part) in fields.iter_mut().zip(line.split('\t')) {
                *slot = part;
            }
            each(&fields);
            start += end + 1;
        }
        carry.drain(..start);
    }
    Ok(())
}

/// Undoes COPY's text escaping (backslash sequences) where a field may hold them.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}
