//! Two rosters drawn from the generated province, with every kind of case
//! the roster comparison must find planted in known places (R-CMP-2), and
//! the list entries a correct comparison reports — the truth its precision
//! and recall are measured against.
//!
//! The province is cut into clusters of one or two generated households;
//! each cluster becomes rows on either roster, both or neither, in one of
//! the planted shapes (split and merged households, a member registered
//! under another head, members that differ, flags that disagree). Clusters
//! share no person, so each cluster's expected entries follow from its shape
//! alone. Deaths and officials' relatives are planted on dibao rows; decoys
//! (deaths of people not paid, relatives who receive nothing) are planted
//! beside them and must not be reported.
//!
//! Rows stream out through a callback: 10M members per roster never sit in
//! memory here.

use dibao_proto::common::v1::Relation;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::{Date, Duration};

use crate::generator::{Config, Generator, Member};

/// Which poverty status a registered household has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoorStatus {
    InPoverty,
    Exited,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DibaoRow {
    pub id: String,
    pub village: String,
    pub special_hardship: bool,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoorRow {
    pub id: String,
    pub village: String,
    pub status: PoorStatus,
    /// The dibao-registered-poor flag as the poverty roster holds it.
    pub flagged: bool,
    pub members: Vec<Member>,
}

/// A line of public security's death register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeathRow {
    pub identity_number: String,
    pub name: String,
    pub died_on: Date,
}

/// A line of the registry of dibao handlers and village committee members
/// and their close relatives (`relation` 本人 for the official themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficialRow {
    pub official_id: String,
    pub official_name: String,
    /// 低保经办人员 or 村委会成员.
    pub role: &'static str,
    pub village: String,
    pub person_id: String,
    pub person_name: String,
    pub relation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Dibao(DibaoRow),
    Poor(PoorRow),
    Death(DeathRow),
    Official(OfficialRow),
}

/// How large a province and which seed; the shares of each shape are fixed.
#[derive(Debug, Clone)]
pub struct RosterConfig {
    pub seed: u64,
    /// Generated households the clusters are cut from.
    pub households: usize,
    /// Counties, townships per county, villages per township.
    pub shape: (usize, usize, usize),
}

impl RosterConfig {
    /// A small province (3 counties of 4 townships of 5 villages), for tests.
    pub fn new(seed: u64, households: usize) -> Self {
        Self { seed, households, shape: (3, 4, 5) }
    }

    /// A whole province (80 counties of 15 townships of 12 villages), for benchmarks.
    pub fn province(seed: u64, households: usize) -> Self {
        Self { seed, households, shape: (80, 15, 12) }
    }
}

/// Shares of clusters by shape (out of 1,000), chosen so about 82 % of each
/// roster's members are on the other roster too, as the issue asks.
const BOTH_PER_MILLE: u32 = 700;
const POOR_ONLY_PER_MILLE: u32 = 150;
const DIBAO_ONLY_PER_MILLE: u32 = 120;

/// Counts of what was planted, for the benchmark's printout.
#[derive(Debug, Clone, Default)]
pub struct Planted {
    pub dibao_households: usize,
    pub dibao_members: usize,
    pub poor_households: usize,
    pub poor_members: usize,
    pub deaths: usize,
    pub officials: usize,
}

/// Generates the rosters. `row` receives every row; `expect` every entry a
/// correct comparison reports, as its key (the comparison's `Entry::key`
/// format: `list|dibao ids|poor ids[|person[|official]]`, ids sorted and
/// comma-separated).
pub fn plant(cfg: &RosterConfig, mut row: impl FnMut(Row), mut expect: impl FnMut(String)) -> Planted {
    let mut config = Config::new(cfg.seed, cfg.households);
    (config.counties, config.townships_per_county, config.villages_per_township) = cfg.shape;
    let mut generator = Generator::new(config);
    let as_of = generator.config().as_of;
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0x5a5a_1234);
    let mut planted = Planted::default();
    // People on neither roster: the officials are drawn from them.
    let mut officials: Vec<(Member, String)> = Vec::new();
    while let Some(h) = generator.next_household() {
        let n = h.index;
        let did = |suffix: &str| format!("DB{n:09}{suffix}");
        let pid = |suffix: &str| format!("PK{n:09}{suffix}");
        let status = match rng.random_range(0..20) {
            0..=3 => PoorStatus::Exited,
            4 => PoorStatus::Returned,
            _ => PoorStatus::InPoverty,
        };
        let special = rng.random_bool(0.1);
        let dibao = |id: String, members: Vec<Member>| DibaoRow {
            id,
            village: h.village.clone(),
            special_hardship: special,
            members,
        };
        let poor = |id: String, flagged: bool, members: Vec<Member>| PoorRow {
            id,
            village: h.village.clone(),
            status,
            flagged,
            members,
        };
        let shape = rng.random_range(0..1000u32);
        let mut dibao_rows = Vec::new();
        let mut poor_rows = Vec::new();
        if shape < BOTH_PER_MILLE {
            let size = h.members.len();
            let sub = rng.random_range(0..100u32);
            let c = |d: &[&str], p: &[&str]| format!("c|{}|{}", d.join(","), p.join(","));
            if sub < 3 && size >= 2 {
                // Members differ: the poverty roster still lists someone civil affairs removed.
                let mut fewer = h.members.clone();
                let gone = fewer.pop();
                let (d, p) = (did(""), pid(""));
                expect(c(&[&d], &[&p]));
                expect(format!("d|{d}|{p}"));
                dibao_rows.push(dibao(d, fewer));
                poor_rows.push(poor(p, true, h.members.clone()));
                let _ = gone;
            } else if sub < 5 {
                // On dibao, but the flag was never set on the poverty roster.
                let (d, p) = (did(""), pid(""));
                expect(c(&[&d], &[&p]));
                expect(format!("e||{p}"));
                dibao_rows.push(dibao(d, h.members.clone()));
                poor_rows.push(poor(p, false, h.members.clone()));
            } else if sub < 6 && size >= 4 {
                // Split on the dibao side: the children enrolled as their own household.
                let (d1, d2, p) = (did(""), did("-2"), pid(""));
                expect(c(&[&d1, &d2], &[&p]));
                dibao_rows.push(dibao(d1, h.members[..2].to_vec()));
                dibao_rows.push(dibao(d2, headed(h.members[2..].to_vec())));
                poor_rows.push(poor(p, true, h.members.clone()));
            } else if sub < 7 && size >= 2 {
                // Merged on the dibao side: the poverty roster keeps two households.
                let (d, p1, p2) = (did(""), pid(""), pid("-2"));
                expect(c(&[&d], &[&p1, &p2]));
                dibao_rows.push(dibao(d, h.members.clone()));
                poor_rows.push(poor(p1, true, h.members[..1].to_vec()));
                poor_rows.push(poor(p2, true, headed(h.members[1..].to_vec())));
            } else if sub < 8 && size >= 2 {
                // The same people under a different head on the poverty roster.
                let mut swapped = h.members.clone();
                swapped[0].relation = Relation::Spouse;
                swapped[1].relation = Relation::Head;
                swapped.swap(0, 1);
                let (d, p) = (did(""), pid(""));
                expect(c(&[&d], &[&p]));
                dibao_rows.push(dibao(d, h.members.clone()));
                poor_rows.push(poor(p, true, swapped));
            } else if sub < 9 && size >= 3 {
                // A child registered under another household's head on the poverty
                // roster (married into it) but still in the parents' dibao household:
                // both households' rows on both sides form one mapping.
                match generator.next_household() {
                    Some(other) => {
                        let m = other.index;
                        let (d1, d2) = (did(""), format!("DB{m:09}"));
                        let (p1, p2) = (pid(""), format!("PK{m:09}"));
                        expect(c(&[&d1, &d2], &[&p1, &p2]));
                        let mut parents = h.members.clone();
                        let mut child = parents.pop().expect("size >= 3");
                        let mut in_law = other.members.clone();
                        child.relation = Relation::ChildInLaw;
                        in_law.push(child);
                        dibao_rows.push(dibao(d1, h.members.clone()));
                        dibao_rows.push(DibaoRow {
                            id: d2,
                            village: other.village.clone(),
                            special_hardship: false,
                            members: other.members.clone(),
                        });
                        poor_rows.push(poor(p1, true, parents));
                        poor_rows.push(PoorRow {
                            id: p2,
                            village: other.village.clone(),
                            status,
                            flagged: true,
                            members: in_law,
                        });
                    }
                    None => {
                        let (d, p) = (did(""), pid(""));
                        expect(c(&[&d], &[&p]));
                        dibao_rows.push(dibao(d, h.members.clone()));
                        poor_rows.push(poor(p, true, h.members.clone()));
                    }
                }
            } else {
                let (d, p) = (did(""), pid(""));
                expect(c(&[&d], &[&p]));
                dibao_rows.push(dibao(d, h.members.clone()));
                poor_rows.push(poor(p, true, h.members.clone()));
            }
        } else if shape < BOTH_PER_MILLE + POOR_ONLY_PER_MILLE {
            let p = pid("");
            // One in twenty still carries a dibao flag though no dibao household matches.
            let flagged = rng.random_bool(0.05);
            expect(format!("a||{p}"));
            if flagged {
                expect(format!("e||{p}"));
            }
            // Decoy: a death of someone who is not paid is not list (f).
            if rng.random_bool(0.01) {
                let m = &h.members[0];
                row(Row::Death(DeathRow {
                    identity_number: m.identity_number.clone(),
                    name: m.name.clone(),
                    died_on: as_of - Duration::days(30),
                }));
                planted.deaths += 1;
            }
            poor_rows.push(poor(p, flagged, h.members.clone()));
        } else if shape < BOTH_PER_MILLE + POOR_ONLY_PER_MILLE + DIBAO_ONLY_PER_MILLE {
            let d = did("");
            expect(format!("b|{d}|"));
            dibao_rows.push(dibao(d, h.members.clone()));
        } else {
            // On neither roster: officials and their relatives who receive nothing.
            let head = h.members[0].clone();
            let role = if rng.random_bool(0.5) { "低保经办人员" } else { "村委会成员" };
            for m in &h.members {
                let relation =
                    if m.identity_number == head.identity_number { "本人" } else { registry_relation(m.relation) };
                row(Row::Official(OfficialRow {
                    official_id: head.identity_number.clone(),
                    official_name: head.name.clone(),
                    role,
                    village: h.village.clone(),
                    person_id: m.identity_number.clone(),
                    person_name: m.name.clone(),
                    relation,
                }));
                planted.officials += 1;
            }
            if officials.len() < 64 {
                officials.push((head, role.to_owned()));
            }
        }

        for d in &dibao_rows {
            for m in &d.members {
                // A member dead by public-security records, still on the paid roster.
                if rng.random_bool(0.003) {
                    let died_on = as_of - Duration::days(rng.random_range(1..400));
                    row(Row::Death(DeathRow {
                        identity_number: m.identity_number.clone(),
                        name: m.name.clone(),
                        died_on,
                    }));
                    planted.deaths += 1;
                    expect(format!("f|{}||{}", d.id, m.identity_number));
                }
                // A recipient who is a close relative of an official.
                if !officials.is_empty() && rng.random_bool(0.005) {
                    let (official, role) = &officials[rng.random_range(0..officials.len())];
                    let role = if role == "低保经办人员" { "低保经办人员" } else { "村委会成员" };
                    let relation = ["配偶", "父母", "子女", "兄弟姐妹"][rng.random_range(0..4)];
                    row(Row::Official(OfficialRow {
                        official_id: official.identity_number.clone(),
                        official_name: official.name.clone(),
                        role,
                        village: d.village.clone(),
                        person_id: m.identity_number.clone(),
                        person_name: m.name.clone(),
                        relation,
                    }));
                    planted.officials += 1;
                    expect(format!("g|{}||{}|{}", d.id, m.identity_number, official.identity_number));
                }
            }
        }
        for d in dibao_rows {
            planted.dibao_households += 1;
            planted.dibao_members += d.members.len();
            row(Row::Dibao(d));
        }
        for p in poor_rows {
            planted.poor_households += 1;
            planted.poor_members += p.members.len();
            row(Row::Poor(p));
        }
    }
    planted
}

/// The members of a household cut from another, with one of them as head
/// (the first; brothers and sisters of a child who became head are siblings).
fn headed(mut members: Vec<Member>) -> Vec<Member> {
    if members.is_empty() || members.iter().any(|m| m.relation == Relation::Head) {
        return members;
    }
    let was = members[0].relation;
    members[0].relation = Relation::Head;
    for m in &mut members[1..] {
        if was == Relation::Child && m.relation == Relation::Child {
            m.relation = Relation::Sibling;
        }
    }
    members
}

/// How the officials' registry (近亲属备案表) words a relation.
fn registry_relation(r: Relation) -> &'static str {
    match r {
        Relation::Head => "本人",
        Relation::Spouse => "配偶",
        Relation::Child | Relation::ChildInLaw => "子女",
        Relation::Parent => "父母",
        Relation::Sibling => "兄弟姐妹",
        _ => "其他",
    }
}

fn person(m: &Member) -> Option<dibao_proto::common::v1::Person> {
    Some(dibao_proto::common::v1::Person {
        identity_number: Some(dibao_proto::common::v1::IdentityNumber { value: m.identity_number.clone() }),
        name: m.name.clone(),
        ..Default::default()
    })
}

impl DibaoRow {
    /// The household as civil affairs' `ImportRoster` takes it: category C,
    /// 565 yuan a month, enrolled 2025-03-01; a one-person household as an
    /// adult with a severe disability supported by the family (R-ROSTER-4).
    pub fn to_civil_affairs(&self) -> dibao_proto::civil_affairs::v1::Household {
        use dibao_proto::civil_affairs::v1 as ca;
        use dibao_proto::events::v1::{BenefitCategory, Programme};
        let single = self.members.len() == 1;
        ca::Household {
            household_id: self.id.clone(),
            village: Some(dibao_proto::common::v1::DivisionCode { code: self.village.clone() }),
            programme: if self.special_hardship { Programme::SpecialHardship } else { Programme::Dibao } as i32,
            category: BenefitCategory::C as i32,
            members: self
                .members
                .iter()
                .map(|m| ca::Member {
                    person: person(m),
                    relation: m.relation as i32,
                    disability_grade: if single { 1 } else { 0 },
                    work_ability: ca::WorkAbility::Partial as i32,
                    covered: true,
                    ..Default::default()
                })
                .collect(),
            single_person_reason: if single { ca::SinglePersonReason::SevereDisabilitySupported as i32 } else { 0 },
            monthly_amount: Some(dibao_proto::common::v1::Money { fen: 56_500 }),
            enrolled_on: Some(dibao_proto::common::v1::Date { year: 2025, month: 3, day: 1 }),
            ..Default::default()
        }
    }
}

impl PoorRow {
    /// The household as the poverty office's `ImportRoster` and
    /// `RegisterHousehold` take it (poverty caused by illness; the flag is
    /// the office's own to set from civil affairs' events, not given here).
    pub fn to_poverty_alleviation(&self) -> dibao_proto::poverty_alleviation::v1::PoorHousehold {
        use dibao_proto::events::v1::{PovertyCause, RosterMember};
        use dibao_proto::poverty_alleviation::v1 as pa;
        pa::PoorHousehold {
            household_id: self.id.clone(),
            village: Some(dibao_proto::common::v1::DivisionCode { code: self.village.clone() }),
            members: self
                .members
                .iter()
                .map(|m| RosterMember { person: person(m), relation: m.relation as i32, covered: true })
                .collect(),
            causes: vec![PovertyCause::Illness as i32],
            status: pa::PovertyStatus::InPoverty as i32,
            // The office's flag as its roster carries it, planted wrong or right.
            dibao_registered_poor: self.flagged,
            ..Default::default()
        }
    }
}
