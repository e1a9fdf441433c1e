//! Time and peak memory to import a generated county roster file (花名册)
//! through the real path — the file read and streamed over gRPC with mutual
//! TLS to the service, each household validated and applied whole with its
//! event in the outbox, the relay publishing to the broker meanwhile —
//! beside a plain Postgres `COPY` of the same file into one table.
//!
//! cargo run --release -p dibao-demos --example import_bench -- [households, default 1000000]
//!
//! Needs Postgres at 127.0.0.1:5432 and Tansu on PATH, as the tests do.
//! Peak memory is the process's peak resident set (service, client and file
//! reader share the process), reset before each phase.

use std::io::Write;
use std::time::Instant;

use dibao_civil_affairs::roster_file;
use dibao_civil_affairs::startup::Application;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::OfficerRole;
use dibao_tests::{TestEnv, peak_rss_mib, reset_peak_rss, spawn};
use time::macros::date;

/// A valid identity number for county 220581, a birth date and a sequence.
fn identity(birth: time::Date, seq: u32) -> String {
    let body = format!("220581{:04}{:02}{:02}{:03}", birth.year(), birth.month() as u8, birth.day(), seq % 1000);
    format!("{body}{}", dibao_proto::types::check_character(&body))
}

/// Writes `n` households of three (head, spouse, child), every identity
/// number distinct: the k-th head is born k / 1000 days after 1950-01-01.
fn generate(path: &std::path::Path, n: u32) -> std::io::Result<u64> {
    // The county's real villages (R-ROSTER-3: the service refuses others).
    let table = std::fs::read_to_string(dibao_tests::division_tables().join("22.csv"))?;
    let villages: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_once(','))
        .map(|(c, _)| c)
        .filter(|c| c.len() == 12 && c.starts_with("220581"))
        .collect();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    roster_file::write_csv_header(&mut out)?;
    let mut lines = 0;
    for k in 0..n {
        let days = time::Duration::days(i64::from(k / 1000));
        let village = villages[k as usize % villages.len()];
        let key = format!("220581-{k:07}");
        let category = ["A类", "B类", "C类"][(k % 3) as usize];
        let amount = format!("{}.{:02}", 300 + k % 400, k % 100);
        for (birth, relation, name, ability) in [
            (date!(1950 - 01 - 01) + days, "户主", "王建国", "部分"),
            (date!(1960 - 01 - 01) + days, "配偶", "李秀英", "无"),
            (date!(1995 - 01 - 01) + days, "子女", "王小明", "完全"),
        ] {
            writeln!(
                out,
                "{key},{village},{name},{},{relation},低保,{category},{amount},2025-03-01,,否,{ability},是,",
                identity(birth, k % 1000)
            )?;
            lines += 1;
        }
    }
    out.flush()?;
    Ok(lines)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u32 = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("dibao-import-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("roster.csv");
    let started = Instant::now();
    let lines = generate(&file, n)?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "generated {n} households, {lines} member lines, {:.1} MiB in {:.1} s",
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    let env = TestEnv::start().await;
    let app = spawn::<Application>(&env).await;
    let db = &env.db;
    let operator = env.desk(dibao_civil_affairs::startup::SERVICE, OfficerRole::CountyOperator, "220581");
    let mut client = CivilAffairsServiceClient::new(env.officer_channel(app.addr, operator).await)
        .max_decoding_message_size(64 << 20);

    reset_peak_rss();
    let started = Instant::now();
    let report = roster_file::import(&mut client, roster_file::open(&file)?).await?;
    let import_secs = started.elapsed().as_secs_f64();
    let import_peak = peak_rss_mib();
    anyhow::ensure!(report.errors.is_empty() && report.applied == i64::from(n), "import incomplete: {report}");
    println!(
        "import via gRPC (mTLS, batches of up to 5,000 applied set-based, whole or nothing per household, events in the outbox): {n} households in {import_secs:.1} s = {:.0} households/s, peak RSS {:.1} MiB",
        f64::from(n) / import_secs,
        import_peak
    );

    let mut pg = db.client().await?;
    pg.batch_execute(
        "CREATE TABLE roster_copy (household text, village text, name text, identity_number text, relation text,
         programme text, category text, amount text, enrolled_on text, disability text, illness text,
         work_ability text, covered text, single_reason text)",
    )
    .await?;
    reset_peak_rss();
    let started = Instant::now();
    let tx = pg.transaction().await?;
    let sink = tx.copy_in("COPY roster_copy FROM STDIN (FORMAT csv, HEADER true)").await?;
    futures_util::pin_mut!(sink);
    {
        use futures_util::SinkExt;
        use std::io::Read;
        let mut f = std::fs::File::open(&file)?;
        let mut buf = vec![0u8; 1 << 20];
        // Skip the byte-order mark, which COPY would take as part of the first heading.
        f.read_exact(&mut buf[..3])?;
        loop {
            let len = f.read(&mut buf)?;
            if len == 0 {
                break;
            }
            sink.send(std::io::Cursor::new(buf[..len].to_vec())).await?;
        }
        sink.as_mut().finish().await?;
    }
    tx.commit().await?;
    let copy_secs = started.elapsed().as_secs_f64();
    println!(
        "plain COPY of the same file into one table: {lines} rows in {copy_secs:.1} s = {:.0} households/s, peak RSS {:.1} MiB",
        f64::from(n) / copy_secs,
        peak_rss_mib()
    );
    println!("import / COPY time: {:.1}x", import_secs / copy_secs);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
