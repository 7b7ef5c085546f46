//! Live events over real connections: SSE and WebSocket, filters, errors
//! and graceful shutdown.

mod common;

use std::time::Duration;

use common::{NOON_SECS, TestServer, assert_bad_parameter};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Reads an SSE body until `needle` appears, returning everything read.
async fn read_sse_until(response: reqwest::Response, needle: &str) -> String {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in time; got {text:?}"))
            .expect("stream ended early")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn sse_delivers_a_twins_points_after_a_write() {
    let server = TestServer::start().await;
    let response = server.get("/api/v1/twins/alice/events?kinds=points&signals=heart_rate").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // Another twin's points and alice's other signals are filtered out.
    server.write_lines(&format!("heart_rate,twin=bob value=90 {NOON_SECS}")).await;
    server
        .write_lines(&format!(
            "steps,twin=alice value=12 {NOON_SECS}\nheart_rate,twin=alice value=61 {NOON_SECS}"
        ))
        .await;
    let text = read_sse_until(response, "\n\n").await;
    let data = text.lines().find_map(|line| line.strip_prefix("data: ")).expect("a data line");
    let event: Value = serde_json::from_str(data).unwrap();
    assert!(text.contains("event: points\n"), "{text}");
    assert_eq!(event["twin"], "alice");
    assert_eq!(event["kind"], "points");
    assert_eq!(
        event["points"],
        json!([{"signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 61.0}])
    );
}

#[tokio::test]
async fn sse_refuses_unknown_kinds_and_bad_signals() {
    let server = TestServer::start().await;
    assert_bad_parameter(server.get("/api/v1/twins/alice/events?kinds=everything").await, "kinds").await;
    assert_bad_parameter(server.get("/api/v1/twins/alice/events?signals=9bad").await, "signals").await;
}

#[tokio::test]
async fn graceful_shutdown_ends_open_streams() {
    let server = TestServer::start().await;
    let response = server.get("/api/v1/twins/alice/events").await;
    assert_eq!(response.status(), 200);
    // `shutdown` panics unless serve returns while this stream is open.
    server.shutdown().await;
    // The body ends (cleanly or not) instead of hanging.
    let _ = tokio::time::timeout(Duration::from_secs(5), response.bytes())
        .await
        .expect("stream ended after shutdown");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer) -> Socket {
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/v1/stream", server.addr)).await.unwrap();
    socket
}

/// The next text frame as JSON, skipping pings.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_subscriber_to_one_twin_does_not_see_another() {
    let server = TestServer::start().await;
    let mut socket = connect(&server).await;
    let subscribe = json!({"subscribe": {"twins": ["alice"], "kinds": ["points"]}});
    socket.send(Message::Text(subscribe.to_string().into())).await.unwrap();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"subscribed": {"twins": ["alice"], "signals": null, "kinds": ["points"]}})
    );
    server.write_lines(&format!("heart_rate,twin=bob value=90 {NOON_SECS}")).await;
    server.write_lines(&format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["twin"], "alice", "{event}");
    assert_eq!(event["points"][0]["value"], 62.0);

    // Resubscribing replaces the filter: now bob only.
    let subscribe = json!({"subscribe": {"twins": ["bob"], "signals": null, "kinds": null}});
    socket.send(Message::Text(subscribe.to_string().into())).await.unwrap();
    assert!(next_json(&mut socket).await.get("subscribed").is_some());
    server.write_lines(&format!("heart_rate,twin=alice value=63 {}", NOON_SECS + 60)).await;
    server.write_lines(&format!("heart_rate,twin=bob value=91 {}", NOON_SECS + 60)).await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["twin"], "bob", "{event}");
}

#[tokio::test]
async fn websocket_answers_bad_messages_with_an_error_and_stays_open() {
    let server = TestServer::start().await;
    let mut socket = connect(&server).await;
    socket.send(Message::Text("hello".into())).await.unwrap();
    assert!(next_json(&mut socket).await["error"].as_str().unwrap().contains("subscribe"));
    socket.send(Message::Text(r#"{"subscribe": {"kinds": ["gossip"]}}"#.into())).await.unwrap();
    let error = next_json(&mut socket).await;
    assert!(error["error"].as_str().unwrap().starts_with("subscribe.kinds:"), "{error}");
    socket.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert!(next_json(&mut socket).await["error"].as_str().unwrap().contains("binary"));
    socket.send(Message::Text(r#"{"subscribe": {}}"#.into())).await.unwrap();
    assert!(next_json(&mut socket).await.get("subscribed").is_some());
    server.write_lines(&format!("heart_rate,twin=zoe value=70 {NOON_SECS}")).await;
    // Subscribed to everything: the creation of zoe, then its points.
    assert_eq!(next_json(&mut socket).await["kind"], "twin_created");
    assert_eq!(next_json(&mut socket).await["kind"], "points");
}
