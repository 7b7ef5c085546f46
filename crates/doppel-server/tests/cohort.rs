//! Cohort output over real HTTP: pseudonymised exports hold only readable
//! twins under per-analyst pseudonyms, and differentially private
//! statistics are charged to a budget that is refused once spent and
//! survives a restart.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{NOON_SECS, TestServer, add_token};
use doppel_auth::{AuthState, NewGrant, Principal, Scopes, Subject, UserName};
use doppel_model::{Timestamp, TwinId};
use doppel_privacy::Epsilon;
use doppel_server::PrivacyConfig;
use serde_json::{Value, json};

const RANGE: &str = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z";

/// Tokens of the analysts, and the auth state that holds them.
struct Analysts {
    state: AuthState,
    ana: String,
    bob: String,
}

fn user(name: &str) -> Subject {
    Subject::User(UserName::new(name).unwrap())
}

fn share(state: &mut AuthState, twin: &str, with: &str, resource: &str) {
    let twin = TwinId::new(twin).unwrap();
    let owner = state.policies.owner(&twin).cloned();
    let Some(Subject::User(owner)) = owner else { panic!("{twin} has no user owner") };
    let by = Principal::from_jwt(owner, BTreeSet::new(), Scopes::standard());
    let new = NewGrant {
        subject: user(with),
        resource: resource.parse().unwrap(),
        permissions: "read".parse().unwrap(),
        expires: None,
    };
    state.policies.grant(&by, &twin, new, Timestamp::now()).unwrap();
}

/// Four twins, each with its own heart rate: ana may read the heart rate
/// of alice and bea, bob that of alice; carl is shared with nobody, and
/// dan shares only glucose with ana.
fn analysts() -> Analysts {
    let mut state = AuthState::default();
    let ana = add_token(&mut state, "ana", Scopes::standard());
    let bob = add_token(&mut state, "bob", Scopes::standard());
    for twin in ["alice", "bea", "carl", "dan"] {
        state.policies.claim(&TwinId::new(twin).unwrap(), user(twin));
    }
    share(&mut state, "alice", "ana", "signals:heart_rate");
    share(&mut state, "alice", "bob", "signals:heart_rate");
    share(&mut state, "bea", "ana", "twin");
    share(&mut state, "dan", "ana", "signals:glucose");
    Analysts { state, ana, bob }
}

/// Heart rate every 10 minutes for two hours: alice 61, bea 72, carl 99,
/// dan 88 (and glucose 101 for dan).
async fn write_cohort(server: &TestServer) {
    let mut lines = String::new();
    for (twin, value) in [("alice", 61), ("bea", 72), ("carl", 99), ("dan", 88)] {
        for step in 0..12 {
            lines.push_str(&format!("heart_rate,twin={twin} value={value} {}\n", NOON_SECS + step * 600));
        }
    }
    lines.push_str(&format!("glucose,twin=dan value=101 {NOON_SECS}\n"));
    server.write_lines(&lines).await;
}

async fn export(server: &TestServer, token: &str, query: &str) -> Vec<(String, String, f64)> {
    let url = server.url(&format!("/api/v1/cohort/export?{query}"));
    let response = server.client.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("pseudonym,time,value"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            (fields[0].to_owned(), fields[1].to_owned(), fields[2].parse().unwrap())
        })
        .collect()
}

/// Each pseudonym of an export with the one value its twin has.
fn pseudonyms(rows: &[(String, String, f64)]) -> BTreeMap<String, f64> {
    let mut by_pseudonym = BTreeMap::new();
    for (pseudonym, _, value) in rows {
        let previous = by_pseudonym.insert(pseudonym.clone(), *value);
        assert!(previous.is_none_or(|previous| previous == *value), "one twin, one value");
    }
    by_pseudonym
}

fn private_config(total: f64) -> PrivacyConfig {
    PrivacyConfig { epsilon_budget: Epsilon::new(total).unwrap(), pseudonym_key_file: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cohort_export_holds_only_readable_twins_under_pseudonyms_that_differ_per_analyst() {
    let analysts = analysts();
    let server = TestServer::start_authenticated(analysts.state.clone(), Default::default()).await;
    write_cohort(&server).await;

    let ana_rows = export(&server, &analysts.ana, &format!("signal=heart_rate&{RANGE}")).await;
    assert_eq!(ana_rows.len(), 24, "alice's and bea's 12 points each: {ana_rows:?}");
    let ana = pseudonyms(&ana_rows);
    let ana_values: BTreeSet<u64> = ana.values().map(|v| *v as u64).collect();
    assert_eq!(ana_values, BTreeSet::from([61, 72]), "carl is not shared, dan shares only glucose");
    // Pseudonyms are 24 hex digits, never the ids (which could be hex too:
    // "bea" is, so a substring test would fail by chance).
    assert!(
        ana.keys().all(|pseudonym| pseudonym.len() == 24 && pseudonym.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    for id in ["alice", "bea", "carl", "dan"] {
        assert!(!ana.contains_key(id));
    }
    assert!(ana_rows.iter().all(|(_, time, _)| time.starts_with("2024-03-01T1")), "{ana_rows:?}");
    let ana_alice = ana.iter().find(|(_, value)| **value == 61.0).map(|(p, _)| p.clone()).unwrap();

    let bob = pseudonyms(&export(&server, &analysts.bob, &format!("signal=heart_rate&{RANGE}")).await);
    assert_eq!(bob.len(), 1);
    let (bob_alice, value) = bob.into_iter().next().unwrap();
    assert_eq!(value, 61.0);
    assert_ne!(bob_alice, ana_alice, "two analysts cannot join their exports on the pseudonym");

    // Stable for one analyst, raw or bucketed.
    let daily = export(&server, &analysts.ana, &format!("signal=heart_rate&{RANGE}&every=1d&agg=mean")).await;
    assert_eq!(daily.len(), 2);
    assert_eq!(pseudonyms(&daily), ana);
    assert!(daily.iter().all(|(_, time, _)| time == "2024-03-01T00:00:00Z"));

    // The administrator reads every twin; anonymous callers nothing.
    let admin = pseudonyms(
        &export(&server, server.admin_token.as_deref().unwrap(), &format!("signal=heart_rate&{RANGE}")).await,
    );
    assert_eq!(admin.len(), 4);
    let anonymous =
        server.client.get(server.url("/api/v1/cohort/export?signal=heart_rate")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let missing = server
        .client
        .get(server.url("/api/v1/cohort/export"))
        .bearer_auth(&analysts.ana)
        .send()
        .await
        .unwrap();
    common::assert_bad_parameter(missing, "signal").await;
}

async fn stats(server: &TestServer, token: &str, body: Value) -> (u16, Value) {
    let response = server
        .client
        .post(server.url("/api/v1/cohort/stats"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn mean_request(epsilon: f64) -> Value {
    json!({
        "signal": "heart_rate", "statistic": "mean", "epsilon": epsilon,
        "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z", "lo": 30, "hi": 200
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_refused_once_the_budget_is_spent_and_the_budget_survives_a_restart() {
    let analysts = analysts();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_private(dir, analysts.state.clone(), private_config(1.0)).await;
    write_cohort(&server).await;
    let before_restart =
        pseudonyms(&export(&server, &analysts.ana, &format!("signal=heart_rate&{RANGE}")).await);

    let (status, answer) = stats(&server, &analysts.ana, mean_request(0.6)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["statistic"], "mean");
    assert_eq!(answer["epsilon_spent"], 0.6);
    assert_eq!(answer["budget"], json!({"total": 1.0, "spent": 0.6, "remaining": 0.4}));
    assert_eq!(answer["unit_of_privacy"], "twin");
    assert_eq!(answer["clamp"], json!([30.0, 200.0]));
    let mean = answer["value"].as_f64().unwrap();
    assert!((30.0..=200.0).contains(&mean), "{answer}");
    assert!(answer["count"].as_f64().is_some_and(|count| count >= 0.0), "{answer}");

    let (status, refusal) = stats(&server, &analysts.ana, mean_request(0.6)).await;
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["type"], "urn:doppel:problem:privacy-budget-exhausted");
    assert_eq!(refusal["budget"], json!({"total": 1.0, "spent": 0.6, "remaining": 0.4, "requested": 0.6}));
    assert!(refusal["detail"].as_str().unwrap().contains("user:ana"), "{refusal}");
    // Another analyst has a budget of its own; a bad request costs nothing.
    assert_eq!(stats(&server, &analysts.bob, mean_request(0.6)).await.0, 200);
    let (status, bad) =
        stats(&server, &analysts.ana, json!({"signal": "heart_rate", "statistic": "median", "epsilon": 0.1}))
            .await;
    assert_eq!(status, 400, "{bad}");

    let dir = server.stop().await;
    let budget_file = std::fs::read_to_string(dir.path().join("privacy/budget.json")).unwrap();
    assert!(budget_file.contains("\"user:ana\":600000"), "{budget_file}");
    let server = TestServer::start_private(dir, analysts.state.clone(), private_config(1.0)).await;
    let (status, refusal) = stats(&server, &analysts.ana, mean_request(0.5)).await;
    assert_eq!(status, 403, "the spent budget came back after the restart: {refusal}");
    assert_eq!(refusal["budget"]["remaining"], 0.4);
    let (status, answer) = stats(&server, &analysts.ana, mean_request(0.4)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["budget"]["remaining"], 0.0);
    assert_eq!(stats(&server, &analysts.ana, mean_request(0.000_001)).await.0, 403);

    let after_restart =
        pseudonyms(&export(&server, &analysts.ana, &format!("signal=heart_rate&{RANGE}")).await);
    assert_eq!(after_restart, before_restart, "pseudonyms are stable across restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_cover_only_readable_twins_and_take_the_clamp_from_the_model() {
    let analysts = analysts();
    let server = TestServer::start_private(
        tempfile::tempdir().unwrap(),
        analysts.state.clone(),
        private_config(100_000.0),
    )
    .await;
    write_cohort(&server).await;
    // With ε = 10,000 the noise is far below rounding: the count is exact.
    let count = json!({"signal": "heart_rate", "statistic": "count", "epsilon": 10_000, "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"});
    let (status, answer) = stats(&server, &analysts.ana, count).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["value"], 2.0, "alice and bea only: {answer}");
    assert_eq!(answer["clamp"], Value::Null);

    let mut mean = mean_request(10_000.0);
    mean["lo"] = Value::Null;
    mean["hi"] = Value::Null;
    mean["model"] = json!("person");
    let (status, answer) = stats(&server, &analysts.ana, mean).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["clamp"], json!([20.0, 250.0]), "the person model's valid heart rate range");
    let value = answer["value"].as_f64().unwrap();
    assert!((value - 66.5).abs() < 0.5, "mean of 61 and 72: {answer}");
    assert_eq!(answer["count"], 2.0);

    let sum = json!({"signal": "heart_rate", "statistic": "sum", "epsilon": 1.0, "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"});
    let (status, refusal) = stats(&server, &analysts.ana, sum).await;
    assert_eq!(status, 400, "a sum without a range has no bounded sensitivity: {refusal}");

    let histogram = json!({"signal": "heart_rate", "statistic": "histogram", "bins": 2, "lo": 50, "hi": 90, "epsilon": 10_000,
                           "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"});
    let (status, answer) = stats(&server, server.admin_token.as_deref().unwrap(), histogram).await;
    assert_eq!(status, 200, "{answer}");
    // 50–70 holds alice (61); 70–90 holds bea (72), dan (88) and carl (99, clamped to 90).
    assert_eq!(
        answer["bins"],
        json!([{"lo": 50.0, "hi": 70.0, "count": 1.0}, {"lo": 70.0, "hi": 90.0, "count": 3.0}])
    );
    assert_eq!(answer["count"], Value::Null, "a histogram withholds the total");
}
