//! How fast the province generator streams, and in how much memory:
//!
//! cargo run --release -p dibao-synthetic --example generate_bench [-- MEMBERS]
//!
//! Generates households until MEMBERS members (default 10,000,000), counting
//! members and department records, and prints the rate and the peak RSS.

use std::time::Instant;

use dibao_synthetic::generator::{Config, Generator};
use dibao_tests::peak_rss_mib;

fn main() {
    let members: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let mut config = Config::new(20261123, usize::MAX);
    // A province: 80 counties of 15 townships of 12 villages.
    (config.counties, config.townships_per_county, config.villages_per_township) = (80, 15, 12);
    let started = Instant::now();
    let (mut households, mut people, mut records) = (0usize, 0usize, 0usize);
    for (h, r) in Generator::new(config) {
        households += 1;
        people += h.members.len();
        records += r.len();
        if people >= members {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generated {households} households, {people} members, {records} department records in {secs:.1} s: {:.0} members/s, peak RSS {:.1} MiB",
        people as f64 / secs,
        peak_rss_mib()
    );
}
