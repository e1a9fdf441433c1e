//! The comparison's view of both rosters, kept from their events (civil
//! affairs' and the poverty office's household topics) and read back as of
//! one position for a run.
//!
//! Every change takes the next view position under a shared lock on
//! `view_source`; a run takes its position under the exclusive lock
//! ([`position_now`]), so every change numbered at or below it has
//! committed before the run reads, and reading "as of P" later returns the
//! same rows (R-CMP-4).

use deadpool_postgres::Transaction;
use dibao_platform::events::inbox::{Handler, HandlerError};
use dibao_platform::store::db::cached;
use dibao_proto::events::v1::{EventEnvelope, RosterMember, event_envelope::Payload};
use futures_util::{StreamExt, pin_mut};

use crate::engine::{self, Input, OfficialLink, OfficialRole, PovertyStatus, Programme};
use crate::live;

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

/// Civil affairs' and the poverty office's household events, applied to the
/// view; the continuous lists follow once per inbox batch, for everything
/// the batch touched (in its transaction, so lists and view never disagree).
#[derive(Default)]
pub struct RosterEvents {
    touched: std::sync::Mutex<Touched>,
}

/// What a batch changed so far: people whose groups to re-compare, the
/// households written, the latest position taken.
#[derive(Default)]
struct Touched {
    persons: Vec<String>,
    households: Vec<(Side, String)>,
    position: i64,
}

/// A household's row as the view holds it now.
#[derive(Debug, Clone)]
struct Held {
    village: String,
    on_roster: bool,
    programme: i32,
    status: i32,
    flagged: bool,
    members: Vec<String>,
    names: Vec<String>,
    version: i64,
}

fn members_of(members: &[RosterMember]) -> (Vec<String>, Vec<String>) {
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

async fn held(tx: &Transaction<'_>, side: Side, id: &str) -> Result<Option<Held>, tokio_postgres::Error> {
    let rows = cached::pipeline(
        tx,
        &[
            (INDEX_LOOKUPS_ONLY, &[]),
            (
                "SELECT village, on_roster, programme, status, flagged, members, names, version
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
async fn put(tx: &Transaction<'_>, side: Side, id: &str, new: &Held) -> Result<i64, tokio_postgres::Error> {
    let county: String = new.village.chars().take(6).collect();
    let side = side.as_str();
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
                                               members, names, version, valid_from)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, currval('view_position'))",
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
                ],
            ),
            ("UPDATE view_source SET events_applied = events_applied + 1 WHERE side = $1", &[&side]),
        ],
    )
    .await?;
    Ok(rows.get(1).and_then(|r| r.first()).map_or(0, |r| r.get(0)))
}

/// What an event changes in the view.
enum Change<'a> {
    /// The household (re)enters its roster with these members.
    Enter {
        village: String,
        programme: i32,
        members: &'a [RosterMember],
    },
    Members(&'a [RosterMember]),
    Leave,
    Died(String),
    Status(i32),
    Flag(bool),
}

impl Handler for RosterEvents {
    async fn apply(&self, tx: &Transaction<'_>, event: &EventEnvelope) -> Result<(), HandlerError> {
        let village =
            |v: &Option<dibao_proto::common::v1::DivisionCode>| v.as_ref().map(|v| v.code.clone()).unwrap_or_default();
        let civil = event.aggregate_type == "civil_affairs.household";
        let (side, id, change) = match &event.payload {
            Some(Payload::HouseholdEnrolled(e)) => (
                Side::Dibao,
                &e.household_id,
                Change::Enter { village: village(&e.village), programme: e.programme, members: &e.members },
            ),
            Some(Payload::HouseholdCompositionChanged(e)) => {
                (Side::Dibao, &e.household_id, Change::Members(&e.members))
            }
            Some(Payload::HouseholdExited(e)) => (Side::Dibao, &e.household_id, Change::Leave),
            Some(Payload::PoorHouseholdRegistered(e)) => (
                Side::Poor,
                &e.household_id,
                Change::Enter { village: village(&e.village), programme: 0, members: &e.members },
            ),
            Some(Payload::PoorHouseholdCompositionChanged(e)) => {
                (Side::Poor, &e.household_id, Change::Members(&e.members))
            }
            Some(Payload::PoorHouseholdExitedPoverty(e)) => (Side::Poor, &e.household_id, Change::Status(2)),
            Some(Payload::PoorHouseholdReturnedToPoverty(e)) => (Side::Poor, &e.household_id, Change::Status(3)),
            Some(Payload::DibaoFlagChanged(e)) => (Side::Poor, &e.household_id, Change::Flag(e.dibao_registered_poor)),
            Some(Payload::MemberDeceased(e)) => {
                let person = e.identity_number.as_ref().map(|i| i.value.to_ascii_uppercase()).unwrap_or_default();
                (if civil { Side::Dibao } else { Side::Poor }, &e.household_id, Change::Died(person))
            }
            // Categories, amounts, reports, probes: nothing the lists read.
            _ => return Ok(()),
        };
        let version = event.aggregate_version;
        let current = held(tx, side, id).await?;
        if current.as_ref().is_some_and(|h| version <= h.version) {
            return Ok(()); // a replay or an older event
        }
        let before: Vec<String> = current.as_ref().map(|h| h.members.clone()).unwrap_or_default();
        let new = match (change, current) {
            (Change::Enter { village, programme, members }, held) => {
                let (members, names) = members_of(members);
                let keep = held.unwrap_or(Held {
                    village: String::new(),
                    on_roster: true,
                    programme: 0,
                    status: 1,
                    flagged: false,
                    members: Vec::new(),
                    names: Vec::new(),
                    version,
                });
                Held { village, on_roster: true, programme, members, names, version, ..keep }
            }
            (_, None) => {
                return Err(HandlerError::Permanent(format!(
                    "{} household {id} is not in the comparison's view (its enrolment or registration was never applied); a view rebuild restores it",
                    side.as_str()
                )));
            }
            (Change::Members(members), Some(h)) => {
                let (members, names) = members_of(members);
                Held { members, names, version, ..h }
            }
            (Change::Leave, Some(h)) => Held { on_roster: false, version, ..h },
            (Change::Died(person), Some(mut h)) => {
                if let Some(i) = h.members.iter().position(|m| *m == person) {
                    h.members.remove(i);
                    if i < h.names.len() {
                        h.names.remove(i);
                    }
                }
                Held { version, ..h }
            }
            (Change::Status(status), Some(h)) => Held { status, version, ..h },
            (Change::Flag(flagged), Some(h)) => Held { flagged, version, ..h },
        };
        let position = put(tx, side, id, &new).await?;
        let mut touched = self.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        touched.persons.extend(before.into_iter().chain(new.members));
        touched.households.push((side, id.clone()));
        touched.position = touched.position.max(position);
        Ok(())
    }

    async fn finish_batch(&self, tx: &Transaction<'_>) -> Result<(), HandlerError> {
        // Taken whole: a batch that fails and is retried touches them again.
        let touched = std::mem::take(&mut *self.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if touched.households.is_empty() {
            return Ok(());
        }
        let households: Vec<(Side, &str)> = touched.households.iter().map(|(s, id)| (*s, id.as_str())).collect();
        live::refresh(tx, touched.persons, &households, touched.position).await?;
        Ok(())
    }
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
        "COPY (SELECT side, household_id, village, programme, status, flagged, array_to_string(members, ','), coalesce(names[1], '')
               FROM roster_household
               WHERE on_roster AND valid_from <= {position} AND (valid_to IS NULL OR valid_to > {position})) TO STDOUT"
    );
    copy_lines(client, &households, |f| {
        let members = f[6].split(',').filter(|s| !s.is_empty()).filter_map(engine::pack);
        let id = unescape(f[1]);
        if f[0] == "dibao" {
            let programme = if f[3] == "2" { Programme::SpecialHardship } else { Programme::Dibao };
            input.push_dibao(&id, f[2], programme, members);
            labels.dibao_heads.push(&unescape(f[7]));
        } else {
            let status = match f[4] {
                "2" => PovertyStatus::Exited,
                "3" => PovertyStatus::Returned,
                _ => PovertyStatus::InPoverty,
            };
            input.push_poor(&id, f[2], status, f[5] == "t", members);
            labels.poor_heads.push(&unescape(f[7]));
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
            let mut fields = [""; 8];
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

/// A household as a roster's full snapshot (its export RPC) gives it.
#[derive(Debug, Clone)]
pub struct SnapshotHousehold {
    pub id: String,
    pub village: String,
    pub on_roster: bool,
    pub programme: i32,
    pub status: i32,
    pub flagged: bool,
    /// Living members, head first, with their names.
    pub members: Vec<String>,
    pub names: Vec<String>,
    pub version: i64,
}

/// Brings the view of one roster within the villages starting with
/// `prefix` to `snapshot` (R-SYNC-3): a household that differs is written
/// anew, one the snapshot lacks leaves the roster, and the continuous lists
/// follow. Returns (households checked, households corrected). An event
/// older than the snapshot's version of its household changes nothing
/// afterwards; a newer one applies as usual.
pub async fn reconcile(
    tx: &Transaction<'_>,
    side: Side,
    prefix: &str,
    snapshot: Vec<SnapshotHousehold>,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT household_id, village, on_roster, programme, status, flagged, members, names, version
             FROM roster_household WHERE side = $1 AND valid_to IS NULL AND starts_with(village, $2) FOR UPDATE",
            &[&side.as_str(), &prefix],
        )
        .await?;
    let mut current: std::collections::HashMap<String, Held> = rows
        .into_iter()
        .map(|r| {
            (
                r.get(0),
                Held {
                    village: r.get(1),
                    on_roster: r.get(2),
                    programme: r.get(3),
                    status: r.get(4),
                    flagged: r.get(5),
                    members: r.get(6),
                    names: r.get(7),
                    version: r.get(8),
                },
            )
        })
        .collect();
    let (mut checked, mut corrected) = (0i64, 0i64);
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    for h in snapshot {
        checked += 1;
        let held = current.remove(&h.id);
        let same = held.as_ref().is_some_and(|c| {
            c.village == h.village
                && c.on_roster == h.on_roster
                && (side == Side::Poor || c.programme == h.programme)
                && (side == Side::Dibao || (c.status == h.status && c.flagged == h.flagged))
                && sorted(&c.members) == sorted(&h.members)
        });
        if same || (held.is_none() && !h.on_roster) {
            continue;
        }
        let before = held.as_ref().map(|c| c.members.clone()).unwrap_or_default();
        let version = held.as_ref().map_or(h.version, |c| c.version.max(h.version));
        let new = Held {
            village: h.village,
            on_roster: h.on_roster,
            programme: h.programme,
            status: h.status,
            flagged: h.flagged,
            members: h.members,
            names: h.names,
            version,
        };
        let position = put(tx, side, &h.id, &new).await?;
        live::refresh(tx, before.into_iter().chain(new.members.iter().cloned()), &[(side, h.id.as_str())], position)
            .await?;
        corrected += 1;
    }
    // On the view, not in the snapshot: gone from the roster.
    for (id, held) in current {
        if !held.on_roster {
            continue;
        }
        let before = held.members.clone();
        let position = put(tx, side, &id, &Held { on_roster: false, ..held }).await?;
        live::refresh(tx, before, &[(side, id.as_str())], position).await?;
        corrected += 1;
    }
    Ok((checked, corrected))
}
