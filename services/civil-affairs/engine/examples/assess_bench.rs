//! Engine throughput: households assessed per second (income lines,
//! supporters, composition, eligibility, amount and the Chinese explanation).
//!
//! `cargo run --release -p dibao-benefit-engine --example assess_bench [HOUSEHOLDS]`

use std::collections::BTreeMap;
use std::time::Instant;

use dibao_benefit_engine::benefit::{BenefitRequest, assess_benefit, suggested_category};
use dibao_benefit_engine::household::{Household, Member, Relation, WorkAbility, validate_composition};
use dibao_benefit_engine::income::{IncomeKind, IncomeLine, Supporter, assess_income};
use dibao_benefit_engine::policy::{CountyPolicy, ExitStep, KeyGroupAdditions};
use dibao_proto::types::{DivisionCode, Fen, IdentityNumber};
use time::macros::date;

/// A small deterministic generator, so every run assesses the same households.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn identity(birth_year: u64, seq: u64) -> IdentityNumber {
    let body = format!("220581{birth_year:04}0101{:03}", seq % 1000);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(weights).map(|(d, w)| u32::from(d - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    IdentityNumber::parse(&format!("{body}{check}")).unwrap_or_else(|e| panic!("generated id invalid: {e}"))
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let policy = CountyPolicy {
        county: DivisionCode::parse("220581").unwrap_or_else(|e| panic!("{e}")),
        year: 2026,
        effective_from: date!(2026 - 04 - 01),
        dibao_standard: Fen(50_000),
        national_poverty_line: Fen(35_000),
        additions: KeyGroupAdditions {
            severe_disability_bp: 2_000,
            serious_illness_bp: 1_000,
            elderly_bp: 1_000,
            minor_bp: 1_000,
        },
        elderly_age: 60,
        reference_incomes: BTreeMap::from([("玉米".to_owned(), Fen(3_000))]),
        minimum_wage: Fen(170_000),
        rural_disposable_income: Fen(120_000),
        supporter_ratio_bp: 1_000,
        property_rules: vec![],
        exit_step: ExitStep::Monthly,
        full_support_review_months: 12,
        unstable_income_review_months: 6,
        special_hardship: None,
    };
    let mut rng = Lcg(42);
    let households: Vec<(Household, Vec<IncomeLine>, Vec<Supporter>)> = (0..n)
        .map(|i| {
            let size = 1 + rng.next(5) as usize;
            let members: Vec<Member> = (0..size)
                .map(|k| Member {
                    identity: identity(1940 + rng.next(80), (i * 5 + k) as u64),
                    name: format!("成员{k}"),
                    relation: if k == 0 { Relation::Head } else { Relation::Child },
                    disability_grade: if rng.next(10) == 0 { 1 } else { 0 },
                    serious_illness: rng.next(10) == 0,
                    work_ability: [WorkAbility::None, WorkAbility::Partial, WorkAbility::Full][rng.next(3) as usize],
                    self_care: None,
                })
                .collect();
            let single =
                (size == 1).then_some(dibao_benefit_engine::household::SinglePersonReason::Clergy { years_in_site: 5 });
            let lines = vec![
                IncomeLine {
                    kind: IncomeKind::Wage,
                    label: "务工".into(),
                    member: None,
                    monthly: Fen(rng.next(200_000) as i64),
                },
                IncomeLine {
                    kind: IncomeKind::Reference { item: "玉米".into(), units_hundredths: rng.next(1_000) as i64 },
                    label: "玉米".into(),
                    member: None,
                    monthly: Fen(0),
                },
                IncomeLine {
                    kind: IncomeKind::IllnessSpending,
                    label: "医药费".into(),
                    member: None,
                    monthly: Fen(rng.next(30_000) as i64),
                },
            ];
            let supporters = vec![Supporter {
                name: "子女".into(),
                relation: "儿子".into(),
                exact_monthly: None,
                household_per_capita: Fen(rng.next(200_000) as i64),
                court_document: false,
                employed: rng.next(2) == 0,
            }];
            (Household { members, single_person: single }, lines, supporters)
        })
        .collect();

    let on = date!(2026 - 06 - 01);
    let start = Instant::now();
    let (mut eligible, mut total) = (0usize, 0i64);
    for (h, lines, supporters) in &households {
        if validate_composition(h, on).is_err() {
            continue;
        }
        let Ok(income) = assess_income(h, lines, supporters, &policy) else { continue };
        let covered: Vec<IdentityNumber> = h.members.iter().map(|m| m.identity.clone()).collect();
        let req = BenefitRequest {
            household: h,
            income: &income,
            category: suggested_category(h),
            covered: &covered,
            property_findings: &[],
            on,
        };
        if let Ok(b) = assess_benefit(&req, &policy) {
            eligible += usize::from(b.eligible);
            total += b.monthly_amount.0;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "assessed {n} households in {secs:.2}s on one core: {:.0} households/s ({eligible} eligible, {} total monthly)",
        n as f64 / secs,
        Fen(total)
    );
}
