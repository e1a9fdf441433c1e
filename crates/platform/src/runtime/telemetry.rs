//! Tracing for every binary, OpenTelemetry export when configured, and W3C
//! trace context carried in gRPC metadata and Kafka headers.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::runtime::settings::{LogFormat, TelemetrySettings};

/// Keeps the tracer provider alive; dropping it flushes pending spans.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
    }
}

/// Installs the global subscriber: logs to stdout (JSON or pretty), spans to
/// OTLP when an endpoint is set. Call once, first thing in `main`.
pub fn init(service: &str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service.to_owned()).build())
                    .build(),
            )
        }
        None => None,
    };
    install(service, settings.log_format, provider.clone())?;
    Ok(TelemetryGuard { provider })
}

/// As [`init`] with a given provider (tests pass one with an in-memory exporter).
pub fn install(service: &str, format: LogFormat, provider: Option<SdkTracerProvider>) -> anyhow::Result<()> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,h2=warn,tower=warn"));
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer().json().with_current_span(false).boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };
    let otel = provider.map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service.to_owned())));
    tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init()?;
    Ok(())
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);
impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct MapExtractor<'a>(&'a HashMap<String, String>);
impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// W3C trace context (`traceparent`, `tracestate`) of the current span.
pub fn current_trace_context() -> HashMap<String, String> {
    let mut map = HashMap::new();
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut MapInjector(&mut map));
    map
}

/// Makes `span` a child of the remote context in `map` (from a Kafka header
/// or gRPC metadata); a missing or malformed context leaves it a root.
pub fn set_parent(span: &tracing::Span, map: &HashMap<String, String>) {
    let cx = TraceContextPropagator::new().extract(&MapExtractor(map));
    // An error here only means no OpenTelemetry layer is installed.
    let _ = span.set_parent(cx);
}

/// Client side: interceptor that puts the current trace context into the
/// outgoing gRPC metadata.
pub fn inject_grpc(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    for (k, v) in current_trace_context() {
        if let (Ok(key), Ok(val)) = (
            tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
            tonic::metadata::MetadataValue::try_from(v.as_str()),
        ) {
            req.metadata_mut().insert(key, val);
        }
    }
    Ok(req)
}

/// Server side: one span per call, child of the caller's trace context.
pub fn grpc_server_span(req: &http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    let span = tracing::info_span!("grpc.server", rpc.method = %path, otel.kind = "server");
    let map: HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|k| Some((k.to_owned(), req.headers().get(k)?.to_str().ok()?.to_owned())))
        .collect();
    set_parent(&span, &map);
    span
}
