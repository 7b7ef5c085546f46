//! A graceful stop (SIGTERM) writes the head to a segment: the WAL is left
//! empty, the next start replays nothing, and every point is still there.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Server, admin_client};

fn wal_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data.join("wal"))
        .expect("wal directory")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_flushes_the_head_so_the_next_start_replays_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let client = admin_client(Duration::from_secs(60));
    let mut server = Server::start(&data, &log, &[]).await;
    let start = 1_709_294_400i64;
    let lines: String = (0..1_000)
        .map(|i| format!("heart_rate,twin=alice value={} {}\n", 60 + i % 40, start + i * 60))
        .collect();
    let written =
        client.post(server.url("/api/v2/write?precision=s")).body(lines).send().await.expect("write");
    assert_eq!(written.status(), 204);
    assert!(wal_bytes(&data) > 0, "before the stop the points are in the WAL");

    assert!(server.terminate().success(), "{}", server.log_tail());
    assert_eq!(wal_bytes(&data), 0, "the stop flushed the head; log:\n{}", server.log_tail());
    assert!(server.log_tail().contains("flushed the head at stop"), "{}", server.log_tail());

    let server = Server::start(&data, &log, &[]).await;
    let restart = server.log_tail();
    let opened = restart.lines().rev().find(|l| l.contains("store opened")).expect("the recovery report");
    assert!(opened.contains("wal_records_replayed: 0"), "{opened}");
    let read =
        client
            .get(server.url(
                "/api/v1/twins/alice/signals/heart_rate?from=2024-03-01T00:00:00Z&to=2024-03-03T00:00:00Z",
            ))
            .send()
            .await
            .expect("read");
    assert_eq!(read.status(), 200);
    let body: serde_json::Value = read.json().await.expect("JSON");
    assert_eq!(body["points"].as_array().map(Vec::len), Some(1_000), "every point is in the segment");
}
