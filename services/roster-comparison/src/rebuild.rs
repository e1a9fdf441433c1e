//! The view rebuilt from both rosters' full snapshots (their ExportRoster
//! RPCs) after a long outage or a broker data loss (R-SYNC-3). Both
//! snapshots are read whole before anything changes: a snapshot cut short
//! would otherwise remove what it missed.

use deadpool_postgres::Pool;
use dibao_platform::runtime::error::Error;
use dibao_platform::runtime::server::MeshChannel as Channel;
use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{self as common, Relation};
use dibao_proto::comparison::v1 as pb;
use dibao_proto::events::v1::RosterMember;
use dibao_proto::poverty_alleviation::v1 as pa;
use dibao_proto::poverty_alleviation::v1::poverty_alleviation_service_client::PovertyAlleviationServiceClient;
use dibao_proto::types::DivisionCode;

use crate::live;
use deadpool_postgres::Transaction;

use crate::view::{DeadPaid, Held, Side, put};

fn unavailable(who: &str, s: tonic::Status) -> Error {
    Error::Unavailable(format!("{who}名单导出失败，视图未做任何更正：{}（{:?}）", s.message(), s.code()))
}

/// Living members, head first, with their names.
fn living(
    members: impl Iterator<Item = (String, String, bool)>,
    deceased: &[common::IdentityNumber],
) -> (Vec<String>, Vec<String>) {
    let dead: Vec<String> = deceased.iter().map(|d| d.value.to_ascii_uppercase()).collect();
    let mut listed: Vec<(bool, String, String)> =
        members.filter(|(id, _, _)| !dead.contains(id)).map(|(id, name, head)| (!head, id, name)).collect();
    listed.sort_by_key(|(not_head, _, _)| *not_head);
    listed.into_iter().map(|(_, id, name)| (id, name)).unzip()
}

fn id_of(p: &Option<common::Person>) -> Option<(String, String)> {
    let p = p.as_ref()?;
    Some((p.identity_number.as_ref()?.value.trim().to_ascii_uppercase(), p.name.clone()))
}

pub async fn rebuild(
    pool: &Pool,
    civil: Channel,
    poverty: Channel,
    division: &DivisionCode,
) -> Result<pb::RebuildViewResponse, Error> {
    let pb_division = common::DivisionCode { code: division.as_str().to_owned() };
    let mut dibao = Vec::new();
    let mut export = CivilAffairsServiceClient::new(civil)
        .export_roster(ca::ExportRosterRequest { division: Some(pb_division.clone()) })
        .await
        .map_err(|s| unavailable("民政", s))?
        .into_inner();
    while let Some(item) = export.message().await.map_err(|s| unavailable("民政", s))? {
        let Some(h) = item.household else { continue };
        let status = ca::HouseholdStatus::try_from(h.status).unwrap_or(ca::HouseholdStatus::Unspecified);
        let (members, names) = living(
            h.members
                .iter()
                .filter_map(|m| id_of(&m.person).map(|(id, name)| (id, name, m.relation == Relation::Head as i32))),
            &h.deceased,
        );
        dibao.push(SnapshotHousehold {
            id: h.household_id,
            village: h.village.map(|v| v.code).unwrap_or_default(),
            on_roster: matches!(status, ca::HouseholdStatus::Enrolled | ca::HouseholdStatus::GradualExit),
            programme: h.programme,
            status: 0,
            flagged: false,
            members,
            names,
            version: h.version,
            number: h.household_number,
        });
    }
    let mut poor = Vec::new();
    let mut export = PovertyAlleviationServiceClient::new(poverty)
        .export_roster(pa::ExportRosterRequest { division: Some(pb_division) })
        .await
        .map_err(|s| unavailable("扶贫", s))?
        .into_inner();
    while let Some(item) = export.message().await.map_err(|s| unavailable("扶贫", s))? {
        let Some(h) = item.household else { continue };
        let roster =
            |m: &RosterMember| id_of(&m.person).map(|(id, name)| (id, name, m.relation == Relation::Head as i32));
        let (members, names) = living(h.members.iter().filter_map(roster), &h.deceased);
        poor.push(SnapshotHousehold {
            id: h.household_id,
            village: h.village.map(|v| v.code).unwrap_or_default(),
            on_roster: true,
            programme: 0,
            status: h.status,
            flagged: h.dibao_registered_poor,
            members,
            names,
            version: h.version,
            number: h.household_number,
        });
    }

    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let (dibao_checked, dibao_corrected) = reconcile(&tx, Side::Dibao, division.prefix(), dibao).await?;
    let (poor_checked, poor_corrected) = reconcile(&tx, Side::Poor, division.prefix(), poor).await?;
    tx.commit().await?;
    Ok(pb::RebuildViewResponse { dibao_checked, dibao_corrected, poor_checked, poor_corrected })
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
    /// The roster's own number of the household (户编号).
    pub number: String,
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
            "SELECT household_id, village, on_roster, programme, status, flagged, members, names, version, household_number,
                    dead_paid, dead_paid_on, dead_paid_names
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
                    number: r.get(9),
                    dead_paid: DeadPaid::from_columns(r.get(10), r.get(11), r.get(12)),
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
                && c.number == h.number
        });
        if same || (held.is_none() && !h.on_roster) {
            continue;
        }
        let before = held.as_ref().map(|c| c.members.clone()).unwrap_or_default();
        let version = held.as_ref().map_or(h.version, |c| c.version.max(h.version));
        // The rosters' exports do not say what was overpaid after a death:
        // what the events last said stands.
        let dead_paid = held.as_ref().map(|c| c.dead_paid.clone()).unwrap_or_default();
        let new = Held {
            village: h.village,
            on_roster: h.on_roster,
            programme: h.programme,
            status: h.status,
            flagged: h.flagged,
            members: h.members,
            names: h.names,
            version,
            number: h.number,
            dead_paid,
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
