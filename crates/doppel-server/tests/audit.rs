//! The audit trail over real HTTP: what each kind of request records, who
//! may read the records back, sealed records on disk, and refusal when the
//! log cannot record.

mod common;

use std::time::Duration;

use common::{DAY_RANGE, NOON_SECS, TestServer, add_token, json_body};
use doppel_audit::{AuditLog, AuditOptions};
use doppel_auth::{AuthState, Scopes};
use doppel_crypto::DataKey;
use doppel_server::{AuthConfig, ServerConfig};
use reqwest::Method;
use serde_json::{Value, json};

async fn send(server: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> u16 {
    let mut request = server.client.request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn audit_page(server: &TestServer, token: &str, query: &str) -> (u16, Value) {
    let response = server
        .client
        .get(server.url(&format!("/api/v1/audit{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// (principal's user, action, twin, target, detail, outcome) of each record.
fn summary(page: &Value) -> Vec<(String, String, String, String, String, String)> {
    let text = |value: &Value| value.as_str().unwrap_or("").to_owned();
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            let principal = text(&record["principal"]);
            let user = principal.split(' ').nth(1).unwrap_or(&principal).to_owned();
            (
                user,
                text(&record["action"]),
                text(&record["twin"]),
                text(&record["target"]),
                text(&record["detail"]),
                text(&record["outcome"]),
            )
        })
        .collect()
}

fn row(user: &str, action: &str, twin: &str, target: &str, detail: &str, outcome: &str) -> [String; 6] {
    [user, action, twin, target, detail, outcome].map(str::to_owned)
}

#[tokio::test]
async fn reads_writes_shares_and_deletes_are_recorded_with_principal_action_and_twin() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let coach = add_token(&mut state, "coach", Scopes::standard());
    let mallory = add_token(&mut state, "mallory", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let admin = server.admin_token.clone().unwrap();
    let alice_id = &alice[4..16];

    let lines = format!(
        "heart_rate,twin=alice value=62 {NOON_SECS}\nheart_rate,twin=alice value=63 {}",
        NOON_SECS + 60
    );
    let write = server.client.post(server.url("/api/v2/write?precision=s")).bearer_auth(&alice).body(lines);
    assert_eq!(write.send().await.unwrap().status(), 204);
    let heart_rate = format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}");
    assert_eq!(send(&server, &alice, Method::GET, &heart_rate, None).await, 200);
    let share = json!({"subject": "user:coach", "resource": "signals:heart_rate", "permissions": ["read"]});
    assert_eq!(send(&server, &alice, Method::POST, "/api/v1/twins/alice/grants", Some(share)).await, 201);
    assert_eq!(send(&server, &coach, Method::GET, &heart_rate, None).await, 200);
    assert_eq!(send(&server, &mallory, Method::GET, &heart_rate, None).await, 404);
    assert_eq!(send(&server, &alice, Method::PUT, "/api/v1/twins/alice-2", Some(json!({}))).await, 201);
    assert_eq!(send(&server, &alice, Method::DELETE, "/api/v1/twins/alice", None).await, 204);
    let batch = json!([
        {"twin": "bob", "signal": "steps", "time": NOON_SECS * 1_000_000_000, "value": 10},
        {"twin": "carol", "signal": "steps", "time": NOON_SECS * 1_000_000_000, "value": 20},
        {"twin": "carol", "signal": "steps", "time": NOON_SECS * 1_000_000_000 + 1, "value": 21},
    ]);
    assert_eq!(send(&server, &admin, Method::POST, "/api/v1/points", Some(batch)).await, 200);
    assert_eq!(send(&server, &admin, Method::DELETE, &format!("/api/v1/tokens/{alice_id}"), None).await, 204);
    // Public routes and anonymous refusals touch nothing and are not recorded.
    assert_eq!(server.client.get(server.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(server.client.get(server.url(&heart_rate)).send().await.unwrap().status(), 401);

    let (status, page) = audit_page(&server, &admin, "").await;
    assert_eq!(status, 200, "{page}");
    let signal_route = "GET /api/v1/twins/{id}/signals/{signal}";
    let expected = [
        row("alice", "write", "alice", "POST /api/v2/write", "points=2 twins=1", "204"),
        row("alice", "read", "alice", signal_route, "signal heart_rate", "200"),
        row(
            "alice",
            "share",
            "alice",
            "POST /api/v1/twins/{id}/grants",
            "grant 1 to user:coach on signals:heart_rate: read",
            "201",
        ),
        row("coach", "read", "alice", signal_route, "signal heart_rate", "200"),
        row("mallory", "read", "alice", signal_route, "signal heart_rate", "404"),
        row("alice", "create", "alice-2", "PUT /api/v1/twins/{id}", "", "201"),
        row("alice", "delete", "alice", "DELETE /api/v1/twins/{id}", "", "204"),
        row("admin", "write", "", "POST /api/v1/points", "points=3 twins=2", "200"),
        row("admin", "token_revoke", "", "DELETE /api/v1/tokens/{id}", &format!("token {alice_id}"), "204"),
    ];
    let recorded: Vec<[String; 6]> =
        summary(&page).into_iter().map(|r| [r.0, r.1, r.2, r.3, r.4, r.5]).collect();
    assert_eq!(recorded, expected);
    let first = &page["records"][0];
    assert_eq!(first["seq"], 1);
    assert_eq!(first["principal"], format!("user alice (token {alice_id})"));
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));

    // Reading the log is itself recorded.
    let (_, again) = audit_page(&server, &admin, "?after=9").await;
    assert_eq!(summary(&again)[0].3, "GET /api/v1/audit");
}

#[tokio::test]
async fn owners_read_their_twins_records_and_administrators_read_all() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let bob = add_token(&mut state, "bob", Scopes::standard());
    let coach = add_token(&mut state, "coach", Scopes::standard());
    let alice_write_only =
        add_token(&mut state, "alice", Scopes::new([doppel_auth::Scope::Write], None).unwrap());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let admin = server.admin_token.clone().unwrap();
    for (token, twin) in [(&alice, "alice"), (&bob, "bob"), (&alice, "alice"), (&alice, "alice")] {
        let line = format!("heart_rate,twin={twin} value=60 {NOON_SECS}");
        let write = server.client.post(server.url("/api/v2/write?precision=s")).bearer_auth(token).body(line);
        assert_eq!(write.send().await.unwrap().status(), 204);
    }
    let share = json!({"subject": "user:coach", "resource": "twin", "permissions": ["read"]});
    assert_eq!(send(&server, &alice, Method::POST, "/api/v1/twins/alice/grants", Some(share)).await, 201);

    // The owner sees the records of its twin, a page at a time.
    let (status, page) = audit_page(&server, &alice, "?twin=alice&limit=2").await;
    assert_eq!(status, 200, "{page}");
    let seqs: Vec<u64> =
        page["records"].as_array().unwrap().iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 3]);
    assert_eq!(page["next"], 3);
    let (_, rest) = audit_page(&server, &alice, "?twin=alice&after=3").await;
    let actions: Vec<String> = summary(&rest).into_iter().map(|r| r.1).collect();
    assert_eq!(actions, ["write", "share", "read"], "{rest}");
    assert_eq!(rest["next"], Value::Null);
    assert!(summary(&rest).iter().all(|r| r.2 == "alice"));

    // Not the whole log, not another owner's twin, not with a grant, not
    // with a credential that may not read.
    assert_eq!(audit_page(&server, &alice, "").await.0, 403);
    assert_eq!(audit_page(&server, &alice, "?twin=bob").await.0, 404);
    assert_eq!(audit_page(&server, &coach, "?twin=alice").await.0, 403);
    assert_eq!(audit_page(&server, &alice_write_only, "?twin=alice").await.0, 404);
    let (status, problem) = audit_page(&server, &alice, "?twin=a%20b").await;
    assert_eq!((status, problem["parameter"].as_str()), (400, Some("twin")));
    assert_eq!(audit_page(&server, &alice, "?twin=alice&from=yesterday").await.0, 400);

    // Administrators read everything, and may filter by twin and time.
    let (status, all) = audit_page(&server, &admin, "?limit=1000").await;
    assert_eq!(status, 200);
    assert!(summary(&all).iter().any(|r| r.2 == "bob"));
    // Bob's twin: his write, and alice's refused attempt to read its records.
    let (_, bobs) = audit_page(&server, &admin, "?twin=bob").await;
    let bobs: Vec<(String, String, String)> = summary(&bobs).into_iter().map(|r| (r.0, r.1, r.5)).collect();
    let expected =
        [("bob", "write", "204"), ("alice", "read", "404")].map(|(u, a, o)| (u.into(), a.into(), o.into()));
    assert_eq!(bobs, expected);
    let (_, none) = audit_page(&server, &admin, "?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z").await;
    assert_eq!(none["records"], json!([]));
}

#[tokio::test]
async fn a_new_owner_of_a_reused_twin_id_reads_only_its_own_twins_records() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let bob = add_token(&mut state, "bob", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let admin = server.admin_token.clone().unwrap();
    let write = |token: &str| {
        let line = format!("heart_rate,twin=del-1 value=60 {NOON_SECS}");
        server.client.post(server.url("/api/v2/write?precision=s")).bearer_auth(token.to_owned()).body(line)
    };
    assert_eq!(write(&alice).send().await.unwrap().status(), 204);
    let share = json!({"subject": "user:coach", "resource": "twin", "permissions": ["read"]});
    assert_eq!(send(&server, &alice, Method::POST, "/api/v1/twins/del-1/grants", Some(share)).await, 201);
    assert_eq!(send(&server, &alice, Method::DELETE, "/api/v1/twins/del-1", None).await, 204);

    assert_eq!(write(&bob).send().await.unwrap().status(), 204);
    let (status, page) = audit_page(&server, &bob, "?twin=del-1").await;
    assert_eq!(status, 200, "{page}");
    let rows: Vec<(String, String)> = summary(&page).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(rows, [("bob".to_owned(), "write".to_owned())], "{page}");
    assert_eq!(send(&server, &bob, Method::GET, "/api/v1/twins/del-1", None).await, 200);
    let (_, page) = audit_page(&server, &bob, "?twin=del-1").await;
    let actions: Vec<String> = summary(&page).into_iter().map(|r| r.1).collect();
    assert_eq!(actions, ["write", "read", "read"], "his own audit read and twin read follow: {page}");

    // Administrators read both twins' records, told apart by incarnation.
    let (_, all) = audit_page(&server, &admin, "?twin=del-1").await;
    let records = all["records"].as_array().unwrap();
    let incarnation = |action: &str, user: &str| {
        records
            .iter()
            .find(|r| r["action"] == action && r["principal"].as_str().unwrap().contains(user))
            .map(|r| r["incarnation"].clone())
            .unwrap()
    };
    assert!(incarnation("write", "alice").is_string(), "{all}");
    assert_eq!(incarnation("write", "alice"), incarnation("delete", "alice"), "{all}");
    assert_ne!(incarnation("write", "alice"), incarnation("write", "bob"), "{all}");
}

#[tokio::test]
async fn sealed_records_show_no_twin_id_on_disk_but_read_back_over_the_api() {
    let audit_dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(audit_dir.path(), Some(DataKey::generate().unwrap()), AuditOptions::default())
        .unwrap();
    let config = ServerConfig { audit: Some(log.clone()), ..ServerConfig::default() };
    let server =
        TestServer::start_authenticated_with(AuthState::default(), AuthConfig::default(), config).await;
    let admin = server.admin_token.clone().unwrap();
    server.write_lines(&format!("heart_rate,twin=zebra-secret-7 value=60 {NOON_SECS}")).await;
    let path = format!("/api/v1/twins/zebra-secret-7/signals/heart_rate?{DAY_RANGE}");
    assert_eq!(send(&server, &admin, Method::GET, &path, None).await, 200);
    let (_, page) = audit_page(&server, &admin, "?twin=zebra-secret-7").await;
    assert_eq!(summary(&page).len(), 2);
    server.shutdown().await;
    log.close().unwrap();

    let mut searched = 0;
    for entry in std::fs::read_dir(audit_dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for needle in [&b"zebra-secret-7"[..], b"heart_rate", b"admin"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "plaintext {:?}",
                String::from_utf8_lossy(needle)
            );
        }
        searched += bytes.len();
    }
    assert!(searched > 200, "the records should be on disk ({searched} bytes)");
    assert_eq!(doppel_audit::verify(audit_dir.path(), None).unwrap().unopened, 3);
}

#[tokio::test]
async fn a_log_that_cannot_record_refuses_audited_requests_and_nothing_else() {
    let audit_dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(audit_dir.path(), None, AuditOptions::default()).unwrap();
    let config = ServerConfig { audit: Some(log.clone()), ..ServerConfig::default() };
    let server =
        TestServer::start_authenticated_with(AuthState::default(), AuthConfig::default(), config).await;
    log.close().unwrap();
    let response = server.get("/api/v1/twins").await;
    assert_eq!(response.status(), 503);
    let problem = json_body(response, "application/problem+json").await;
    assert!(problem["detail"].as_str().unwrap().contains("audit log"), "{problem}");
    let write = server.post("/api/v2/write", format!("heart_rate,twin=x value=1 {NOON_SECS}")).await;
    assert_eq!(write.status(), 503);
    let influx: Value = write.json().await.unwrap();
    assert!(influx["message"].as_str().unwrap().contains("audit log"), "{influx}");
    assert!(server.engine.model_of(&doppel_model::TwinId::new("x").unwrap()).is_none());
    assert_eq!(server.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_request_that_times_out_is_recorded_as_incomplete() {
    let config = ServerConfig { request_timeout: Duration::from_millis(200), ..ServerConfig::default() };
    let server =
        TestServer::start_authenticated_with(AuthState::default(), AuthConfig::default(), config).await;
    let admin = server.admin_token.clone().unwrap();
    // A body that arrives too slowly: the answer is a 408 from the timeout,
    // and the handler never finishes.
    let slow = futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok::<_, std::io::Error>(format!("heart_rate,twin=alice value=1 {NOON_SECS}"))
    });
    let response = server
        .client
        .post(server.url("/api/v2/write"))
        .bearer_auth(&admin)
        .body(reqwest::Body::wrap_stream(slow))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 408);
    let (_, page) = audit_page(&server, &admin, "").await;
    assert_eq!(summary(&page)[0].5, "incomplete", "{page}");
    assert_eq!(summary(&page)[0].3, "POST /api/v2/write");
}
