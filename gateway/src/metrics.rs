//! The gateway's Prometheus metrics: calls by method and outcome, and how
//! long the gateway took to the response's head (its own work plus the
//! service's), and login attempts by outcome; served on the metrics
//! listener every deployable has (`dibao_platform::runtime::metrics`).

use std::sync::Arc;
use std::time::Duration;

use dibao_platform::runtime::metrics::{Counters, Histogram, Source, Text};

#[derive(Default)]
pub struct Metrics {
    calls: Counters,
    latency: Histogram,
    logins: Counters,
}

impl Metrics {
    /// One call of `method` that ended in `outcome` (`forwarded`, `local`,
    /// `unauthenticated`, `denied`, `unknown_method`, `rate_limited`, `unavailable`).
    pub fn call(&self, method: &str, outcome: &'static str, took: Duration) {
        self.calls.add(method, outcome);
        self.latency.observe(took);
    }

    /// One login attempt and how it ended.
    pub fn login(&self, outcome: &'static str) {
        self.logins.add(outcome, "");
    }

    pub fn render(&self, out: &mut Text) {
        out.family("dibao_gateway_calls_total", "counter", "gRPC calls through the gateway, by method and outcome.");
        self.calls.render(out, "dibao_gateway_calls_total", ("method", "outcome"));
        out.family("dibao_gateway_call_seconds", "histogram", "Time to the response's head.");
        self.latency.render(out, "dibao_gateway_call_seconds", &[]);
        out.family("dibao_gateway_logins_total", "counter", "Login attempts, by outcome.");
        self.logins.render_one(out, "dibao_gateway_logins_total", "outcome");
    }

    /// These metrics as a part of the exposition.
    pub fn source(this: Arc<crate::gateway::Gateway>) -> Source {
        Arc::new(move |mut text| {
            this.metrics.render(&mut text);
            Box::pin(std::future::ready(text))
        })
    }
}
