//! Doppel's HTTP and WebSocket API.
//!
//! This crate turns an [`Engine`] into a network service: InfluxDB-compatible
//! line-protocol writes, JSON points, twin management, range and aggregate
//! reads, exports, pseudonymised and differentially private cohort output,
//! live events over Server-Sent Events and WebSocket, health,
//! Prometheus metrics and an OpenAPI document describing all of it, over
//! plain HTTP or TLS (with optional client certificates, whose verified
//! identity reaches handlers as a [`ClientCertificate`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use doppel_engine::{Engine, EngineConfig};
//! use doppel_server::{ServerConfig, serve};
//! use doppel_store::StoreConfig;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Arc::new(Engine::open(EngineConfig::new(StoreConfig::new("./doppel-data")))?);
//! let shutdown = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
//! serve(engine, ServerConfig::default(), shutdown).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Invariants: handlers never call the engine on an async worker thread
//! (engine calls may block on fsync, so they run under
//! [`tokio::task::spawn_blocking`]); every error leaves through one mapping
//! (`problem.rs`) as RFC 9457 `application/problem+json`, except the Influx
//! write routes, which answer the way InfluxDB does because its clients check;
//! every size a client controls has a named limit (`limits.rs`). This crate
//! knows nothing of storage formats or how the engine keeps live state.

mod audit;
mod auth;
mod client_cert;
mod cohort;
mod export;
mod history;
mod limits;
mod listener;
mod openapi;
mod ops;
mod points;
mod problem;
mod signals;
mod stream;
mod streaming;
mod tls;
mod twins;
mod write;
mod x509;

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, post};
use doppel_audit::AuditLog;
use doppel_engine::Engine;

pub use auth::{Auth, AuthConfig, DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, RateLimit};
pub use client_cert::{ClientCertificate, Sha256Fingerprint};
pub use cohort::{Privacy, PrivacyConfig};
pub use limits::{
    DEFAULT_HEADER_READ_TIMEOUT_MS, DEFAULT_MAX_BATCH_POINTS, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_JSON_POINTS,
    DEFAULT_MAX_READ_POINTS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SUBSCRIBER_SEND_TIMEOUT_MS,
    MIN_MAX_HEADER_BYTES,
};
pub use openapi::openapi;
pub use tls::{ClientAuth, DEFAULT_TLS_RELOAD_POLL_MS, TlsConfig};

/// Where the server listens when nothing else is configured (`docs/design.md`,
/// "Contracts": `127.0.0.1:7780`, loopback so a fresh install is not exposed).
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7780);

/// How the server listens and which limits it enforces on clients.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address [`serve`] binds.
    pub listen: SocketAddr,
    /// Largest request body, both as sent and after gzip inflation.
    pub max_body_bytes: usize,
    /// Largest batch one write request may carry, in points.
    pub max_batch_points: usize,
    /// Largest number of items in one JSON points request.
    pub max_json_points: usize,
    /// Most raw points one signal read returns; a read whose range holds
    /// more is refused (400), counted from block metadata before any of
    /// it is read.
    pub max_read_points: usize,
    /// Most requests served at once; beyond it a request gets 503
    /// `server-busy` with `Retry-After` at once. A request holds its slot
    /// until its answer starts.
    pub max_in_flight: NonZeroUsize,
    /// Most connections open at once; beyond it the server stops
    /// accepting until one closes.
    pub max_connections: NonZeroUsize,
    /// Time a request may take to produce its answer before it gets 408.
    /// Streams (SSE, WebSocket) are bounded only while their answer starts.
    pub request_timeout: Duration,
    /// Time a new connection has to finish its TLS handshake and send its
    /// first request head, and an HTTP/1 connection has to send each later
    /// one; a slow or silent client is disconnected after it.
    pub header_read_timeout: Duration,
    /// Largest HTTP/1 request head (request line and headers) in bytes,
    /// and largest HTTP/2 header list; larger heads get 431. At least
    /// [`MIN_MAX_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// Longest one send to a stream subscriber (an SSE event, a WebSocket
    /// frame) may take; a subscriber that does not accept it in time is
    /// dropped, its subscription ended with a reason, so a client that
    /// stops reading never holds memory or a connection for long.
    pub subscriber_send_timeout: Duration,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Who may do what: API tokens, JWTs, policies, rate limits.
    /// [`Auth::disabled`] by default, which allows every request.
    pub auth: Auth,
    /// The pseudonym secret and privacy budgets of cohort output.
    /// [`Privacy::ephemeral`] by default: a random secret and budgets in
    /// memory, both gone at exit.
    pub privacy: Privacy,
    /// Where every request touching twin data or policy is recorded, and
    /// what `GET /api/v1/audit` reads; `None` (the default, for embedding
    /// and tests) records nothing. `doppel serve` opens one in
    /// `<data>/audit`. The server appends only; whoever opened the log
    /// closes it after [`serve`] returns, so its last records are fsynced.
    pub audit: Option<AuditLog>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_batch_points: DEFAULT_MAX_BATCH_POINTS,
            max_json_points: DEFAULT_MAX_JSON_POINTS,
            max_read_points: DEFAULT_MAX_READ_POINTS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            subscriber_send_timeout: Duration::from_millis(DEFAULT_SUBSCRIBER_SEND_TIMEOUT_MS),
            tls: None,
            auth: Auth::disabled(),
            privacy: Privacy::default(),
            audit: None,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound (in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from [`ServerConfig::listen`].
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// [`ServerConfig::max_header_bytes`] is below what HTTP/1 needs.
    #[error("max_header_bytes = {bytes} is too small: the least is {minimum}")]
    HeaderLimitTooSmall {
        /// The configured limit.
        bytes: usize,
        /// [`MIN_MAX_HEADER_BYTES`].
        minimum: usize,
    },
    /// A certificate, key or CA file could not be read.
    #[error("cannot read TLS file {}: {source}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A TLS file is not valid PEM.
    #[error("TLS file {} is not valid PEM: {reason}", path.display())]
    TlsPem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        reason: String,
    },
    /// A certificate chain or CA bundle file holds no certificate.
    #[error("TLS file {} holds no certificate (expected \"-----BEGIN CERTIFICATE-----\" blocks)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The private key file holds no key.
    #[error("TLS key file {} holds no private key (expected a \"-----BEGIN ... PRIVATE KEY-----\" block)", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is unusable or does not belong to the certificate.
    #[error("TLS key {} cannot serve certificate {}: {reason}", key.display(), certificate.display())]
    TlsKey {
        /// The private key file.
        key: PathBuf,
        /// The certificate chain file.
        certificate: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The client CA bundle cannot verify client certificates.
    #[error("client CA bundle {}: {reason}", path.display())]
    ClientCaBundle {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls refused the TLS settings.
    #[error("cannot set up TLS: {0}")]
    TlsSetup(String),
    /// A client certificate is not well-formed DER.
    #[error("malformed client certificate: {part}: {problem}")]
    MalformedClientCertificate {
        /// The structure being read.
        part: &'static str,
        /// What was wrong there.
        problem: &'static str,
    },
}

/// What every handler shares: the engine, the limits, the request
/// metrics, the count of dropped stream subscribers and the in-flight
/// request slots. (The shutdown signal streams watch comes with each request,
/// from the accept loop.)
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) limits: Arc<ServerConfig>,
    pub(crate) metrics: Arc<ops::HttpMetrics>,
    pub(crate) dropped_subscribers: Arc<stream::DropCounts>,
    pub(crate) in_flight: limits::Slots,
}

/// Builds the API as an axum [`Router`], for tests and for embedding in a
/// larger service. Served by [`serve_router`], its streams end on graceful
/// shutdown; served any other way, they end only when the client leaves.
pub fn router(engine: Arc<Engine>, config: &ServerConfig) -> Router {
    let state = AppState {
        engine,
        limits: Arc::new(config.clone()),
        metrics: Arc::new(ops::HttpMetrics::default()),
        dropped_subscribers: Arc::new(stream::DropCounts::default()),
        in_flight: limits::Slots::new(config.max_in_flight),
    };
    let api = Router::new()
        .route("/api/v2/write", post(write::write_v2))
        .route("/write", post(write::write_v1))
        .route("/api/v1/points", post(points::post_points))
        .route("/api/v1/twins", get(twins::list_twins))
        .route("/api/v1/twins/{id}", get(twins::get_twin).put(twins::put_twin).delete(twins::delete_twin))
        .route("/api/v1/twins/{id}/points", post(points::post_twin_points))
        .route("/api/v1/twins/{id}/signals/{signal}", get(signals::get_signal))
        .route("/api/v1/twins/{id}/events", get(stream::sse::twin_events))
        .route("/api/v1/twins/{id}/export", get(export::export_twin))
        .route("/api/v1/stream", get(stream::websocket::websocket))
        .route("/api/v1/cohort/export", get(cohort::export::cohort_export))
        .route("/api/v1/cohort/stats", post(cohort::stats::cohort_stats))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/admin/flush", post(ops::flush))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/tokens", post(auth::tokens::create_token).get(auth::tokens::list_tokens))
        .route("/api/v1/tokens/{id}", delete(auth::tokens::revoke_token))
        .route("/api/v1/twins/{id}/grants", get(auth::grants::list_grants).post(auth::grants::create_grant))
        .route("/api/v1/twins/{id}/grants/{grant}", delete(auth::grants::revoke_grant))
        .route("/api/v1/audit", get(audit::read::list_audit))
        .fallback(problem::not_found_fallback)
        .method_not_allowed_fallback(problem::method_not_allowed_fallback)
        // Layers run bottom-up on the way in: metrics see every answer,
        // including the 408 the timeout produces; the audit record is made
        // after authentication, so it knows the principal.
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware::authenticate))
        .layer(axum::middleware::from_fn_with_state(config.request_timeout, limits::timeout))
        // Outside authentication and the timeout, so overload is refused
        // before a request costs anything.
        .layer(axum::middleware::from_fn_with_state(state.in_flight.clone(), limits::in_flight))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::record_request))
        // Bodies are read by `limits::read_body`, which enforces
        // `max_body_bytes` itself with a clear 413.
        .layer(axum::extract::DefaultBodyLimit::disable());
    api.with_state(state)
}

/// Binds [`ServerConfig::listen`] and serves until `shutdown` completes,
/// then stops accepting, ends open streams and waits for requests in flight.
pub async fn serve(
    engine: Arc<Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind { addr: config.listen, source })?;
    serve_listener(listener, engine, config, shutdown).await
}

/// Like [`serve`] on a listener the caller bound, so tests and embedders can
/// listen on port 0 and learn the port from the listener first.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let app = router(engine, &config);
    serve_router(listener, app, config, shutdown).await
}

/// Serves any router on `listener` with the connection limits and TLS of
/// `config` until `shutdown` completes, then stops accepting, ends the
/// streams of [`router`] and waits for requests in flight. For embedders
/// that extend the API, and tests that need a route of their own.
/// Handlers find the client's certificate, when there is one, as a
/// [`ClientCertificate`] request extension.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = config.tls.as_ref().map(tls::Tls::load).transpose()?;
    listener::serve(listener, app, &config, tls, shutdown).await
}

/// Runs a blocking engine call off the async workers. A panic inside the
/// call becomes an internal error answer rather than a dropped connection.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, problem::ApiError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| problem::ApiError::Internal(format!("engine task failed: {error}")))
}
