//! Precision and recall on planted cases (issue 6, "Show"): the synthetic
//! rosters carry every kind of case (a)–(g), split and merged households,
//! a member under another head, decoy deaths and relatives; the comparison
//! must report exactly the planted entries — nothing missed, nothing extra.

use std::collections::BTreeSet;

use dibao_roster_comparison::engine::{self, Input, OfficialLink, OfficialRole, PovertyStatus, Programme};
use dibao_synthetic::rosters::{self, PoorStatus, RosterConfig, Row};

fn person(id: &str) -> engine::Person {
    engine::pack(id).expect("generated identity numbers are valid")
}

/// The engine's input from the synthetic rows, as the service builds it from its snapshot.
pub fn input_of(rows: Vec<Row>) -> Input {
    let mut input = Input::default();
    for row in rows {
        match row {
            Row::Dibao(d) => {
                let programme = if d.special_hardship { Programme::SpecialHardship } else { Programme::Dibao };
                input.push_dibao(&d.id, &d.village, programme, d.members.iter().map(|m| person(&m.identity_number)));
            }
            Row::Poor(p) => {
                let status = match p.status {
                    PoorStatus::InPoverty => PovertyStatus::InPoverty,
                    PoorStatus::Exited => PovertyStatus::Exited,
                    PoorStatus::Returned => PovertyStatus::Returned,
                };
                input.push_poor(
                    &p.id,
                    &p.village,
                    status,
                    p.flagged,
                    p.members.iter().map(|m| person(&m.identity_number)),
                );
            }
            Row::Death(d) => input.deaths.push((person(&d.identity_number), d.died_on)),
            Row::Official(o) => input.officials.push(OfficialLink {
                person: person(&o.person_id),
                official: person(&o.official_id),
                official_name: o.official_name,
                role: if o.role == "低保经办人员" {
                    OfficialRole::DibaoHandler
                } else {
                    OfficialRole::VillageCommittee
                },
                relation: o.relation.to_owned(),
            }),
        }
    }
    input
}

#[test]
fn every_planted_case_is_found_and_nothing_else() {
    let mut rows = Vec::new();
    let mut expected = BTreeSet::new();
    rosters::plant(
        &RosterConfig::new(6, 30_000),
        |r| rows.push(r),
        |k| {
            assert!(expected.insert(k.clone()), "planted twice: {k}");
        },
    );
    let mut input = input_of(rows);
    engine::normalise(&mut input);
    let lists = engine::compare(&input, time::macros::date!(2026 - 10 - 31));
    let found: BTreeSet<String> = lists.entries.iter().map(|e| lists.key(e, &input)).collect();
    assert_eq!(found.len(), lists.entries.len(), "an entry reported twice");

    for kind in engine::Kind::ALL {
        let letter = kind.letter();
        let planted = expected.iter().filter(|k| k.starts_with(letter)).count();
        let hits = found.iter().filter(|k| k.starts_with(letter) && expected.contains(*k)).count();
        let reported = found.iter().filter(|k| k.starts_with(letter)).count();
        println!("({letter}) planted {planted}, reported {reported}, correct {hits}");
        assert!(planted > 0, "the generator planted no case of list ({letter})");
    }
    let missed: Vec<_> = expected.difference(&found).take(10).collect();
    let extra: Vec<_> = found.difference(&expected).take(10).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "missed (recall < 100 %): {missed:?}\nextra (precision < 100 %): {extra:?}"
    );

    // The shapes the issue names are among them: a mapping with several
    // households on each side, and a split and a merged household.
    assert!(found.iter().any(|k| k.starts_with("c|") && k.split('|').all(|part| part.contains(',') || part == "c")));
    assert!(found.iter().any(|k| k.starts_with("c|")
        && k.split('|').nth(1).is_some_and(|d| d.contains(','))
        && !k.split('|').nth(2).is_some_and(|p| p.contains(','))));
    assert!(found.iter().any(|k| k.starts_with("c|")
        && !k.split('|').nth(1).is_some_and(|d| d.contains(','))
        && k.split('|').nth(2).is_some_and(|p| p.contains(','))));
}
