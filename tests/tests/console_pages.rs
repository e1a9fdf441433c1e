//! The console's long lists, over HTTPS against the real gateway and every
//! service (no browser: the pages are read as the server sends them): a
//! county's comparison list of 120 households is worked through 50 entries
//! a page, each page linking the next, every household on exactly one
//! page; the county officers' work list counts the open entries of the run
//! (counted as the run was stored) and counts one fewer once an entry is
//! decided (R-CMP-3).

use std::collections::BTreeSet;

use dibao_proto::civil_affairs::v1 as ca;
use dibao_proto::civil_affairs::v1::civil_affairs_service_client::CivilAffairsServiceClient;
use dibao_proto::common::v1::{DivisionCode, OfficerRole, PageRequest};
use dibao_proto::comparison::v1 as cmp;
use dibao_proto::comparison::v1::comparison_service_client::ComparisonServiceClient;
use dibao_proto::labels::Label;
use dibao_test_mesh::{all, gateway};

const COUNTY: &str = "220581";
const TOWNSHIP: &str = "220581101";
const HOUSEHOLDS: usize = 120;

/// On the dibao roster, not registered poor: list (b) of every run.
fn household(i: usize) -> ca::Household {
    all::enrolled_pair(i, &format!("PG-{i:03}"), &format!("{TOWNSHIP}{:03}", 201 + i % 4), "19600101", "王")
}

/// The households a comparison page lists as open, as the list names them:
/// by the county's household number and the head ("PG-006 王12（村，2人）").
fn listed(page: &str) -> Vec<String> {
    let open = page.split("id=\"decided\"").next().unwrap_or_default();
    open.split("<td>PG-").skip(1).filter_map(|s| s.split_once('（').map(|(n, _)| format!("PG-{n}"))).collect()
}

/// The next page's address, as the page links it.
fn next_page(page: &str) -> Option<String> {
    let (before, _) = page.split_once("id=\"next-page\"")?;
    let link = before.rsplit("href=\"").next()?;
    Some(link.split('"').next().unwrap_or_default().replace("&amp;", "&"))
}

/// The open entries the work list counts for the township's list (b).
fn open_on_work_list(page: &str) -> String {
    let entries = page.split("id=\"entries\"").nth(1).expect("the work list has its comparison section");
    let row = entries.split("<tr>").find(|r| r.contains(cmp::ListKind::DibaoNotPoor.label())).unwrap_or_default();
    row.split("<td>").nth(3).and_then(|c| c.split("</td>").next()).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_list_is_worked_a_page_at_a_time_and_the_work_list_counts_what_is_open() {
    let all = all::start().await;
    let upstreams: Vec<(&str, std::net::SocketAddr)> = all.addrs.iter().map(|(k, v)| (*k, *v)).collect();
    let gw = gateway::start(&all.env, &upstreams).await;
    let office = gw.officer("pages-office", &[OfficerRole::CountyApprover, OfficerRole::CountyOperator], COUNTY).await;
    let mut civil = CivilAffairsServiceClient::new(office.clone());
    all::county_with(&mut civil, COUNTY, (0..HOUSEHOLDS).map(household)).await;

    // The comparison's view catches up through the broker, then a run.
    all.comparison_sees(HOUSEHOLDS).await;
    all::compare(office.clone(), COUNTY).await;
    let mut comparison = ComparisonServiceClient::new(office.clone());

    let token = gw
        .token(
            "pages-reader",
            &[OfficerRole::CountyApprover, OfficerRole::VerificationOfficer, OfficerRole::TownshipCaseworker],
            COUNTY,
        )
        .await;
    let client = dibao_gateway::https::KeepAlive::new(&gw.ca).expect("client");
    let base = format!("https://{}", gw.addr);
    let get = |path: String| {
        let (client, url, token) = (&client, format!("{base}{path}"), token.clone());
        async move {
            let (status, body) = client.get(&url, &token).await.expect("https");
            assert_eq!(status, http::StatusCode::OK, "{url}");
            String::from_utf8(body).expect("utf-8")
        }
    };

    let work = get("/work".into()).await;
    assert_eq!(open_on_work_list(&work), HOUSEHOLDS.to_string(), "{work}");

    // 50, 50 and 20 entries; each page links the next, the last none.
    let mut seen = Vec::new();
    let mut path = format!("/comparison?kind={}&division={COUNTY}", cmp::ListKind::DibaoNotPoor as i32);
    let mut pages = Vec::new();
    loop {
        let page = get(path.clone()).await;
        let households = listed(&page);
        pages.push(households.len());
        if pages.len() > 1 {
            assert!(page.contains("id=\"first-page\""), "a later page links back to the first");
        }
        seen.extend(households);
        match next_page(&page) {
            Some(next) => path = next,
            None => break,
        }
        assert!(pages.len() < 5, "the pages never end: {pages:?}");
    }
    assert_eq!(pages, [50, 50, 20]);
    let distinct: BTreeSet<&String> = seen.iter().collect();
    let expected: BTreeSet<String> = (0..HOUSEHOLDS).map(|i| format!("PG-{i:03} 王{}", 2 * i)).collect();
    assert_eq!(distinct.len(), seen.len(), "a household on two pages");
    assert_eq!(distinct.into_iter().cloned().collect::<BTreeSet<_>>(), expected);

    // One entry decided: the work list counts one fewer.
    let first = comparison
        .list_entries(cmp::ListEntriesRequest {
            run_id: String::new(),
            kind: cmp::ListKind::DibaoNotPoor as i32,
            division: Some(DivisionCode { code: COUNTY.into() }),
            page: Some(PageRequest { page_size: 1, page_token: String::new() }),
            continuous: false,
        })
        .await
        .expect("entries")
        .into_inner()
        .entries
        .remove(0);
    let poverty = gw.officer("pages-poverty", &[OfficerRole::PovertyOfficer], COUNTY).await;
    ComparisonServiceClient::new(poverty)
        .record_decision(cmp::RecordDecisionRequest {
            entry_id: first.entry_id,
            application_id: String::new(),
            conclusion: "按扶贫对象认定标准核查，家庭人均纯收入高于扶贫标准，不予认定".into(),
        })
        .await
        .expect("decision");
    let work = get("/work".into()).await;
    assert_eq!(open_on_work_list(&work), (HOUSEHOLDS - 1).to_string(), "{work}");
}
