//! The gateway's Prometheus metrics: calls by method and outcome, and how
//! long the gateway took to the response's head (its own work plus the
//! service's), served as text on the metrics listener.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    calls: Mutex<HashMap<(String, &'static str), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    logins: Mutex<HashMap<&'static str, u64>>,
}

impl Metrics {
    /// One call of `method` that ended in `outcome` (`forwarded`, `local`,
    /// `unauthenticated`, `denied`, `unknown_method`, `rate_limited`, `unavailable`).
    pub fn call(&self, method: &str, outcome: &'static str, took: Duration) {
        *self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((method.to_owned(), outcome))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// One login attempt and how it ended.
    pub fn login(&self, outcome: &'static str) {
        *self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(outcome).or_default() += 1;
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ =
            writeln!(out, "# HELP dibao_gateway_calls_total gRPC calls through the gateway, by method and outcome.");
        let _ = writeln!(out, "# TYPE dibao_gateway_calls_total counter");
        let calls = self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut lines: Vec<_> = calls.iter().collect();
        lines.sort();
        for ((method, outcome), n) in lines {
            let _ = writeln!(out, "dibao_gateway_calls_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP dibao_gateway_call_seconds Time to the response's head.");
        let _ = writeln!(out, "# TYPE dibao_gateway_call_seconds histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "dibao_gateway_call_seconds_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "dibao_gateway_call_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ =
            writeln!(out, "dibao_gateway_call_seconds_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "dibao_gateway_call_seconds_count {count}");
        let _ = writeln!(out, "# HELP dibao_gateway_logins_total Login attempts, by outcome.");
        let _ = writeln!(out, "# TYPE dibao_gateway_logins_total counter");
        let logins = self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut lines: Vec<_> = logins.iter().collect();
        lines.sort();
        for (outcome, n) in lines {
            let _ = writeln!(out, "dibao_gateway_logins_total{{outcome=\"{outcome}\"}} {n}");
        }
        out
    }
}
