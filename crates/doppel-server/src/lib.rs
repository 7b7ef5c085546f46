//! Doppel's HTTP and WebSocket API.
//!
//! This crate turns an [`Engine`] into a network service: InfluxDB-compatible
//! line-protocol writes, JSON points, twin management, range and aggregate
//! reads, live events over Server-Sent Events and WebSocket, health,
//! Prometheus metrics and an OpenAPI document describing all of it.
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

mod auth;
mod limits;
mod openapi;
mod ops;
mod points;
mod problem;
mod signals;
mod stream;
mod twins;
mod write;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, post};
use doppel_engine::Engine;
use tokio::sync::watch;

pub use auth::{Auth, AuthConfig, DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, RateLimit};
pub use limits::{
    DEFAULT_MAX_BATCH_POINTS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_JSON_POINTS, DEFAULT_REQUEST_TIMEOUT_MS,
};
pub use openapi::openapi;

/// Where the server listens when nothing else is configured (DESIGN.md
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
    /// Time a request may take to produce its answer before it gets 408.
    /// Streams (SSE, WebSocket) are bounded only while their answer starts.
    pub request_timeout: Duration,
    /// Who may do what: API tokens, JWTs, policies, rate limits.
    /// [`Auth::disabled`] by default, which allows every request.
    pub auth: Auth,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_batch_points: DEFAULT_MAX_BATCH_POINTS,
            max_json_points: DEFAULT_MAX_JSON_POINTS,
            request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            auth: Auth::disabled(),
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
    /// Accepting or serving connections failed.
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What every handler shares: the engine, the limits, the request metrics
/// and the shutdown signal long-lived streams watch.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Arc<Engine>,
    pub(crate) limits: Arc<ServerConfig>,
    pub(crate) metrics: Arc<ops::HttpMetrics>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Builds the API as an axum [`Router`], for tests and for embedding in a
/// larger service. Streams opened through this router end only when the
/// client leaves; use [`serve`] or [`serve_listener`] for graceful shutdown.
pub fn router(engine: Arc<Engine>, config: &ServerConfig) -> Router {
    // Nobody will signal shutdown here; streams treat a dropped sender as
    // "never" (see `stream::shutdown_requested`).
    let (_sender, receiver) = watch::channel(false);
    build_router(engine, config, receiver)
}

fn build_router(engine: Arc<Engine>, config: &ServerConfig, shutdown: watch::Receiver<bool>) -> Router {
    let state = AppState {
        engine,
        limits: Arc::new(config.clone()),
        metrics: Arc::new(ops::HttpMetrics::default()),
        shutdown,
    };
    let api = Router::new()
        .route("/api/v2/write", post(write::write_v2))
        .route("/write", post(write::write_v1))
        .route("/api/v1/points", post(points::post_points))
        .route("/api/v1/twins", get(twins::list_twins))
        .route("/api/v1/twins/{id}", get(twins::get_twin).put(twins::put_twin).delete(twins::delete_twin))
        .route("/api/v1/twins/{id}/points", post(points::post_twin_points))
        .route("/api/v1/twins/{id}/signals/{signal}", get(signals::get_signal))
        .route("/api/v1/twins/{id}/events", get(stream::twin_events))
        .route("/api/v1/stream", get(stream::websocket))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/tokens", post(auth::tokens::create_token).get(auth::tokens::list_tokens))
        .route("/api/v1/tokens/{id}", delete(auth::tokens::revoke_token))
        .route("/api/v1/twins/{id}/grants", get(auth::grants::list_grants).post(auth::grants::create_grant))
        .route("/api/v1/twins/{id}/grants/{grant}", delete(auth::grants::revoke_grant))
        .fallback(problem::not_found_fallback)
        .method_not_allowed_fallback(problem::method_not_allowed_fallback)
        // Layers run bottom-up on the way in: metrics see every answer,
        // including the 408 the timeout produces.
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::middleware::authenticate))
        .layer(axum::middleware::from_fn_with_state(config.request_timeout, limits::timeout))
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
    let (sender, receiver) = watch::channel(false);
    let app = build_router(engine, &config, receiver);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "doppel API listening");
    }
    // Events are small writes that must leave at once: without TCP_NODELAY,
    // Nagle's algorithm holds them until the peer's delayed ACK (tens of
    // milliseconds), which is most of a stream subscriber's tail latency.
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY on a connection");
        }
    });
    // The peer address lets the rate limit tell anonymous clients apart.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing streams, finishing requests in flight");
            // Streams (SSE, WebSocket) watch this and end, so graceful
            // shutdown does not wait on subscribers forever.
            let _ = sender.send(true);
        })
        .await?;
    Ok(())
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
