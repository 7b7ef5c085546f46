//! Operations endpoints: `GET /health` for load balancers and `GET /metrics`
//! in the Prometheus text format 0.0.4, plus the middleware that counts
//! requests and times them per route.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use doppel_engine::EngineStats;
use doppel_store::Severity;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::problem::ApiError;

/// Upper bounds of the request-duration histogram buckets, in seconds:
/// from sub-millisecond reads to multi-second maximal batches.
const DURATION_BUCKETS_SECONDS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Route label for requests no route matched, so scanners probing random
/// paths add one series, not one per path.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Answer of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`; `degraded` when some data is damaged or was lost but the rest
    /// is served and writes are accepted; `failing` when writes are refused.
    #[schema(example = "ok")]
    status: &'static str,
    /// Version of the server.
    version: &'static str,
    /// What is wrong, worst first; empty when `status` is `ok`.
    problems: Vec<HealthProblem>,
}

/// One problem named by `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthProblem {
    /// The part affected: `wal`, `segments`, `writes`, ...
    component: &'static str,
    /// `degraded` or `failing`.
    state: &'static str,
    /// What happened and what it cost (file names within the data
    /// directory, never an absolute path).
    detail: String,
}

/// Health for load balancers and operators: 200 while everything works,
/// 503 naming each problem while some data is damaged (`degraded`) or
/// writes are refused (`failing`).
#[utoipa::path(
    get,
    path = "/health",
    tag = "ops",
    responses(
        (status = 200, description = "Server is up and its store is healthy", body = Health),
        (status = 503, description = "Server is up, but data is damaged or writes are refused; `problems` says what", body = Health)
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let problems = open_problems(&state);
    let status = problems.first().map_or("ok", |worst| worst.severity.as_str());
    let code = if problems.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let problems = problems
        .into_iter()
        .map(|p| HealthProblem { component: p.component, state: p.severity.as_str(), detail: p.detail })
        .collect();
    (code, Json(Health { status, version: env!("CARGO_PKG_VERSION"), problems })).into_response()
}

/// Everything `/health` names, worst first: the store's problems and an
/// audit log that cannot record (audited requests are refused meanwhile).
fn open_problems(state: &AppState) -> Vec<doppel_store::StoreProblem> {
    let mut problems = state.engine.store().problems();
    if let Some(detail) = state.limits.audit.as_ref().and_then(|log| log.problem()) {
        problems.push(doppel_store::StoreProblem { component: "audit", severity: Severity::Failing, detail });
    }
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    problems
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format 0.0.4 (administrators only)", content_type = "text/plain; version=0.0.4", body = String))
)]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    connections: Option<axum::Extension<crate::listener::OpenConnections>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let engine = state.engine.clone();
    // Store statistics may look at files on disk: off the async workers.
    let stats = crate::blocking(move || engine.stats()).await?;
    let mut text = String::with_capacity(4096);
    render_engine_metrics(&mut text, &stats);
    render_store_problems(&mut text, &open_problems(&state));
    render_dropped_subscribers(&mut text, &state.dropped_subscribers);
    render_fs_counters(&mut text, &doppel_fs::counters());
    render_in_flight(&mut text, &state.in_flight);
    if let Some(axum::Extension(connections)) = connections {
        render_connections(&mut text, &connections);
    }
    state.metrics.render(&mut text);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// Answer of `POST /api/v1/admin/flush`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Flushed {
    /// Points moved from the head into the new segment (0 when the head was empty).
    points: u64,
    /// Series the new segment holds.
    series: usize,
    /// Bytes of the new segment.
    segment_bytes: u64,
}

/// Writes the head to a segment now rather than at the next size or age
/// threshold, so an operator (or a benchmark) can see the store at rest
/// without stopping the server: the WAL is emptied of what the segment
/// holds. Compaction, if due, follows in the background as usual.
#[utoipa::path(
    post,
    path = "/api/v1/admin/flush",
    tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The head was written to a segment (administrators only)", body = Flushed),
        (status = 503, description = "Writes are stopped; nothing was flushed")
    )
)]
pub(crate) async fn flush(State(state): State<AppState>, caller: Caller) -> Result<Json<Flushed>, ApiError> {
    caller.require_admin()?;
    let engine = state.engine.clone();
    let report = crate::blocking(move || engine.store().flush()).await??;
    Ok(Json(Flushed { points: report.points, series: report.series, segment_bytes: report.segment_bytes }))
}

/// Writes one metric family with its HELP and TYPE lines.
fn family(text: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(text, "{name}{labels} {value}");
    }
}

/// Everything the process wrote durably, so that an operator can see
/// what a workload costs on disk (bytes and fsyncs per point, per twin
/// created) beside the WAL's own figures.
fn render_fs_counters(text: &mut String, counters: &doppel_fs::Counters) {
    let as_f64 = |n: u64| n as f64;
    family(
        text,
        "doppel_fs_bytes_written_total",
        "counter",
        "Bytes written to durable files (WAL, segments, catalog, keyring, auth state, audit log).",
        &[("", as_f64(counters.bytes_written))],
    );
    family(
        text,
        "doppel_fs_fsyncs_total",
        "counter",
        "fsync calls on durable files and their directories.",
        &[
            ("{target=\"file\"}", as_f64(counters.file_syncs)),
            ("{target=\"directory\"}", as_f64(counters.dir_syncs)),
        ],
    );
    family(
        text,
        "doppel_fs_renames_total",
        "counter",
        "Files replaced by rename (whole-file rewrites of small state files and segments).",
        &[("", as_f64(counters.renames))],
    );
}

/// The store's open problems by state, both states always present so
/// that an alert rule has a series to watch.
fn render_store_problems(text: &mut String, problems: &[doppel_store::StoreProblem]) {
    let count = |state: Severity| problems.iter().filter(|p| p.severity == state).count() as f64;
    family(
        text,
        "doppel_store_problems",
        "gauge",
        "Open problems of the store and the audit log (damaged or lost data, refused writes), as GET /health lists them.",
        &[
            ("{state=\"degraded\"}", count(Severity::Degraded)),
            ("{state=\"failing\"}", count(Severity::Failing)),
        ],
    );
}

fn render_engine_metrics(text: &mut String, stats: &EngineStats) {
    let store = &stats.store;
    let as_f64 = |n: u64| n as f64;
    family(
        text,
        "doppel_points_ingested_total",
        "counter",
        "Points accepted and made durable.",
        &[("", as_f64(stats.points_ingested))],
    );
    family(
        text,
        "doppel_batches_total",
        "counter",
        "Write batches by outcome.",
        &[
            ("{result=\"ok\"}", as_f64(stats.batches_ingested)),
            ("{result=\"rejected\"}", as_f64(stats.batches_rejected)),
        ],
    );
    family(text, "doppel_twins", "gauge", "Twins that exist.", &[("", stats.twins as f64)]);
    family(text, "doppel_series", "gauge", "Distinct series stored.", &[("", store.series as f64)]);
    family(
        text,
        "doppel_live_signals",
        "gauge",
        "Signals with live state across all twins.",
        &[("", stats.live_signals as f64)],
    );
    family(
        text,
        "doppel_store_bad_blocks",
        "gauge",
        "Damaged segment blocks found and skipped by reads (GET /health names their segments).",
        &[("", as_f64(store.bad_blocks))],
    );
    family(
        text,
        "doppel_store_bad_block_reads_skipped_total",
        "counter",
        "Block reads skipped because the block is damaged.",
        &[("", as_f64(store.bad_block_reads_skipped_total))],
    );
    family(
        text,
        "doppel_wal_fsyncs_total",
        "counter",
        "WAL fsync calls (shared by group commit).",
        &[("", as_f64(store.fsyncs_total))],
    );
    family(
        text,
        "doppel_wal_fsync_seconds_total",
        "counter",
        "Time spent in WAL fsync.",
        &[("", store.fsync_seconds_total)],
    );
    family(
        text,
        "doppel_wal_last_fsync_seconds",
        "gauge",
        "Duration of the latest WAL fsync.",
        &[("", store.last_fsync_micros as f64 / 1e6)],
    );
    family(
        text,
        "doppel_head_points",
        "gauge",
        "Points in memory not yet flushed to a segment.",
        &[("", as_f64(store.head_points))],
    );
    family(
        text,
        "doppel_head_limit_points",
        "gauge",
        "Points the heads may hold before writes are refused (503 flush-behind).",
        &[("", as_f64(store.head_limit_points))],
    );
    family(
        text,
        "doppel_writes_refused_flush_behind_total",
        "counter",
        "Writes refused because flushing fell behind and the heads were full.",
        &[("", as_f64(store.writes_refused_flush_behind_total))],
    );
    family(text, "doppel_segments", "gauge", "Segment files on disk.", &[("", store.segments as f64)]);
    family(
        text,
        "doppel_disk_bytes",
        "gauge",
        "Bytes on disk by kind.",
        &[("{kind=\"wal\"}", as_f64(store.wal_bytes)), ("{kind=\"segments\"}", as_f64(store.segment_bytes))],
    );
    family(
        text,
        "doppel_flushes_total",
        "counter",
        "Head flushes to segments.",
        &[("", as_f64(store.flushes_total))],
    );
    family(
        text,
        "doppel_compactions_total",
        "counter",
        "Segment compactions.",
        &[("", as_f64(store.compactions_total))],
    );
    family(
        text,
        "doppel_store_flushed_bytes_total",
        "counter",
        "Segment bytes written by head flushes: each point once.",
        &[("", as_f64(store.flushed_bytes_total))],
    );
    family(
        text,
        "doppel_store_compacted_bytes_total",
        "counter",
        "Segment bytes written by compactions; write amplification is (flushed + compacted) / flushed.",
        &[("", as_f64(store.compacted_bytes_total))],
    );
    family(
        text,
        "doppel_store_series_keys_listed_total",
        "counter",
        "Series keys listed from heads and segment indexes (opening, series listings, read planning).",
        &[("", as_f64(store.series_keys_listed_total))],
    );
    family(
        text,
        "doppel_events_published_total",
        "counter",
        "Events published to subscribers.",
        &[("", as_f64(stats.events_published))],
    );
    family(
        text,
        "doppel_subscribers",
        "gauge",
        "Open event subscriptions (SSE, WebSocket).",
        &[("", stats.subscribers as f64)],
    );
}

fn render_dropped_subscribers(text: &mut String, drops: &crate::stream::DropCounts) {
    let samples = drops.counts().map(|(reason, count)| (format!("{{reason=\"{reason}\"}}"), count as f64));
    let samples: Vec<(&str, f64)> = samples.iter().map(|(labels, count)| (labels.as_str(), *count)).collect();
    family(
        text,
        "doppel_subscribers_dropped_total",
        "counter",
        "Stream subscribers dropped for being slow, by reason (lagged: the bounded event buffer skipped events they had not read; send_timeout: one send took longer than the send timeout).",
        &samples,
    );
}

fn render_in_flight(text: &mut String, in_flight: &crate::limits::Slots) {
    family(
        text,
        "doppel_http_requests_in_flight",
        "gauge",
        "Requests being served now (this one included).",
        &[("", in_flight.count() as f64)],
    );
    family(
        text,
        "doppel_http_max_in_flight",
        "gauge",
        "Requests served at once before more get 503 server-busy.",
        &[("", in_flight.limit() as f64)],
    );
}

/// The connection gauges, which only this crate's accept loop knows.
fn render_connections(text: &mut String, connections: &crate::listener::OpenConnections) {
    family(
        text,
        "doppel_http_connections",
        "gauge",
        "Connections open now.",
        &[("", connections.0.count() as f64)],
    );
    family(
        text,
        "doppel_http_max_connections",
        "gauge",
        "Connections open at once before the server stops accepting.",
        &[("", connections.0.limit() as f64)],
    );
}

/// Request counts per (route, status) and a duration histogram per route.
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    inner: Mutex<HttpMetricsInner>,
}

#[derive(Debug, Default)]
struct HttpMetricsInner {
    requests: BTreeMap<(String, u16), u64>,
    durations: BTreeMap<String, Histogram>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound of `DURATION_BUCKETS_SECONDS`
    /// (not cumulative; summed when rendered).
    buckets: [u64; DURATION_BUCKETS_SECONDS.len()],
    count: u64,
    sum_seconds: f64,
}

impl HttpMetrics {
    /// Records one answered request.
    fn observe(&self, route: &str, status: u16, seconds: f64) {
        // A poisoned lock only means another request panicked mid-update of
        // plain counters; the counts are still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *inner.requests.entry((route.to_owned(), status)).or_default() += 1;
        let histogram = inner.durations.entry(route.to_owned()).or_default();
        if let Some(slot) = DURATION_BUCKETS_SECONDS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[slot] += 1;
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    fn render(&self, text: &mut String) {
        let inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ =
            writeln!(text, "# HELP doppel_http_requests_total HTTP requests answered, by route and status.");
        let _ = writeln!(text, "# TYPE doppel_http_requests_total counter");
        for ((route, status), count) in &inner.requests {
            let _ = writeln!(
                text,
                "doppel_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                escape_label(route)
            );
        }
        let name = "doppel_http_request_duration_seconds";
        let _ = writeln!(text, "# HELP {name} Time to produce an HTTP answer, by route.");
        let _ = writeln!(text, "# TYPE {name} histogram");
        for (route, histogram) in &inner.durations {
            let route = escape_label(route);
            let mut cumulative = 0;
            for (bound, count) in DURATION_BUCKETS_SECONDS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(text, "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(text, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(text, "{name}_sum{{route=\"{route}\"}} {}", histogram.sum_seconds);
            let _ = writeln!(text, "{name}_count{{route=\"{route}\"}} {}", histogram.count);
        }
    }
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn escape_label(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// Middleware: counts and times every request under its route template
/// (`/api/v1/twins/{id}`), never the raw path, so label sets stay bounded.
pub(crate) async fn record_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let metrics = HttpMetrics::default();
        metrics.observe("/health", 200, 0.0002);
        metrics.observe("/health", 200, 0.003);
        metrics.observe("/health", 503, 10.0);
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains("doppel_http_requests_total{route=\"/health\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("doppel_http_requests_total{route=\"/health\",status=\"503\"} 1\n"));
        assert!(
            text.contains("doppel_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.0005\"} 1\n")
        );
        assert!(
            text.contains("doppel_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.005\"} 2\n")
        );
        assert!(text.contains("doppel_http_request_duration_seconds_bucket{route=\"/health\",le=\"5\"} 2\n"));
        assert!(
            text.contains("doppel_http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 3\n")
        );
        assert!(text.contains("doppel_http_request_duration_seconds_count{route=\"/health\"} 3\n"));
        assert!(text.contains("# TYPE doppel_http_request_duration_seconds histogram\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn engine_metrics_have_help_and_type_lines() {
        let mut text = String::new();
        let stats = EngineStats {
            twins: 3,
            live_signals: 4,
            points_ingested: 10,
            batches_ingested: 2,
            batches_rejected: 1,
            events_published: 5,
            subscribers: 0,
            store: doppel_store::StoreStats::default(),
        };
        render_engine_metrics(&mut text, &stats);
        for name in ["doppel_points_ingested_total", "doppel_disk_bytes", "doppel_subscribers"] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
        assert!(text.contains("doppel_batches_total{result=\"rejected\"} 1\n"));
        assert!(text.contains("doppel_twins 3\n"));
    }
}
