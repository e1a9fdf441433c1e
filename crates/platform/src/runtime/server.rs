//! The gRPC server every service runs: mTLS, the access policy, one span
//! per call (child of the caller's trace), `grpc.health.v1`, server
//! reflection, the ops service, its metrics on a listener of their own, and
//! graceful shutdown that lets in-flight calls finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::server::HealthReporter;

use crate::events::ops::Ops;
use crate::runtime::access::{Gate, GateLayer};
use crate::runtime::metrics::{self, GrpcMetrics, MetricsLayer, Source};
use crate::runtime::shutdown::Shutdown;
use crate::runtime::telemetry;
use crate::runtime::tls::TlsMaterial;

type BoxedSetServing = Box<dyn FnOnce(HealthReporter) -> futures_util::future::BoxFuture<'static, ()> + Send>;

pub struct ServerBuilder {
    tls: TlsMaterial,
    gate: Gate,
    routes: RoutesBuilder,
    reporter: HealthReporter,
    serving: Vec<BoxedSetServing>,
    metrics: Arc<GrpcMetrics>,
    metrics_listen: Option<SocketAddr>,
    sources: Vec<Source>,
}

impl ServerBuilder {
    /// Health, reflection and (given one) the ops service
    /// come with every server.
    pub fn new(tls: TlsMaterial, gate: Gate, ops: Option<Ops>) -> Self {
        let (reporter, health) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes.add_service(health);
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(dibao_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        // Both reflection versions: buf curl and grpcurl try v1 first, older tools v1alpha.
        match reflection.build_v1() {
            Ok(v1) => {
                routes.add_service(v1);
            }
            Err(e) => tracing::error!(error = %e, "reflection v1 unavailable"),
        }
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(dibao_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        match reflection.build_v1alpha() {
            Ok(v1alpha) => {
                routes.add_service(v1alpha);
            }
            Err(e) => tracing::error!(error = %e, "reflection v1alpha unavailable"),
        }
        let mut builder = Self {
            tls,
            gate,
            routes,
            reporter,
            serving: Vec::new(),
            metrics: Arc::default(),
            metrics_listen: None,
            sources: Vec::new(),
        };
        if let Some(ops) = ops {
            builder.sources.push(ops.metrics());
            builder = builder.add_service(ops.server());
        }
        builder
    }

    /// Serves the metrics on `listen` too (none when `None`).
    pub fn metrics(mut self, listen: Option<SocketAddr>) -> Self {
        self.metrics_listen = listen;
        self
    }

    /// A part of the metrics the service adds.
    pub fn metrics_source(mut self, source: Source) -> Self {
        self.sources.push(source);
        self
    }

    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(svc);
        self.serving.push(Box::new(|r: HealthReporter| Box::pin(async move { r.set_serving::<S>().await })));
        self
    }

    /// Serves on `listener` until `shutdown`, then stops accepting and waits
    /// for in-flight calls.
    pub async fn serve(self, listener: TcpListener, mut shutdown: Shutdown) -> Result<(), tonic::transport::Error> {
        let calls = MetricsLayer(self.metrics.clone());
        for set in self.serving {
            set(self.reporter.clone()).await;
        }
        // Nagle's algorithm against delayed ACKs holds small HTTP/2 frames
        // back for up to 40 ms; tonic only turns it off for sockets it binds.
        let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |s| {
            s.and_then(|s| s.set_nodelay(true).map(|()| s))
        });
        let reporter = self.reporter.clone();
        let stop = async move {
            shutdown.wait().await;
            // Load balancers stop sending before we stop answering.
            reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
        };
        tonic::transport::Server::builder()
            .tls_config(self.tls.server_config())?
            .trace_fn(telemetry::grpc_server_span)
            // Refusals counted too: the gate answers inside the metrics.
            .layer(calls)
            .layer(GateLayer::new(self.gate))
            .add_routes(self.routes.routes())
            .serve_with_incoming_shutdown(incoming, stop)
            .await
    }

    /// Binds `addr` (port 0 for any free port) and serves in the background.
    pub async fn start(mut self, addr: SocketAddr, shutdown: Shutdown) -> std::io::Result<RunningServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let metrics = match self.metrics_listen {
            Some(listen) => {
                let sources = std::mem::take(&mut self.sources);
                let bound = metrics::serve(listen, Some(self.metrics.clone()), sources, shutdown.clone()).await?;
                tracing::info!(%bound, "metrics listening");
                Some(bound)
            }
            None => None,
        };
        let handle = tokio::spawn(self.serve(listener, shutdown));
        tracing::info!(%addr, "grpc server listening");
        Ok(RunningServer { addr, handle, metrics })
    }
}

pub struct RunningServer {
    pub addr: SocketAddr,
    pub handle: JoinHandle<Result<(), tonic::transport::Error>>,
    /// Where its metrics are served, if they are.
    pub metrics: Option<SocketAddr>,
}

/// Puts the current span's W3C trace context (`traceparent`, `tracestate`)
/// on every call, so one trace follows a request across the mesh.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContext;

impl tonic::service::Interceptor for TraceContext {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        telemetry::inject_grpc(request)
    }
}

/// A channel from one service of the mesh to another: mTLS, and the
/// caller's trace context on every call.
pub type MeshChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, TraceContext>;

/// An mTLS channel to a mesh service at `addr`, checked against
/// `server_name`, connecting on its first call (a service starts whatever
/// order its peers come up in) and again whenever the connection drops;
/// each call carries the trace context.
pub fn lazy_channel(tls: &TlsMaterial, addr: &str, server_name: &str) -> Result<MeshChannel, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls.client_config(server_name))?
        .connect_timeout(std::time::Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(tonic::service::interceptor::InterceptedService::new(channel, TraceContext))
}

/// An mTLS channel to a mesh service at `addr`, checked against `server_name`.
pub async fn connect(
    tls: &TlsMaterial,
    addr: &str,
    server_name: &str,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls.client_config(server_name))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
}

/// What a client puts on every call beside its certificate: an officer's
/// session token for the gateway, an officer assertion (the gateway's own
/// calls, the tests' desks), or nothing.
#[derive(Clone)]
pub struct Credentials(std::sync::Arc<Writer>);

/// What writes a call's credentials into its metadata.
type Writer = dyn Fn(&mut tonic::metadata::MetadataMap, &tonic::Extensions) + Send + Sync;

impl Credentials {
    /// Nothing beyond the certificate: a system calling on its own.
    pub fn none() -> Self {
        Self::from_fn(|_, _| {})
    }

    /// `authorization: Bearer <token>`: an officer's session at the gateway.
    pub fn bearer(token: &str) -> Self {
        let value = tonic::metadata::MetadataValue::try_from(format!("Bearer {}", token.trim()));
        Self::from_fn(move |metadata, _| {
            if let Ok(v) = &value {
                metadata.insert("authorization", v.clone());
            }
        })
    }

    /// These credentials, and `key: value` on every call too (the gateway's
    /// `x-dibao-service` naming the service a call is for).
    pub fn with(self, key: &'static str, value: &str) -> Self {
        let value = tonic::metadata::MetadataValue::try_from(value);
        Self::from_fn(move |metadata, extensions| {
            (self.0)(metadata, extensions);
            if let Ok(v) = &value {
                metadata.insert(key, v.clone());
            }
        })
    }

    /// Whatever `f` writes into each call's metadata (it may read the
    /// call's extensions).
    pub fn from_fn(f: impl Fn(&mut tonic::metadata::MetadataMap, &tonic::Extensions) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let (mut metadata, extensions, message) = request.into_parts();
        (self.0)(&mut metadata, &extensions);
        // The caller's trace goes with its credentials.
        TraceContext.call(tonic::Request::from_parts(metadata, extensions, message))
    }
}

/// A channel whose calls carry [`Credentials`].
pub type CallerChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>;
