//! Limits on what one client may ask of the server, and the code that
//! enforces them: body size (as sent and after gzip inflation), request
//! time, request heads, page sizes. Every limit is a named constant with its reason; the
//! ones operators tune are also fields of [`crate::ServerConfig`].

use std::io::Read;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::ApiError;

/// Default largest request body, compressed and inflated: 32 MiB holds
/// about 500,000 typical line-protocol lines, far above what Telegraf or
/// an app sends in one flush, while bounding the memory one request pins.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Default largest batch in points: one batch is validated, logged and
/// applied atomically, so its size bounds the memory and the time one
/// request holds the write path.
pub const DEFAULT_MAX_BATCH_POINTS: usize = 1_000_000;

/// Default largest JSON points request in items: the JSON parser's own cap
/// (a JSON item costs far more to parse and hold than a line), so a server
/// can lower it but not raise it.
pub const DEFAULT_MAX_JSON_POINTS: usize = doppel_protocols::json_points::MAX_JSON_POINTS;

/// Default time a request may take to answer: long enough for a maximal
/// batch on a slow disk, short enough that a stuck client or engine call
/// does not hold a connection slot forever.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

/// Seconds a write refused because the store is flushing behind is told
/// to wait (`Retry-After`): a flush of a full head at the defaults takes
/// a few seconds, and InfluxDB clients and Telegraf wait this long before
/// they send the batch again rather than retrying at once.
pub const FLUSH_BEHIND_RETRY_AFTER_SECS: u64 = 5;

/// Seconds a request refused because the server is at its in-flight
/// limit is told to wait (`Retry-After`): requests take milliseconds to
/// seconds, so a slot is soon free.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Default most requests served at once. Each may pin a body of
/// [`DEFAULT_MAX_BODY_BYTES`] and a blocking thread; 256 stays under
/// tokio's 512 blocking threads, so an admitted request never queues for
/// one, and bounds what requests pin to a few gigabytes at worst, while a
/// 2-core server is saturated by far fewer. Beyond it a request is
/// refused at once (503 with `Retry-After`) rather than queued.
pub const DEFAULT_MAX_IN_FLIGHT: NonZeroUsize = NonZeroUsize::new(256).unwrap();

/// Default most connections open at once: each holds a task, its buffers
/// and a file descriptor. Beyond it the server stops accepting until one
/// closes (new clients wait in the kernel's backlog). The process's
/// open-file limit must be above it, with room for the store's files.
pub const DEFAULT_MAX_CONNECTIONS: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

/// Default time a client has to send a request head (and, on a new TLS
/// connection, to finish the handshake first): generous for a phone on a
/// poor network, short enough that connections opened and left silent
/// (slowloris) are closed within seconds. It also closes HTTP/1
/// keep-alive connections idle this long.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 30_000;

/// Default largest request head in bytes: a request line and headers,
/// including a long bearer token and cookies, fit several times over
/// (common servers allow 8 to 32 KiB), and a connection's read buffer
/// stays small.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// Smallest allowed [`crate::ServerConfig::max_header_bytes`]: hyper's
/// HTTP/1 read buffer cannot be smaller than 8 KiB.
pub const MIN_MAX_HEADER_BYTES: usize = 8 * 1024;

/// Default page size of `GET /api/v1/twins`.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// Largest page of `GET /api/v1/twins`: keeps one answer below a few
/// hundred kilobytes.
pub const MAX_LIST_LIMIT: usize = 1_000;

/// Default most raw points one signal read returns: a day of 1 Hz data is
/// 86,400; beyond a million the client should narrow the range or
/// aggregate.
pub const DEFAULT_MAX_READ_POINTS: usize = 1_000_000;

/// Most aggregates one read may ask for (there are nine distinct ones).
pub const MAX_AGGREGATES: usize = 16;

/// Most twins, signals or kinds one subscription may name, so a filter
/// stays a small set to check per event.
pub const MAX_SUBSCRIPTION_ITEMS: usize = 1_000;

/// Largest WebSocket message a client may send: subscriptions are small.
pub const MAX_WS_MESSAGE_BYTES: usize = 64 * 1024;

/// Default time one send to a stream subscriber (an SSE event, a
/// WebSocket frame) may take before the subscriber is dropped: a client on
/// a poor mobile network takes well under a second to accept a frame,
/// while a client that stopped reading never does, and until it is
/// dropped it holds its connection's buffers.
pub const DEFAULT_SUBSCRIBER_SEND_TIMEOUT_MS: u64 = 10_000;

/// Events an SSE subscription may hold ready for its connection, between
/// the bus and the answer body: enough to keep the connection busy,
/// few enough that a subscriber that stopped reading pins little.
pub const SSE_QUEUE_EVENTS: usize = 16;

/// Interval of SSE keep-alive comments and WebSocket pings, well below the
/// 60 s idle timeout common in proxies and load balancers.
pub const KEEP_ALIVE_INTERVAL_MS: u64 = 15_000;

/// Parses a JSON request body, refusing one in which an object names a key
/// twice (see `doppel_protocols::json_keys`): the problem names the key,
/// its line and its column.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let invalid = |error: serde_json::Error| ApiError::InvalidBody(error.to_string());
    let parsed = serde_json::from_slice(body).map_err(invalid)?;
    doppel_protocols::json_keys::check_unique_keys(body).map_err(invalid)?;
    Ok(parsed)
}

/// Reads a request body, enforcing `max_bytes` on the bytes as sent and,
/// for `Content-Encoding: gzip`, on the inflated bytes too.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body, max_bytes: usize) -> Result<Bytes, ApiError> {
    let encoding = content_encoding(headers)?;
    if let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok())
        && let Ok(length) = length.parse::<u64>()
        && length > max_bytes as u64
    {
        return Err(ApiError::BodyTooLarge { limit_bytes: max_bytes, inflated: false });
    }
    let raw = collect_limited(body, max_bytes).await?;
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => {
            // Inflating 32 MiB takes tens of milliseconds: off the async workers.
            crate::blocking(move || inflate_gzip(&raw, max_bytes)).await?
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    Identity,
    Gzip,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else if text.is_empty() || text.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else {
        Err(ApiError::UnsupportedEncoding(text.chars().take(64).collect()))
    }
}

async fn collect_limited(body: Body, max_bytes: usize) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| ApiError::BodyRead(error.to_string()))?;
        if buffer.len() + chunk.len() > max_bytes {
            return Err(ApiError::BodyTooLarge { limit_bytes: max_bytes, inflated: false });
        }
        if buffer.is_empty() {
            // Most bodies arrive in one chunk: avoid a copy when possible.
            if let Some(next) = stream.next().await {
                let next = next.map_err(|error| ApiError::BodyRead(error.to_string()))?;
                if chunk.len() + next.len() > max_bytes {
                    return Err(ApiError::BodyTooLarge { limit_bytes: max_bytes, inflated: false });
                }
                buffer.extend_from_slice(&chunk);
                buffer.extend_from_slice(&next);
                continue;
            }
            return Ok(chunk);
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

/// Inflates a gzip body (one or more members, as `gzip` concatenation
/// produces), refusing to produce more than `max_bytes`: a few kilobytes
/// of gzip can inflate to gigabytes.
pub(crate) fn inflate_gzip(compressed: &[u8], max_bytes: usize) -> Result<Bytes, ApiError> {
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(max_bytes));
    let cap = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    decoder.take(cap).read_to_end(&mut inflated).map_err(|error| ApiError::BadGzip(error.to_string()))?;
    if inflated.len() > max_bytes {
        return Err(ApiError::BodyTooLarge { limit_bytes: max_bytes, inflated: true });
    }
    Ok(Bytes::from(inflated))
}

/// Answers 408 with a problem body when the inner service takes longer
/// than [`crate::ServerConfig::request_timeout`] to produce its answer.
/// The engine call behind a timed-out write may still complete: a 408 on a
/// write means "unknown", as with InfluxDB, and a retry is safe because the
/// same series and timestamp overwrite (last write wins).
pub(crate) async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout { after_ms: duration_ms(limit) }.into_response(),
    }
}

/// A fixed number of slots, each held while one thing (a request, a
/// connection) is served: [`crate::ServerConfig::max_in_flight`] and
/// [`crate::ServerConfig::max_connections`].
#[derive(Clone, Debug)]
pub(crate) struct Slots {
    limit: usize,
    semaphore: Arc<Semaphore>,
}

impl Slots {
    pub(crate) fn new(limit: NonZeroUsize) -> Self {
        let limit = limit.get().min(Semaphore::MAX_PERMITS);
        Self { limit, semaphore: Arc::new(Semaphore::new(limit)) }
    }

    /// A free slot now, or `None` when all are held.
    pub(crate) fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().try_acquire_owned().ok()
    }

    /// The next free slot, waiting for one; `None` only if the slots are
    /// closed, which they never are.
    pub(crate) async fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().acquire_owned().await.ok()
    }

    /// Slots held now.
    pub(crate) fn count(&self) -> usize {
        self.limit - self.semaphore.available_permits()
    }

    /// The limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

/// Answers 503 `server-busy` with `Retry-After` at once when
/// [`crate::ServerConfig::max_in_flight`] requests are being served, so
/// overload is refused rather than queued in memory. A slot is held until
/// the answer starts: a stream or a streamed export holds none after that.
pub(crate) async fn in_flight(State(in_flight): State<Slots>, request: Request, next: Next) -> Response {
    let Some(_slot) = in_flight.try_take() else {
        return ApiError::Busy { limit: in_flight.limit() }.into_response();
    };
    next.run(request).await
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn inflates_gzip_within_the_limit() {
        let body = gzip(b"heart_rate,twin=a value=60 1\n");
        assert_eq!(&inflate_gzip(&body, 1024).unwrap()[..], b"heart_rate,twin=a value=60 1\n");
    }

    #[test]
    fn inflates_concatenated_gzip_members() {
        let mut body = gzip(b"a\n");
        body.extend(gzip(b"b\n"));
        assert_eq!(&inflate_gzip(&body, 1024).unwrap()[..], b"a\nb\n");
    }

    #[test]
    fn refuses_a_gzip_bomb_past_the_limit() {
        let body = gzip(&vec![b'x'; 1 << 20]);
        assert!(body.len() < 4096);
        match inflate_gzip(&body, 1000) {
            Err(ApiError::BodyTooLarge { limit_bytes: 1000, inflated: true }) => {}
            other => panic!("expected BodyTooLarge, got {other:?}"),
        }
    }

    #[test]
    fn inflated_body_exactly_at_the_limit_is_accepted() {
        let body = gzip(&[b'y'; 1000]);
        assert_eq!(inflate_gzip(&body, 1000).unwrap().len(), 1000);
    }

    #[test]
    fn corrupt_gzip_is_a_bad_request() {
        assert!(matches!(inflate_gzip(b"not gzip at all", 1000), Err(ApiError::BadGzip(_))));
    }

    #[test]
    fn content_encoding_names_are_recognised() {
        let mut headers = HeaderMap::new();
        assert_eq!(content_encoding(&headers).unwrap(), Encoding::Identity);
        headers.insert(header::CONTENT_ENCODING, "GZIP".parse().unwrap());
        assert_eq!(content_encoding(&headers).unwrap(), Encoding::Gzip);
        headers.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert!(matches!(content_encoding(&headers), Err(ApiError::UnsupportedEncoding(e)) if e == "br"));
    }

    #[tokio::test]
    async fn slow_answer_becomes_408_with_a_problem_body() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(Duration::from_millis(20), timeout));
        let request = Request::builder().uri("/slow").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 408);
        assert!(problem["detail"].as_str().unwrap().contains("20 ms"), "{problem}");
    }

    #[tokio::test]
    async fn body_over_the_limit_is_refused_while_reading() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"12345")),
            Ok(Bytes::from_static(b"67890")),
            Ok(Bytes::from_static(b"x")),
        ];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let result = read_body(&HeaderMap::new(), body, 10).await;
        assert!(matches!(result, Err(ApiError::BodyTooLarge { limit_bytes: 10, inflated: false })));
    }

    #[tokio::test]
    async fn chunked_body_within_the_limit_is_joined() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd")), Ok(Bytes::from_static(b"e"))];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        assert_eq!(&read_body(&HeaderMap::new(), body, 10).await.unwrap()[..], b"abcde");
    }

    #[tokio::test]
    async fn declared_content_length_over_the_limit_is_refused_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
        let result = read_body(&headers, Body::from("x"), 10).await;
        assert!(matches!(result, Err(ApiError::BodyTooLarge { .. })));
    }
}
