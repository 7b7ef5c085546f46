//! Slow stream subscribers over real sockets: a client that stops reading
//! is dropped with a reason (`lagged` when the bounded event buffer skipped
//! events it had not read, `send_timeout` when one send did not complete
//! in time), counted in `/metrics`, and releases what it held, while the
//! server keeps ingesting.
//!
//! The clients shrink their receive buffer so the server's writes block
//! after a few megabytes (the server's own send buffer), and the events
//! are large (long provenance tags) so a few dozen batches get there.

mod common;

use std::time::Duration;

use common::{NOON_SECS, TestServer};
use doppel_server::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Points per batch; each becomes about 300 bytes of event JSON.
const POINTS_PER_BATCH: i64 = 500;
/// Batches that fill any socket buffers between a non-reading client and
/// the server many times over (over 20 MB of events).
const MAX_BATCHES: i64 = 160;

/// A server whose subscribers are dropped after `send_timeout`, with an
/// event bus of `capacity`.
async fn server(send_timeout: Duration, capacity: usize) -> TestServer {
    let config = ServerConfig { subscriber_send_timeout: send_timeout, ..ServerConfig::default() };
    TestServer::start_with(config, |engine| engine.event_capacity = capacity).await
}

/// A connection to the server whose receive buffer is as small as the
/// kernel allows, so the server's writes block early.
async fn small_buffer_connection(server: &TestServer) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(server.addr).await.unwrap()
}

/// Batch `n` for twin alice: one event of about 150 KB.
fn big_batch(n: i64) -> String {
    let device = "d".repeat(200);
    (0..POINTS_PER_BATCH)
        .map(|i| {
            format!("heart_rate,twin=alice,device={device} value=60 {}", NOON_SECS + n * POINTS_PER_BATCH + i)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The count of `doppel_subscribers_dropped_total` for `reason`.
async fn dropped(server: &TestServer, reason: &str) -> u64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    let prefix = format!("doppel_subscribers_dropped_total{{reason=\"{reason}\"}} ");
    let line = text.lines().find_map(|line| line.strip_prefix(prefix.as_str()));
    line.unwrap_or_else(|| panic!("no {prefix:?} in /metrics")).parse().unwrap()
}

/// Writes batches until a subscriber is dropped for `reason`, returning
/// how many were written; fails after [`MAX_BATCHES`].
async fn write_until_dropped(server: &TestServer, reason: &str) -> i64 {
    for n in 0..MAX_BATCHES {
        server.write_lines(&big_batch(n)).await;
        if dropped(server, reason).await > 0 {
            return n + 1;
        }
    }
    panic!("no subscriber was dropped for {reason} after {MAX_BATCHES} batches");
}

/// Waits until the engine has no subscriber left: the dropped one let go
/// of its receiver, the only thing that could pin events.
async fn assert_subscription_released(server: &TestServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.engine.stats().subscribers > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the dropped subscriber still holds its receiver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn subscribed_websocket(server: &TestServer) -> WebSocketStream<TcpStream> {
    let stream = small_buffer_connection(server).await;
    let url = format!("ws://{}/api/v1/stream", server.addr);
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    socket.send(Message::Text(json!({"subscribe": {"twins": ["alice"]}}).to_string().into())).await.unwrap();
    let confirmation = socket.next().await.unwrap().unwrap();
    assert!(confirmation.to_text().unwrap().contains("subscribed"), "{confirmation:?}");
    socket
}

/// Reads every message until the connection ends: the JSON text frames
/// and the close frame, if one arrived whole.
async fn read_to_end(socket: &mut WebSocketStream<TcpStream>) -> (Vec<Value>, Option<(CloseCode, String)>) {
    let mut texts = Vec::new();
    let mut close = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Some(message) =
        tokio::time::timeout_at(deadline, socket.next()).await.expect("the connection ended in time")
    {
        match message {
            Ok(Message::Text(text)) => texts.push(serde_json::from_str(text.as_str()).unwrap()),
            Ok(Message::Close(frame)) => close = frame.map(|frame| (frame.code, frame.reason.to_string())),
            Ok(_) => {}
            // A frame cut short when the server closed a socket nobody read.
            Err(_) => break,
        }
    }
    (texts, close)
}

#[tokio::test]
async fn a_websocket_subscriber_that_falls_behind_is_dropped_with_the_number_of_skipped_events() {
    // A long send timeout: the bus (8 events) overflows first.
    let server = server(Duration::from_secs(60), 8).await;
    let mut socket = subscribed_websocket(&server).await;
    // The client reads nothing while all batches are written: ingest is
    // not held up by it.
    for n in 0..MAX_BATCHES {
        server.write_lines(&big_batch(n)).await;
    }
    let (texts, close) = read_to_end(&mut socket).await;
    let notice = texts.last().expect("a last message");
    let skipped =
        notice["dropped"]["skipped"].as_u64().unwrap_or_else(|| panic!("not a drop notice: {notice}"));
    assert_eq!(notice["dropped"]["reason"], "lagged");
    assert!(skipped > 0);
    let events = texts.len() - 1;
    assert!(events < MAX_BATCHES as usize, "every event was kept for the slow client ({events})");
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, CloseCode::Again);
    assert!(reason.contains(&format!("{skipped} events were skipped")), "{reason}");
    assert_eq!(dropped(&server, "lagged").await, 1);
    assert_eq!(dropped(&server, "send_timeout").await, 0);
    assert_subscription_released(&server).await;
}

#[tokio::test]
async fn a_websocket_subscriber_that_stops_reading_is_dropped_after_the_send_timeout() {
    let server = server(Duration::from_millis(300), 4096).await;
    let mut socket = subscribed_websocket(&server).await;
    let written = write_until_dropped(&server, "send_timeout").await;
    assert_subscription_released(&server).await;
    // Ingest goes on, and nothing more is kept for the dropped client.
    for n in written..written + 10 {
        server.write_lines(&big_batch(n)).await;
    }
    let (texts, _) = read_to_end(&mut socket).await;
    assert!(texts.len() < written as usize, "{} of {written} events were kept", texts.len());
    assert_eq!(dropped(&server, "lagged").await, 0);
}

/// Opens an SSE stream of alice on a small-buffer connection and reads
/// the answer head.
async fn sse_stream(server: &TestServer) -> TcpStream {
    let mut stream = small_buffer_connection(server).await;
    let request = "GET /api/v1/twins/alice/events HTTP/1.1\r\nHost: doppel\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "the answer head ended early");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

/// Everything the server sends until it closes the connection.
async fn sse_read_to_end(stream: &mut TcpStream) -> String {
    let mut body = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut body)).await;
    // A reset instead of a clean close still ends the stream.
    let _ = read.expect("the connection ended in time");
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test]
async fn an_sse_subscriber_that_falls_behind_gets_a_dropped_event_and_the_stream_ends() {
    let server = server(Duration::from_secs(60), 8).await;
    let mut stream = sse_stream(&server).await;
    for n in 0..MAX_BATCHES {
        server.write_lines(&big_batch(n)).await;
    }
    let body = sse_read_to_end(&mut stream).await;
    let events = body.matches("event: points\n").count();
    assert!(events < MAX_BATCHES as usize, "every event was kept for the slow client ({events})");
    let (_, last) = body.rsplit_once("event: dropped\ndata: ").expect("a dropped event");
    let data = last.lines().next().unwrap();
    let notice: Value = serde_json::from_str(data).unwrap();
    assert_eq!(notice["dropped"]["reason"], "lagged", "{notice}");
    assert!(notice["dropped"]["skipped"].as_u64().unwrap() > 0, "{notice}");
    assert!(body.ends_with("0\r\n\r\n"), "the answer ends cleanly after the dropped event");
    assert_eq!(dropped(&server, "lagged").await, 1);
    assert_subscription_released(&server).await;
}

#[tokio::test]
async fn the_connection_of_an_sse_subscriber_that_reads_nothing_is_closed() {
    let server = server(Duration::from_millis(300), 4096).await;
    let mut stream = sse_stream(&server).await;
    let written = write_until_dropped(&server, "send_timeout").await;
    assert_subscription_released(&server).await;
    for n in written..written + 10 {
        server.write_lines(&big_batch(n)).await;
    }
    // The server closed the connection: reading ends, after no more than
    // what was already on its way.
    let body = sse_read_to_end(&mut stream).await;
    let events = body.matches("event: points\n").count();
    assert!(events < written as usize, "{events} of {written} events were kept");
    assert_eq!(dropped(&server, "lagged").await, 0);
}
