//! Memory bounded under overload, over a real server: when flushing falls
//! behind, writes are refused with 503 and `Retry-After` once the heads
//! are full, nothing acknowledged is lost, and writes resume once a flush
//! catches up.

mod common;

use common::{DAY_RANGE, NOON_SECS, TestServer, json_body};
use doppel_fs::Op;
use doppel_fs::failpoint::hold;
use doppel_server::{Auth, ServerConfig};
use std::num::NonZeroUsize;

/// Head size that starts a flush, in points.
const FLUSH_POINTS: usize = 10;
/// Points the heads may hold together.
const LIMIT_POINTS: usize = 30;
/// Points per write request.
const BATCH_POINTS: usize = 5;

/// Line protocol for the points `first..first + BATCH_POINTS`, one a minute
/// from noon, each valued 40 + its number.
fn batch(first: usize) -> String {
    (first..first + BATCH_POINTS)
        .map(|i| format!("heart_rate,twin=alice value={} {}\n", 40 + i, NOON_SECS + 60 * i as i64))
        .collect()
}

async fn write(server: &TestServer, first: usize) -> reqwest::Response {
    server.post("/api/v2/write?precision=s", batch(first)).await
}

async fn read_values(server: &TestServer) -> Vec<f64> {
    let response = server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}")).await;
    assert_eq!(response.status(), 200);
    let body = json_body(response, "application/json").await;
    body["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect()
}

fn values_up_to(points: usize) -> Vec<f64> {
    (0..points).map(|i| 40.0 + i as f64).collect()
}

#[tokio::test]
async fn a_stalled_flush_refuses_writes_with_503_and_retry_after_and_loses_nothing_acknowledged() {
    let server = TestServer::start_with(ServerConfig::default(), |engine| {
        engine.store.background = true;
        engine.store.head_flush_points = FLUSH_POINTS;
        engine.store.head_limit_points = LIMIT_POINTS;
    })
    .await;
    let held = hold(&server.data_dir().join("segments"), Op::Open);

    // The write that fills the head to the flush threshold starts a
    // background flush, which stalls creating its segment.
    let mut acknowledged = 0;
    while acknowledged < FLUSH_POINTS {
        assert_eq!(write(&server, acknowledged).await.status(), 204);
        acknowledged += BATCH_POINTS;
    }
    let held = tokio::task::spawn_blocking(move || {
        held.wait_until_blocked(1);
        held
    })
    .await
    .unwrap();

    // Writes go on into the next head until both hold the limit together.
    let refused = loop {
        let response = write(&server, acknowledged).await;
        if response.status() != 204 {
            break response;
        }
        acknowledged += BATCH_POINTS;
        assert!(acknowledged <= LIMIT_POINTS, "{acknowledged} points acknowledged past the limit");
    };
    assert_eq!(acknowledged, LIMIT_POINTS);
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let influx: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(influx["code"], "unavailable", "{influx}");
    assert!(influx["message"].as_str().unwrap().contains("flushing behind"), "{influx}");

    let json_point = serde_json::json!([{"twin": "alice", "signal": "heart_rate", "time": "2024-03-01T13:00:00Z", "value": 99}]);
    let refused =
        server.request(reqwest::Method::POST, "/api/v1/points").json(&json_point).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let problem = json_body(refused, "application/problem+json").await;
    assert_eq!(problem["type"], "urn:doppel:problem:flush-behind", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(&format!("{LIMIT_POINTS} points wait")),
        "{problem}"
    );

    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("doppel_writes_refused_flush_behind_total 2\n"), "{metrics}");
    assert!(metrics.contains(&format!("doppel_head_limit_points {LIMIT_POINTS}\n")), "{metrics}");
    assert_eq!(read_values(&server).await, values_up_to(acknowledged), "every acknowledged point reads back");

    // Released, the stalled flush finishes; a flush after it (which waits
    // for it) empties the heads, and writes are accepted again.
    held.release();
    let engine = server.engine.clone();
    tokio::task::spawn_blocking(move || engine.store().flush()).await.unwrap().unwrap();
    assert_eq!(write(&server, acknowledged).await.status(), 204);
    acknowledged += BATCH_POINTS;
    assert_eq!(read_values(&server).await, values_up_to(acknowledged));

    let restarted = TestServer::start_with_auth(server.stop().await, Auth::disabled()).await;
    assert_eq!(read_values(&restarted).await, values_up_to(acknowledged), "nothing acknowledged is lost");
    restarted.shutdown().await;
}

#[tokio::test]
async fn a_raw_read_past_the_limit_is_refused_from_metadata_before_it_is_read() {
    let max_read_points = 4 * BATCH_POINTS;
    let config = ServerConfig { max_read_points, ..ServerConfig::default() };
    let server = TestServer::start_with(config, |_| {}).await;
    for first in (0..2 * max_read_points).step_by(BATCH_POINTS) {
        assert_eq!(write(&server, first).await.status(), 204);
        if first == max_read_points {
            // Half in a segment, half in the head: both are counted.
            let engine = server.engine.clone();
            tokio::task::spawn_blocking(move || engine.store().flush()).await.unwrap().unwrap();
        }
    }

    let refused = server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}")).await;
    assert_eq!(refused.status(), 400);
    let problem = json_body(refused, "application/problem+json").await;
    assert_eq!(problem["parameter"], "from", "{problem}");
    // "at least": the count came from block metadata and the head, so
    // nothing of the range was read to refuse it.
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("at least {} points, more than {max_read_points}", 2 * max_read_points)),
        "{detail}"
    );

    let to = NOON_SECS + 60 * max_read_points as i64;
    let within = server
        .get(&format!(
            "/api/v1/twins/alice/signals/heart_rate?from=2024-03-01T00:00:00Z&to={}",
            to * 1_000_000_000
        ))
        .await;
    assert_eq!(within.status(), 200);
    let body = json_body(within, "application/json").await;
    assert_eq!(body["points"].as_array().unwrap().len(), max_read_points);
}

#[tokio::test]
async fn a_request_beyond_the_in_flight_limit_gets_503_server_busy_at_once() {
    let config = ServerConfig { max_in_flight: NonZeroUsize::MIN, ..ServerConfig::default() };
    let server = TestServer::start_with(config, |_| {}).await;
    // The one slot is taken by a write held in its WAL append.
    let held = hold(&server.data_dir().join("wal"), Op::Write);
    let first =
        tokio::spawn(server.client.post(server.url("/api/v2/write?precision=s")).body(batch(0)).send());
    let held = tokio::task::spawn_blocking(move || {
        held.wait_until_blocked(1);
        held
    })
    .await
    .unwrap();

    let refused = server.get("/health").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem = json_body(refused, "application/problem+json").await;
    assert_eq!(problem["type"], "urn:doppel:problem:server-busy", "{problem}");
    assert_eq!(problem["limit"], 1, "{problem}");

    held.release();
    assert_eq!(first.await.unwrap().unwrap().status(), 204);
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("doppel_http_requests_in_flight 1\n"), "only /metrics itself: {metrics}");
    assert!(metrics.contains("doppel_http_max_in_flight 1\n"), "{metrics}");
    assert_eq!(read_values(&server).await, values_up_to(BATCH_POINTS));
}

#[tokio::test]
async fn beyond_the_connection_limit_a_client_waits_until_a_connection_closes() {
    let config = ServerConfig { max_connections: NonZeroUsize::MIN, ..ServerConfig::default() };
    let server = TestServer::start_with(config, |_| {}).await;
    // A keeps its connection open in its pool after each answer.
    let a = reqwest::Client::new();
    let metrics = a.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("doppel_http_connections 1\n"), "{metrics}");
    assert!(metrics.contains("doppel_http_max_connections 1\n"), "{metrics}");

    let b = reqwest::Client::new();
    let waiting = tokio::spawn(b.get(server.url("/health")).send());
    // A is still served on its connection while B waits for a slot.
    assert_eq!(a.get(server.url("/health")).send().await.unwrap().status(), 200);
    assert!(!waiting.is_finished(), "B was served while A held the only connection");
    drop(a);
    assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
}
