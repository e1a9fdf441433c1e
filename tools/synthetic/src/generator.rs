//! The seeded synthetic province: divisions (counties, townships, villages),
//! households with members whose identity numbers are valid (GB 11643), and
//! the department records that go with them — vehicles, household
//! registration, deaths, pensions and contributions, employment, flats,
//! business licences, deposits at several banks, income tax, disability
//! certificates, registered illnesses and medical spending.
//!
//! The same seed and size give the same province, record for record, so a
//! test can compare what the hub reports with what was generated (the
//! ground truth). Households come out one at a time: 10M members stream
//! without holding the province in memory.

use std::collections::HashMap;

use dibao_proto::common::v1::Relation;
use dibao_proto::department::v1::{Department, Item};
use dibao_proto::types::check_character;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::{Date, Duration, Month};

/// Size and shape of the province.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub households: usize,
    /// Two-digit GB/T 2260 province code: 22 or 52, whose township tables
    /// are shipped.
    pub province: u8,
    pub counties: usize,
    pub townships_per_county: usize,
    pub villages_per_township: usize,
    /// The date department records are "as of".
    pub as_of: Date,
}

impl Config {
    pub fn new(seed: u64, households: usize) -> Self {
        Self {
            seed,
            households,
            province: 52,
            counties: 3,
            townships_per_county: 4,
            villages_per_township: 5,
            as_of: Date::from_calendar_date(2026, Month::October, 31).unwrap_or(Date::MIN),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub identity_number: String,
    pub name: String,
    pub relation: Relation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Household {
    /// Position in the generated sequence, from 0.
    pub index: usize,
    /// Twelve-digit village code.
    pub village: String,
    pub members: Vec<Member>,
}

impl Household {
    pub fn county(&self) -> &str {
        &self.village[..6]
    }
    pub fn township(&self) -> &str {
        &self.village[..9]
    }
}

/// One record in a department's system, as the simulator serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeptRecord {
    pub department: Department,
    pub item: Item,
    pub person: String,
    pub record_id: String,
    /// The sub-source: a bank's name for deposits, else the department's system.
    pub source: String,
    pub as_of: Date,
    pub amount_fen: i64,
    pub quantity: i64,
    pub attrs: Vec<(String, String)>,
}

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "罗", "龙", "杨", "潘", "吴"];
const GIVEN: &[&str] = &[
    "德明", "秀英", "国强", "桂兰", "建华", "玉梅", "志勇", "春花", "明辉", "小芳", "金山", "翠兰", "光荣", "海燕",
    "正清", "凤英", "文才", "丽娟", "永福", "晓东",
];
/// Banks a deposit query fans out to.
pub const BANKS: &[(&str, &str)] =
    &[("abc", "中国农业银行"), ("rcc", "农村信用合作社"), ("psbc", "中国邮政储蓄银行"), ("ccb", "中国建设银行")];
const PLACE: &[&str] =
    &["青", "岩", "石", "桥", "花", "松", "水", "坪", "龙", "云", "凤", "平", "塘", "沙", "溪", "坡", "河", "山"];
const BRANDS: &[&str] = &["五菱宏光", "长安之星", "比亚迪秦", "哈弗H6", "大众朗逸", "福田农用车"];

/// The townships and villages of a province the generator can draw from
/// (the tables `proto/data/divisions` ships), by code.
fn shipped(province: u8) -> std::collections::BTreeMap<String, String> {
    let text = match province {
        22 => include_str!("../../../proto/data/divisions/22.csv"),
        52 => include_str!("../../../proto/data/divisions/52.csv"),
        _ => "",
    };
    text.lines()
        .filter(|l| !l.starts_with('#') && *l != "code,name")
        .filter_map(|l| l.split_once(','))
        .map(|(c, n)| (c.to_owned(), n.to_owned()))
        .collect()
}

/// The province: its divisions and, on iteration, its households with
/// their department records.
pub struct Generator {
    cfg: Config,
    rng: StdRng,
    /// Disability and medical records draw from their own sequence, so the
    /// rest of the province is what it was before these departments joined.
    health: StdRng,
    next: usize,
    pub counties: Vec<Division>,
    pub townships: Vec<Division>,
    pub villages: Vec<Division>,
    /// Sequence numbers used per (region, birth date, sex), so no two
    /// people share an identity number.
    used: HashMap<(u32, i32, bool), u16>,
}

impl Generator {
    pub fn new(cfg: Config) -> Self {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let (mut counties, mut townships, mut villages) = (vec![], vec![], vec![]);
        // Real divisions (R-ROSTER-3): the province's first counties in
        // GB/T 2260 that its township table covers, each with its first
        // townships and their first villages (fewer where a place has fewer).
        let local = shipped(cfg.province);
        let below = |code: &str, len: usize| -> Vec<Division> {
            local
                .range(code.to_owned()..)
                .take_while(|(c, _)| c.starts_with(code))
                .filter(|(c, _)| c.len() == len)
                .map(|(c, n)| Division { code: c.clone(), name: n.clone() })
                .collect()
        };
        let province = format!("{:02}0000", cfg.province);
        for (code, name) in dibao_proto::divisions::counties_in(&province) {
            if counties.len() == cfg.counties {
                break;
            }
            let in_county: Vec<Division> = below(code, 9).into_iter().take(cfg.townships_per_county).collect();
            if in_county.is_empty() {
                continue;
            }
            counties.push(Division { code: code.to_owned(), name: name.to_owned() });
            for township in in_county {
                villages.extend(below(&township.code, 12).into_iter().take(cfg.villages_per_township));
                townships.push(township);
            }
        }
        assert!(!villages.is_empty(), "no shipped township table for province {:02}", cfg.province);
        // "health" in ASCII: any fixed offset would do.
        let health = StdRng::seed_from_u64(cfg.seed ^ 0x6865_616c_7468);
        Self { cfg, rng, health, next: 0, counties, townships, villages, used: HashMap::new() }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// A valid identity number unused so far, born on or near `born`.
    fn identity(&mut self, region: &str, mut born: Date, male: bool) -> String {
        let region_n: u32 = region.parse().unwrap_or(0);
        loop {
            let slot = self.used.entry((region_n, born.to_julian_day(), male)).or_insert(0);
            if *slot < 499 {
                *slot += 1;
                // Odd sequence numbers are men's, even women's.
                let seq = 2 * u32::from(*slot) - u32::from(male);
                let body = format!("{region}{:04}{:02}{:02}{seq:03}", born.year(), born.month() as u8, born.day());
                return format!("{body}{}", check_character(&body));
            }
            born = born.next_day().unwrap_or(born);
        }
    }

    fn born_aged(&mut self, years: std::ops::Range<i64>) -> Date {
        let days = self.rng.random_range(years.start * 365..years.end * 365);
        self.cfg.as_of - Duration::days(days)
    }

    fn person(
        &mut self,
        region: &str,
        surname: &str,
        ages: std::ops::Range<i64>,
        male: bool,
        relation: Relation,
    ) -> Member {
        let born = self.born_aged(ages);
        let identity_number = self.identity(region, born, male);
        let name = format!("{surname}{}", pick(&mut self.rng, GIVEN));
        Member { identity_number, name, relation }
    }

    fn household(&mut self) -> Household {
        let index = self.next;
        let village = self.villages[self.rng.random_range(0..self.villages.len())].code.clone();
        let region = village[..6].to_owned();
        let surname = pick(&mut self.rng, SURNAMES).to_owned();
        let head_male = self.rng.random_bool(0.8);
        let mut members = vec![self.person(&region, &surname, 28..85, head_male, Relation::Head)];
        let size = *[1, 2, 2, 3, 3, 3, 4, 4, 5, 6].get(self.rng.random_range(0..10)).unwrap_or(&3);
        if size >= 2 {
            let spouse_surname = pick(&mut self.rng, SURNAMES).to_owned();
            members.push(self.person(&region, &spouse_surname, 26..80, !head_male, Relation::Spouse));
        }
        for _ in 2..size {
            let male = self.rng.random_bool(0.5);
            members.push(self.person(&region, &surname, 1..25, male, Relation::Child));
        }
        Household { index, village, members }
    }

    /// The department records of a household's members. About one
    /// household in eight is better off than the roster suggests (a car, a
    /// flat, a business, savings) — the cases verification is for.
    fn records(&mut self, h: &Household) -> Vec<DeptRecord> {
        let as_of = self.cfg.as_of;
        let better_off = self.rng.random_bool(0.125);
        let mut out = Vec::new();
        let n = h.index;
        for (m_i, m) in h.members.iter().enumerate() {
            let id = m.identity_number.clone();
            let rec = |department, item, key: &str, source: &str, amount_fen, quantity, attrs: Vec<(&str, String)>| {
                DeptRecord {
                    department,
                    item,
                    person: id.clone(),
                    record_id: format!("{key}-{n}-{m_i}"),
                    source: source.to_owned(),
                    as_of,
                    amount_fen,
                    quantity,
                    attrs: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                }
            };
            let age = as_of.year() - id[6..10].parse::<i32>().unwrap_or(as_of.year());
            let relation = match m.relation {
                Relation::Head => "户主",
                Relation::Spouse => "配偶",
                _ => "子女",
            };
            out.push(rec(
                Department::PublicSecurity,
                Item::HouseholdRegistration,
                "HJ",
                "公安人口信息系统",
                0,
                0,
                vec![
                    ("village", h.village.clone()),
                    ("household_no", format!("{}{:06}", &h.village[..6], n)),
                    ("relation", relation.into()),
                ],
            ));
            if self.rng.random_bool(if age >= 70 { 0.04 } else { 0.005 }) {
                let died = as_of - Duration::days(self.rng.random_range(10..700));
                out.push(rec(
                    Department::PublicSecurity,
                    Item::Death,
                    "SW",
                    "公安人口信息系统",
                    0,
                    0,
                    vec![("died_on", died.to_string())],
                ));
            }
            if age >= 18 && (better_off && m_i == 0 || self.rng.random_bool(0.02)) {
                let registered = as_of - Duration::days(self.rng.random_range(100..3000));
                let plate = format!(
                    "贵{}{:05}",
                    ['A', 'B', 'C', 'D', 'E'][self.rng.random_range(0..5)],
                    self.rng.random_range(0..100_000)
                );
                out.push(rec(
                    Department::PublicSecurity,
                    Item::Vehicles,
                    "CL",
                    "公安交通管理系统",
                    0,
                    1,
                    vec![
                        ("plate", plate),
                        ("brand", pick(&mut self.rng, BRANDS).into()),
                        ("registered_on", registered.to_string()),
                    ],
                ));
            }
            if age >= 60 && self.rng.random_bool(0.6) {
                let (kind, amount) = if self.rng.random_bool(0.85) {
                    ("城乡居民基本养老保险", self.rng.random_range(12_000..25_000))
                } else {
                    ("企业职工基本养老保险", self.rng.random_range(150_000..350_000))
                };
                out.push(rec(
                    Department::HumanResources,
                    Item::Pension,
                    "YL",
                    "社会保险信息系统",
                    amount,
                    0,
                    vec![("kind", kind.into())],
                ));
            }
            if (18..60).contains(&age) && (better_off || self.rng.random_bool(0.08)) {
                let employer = format!("{}{}建材有限公司", pick(&mut self.rng, PLACE), pick(&mut self.rng, PLACE));
                let wage = self.rng.random_range(250_000..600_000);
                let started = as_of - Duration::days(self.rng.random_range(60..2000));
                out.push(rec(
                    Department::HumanResources,
                    Item::Employment,
                    "JY",
                    "就业信息系统",
                    wage,
                    0,
                    vec![("employer", employer.clone()), ("started_on", started.to_string())],
                ));
                out.push(rec(
                    Department::HumanResources,
                    Item::SocialInsurance,
                    "JF",
                    "社会保险信息系统",
                    wage,
                    12,
                    vec![("employer", employer)],
                ));
            } else if (18..60).contains(&age) && self.rng.random_bool(0.02) {
                out.push(rec(
                    Department::HumanResources,
                    Item::UnemploymentBenefit,
                    "SY",
                    "失业保险信息系统",
                    self.rng.random_range(120_000..180_000),
                    self.rng.random_range(1..12),
                    vec![],
                ));
            }
            if m_i == 0 && (better_off && self.rng.random_bool(0.5) || self.rng.random_bool(0.01)) {
                let town = pick(&mut self.rng, PLACE);
                out.push(rec(
                    Department::Housing,
                    Item::Property,
                    "FC",
                    "不动产登记系统",
                    0,
                    self.rng.random_range(6_000..14_000),
                    vec![
                        (
                            "address",
                            format!(
                                "{town}城区幸福路{}号{}单元",
                                self.rng.random_range(1..300),
                                self.rng.random_range(1..6)
                            ),
                        ),
                        ("certificate", format!("黔(2024)不动产权第{:07}号", self.rng.random_range(0..10_000_000))),
                        ("registered_on", (as_of - Duration::days(self.rng.random_range(30..3000))).to_string()),
                    ],
                ));
            }
            if age >= 18 && (better_off && m_i == 0 && self.rng.random_bool(0.4) || self.rng.random_bool(0.005)) {
                let body: String = (0..17).map(|_| char::from(b'0' + self.rng.random_range(0..10u8))).collect();
                out.push(rec(
                    Department::Commerce,
                    Item::BusinessLicence,
                    "GS",
                    "市场主体登记系统",
                    self.rng.random_range(1..50) * 1_000_000,
                    0,
                    vec![
                        ("credit_code", format!("{body}{}", self.rng.random_range(0..10))),
                        (
                            "name",
                            format!(
                                "{}县{}{}农业专业合作社",
                                &h.village[..6],
                                pick(&mut self.rng, PLACE),
                                pick(&mut self.rng, PLACE)
                            ),
                        ),
                        ("role", if self.rng.random_bool(0.7) { "法定代表人" } else { "股东" }.into()),
                    ],
                ));
            }
            if age >= 16 {
                for (code, bank) in BANKS {
                    let p = if better_off { 0.5 } else { 0.15 };
                    if self.rng.random_bool(p) {
                        let balance = if better_off {
                            self.rng.random_range(1_000_000..20_000_000)
                        } else {
                            self.rng.random_range(0..300_000)
                        };
                        out.push(rec(
                            Department::Bank,
                            Item::Deposits,
                            &format!("CK{code}"),
                            bank,
                            balance,
                            0,
                            vec![
                                ("bank", (*code).into()),
                                ("account", format!("6228****{:04}", self.rng.random_range(0..10_000))),
                            ],
                        ));
                    }
                }
            }
            if (18..60).contains(&age) && (better_off && self.rng.random_bool(0.3) || self.rng.random_bool(0.01)) {
                let income = self.rng.random_range(6_000_000..20_000_000);
                out.push(rec(
                    Department::Tax,
                    Item::IncomeTax,
                    "GS",
                    "自然人电子税务局",
                    income,
                    i64::from(as_of.year() - 1),
                    vec![("tax_paid", ((income - 6_000_000).max(0) * 3 / 100).to_string())],
                ));
            }
            out.extend(self.health_records(&id, age, n, m_i));
        }
        out
    }
}

impl Generator {
    /// A person's disability certificate, registered illnesses and the
    /// twelve months' out-of-pocket medical spending: about one person in
    /// sixteen holds a certificate (a tenth of them expired), illness grows
    /// with age, and most of the ill spend something of their own.
    fn health_records(&mut self, id: &str, age: i32, n: usize, m_i: usize) -> Vec<DeptRecord> {
        let as_of = self.cfg.as_of;
        let rng = &mut self.health;
        let mut out = Vec::new();
        let rec = |department, item, record_id: String, amount_fen, quantity, attrs: Vec<(&str, String)>| DeptRecord {
            department,
            item,
            person: id.to_owned(),
            record_id,
            source: if department == Department::DisabilityFederation {
                "全国残疾人人口基础数据库"
            } else {
                "医疗保障信息平台"
            }
            .to_owned(),
            as_of,
            amount_fen,
            quantity,
            attrs: attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        };
        if rng.random_bool(0.0625) {
            const TYPES: [&str; 7] = ["视力", "听力", "言语", "肢体", "智力", "精神", "多重"];
            const GRADES: [&str; 4] = ["一级", "二级", "三级", "四级"];
            let (kind, grade) = (rng.random_range(0..7), rng.random_range(0..4));
            let issued = as_of - Duration::days(rng.random_range(100..4000));
            // Certificates run ten years; a tenth have lapsed unrenewed.
            let valid_until = if rng.random_bool(0.1) {
                as_of - Duration::days(rng.random_range(1..700))
            } else {
                issued + Duration::days(3652)
            };
            out.push(rec(
                Department::DisabilityFederation,
                Item::DisabilityCertificate,
                format!("{id}{}{}", kind + 1, grade + 1),
                0,
                i64::from(grade) + 1,
                vec![
                    ("type", TYPES[kind].into()),
                    ("grade", GRADES[grade as usize].into()),
                    ("valid_until", valid_until.max(issued).to_string()),
                    ("issued_on", issued.to_string()),
                ],
            ));
        }
        const ILLNESSES: [(&str, &str, &str); 6] = [
            ("I10.x00", "高血压", "门诊慢性病"),
            ("E11.900", "2型糖尿病", "门诊慢性病"),
            ("J44.900", "慢性阻塞性肺疾病", "门诊慢性病"),
            ("N18.500", "慢性肾脏病5期（尿毒症）", "门诊特殊疾病"),
            ("C34.900", "肺恶性肿瘤", "重特大疾病"),
            ("I63.900", "脑梗死", "重特大疾病"),
        ];
        let ill = rng.random_bool(if age >= 60 { 0.2 } else { 0.04 });
        if ill {
            let (code, name, category) = ILLNESSES[rng.random_range(0..ILLNESSES.len())];
            out.push(rec(
                Department::MedicalInsurance,
                Item::RegisteredIllness,
                format!("MTB-{n}-{m_i}"),
                0,
                0,
                vec![
                    ("disease_code", code.into()),
                    ("disease", name.into()),
                    ("category", category.into()),
                    ("registered_from", (as_of - Duration::days(rng.random_range(30..2000))).to_string()),
                ],
            ));
        }
        if ill && rng.random_bool(0.9) || rng.random_bool(0.05) {
            let own = if ill { rng.random_range(100_000..6_000_000) } else { rng.random_range(5_000..200_000) };
            out.push(rec(
                Department::MedicalInsurance,
                Item::MedicalSpending,
                format!("ZF-{n}-{m_i}"),
                own,
                rng.random_range(1..30),
                vec![
                    ("period_from", (as_of - Duration::days(364)).to_string()),
                    ("period_to", as_of.to_string()),
                    ("total_cost_fen", (own * rng.random_range(2..5)).to_string()),
                ],
            ));
        }
        out
    }

    /// The next household without its department records, for uses that
    /// need only the rosters (the comparison's planted rosters): a tenth of
    /// the work per household. Shares the sequence with the iterator.
    pub fn next_household(&mut self) -> Option<Household> {
        if self.next >= self.cfg.households {
            return None;
        }
        let h = self.household();
        self.next += 1;
        Some(h)
    }
}

impl Iterator for Generator {
    type Item = (Household, Vec<DeptRecord>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.cfg.households {
            return None;
        }
        let h = self.household();
        let records = self.records(&h);
        self.next += 1;
        Some((h, records))
    }
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use dibao_proto::types::IdentityNumber;
    use std::collections::HashSet;

    #[test]
    fn the_same_seed_gives_the_same_province_and_every_identity_number_is_valid_and_unique() {
        let a: Vec<_> = Generator::new(Config::new(7, 2_000)).collect();
        let b: Vec<_> = Generator::new(Config::new(7, 2_000)).collect();
        assert_eq!(a, b);
        let c: Vec<_> = Generator::new(Config::new(8, 2_000)).collect();
        assert_ne!(a, c);
        let mut seen = HashSet::new();
        for (h, records) in &a {
            for m in &h.members {
                IdentityNumber::parse(&m.identity_number).expect("valid identity number");
                assert_eq!(&m.identity_number[..6], h.county());
                assert!(seen.insert(m.identity_number.clone()), "duplicate {}", m.identity_number);
            }
            // Every member is registered with public security.
            let registered = records.iter().filter(|r| r.item == Item::HouseholdRegistration).count();
            assert_eq!(registered, h.members.len());
        }
        let with = |item| a.iter().filter(|(_, r)| r.iter().any(|r| r.item == item)).count();
        for item in [
            Item::Vehicles,
            Item::Property,
            Item::BusinessLicence,
            Item::Deposits,
            Item::Pension,
            Item::Death,
            Item::IncomeTax,
            Item::DisabilityCertificate,
            Item::RegisteredIllness,
            Item::MedicalSpending,
        ] {
            assert!(with(item) > 0, "no household with {item:?}");
        }
    }
}
