//! Prometheus metrics every deployable serves, as text on a plain-HTTP
//! listener of its own (`server.metrics_listen`, for the cluster's scraper
//! on an address the cluster keeps inside; off when unset):
//!
//! - `dibao_grpc_requests_total{method,code}` and
//!   `dibao_grpc_request_seconds{method}`: every call the gRPC server
//!   answered, refused ones included, timed to the response's head;
//! - from the ops service's pipeline status, read at each scrape:
//!   `dibao_outbox_backlog`, `dibao_outbox_oldest_pending_seconds`,
//!   `dibao_inbox_lag{topic,partition}`, `dibao_dead_letters_open`;
//! - whatever a service adds ([`Source`]): department calls and breakers,
//!   campaign and comparison progress.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::net::TcpListener;

use crate::runtime::shutdown::Shutdown;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The exposition text being written: families with their help and type,
/// then samples.
#[derive(Default)]
pub struct Text(String);

impl Text {
    /// Starts a family: `kind` is `counter`, `gauge` or `histogram`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample; `labels` as `(name, value)` pairs, values escaped here.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A latency histogram with the buckets above.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Its samples, the family already started.
    pub fn render(&self, out: &mut Text, name: &str, labels: &[(&str, &str)]) {
        let count = self.count.load(Ordering::Relaxed);
        for (i, bound) in BUCKETS.iter().enumerate() {
            let le = bound.to_string();
            let mut with = labels.to_vec();
            with.push(("le", &le));
            out.sample(&format!("{name}_bucket"), &with, self.buckets[i].load(Ordering::Relaxed));
        }
        let mut with = labels.to_vec();
        with.push(("le", "+Inf"));
        out.sample(&format!("{name}_bucket"), &with, count);
        out.sample(&format!("{name}_sum"), labels, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        out.sample(&format!("{name}_count"), labels, count);
    }
}

/// Histograms by a label value (a method, a department).
#[derive(Default)]
pub struct Histograms(Mutex<HashMap<String, Arc<Histogram>>>);

impl Histograms {
    pub fn observe(&self, key: &str, took: Duration) {
        let histogram = {
            let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            all.entry(key.to_owned()).or_default().clone()
        };
        histogram.observe(took);
    }

    /// Every histogram, `label` naming the key.
    pub fn render(&self, out: &mut Text, name: &str, label: &str) {
        let all: BTreeMap<String, Arc<Histogram>> =
            self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (key, histogram) in all {
            histogram.render(out, name, &[(label, &key)]);
        }
    }
}

/// Counters by a pair of label values.
#[derive(Default)]
pub struct Counters(Mutex<HashMap<(String, String), u64>>);

impl Counters {
    pub fn add(&self, a: &str, b: &str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner).entry((a.to_owned(), b.to_owned())).or_default() += 1;
    }

    /// Counted by the first value alone (the second left empty).
    pub fn render_one(&self, out: &mut Text, name: &str, label: &str) {
        let all: BTreeMap<String, u64> =
            self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|((a, _), v)| (a.clone(), *v)).collect();
        for (a, n) in all {
            out.sample(name, &[(label, &a)], n);
        }
    }

    pub fn render(&self, out: &mut Text, name: &str, labels: (&str, &str)) {
        let all: BTreeMap<(String, String), u64> =
            self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), *v)).collect();
        for ((a, b), n) in all {
            out.sample(name, &[(labels.0, &a), (labels.1, &b)], n);
        }
    }
}

/// What a gRPC server answered: calls by method and status code, latency by method.
#[derive(Default)]
pub struct GrpcMetrics {
    calls: Counters,
    latency: Histograms,
}

impl GrpcMetrics {
    pub fn record(&self, method: &str, code: tonic::Code, took: Duration) {
        self.calls.add(method, &format!("{code:?}"));
        self.latency.observe(method, took);
    }

    pub fn render(&self, out: &mut Text) {
        out.family("dibao_grpc_requests_total", "counter", "gRPC calls answered, by method and status code.");
        self.calls.render(out, "dibao_grpc_requests_total", ("method", "code"));
        out.family("dibao_grpc_request_seconds", "histogram", "Time to the response's head, by method.");
        self.latency.render(out, "dibao_grpc_request_seconds", "method");
    }
}

/// A part of the exposition a service adds, written at each scrape.
pub type Source = Arc<dyn Fn(Text) -> BoxFuture<'static, Text> + Send + Sync>;

/// Records every call into [`GrpcMetrics`]: the code is the response's
/// `grpc-status` when it comes with the head (a refusal, an error before
/// any message), OK otherwise.
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<GrpcMetrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner, metrics: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<GrpcMetrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let Ok(response) = answer.await;
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from);
            metrics.record(&method, code, started.elapsed());
            Ok(response)
        })
    }
}

/// Serves `GET /metrics` on `addr` until `shutdown` (the gRPC server's
/// metrics, then each source's) and `GET /healthz`.
pub async fn serve(
    addr: SocketAddr,
    grpc: Option<Arc<GrpcMetrics>>,
    sources: Vec<Source>,
    mut shutdown: Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let sources = Arc::new(sources);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
                () = shutdown.wait() => break,
            };
            let (grpc, sources) = (grpc.clone(), sources.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (grpc, sources) = (grpc.clone(), sources.clone());
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/metrics" => {
                                let mut text = Text::default();
                                if let Some(grpc) = &grpc {
                                    grpc.render(&mut text);
                                }
                                for source in sources.iter() {
                                    text = source(text).await;
                                }
                                (http::StatusCode::OK, text.into_string())
                            }
                            // For probes that cannot speak mTLS (Kubernetes'
                            // gRPC probes, compose's health checks): the
                            // process is up and serving.
                            "/healthz" => (http::StatusCode::OK, "ok\n".to_owned()),
                            _ => (http::StatusCode::NOT_FOUND, String::new()),
                        };
                        let response = http::Response::builder()
                            .status(status)
                            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                            .unwrap_or_default();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_their_labels_and_histograms_are_cumulative() {
        let mut text = Text::default();
        text.family("x_total", "counter", "X.");
        text.sample("x_total", &[("method", "/a\"b")], 3);
        let h = Histogram::default();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_secs(2));
        h.render(&mut text, "y_seconds", &[("method", "/m")]);
        let text = text.into_string();
        assert!(text.contains("x_total{method=\"/a\\\"b\"} 3"), "{text}");
        assert!(text.contains("y_seconds_bucket{method=\"/m\",le=\"0.0025\"} 1"), "{text}");
        assert!(text.contains("y_seconds_bucket{method=\"/m\",le=\"5\"} 2"), "{text}");
        assert!(text.contains("y_seconds_bucket{method=\"/m\",le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("y_seconds_count{method=\"/m\"} 2"), "{text}");
    }
}
