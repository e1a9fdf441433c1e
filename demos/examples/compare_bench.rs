//! The full comparison at province scale, beside DuckDB and PostgreSQL on
//! the same data (issue 6, "Scale and figures"):
//!
//! cargo run --release -p dibao-demos --example compare_bench [-- BASE_HOUSEHOLDS]
//!
//! Plants the two rosters from BASE_HOUSEHOLDS generated households
//! (default 3,720,000: about 10M members on each roster, 82 % of them on
//! both, every kind of case planted), loads them into the comparison's view
//! in a fresh database, and writes the same members as CSV for DuckDB. Then
//! prints, for the engine: extract (COPY out of the view), compare, and
//! writing the lists (one CSV per township), each with its wall time and
//! peak RSS; then the service's own run (extract, compare and every entry
//! stored in PostgreSQL); then DuckDB (compare_duckdb.py, needs
//! `pip install duckdb`) and a PostgreSQL FULL OUTER JOIN running
//! compare_lists.sql, with their list sizes beside the engine's.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use dibao_platform::runtime::clock::SystemClock;
use dibao_platform::store::db;
use dibao_roster_comparison::engine::{self, Kind};
use dibao_roster_comparison::entries::{StoredEntry, stored_entry};
use dibao_roster_comparison::run::Runs;
use dibao_roster_comparison::{export, startup, view};
use dibao_synthetic::rosters::{self, PoorStatus, RosterConfig, Row};
use dibao_tests::{TestDb, peak_rss_mib, reset_peak_rss};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3_720_000);
    let dir = std::env::temp_dir().join(format!("dibao-compare-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("lists"))?;
    let test_db = TestDb::create().await?;
    let settings = test_db.settings("roster_comparison");
    let pool = db::connect_and_migrate(&settings, &[("service", startup::MIGRATIONS)]).await?;
    let client = pool.get().await?;
    // Indexes are built after the load, as a bulk load does.
    client
        .batch_execute(
            "DROP INDEX roster_household_current, roster_household_by_county, roster_household_members;
             SELECT setval('view_position', 1);",
        )
        .await?;

    // --- plant and load -------------------------------------------------------
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Row>(8192);
    let csv_dir = dir.clone();
    let generator = tokio::task::spawn_blocking(move || -> anyhow::Result<rosters::Planted> {
        let mut members = std::io::BufWriter::new(std::fs::File::create(csv_dir.join("members.csv"))?);
        let mut deaths = std::io::BufWriter::new(std::fs::File::create(csv_dir.join("deaths.csv"))?);
        let mut officials = std::io::BufWriter::new(std::fs::File::create(csv_dir.join("officials.csv"))?);
        writeln!(members, "side,household_id,village,person,flagged")?;
        writeln!(deaths, "person,died_on")?;
        writeln!(officials, "person,official")?;
        let mut failed = None;
        let planted = rosters::plant(
            &RosterConfig::province(20261123, base),
            |row| {
                let written = match &row {
                    Row::Dibao(d) => d.members.iter().try_for_each(|m| {
                        writeln!(members, "dibao,{},{},{},false", d.id, d.village, m.identity_number)
                    }),
                    Row::Poor(p) => p.members.iter().try_for_each(|m| {
                        writeln!(members, "poor,{},{},{},{}", p.id, p.village, m.identity_number, p.flagged)
                    }),
                    Row::Death(d) => writeln!(deaths, "{},{}", d.identity_number, d.died_on),
                    Row::Official(o) => writeln!(officials, "{},{}", o.person_id, o.official_id),
                };
                if let Err(e) = written {
                    failed.get_or_insert(e);
                }
                let _ = tx.blocking_send(row);
            },
            |_| {},
        );
        members.flush()?;
        deaths.flush()?;
        officials.flush()?;
        failed.map_or(Ok(planted), |e| Err(e.into()))
    });
    let sink = client
        .copy_in(
            "COPY roster_household (side, household_id, village, county, on_roster, programme, status, flagged,
                                    members, names, version, valid_from) FROM STDIN BINARY",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::BOOL,
            Type::INT4,
            Type::INT4,
            Type::BOOL,
            Type::TEXT_ARRAY,
            Type::TEXT_ARRAY,
            Type::INT8,
            Type::INT8,
        ],
    );
    pin_mut!(writer);
    let (mut deaths, mut officials) = (Vec::new(), Vec::new());
    while let Some(row) = rx.recv().await {
        let (side, id, village, programme, status, flagged, people) = match row {
            Row::Dibao(d) => ("dibao", d.id, d.village, if d.special_hardship { 2 } else { 1 }, 0, false, d.members),
            Row::Poor(p) => {
                let status = match p.status {
                    PoorStatus::InPoverty => 1,
                    PoorStatus::Exited => 2,
                    PoorStatus::Returned => 3,
                };
                ("poor", p.id, p.village, 0, status, p.flagged, p.members)
            }
            Row::Death(d) => {
                deaths.push(d);
                continue;
            }
            Row::Official(o) => {
                officials.push(o);
                continue;
            }
        };
        let county = village[..6].to_owned();
        let ids: Vec<&str> = people.iter().map(|m| m.identity_number.as_str()).collect();
        let names: Vec<&str> = people.iter().map(|m| m.name.as_str()).collect();
        let values: [&(dyn ToSql + Sync); 12] =
            [&side, &id, &village, &county, &true, &programme, &status, &flagged, &ids, &names, &1i64, &1i64];
        writer.as_mut().write(&values).await?;
    }
    writer.finish().await?;
    let planted = generator.await??;
    for d in &deaths {
        client
            .execute(
                "INSERT INTO death_record (identity_number, name, died_on, source, valid_from) VALUES ($1, $2, $3, $4, 1)
                 ON CONFLICT DO NOTHING",
                &[&d.identity_number, &d.name, &d.died_on, &"公安人口信息系统"],
            )
            .await?;
    }
    for o in &officials {
        client
            .execute(
                "INSERT INTO official_link (division, official_id, official_name, role, official_village, person_id,
                                            person_name, relation, valid_from)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1) ON CONFLICT DO NOTHING",
                &[
                    &&o.village[..6],
                    &o.official_id,
                    &o.official_name,
                    &if o.role == "低保经办人员" { 1i32 } else { 2 },
                    &o.village,
                    &o.person_id,
                    &o.person_name,
                    &o.relation,
                ],
            )
            .await?;
    }
    let loaded = started.elapsed().as_secs_f64();
    let started = Instant::now();
    client
        .batch_execute(
            "CREATE UNIQUE INDEX roster_household_current ON roster_household (side, household_id) WHERE valid_to IS NULL;
             CREATE INDEX roster_household_by_county ON roster_household (county, valid_from);
             CREATE INDEX roster_household_members ON roster_household USING gin (members) WITH (fastupdate = off) WHERE valid_to IS NULL AND on_roster;
             ANALYZE;",
        )
        .await?;
    println!(
        "planted: {} dibao households ({} members), {} registered-poor households ({} members), {} deaths, {} registry lines",
        planted.dibao_households,
        planted.dibao_members,
        planted.poor_households,
        planted.poor_members,
        planted.deaths,
        planted.officials
    );
    println!(
        "setup (not part of the comparison): generated and loaded in {loaded:.1} s, indexes in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // --- the engine -------------------------------------------------------------
    let as_of = time::macros::date!(2026 - 10 - 31);
    reset_peak_rss();
    let t = Instant::now();
    let (input, labels) = view::load(&client, 1).await?;
    let (extract_s, extract_mib) = (t.elapsed().as_secs_f64(), peak_rss_mib());
    reset_peak_rss();
    let t = Instant::now();
    let lists = engine::compare(&input, as_of);
    let (compare_s, compare_mib) = (t.elapsed().as_secs_f64(), peak_rss_mib());
    reset_peak_rss();
    let t = Instant::now();
    // One file per township, each written as its entries are made: the
    // entries' order by township, then list order within it.
    let mut order: Vec<u32> = (0..lists.entries.len() as u32).collect();
    let township_of = |i: u32| &lists.village(&lists.entries[i as usize], &input)[..9];
    order.sort_by(|&a, &b| township_of(a).cmp(township_of(b)));
    let (mut bytes, mut written, mut files) = (0usize, 0usize, 0usize);
    let mut start = 0;
    while start < order.len() {
        let township = &lists.village(&lists.entries[order[start] as usize], &input)[..9];
        let mut end = start;
        while end < order.len() && &lists.village(&lists.entries[order[end] as usize], &input)[..9] == township {
            end += 1;
        }
        let entries: Vec<StoredEntry> = order[start..end]
            .iter()
            .map(|&i| stored_entry(&input, &labels, &lists, &lists.entries[i as usize]))
            .collect();
        let csv = export::to_csv(&entries, false);
        bytes += csv.len();
        written += entries.len();
        files += 1;
        std::fs::write(dir.join("lists").join(format!("{township}_台账比对.csv")), csv)?;
        start = end;
    }
    let (write_s, write_mib) = (t.elapsed().as_secs_f64(), peak_rss_mib());
    let sizes: Vec<usize> = Kind::ALL.iter().map(|k| lists.size(*k)).collect();
    println!("engine lists (a)..(g): {sizes:?}");
    println!(
        "  extract  {extract_s:6.1} s  peak {extract_mib:7.1} MiB  ({} households read from the view)",
        input.dibao.len() + input.poor.len()
    );
    println!("  compare  {compare_s:6.1} s  peak {compare_mib:7.1} MiB");
    println!(
        "  write    {write_s:6.1} s  peak {write_mib:7.1} MiB  ({written} entries, {files} township files, {:.0} MiB of CSV)",
        bytes as f64 / 1_048_576.0
    );
    println!(
        "  whole comparison {:.1} s, peak {:.1} MiB (target: <= 60 s, <= 2 GiB)",
        extract_s + compare_s + write_s,
        extract_mib.max(compare_mib).max(write_mib)
    );
    drop((order, lists, input, labels));

    // --- PostgreSQL FULL OUTER JOIN, on the same view ----------------------------
    let sql = include_str!("compare_lists.sql");
    client
        .batch_execute(
            "CREATE TEMP VIEW m AS SELECT side, household_id, village, unnest(members) AS person, flagged
                 FROM roster_household WHERE on_roster AND valid_to IS NULL;
             CREATE TEMP VIEW deaths AS SELECT identity_number AS person, died_on FROM death_record;
             CREATE TEMP VIEW officials AS SELECT person_id AS person, official_id AS official FROM official_link;
             SET work_mem = '256MB';",
        )
        .await?;
    let t = Instant::now();
    client.batch_execute(sql).await?;
    let pg_s = t.elapsed().as_secs_f64();
    let mut pg_sizes = Vec::new();
    for k in "abcdefg".chars() {
        pg_sizes.push(client.query_one(&format!("SELECT count(*) FROM list_{k}"), &[]).await?.get::<_, i64>(0));
    }
    println!("PostgreSQL FULL OUTER JOIN lists (a)..(g): {pg_sizes:?}");
    let same = |other: &str| if other == format!("{sizes:?}") { "equal to" } else { "DIFFERENT from" };
    println!("  list sizes {} the engine's", same(&format!("{pg_sizes:?}")));
    println!("  compare  {pg_s:6.1} s (engine compare is {:.1}x faster)", pg_s / compare_s);

    // --- DuckDB -------------------------------------------------------------------------
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compare_duckdb.py");
    match std::process::Command::new("python3").arg(&script).arg(&dir).output() {
        Ok(out) if out.status.success() => {
            let line = String::from_utf8_lossy(&out.stdout);
            println!("DuckDB: {}", line.trim());
            let field = |name: &str| {
                line.split(&format!("\"{name}\": "))
                    .nth(1)
                    .and_then(|rest| rest.split([',', '}']).next())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            println!(
                "  compare  {:6.1} s (engine compare is {:.1}x faster)",
                field("compare_s"),
                field("compare_s") / compare_s
            );
            let listed = line.split("\"sizes\": ").nth(1).and_then(|rest| rest.split_inclusive(']').next());
            println!("  list sizes {} the engine's", same(listed.unwrap_or_default()));
        }
        Ok(out) => println!("DuckDB did not run (pip install duckdb): {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => println!("DuckDB did not run: {e}"),
    }
    // --- the service's own run: extract, compare, every entry stored ----------------
    let runs =
        Runs { pool: pool.clone(), clock: Arc::new(SystemClock), topic: "bench.roster-comparison.run.v1".into() };
    reset_peak_rss();
    let t = Instant::now();
    let (progress, _rx) = tokio::sync::mpsc::channel(1);
    let run_id = runs.run(None, None, progress).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "service run {run_id} (extract, compare, store every entry in PostgreSQL): {:.1} s, peak {:.1} MiB",
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );

    let _ = std::fs::remove_dir_all(&dir);
    drop(client);
    Ok(())
}
