//! Every deployable answers its metrics listener with the named series
//! after real calls: gRPC requests by method and code (a refused call
//! under its code) and latency; the outbox backlog, dead letters and the
//! inbox's lag per partition; the hub's questions to a department, their
//! latency and the breaker; campaigns; the comparison's latest run; the
//! gateway's calls.

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, OfficerRole, PageRequest};
use dibao_proto::verification::v1::verification_service_client::VerificationServiceClient;
use dibao_test_mesh::{all, gateway};

const COUNTY: &str = "220581";

fn household(i: usize) -> ca::Household {
    all::enrolled_pair(i, &format!("MT-{i}"), &format!("{COUNTY}101201"), "19580101", "李")
}

/// Whether `text` has a sample whose line starts with `prefix`, and its value.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[track_caller]
fn has(text: &str, prefix: &str) -> f64 {
    sample(text, prefix).unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deployable_serves_its_metrics_after_real_calls() {
    let all = all::start().await;
    let upstreams: Vec<(&str, std::net::SocketAddr)> = all.addrs.iter().map(|(k, v)| (*k, *v)).collect();
    let gw = gateway::start(&all.env, &upstreams).await;
    let office =
        gw.officer("metrics-office", &[OfficerRole::CountyApprover, OfficerRole::CountyOperator], COUNTY).await;
    let mut civil = CivilAffairsServiceClient::new(office.clone());
    all::county_with(&mut civil, COUNTY, (0..3).map(household)).await;

    // A check with the public-security department, through the hub.
    let first = civil
        .list_households(ca::ListHouseholdsRequest {
            division: Some(DivisionCode { code: COUNTY.into() }),
            page: Some(PageRequest { page_size: 1, page_token: String::new() }),
        })
        .await
        .expect("households")
        .into_inner()
        .households
        .remove(0);
    let members = all::members_of(&first);
    let checker = gw.officer("metrics-checker", &[OfficerRole::VerificationOfficer], COUNTY).await;
    dibao_test_mesh::verification::vehicles_checked(
        &mut VerificationServiceClient::new(checker),
        &first.household_id,
        &members,
        "低保复核",
    )
    .await;

    // A comparison once the view holds the three households.
    all.comparison_sees(3).await;
    all::compare(office.clone(), COUNTY).await;

    // A call without an officer's assertion, refused by civil affairs' table.
    let bare = all.env.channel("poverty-alleviation", all.addrs["civil-affairs"]).await;
    let refused = CivilAffairsServiceClient::new(bare)
        .list_households(ca::ListHouseholdsRequest { division: None, page: None })
        .await
        .expect_err("no officer");

    let scrape = |name: &str| {
        let addr = all.metrics.get(name).copied().unwrap_or_else(|| panic!("{name} serves no metrics"));
        dibao_tests::metrics(addr)
    };
    let text = scrape("civil-affairs").await;
    const CIVIL: &str = "/dibao.civil_affairs.v1.CivilAffairsService";
    assert_eq!(has(&text, &format!("dibao_grpc_requests_total{{method=\"{CIVIL}/ImportRoster\",code=\"Ok\"}}")), 1.0);
    assert_eq!(
        has(
            &text,
            &format!("dibao_grpc_requests_total{{method=\"{CIVIL}/ListHouseholds\",code=\"{:?}\"}}", refused.code())
        ),
        1.0,
        "the refusal counted under its code"
    );
    assert!(has(&text, &format!("dibao_grpc_request_seconds_count{{method=\"{CIVIL}/SavePolicy\"}}")) >= 1.0);
    has(&text, &format!("dibao_grpc_request_seconds_bucket{{method=\"{CIVIL}/SavePolicy\",le=\"+Inf\"}}"));
    has(&text, "dibao_outbox_backlog ");
    assert!(has(&text, "dibao_outbox_published_total ") + has(&text, "dibao_outbox_backlog ") >= 3.0);
    assert_eq!(has(&text, "dibao_dead_letters_open "), 0.0);
    assert_eq!(has(&text, "dibao_pipeline_status_up "), 1.0);

    let text = scrape("poverty-alleviation").await;
    has(&text, "dibao_inbox_lag{topic=\"");
    assert_eq!(has(&text, "dibao_inbox_lag_readable "), 1.0);
    has(&text, "dibao_outbox_backlog ");

    let text = scrape("verification-hub").await;
    assert!(has(&text, "dibao_department_requests_total{department=\"public_security\",outcome=\"answered\"}") >= 1.0);
    assert!(has(&text, "dibao_department_request_seconds_count{department=\"public_security\"}") >= 1.0);
    assert_eq!(has(&text, "dibao_department_breaker_open{department=\"public_security\"}"), 0.0);
    assert_eq!(has(&text, "dibao_campaigns_running "), 0.0);
    has(&text, "dibao_campaign_households{status=\"pending\"}");
    has(&text, "dibao_grpc_requests_total{method=\"/dibao.verification.v1.VerificationService/Verify");

    let text = scrape("roster-comparison").await;
    assert_eq!(has(&text, "dibao_comparison_runs_running "), 0.0);
    assert_eq!(has(&text, "dibao_comparison_last_households "), 3.0);
    assert_eq!(has(&text, "dibao_comparison_last_list_size{list=\"b\"}"), 3.0);
    assert!(has(&text, "dibao_comparison_last_finished_timestamp_seconds ") > 0.0);

    let text = scrape("adapter-public-security").await;
    assert!(
        has(&text, "dibao_grpc_requests_total{method=\"/dibao.department.v1.DepartmentService/Query\",code=\"Ok\"}")
            >= 1.0
    );

    let health = dibao_tests::http_get(all.metrics["civil-affairs"], "/healthz").await;
    assert!(health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"), "{health}");
    let missing = dibao_tests::http_get(all.metrics["civil-affairs"], "/other").await;
    assert!(missing.contains(" 404 "), "{missing}");

    let text = dibao_tests::metrics(gw.metrics.expect("the gateway serves metrics")).await;
    assert!(
        has(&text, &format!("dibao_gateway_calls_total{{method=\"{CIVIL}/ImportRoster\",outcome=\"forwarded\"}}"))
            >= 1.0
    );
    has(&text, "dibao_gateway_call_seconds_count ");
    has(&text, "dibao_gateway_logins_total{outcome=\"ok\"}");
}
