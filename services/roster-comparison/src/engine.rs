//! The comparison itself (R-CMP-2): two roster snapshots, the public-security
//! death register and the registry of officials' relatives in; lists (a)–(g)
//! out, in one deterministic order.
//!
//! Households are matched through their members' identity numbers, never
//! through household ids or heads: every (person, household) pair of both
//! rosters is sorted by person, and households sharing a person are joined
//! (union–find). A connected group is one "mapping": it may hold several
//! households on each side (split and merged households, a member on both
//! rosters under different heads). Sorting packed integers instead of
//! hashing strings is what keeps a province of tens of millions of members
//! inside a minute and a few hundred megabytes.
//!
//! Nothing here reads a clock or iterates a hash map: the same input gives
//! the same lists, entry for entry, in the same order (R-CMP-4).

use time::Date;

/// An identity number packed into an integer: the 17 digits times 11 plus
/// the check character (X = 10). Order follows the identity numbers' own.
pub type Person = u64;

/// Packs an 18-character identity number (already validated, upper case).
pub fn pack(id: &str) -> Option<Person> {
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let body = b[..17].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let check = match b[17] {
        d @ b'0'..=b'9' => u64::from(d - b'0'),
        b'X' | b'x' => 10,
        _ => return None,
    };
    Some(body * 11 + check)
}

/// The identity number a packed person stands for.
pub fn unpack(p: Person) -> String {
    let check = p % 11;
    let mut s = format!("{:017}", p / 11);
    s.push(if check == 10 { 'X' } else { char::from(b'0' + check as u8) });
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Programme {
    Dibao,
    SpecialHardship,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PovertyStatus {
    InPoverty,
    Exited,
    Returned,
}

/// A household on civil affairs' roster receiving dibao or special-hardship
/// support, with its living members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DibaoHousehold {
    pub id: String,
    pub village: String,
    pub programme: Programme,
    pub members: Vec<Person>,
}

/// A household on the registered-poor roster, with its living members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoorHousehold {
    pub id: String,
    pub village: String,
    pub status: PovertyStatus,
    /// The dibao-registered-poor flag as the poverty roster holds it.
    pub flagged: bool,
    pub members: Vec<Person>,
}

/// Whom the registry lists: the officials who handle dibao and village
/// committee members (001: their close relatives' benefits are put on file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OfficialRole {
    DibaoHandler,
    VillageCommittee,
}

/// One line of the registry: `person` is the official or one of their close
/// relatives (`relation` says which, in the registry's words).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OfficialLink {
    pub person: Person,
    pub official: Person,
    pub official_name: String,
    pub role: OfficialRole,
    pub relation: String,
}

/// Everything a run compares, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub dibao: Vec<DibaoHousehold>,
    pub poor: Vec<PoorHousehold>,
    /// Public-security death register: person and date of death.
    pub deaths: Vec<(Person, Date)>,
    pub officials: Vec<OfficialLink>,
}

/// The lists of R-CMP-2, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// (a) registered poor, on neither dibao nor special hardship.
    PoorNotDibao,
    /// (b) dibao or special hardship, not registered poor.
    DibaoNotPoor,
    /// (c) on both rosters (one entry per mapping).
    OnBoth,
    /// (d) the two rosters list different members for the same mapping.
    MembersDiffer,
    /// (e) the poverty roster's dibao flag disagrees with the dibao roster.
    FlagMismatch,
    /// (f) dead by public-security records, still on a paid household.
    DeceasedPaid,
    /// (g) a recipient who is an official or an official's close relative.
    OfficialRelative,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::PoorNotDibao,
        Kind::DibaoNotPoor,
        Kind::OnBoth,
        Kind::MembersDiffer,
        Kind::FlagMismatch,
        Kind::DeceasedPaid,
        Kind::OfficialRelative,
    ];

    /// The list's letter in R-CMP-2, used in entry keys and file names.
    pub fn letter(self) -> char {
        match self {
            Kind::PoorNotDibao => 'a',
            Kind::DibaoNotPoor => 'b',
            Kind::OnBoth => 'c',
            Kind::MembersDiffer => 'd',
            Kind::FlagMismatch => 'e',
            Kind::DeceasedPaid => 'f',
            Kind::OfficialRelative => 'g',
        }
    }

    pub fn from_letter(c: char) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.letter() == c)
    }

    /// The list's name as officers know it.
    pub fn name_zh(self) -> &'static str {
        match self {
            Kind::PoorNotDibao => "建档立卡贫困户未纳入低保或特困",
            Kind::DibaoNotPoor => "低保或特困户未纳入建档立卡",
            Kind::OnBoth => "两个名单均有的户",
            Kind::MembersDiffer => "两个名单家庭成员不一致",
            Kind::FlagMismatch => "低保贫困户标识不一致",
            Kind::DeceasedPaid => "公安登记已死亡仍享受待遇",
            Kind::OfficialRelative => "经办人员及村干部近亲属享受待遇（备案）",
        }
    }
}

/// What an entry says beyond which households it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    None,
    /// Members only one roster lists, for the mapping.
    MembersDiffer {
        only_dibao: Vec<Person>,
        only_poor: Vec<Person>,
    },
    /// `flagged`: the poverty roster flags the household but no dibao
    /// household shares a member with it; otherwise the reverse.
    FlagMismatch {
        flagged: bool,
    },
    DeceasedPaid {
        died_on: Date,
    },
    /// Index into `Input::officials`.
    OfficialRelative {
        link: usize,
    },
}

/// One line of one list. Households are indices into the input's `dibao`
/// and `poor`; `village` is where the entry is reported (its first dibao
/// household's village, else its first poor household's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub dibao: Vec<u32>,
    pub poor: Vec<u32>,
    pub person: Option<Person>,
    pub detail: Detail,
}

impl Entry {
    pub fn village<'a>(&self, input: &'a Input) -> &'a str {
        match (self.dibao.first(), self.poor.first()) {
            (Some(&d), _) => &input.dibao[d as usize].village,
            (None, Some(&p)) => &input.poor[p as usize].village,
            (None, None) => "",
        }
    }

    /// A key that names the same finding in every run, so a decision taken
    /// on it last month is found again this month: the list, the household
    /// ids of both sides and the person.
    pub fn key(&self, input: &Input) -> String {
        let mut key = String::with_capacity(48);
        key.push(self.kind.letter());
        key.push('|');
        join(&mut key, self.dibao.iter().map(|&d| input.dibao[d as usize].id.as_str()));
        key.push('|');
        join(&mut key, self.poor.iter().map(|&p| input.poor[p as usize].id.as_str()));
        if let Some(p) = self.person {
            key.push('|');
            key.push_str(&unpack(p));
        }
        if let Detail::OfficialRelative { link } = self.detail {
            key.push('|');
            key.push_str(&unpack(input.officials[link].official));
        }
        key
    }
}

fn join<'a>(out: &mut String, parts: impl Iterator<Item = &'a str>) {
    for (i, s) in parts.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(s);
    }
}

/// The result of a comparison: entries ordered by list, village, then the
/// households' ids.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub entries: Vec<Entry>,
}

impl Lists {
    pub fn size(&self, kind: Kind) -> usize {
        // Entries are grouped by kind, in `Kind` order.
        let start = self.entries.partition_point(|e| e.kind < kind);
        let end = self.entries.partition_point(|e| e.kind <= kind);
        end - start
    }
}

/// Where an entry goes: list, village rank, first households, person, registry line.
type SortKey = (Kind, u32, u32, u32, Person, usize);

struct UnionFind(Vec<u32>);

impl UnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let parent = self.0[x as usize];
            // Path halving keeps the trees flat without recursion.
            self.0[x as usize] = self.0[parent as usize];
            x = parent;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        // The smaller index becomes the root: the result does not depend on
        // the order pairs are met in.
        match ra.cmp(&rb) {
            std::cmp::Ordering::Less => self.0[rb as usize] = ra,
            std::cmp::Ordering::Greater => self.0[ra as usize] = rb,
            std::cmp::Ordering::Equal => {}
        }
    }
}

/// Sorts both rosters by household id (the order every list refers to).
/// Runs before [`compare`] so the lists do not depend on the order the
/// snapshot arrived in.
pub fn normalise(input: &mut Input) {
    input.dibao.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    input.poor.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for h in &mut input.dibao {
        h.members.sort_unstable();
        h.members.dedup();
    }
    for h in &mut input.poor {
        h.members.sort_unstable();
        h.members.dedup();
    }
    input.deaths.sort_unstable();
    input.deaths.dedup_by_key(|d| d.0);
    input.officials.sort_unstable();
    // One person linked to one official once, whichever registries list them.
    input.officials.dedup_by(|a, b| a.person == b.person && a.official == b.official);
}

/// Compares a normalised input (see [`normalise`]) as of `as_of`: deaths
/// after that date are not counted.
pub fn compare(input: &Input, as_of: Date) -> Lists {
    let nd = input.dibao.len() as u32;
    let np = input.poor.len() as u32;
    // Node n < nd is dibao household n; n >= nd is poor household n - nd.
    let mut pairs: Vec<(Person, u32)> = Vec::with_capacity(
        input.dibao.iter().map(|h| h.members.len()).sum::<usize>()
            + input.poor.iter().map(|h| h.members.len()).sum::<usize>(),
    );
    for (i, h) in input.dibao.iter().enumerate() {
        pairs.extend(h.members.iter().map(|&p| (p, i as u32)));
    }
    for (i, h) in input.poor.iter().enumerate() {
        pairs.extend(h.members.iter().map(|&p| (p, nd + i as u32)));
    }
    pairs.sort_unstable();

    let mut uf = UnionFind((0..nd + np).collect());
    // A poor household the sync should have flagged: it shares a person
    // with a dibao household directly (not merely through another poor one).
    let mut shares_with_dibao = vec![false; np as usize];
    let mut start = 0;
    while start < pairs.len() {
        let person = pairs[start].0;
        let mut end = start + 1;
        while end < pairs.len() && pairs[end].0 == person {
            end += 1;
        }
        let run = &pairs[start..end];
        for w in run.windows(2) {
            uf.union(w[0].1, w[1].1);
        }
        // Nodes are sorted within a run: dibao nodes come first.
        if run[0].1 < nd {
            for &(_, n) in run.iter().filter(|(_, n)| *n >= nd) {
                shares_with_dibao[(n - nd) as usize] = true;
            }
        }
        start = end;
    }
    drop(pairs);

    // Groups: nodes sorted by (root, node); each root is its group's smallest node.
    let mut nodes: Vec<(u32, u32)> = (0..nd + np).map(|n| (uf.find(n), n)).collect();
    nodes.sort_unstable();
    let mut entries = Vec::new();
    let mut start = 0;
    while start < nodes.len() {
        let root = nodes[start].0;
        let mut end = start + 1;
        while end < nodes.len() && nodes[end].0 == root {
            end += 1;
        }
        let group = &nodes[start..end];
        let dibao: Vec<u32> = group.iter().filter(|(_, n)| *n < nd).map(|&(_, n)| n).collect();
        let poor: Vec<u32> = group.iter().filter(|(_, n)| *n >= nd).map(|&(_, n)| n - nd).collect();
        group_entries(input, dibao, poor, &mut entries);
        start = end;
    }
    for (&flag_expected, (i, h)) in shares_with_dibao.iter().zip(input.poor.iter().enumerate()) {
        if h.flagged != flag_expected {
            entries.push(Entry {
                kind: Kind::FlagMismatch,
                dibao: Vec::new(),
                poor: vec![i as u32],
                person: None,
                detail: Detail::FlagMismatch { flagged: h.flagged },
            });
        }
    }
    deaths_and_officials(input, as_of, &mut entries);

    // Village order: villages ranked once, so the sort compares integers.
    let mut villages: Vec<&str> =
        input.dibao.iter().map(|h| h.village.as_str()).chain(input.poor.iter().map(|h| h.village.as_str())).collect();
    villages.sort_unstable();
    villages.dedup();
    let rank = |e: &Entry| villages.binary_search(&e.village(input)).unwrap_or(0) as u32;
    let mut keyed: Vec<(SortKey, Entry)> = entries
        .into_iter()
        .map(|e| {
            let link = match e.detail {
                Detail::OfficialRelative { link } => link,
                _ => 0,
            };
            let d = e.dibao.first().copied().unwrap_or(u32::MAX);
            let p = e.poor.first().copied().unwrap_or(u32::MAX);
            ((e.kind, rank(&e), d, p, e.person.unwrap_or(0), link), e)
        })
        .collect();
    keyed.sort_unstable_by_key(|k| k.0);
    Lists { entries: keyed.into_iter().map(|(_, e)| e).collect() }
}

/// Lists (a) to (d) for one group of households joined by shared members.
fn group_entries(input: &Input, dibao: Vec<u32>, poor: Vec<u32>, out: &mut Vec<Entry>) {
    let entry = |kind, dibao: Vec<u32>, poor: Vec<u32>, detail| Entry { kind, dibao, poor, person: None, detail };
    match (dibao.is_empty(), poor.is_empty()) {
        (true, false) => {
            out.extend(poor.into_iter().map(|p| entry(Kind::PoorNotDibao, Vec::new(), vec![p], Detail::None)));
        }
        (false, true) => {
            out.extend(dibao.into_iter().map(|d| entry(Kind::DibaoNotPoor, vec![d], Vec::new(), Detail::None)));
        }
        (false, false) => {
            let union = |lists: &mut dyn Iterator<Item = &Vec<Person>>| {
                let mut all: Vec<Person> = lists.flatten().copied().collect();
                all.sort_unstable();
                all.dedup();
                all
            };
            let d_members = union(&mut dibao.iter().map(|&d| &input.dibao[d as usize].members));
            let p_members = union(&mut poor.iter().map(|&p| &input.poor[p as usize].members));
            if d_members != p_members {
                let only_dibao = difference(&d_members, &p_members);
                let only_poor = difference(&p_members, &d_members);
                out.push(entry(
                    Kind::MembersDiffer,
                    dibao.clone(),
                    poor.clone(),
                    Detail::MembersDiffer { only_dibao, only_poor },
                ));
            }
            out.push(entry(Kind::OnBoth, dibao, poor, Detail::None));
        }
        (true, true) => {}
    }
}

/// Sorted `a` minus sorted `b`.
fn difference(a: &[Person], b: &[Person]) -> Vec<Person> {
    let mut out = Vec::new();
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j == b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

/// Lists (f) and (g): members of paid (dibao and special-hardship)
/// households found in the death register or the officials' registry.
fn deaths_and_officials(input: &Input, as_of: Date, out: &mut Vec<Entry>) {
    if input.deaths.is_empty() && input.officials.is_empty() {
        return;
    }
    for (i, h) in input.dibao.iter().enumerate() {
        for &person in &h.members {
            if let Ok(at) = input.deaths.binary_search_by_key(&person, |d| d.0) {
                let died_on = input.deaths[at].1;
                if died_on <= as_of {
                    out.push(Entry {
                        kind: Kind::DeceasedPaid,
                        dibao: vec![i as u32],
                        poor: Vec::new(),
                        person: Some(person),
                        detail: Detail::DeceasedPaid { died_on },
                    });
                }
            }
            let first = input.officials.partition_point(|o| o.person < person);
            for (link, o) in input.officials.iter().enumerate().skip(first).take_while(|(_, o)| o.person == person) {
                let _ = o;
                out.push(Entry {
                    kind: Kind::OfficialRelative,
                    dibao: vec![i as u32],
                    poor: Vec::new(),
                    person: Some(person),
                    detail: Detail::OfficialRelative { link },
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u64) -> Person {
        n
    }

    fn d(id: &str, members: &[u64]) -> DibaoHousehold {
        DibaoHousehold {
            id: id.into(),
            village: "520102001001".into(),
            programme: Programme::Dibao,
            members: members.iter().map(|&m| p(m)).collect(),
        }
    }

    fn poor(id: &str, flagged: bool, members: &[u64]) -> PoorHousehold {
        PoorHousehold {
            id: id.into(),
            village: "520102001001".into(),
            status: PovertyStatus::InPoverty,
            flagged,
            members: members.iter().map(|&m| p(m)).collect(),
        }
    }

    fn keys(input: &mut Input) -> Vec<String> {
        normalise(input);
        let lists = compare(input, time::macros::date!(2026 - 11 - 01));
        lists.entries.iter().map(|e| e.key(input)).collect()
    }

    #[test]
    fn packing_round_trips_and_keeps_order() {
        let a = "52010219800101001X";
        let b = "520102198001010028";
        assert_eq!(unpack(pack(a).expect("test value")), a);
        assert_eq!(unpack(pack(b).expect("test value")), b);
        assert!(a < b && pack(a).expect("test value") < pack(b).expect("test value"));
        assert!(pack("5201021980").is_none());
        assert!(pack("52010219800101001Y").is_none());
    }

    #[test]
    fn one_to_one_split_merge_and_lonely_households() {
        let mut input = Input {
            dibao: vec![
                d("D1", &[1, 2]), // matches P1 exactly
                d("D2", &[3]),    // split: P2 is {3, 4}, D3 is {4}
                d("D3", &[4]),
                d("D4", &[5, 6]), // merged P3 {5} + P4 {6}; 7 only on dibao
                d("D9", &[9]),    // only dibao
            ],
            poor: vec![
                poor("P1", true, &[1, 2]),
                poor("P2", true, &[3, 4]),
                poor("P3", true, &[5]),
                poor("P4", false, &[6, 8]),
                poor("P8", true, &[10]), // only poor, yet flagged
            ],
            ..Input::default()
        };
        input.dibao[3].members.push(7);
        assert_eq!(
            keys(&mut input),
            ["a||P8", "b|D9|", "c|D1|P1", "c|D2,D3|P2", "c|D4|P3,P4", "d|D4|P3,P4", "e||P4", "e||P8",]
        );
    }

    #[test]
    fn members_that_differ_are_named_per_side() {
        let mut input =
            Input { dibao: vec![d("D1", &[1, 2, 3])], poor: vec![poor("P1", true, &[2, 3, 4])], ..Input::default() };
        normalise(&mut input);
        let lists = compare(&input, time::macros::date!(2026 - 11 - 01));
        let differ = lists.entries.iter().find(|e| e.kind == Kind::MembersDiffer).expect("test value");
        assert_eq!(differ.detail, Detail::MembersDiffer { only_dibao: vec![1], only_poor: vec![4] });
    }

    #[test]
    fn deaths_count_up_to_the_run_date_and_officials_match_recipients_only() {
        let mut input = Input {
            dibao: vec![d("D1", &[1, 2]), d("D2", &[3])],
            poor: vec![poor("P1", true, &[1, 2]), poor("P2", true, &[3])],
            deaths: vec![
                (2, time::macros::date!(2026 - 03 - 01)),
                (3, time::macros::date!(2026 - 12 - 01)),
                (99, time::macros::date!(2025 - 01 - 01)),
            ],
            officials: vec![
                OfficialLink {
                    person: 1,
                    official: 50,
                    official_name: "王主任".into(),
                    role: OfficialRole::VillageCommittee,
                    relation: "子女".into(),
                },
                OfficialLink {
                    person: 77,
                    official: 50,
                    official_name: "王主任".into(),
                    role: OfficialRole::VillageCommittee,
                    relation: "配偶".into(),
                },
            ],
        };
        let keys = keys(&mut input);
        let tail: Vec<&str> =
            keys.iter().filter(|k| k.starts_with('f') || k.starts_with('g')).map(String::as_str).collect();
        assert_eq!(tail, [format!("f|D1||{}", unpack(2)), format!("g|D1||{}|{}", unpack(1), unpack(50))]);
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let make = || Input {
            dibao: vec![d("D1", &[1, 2]), d("D2", &[3]), d("D3", &[4, 5])],
            poor: vec![poor("P1", true, &[2]), poor("P2", false, &[4]), poor("P3", true, &[5, 6])],
            ..Input::default()
        };
        let mut a = make();
        let mut b = make();
        b.dibao.reverse();
        b.poor.reverse();
        for h in &mut b.dibao {
            h.members.reverse();
        }
        assert_eq!(keys(&mut a), keys(&mut b));
    }
}
