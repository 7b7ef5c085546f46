//! The HTTP API over real HTTP: every route with good and bad input.

mod common;

use std::io::Write;

use common::{DAY_RANGE, NOON_SECS, TestServer, assert_bad_parameter, json_body};
use doppel_server::ServerConfig;
use serde_json::json;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn raw_read(server: &TestServer, twin: &str) -> serde_json::Value {
    let response = server.get(&format!("/api/v1/twins/{twin}/signals/heart_rate?{DAY_RANGE}")).await;
    assert_eq!(response.status(), 200);
    json_body(response, "application/json").await
}

// ------------------------------------------------------------ Influx writes

#[tokio::test]
async fn line_protocol_write_answers_204_and_reads_back_exactly() {
    let server = TestServer::start().await;
    let body = format!(
        "heart_rate,twin=alice,device=watch value=62 {NOON_SECS}\nheart_rate,twin=alice,device=watch value=64.5 {}\n",
        NOON_SECS + 60
    );
    let response = server.post("/api/v2/write?bucket=ignored&org=ignored&precision=s", body).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.text().await.unwrap(), "");

    let response = server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"twin":"alice","signal":"heart_rate","unit":"bpm","points":[{"time":"2024-03-01T12:00:00Z","value":62,"provenance":"device=watch"},{"time":"2024-03-01T12:01:00Z","value":64.5,"provenance":"device=watch"}]}"#
    );
}

#[tokio::test]
async fn v1_write_accepts_db_and_short_precision_names() {
    let server = TestServer::start().await;
    let millis = NOON_SECS * 1000;
    let response = server
        .post("/write?db=telegraf&rp=autogen&precision=ms", format!("heart_rate,twin=bob value=70 {millis}"))
        .await;
    assert_eq!(response.status(), 204);
    let response = server
        .post(
            "/write?db=x&precision=u",
            format!("heart_rate,twin=bob value=71 {}", (NOON_SECS + 1) * 1_000_000),
        )
        .await;
    assert_eq!(response.status(), 204);
    let read = raw_read(&server, "bob").await;
    assert_eq!(
        read["points"],
        json!([{"time": "2024-03-01T12:00:00Z", "value": 70}, {"time": "2024-03-01T12:00:01Z", "value": 71}])
    );
}

#[tokio::test]
async fn gzip_body_is_inflated() {
    let server = TestServer::start().await;
    let body = gzip(format!("heart_rate,twin=alice value=61 {NOON_SECS}\n").as_bytes());
    let response = server
        .client
        .post(server.url("/api/v2/write?precision=s"))
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(raw_read(&server, "alice").await["points"][0]["value"], 61);
}

#[tokio::test]
async fn batch_with_bad_lines_lists_each_line_and_writes_nothing() {
    let server = TestServer::start().await;
    server.write_lines(&format!("heart_rate,twin=alice value=60 {NOON_SECS}")).await;
    let body = format!(
        "heart_rate,twin=alice value=61 {t1}\nheart_rate,twin=alice value= {t2}\nheart_rate,twin=alice value=63 {t3}\nheart_rate,device=watch value=64 {t3}\n",
        t1 = NOON_SECS + 60,
        t2 = NOON_SECS + 120,
        t3 = NOON_SECS + 180
    );
    let response = server.post("/api/v2/write?precision=s", body).await;
    assert_eq!(response.status(), 400);
    let error = json_body(response, "application/json").await;
    assert_eq!(error["code"], "invalid");
    let lines: Vec<u64> =
        error["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 4], "{error}");
    assert!(error["errors"][1]["message"].as_str().unwrap().contains("twin"), "{error}");
    // Only the point written before the bad batch is there.
    let read = raw_read(&server, "alice").await;
    assert_eq!(read["points"], json!([{"time": "2024-03-01T12:00:00Z", "value": 60}]));
}

#[tokio::test]
async fn out_of_range_value_is_rejected_naming_its_line() {
    let server = TestServer::start().await;
    let body = format!(
        "heart_rate,twin=alice value=62 {NOON_SECS}\nheart_rate,twin=alice value=400 {}\n",
        NOON_SECS + 60
    );
    let response = server.post("/api/v2/write?precision=s", body).await;
    assert_eq!(response.status(), 400);
    let error = json_body(response, "application/json").await;
    assert_eq!(error["errors"].as_array().unwrap().len(), 1, "{error}");
    assert_eq!(error["errors"][0]["line"], 2);
    assert!(error["errors"][0]["message"].as_str().unwrap().contains("400"), "{error}");
    assert!(error["message"].as_str().unwrap().contains("nothing was written"), "{error}");
    // The twin was never created: the batch was rejected whole.
    assert_eq!(server.get("/api/v1/twins/alice").await.status(), 404);
}

#[tokio::test]
async fn bad_precision_and_empty_body_answer_in_influx_shape() {
    let server = TestServer::start().await;
    let response = server.post("/api/v2/write?precision=h", "heart_rate,twin=a value=1").await;
    assert_eq!(response.status(), 400);
    let error = json_body(response, "application/json").await;
    assert_eq!(error["code"], "invalid");
    assert!(error["message"].as_str().unwrap().contains("precision"), "{error}");

    let response = server.post("/api/v2/write", "").await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json_body(response, "application/json").await,
        json!({"code": "invalid", "message": "writing requires points"})
    );
}

#[tokio::test]
async fn oversized_bodies_answer_413() {
    let config = ServerConfig { max_body_bytes: 1024, ..ServerConfig::default() };
    let server = TestServer::start_with(config, |_| {}).await;
    let line = format!("heart_rate,twin=alice value=62 {NOON_SECS}\n");
    let big = line.repeat(100);
    assert!(big.len() > 1024);

    let response = server.post("/api/v2/write?precision=s", big.clone()).await;
    assert_eq!(response.status(), 413);
    let error = json_body(response, "application/json").await;
    assert_eq!(error["code"], "request too large");
    assert!(error["message"].as_str().unwrap().contains("1024 bytes"), "{error}");

    // Small when compressed, too big once inflated.
    let compressed = gzip(big.as_bytes());
    assert!(compressed.len() < 1024);
    let response = server
        .client
        .post(server.url("/api/v2/write?precision=s"))
        .header("content-encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let error = json_body(response, "application/json").await;
    assert!(error["message"].as_str().unwrap().contains("after gzip inflation"), "{error}");

    let response = server.post("/api/v1/points", format!("[{}]", " ".repeat(2000))).await;
    assert_eq!(response.status(), 413);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["type"], "urn:doppel:problem:body-too-large");
    assert_eq!(problem["limit"], 1024);
}

#[tokio::test]
async fn batch_over_the_point_limit_answers_413() {
    let config = ServerConfig { max_batch_points: 2, ..ServerConfig::default() };
    let server = TestServer::start_with(config, |_| {}).await;
    let body: String =
        (0..3).map(|i| format!("heart_rate,twin=alice value=60 {}\n", NOON_SECS + i)).collect();
    let response = server.post("/api/v2/write?precision=s", body).await;
    assert_eq!(response.status(), 413);
    let error = json_body(response, "application/json").await;
    assert_eq!(error["code"], "request too large");
    assert!(error["message"].as_str().unwrap().contains("3 points"), "{error}");
}

#[tokio::test]
async fn unsupported_content_encoding_answers_415() {
    let server = TestServer::start().await;
    let response = server
        .client
        .post(server.url("/api/v1/points"))
        .header("content-encoding", "br")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

// ------------------------------------------------------------ JSON points

#[tokio::test]
async fn json_points_are_written_and_report_created_twins() {
    let server = TestServer::start().await;
    let body = json!([
        {"twin": "bob", "signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 70, "source": {"device": "ring"}},
        {"twin": "bob", "signal": "heart_rate", "time": (NOON_SECS + 60) * 1_000_000_000_i64, "value": 72.5, "source": {"device": "ring"}}
    ]);
    let response = server.client.post(server.url("/api/v1/points")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"points":2,"twins_created":["bob"]}"#);

    let again =
        json!({"points": [{"twin": "bob", "signal": "steps", "time": "2024-03-01T12:00:00Z", "value": 12}]});
    let response = server.client.post(server.url("/api/v1/points")).json(&again).send().await.unwrap();
    assert_eq!(json_body(response, "application/json").await, json!({"points": 1, "twins_created": []}));

    let read = raw_read(&server, "bob").await;
    assert_eq!(
        read["points"][1],
        json!({"time": "2024-03-01T12:01:00Z", "value": 72.5, "provenance": "device=ring"})
    );
}

#[tokio::test]
async fn bad_json_points_list_every_bad_item_and_write_nothing() {
    let server = TestServer::start().await;
    let body = json!([
        {"twin": "bob", "signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 70},
        {"twin": "bob", "signal": "heart_rate", "time": "2024-03-01T12:01:00Z", "value": [1]},
        {"twin": "bob", "signal": "heart_rate", "value": 71},
        {"twin": "bob", "signal": "heart_rate", "time": "2024-03-01T12:03:00Z", "value": 72}
    ]);
    let response = server.client.post(server.url("/api/v1/points")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["type"], "urn:doppel:problem:invalid-points");
    let items: Vec<u64> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["item"].as_u64().unwrap()).collect();
    assert_eq!(items, [2, 3], "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("value"), "{problem}");
    assert_eq!(server.get("/api/v1/twins/bob").await.status(), 404);

    let response = server.post("/api/v1/points", "[{").await;
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn twin_points_route_fills_in_the_twin_and_refuses_another() {
    let server = TestServer::start().await;
    let body = json!([{"signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 66}]);
    let response =
        server.client.post(server.url("/api/v1/twins/carol/points")).json(&body).send().await.unwrap();
    assert_eq!(
        json_body(response, "application/json").await,
        json!({"points": 1, "twins_created": ["carol"]})
    );
    assert_eq!(raw_read(&server, "carol").await["points"][0]["value"], 66);

    let other =
        json!([{"twin": "dave", "signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 66}]);
    let response =
        server.client.post(server.url("/api/v1/twins/carol/points")).json(&other).send().await.unwrap();
    assert_eq!(response.status(), 400);

    let response =
        server.client.post(server.url("/api/v1/twins/no%20spaces/points")).json(&body).send().await.unwrap();
    assert_bad_parameter(response, "id").await;
}

// ------------------------------------------------------------ twins

#[tokio::test]
async fn twin_put_get_delete_round_trip() {
    let server = TestServer::start().await;
    let response = server
        .put_json("/api/v1/twins/erin", json!({"model": "person", "properties": {"birth_year": 1985}}))
        .await;
    assert_eq!(response.status(), 201);
    let created = json_body(response, "application/json").await;
    assert_eq!(created["id"], "erin");
    assert_eq!(created["model"], "person");
    assert_eq!(created["properties"], json!({"birth_year": 1985}));

    let response = server.put_json("/api/v1/twins/erin", json!({"properties": {"birth_year": 1986}})).await;
    assert_eq!(response.status(), 200);

    server.write_lines(&format!("heart_rate,twin=erin value=58 {NOON_SECS}")).await;
    let view = json_body(server.get("/api/v1/twins/erin").await, "application/json").await;
    assert_eq!(view["properties"]["birth_year"], 1986);
    assert_eq!(view["signals"][0]["signal"], "heart_rate");
    assert_eq!(view["signals"][0]["last_value"], 58.0);
    assert_eq!(view["signals"][0]["unit"], "bpm");

    assert_eq!(server.delete("/api/v1/twins/erin").await.status(), 204);
    let response = server.get("/api/v1/twins/erin").await;
    assert_eq!(response.status(), 404);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["type"], "urn:doppel:problem:twin-not-found");
    assert_eq!(server.delete("/api/v1/twins/erin").await.status(), 404);
}

#[tokio::test]
async fn twin_put_refuses_bad_input() {
    let server = TestServer::start().await;
    let response = server.put_json("/api/v1/twins/erin", json!({"model": "unicorn"})).await;
    assert_bad_parameter(response, "model").await;

    let response =
        server.put_json("/api/v1/twins/erin", json!({"properties": {"birth_year": "long ago"}})).await;
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    assert!(problem["detail"].as_str().unwrap().contains("birth_year"), "{problem}");

    let response =
        server.client.put(server.url("/api/v1/twins/erin")).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["type"], "urn:doppel:problem:invalid-body");

    let response = server.put_json("/api/v1/twins/a%20b", json!({})).await;
    assert_bad_parameter(response, "id").await;

    // An empty body creates the twin with defaults.
    let response = server.client.put(server.url("/api/v1/twins/plain")).send().await.unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn twin_list_pages_by_id() {
    let server = TestServer::start().await;
    for id in ["t5", "t1", "t3", "t2", "t4"] {
        assert_eq!(server.put_json(&format!("/api/v1/twins/{id}"), json!({})).await.status(), 201);
    }
    let page = json_body(server.get("/api/v1/twins?limit=2").await, "application/json").await;
    let ids: Vec<&str> =
        page["twins"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t1", "t2"]);
    assert_eq!(page["next"], "t2");
    assert_eq!(page["twins"][0]["model"], "person");

    let page = json_body(server.get("/api/v1/twins?limit=2&after=t2").await, "application/json").await;
    assert_eq!(page["twins"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "t4");
    let page = json_body(server.get("/api/v1/twins?limit=2&after=t4").await, "application/json").await;
    assert_eq!(page["twins"][0]["id"], "t5");
    assert_eq!(page["next"], serde_json::Value::Null);

    let all = json_body(server.get("/api/v1/twins?model=person").await, "application/json").await;
    assert_eq!(all["twins"].as_array().unwrap().len(), 5);
    let none = json_body(server.get("/api/v1/twins?model=other").await, "application/json").await;
    assert_eq!(none, json!({"twins": [], "next": null}));

    assert_bad_parameter(server.get("/api/v1/twins?limit=0").await, "limit").await;
    assert_bad_parameter(server.get("/api/v1/twins?limit=1001").await, "limit").await;
    assert_bad_parameter(server.get("/api/v1/twins?after=a%20b").await, "after").await;
}

// ------------------------------------------------------------ signals

async fn server_with_hourly_data() -> TestServer {
    let server = TestServer::start().await;
    server
        .write_lines(&format!(
            "heart_rate,twin=alice,device=watch value=60 {}\nheart_rate,twin=alice,device=watch value=70 {}\nheart_rate,twin=alice,device=ring value=80 {}\n",
            NOON_SECS,
            NOON_SECS + 1800,
            NOON_SECS + 4500
        ))
        .await;
    server
}

#[tokio::test]
async fn aggregate_read_answers_buckets_in_json_and_csv() {
    let server = server_with_hourly_data().await;
    let response = server
        .get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}&every=1h&agg=mean,max"))
        .await;
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"twin":"alice","signal":"heart_rate","unit":"bpm","every":"1h","aggregates":["mean","max"],"buckets":[{"time":"2024-03-01T12:00:00Z","count":2,"mean":65,"max":70},{"time":"2024-03-01T13:00:00Z","count":1,"mean":80,"max":80}]}"#
    );

    let response = server
        .get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}&every=1h&agg=mean,max&format=csv"))
        .await;
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        response.text().await.unwrap(),
        "time,mean,max\n2024-03-01T12:00:00Z,65,70\n2024-03-01T13:00:00Z,80,80\n"
    );

    // `every` alone is an hourly mean; CSV of one aggregate is `time,value`.
    let response =
        server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}&every=1h&format=csv")).await;
    assert_eq!(
        response.text().await.unwrap(),
        "time,value\n2024-03-01T12:00:00Z,65\n2024-03-01T13:00:00Z,80\n"
    );

    // `agg` alone is one bucket over the range.
    let whole = json_body(
        server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}&agg=count,min")).await,
        "application/json",
    )
    .await;
    assert_eq!(whole["every"], serde_json::Value::Null);
    assert_eq!(whole["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(whole["buckets"][0]["count"], 3);
    assert_eq!(whole["buckets"][0]["min"], 60);
}

#[tokio::test]
async fn raw_read_merges_provenances_and_filters_by_source() {
    let server = server_with_hourly_data().await;
    let response =
        server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}&format=csv")).await;
    assert_eq!(
        response.text().await.unwrap(),
        "time,value\n2024-03-01T12:00:00Z,60\n2024-03-01T12:30:00Z,70\n2024-03-01T13:15:00Z,80\n"
    );
    let ring = json_body(
        server.get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}&source=device%3Dring")).await,
        "application/json",
    )
    .await;
    assert_eq!(
        ring["points"],
        json!([{"time": "2024-03-01T13:15:00Z", "value": 80, "provenance": "device=ring"}])
    );

    // Integer-nanosecond bounds; `to` is exclusive.
    let from = NOON_SECS * 1_000_000_000;
    let to = (NOON_SECS + 1800) * 1_000_000_000;
    let read = json_body(
        server.get(&format!("/api/v1/twins/alice/signals/heart_rate?from={from}&to={to}")).await,
        "application/json",
    )
    .await;
    assert_eq!(read["points"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn category_points_carry_their_label() {
    let server = TestServer::start().await;
    let body =
        json!([{"twin": "sam", "signal": "sleep_stage", "time": "2024-03-01T01:00:00Z", "value": "deep"}]);
    let response = server.client.post(server.url("/api/v1/points")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let read = json_body(
        server.get(&format!("/api/v1/twins/sam/signals/sleep_stage?{DAY_RANGE}")).await,
        "application/json",
    )
    .await;
    assert_eq!(read["points"][0]["label"], "deep", "{read}");
}

#[tokio::test]
async fn bad_read_parameters_are_named() {
    let server = server_with_hourly_data().await;
    let base = "/api/v1/twins/alice/signals/heart_rate";
    assert_bad_parameter(server.get(&format!("{base}?every=fortnight")).await, "every").await;
    assert_bad_parameter(server.get(&format!("{base}?agg=mean,average")).await, "agg").await;
    assert_bad_parameter(server.get(&format!("{base}?from=yesterday")).await, "from").await;
    assert_bad_parameter(server.get(&format!("{base}?to=2024-02-30T25:00:00Z")).await, "to").await;
    assert_bad_parameter(
        server.get(&format!("{base}?from=2024-03-02T00:00:00Z&to=2024-03-01T00:00:00Z")).await,
        "from",
    )
    .await;
    assert_bad_parameter(server.get(&format!("{base}?format=xml")).await, "format").await;
    assert_bad_parameter(server.get(&format!("{base}?source=nokey")).await, "source").await;
    assert_bad_parameter(server.get("/api/v1/twins/alice/signals/9lives").await, "signal").await;
}

#[tokio::test]
async fn reading_an_unknown_twin_answers_404() {
    let server = TestServer::start().await;
    let response = server.get("/api/v1/twins/nobody/signals/heart_rate").await;
    assert_eq!(response.status(), 404);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(
        problem,
        json!({
            "type": "urn:doppel:problem:twin-not-found",
            "title": "Twin not found",
            "status": 404,
            "detail": "twin \"nobody\" does not exist"
        })
    );
}

// ------------------------------------------------------------ ops

#[tokio::test]
async fn health_answers_ok_and_the_version() {
    let server = TestServer::start().await;
    let health = json_body(server.get("/health").await, "application/json").await;
    assert_eq!(health, json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "problems": []}));
}

#[tokio::test]
async fn metrics_expose_every_metric_name() {
    let server = TestServer::start().await;
    server.write_lines(&format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await;
    let _ = server.post("/api/v2/write", "garbage").await;
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    for name in [
        "doppel_points_ingested_total",
        "doppel_batches_total",
        "doppel_twins",
        "doppel_series",
        "doppel_live_signals",
        "doppel_wal_fsyncs_total",
        "doppel_wal_fsync_seconds_total",
        "doppel_wal_last_fsync_seconds",
        "doppel_head_points",
        "doppel_segments",
        "doppel_disk_bytes",
        "doppel_flushes_total",
        "doppel_compactions_total",
        "doppel_store_flushed_bytes_total",
        "doppel_store_compacted_bytes_total",
        "doppel_store_series_keys_listed_total",
        "doppel_store_problems",
        "doppel_events_published_total",
        "doppel_subscribers",
        "doppel_http_requests_total",
        "doppel_http_request_duration_seconds",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "missing HELP for {name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "missing TYPE for {name}");
    }
    assert!(text.contains("doppel_points_ingested_total 1\n"), "{text}");
    assert!(text.contains("doppel_batches_total{result=\"ok\"} 1\n"), "{text}");
    assert!(text.contains("doppel_twins 1\n"), "{text}");
    assert!(
        text.contains("doppel_http_requests_total{route=\"/api/v2/write\",status=\"204\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("doppel_http_requests_total{route=\"/api/v2/write\",status=\"400\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("doppel_http_request_duration_seconds_count{route=\"/api/v2/write\"} 2\n"),
        "{text}"
    );
}

#[tokio::test]
async fn admin_flush_moves_the_head_into_a_segment_while_the_server_runs() {
    let server = TestServer::start().await;
    server
        .write_lines(&format!(
            "heart_rate,twin=alice value=62 {NOON_SECS}\nsteps,twin=alice value=10 {NOON_SECS}"
        ))
        .await;
    let flushed = json_body(server.post("/api/v1/admin/flush", "").await, "application/json").await;
    assert_eq!(flushed["points"], 2, "{flushed}");
    assert_eq!(flushed["series"], 2, "{flushed}");
    assert!(flushed["segment_bytes"].as_u64().unwrap() > 0, "{flushed}");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("doppel_head_points 0\n"), "{metrics}");
    assert!(metrics.contains("doppel_segments 1\n"), "{metrics}");
    let again = json_body(server.post("/api/v1/admin/flush", "").await, "application/json").await;
    assert_eq!(again["points"], 0, "an empty head flushes nothing: {again}");
    let read = raw_read(&server, "alice").await;
    assert_eq!(read["points"].as_array().map(Vec::len), Some(1), "the flushed point still reads: {read}");
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let server = TestServer::start().await;
    let doc = json_body(server.get("/api/openapi.json").await, "application/json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v2/write", "post"),
        ("/write", "post"),
        ("/api/v1/points", "post"),
        ("/api/v1/twins", "get"),
        ("/api/v1/twins/{id}", "get"),
        ("/api/v1/twins/{id}", "put"),
        ("/api/v1/twins/{id}", "delete"),
        ("/api/v1/twins/{id}/points", "post"),
        ("/api/v1/twins/{id}/signals/{signal}", "get"),
        ("/api/v1/twins/{id}/events", "get"),
        ("/api/v1/stream", "get"),
        ("/health", "get"),
        ("/metrics", "get"),
        ("/api/v1/admin/flush", "post"),
        ("/api/openapi.json", "get"),
        ("/api/v1/tokens", "post"),
        ("/api/v1/tokens", "get"),
        ("/api/v1/tokens/{id}", "delete"),
        ("/api/v1/twins/{id}/grants", "get"),
        ("/api/v1/twins/{id}/grants", "post"),
        ("/api/v1/twins/{id}/grants/{grant}", "delete"),
        ("/api/v1/twins/{id}/export", "get"),
        ("/api/v1/cohort/export", "get"),
        ("/api/v1/cohort/stats", "post"),
        ("/api/v1/audit", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the document"
        );
    }
    assert_eq!(paths.len(), 21);
    for schema in [
        "Problem",
        "TwinView",
        "TwinPage",
        "PointsWritten",
        "SignalRead",
        "InfluxError",
        "TokenView",
        "GrantView",
        "StatsAnswer",
        "ZipArchive",
        "AuditPage",
    ] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "schema {schema} missing");
    }
    assert_eq!(doc, serde_json::to_value(doppel_server::openapi()).unwrap());
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_problems() {
    let server = TestServer::start().await;
    let response = server.get("/api/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["detail"], "no route for /api/v1/nothing-here");

    let response = server.client.patch(server.url("/api/v1/twins/alice")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("PUT") && allow.contains("DELETE"), "{allow}");
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["detail"], "method PATCH is not allowed on /api/v1/twins/alice");
}

// ------------------------------------------------------------ embedding

#[tokio::test]
async fn embedded_router_serves_the_same_api() {
    let server = TestServer::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = doppel_server::router(server.engine.clone(), &ServerConfig::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    server.write_lines(&format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await;
    let url = format!("http://{addr}/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}&format=csv");
    let text = server.client.get(url).send().await.unwrap().text().await.unwrap();
    assert_eq!(text, "time,value\n2024-03-01T12:00:00Z,62\n");
}

#[tokio::test]
async fn serve_reports_an_address_in_use() {
    let server = TestServer::start().await;
    let config = ServerConfig { listen: server.addr, ..ServerConfig::default() };
    let result = doppel_server::serve(server.engine.clone(), config, async {}).await;
    match result {
        Err(doppel_server::ServerError::Bind { addr, .. }) => assert_eq!(addr, server.addr),
        other => panic!("expected a bind error, got {other:?}"),
    }
}
