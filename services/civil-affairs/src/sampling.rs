//! Reproducible random samples for checks (R-AUD-1). The generator is
//! written here (SplitMix64), not taken from a library, so that a recorded
//! seed draws the same households after any dependency upgrade.

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::runtime::access::Reader;
use dibao_platform::runtime::clock::china_date;
use dibao_platform::runtime::error::{Refusal, RefusalKind};
use dibao_platform::trust::officer::Officer;
use dibao_proto::civil_affairs::v1 as pb;
use dibao_proto::types::{DivisionCode, DivisionLevel, InvalidField};
use time::Date;
use uuid::Uuid;

use crate::convert;
use crate::households::Roster;

/// SplitMix64: small, fast, and fully specified.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }
}

/// Draws `ceil(len * percent / 100)` of `candidates` (which the caller
/// sorts, so the same set and seed always give the same draw).
pub fn draw<T: Clone>(candidates: &[T], percent: u32, seed: u64) -> Vec<T> {
    let k = (candidates.len() * percent as usize).div_ceil(100).min(candidates.len());
    let mut pool: Vec<T> = candidates.to_vec();
    let mut rng = SplitMix64::new(seed);
    // Partial Fisher-Yates: the first k positions are the draw.
    for i in 0..k {
        let j = i + rng.below((pool.len() - i) as u64) as usize;
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool
}

/// A sample to draw, checked.
pub struct SampleRequest {
    pub county: DivisionCode,
    pub percent: i32,
    pub full_villages: Vec<String>,
    pub officer: Officer,
}

impl SampleRequest {
    pub fn check(req: pb::DrawSampleRequest, officer: &Officer) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let county = convert::division(&req.county, "county").map_err(|e| errors.push(e)).ok();
        if county.as_ref().is_some_and(|c| c.level() != DivisionLevel::County) {
            errors.push(InvalidField::new("county", "应填写6位县级行政区划代码"));
        }
        // Outside the jurisdiction: refused before anything else is said.
        if let Some(c) = &county {
            officer.must_cover(c, "county")?;
        }
        if !(30..=100).contains(&req.percent) {
            errors.push(InvalidField::new(
                "percent",
                format!("随机抽查比例应在30%到100%之间（R-AUD-1），实际为{}%", req.percent),
            ));
        }
        let mut full_villages = Vec::new();
        for (i, v) in req.full_villages.iter().enumerate() {
            let field = format!("full_villages[{i}]");
            match DivisionCode::try_from(v) {
                Ok(v) if v.level() == DivisionLevel::Village && county.as_ref().is_some_and(|c| c.contains(&v)) => {
                    full_villages.push(v.as_str().to_owned())
                }
                Ok(_) => errors.push(InvalidField::new(field, "应为本县的12位村级行政区划代码")),
                Err(e) => errors.push(e.within(&field)),
            }
        }
        let (Some(county), true) = (county, errors.is_empty()) else {
            return Err(Error::InvalidArgument(errors));
        };
        Ok(Self { county, percent: req.percent, full_villages, officer: officer.clone() })
    }
}

/// A seed from the operating system's randomness: nobody chooses which
/// households are checked.
fn os_seed() -> Result<u64, Error> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Unexpected(anyhow::anyhow!("the operating system's randomness is unavailable")))?;
    Ok(u64::from_le_bytes(bytes))
}

/// An enrolled household as a sample draws from it.
struct Candidate {
    household_id: Uuid,
    village: String,
    enrolled_on: Option<Date>,
}

#[tracing::instrument(skip(tx))]
async fn enrolled_in(tx: &Transaction<'_>, county: &DivisionCode) -> Result<Vec<Candidate>, Error> {
    Ok(tx
        .query(
            "SELECT household_id, village, enrolled_on FROM household WHERE county = $1 AND status = $2
             ORDER BY household_id",
            &[&county.as_str(), &(pb::HouseholdStatus::Enrolled as i32)],
        )
        .await?
        .iter()
        .map(|r| Candidate {
            household_id: r.get("household_id"),
            village: r.get("village"),
            enrolled_on: r.get("enrolled_on"),
        })
        .collect())
}

/// The day after the county's previous sample, else a year back.
#[tracing::instrument(skip(tx))]
async fn since_last_sample(tx: &Transaction<'_>, county: &DivisionCode, today: Date) -> Result<Date, Error> {
    Ok(tx
        .query_one(
            "SELECT coalesce(max(drawn_at)::date + 1, ($2::date - 365)) FROM audit_sample WHERE county = $1",
            &[&county.as_str(), &today],
        )
        .await?
        .get(0))
}

/// Draws and records a county's sample (R-AUD-1): every new enrolment,
/// every household of the villages checked in full, and `percent` of the
/// rest at random with the recorded seed.
#[tracing::instrument(skip_all, fields(county = %s.county))]
pub async fn draw_sample(roster: &Roster, s: SampleRequest) -> Result<pb::DrawSampleResponse, Error> {
    let now = roster.clock.now();
    let mut client = roster.pool.get().await?;
    let tx = client.transaction().await?;
    let seed = os_seed()?;
    let new_since = since_last_sample(&tx, &s.county, china_date(now)).await?;
    let candidates = enrolled_in(&tx, &s.county).await?;
    let (mut new, mut full, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for c in &candidates {
        if c.enrolled_on.is_some_and(|d| d >= new_since) {
            new.push(c.household_id);
        } else if s.full_villages.contains(&c.village) {
            full.push(c.household_id);
        } else {
            rest.push(c.household_id);
        }
    }
    let drawn = draw(&rest, s.percent.unsigned_abs(), seed);
    let mut ids: Vec<Uuid> = new.iter().chain(&full).chain(&drawn).copied().collect();
    ids.sort();
    let sample_id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO audit_sample (sample_id, county, seed, percent, full_villages, new_since, household_ids, drawn_at,
                                   drawn_by, population, assertion_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &sample_id,
            &s.county.as_str(),
            // Stored bit for bit; read back with `as u64`.
            &i64::from_ne_bytes(seed.to_ne_bytes()),
            &s.percent,
            &s.full_villages,
            &new_since,
            &ids,
            &now,
            &s.officer.officer_id,
            &candidates.iter().map(|c| c.household_id).collect::<Vec<_>>(),
            &s.officer.assertion_id,
        ],
    )
    .await?;
    tx.commit().await?;
    let count = |v: &Vec<Uuid>| i32::try_from(v.len()).unwrap_or(i32::MAX);
    Ok(pb::DrawSampleResponse {
        sample_id: sample_id.to_string(),
        seed,
        household_ids: ids.iter().map(ToString::to_string).collect(),
        new_enrolments: count(&new),
        in_full_villages: count(&full),
        drawn_at_random: count(&drawn),
        population: i32::try_from(candidates.len()).unwrap_or(i32::MAX),
    })
}

#[derive(Debug, thiserror::Error)]
#[error("抽查记录{0}不存在")]
pub struct SampleNotFound(String);

impl Refusal for SampleNotFound {
    fn kind(&self) -> RefusalKind {
        RefusalKind::NotFound
    }

    fn reason(&self) -> &'static str {
        "SAMPLE_NOT_FOUND"
    }
}

/// A recorded sample drawn again from its recorded seed, percent, villages,
/// new-enrolment date and population: the same households (R-AUD-1).
pub async fn reproduce(
    roster: &Roster,
    reader: &Reader,
    req: &pb::ReproduceSampleRequest,
) -> Result<pb::ReproduceSampleResponse, Error> {
    let not_found = || SampleNotFound(req.sample_id.clone());
    let id = Uuid::parse_str(req.sample_id.trim()).map_err(|_| not_found())?;
    let client = roster.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT county, seed, percent, full_villages, new_since, household_ids, population FROM audit_sample
             WHERE sample_id = $1",
            &[&id],
        )
        .await?
        .ok_or_else(not_found)?;
    let county = DivisionCode::parse(row.get("county")).map_err(|e| Error::stored(format!("sample {id}: {e}")))?;
    if !reader.covers(&county) {
        return Err(not_found().into());
    }
    let seed = row.get::<_, i64>("seed") as u64;
    let (percent, full_villages, new_since): (i32, Vec<String>, Date) =
        (row.get("percent"), row.get("full_villages"), row.get("new_since"));
    let population: Vec<Uuid> = row.get("population");
    let recorded: Vec<Uuid> = row.get("household_ids");
    let candidates = client
        .query(
            "SELECT household_id, village, enrolled_on FROM household WHERE household_id = ANY($1) ORDER BY household_id",
            &[&population],
        )
        .await?;
    let (mut new, mut full, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for c in &candidates {
        let (household_id, village, enrolled_on): (Uuid, String, Option<Date>) =
            (c.get("household_id"), c.get("village"), c.get("enrolled_on"));
        if enrolled_on.is_some_and(|d| d >= new_since) {
            new.push(household_id);
        } else if full_villages.contains(&village) {
            full.push(household_id);
        } else {
            rest.push(household_id);
        }
    }
    let drawn = draw(&rest, percent.unsigned_abs(), seed);
    let mut ids: Vec<Uuid> = new.iter().chain(&full).chain(&drawn).copied().collect();
    ids.sort();
    let count = |v: &Vec<Uuid>| i32::try_from(v.len()).unwrap_or(i32::MAX);
    Ok(pb::ReproduceSampleResponse {
        sample: Some(pb::DrawSampleResponse {
            sample_id: id.to_string(),
            seed,
            household_ids: ids.iter().map(ToString::to_string).collect(),
            new_enrolments: count(&new),
            in_full_villages: count(&full),
            drawn_at_random: count(&drawn),
            population: count(&population),
        }),
        recorded_household_ids: recorded.iter().map(ToString::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_its_reference_values() {
        // First outputs for seed 1234567, computed with an independent Python
        // implementation of the published algorithm.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn draws_round_up_and_repeat_for_a_seed() {
        let ids: Vec<u32> = (0..10).collect();
        let a = draw(&ids, 30, 7);
        assert_eq!(a.len(), 3);
        assert_eq!(a, draw(&ids, 30, 7), "same seed, same sample");
        assert_ne!(a, draw(&ids, 30, 8), "another seed, another sample");
        assert_eq!(draw(&ids, 31, 7).len(), 4, "3.1 rounds up to 4");
        assert_eq!(draw(&ids, 100, 7).len(), 10);
        assert!(draw::<u32>(&[], 30, 7).is_empty());
    }
}
