//! Damaged data directories end to end: a server that starts on a damaged
//! segment serves the rest and says what is wrong on `/health`;
//! `doppel check` names the damage and fails, `doppel repair` names what
//! it drops, and `doppel check` passes afterwards.

mod common;

use std::path::{Path, PathBuf};

use common::{CliOutput, Server, admin_client, admin_token, doppel};

/// Writes line protocol to the server, asserting it is accepted.
async fn write(server: &Server, lines: &str) {
    let response = admin_client(std::time::Duration::from_secs(60))
        .post(server.url("/api/v2/write?precision=ns"))
        .body(lines.to_owned())
        .send()
        .await
        .expect("write");
    assert_eq!(response.status(), 204);
}

/// `doppel query TWIN heart_rate` as CSV, over all of 2024-03-01.
async fn heart_rate_csv(server: &Server, twin: &str) -> CliOutput {
    let url = server.url("");
    doppel(&[
        "query",
        twin,
        "heart_rate",
        "--format",
        "csv",
        "--from",
        "2024-03-01T00:00:00Z",
        "--to",
        "2024-03-02T00:00:00Z",
        "--server",
        url.as_str(),
        "--token",
        admin_token(),
    ])
    .await
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("segments"))
        .expect("segments directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn newest_wal(data: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .expect("wal directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files.pop().expect("a WAL file")
}

/// Where each record of a WAL file starts (`[len u32][crc u32][payload]`).
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let (mut starts, mut pos) = (Vec::new(), 0usize);
    while pos + 8 <= bytes.len() {
        starts.push(pos);
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        pos += 8 + len;
    }
    starts
}

/// Bob's five points less the third, whose WAL record the WAL test damages.
const BOB_WITHOUT_THE_DAMAGED_RECORD: &str = "time,value\n2024-03-01T12:00:00Z,70\n2024-03-01T12:01:00Z,71\n\
     2024-03-01T12:03:00Z,73\n2024-03-01T12:04:00Z,74\n";

/// `/health` of a server started on damaged data: 503 `degraded`; returns
/// the document and its first problem's detail.
async fn degraded_health(server: &Server) -> (serde_json::Value, String) {
    let health = reqwest::get(server.url("/health")).await.expect("health");
    assert_eq!(health.status(), 503);
    let health: serde_json::Value = health.json().await.expect("health JSON");
    assert_eq!(health["status"], "degraded", "{health}");
    let detail = health["problems"][0]["detail"].as_str().expect("a problem").to_owned();
    (health, detail)
}

async fn check(data: &str) -> CliOutput {
    doppel(&["check", "--data", data]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_segment_block_degrades_the_server_and_repair_drops_only_that_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let data_arg = data.to_str().expect("UTF-8 path");
    let mut server = Server::start(&data, &log, &[]).await;
    write(
        &server,
        "heart_rate,twin=alice value=62 1709294400000000000\n\
         heart_rate,twin=bob value=70 1709294400000000000\n\
         heart_rate,twin=bob value=71 1709294460000000000\n",
    )
    .await;
    assert!(server.terminate().success());
    let compacted = doppel(&["compact", "--data", data_arg]).await;
    assert!(compacted.success, "{}", compacted.stderr);
    let clean = check(data_arg).await;
    assert!(clean.success, "{}\n{}", clean.stdout, clean.stderr);
    assert!(clean.stdout.contains("no damage found"), "{}", clean.stdout);

    // The first block after the 8-byte magic is alice's (keys in order).
    let [segment] = segments(&data).try_into().expect("one segment");
    let name = segment.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    let mut bytes = std::fs::read(&segment).expect("read segment");
    bytes[12] ^= 0x10;
    std::fs::write(&segment, &bytes).expect("write segment");

    let mut server = Server::start(&data, &log, &[]).await;
    let (health, detail) = degraded_health(&server).await;
    assert!(detail.starts_with(&format!("{name}: 1 damaged block(s) at byte(s) 8 ")), "{detail}");
    assert!(!health.to_string().contains(data_arg), "no data path on /health: {health}");
    let bob = heart_rate_csv(&server, "bob").await;
    assert!(bob.success, "{}", bob.stderr);
    assert_eq!(bob.stdout, "time,value\n2024-03-01T12:00:00Z,70\n2024-03-01T12:01:00Z,71\n");
    let alice = heart_rate_csv(&server, "alice").await;
    assert!(alice.success, "a damaged block is skipped, not a failed read: {}", alice.stderr);
    assert_eq!(alice.stdout, "time,value\n");
    // An export over the damaged block completes: a whole zip archive,
    // not a 200 cut short.
    let export = admin_client(std::time::Duration::from_secs(60))
        .get(server.url("/api/v1/twins/alice/export"))
        .send()
        .await
        .expect("export");
    assert_eq!(export.status(), 200);
    let archive = export.bytes().await.expect("the whole archive");
    let end = archive.len().saturating_sub(22);
    assert_eq!(archive.get(end..end + 4), Some(&b"PK\x05\x06"[..]), "the archive ends with its directory");
    // Cohort output over all twins answers from the undamaged ones.
    let client = admin_client(std::time::Duration::from_secs(60));
    let range = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z";
    let cohort = client
        .get(server.url(&format!("/api/v1/cohort/export?signal=heart_rate&{range}")))
        .send()
        .await
        .expect("cohort export");
    assert_eq!(cohort.status(), 200);
    let csv = cohort.text().await.expect("the whole CSV");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "a header and bob's two points:\n{csv}");
    assert!(
        rows[1].ends_with(",2024-03-01T12:00:00Z,70") && rows[2].ends_with(",2024-03-01T12:01:00Z,71"),
        "{csv}"
    );
    let stats = client
        .post(server.url("/api/v1/cohort/stats"))
        .json(&serde_json::json!({"signal": "heart_rate", "statistic": "count", "epsilon": 0.1,
            "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"}))
        .send()
        .await
        .expect("cohort stats");
    assert_eq!(stats.status(), 200, "{}", stats.text().await.unwrap_or_default());
    assert!(server.terminate().success());

    let damaged = check(data_arg).await;
    assert!(!damaged.success, "check must fail on damage: {}", damaged.stdout);
    assert!(
        damaged
            .stdout
            .contains(&format!("damaged: segments/{name}: block at byte 8 (1 points of alice/heart_rate/)")),
        "{}",
        damaged.stdout
    );
    assert!(damaged.stderr.contains("checking segments/"), "progress goes to stderr: {}", damaged.stderr);
    assert!(damaged.stderr.contains("1 damaged part(s) found"), "{}", damaged.stderr);

    let repaired = doppel(&["repair", "--data", data_arg]).await;
    assert!(repaired.success, "{}", repaired.stderr);
    assert!(
        repaired.stdout.contains(&format!("lost: segments/{name} at byte 8: 1 points of alice/heart_rate/")),
        "{}",
        repaired.stdout
    );
    let after = check(data_arg).await;
    assert!(after.success, "{}\n{}", after.stdout, after.stderr);

    let server = Server::start(&data, &log, &[]).await;
    let health = reqwest::get(server.url("/health")).await.expect("health");
    assert_eq!(health.status(), 200);
    let bob = heart_rate_csv(&server, "bob").await;
    assert_eq!(bob.stdout, "time,value\n2024-03-01T12:00:00Z,70\n2024-03-01T12:01:00Z,71\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_repair_name_a_damaged_wal_record_and_keep_the_ones_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let data_arg = data.to_str().expect("UTF-8 path");
    let mut server = Server::start(&data, &log, &[]).await;
    for minute in 0..5 {
        let nanos = 1_709_294_400_000_000_000i64 + minute * 60_000_000_000;
        write(&server, &format!("heart_rate,twin=bob value={} {nanos}\n", 70 + minute)).await;
    }
    // Killed, so that the points are only in the WAL.
    server.kill();
    let wal = newest_wal(&data);
    let wal_name = wal.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    let mut bytes = std::fs::read(&wal).expect("read WAL");
    let starts = record_starts(&bytes);
    assert_eq!(starts.len(), 6, "a twin record and five point records");
    // The third point record of five: the two after it must survive.
    let (start, end) = (starts[3], starts[4]);
    bytes[start + 12] ^= 0x01;
    std::fs::write(&wal, &bytes).expect("write WAL");

    // A server started on it replays the records after the damaged one and
    // names the loss on /health.
    let mut server = Server::start(&data, &log, &[]).await;
    let (_, detail) = degraded_health(&server).await;
    assert!(
        detail.starts_with(&format!("{wal_name}: bytes {start}..{end} not replayed"))
            && detail.contains("1 record lost"),
        "{detail}"
    );
    let bob = heart_rate_csv(&server, "bob").await;
    assert_eq!(bob.stdout, BOB_WITHOUT_THE_DAMAGED_RECORD);
    server.kill();

    let damaged = check(data_arg).await;
    assert!(!damaged.success, "{}", damaged.stdout);
    assert!(
        damaged.stdout.contains(&format!("damaged: wal/{wal_name}: bytes {start}..{end} unreadable (")),
        "{}",
        damaged.stdout
    );
    assert!(damaged.stdout.contains("1 record lost"), "{}", damaged.stdout);

    let repaired = doppel(&["repair", "--data", data_arg]).await;
    assert!(repaired.success, "{}", repaired.stderr);
    assert!(
        repaired.stdout.contains(&format!("lost: wal/{wal_name}: bytes {start}..{end} (")),
        "{}",
        repaired.stdout
    );
    assert!(
        repaired.stdout.contains(&format!("to quarantine/{wal_name}.{start}-{end}")),
        "{}",
        repaired.stdout
    );
    assert!(data.join("quarantine").join(format!("{wal_name}.{start}-{end}")).exists());
    let after = check(data_arg).await;
    assert!(after.success, "{}\n{}", after.stdout, after.stderr);

    let server = Server::start(&data, &log, &[]).await;
    let bob = heart_rate_csv(&server, "bob").await;
    assert_eq!(bob.stdout, BOB_WITHOUT_THE_DAMAGED_RECORD);
}
