//! The entries of the lists as text — what runs store, the continuous
//! lists keep, exports write and the API answers — with the explanation an
//! officer reads, the id an entry keeps from run to run, and the digest
//! that makes a run reproducible (R-CMP-4).

use dibao_proto::labels::Label;
use ring::digest;

use crate::engine::{self, Detail, Entry, Input, Kind, Lists};
use crate::view::Labels;

/// An entry as stored and exported: every field already text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// What officers and the API call the entry: [`entry_id`] of its key.
    pub id: String,
    /// The readable key (`Entry::key`); it holds identity numbers, so it
    /// stays in memory and never reaches a file or a response.
    pub key: String,
    pub kind: Kind,
    pub village: String,
    /// "id|village|head|members" per household.
    pub dibao: Vec<String>,
    pub poor: Vec<String>,
    pub members: Vec<String>,
    pub explanation: String,
}

/// SHA-256 over the entries in list order, every field length-prefixed:
/// two runs with equal digests reported the same entries, byte for byte.
pub struct Digest(digest::Context);

impl Default for Digest {
    fn default() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }
}

impl Digest {
    pub fn add(&mut self, entries: &[StoredEntry]) {
        let ctx = &mut self.0;
        let mut field = |s: &str| {
            ctx.update(&(s.len() as u64).to_le_bytes());
            ctx.update(s.as_bytes());
        };
        for e in entries {
            field(&e.id);
            field(&e.village);
            for h in e.dibao.iter().chain(&e.poor).chain(&e.members) {
                field(h);
            }
            field(&e.explanation);
        }
    }

    pub fn finish(self) -> String {
        dibao_platform::trust::assertion::hex(self.0.finish().as_ref())
    }
}

/// The id an entry is known by: the first 16 bytes of the SHA-256 of its
/// key, in hex. The same finding gets the same id in every run (decisions
/// stay with it) without the id revealing anyone's identity number.
pub fn entry_id(key: &str) -> String {
    let d = digest::digest(&digest::SHA256, key.as_bytes());
    dibao_platform::trust::assertion::hex(&d.as_ref()[..16])
}

/// True when the entry concerns the division whose villages start with
/// `scope` (any of its households lies in it; every entry when empty).
pub fn in_scope(input: &Input, lists: &Lists, e: &Entry, scope: &str) -> bool {
    scope.is_empty()
        || lists.dibao(e).iter().any(|&d| input.dibao_village(d).starts_with(scope))
        || lists.poor(e).iter().any(|&p| input.poor_village(p).starts_with(scope))
}

/// Every entry of `lists` in the division `scope` (see [`in_scope`]).
pub fn stored_entries(input: &Input, labels: &Labels, lists: &Lists, scope: &str) -> Vec<StoredEntry> {
    stored(input, labels, lists, scope).collect()
}

/// The entries in the division `scope`, in list order, as text, with the
/// explanation an officer reads — made one at a time.
pub fn stored<'a>(
    input: &'a Input,
    labels: &'a Labels,
    lists: &'a Lists,
    scope: &'a str,
) -> impl Iterator<Item = StoredEntry> + 'a {
    lists
        .entries
        .iter()
        .filter(move |e| in_scope(input, lists, e, scope))
        .map(move |e| stored_entry(input, labels, lists, e))
}

/// One entry as text, with the explanation an officer reads.
pub fn stored_entry(input: &Input, labels: &Labels, lists: &Lists, e: &Entry) -> StoredEntry {
    let dibao = lists
        .dibao(e)
        .iter()
        .map(|&d| {
            let (id, village, head) = (input.dibao.id(d), input.dibao_village(d), labels.dibao_heads.get(d));
            let number = labels.dibao_numbers.get(d);
            format!("{id}|{village}|{head}|{}|{number}", input.dibao.members(d).len())
        })
        .collect();
    let poor = lists
        .poor(e)
        .iter()
        .map(|&p| {
            let (id, village, head) = (input.poor.id(p), input.poor_village(p), labels.poor_heads.get(p));
            let number = labels.poor_numbers.get(p);
            format!("{id}|{village}|{head}|{}|{number}", input.poor.members(p).len())
        })
        .collect();
    let mut members: Vec<String> = e.person.map(engine::unpack).into_iter().collect();
    let explanation = match &e.detail {
        Detail::None => match e.kind {
            Kind::PoorNotDibao => {
                let status = input.poor_status(lists.poor(e)[0]);
                format!("建档立卡贫困户（{}）未纳入低保或特困供养，请核实是否符合条件并作出结论", status.label())
            }
            Kind::DibaoNotPoor => {
                let programme = input.programme(lists.dibao(e)[0]);
                format!("{}户未纳入建档立卡贫困户，转扶贫部门按其标准认定", programme.label())
            }
            _ => format!("低保或特困{}户与建档立卡{}户成员相同或相连", lists.dibao(e).len(), lists.poor(e).len()),
        },
        Detail::MembersDiffer(differ) => {
            members.extend(differ.only_dibao.iter().chain(&differ.only_poor).map(|&p| engine::unpack(p)));
            format!(
                "家庭成员不一致：仅低保名单有{}人，仅建档立卡名单有{}人",
                differ.only_dibao.len(),
                differ.only_poor.len()
            )
        }
        Detail::FlagMismatch { flagged: true } => {
            "扶贫名单标为低保贫困户，但低保名单中没有与其成员相同的在保户".to_owned()
        }
        Detail::FlagMismatch { flagged: false } => "家庭成员已纳入低保或特困，但扶贫名单未标为低保贫困户".to_owned(),
        Detail::DeceasedPaid { died_on } => {
            let name = e.person.and_then(|p| labels.death_names.get(&p)).map_or("", String::as_str);
            format!("{name}经公安登记于{died_on}死亡，仍在保障家庭成员中享受待遇")
        }
        Detail::PaidAfterDeath { died_on } => {
            let name = e.person.and_then(|p| labels.death_names.get(&p)).map_or("", String::as_str);
            format!("{name}已于{died_on}死亡，死亡次月起多发的保障金尚未追回")
        }
        Detail::OfficialRelative { link } => {
            let o = &input.officials[*link as usize];
            let name = e.person.and_then(|p| labels.official_names.get(&p)).map_or("", String::as_str);
            let role = match o.role {
                engine::OfficialRole::DibaoHandler => "低保经办人员",
                engine::OfficialRole::VillageCommittee => "村委会成员",
            };
            if o.person == o.official {
                format!("{name}本人为{role}，享受低保或特困待遇，应予备案")
            } else {
                format!("{name}是{role}{}的{}，享受低保或特困待遇，应予备案", o.official_name, o.relation)
            }
        }
    };
    let key = lists.key(e, input);
    StoredEntry {
        id: entry_id(&key),
        key,
        kind: e.kind,
        village: lists.village(e, input).to_owned(),
        dibao,
        poor,
        members,
        explanation,
    }
}
