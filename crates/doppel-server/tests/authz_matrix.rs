//! The authorization matrix: every route of the OpenAPI document, asked by
//! every kind of caller over real HTTP, against the answer the policy rules
//! give (docs/security.md, "Route by route").
//!
//! The routes come from the generated document, so a new route fails this
//! test until it is classified here. Each cell runs on a fresh server whose
//! twin `alice` is owned by user alice and holds heart rate data; the
//! grantees get, per route, exactly the grant that route needs (or one that
//! falls short of it), and the expired grantee the needed grant, expired.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use common::{NOON_SECS, TestServer, add_token};
use doppel_auth::{AuthState, NewGrant, Principal, Scopes, Subject, UserName};
use doppel_model::{Timestamp, TwinId};
use doppel_server::AuthConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The kinds of caller, in the matrix's column order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Who {
    Anonymous,
    Owner,
    Grantee,
    GranteeLacking,
    OtherUser,
    ExpiredGrant,
    Admin,
}

const WHO: [Who; 7] = [
    Who::Anonymous,
    Who::Owner,
    Who::Grantee,
    Who::GranteeLacking,
    Who::OtherUser,
    Who::ExpiredGrant,
    Who::Admin,
];

impl Who {
    fn column(self) -> &'static str {
        match self {
            Who::Anonymous => "anonymous",
            Who::Owner => "owner",
            Who::Grantee => "grantee",
            Who::GranteeLacking => "grantee-lacking",
            Who::OtherUser => "other-user",
            Who::ExpiredGrant => "expired-grant",
            Who::Admin => "admin",
        }
    }
}

/// What a cell expects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// This status.
    Status(u16),
    /// 200, and the twin list holds `alice` or not.
    Lists(bool),
}

impl Expect {
    fn show(self) -> String {
        match self {
            Expect::Status(status) => status.to_string(),
            Expect::Lists(true) => "200+alice".to_owned(),
            Expect::Lists(false) => "200-alice".to_owned(),
        }
    }
}

/// A request body.
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    Text(String),
}

/// One route's row: how to call it, what the grantees hold, what each
/// caller gets.
struct Case {
    /// The grant (resource, permissions) the route needs, given to the grantee.
    needed: Option<(&'static str, &'static str)>,
    /// A grant on the twin that falls short, given to the lacking grantee.
    lacking: Option<(&'static str, &'static str)>,
    /// Query string added to the path.
    query: &'static str,
    body: Body,
    /// In `WHO` order.
    expect: [u16; 7],
    /// For the twin list: whether each caller sees `alice` (200).
    lists: Option<[bool; 7]>,
}

const HR_WRITE: Option<(&str, &str)> = Some(("signals:heart_rate", "write"));
const HR_READ: Option<(&str, &str)> = Some(("signals:heart_rate", "read"));

fn line() -> String {
    format!("heart_rate,twin=alice value=61 {}", NOON_SECS + 60)
}

fn point(with_twin: bool) -> Value {
    let mut point = json!({"signal": "heart_rate", "time": NOON_SECS * 1_000_000_000 + 1, "value": 61});
    if with_twin {
        point["twin"] = json!("alice");
    }
    json!([point])
}

/// The expected table, by (method, path template).
fn table() -> BTreeMap<(&'static str, &'static str), Case> {
    let write = |query: &'static str, body: Body, done: u16| Case {
        needed: HR_WRITE,
        lacking: HR_READ,
        query,
        body,
        expect: [401, done, done, 403, 403, 403, done],
        lists: None,
    };
    let mut rows = BTreeMap::new();
    rows.insert(("post", "/api/v2/write"), write("?precision=s", Body::Text(line()), 204));
    rows.insert(("post", "/write"), write("?precision=s", Body::Text(line()), 204));
    rows.insert(("post", "/api/v1/points"), write("", Body::Json(point(true)), 200));
    rows.insert(("post", "/api/v1/twins/{id}/points"), write("", Body::Json(point(false)), 200));
    rows.insert(
        ("get", "/api/v1/twins"),
        Case {
            needed: HR_READ,
            lacking: HR_WRITE,
            query: "",
            body: Body::None,
            expect: [401, 200, 200, 200, 200, 200, 200],
            lists: Some([false, true, true, false, false, false, true]),
        },
    );
    let read_case =
        |needed, lacking, expect| Case { needed, lacking, query: "", body: Body::None, expect, lists: None };
    rows.insert(
        ("get", "/api/v1/twins/{id}"),
        read_case(HR_READ, HR_WRITE, [401, 200, 200, 404, 404, 404, 200]),
    );
    rows.insert(
        ("put", "/api/v1/twins/{id}"),
        Case {
            needed: Some(("twin", "manage")),
            lacking: Some(("twin", "read")),
            query: "",
            body: Body::Json(json!({"properties": {}})),
            expect: [401, 200, 200, 403, 403, 403, 200],
            lists: None,
        },
    );
    rows.insert(
        ("delete", "/api/v1/twins/{id}"),
        read_case(Some(("twin", "manage")), Some(("twin", "read")), [401, 204, 204, 403, 404, 404, 204]),
    );
    rows.insert(
        ("get", "/api/v1/twins/{id}/signals/{signal}"),
        read_case(HR_READ, Some(("signals:glucose", "read")), [401, 200, 200, 403, 404, 404, 200]),
    );
    rows.insert(
        ("get", "/api/v1/twins/{id}/export"),
        read_case(HR_READ, HR_WRITE, [401, 200, 200, 404, 404, 404, 200]),
    );
    rows.insert(
        ("get", "/api/v1/twins/{id}/events"),
        read_case(HR_READ, HR_WRITE, [401, 200, 200, 404, 404, 404, 200]),
    );
    rows.insert(("get", "/api/v1/stream"), read_case(None, None, [401, 101, 101, 101, 101, 101, 101]));
    // Cohort output is open to every caller, over the twins each may read.
    rows.insert(
        ("get", "/api/v1/cohort/export"),
        Case {
            needed: HR_READ,
            lacking: HR_WRITE,
            query: "?signal=heart_rate",
            body: Body::None,
            expect: [401, 200, 200, 200, 200, 200, 200],
            lists: None,
        },
    );
    rows.insert(
        ("post", "/api/v1/cohort/stats"),
        Case {
            needed: HR_READ,
            lacking: HR_WRITE,
            query: "",
            body: Body::Json(json!({"signal": "heart_rate", "statistic": "count", "epsilon": 0.1})),
            expect: [401, 200, 200, 200, 200, 200, 200],
            lists: None,
        },
    );
    rows.insert(("get", "/health"), read_case(None, None, [200; 7]));
    rows.insert(("get", "/api/openapi.json"), read_case(None, None, [200; 7]));
    rows.insert(("get", "/metrics"), read_case(None, None, [401, 403, 403, 403, 403, 403, 200]));
    rows.insert(("post", "/api/v1/admin/flush"), read_case(None, None, [401, 403, 403, 403, 403, 403, 200]));
    rows.insert(
        ("post", "/api/v1/tokens"),
        Case {
            needed: None,
            lacking: None,
            query: "",
            body: Body::Json(json!({"name": "laptop", "user": "bob", "scopes": ["read"]})),
            expect: [401, 403, 403, 403, 403, 403, 201],
            lists: None,
        },
    );
    rows.insert(("get", "/api/v1/tokens"), read_case(None, None, [401, 403, 403, 403, 403, 403, 200]));
    rows.insert(
        ("delete", "/api/v1/tokens/{id}"),
        read_case(None, None, [401, 204, 404, 404, 404, 404, 204]),
    );
    rows.insert(
        ("get", "/api/v1/twins/{id}/grants"),
        read_case(Some(("policy", "read")), HR_READ, [401, 200, 200, 403, 404, 404, 200]),
    );
    rows.insert(
        ("post", "/api/v1/twins/{id}/grants"),
        Case {
            needed: Some(("signals:heart_rate", "read,share")),
            lacking: HR_READ,
            query: "",
            body: Body::Json(
                json!({"subject": "user:nurse2", "resource": "signals:heart_rate", "permissions": ["read"]}),
            ),
            expect: [401, 201, 201, 403, 404, 404, 201],
            lists: None,
        },
    );
    rows.insert(
        ("delete", "/api/v1/twins/{id}/grants/{grant}"),
        read_case(Some(("signals:heart_rate", "share")), HR_READ, [401, 204, 204, 403, 404, 404, 204]),
    );
    // Only the owner and administrators read a twin's audit records: even
    // a grant of the whole twin is not enough.
    rows.insert(
        ("get", "/api/v1/audit"),
        Case {
            needed: Some(("twin", "read")),
            lacking: HR_READ,
            query: "?twin=alice",
            body: Body::None,
            expect: [401, 200, 403, 403, 404, 404, 200],
            lists: None,
        },
    );
    rows
}

fn expected(case: &Case, who: Who) -> Expect {
    let index = WHO.iter().position(|w| *w == who).unwrap_or_default();
    match case.lists {
        Some(lists) if case.expect[index] == 200 => Expect::Lists(lists[index]),
        _ => Expect::Status(case.expect[index]),
    }
}

/// A fresh server for one cell, and what the request needs to know.
struct Cell {
    server: TestServer,
    tokens: BTreeMap<Who, String>,
    grant_to_revoke: u64,
}

fn subject(user: &str) -> Subject {
    Subject::User(UserName::new(user).unwrap())
}

fn grant(
    state: &mut AuthState,
    to: &str,
    (resource, permissions): (&str, &str),
    at: Timestamp,
    expires: Option<Timestamp>,
) -> u64 {
    let owner = Principal::from_jwt(UserName::new("alice").unwrap(), BTreeSet::new(), Scopes::standard());
    let new = NewGrant {
        subject: subject(to),
        resource: resource.parse().unwrap(),
        permissions: permissions.parse().unwrap(),
        expires,
    };
    state.policies.grant(&owner, &TwinId::new("alice").unwrap(), new, at).unwrap().id.0
}

async fn cell(case: &Case) -> Cell {
    const DAY_NANOS: i64 = 86_400_000_000_000;
    let now = Timestamp::now();
    let mut state = AuthState::default();
    let mut tokens = BTreeMap::new();
    for (who, user) in [
        (Who::Owner, "alice"),
        (Who::Grantee, "coach"),
        (Who::GranteeLacking, "casual"),
        (Who::OtherUser, "mallory"),
        (Who::ExpiredGrant, "former"),
    ] {
        tokens.insert(who, add_token(&mut state, user, Scopes::standard()));
    }
    state.policies.claim(&TwinId::new("alice").unwrap(), subject("alice"));
    if let Some(needed) = case.needed {
        grant(&mut state, "coach", needed, now, None);
        let past = now.add_nanos(-2 * DAY_NANOS);
        grant(&mut state, "former", needed, past, Some(past.add_nanos(DAY_NANOS)));
    }
    if let Some(lacking) = case.lacking {
        grant(&mut state, "casual", lacking, now, None);
    }
    let grant_to_revoke = grant(&mut state, "nurse", ("signals:heart_rate", "read"), now, None);
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    server.write_lines(&format!("heart_rate,twin=alice value=60 {NOON_SECS}")).await;
    if let Some(admin) = &server.admin_token {
        tokens.insert(Who::Admin, admin.clone());
    }
    Cell { server, tokens, grant_to_revoke }
}

fn concrete_path(template: &str, cell: &Cell) -> String {
    let owner_token_id = cell.tokens.get(&Who::Owner).map(|t| t[4..16].to_owned()).unwrap_or_default();
    let id = if template.starts_with("/api/v1/tokens/") { owner_token_id } else { "alice".to_owned() };
    template
        .replace("{id}", &id)
        .replace("{signal}", "heart_rate")
        .replace("{grant}", &cell.grant_to_revoke.to_string())
}

async fn ask(method: &str, template: &str, case: &Case, who: Who) -> Expect {
    let cell = cell(case).await;
    let path = format!("{}{}", concrete_path(template, &cell), case.query);
    let token = cell.tokens.get(&who).cloned();
    if template == "/api/v1/stream" {
        return Expect::Status(websocket_status(&cell.server, &path, token.as_deref()).await);
    }
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = cell.server.client.request(method, cell.server.url(&path));
    if let Some(token) = &token {
        request = request.bearer_auth(token);
    }
    request = match &case.body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Text(text) => request.body(text.clone()),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if case.lists.is_some() && status == 200 {
        let page: Value = response.json().await.unwrap();
        let listed = page["twins"].as_array().unwrap().iter().any(|twin| twin["id"] == "alice");
        return Expect::Lists(listed);
    }
    Expect::Status(status)
}

async fn websocket_status(server: &TestServer, path: &str, token: Option<&str>) -> u16 {
    let mut request = format!("ws://{}{path}", server.addr).into_client_request().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("WebSocket handshake failed: {other}"),
    }
}

/// The (method, path) of every operation in the generated document, and
/// whether it names a security requirement.
fn documented_routes() -> Vec<(String, String, bool)> {
    let doc = serde_json::to_value(doppel_server::openapi()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let secured =
                operation.get("security").and_then(Value::as_array).is_some_and(|list| !list.is_empty());
            routes.push((method.clone(), path.clone(), secured));
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_caller_as_the_policy_says() {
    let table = table();
    let mut unclassified = Vec::new();
    let mut report = String::new();
    let mut mismatches = 0;
    let _ = write!(report, "{:<48}", "route");
    for who in WHO {
        let _ = write!(report, " {:>16}", who.column());
    }
    report.push('\n');
    for (method, path, secured) in documented_routes() {
        let Some(case) = table.get(&(method.as_str(), path.as_str())) else {
            unclassified.push(format!("{} {path}", method.to_uppercase()));
            continue;
        };
        let public = case.expect[0] != 401;
        assert_eq!(
            secured, !public,
            "{method} {path}: the document's security requirement disagrees with the table"
        );
        let _ = write!(report, "{:<48}", format!("{} {path}", method.to_uppercase()));
        for who in WHO {
            let want = expected(case, who);
            let got = ask(&method, &path, case, who).await;
            let mark = if got == want { " " } else { "!" };
            if got != want {
                mismatches += 1;
            }
            let _ = write!(report, " {:>16}", format!("{mark}{}/{}", want.show(), got.show()));
        }
        report.push('\n');
    }
    assert!(
        unclassified.is_empty(),
        "routes in the OpenAPI document without a row in the authorization table: {unclassified:?}"
    );
    assert_eq!(mismatches, 0, "authorization matrix (expected/actual, ! = differs):\n{report}");
}
