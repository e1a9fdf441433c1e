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

impl dibao_proto::labels::Label for Programme {
    fn label(self) -> &'static str {
        match self {
            Programme::Dibao => "低保",
            Programme::SpecialHardship => "特困供养",
        }
    }
}

impl dibao_proto::labels::Label for PovertyStatus {
    fn label(self) -> &'static str {
        match self {
            PovertyStatus::InPoverty => "未脱贫",
            PovertyStatus::Exited => "已脱贫",
            PovertyStatus::Returned => "返贫",
        }
    }
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

/// One roster's households, packed: ids, villages and member lists live in
/// a few large arrays instead of three allocations per household — at
/// province scale (millions of households) that is the difference between
/// hundreds of megabytes and gigabytes.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    ids: String,
    id_ends: Vec<u32>,
    villages: Vec<u32>,
    members: Vec<Person>,
    member_ends: Vec<u32>,
    /// Dibao: the programme; registered poor: the status, and [`FLAGGED`].
    attrs: Vec<u8>,
    /// Each household's position among the roster's ids in order (set by [`normalise`]).
    rank: Vec<u32>,
}

const FLAGGED: u8 = 0x80;

impl Roster {
    pub fn len(&self) -> usize {
        self.id_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_ends.is_empty()
    }

    fn span(ends: &[u32], i: u32) -> std::ops::Range<usize> {
        let i = i as usize;
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        start..ends[i] as usize
    }

    pub fn id(&self, i: u32) -> &str {
        &self.ids[Self::span(&self.id_ends, i)]
    }

    /// Living members, sorted, each once.
    pub fn members(&self, i: u32) -> &[Person] {
        &self.members[Self::span(&self.member_ends, i)]
    }

    fn rank(&self, i: u32) -> u32 {
        self.rank.get(i as usize).copied().unwrap_or(i)
    }

    fn push(&mut self, id: &str, village: u32, members: &mut Vec<Person>, attrs: u8) -> u32 {
        let i = self.len() as u32;
        self.ids.push_str(id);
        self.id_ends.push(self.ids.len() as u32);
        self.villages.push(village);
        members.sort_unstable();
        members.dedup();
        self.members.extend_from_slice(members);
        self.member_ends.push(self.members.len() as u32);
        self.attrs.push(attrs);
        i
    }

    fn normalise(&mut self) {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by(|a, b| self.id(*a).cmp(self.id(*b)));
        self.rank = vec![0; self.len()];
        for (rank, &i) in order.iter().enumerate() {
            self.rank[i as usize] = rank as u32;
        }
    }
}

/// Everything a run compares, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub dibao: Roster,
    pub poor: Roster,
    villages: Vec<String>,
    village_index: std::collections::HashMap<String, u32>,
    /// Each village's position among the villages in order (set by [`normalise`]).
    village_rank: Vec<u32>,
    /// Public-security death register: person and date of death.
    pub deaths: Vec<(Person, Date)>,
    /// Deceased members civil affairs still reports overpaid for months
    /// after their death: the dibao household (its index), the person, the
    /// date of death. No longer among the living members, still list (f).
    pub dead_paid: Vec<(u32, Person, Date)>,
    pub officials: Vec<OfficialLink>,
    scratch: Vec<Person>,
}

impl Input {
    fn village_of(&mut self, village: &str) -> u32 {
        if let Some(&v) = self.village_index.get(village) {
            return v;
        }
        let v = self.villages.len() as u32;
        self.villages.push(village.to_owned());
        self.village_index.insert(village.to_owned(), v);
        v
    }

    /// Adds a dibao or special-hardship household; returns its index.
    pub fn push_dibao(
        &mut self,
        id: &str,
        village: &str,
        programme: Programme,
        members: impl IntoIterator<Item = Person>,
    ) -> u32 {
        let v = self.village_of(village);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(members);
        let i = self.dibao.push(id, v, &mut scratch, programme as u8);
        self.scratch = scratch;
        i
    }

    /// Adds a registered-poor household with the dibao flag it carries; returns its index.
    pub fn push_poor(
        &mut self,
        id: &str,
        village: &str,
        status: PovertyStatus,
        flagged: bool,
        members: impl IntoIterator<Item = Person>,
    ) -> u32 {
        let v = self.village_of(village);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(members);
        let attrs = status as u8 | if flagged { FLAGGED } else { 0 };
        let i = self.poor.push(id, v, &mut scratch, attrs);
        self.scratch = scratch;
        i
    }

    pub fn dibao_village(&self, i: u32) -> &str {
        &self.villages[self.dibao.villages[i as usize] as usize]
    }

    pub fn poor_village(&self, i: u32) -> &str {
        &self.villages[self.poor.villages[i as usize] as usize]
    }

    pub fn programme(&self, i: u32) -> Programme {
        if self.dibao.attrs[i as usize] == Programme::SpecialHardship as u8 {
            Programme::SpecialHardship
        } else {
            Programme::Dibao
        }
    }

    pub fn poor_status(&self, i: u32) -> PovertyStatus {
        match self.poor.attrs[i as usize] & !FLAGGED {
            s if s == PovertyStatus::Exited as u8 => PovertyStatus::Exited,
            s if s == PovertyStatus::Returned as u8 => PovertyStatus::Returned,
            _ => PovertyStatus::InPoverty,
        }
    }

    pub fn poor_flagged(&self, i: u32) -> bool {
        self.poor.attrs[i as usize] & FLAGGED != 0
    }
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
}

impl From<Kind> for dibao_proto::comparison::v1::ListKind {
    fn from(k: Kind) -> Self {
        use dibao_proto::comparison::v1::ListKind;
        match k {
            Kind::PoorNotDibao => ListKind::PoorNotDibao,
            Kind::DibaoNotPoor => ListKind::DibaoNotPoor,
            Kind::OnBoth => ListKind::OnBoth,
            Kind::MembersDiffer => ListKind::MembersDiffer,
            Kind::FlagMismatch => ListKind::FlagMismatch,
            Kind::DeceasedPaid => ListKind::DeceasedPaid,
            Kind::OfficialRelative => ListKind::OfficialRelative,
        }
    }
}

/// The list's name as officers know it (one table, the contract's).
impl dibao_proto::labels::Label for Kind {
    fn label(self) -> &'static str {
        dibao_proto::labels::Label::label(dibao_proto::comparison::v1::ListKind::from(self))
    }
}

/// Members only one roster lists, for a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Differ {
    pub only_dibao: Vec<Person>,
    pub only_poor: Vec<Person>,
}

/// What an entry says beyond which households it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    None,
    /// Boxed: few entries carry it, and it would double every entry's size.
    MembersDiffer(Box<Differ>),
    /// `flagged`: the poverty roster flags the household but no dibao
    /// household shares a member with it; otherwise the reverse.
    FlagMismatch {
        flagged: bool,
    },
    DeceasedPaid {
        died_on: Date,
    },
    /// A member civil affairs recorded dead whose household is still
    /// overpaid for months after the death.
    PaidAfterDeath {
        died_on: Date,
    },
    /// Index into `Input::officials`.
    OfficialRelative {
        link: u32,
    },
}

/// A run of household indices in [`Lists::households`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

/// One line of one list. Households are indices into the input's rosters,
/// ordered by id, kept in [`Lists`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    dibao: Span,
    poor: Span,
    pub person: Option<Person>,
    pub detail: Detail,
}

/// The result of a comparison: entries ordered by list, village, then the
/// households' ids.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub entries: Vec<Entry>,
    households: Vec<u32>,
}

impl Lists {
    pub fn size(&self, kind: Kind) -> usize {
        // Entries are grouped by kind, in `Kind` order.
        let start = self.entries.partition_point(|e| e.kind < kind);
        let end = self.entries.partition_point(|e| e.kind <= kind);
        end - start
    }

    pub fn dibao(&self, e: &Entry) -> &[u32] {
        &self.households[e.dibao.start as usize..(e.dibao.start + e.dibao.len) as usize]
    }

    pub fn poor(&self, e: &Entry) -> &[u32] {
        &self.households[e.poor.start as usize..(e.poor.start + e.poor.len) as usize]
    }

    /// Where the entry is reported: its first dibao household's village,
    /// else its first registered-poor household's.
    pub fn village<'a>(&self, e: &Entry, input: &'a Input) -> &'a str {
        match (self.dibao(e).first(), self.poor(e).first()) {
            (Some(&d), _) => input.dibao_village(d),
            (None, Some(&p)) => input.poor_village(p),
            (None, None) => "",
        }
    }

    /// A key that names the same finding in every run, so a decision taken
    /// on it last month is found again this month: the list, the household
    /// ids of both sides and the person.
    pub fn key(&self, e: &Entry, input: &Input) -> String {
        let mut key = String::with_capacity(48);
        key.push(e.kind.letter());
        key.push('|');
        join(&mut key, self.dibao(e).iter().map(|&d| input.dibao.id(d)));
        key.push('|');
        join(&mut key, self.poor(e).iter().map(|&p| input.poor.id(p)));
        if let Some(p) = e.person {
            key.push('|');
            key.push_str(&unpack(p));
        }
        if let Detail::OfficialRelative { link } = e.detail {
            key.push('|');
            key.push_str(&unpack(input.officials[link as usize].official));
        }
        key
    }

    fn span(&mut self, households: impl IntoIterator<Item = u32>) -> Span {
        let start = self.households.len() as u32;
        self.households.extend(households);
        Span { start, len: self.households.len() as u32 - start }
    }

    fn push(&mut self, kind: Kind, dibao: &[u32], poor: &[u32], person: Option<Person>, detail: Detail) {
        let dibao = self.span(dibao.iter().copied());
        let poor = self.span(poor.iter().copied());
        self.entries.push(Entry { kind, dibao, poor, person, detail });
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
        match ra.cmp(&rb) {
            std::cmp::Ordering::Less => self.0[rb as usize] = ra,
            std::cmp::Ordering::Greater => self.0[ra as usize] = rb,
            std::cmp::Ordering::Equal => {}
        }
    }
}

/// Ranks both rosters' households by id and the villages by code, and sorts
/// the registers: after it, the lists do not depend on the order the
/// snapshot arrived in.
pub fn normalise(input: &mut Input) {
    input.dibao.normalise();
    input.poor.normalise();
    let mut order: Vec<u32> = (0..input.villages.len() as u32).collect();
    order.sort_unstable_by(|a, b| input.villages[*a as usize].cmp(&input.villages[*b as usize]));
    input.village_rank = vec![0; order.len()];
    for (rank, &v) in order.iter().enumerate() {
        input.village_rank[v as usize] = rank as u32;
    }
    input.deaths.sort_unstable();
    input.deaths.dedup_by_key(|d| d.0);
    input.dead_paid.sort_unstable();
    input.dead_paid.dedup_by_key(|d| (d.0, d.1));
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
    let mut pairs: Vec<(Person, u32)> = Vec::with_capacity(input.dibao.members.len() + input.poor.members.len());
    for i in 0..nd {
        pairs.extend(input.dibao.members(i).iter().map(|&p| (p, i)));
    }
    for i in 0..np {
        pairs.extend(input.poor.members(i).iter().map(|&p| (p, nd + i)));
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
    drop(uf);
    nodes.sort_unstable();
    let mut lists = Lists::default();
    let (mut dibao, mut poor) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < nodes.len() {
        let root = nodes[start].0;
        let mut end = start + 1;
        while end < nodes.len() && nodes[end].0 == root {
            end += 1;
        }
        dibao.clear();
        poor.clear();
        for &(_, n) in &nodes[start..end] {
            if n < nd { dibao.push(n) } else { poor.push(n - nd) }
        }
        dibao.sort_unstable_by_key(|&d| input.dibao.rank(d));
        poor.sort_unstable_by_key(|&p| input.poor.rank(p));
        group_entries(input, &dibao, &poor, &mut lists);
        start = end;
    }
    drop(nodes);
    for (i, &flag_expected) in shares_with_dibao.iter().enumerate() {
        let flagged = input.poor_flagged(i as u32);
        if flagged != flag_expected {
            lists.push(Kind::FlagMismatch, &[], &[i as u32], None, Detail::FlagMismatch { flagged });
        }
    }
    deaths_and_officials(input, as_of, &mut lists);

    // List, village, households by id, person, registry line: integers
    // compared, keys computed once per entry.
    let Lists { mut entries, households } = lists;
    let first = |s: Span| households.get(s.start as usize).filter(|_| s.len > 0).copied();
    entries.sort_by_cached_key(|e| {
        let d = first(e.dibao);
        let p = first(e.poor);
        let village = match (d, p) {
            (Some(d), _) => input.dibao.villages[d as usize],
            (None, Some(p)) => input.poor.villages[p as usize],
            (None, None) => 0,
        };
        let link = match e.detail {
            Detail::OfficialRelative { link } => link,
            _ => 0,
        };
        (
            e.kind,
            input.village_rank.get(village as usize).copied().unwrap_or(0),
            d.map_or(u32::MAX, |d| input.dibao.rank(d)),
            p.map_or(u32::MAX, |p| input.poor.rank(p)),
            e.person.unwrap_or(0),
            link,
        )
    });
    Lists { entries, households }
}

/// Lists (a) to (d) for one group of households joined by shared members.
fn group_entries(input: &Input, dibao: &[u32], poor: &[u32], out: &mut Lists) {
    match (dibao.is_empty(), poor.is_empty()) {
        (true, false) => {
            for &p in poor {
                out.push(Kind::PoorNotDibao, &[], &[p], None, Detail::None);
            }
        }
        (false, true) => {
            for &d in dibao {
                out.push(Kind::DibaoNotPoor, &[d], &[], None, Detail::None);
            }
        }
        (false, false) => {
            // Most mappings are one household each side: compare in place.
            let differ = if let ([d], [p]) = (dibao, poor) {
                let (dm, pm) = (input.dibao.members(*d), input.poor.members(*p));
                (dm != pm).then(|| (difference(dm, pm), difference(pm, dm)))
            } else {
                let union = |members: &mut dyn Iterator<Item = &[Person]>| {
                    let mut all: Vec<Person> = members.flatten().copied().collect();
                    all.sort_unstable();
                    all.dedup();
                    all
                };
                let dm = union(&mut dibao.iter().map(|&d| input.dibao.members(d)));
                let pm = union(&mut poor.iter().map(|&p| input.poor.members(p)));
                (dm != pm).then(|| (difference(&dm, &pm), difference(&pm, &dm)))
            };
            if let Some((only_dibao, only_poor)) = differ {
                let detail = Detail::MembersDiffer(Box::new(Differ { only_dibao, only_poor }));
                out.push(Kind::MembersDiffer, dibao, poor, None, detail);
            }
            out.push(Kind::OnBoth, dibao, poor, None, Detail::None);
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
fn deaths_and_officials(input: &Input, as_of: Date, out: &mut Lists) {
    for &(i, person, died_on) in &input.dead_paid {
        // Still a living member: the death register's line, if any, speaks for it.
        if input.dibao.members(i).binary_search(&person).is_err() {
            out.push(Kind::DeceasedPaid, &[i], &[], Some(person), Detail::PaidAfterDeath { died_on });
        }
    }
    if input.deaths.is_empty() && input.officials.is_empty() {
        return;
    }
    for i in 0..input.dibao.len() as u32 {
        for &person in input.dibao.members(i) {
            if let Ok(at) = input.deaths.binary_search_by_key(&person, |d| d.0) {
                let died_on = input.deaths[at].1;
                if died_on <= as_of {
                    out.push(Kind::DeceasedPaid, &[i], &[], Some(person), Detail::DeceasedPaid { died_on });
                }
            }
            let first = input.officials.partition_point(|o| o.person < person);
            for link in (first..input.officials.len()).take_while(|&l| input.officials[l].person == person) {
                out.push(
                    Kind::OfficialRelative,
                    &[i],
                    &[],
                    Some(person),
                    Detail::OfficialRelative { link: link as u32 },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type D<'a> = (&'a str, &'a [u64]);
    type P<'a> = (&'a str, bool, &'a [u64]);

    fn input(dibao: &[D<'_>], poor: &[P<'_>]) -> Input {
        let mut input = Input::default();
        for (id, members) in dibao {
            input.push_dibao(id, "520102001001", Programme::Dibao, members.iter().copied());
        }
        for (id, flagged, members) in poor {
            input.push_poor(id, "520102001001", PovertyStatus::InPoverty, *flagged, members.iter().copied());
        }
        input
    }

    fn keys(input: &mut Input) -> Vec<String> {
        normalise(input);
        let lists = compare(input, time::macros::date!(2026 - 11 - 01));
        lists.entries.iter().map(|e| lists.key(e, input)).collect()
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
        let mut input = input(
            &[
                ("D1", &[1, 2]), // matches P1 exactly
                ("D2", &[3]),    // split: P2 is {3, 4}, D3 is {4}
                ("D3", &[4]),
                ("D4", &[5, 6, 7]), // merged P3 {5} + P4 {6}; 7 only on dibao
                ("D9", &[9]),       // only dibao
            ],
            &[
                ("P1", true, &[1, 2]),
                ("P2", true, &[3, 4]),
                ("P3", true, &[5]),
                ("P4", false, &[6, 8]),
                ("P8", true, &[10]), // only poor, yet flagged
            ],
        );
        assert_eq!(
            keys(&mut input),
            ["a||P8", "b|D9|", "c|D1|P1", "c|D2,D3|P2", "c|D4|P3,P4", "d|D4|P3,P4", "e||P4", "e||P8",]
        );
    }

    #[test]
    fn members_that_differ_are_named_per_side() {
        let mut input = input(&[("D1", &[1, 2, 3])], &[("P1", true, &[2, 3, 4])]);
        normalise(&mut input);
        let lists = compare(&input, time::macros::date!(2026 - 11 - 01));
        let differ = lists.entries.iter().find(|e| e.kind == Kind::MembersDiffer).expect("test value");
        assert_eq!(differ.detail, Detail::MembersDiffer(Box::new(Differ { only_dibao: vec![1], only_poor: vec![4] })));
    }

    #[test]
    fn deaths_count_up_to_the_run_date_and_officials_match_recipients_only() {
        let mut input = input(&[("D1", &[1, 2]), ("D2", &[3])], &[("P1", true, &[1, 2]), ("P2", true, &[3])]);
        input.deaths = vec![
            (2, time::macros::date!(2026 - 03 - 01)),
            (3, time::macros::date!(2026 - 12 - 01)),
            (99, time::macros::date!(2025 - 01 - 01)),
        ];
        input.officials = vec![
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
        ];
        let keys = keys(&mut input);
        let tail: Vec<&str> =
            keys.iter().filter(|k| k.starts_with('f') || k.starts_with('g')).map(String::as_str).collect();
        assert_eq!(tail, [format!("f|D1||{}", unpack(2)), format!("g|D1||{}|{}", unpack(1), unpack(50))]);
    }

    #[test]
    fn a_member_paid_after_death_is_listed_though_no_longer_living() {
        // D1's member 7 died and is still overpaid; D2's member 3 is said to
        // be, but is a living member (the register, not this, would speak).
        let mut input = input(&[("D1", &[1]), ("D2", &[3])], &[("P1", true, &[1]), ("P2", true, &[3])]);
        let on = time::macros::date!(2026 - 09 - 20);
        input.dead_paid = vec![(0, 7, on), (1, 3, on), (0, 7, on)];
        let keys = keys(&mut input);
        let f: Vec<&str> = keys.iter().filter(|k| k.starts_with('f')).map(String::as_str).collect();
        assert_eq!(f, [format!("f|D1||{}", unpack(7))]);
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let dibao: [D<'_>; 3] = [("D1", &[1, 2]), ("D2", &[3]), ("D3", &[4, 5])];
        let poor: [P<'_>; 3] = [("P1", true, &[2]), ("P2", false, &[4]), ("P3", true, &[5, 6])];
        let mut a = input(&dibao, &poor);
        let (mut rd, mut rp) = (dibao.to_vec(), poor.to_vec());
        rd.reverse();
        rp.reverse();
        let reversed: Vec<(&str, Vec<u64>)> =
            rd.iter().map(|(id, m)| (*id, m.iter().rev().copied().collect())).collect();
        let rd: Vec<D<'_>> = reversed.iter().map(|(id, m)| (*id, m.as_slice())).collect();
        let mut b = input(&rd, &rp);
        assert_eq!(keys(&mut a), keys(&mut b));
    }
}
