//! The continuous comparison (R-CMP-1): every change to the view — a roster
//! event, a death or registry line — re-compares, in the same transaction,
//! the groups of households it touches, and replaces their entries in
//! `live_entry`. The groups are found from the changed people outwards
//! (households sharing a member, then theirs, until nothing new), so the
//! work follows the change, not the size of the rosters; and the same
//! engine runs on them as on a full run, so both end in the same lists.
//!
//! Why the closure is enough: a group the change split or joined held the
//! changed household, and every other household of it is linked to that
//! household through one of its members before or after the change — the
//! people the search starts from.

use std::collections::{BTreeSet, HashMap};

use deadpool_postgres::Transaction;
use dibao_platform::store::db::cached;

use crate::engine::{self, Input, OfficialLink, OfficialRole, PovertyStatus, Programme};
use crate::entries::stored_entries;
use crate::view::{DeadPaid, INDEX_LOOKUPS_ONLY, Labels, Side};

/// Searches stop growing a group past this many households: a group that
/// large is a data error (one person on hundreds of households) that the
/// full run still reports whole.
const MAX_GROUP: usize = 10_000;

/// What the group search reads of a household, in the order `refresh` takes it.
const COLUMNS: &str = "side, household_id, village, programme, status, flagged, members, coalesce(names[1], ''), \
                       household_number, dead_paid, dead_paid_on, dead_paid_names";

/// Advisory lock key of the continuous lists ("live" in ASCII).
const LIVE_LOCK: i64 = 0x6c69_7665;

/// Re-compares the groups of `persons` and of the `touched` households,
/// whose entries are replaced.
pub async fn refresh(
    tx: &Transaction<'_>,
    persons: impl IntoIterator<Item = String>,
    touched: &[(Side, &str)],
    position: i64,
) -> Result<(), tokio_postgres::Error> {
    // One refresh at a time, to the end of its transaction: the inbox, a
    // register import and a rebuild touching one group concurrently would
    // each miss the other's uncommitted rows and leave an entry the other
    // replaced. Statements after the lock see what the holder committed.
    cached::pipeline(tx, &[(INDEX_LOOKUPS_ONLY, &[]), ("SELECT pg_advisory_xact_lock($1)", &[&LIVE_LOCK])]).await?;
    let mut seen: BTreeSet<String> = persons.into_iter().filter(|p| !p.is_empty()).collect();
    let mut frontier: Vec<String> = seen.iter().cloned().collect();
    let mut households: HashMap<(String, String), tokio_postgres::Row> = HashMap::new();
    // The touched households themselves, whatever members they have left
    // (one whose last member died is still listed while it is overpaid).
    let (sides, ids): (Vec<&str>, Vec<&str>) = touched.iter().map(|(side, id)| (side.as_str(), *id)).unzip();
    let mut rows = cached::query(
        tx,
        &format!(
            "SELECT {COLUMNS} FROM roster_household
             WHERE valid_to IS NULL AND on_roster AND (side, household_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        ),
        &[&sides, &ids],
    )
    .await?;
    loop {
        for row in rows {
            let key: (String, String) = (row.get(0), row.get(1));
            if households.contains_key(&key) {
                continue;
            }
            let members: Vec<String> = row.get(6);
            for m in members {
                if seen.insert(m.clone()) {
                    frontier.push(m);
                }
            }
            households.insert(key, row);
        }
        if frontier.is_empty() || households.len() >= MAX_GROUP {
            break;
        }
        rows = cached::query(
            tx,
            &format!(
                "SELECT {COLUMNS} FROM roster_household WHERE valid_to IS NULL AND on_roster AND members && $1::text[]"
            ),
            &[&frontier],
        )
        .await?;
        frontier.clear();
    }

    // The group's households, members, deaths and registry lines as the engine takes them.
    let mut input = Input::default();
    let mut labels = Labels::default();
    for row in households.values() {
        let side: String = row.get(0);
        let id: String = row.get(1);
        let village: String = row.get(2);
        let members = row.get::<_, Vec<String>>(6).into_iter().filter_map(|m| engine::pack(&m));
        let head: String = row.get(7);
        let number: String = row.get(8);
        if side == Side::Dibao.as_str() {
            let programme = if row.get::<_, i32>(3) == 2 { Programme::SpecialHardship } else { Programme::Dibao };
            let i = input.push_dibao(&id, &village, programme, members);
            labels.dibao_heads.push(&head);
            labels.dibao_numbers.push(&number);
            for dead in DeadPaid::from_columns(row.get(9), row.get(10), row.get(11)) {
                if let Some(p) = engine::pack(&dead.person) {
                    input.dead_paid.push((i, p, dead.died_on));
                    labels.death_names.entry(p).or_insert(dead.name);
                }
            }
        } else {
            let status = match row.get::<_, i32>(4) {
                2 => PovertyStatus::Exited,
                3 => PovertyStatus::Returned,
                _ => PovertyStatus::InPoverty,
            };
            input.push_poor(&id, &village, status, row.get(5), members);
            labels.poor_heads.push(&head);
            labels.poor_numbers.push(&number);
        }
    }
    let people: Vec<String> = seen.into_iter().collect();
    let today: time::Date = cached::query_opt(tx, "SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date", &[])
        .await?
        .map_or(time::Date::MIN, |r| r.get(0));
    for row in cached::query(
        tx,
        "SELECT identity_number, died_on, name FROM death_record WHERE valid_to IS NULL AND identity_number = ANY($1)",
        &[&people],
    )
    .await?
    {
        if let Some(p) = engine::pack(row.get(0)) {
            input.deaths.push((p, row.get(1)));
            labels.death_names.insert(p, row.get(2));
        }
    }
    for row in cached::query(
        tx,
        "SELECT person_id, official_id, official_name, role, relation, person_name
         FROM official_link WHERE valid_to IS NULL AND person_id = ANY($1)",
        &[&people],
    )
    .await?
    {
        if let (Some(person), Some(official)) = (engine::pack(row.get(0)), engine::pack(row.get(1))) {
            input.officials.push(OfficialLink {
                person,
                official,
                official_name: row.get(2),
                role: if row.get::<_, i32>(3) == 1 {
                    OfficialRole::DibaoHandler
                } else {
                    OfficialRole::VillageCommittee
                },
                relation: row.get(4),
            });
            labels.official_names.insert(person, row.get(5));
        }
    }
    engine::normalise(&mut input);
    let lists = engine::compare(&input, today);
    let entries = stored_entries(&input, &labels, &lists, "");

    // Replace every entry that named one of these households.
    let mut names: Vec<String> = households
        .keys()
        .map(|(side, id)| format!("{}:{id}", if side == Side::Dibao.as_str() { 'd' } else { 'p' }))
        .collect();
    names.extend(touched.iter().map(|(side, id)| format!("{}:{id}", if *side == Side::Dibao { 'd' } else { 'p' })));
    cached::execute(tx, "DELETE FROM live_entry WHERE households && $1::text[]", &[&names]).await?;
    if entries.is_empty() {
        return Ok(());
    }
    let sep = |list: &[String]| list.join("\u{1f}");
    let household_of = |h: &String| h.split('|').next().unwrap_or_default().to_owned();
    let keys: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let kinds: Vec<i8> = entries.iter().map(|e| e.kind.letter() as i8).collect();
    let villages: Vec<&str> = entries.iter().map(|e| e.village.as_str()).collect();
    let named: Vec<String> = entries
        .iter()
        .map(|e| {
            let d = e.dibao.iter().map(|h| format!("d:{}", household_of(h)));
            let p = e.poor.iter().map(|h| format!("p:{}", household_of(h)));
            d.chain(p).collect::<Vec<_>>().join("\u{1f}")
        })
        .collect();
    let dibao: Vec<String> = entries.iter().map(|e| sep(&e.dibao)).collect();
    let poor: Vec<String> = entries.iter().map(|e| sep(&e.poor)).collect();
    let members: Vec<String> = entries.iter().map(|e| sep(&e.members)).collect();
    let explanations: Vec<&str> = entries.iter().map(|e| e.explanation.as_str()).collect();
    cached::execute(
        tx,
        "INSERT INTO live_entry (entry_key, kind, village, households, dibao, poor, members, explanation, position)
         SELECT k, c, v, string_to_array(h, E'\\x1f'), string_to_array(d, E'\\x1f'), string_to_array(p, E'\\x1f'),
                string_to_array(m, E'\\x1f'), x, $9
         FROM unnest($1::text[], $2::\"char\"[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
              AS t(k, c, v, h, d, p, m, x)
         ON CONFLICT (entry_key) DO UPDATE
         SET kind = excluded.kind, village = excluded.village, households = excluded.households, dibao = excluded.dibao,
             poor = excluded.poor, members = excluded.members, explanation = excluded.explanation, position = excluded.position",
        &[&keys, &kinds, &villages, &named, &dibao, &poor, &members, &explanations, &position],
    )
    .await?;
    Ok(())
}
