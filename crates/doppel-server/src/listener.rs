//! The accept loop: one task per connection, plain TCP or TLS, HTTP/1.1
//! (with upgrades, for WebSocket) or HTTP/2, and graceful shutdown.
//!
//! Connection-level limits live here because no request handler can see
//! them: a client has [`crate::ServerConfig::header_read_timeout`] to
//! finish the TLS handshake and send its first request head, and an
//! HTTP/1 client has it again for every later head; request heads larger
//! than [`crate::ServerConfig::max_header_bytes`] get 431; at most
//! [`crate::ServerConfig::max_connections`] are open at once, beyond
//! which the loop stops accepting until one closes.
//!
//! A handler may close its own connection at once ([`ConnectionCloser`]):
//! that is how a stream subscriber that stopped reading is let go.
//!
//! Shutdown follows the broadcast-and-wait pattern: the accept loop stops,
//! the `stop` watch turns true (connections finish the request in flight
//! and close; streams end), and the loop returns once the last connection
//! task has dropped its completion sender.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::client_cert::ClientCertificate;
use crate::limits::Slots;
use crate::stream::shutdown_requested;
use crate::tls::{Tls, reload};
use crate::{ServerConfig, ServerError};

/// Pause after an accept error that is not about one connection (out of
/// file descriptors, most often), so the loop does not spin while the
/// condition lasts.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 100;

/// What every connection task shares.
struct Shared {
    app: Router,
    http: auto::Builder<TokioExecutor>,
    tls: Option<Tls>,
    header_read_timeout: Duration,
    connections: OpenConnections,
}

/// The slots of open connections, [`crate::ServerConfig::max_connections`]
/// of them; every request carries it as an extension, for `/metrics`.
#[derive(Clone, Debug)]
pub(crate) struct OpenConnections(pub(crate) Slots);

/// Serves `app` on `listener` until `shutdown` completes, then tells every
/// connection and stream to stop and waits for the connections to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    config: &ServerConfig,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let http = http_builder(config)?;
    let (stop, _) = watch::channel(false);
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(url = %format!("{scheme}://{addr}"), "doppel API listening");
    }
    // Aborted when `serve` returns or is dropped, so no reload task outlives its server.
    let _reload = tls.as_ref().map(|tls| {
        AbortOnDrop(tokio::spawn(reload::watch(tls.certificate.clone(), tls.reload_poll, stop.subscribe())))
    });
    let connections = OpenConnections(Slots::new(config.max_connections));
    let shared =
        Arc::new(Shared { app, http, tls, header_read_timeout: config.header_read_timeout, connections });
    let (done_sender, mut all_done) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // At the limit, new clients wait in the kernel's backlog until a
        // connection closes.
        let slot = tokio::select! {
            slot = shared.connections.0.take() => slot,
            () = &mut shutdown => break,
        };
        let Some(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection =
                    Connection { shared: shared.clone(), peer, stop: stop.subscribe(), _slot: slot };
                tokio::spawn(connection.run(stream, done_sender.clone()));
            }
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "a connection failed before it was accepted");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept connections; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)) => {}
                    () = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: closing streams, finishing requests in flight");
    // Connections and streams (SSE, WebSocket) watch this and end, so
    // graceful shutdown does not wait on subscribers forever.
    stop.send_replace(true);
    drop(done_sender);
    // `None` once every connection task has dropped its sender.
    let _ = all_done.recv().await;
    Ok(())
}

/// The HTTP/1 and HTTP/2 settings every connection uses.
fn http_builder(config: &ServerConfig) -> Result<auto::Builder<TokioExecutor>, ServerError> {
    if config.max_header_bytes < crate::limits::MIN_MAX_HEADER_BYTES {
        return Err(ServerError::HeaderLimitTooSmall {
            bytes: config.max_header_bytes,
            minimum: crate::limits::MIN_MAX_HEADER_BYTES,
        });
    }
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        // A request head that does not fit the read buffer gets 431.
        .max_buf_size(config.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
    Ok(builder)
}

/// Errors of `accept` that concern one connection only, which the peer
/// abandoned before the server took it.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection.
struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    /// Given back when the connection ends.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Serves the connection to its end. `_done` is dropped when this
    /// returns, which is how the accept loop learns it finished.
    async fn run(mut self, stream: TcpStream, _done: mpsc::Sender<()>) {
        // Events are small writes that must leave at once: without
        // TCP_NODELAY, Nagle's algorithm holds them until the peer's
        // delayed ACK (tens of milliseconds), which is most of a stream
        // subscriber's tail latency.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
        let deadline = Instant::now() + self.shared.header_read_timeout;
        let Some(tls) = &self.shared.tls else {
            return self.serve_http(TokioIo::new(stream), None, deadline).await;
        };
        let handshake = tokio::select! {
            handshake = tokio::time::timeout_at(deadline, tls.acceptor.accept(stream)) => handshake,
            () = shutdown_requested(&mut self.stop) => return,
        };
        let stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %self.peer, "TLS handshake not finished in time");
                return;
            }
        };
        let leaf = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
        let client = match leaf.map(|leaf| ClientCertificate::from_der(leaf)).transpose() {
            Ok(client) => client,
            Err(error) => {
                // rustls verified this certificate, so this is a gap in our
                // reader; refuse rather than serve the client anonymously.
                tracing::warn!(peer = %self.peer, %error, "cannot read a verified client certificate");
                return;
            }
        };
        self.serve_http(TokioIo::new(stream), client, deadline).await;
    }

    /// Runs HTTP on an established (plain or TLS) stream until the client
    /// leaves, the connection fails, the first request does not arrive by
    /// `deadline`, or a graceful shutdown completes.
    async fn serve_http<I>(mut self, io: I, client: Option<ClientCertificate>, deadline: Instant)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let first_request_seen = Arc::new(AtomicBool::new(false));
        let seen = first_request_seen.clone();
        let app = self.shared.app.clone();
        let shutdown = ShutdownSignal(self.stop.clone());
        let (closer, close_requested) = ConnectionCloser::new();
        // The peer address lets the rate limit tell anonymous clients apart.
        let peer = axum::extract::ConnectInfo(self.peer);
        let connections = self.shared.connections.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            seen.store(true, Ordering::Relaxed);
            request.extensions_mut().insert(shutdown.clone());
            request.extensions_mut().insert(closer.clone());
            request.extensions_mut().insert(peer);
            request.extensions_mut().insert(connections.clone());
            if let Some(client) = &client {
                request.extensions_mut().insert(client.clone());
            }
            app.clone().oneshot(request)
        });
        let connection = self.shared.http.serve_connection_with_upgrades(io, service);
        let mut connection = std::pin::pin!(connection);
        // hyper bounds every HTTP/1 request head once the connection knows
        // it speaks HTTP/1; this bounds the time before that (choosing the
        // protocol, the first HTTP/2 frames) for either protocol.
        let first_request_due = tokio::time::sleep_until(deadline);
        let mut first_request_due = std::pin::pin!(first_request_due);
        let mut waiting_for_first_request = true;
        let mut stopping = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
                    }
                    return;
                }
                () = &mut first_request_due, if waiting_for_first_request => {
                    waiting_for_first_request = false;
                    if !first_request_seen.load(Ordering::Relaxed) {
                        tracing::debug!(peer = %self.peer, "closing a connection that sent no request in time");
                        return;
                    }
                }
                () = close_requested.notified() => {
                    tracing::debug!(peer = %self.peer, "closing a connection whose stream subscriber was dropped");
                    return;
                }
                () = shutdown_requested(&mut self.stop), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The server's shutdown signal as a request extension, so long-lived
/// answers (SSE, WebSocket) of any router served here can end on a
/// graceful shutdown. Extracting it never fails: without the extension
/// (a router served elsewhere) it is a signal that never fires.
#[derive(Clone, Debug)]
pub(crate) struct ShutdownSignal(pub(crate) watch::Receiver<bool>);

impl<S: Send + Sync> FromRequestParts<S> for ShutdownSignal {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_else(|| Self(watch::channel(false).1)))
    }
}

/// Closes the connection a request came on, at once, whatever it is
/// doing: for an answer that can no longer make progress, such as the
/// event stream of a client that stopped reading, whose writes would
/// otherwise wait forever. On HTTP/2 this ends every request of the
/// connection. Extracting it never fails: without the extension (a router
/// served elsewhere) closing does nothing, and the answer simply ends.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionCloser(Option<Arc<Notify>>);

impl ConnectionCloser {
    /// A closer, and what the connection's task waits on to hear it.
    pub(crate) fn new() -> (Self, Arc<Notify>) {
        let notify = Arc::new(Notify::new());
        (Self(Some(notify.clone())), notify)
    }

    /// Asks the connection's task to drop the connection.
    pub(crate) fn close(&self) {
        if let Some(notify) = &self.0 {
            notify.notify_one();
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ConnectionCloser {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or(Self(None)))
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
