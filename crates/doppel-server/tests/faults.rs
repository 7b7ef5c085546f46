//! A disk that fails under a running server: a failed fsync stops writes
//! (503 `storage-stopped`) and `/health` says so while reads keep
//! working; a failed append is refused (503 `storage-write-failed`) and
//! the next write is accepted once the disk is; an audit log that cannot
//! write its records has audited requests refused and `/health` naming it.

mod common;

use std::time::Duration;

use common::{DAY_RANGE, TestServer, json_body};
use doppel_audit::{AuditLog, AuditOptions};
use doppel_auth::AuthState;
use doppel_fs::Op;
use doppel_fs::failpoint::{Fault, Trigger, arm};
use doppel_server::{AuthConfig, ServerConfig};
use serde_json::json;

fn point(minute: i64, value: f64) -> serde_json::Value {
    json!([{"twin": "alice", "signal": "heart_rate", "time": format!("2024-03-01T12:{minute:02}:00Z"), "value": value}])
}

async fn post_point(server: &TestServer, minute: i64, value: f64) -> reqwest::Response {
    server.client.post(server.url("/api/v1/points")).json(&point(minute, value)).send().await.unwrap()
}

async fn read_values(server: &TestServer) -> Vec<f64> {
    let response = server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}")).await;
    assert_eq!(response.status(), 200);
    let body = json_body(response, "application/json").await;
    body["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect()
}

#[tokio::test]
async fn a_failed_fsync_stops_writes_with_503_and_health_names_it_while_reads_work() {
    let server = TestServer::start().await;
    assert_eq!(post_point(&server, 0, 60.0).await.status(), 200);
    let armed = arm(&server.data_dir().join("wal"), Op::Sync, Fault::Eio, Trigger::Nth(1));
    let refused = json_body(post_point(&server, 1, 61.0).await, "application/problem+json").await;
    assert_eq!(refused["type"], "urn:doppel:problem:storage-stopped", "{refused}");
    assert_eq!(refused["status"], 503);
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("fsync") && !detail.contains(".wal"),
        "the cause names files: logged, not sent: {refused}"
    );
    drop(armed);

    let again = json_body(post_point(&server, 2, 62.0).await, "application/problem+json").await;
    assert_eq!(again["type"], "urn:doppel:problem:storage-stopped", "the stop outlives the fault: {again}");
    let influx = server.post("/api/v2/write?precision=s", "heart_rate,twin=alice value=63 1709294580").await;
    assert_eq!(influx.status(), 503);
    assert_eq!(influx.json::<serde_json::Value>().await.unwrap()["code"], "unavailable");

    let health = server.get("/health").await;
    assert_eq!(health.status(), 503);
    let health = json_body(health, "application/json").await;
    assert_eq!(health["status"], "failing", "{health}");
    let problem = &health["problems"][0];
    assert_eq!(problem["component"], "writes", "{health}");
    assert_eq!(problem["state"], "failing");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("fsync") && detail.contains(".wal"), "{detail}");
    assert!(!detail.contains(server.data_dir().to_str().unwrap()), "no absolute path in /health: {detail}");

    assert_eq!(read_values(&server).await, vec![60.0], "reads keep working");
}

#[tokio::test]
async fn a_failed_append_answers_503_and_the_next_write_is_accepted() {
    let server = TestServer::start().await;
    assert_eq!(post_point(&server, 0, 60.0).await.status(), 200);
    for fault in [Fault::Enospc, Fault::ShortWrite, Fault::Eio] {
        let armed = arm(&server.data_dir().join("wal"), Op::Write, fault, Trigger::Always);
        let refused = json_body(post_point(&server, 1, 61.0).await, "application/problem+json").await;
        assert_eq!(refused["type"], "urn:doppel:problem:storage-write-failed", "{fault:?}: {refused}");
        assert_eq!(refused["status"], 503);
        assert!(!refused["detail"].as_str().unwrap().contains(".wal"), "no file names in answers: {refused}");
        drop(armed);
    }
    assert_eq!(server.get("/health").await.status(), 200);
    assert_eq!(post_point(&server, 2, 62.0).await.status(), 200);
    assert_eq!(read_values(&server).await, vec![60.0, 62.0]);
}

#[tokio::test]
async fn an_audit_log_that_cannot_write_refuses_audited_requests_and_health_names_it() {
    let audit_dir = tempfile::tempdir().unwrap();
    // The syncer waits an hour; the test writes with `sync` instead.
    let options = AuditOptions { sync_interval: Duration::from_secs(3600), ..AuditOptions::default() };
    let log = AuditLog::open(audit_dir.path(), None, options).unwrap();
    let config = ServerConfig { audit: Some(log.clone()), ..ServerConfig::default() };
    let server = TestServer::start_with(config, |_| {}).await;
    assert_eq!(post_point(&server, 0, 60.0).await.status(), 200);

    let armed = arm(audit_dir.path(), Op::Write, Fault::Enospc, Trigger::Always);
    let failed = tokio::task::spawn_blocking({
        let log = log.clone();
        move || log.sync()
    });
    assert!(failed.await.unwrap().is_err());
    let refused = json_body(post_point(&server, 1, 61.0).await, "application/problem+json").await;
    assert_eq!(refused["type"], "urn:doppel:problem:audit-unavailable", "{refused}");
    assert_eq!(refused["status"], 503);
    let health = server.get("/health").await;
    assert_eq!(health.status(), 503);
    let health = json_body(health, "application/json").await;
    assert_eq!(health["problems"][0]["component"], "audit", "{health}");
    let detail = health["problems"][0]["detail"].as_str().unwrap().to_owned();
    assert!(!detail.contains(audit_dir.path().to_str().unwrap()), "no absolute path in /health: {detail}");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("doppel_store_problems{state=\"failing\"} 1\n"),
        "an alert can watch it:\n{metrics}"
    );

    drop(armed);
    let retried = tokio::task::spawn_blocking({
        let log = log.clone();
        move || log.sync()
    });
    retried.await.unwrap().unwrap();
    assert_eq!(server.get("/health").await.status(), 200);
    assert_eq!(post_point(&server, 2, 62.0).await.status(), 200);
    assert_eq!(read_values(&server).await, vec![60.0, 62.0], "the refused write did nothing");
}

#[tokio::test]
async fn a_token_that_cannot_be_saved_answers_503_and_is_not_created() {
    let server = TestServer::start_authenticated(AuthState::default(), AuthConfig::default()).await;
    let create = || {
        server
            .request(reqwest::Method::POST, "/api/v1/tokens")
            .json(&json!({"name": "alice-phone", "user": "alice", "scopes": ["read"]}))
            .send()
    };
    let armed = arm(&server.data_dir().join("auth"), Op::Sync, Fault::Eio, Trigger::Always);
    let refused = json_body(create().await.unwrap(), "application/problem+json").await;
    assert_eq!(refused["type"], "urn:doppel:problem:storage-write-failed", "{refused}");
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("fsync") && !detail.contains(server.data_dir().to_str().unwrap()), "{detail}");
    assert!(armed.fired() >= 1);
    drop(armed);
    let listing = server.get("/api/v1/tokens").await.text().await.unwrap();
    assert!(!listing.contains("alice-phone"), "the refused token does not exist: {listing}");
    assert_eq!(create().await.unwrap().status(), 201);
}
