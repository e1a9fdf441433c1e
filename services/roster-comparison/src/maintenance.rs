//! The view kept from the rosters' events: civil affairs' and the poverty
//! office's household topics applied to the comparison's view, the
//! continuous lists following once per inbox batch for everything the
//! batch touched (in its transaction, so lists and view never disagree).

use deadpool_postgres::Transaction;
use dibao_platform::events::inbox::{Handler, HandlerError};
use dibao_proto::events::v1::{EventEnvelope, RosterMember, event_envelope::Payload};

use crate::live;
use crate::view::{DeadPaid, Held, Side, held, members_of, put};

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

/// What an event changes in the view.
enum Change<'a> {
    /// The household (re)enters its roster with these members.
    Enter {
        village: String,
        programme: i32,
        members: &'a [RosterMember],
        number: &'a str,
        /// The poverty office's flag as registered; none on the dibao side.
        flagged: Option<bool>,
    },
    Members(&'a [RosterMember]),
    Leave,
    Died(String),
    Status(i32),
    Flag(bool),
    /// The household's deceased members still overpaid after their death.
    PaidAfterDeath(Vec<DeadPaid>),
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
                Change::Enter {
                    village: village(&e.village),
                    programme: e.programme,
                    members: &e.members,
                    number: &e.household_number,
                    flagged: None,
                },
            ),
            Some(Payload::HouseholdCompositionChanged(e)) => {
                (Side::Dibao, &e.household_id, Change::Members(&e.members))
            }
            Some(Payload::HouseholdExited(e)) => (Side::Dibao, &e.household_id, Change::Leave),
            Some(Payload::PoorHouseholdRegistered(e)) => (
                Side::Poor,
                &e.household_id,
                Change::Enter {
                    village: village(&e.village),
                    programme: 0,
                    members: &e.members,
                    number: &e.household_number,
                    flagged: Some(e.dibao_registered_poor),
                },
            ),
            Some(Payload::PoorHouseholdCompositionChanged(e)) => {
                (Side::Poor, &e.household_id, Change::Members(&e.members))
            }
            Some(Payload::PoorHouseholdExitedPoverty(e)) => (Side::Poor, &e.household_id, Change::Status(2)),
            Some(Payload::PoorHouseholdReturnedToPoverty(e)) => (Side::Poor, &e.household_id, Change::Status(3)),
            Some(Payload::DibaoFlagChanged(e)) => (Side::Poor, &e.household_id, Change::Flag(e.dibao_registered_poor)),
            Some(Payload::PaidAfterDeath(e)) => {
                let dead = e
                    .deceased
                    .iter()
                    .filter(|d| !d.months.is_empty())
                    .filter_map(|d| {
                        let person = d.identity_number.as_ref()?.value.to_ascii_uppercase();
                        let died_on = time::Date::try_from(d.died_on.as_ref()?).ok()?;
                        Some(DeadPaid { person, died_on, name: d.name.clone() })
                    })
                    .collect();
                (Side::Dibao, &e.household_id, Change::PaidAfterDeath(dead))
            }
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
            (Change::Enter { village, programme, members, number, flagged }, held) => {
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
                    number: String::new(),
                    dead_paid: Vec::new(),
                });
                // An event without a number (from before they carried one) keeps the one held.
                let number = if number.is_empty() { keep.number.clone() } else { number.to_owned() };
                let flagged = flagged.unwrap_or(keep.flagged);
                Held { village, on_roster: true, programme, members, names, version, number, flagged, ..keep }
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
            (Change::PaidAfterDeath(dead_paid), Some(h)) => Held { dead_paid, version, ..h },
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
