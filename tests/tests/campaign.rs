//! Bulk campaigns (R-VER-5) with the hub as its own process: killed
//! halfway, resumed by the restarted hub by itself, finished, nothing asked
//! twice.

use dibao_test_mesh::verification as mesh;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::common::v1::DivisionCode;
use dibao_proto::department::v1::Department;
use dibao_proto::verification::v1::{StartCampaignRequest, StartCampaignResponse};
use dibao_synthetic::generator::{DeptRecord, Household};
use dibao_synthetic::simulator::Behaviour;
use mesh::{Mesh, Options, today};
use time::Duration as Days;

fn roster_row(row: i64, h: &dibao_synthetic::generator::Household) -> ca::ImportRosterRequest {
    ca::ImportRosterRequest { row, household: Some(mesh::roster_household(h)) }
}

/// A mesh with the hub as its own process over a province of `households`;
/// the first county's households of two or more members on civil affairs'
/// roster, all but the last `unconsented` with a consent on file; every
/// department answering in `latency_ms`. Its households, and the request
/// that starts the county's campaign.
async fn county_on_roster(
    households: usize,
    unconsented: usize,
    latency_ms: u64,
) -> (Mesh, Vec<(Household, Vec<DeptRecord>)>, StartCampaignRequest) {
    let mut m = Mesh::start(Options {
        households,
        hub_process: true,
        campaign_concurrency: 3,
        on_roster: false,
        ..Options::default()
    })
    .await;
    let county = m.province[0].0.county().to_owned();
    let in_county: Vec<_> =
        m.province.iter().filter(|(h, _)| h.county() == county && h.members.len() >= 2).cloned().collect();
    let rows: Vec<_> = in_county.iter().enumerate().map(|(i, (h, _))| roster_row(i as i64 + 2, h)).collect();
    let imported = m.civil.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
    for (h, _) in &in_county[..in_county.len() - unconsented] {
        m.consent(h, today() - Days::days(10), today() + Days::days(365)).await;
    }
    for d in ["public_security", "human_resources", "housing", "commerce", "bank", "tax"] {
        m.simulator.set(d, Behaviour { latency_ms, ..Default::default() });
    }
    let start = StartCampaignRequest {
        division: Some(DivisionCode { code: county.clone() }),
        purpose: "2026年低保集中核查".into(),
        ..Default::default()
    };
    (m, in_county, start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_killed_halfway_resumes_and_asks_nothing_twice() {
    // Every household but the last has a consent on file; departments
    // answer in 40 ms, so the campaign takes a while.
    let (mut m, households, start) = county_on_roster(240, 1, 40).await;
    assert!(households.len() >= 40, "{} households in the county", households.len());
    let (unconsented, _) = households.last().cloned().expect("households");
    let mut progress = m.hub.start_campaign(start).await.expect("campaign").into_inner();
    let mut last = StartCampaignResponse::default();
    while let Some(p) = progress.message().await.expect("progress") {
        last = p;
        if last.households_done >= 15 {
            break;
        }
    }
    let campaign_id = last.campaign_id.clone();
    assert_eq!(last.households_done + last.households_failed + last.households_remaining, households.len() as i64);
    m.kill_hub();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = m.hub_pool.get().await.expect("db");
    let done_before: BTreeSet<String> = db
        .query(
            "SELECT household_id FROM campaign_household WHERE campaign_id = $1::text::uuid AND status = 'done'",
            &[&campaign_id],
        )
        .await
        .expect("done")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        done_before.len() >= 15 && done_before.len() < households.len() - 1,
        "{} done at the kill",
        done_before.len()
    );

    // The restarted hub resumes the campaign by itself, nobody asking.
    m.kill_and_restart_hub().await;
    let t0 = std::time::Instant::now();
    loop {
        let finished: bool = db
            .query_one(
                "SELECT finished_at IS NOT NULL FROM campaign WHERE campaign_id = $1::text::uuid",
                &[&campaign_id],
            )
            .await
            .expect("campaign")
            .get(0);
        if finished {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(90), "the restarted hub did not finish the campaign by itself");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Asked for by its id, the finished campaign's last progress.
    let resume = StartCampaignRequest { campaign_id: campaign_id.clone(), ..Default::default() };
    let mut progress = m.hub.start_campaign(resume).await.expect("resume").into_inner();
    let mut last = StartCampaignResponse::default();
    while let Some(p) = progress.message().await.expect("progress") {
        last = p;
    }
    assert_eq!(last.households_remaining, 0);
    assert_eq!(last.households_done, households.len() as i64 - 1);
    assert_eq!(last.households_failed, 1);
    // Progress per department: every department answered every household done.
    let departments: HashMap<i32, (i64, i64)> =
        last.departments.iter().map(|d| (d.department, (d.done, d.failed))).collect();
    assert_eq!(departments.len(), dibao_proto::departments::ALL.len(), "{departments:?}");
    assert!(departments.values().all(|(done, failed)| *done == households.len() as i64 - 1 && *failed == 0));
    assert!(departments.contains_key(&(Department::Bank as i32)));
    // The household without a consent was never checked, and the list says why.
    let row = db
        .query_one(
            "SELECT persons, reason FROM campaign_household WHERE campaign_id = $1::text::uuid AND status = 'failed'",
            &[&campaign_id],
        )
        .await
        .expect("one failed household");
    assert!(row.get::<_, Vec<String>>(0).contains(&unconsented.members[0].identity_number));
    assert!(row.get::<_, String>(1).contains("授权书"));
    // Findings listed are exactly the households whose reports have findings.
    let with_findings: BTreeSet<String> = last.households_with_findings.iter().cloned().collect();
    let expected: BTreeSet<String> = db
        .query("SELECT household_id FROM report WHERE finding_count > 0", &[])
        .await
        .expect("reports")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!with_findings.is_empty());
    assert_eq!(with_findings, expected);
    // Nothing done before the kill was asked again: one report each, and
    // one query ("asked") per member in the hub's log.
    for h in &done_before {
        let reports: i64 =
            db.query_one("SELECT count(*) FROM report WHERE household_id = $1", &[h]).await.expect("n").get(0);
        assert_eq!(reports, 1, "household {h} verified {reports} times");
    }
    let asked: i64 = db
        .query_one(
            "SELECT count(*) FROM access_log WHERE caller = 'campaign ' || $1 AND outcome = 'asked'",
            &[&campaign_id],
        )
        .await
        .expect("log")
        .get(0);
    let members: usize = households[..households.len() - 1].iter().map(|(h, _)| h.members.len()).sum();
    // At most the households in flight at the kill (3 at a time) were asked twice.
    assert!(asked as usize >= members && asked as usize <= members + 3 * 6, "{asked} accesses for {members} members");
}

/// Two replicas of the hub: the campaign runs in one of them (the one that
/// holds its lock); the other, asked for it, follows its progress. Every
/// household is checked exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hubs_run_one_campaign_once() {
    let (mut m, households, start) = county_on_roster(120, 0, 30).await;
    let (_second, mut other) = m.second_hub().await;
    let mut progress = m.hub.start_campaign(start).await.expect("campaign").into_inner();
    let first = progress.message().await.expect("progress").expect("first progress");
    // The other replica, asked for the same campaign, reports its progress
    // to the end without running it.
    let follow = StartCampaignRequest { campaign_id: first.campaign_id.clone(), ..Default::default() };
    let mut followed = other.start_campaign(follow).await.expect("follow").into_inner();
    let mut last = StartCampaignResponse::default();
    let mut seen = 0;
    while let Some(p) = followed.message().await.expect("followed progress") {
        last = p;
        seen += 1;
    }
    while progress.message().await.expect("progress").is_some() {}
    assert!(seen >= 2, "the follower reported progress {seen} times");
    assert_eq!(last.households_remaining, 0);
    assert_eq!(last.households_done, households.len() as i64);
    let db = m.hub_pool.get().await.expect("db");
    let twice: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT household_id FROM report GROUP BY household_id HAVING count(*) > 1) x",
            &[],
        )
        .await
        .expect("reports")
        .get(0);
    assert_eq!(twice, 0, "households verified twice");
    let asked: i64 = db
        .query_one(
            "SELECT count(*) FROM access_log WHERE caller = 'campaign ' || $1 AND outcome = 'asked'",
            &[&first.campaign_id],
        )
        .await
        .expect("log")
        .get(0);
    let members: usize = households.iter().map(|(h, _)| h.members.len()).sum();
    assert_eq!(asked as usize, members, "each member asked about once");
}

/// Two replicas of the hub, each running a campaign over a county of its
/// own at the same time: together they keep each department under its
/// rate limit (R-VER-3), which they share while both are alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hubs_together_keep_each_department_under_its_rate_limit() {
    let limit: u32 = 20;
    let mut m = Mesh::start(Options {
        households: 240,
        hub_process: true,
        campaign_concurrency: 4,
        rate_per_second: limit,
        // Paced queries wait their turn well within a report's time.
        report_deadline_ms: 30_000,
        // The counties' rosters are the campaigns', put there below.
        on_roster: false,
        ..Options::default()
    })
    .await;
    // The two counties with the most households; 25 of each on the roster with a consent.
    let mut by_county: HashMap<String, Vec<Household>> = HashMap::new();
    for (h, _) in m.province.iter().filter(|(h, _)| h.members.len() >= 2) {
        by_county.entry(h.county().to_owned()).or_default().push(h.clone());
    }
    let mut counties: Vec<(String, Vec<Household>)> = by_county.into_iter().collect();
    counties.sort_by_key(|(c, hs)| (std::cmp::Reverse(hs.len()), c.clone()));
    let counties: Vec<(String, Vec<Household>)> =
        counties.into_iter().take(2).map(|(c, hs)| (c, hs.into_iter().take(25).collect())).collect();
    assert_eq!(counties.len(), 2, "two counties");
    let rows: Vec<_> =
        counties.iter().flat_map(|(_, hs)| hs.iter()).enumerate().map(|(i, h)| roster_row(i as i64 + 2, h)).collect();
    let imported = m.civil.import_roster(tokio_stream::iter(rows)).await.expect("import").into_inner();
    assert!(imported.errors.is_empty(), "{:?}", imported.errors);
    for h in counties.iter().flat_map(|(_, hs)| hs.iter()) {
        m.consent(h, today() - Days::days(10), today() + Days::days(365)).await;
    }
    let (_second, mut other) = m.second_hub().await;
    // Both replicas have counted each other.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    m.simulator.keep_answers();
    let start = |county: &str| StartCampaignRequest {
        division: Some(DivisionCode { code: county.to_owned() }),
        purpose: "2026年低保集中核查".into(),
        ..Default::default()
    };
    let first = m.hub.start_campaign(start(&counties[0].0)).await.expect("campaign").into_inner();
    let second = other.start_campaign(start(&counties[1].0)).await.expect("campaign").into_inner();
    let (a, b) = tokio::join!(to_the_end(first), to_the_end(second));
    assert_eq!((a.households_remaining, b.households_remaining), (0, 0));
    assert_eq!((a.households_done, b.households_done), (25, 25));
    // The tax department is asked once per person: the most it received in
    // any one second while both campaigns ran.
    let answers = m.simulator.take_answers();
    let mut keys: HashMap<&str, usize> = HashMap::new();
    for a in &answers {
        *keys.entry(a.key).or_default() += 1;
    }
    let mut times: Vec<std::time::Instant> = answers.iter().filter(|a| a.key == "tax").map(|a| a.received).collect();
    times.sort();
    let persons: usize = counties.iter().flat_map(|(_, hs)| hs.iter()).map(|h| h.members.len()).sum();
    assert_eq!(times.len(), persons, "each person asked once: {keys:?}");
    let busiest = (0..times.len())
        .map(|i| times[i..].iter().take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1)).count())
        .max()
        .unwrap_or(0);
    let span = times.last().expect("asked").duration_since(times[0]).as_secs_f64();
    let average = (times.len() - 1) as f64 / span;
    // Alone, each replica would go at the whole limit: twice it together.
    // Sharing it, the two go at the limit; a one-second window can catch
    // one query more of each replica's evenly spaced turns.
    assert!(average <= f64::from(limit) * 1.02, "{average:.1} queries/s on average against a limit of {limit}/s");
    assert!(average >= f64::from(limit) * 0.75, "both replicas kept asking: {average:.1} queries/s");
    assert!(busiest as u32 <= limit + 2, "{busiest} queries in one second against a limit of {limit}/s");
}

/// A campaign's last progress.
async fn to_the_end(mut stream: tonic::Streaming<StartCampaignResponse>) -> StartCampaignResponse {
    let mut last = StartCampaignResponse::default();
    while let Some(p) = stream.message().await.expect("progress") {
        last = p;
    }
    last
}
