//! A comparison run: the view read as of one position, compared, the
//! division's entries stored in list order with a digest, the entries'
//! first sighting kept for ageing, and `ComparisonCompleted` published for
//! the poverty office (R-CMP-1..4). The run's rows, its entries and its
//! event are written in one transaction: a run is there whole or not at all.

use std::sync::Arc;

use deadpool_postgres::Pool;
use dibao_platform::events::outbox::{self, NewEvent};
use dibao_platform::runtime::clock::Clock;
use dibao_platform::runtime::error::Error;
use dibao_proto::events::v1::{ComparisonCompleted, event_envelope::Payload};
use dibao_proto::types::DivisionCode;
use ring::digest;
use time::Date;
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use uuid::Uuid;

use crate::engine::{self, Detail, Entry, Input, Kind, Lists};
use crate::view::{self, Labels};

/// Progress of a run as it streams to the caller.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub run_id: Uuid,
    pub phase: &'static str,
    pub done: i64,
    pub total: i64,
    /// Entries per list, (a) to (g), once known.
    pub sizes: Vec<i64>,
    pub finished: Option<time::OffsetDateTime>,
}

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

pub struct Runs {
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    /// This service's topic, where completed runs are published.
    pub topic: String,
}

const PRODUCER: &str = "roster-comparison";
const AGGREGATE: &str = "roster_comparison.run";
/// Entries written per statement.
const CHUNK: usize = 5_000;

impl Runs {
    /// Runs a comparison of `division` (the whole view when `None`), or
    /// re-runs `reproduce` on the position and date it ran on.
    pub async fn run(
        &self,
        division: Option<DivisionCode>,
        reproduce: Option<Uuid>,
        progress: mpsc::Sender<Progress>,
    ) -> Result<Uuid, Error> {
        let run_id = Uuid::now_v7();
        let started = self.clock.now();
        let mut client = self.pool.get().await?;
        let ((division, scope), position, dibao_events, poverty_events, as_of) = match reproduce {
            Some(earlier) => {
                let row = client
                    .query_opt(
                        "SELECT division, scope, view_position, dibao_events, poverty_events, as_of
                         FROM comparison_run WHERE run_id = $1 AND finished_at IS NOT NULL",
                        &[&earlier],
                    )
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("比对批次{earlier}不存在或未完成")))?;
                let scope = (row.get::<_, String>(0), row.get::<_, String>(1));
                (scope, row.get(2), row.get(3), row.get(4), row.get::<_, Date>(5))
            }
            None => {
                let tx = client.transaction().await?;
                let (position, d, p) = view::position_now(&tx).await?;
                tx.commit().await?;
                let scope = division.map(|d| (d.as_str().to_owned(), d.prefix().to_owned())).unwrap_or_default();
                (scope, position, d, p, started.date())
            }
        };
        let say = |phase, done, total, sizes: Vec<i64>, finished| {
            let _ = progress.try_send(Progress { run_id, phase, done, total, sizes, finished });
        };

        let (input, labels) = view::load(&client, position).await.map_err(Error::Unexpected)?;
        let households = (input.dibao.len() + input.poor.len()) as i64;
        say("extract", households, households, Vec::new(), None);
        let (input, lists) = tokio::task::spawn_blocking(move || {
            let lists = engine::compare(&input, as_of);
            (input, lists)
        })
        .await
        .map_err(|e| Error::Unexpected(e.into()))?;
        let mut sizes = vec![0i64; Kind::ALL.len()];
        for e in lists.entries.iter().filter(|e| in_scope(&input, &lists, e, &scope)) {
            sizes[e.kind as usize] += 1;
        }
        let total: i64 = sizes.iter().sum();
        say("compare", households, households, sizes.clone(), None);

        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO comparison_run (run_id, division, scope, view_position, dibao_events, poverty_events, as_of,
                                         reproduces, started_at, dibao_households, poor_households)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &run_id,
                &division,
                &scope,
                &position,
                &dibao_events,
                &poverty_events,
                &as_of,
                &reproduce,
                &started,
                &(input.dibao.len() as i64),
                &(input.poor.len() as i64),
            ],
        )
        .await?;
        // The entries go in with one binary COPY (a province's lists are
        // millions of rows), made as text a chunk at a time so they never
        // sit in memory as strings all at once.
        let sink = tx
            .copy_in(
                "COPY run_entry (run_id, ordinal, entry_key, kind, village, dibao, poor, members, explanation)
                 FROM STDIN BINARY",
            )
            .await?;
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::UUID,
                Type::INT4,
                Type::TEXT,
                Type::CHAR,
                Type::TEXT,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT,
            ],
        );
        futures_util::pin_mut!(writer);
        let mut digest = Digest::default();
        let mut stream = stored(&input, &labels, &lists, &scope).peekable();
        let mut chunk: Vec<StoredEntry> = Vec::with_capacity(CHUNK);
        let mut ordinal = 0i32;
        while stream.peek().is_some() {
            chunk.clear();
            chunk.extend(stream.by_ref().take(CHUNK));
            digest.add(&chunk);
            for e in &chunk {
                let kind = e.kind.letter() as u8 as i8;
                writer
                    .as_mut()
                    .write(&[
                        &run_id,
                        &ordinal,
                        &e.id,
                        &kind,
                        &e.village,
                        &e.dibao,
                        &e.poor,
                        &e.members,
                        &e.explanation,
                    ])
                    .await?;
                ordinal += 1;
            }
            say("store", i64::from(ordinal), total, sizes.clone(), None);
        }
        writer.finish().await?;
        // When each entry was first reported, for ageing: every list but
        // (c), which asks nothing of anyone. One statement, on the server.
        tx.execute(
            "INSERT INTO entry_seen (entry_key, first_run, first_seen_at)
             SELECT entry_key, run_id, $2 FROM run_entry WHERE run_id = $1 AND kind <> 'c'
             ON CONFLICT (entry_key) DO NOTHING",
            &[&run_id, &started],
        )
        .await?;
        let digest = digest.finish();
        let finished = self.clock.now();
        tx.execute(
            "UPDATE comparison_run SET finished_at = $2, list_sizes = $3, digest = $4 WHERE run_id = $1",
            &[&run_id, &finished, &sizes, &digest],
        )
        .await?;
        let list_sizes = Kind::ALL.iter().zip(&sizes).map(|(k, n)| (k.letter().to_string(), *n)).collect();
        outbox::enqueue(
            &tx,
            NewEvent {
                topic: &self.topic,
                aggregate_type: AGGREGATE,
                aggregate_key: &run_id.to_string(),
                aggregate_version: 1,
                producer: PRODUCER,
                payload: Payload::ComparisonCompleted(ComparisonCompleted {
                    run_id: run_id.to_string(),
                    division: Some(dibao_proto::common::v1::DivisionCode { code: division.clone() }),
                    completed_at: Some(outbox::timestamp_of(finished)),
                    list_sizes,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%run_id, %division, position, entries = total, digest = %digest, "comparison run finished");
        say("done", total, total, sizes, Some(finished));
        Ok(run_id)
    }
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

fn status_zh(s: engine::PovertyStatus) -> &'static str {
    match s {
        engine::PovertyStatus::InPoverty => "未脱贫",
        engine::PovertyStatus::Exited => "已脱贫",
        engine::PovertyStatus::Returned => "返贫",
    }
}

fn programme_zh(p: engine::Programme) -> &'static str {
    match p {
        engine::Programme::Dibao => "低保",
        engine::Programme::SpecialHardship => "特困供养",
    }
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
            format!("{id}|{village}|{head}|{}", input.dibao.members(d).len())
        })
        .collect();
    let poor = lists
        .poor(e)
        .iter()
        .map(|&p| {
            let (id, village, head) = (input.poor.id(p), input.poor_village(p), labels.poor_heads.get(p));
            format!("{id}|{village}|{head}|{}", input.poor.members(p).len())
        })
        .collect();
    let mut members: Vec<String> = e.person.map(engine::unpack).into_iter().collect();
    let explanation = match &e.detail {
        Detail::None => match e.kind {
            Kind::PoorNotDibao => {
                let status = input.poor_status(lists.poor(e)[0]);
                format!("建档立卡贫困户（{}）未纳入低保或特困供养，请核实是否符合条件并作出结论", status_zh(status))
            }
            Kind::DibaoNotPoor => {
                let programme = input.programme(lists.dibao(e)[0]);
                format!("{}户未纳入建档立卡贫困户，转扶贫部门按其标准认定", programme_zh(programme))
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
