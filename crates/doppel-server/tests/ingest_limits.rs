//! Over a real server with its defaults: one writer cannot use up the
//! tables every twin shares, a twin's present follows its history however
//! points arrive, and no clock far ahead can freeze a twin.

mod common;

use common::{TestServer, json_body};
use doppel_server::Auth;
use serde_json::{Value, json};

fn now_secs() -> i64 {
    doppel_model::Timestamp::now().as_nanos() / 1_000_000_000
}

/// A refused write's status and body text.
async fn refused(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn signal(server: &TestServer, twin: &str, name: &str) -> Value {
    let view = json_body(server.get(&format!("/api/v1/twins/{twin}")).await, "application/json").await;
    view["signals"].as_array().unwrap().iter().find(|s| s["signal"] == name).cloned().unwrap()
}

#[tokio::test]
async fn one_writer_cannot_fill_the_signal_names_of_everyone_else() {
    let server = TestServer::start().await;
    let now = now_secs();

    let fields: Vec<String> = (0..65_530).map(|i| format!("f{i}=1")).collect();
    let huge = format!("junk,twin=mallory {} {now}", fields.join(","));
    let (status, body) = refused(server.post("/api/v2/write?precision=s", huge).await).await;
    assert_eq!(status, 400, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let message = answer["message"].as_str().unwrap();
    assert!(message.starts_with("1 bad line(s)"), "one line breaking two caps is one bad line: {message}");
    let errors = answer["errors"].clone();
    assert!(
        errors.as_array().unwrap().contains(&json!({
            "line": 1,
            "message": "65530 fields on one line, above the limit of 1000 (max_fields_per_line)"
        })),
        "{body}"
    );

    // 100,000 distinct names over many lines: refused whole, registers none.
    let lines: String =
        (0..1_000).map(|l| format!("junk{l},twin=mallory {} {now}\n", fields[..100].join(","))).collect();
    let (status, body) = refused(server.post("/api/v2/write?precision=s", lines).await).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("max_signals_per_request") && body.contains("above the limit of 1000"), "{body}");

    // Names spread over requests stop at the twin's own cap.
    for start in [0, 600] {
        let lines: String =
            (start..start + 600).map(|i| format!("s{i},twin=mallory value=1 {now}\n")).collect();
        let response = server.post("/api/v2/write?precision=s", lines).await;
        if start == 0 {
            assert_eq!(response.status(), 204);
        } else {
            let (status, body) = refused(response).await;
            assert_eq!(status, 400, "{body}");
            assert!(
                body.contains(
                    "would be distinct signal number 1001 of twin mallory, above the limit of 1000 \
                               (max_signals_per_twin)"
                ),
                "{body}"
            );
        }
    }

    server.write_lines(&format!("weight,twin=bob value=70 {now}\ncarbs,twin=bob value=30 {now}")).await;
    server.write_lines(&format!("a_name_nobody_used,twin=bob value=1 {now}")).await;

    let dir = server.stop().await;
    let server = TestServer::start_with_auth(dir, Auth::disabled()).await;
    server
        .write_lines(&format!("weight,twin=carol value=60 {now}\nanother_new_name,twin=carol value=2 {now}"))
        .await;
    let lines: String = (600..1_001).map(|i| format!("s{i},twin=mallory value=1 {now}\n")).collect();
    let (status, body) = refused(server.post("/api/v2/write?precision=s", lines).await).await;
    assert_eq!(status, 400, "the twin's cap holds after a restart: {body}");
    assert!(body.contains("distinct signal number 1001 of twin mallory"), "{body}");
    server.write_lines(&format!("s0,twin=mallory value=2 {now}")).await;
}

#[tokio::test]
async fn the_present_counts_each_point_of_history_once() {
    let server = TestServer::start().await;
    let now = now_secs() - 3_600;
    let batch: String =
        (0..10).map(|i| format!("heart_rate,twin=t value={} {}\n", 60 + i, now + 60 * i)).collect();
    server.write_lines(&batch).await;
    server.write_lines(&batch).await;
    let hr = signal(&server, "t", "heart_rate").await;
    let day = hr["windows"].as_array().unwrap().iter().find(|w| w["window"] == "1d").cloned().unwrap();
    assert_eq!(day["count"], 10, "{hr}");
    assert_eq!(day["min"], 60.0);

    server.write_lines(&format!("heart_rate,twin=t value=99 {now}")).await;
    let hr = signal(&server, "t", "heart_rate").await;
    for window in hr["windows"].as_array().unwrap() {
        assert_ne!(window["min"], 60.0, "the overwritten value left no trace: {window}");
    }
    let day = hr["windows"].as_array().unwrap().iter().find(|w| w["window"] == "1d").cloned().unwrap();
    assert_eq!(
        (day["count"].clone(), day["min"].clone(), day["max"].clone()),
        (json!(10), json!(61.0), json!(99.0))
    );

    server
        .write_lines(&format!("big,twin=t value=1e308 {now}\nbig,twin=t value=1.5e308 {}\n", now + 60))
        .await;
    let big = signal(&server, "t", "big").await;
    for window in big["windows"].as_array().unwrap() {
        for stat in ["mean", "min", "max", "std"] {
            assert!(window[stat].is_f64(), "{stat} is a finite number: {window}");
        }
        assert_eq!(window["count"], 2);
    }
}

#[tokio::test]
async fn a_point_ten_years_ahead_is_refused_on_every_route_and_the_present_moves_on() {
    let server = TestServer::start().await;
    let now = now_secs();
    let ahead = now + 10 * 365 * 86_400;

    for path in ["/api/v2/write?precision=s", "/write?precision=s"] {
        let lines = format!("heart_rate,twin=t value=60 {now}\nheart_rate,twin=t value=61 {ahead}");
        let (status, body) = refused(server.post(path, lines).await).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("line 2: ") && body.contains("(future_horizon)"), "{path}: {body}");
    }
    let items = json!([
        {"twin": "t", "signal": "heart_rate", "time": now * 1_000_000_000, "value": 60},
        {"twin": "t", "signal": "heart_rate", "time": "2200-01-01T00:00:00Z", "value": 61},
    ]);
    for path in ["/api/v1/points", "/api/v1/twins/t/points"] {
        let response = server.request(reqwest::Method::POST, path).json(&items).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let problem = json_body(response, "application/problem+json").await;
        assert_eq!(problem["errors"][0]["item"], 2, "{path}: {problem}");
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains("future_horizon"), "{problem}");
    }
    assert_eq!(
        server.get("/api/v1/twins/t").await.status(),
        404,
        "nothing of the refused batches was written"
    );

    server.write_lines(&format!("heart_rate,twin=t value=62 {}", now - 60)).await;
    server.write_lines(&format!("heart_rate,twin=t value=63 {now}")).await;
    let hr = signal(&server, "t", "heart_rate").await;
    assert_eq!(hr["last_value"], 63.0, "{hr}");
}
