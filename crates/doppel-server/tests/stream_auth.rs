//! Streams under the policies: a coach with a grant on Alice's heart rate
//! only, subscribed over SSE and WebSocket, never receives her glucose nor
//! any other twin's events, and receives nothing of hers once the grant is
//! revoked.
//!
//! Absence is shown without waiting for time to pass: events reach a
//! subscriber in publication order, so when an event published after the
//! forbidden ones arrives first (or the stream ends), the forbidden ones
//! were never sent.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{NOON_SECS, TestServer, add_token};
use doppel_auth::{AuthState, NewGrant, Principal, Scopes, Subject, UserName};
use doppel_model::{Timestamp, TwinId};
use doppel_server::AuthConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Longest wait for a message or the end of a stream before the test fails.
const WAIT_MS: u64 = 10_000;

struct Setup {
    server: TestServer,
    alice: String,
    coach: String,
    grant: u64,
}

/// Alice owns `alice` and lets the coach read her heart rate; the coach
/// owns `coach-log`; `bob` belongs to nobody the coach knows. All three
/// twins exist before anyone subscribes.
async fn setup() -> Setup {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let coach = add_token(&mut state, "coach", Scopes::standard());
    let user = |name: &str| UserName::new(name).unwrap();
    state.policies.claim(&TwinId::new("alice").unwrap(), Subject::User(user("alice")));
    state.policies.claim(&TwinId::new("coach-log").unwrap(), Subject::User(user("coach")));
    let owner = Principal::from_jwt(user("alice"), BTreeSet::new(), Scopes::standard());
    let new = NewGrant {
        subject: "user:coach".parse().unwrap(),
        resource: "signals:heart_rate".parse().unwrap(),
        permissions: "read".parse().unwrap(),
        expires: None,
    };
    let grant =
        state.policies.grant(&owner, &TwinId::new("alice").unwrap(), new, Timestamp::now()).unwrap().id.0;
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    for twin in ["alice", "bob", "coach-log"] {
        server.write_lines(&format!("heart_rate,twin={twin} value=60 {NOON_SECS}")).await;
    }
    Setup { server, alice, coach, grant }
}

impl Setup {
    async fn revoke_grant(&self) {
        let path = format!("/api/v1/twins/alice/grants/{}", self.grant);
        let response =
            self.server.client.delete(self.server.url(&path)).bearer_auth(&self.alice).send().await.unwrap();
        assert_eq!(response.status(), 204, "{}", response.text().await.unwrap());
    }

    /// Alice's glucose alone, Bob's heart rate, then Alice's glucose and
    /// heart rate together: the coach may see only the last one's heart rate.
    async fn write_mixed(&self, second: i64, heart_rate: u32) {
        let at = NOON_SECS + second;
        self.server.write_lines(&format!("glucose,twin=alice value=100 {at}")).await;
        self.server.write_lines(&format!("heart_rate,twin=bob value=90 {at}")).await;
        self.server
            .write_lines(&format!(
                "glucose,twin=alice value=101 {at}\nheart_rate,twin=alice value={heart_rate} {at}"
            ))
            .await;
    }
}

/// Reads SSE text until a complete event with data arrives; `None` if the
/// stream ends first.
async fn next_sse_event<S, B, E>(stream: &mut S, buffer: &mut String) -> Option<Value>
where
    S: futures_util::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|line| line.strip_prefix("data: ")) {
                return Some(serde_json::from_str(data).unwrap());
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("neither an event nor the end of the stream in time; got {buffer:?}"));
        match chunk {
            Some(Ok(bytes)) => buffer.push_str(&String::from_utf8_lossy(bytes.as_ref())),
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test]
async fn an_sse_subscriber_sees_only_granted_signals_and_nothing_after_revocation() {
    let setup = setup().await;
    let response = setup
        .server
        .client
        .get(setup.server.url("/api/v1/twins/alice/events"))
        .bearer_auth(&setup.coach)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();

    setup.write_mixed(60, 61).await;
    let event = next_sse_event(&mut stream, &mut buffer).await.expect("the heart rate event");
    assert_eq!(event["twin"], "alice", "{event}");
    assert_eq!(
        event["points"],
        json!([{"signal": "heart_rate", "time": "2024-03-01T12:01:00Z", "value": 61.0}])
    );

    setup.revoke_grant().await;
    setup.write_mixed(120, 62).await;
    let after = next_sse_event(&mut stream, &mut buffer).await;
    assert_eq!(
        after, None,
        "the stream must end without another event once the coach may read nothing of alice"
    );
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_millis(WAIT_MS), socket.next())
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
async fn a_websocket_subscriber_sees_only_granted_signals_and_nothing_after_revocation() {
    let setup = setup().await;
    let mut request = format!("ws://{}/api/v1/stream", setup.server.addr).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {}", setup.coach).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.send(Message::Text(json!({"subscribe": {}}).to_string().into())).await.unwrap();
    assert!(next_json(&mut socket).await.get("subscribed").is_some());

    setup.write_mixed(60, 61).await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["twin"], "alice", "{event}");
    assert_eq!(
        event["points"],
        json!([{"signal": "heart_rate", "time": "2024-03-01T12:01:00Z", "value": 61.0}])
    );

    setup.revoke_grant().await;
    setup.write_mixed(120, 62).await;
    setup.server.write_lines(&format!("heart_rate,twin=coach-log value=70 {}", NOON_SECS + 180)).await;
    let next = next_json(&mut socket).await;
    assert_eq!(
        next["twin"], "coach-log",
        "after the revocation only the coach's own twin may arrive: {next}"
    );
}

#[tokio::test]
async fn a_websocket_is_closed_when_its_token_is_revoked() {
    let setup = setup().await;
    let mut request = format!("ws://{}/api/v1/stream", setup.server.addr).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {}", setup.coach).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.send(Message::Text(json!({"subscribe": {}}).to_string().into())).await.unwrap();
    assert!(next_json(&mut socket).await.get("subscribed").is_some());

    let coach_id = &setup.coach[4..16];
    let response = setup.server.delete(&format!("/api/v1/tokens/{coach_id}")).await;
    assert_eq!(response.status(), 204);
    setup.server.write_lines(&format!("heart_rate,twin=coach-log value=70 {}", NOON_SECS + 180)).await;
    let message = tokio::time::timeout(Duration::from_millis(WAIT_MS), socket.next())
        .await
        .expect("the socket closes in time");
    match message {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected a close frame with code 1008, got {other:?}"),
    }
}

/// Reads a quiet SSE stream to its end; panics if an event or nothing at
/// all arrives in time.
async fn sse_ends_quietly(server: &TestServer, token: &str, twin: &str, act: impl AsyncFnOnce()) {
    let response = server
        .client
        .get(server.url(&format!("/api/v1/twins/{twin}/events")))
        .bearer_auth(token)
        .send()
        .await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    act().await;
    let mut buffer = String::new();
    let event = next_sse_event(&mut stream, &mut buffer).await;
    assert_eq!(event, None, "the stream ends with no event written to the twin");
}

#[tokio::test]
async fn a_quiet_sse_stream_ends_when_its_grant_or_token_is_revoked() {
    let setup = setup().await;
    sse_ends_quietly(&setup.server, &setup.coach, "alice", async || setup.revoke_grant().await).await;

    let coach_id = &setup.coach[4..16];
    sse_ends_quietly(&setup.server, &setup.coach, "coach-log", async || {
        assert_eq!(setup.server.delete(&format!("/api/v1/tokens/{coach_id}")).await.status(), 204);
    })
    .await;
}

#[tokio::test]
async fn a_quiet_stream_ends_when_its_token_expires() {
    let mut state = AuthState::default();
    let new = doppel_auth::NewToken {
        name: doppel_auth::TokenName::new("brief").unwrap(),
        user: UserName::new("dana").unwrap(),
        scopes: Scopes::standard(),
        expires: Some(Timestamp::now().add_nanos(3_000_000_000)),
    };
    let brief = state.tokens.create(new, Timestamp::now()).unwrap().0.expose().to_owned();
    state.policies.claim(&TwinId::new("dana").unwrap(), Subject::User(UserName::new("dana").unwrap()));
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    server.write_lines(&format!("heart_rate,twin=dana value=60 {NOON_SECS}")).await;

    let mut request = format!("ws://{}/api/v1/stream", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {brief}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.send(Message::Text(json!({"subscribe": {}}).to_string().into())).await.unwrap();
    assert!(next_json(&mut socket).await.get("subscribed").is_some());
    sse_ends_quietly(&server, &brief, "dana", async || {}).await;
    loop {
        let message = tokio::time::timeout(Duration::from_millis(WAIT_MS), socket.next())
            .await
            .expect("the socket closes in time");
        match message {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(Some(frame)))) => break assert_eq!(u16::from(frame.code), 1008),
            other => panic!("expected a close frame with code 1008, got {other:?}"),
        }
    }
}
