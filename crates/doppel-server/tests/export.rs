//! A twin's export over real HTTP: the archive holds what was written,
//! and only what the caller may read.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read};

use common::{NOON_SECS, TestServer, add_token};
use doppel_auth::{AuthState, NewGrant, Principal, Scopes, Subject, UserName};
use doppel_model::{Timestamp, TwinId};
use doppel_server::AuthConfig;
use serde_json::Value;

/// An archive's members by path.
struct Archive {
    files: BTreeMap<String, String>,
}

impl Archive {
    async fn download(server: &TestServer, token: &str, twin: &str) -> Self {
        let response = server
            .client
            .get(server.url(&format!("/api/v1/twins/{twin}/export")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/zip");
        let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
        assert!(disposition.contains(&format!("doppel-export-{twin}.zip")), "{disposition}");
        let bytes = response.bytes().await.unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).unwrap();
        let mut files = BTreeMap::new();
        for index in 0..zip.len() {
            let mut file = zip.by_index(index).unwrap();
            let name = file.name().unwrap().into_owned();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            files.insert(name, text);
        }
        Archive { files }
    }

    fn json(&self, path: &str) -> Value {
        serde_json::from_str(&self.files[path]).unwrap()
    }

    fn paths(&self) -> BTreeSet<&str> {
        self.files.keys().map(String::as_str).collect()
    }
}

struct Setup {
    server: TestServer,
    owner: String,
    coach: String,
    stranger: String,
}

/// Twin `alice`, owned by alice, with heart rate from two devices and
/// glucose; the coach may read heart rate only.
async fn setup() -> Setup {
    let mut state = AuthState::default();
    let owner = add_token(&mut state, "alice", Scopes::standard());
    let coach = add_token(&mut state, "coach", Scopes::standard());
    let stranger = add_token(&mut state, "mallory", Scopes::standard());
    let alice = TwinId::new("alice").unwrap();
    state.policies.claim(&alice, Subject::User(UserName::new("alice").unwrap()));
    let by = Principal::from_jwt(UserName::new("alice").unwrap(), BTreeSet::new(), Scopes::standard());
    let new = NewGrant {
        subject: "user:coach".parse().unwrap(),
        resource: "signals:heart_rate".parse().unwrap(),
        permissions: "read".parse().unwrap(),
        expires: None,
    };
    state.policies.grant(&by, &alice, new, Timestamp::now()).unwrap();
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let response =
        server.put_json("/api/v1/twins/alice", serde_json::json!({"properties": {"birth_year": 1980}})).await;
    assert_eq!(response.status(), 201);
    let mut lines = String::new();
    // Two days of heart rate from a watch, a ring on the second day, and
    // one glucose reading: more than one slice of history.
    for minute in 0..(2 * 24 * 60) {
        let time = NOON_SECS + minute * 60;
        lines.push_str(&format!("heart_rate,twin=alice,device=watch value={} {time}\n", 50 + minute % 40));
        if minute >= 24 * 60 && minute % 30 == 0 {
            lines
                .push_str(&format!("heart_rate,twin=alice,device=ring value={}.5 {time}\n", 55 + minute % 7));
        }
    }
    lines.push_str(&format!("glucose,twin=alice value=97 {NOON_SECS}\n"));
    server.write_lines(&lines).await;
    // Part of the history in a segment, part in the head.
    server.engine.flush().unwrap();
    server
        .write_lines(&format!("heart_rate,twin=alice,device=watch value=77 {}\n", NOON_SECS + 3 * 86_400))
        .await;
    Setup { server, owner, coach, stranger }
}

/// Every row of a signal CSV as (time, value, provenance).
fn rows(csv: &str) -> Vec<(String, f64, String)> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("time,value,provenance"));
    lines
        .map(|line| {
            let (time, rest) = line.split_once(',').unwrap();
            let (value, provenance) = rest.split_once(',').unwrap();
            (time.to_owned(), value.parse().unwrap(), provenance.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_exports_every_point_written_with_the_model_and_policy() {
    let setup = setup().await;
    let archive = Archive::download(&setup.server, &setup.owner, "alice").await;
    assert_eq!(
        archive.paths(),
        BTreeSet::from([
            "manifest.json",
            "model.json",
            "policy.json",
            "signals/glucose.csv",
            "signals/heart_rate.csv",
            "twin.json"
        ])
    );

    let heart_rate = rows(&archive.files["signals/heart_rate.csv"]);
    let mut expected = Vec::new();
    for minute in 0..(2 * 24 * 60) {
        let time = Timestamp::from_secs(NOON_SECS + minute * 60).to_rfc3339();
        if minute >= 24 * 60 && minute % 30 == 0 {
            expected.push((time.clone(), (55 + minute % 7) as f64 + 0.5, "device=ring".to_owned()));
        }
        expected.push((time, (50 + minute % 40) as f64, "device=watch".to_owned()));
    }
    expected.push((
        Timestamp::from_secs(NOON_SECS + 3 * 86_400).to_rfc3339(),
        77.0,
        "device=watch".to_owned(),
    ));
    assert_eq!(heart_rate.len(), expected.len());
    assert_eq!(heart_rate, expected);
    assert_eq!(
        rows(&archive.files["signals/glucose.csv"]),
        [(Timestamp::from_secs(NOON_SECS).to_rfc3339(), 97.0, String::new())]
    );

    let manifest = archive.json("manifest.json");
    assert_eq!(manifest["format"], "doppel-twin-export");
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["twin"], "alice");
    assert_eq!(manifest["withheld"], serde_json::json!([]));
    let counted: BTreeMap<&str, u64> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|file| Some((file["path"].as_str()?, file["rows"].as_u64()?)))
        .collect();
    assert_eq!(
        counted,
        BTreeMap::from([("signals/glucose.csv", 1), ("signals/heart_rate.csv", expected.len() as u64)])
    );

    let twin = archive.json("twin.json");
    assert_eq!(twin["id"], "alice");
    assert_eq!(twin["model"], "person");
    assert_eq!(twin["properties"]["birth_year"], 1980);
    assert_eq!(archive.json("model.json")["name"], "person");
    let policy = archive.json("policy.json");
    assert_eq!(policy["owner"], "user:alice");
    assert_eq!(policy["grants"][0]["subject"], "user:coach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_exports_only_the_signals_it_may_read() {
    let setup = setup().await;
    let archive = Archive::download(&setup.server, &setup.coach, "alice").await;
    assert_eq!(
        archive.paths(),
        BTreeSet::from(["manifest.json", "model.json", "signals/heart_rate.csv", "twin.json"])
    );
    let everything = Archive::download(&setup.server, &setup.owner, "alice").await;
    assert_eq!(archive.files["signals/heart_rate.csv"], everything.files["signals/heart_rate.csv"]);
    // The model still defines glucose; nothing of Alice's glucose is there.
    for path in ["twin.json", "manifest.json"] {
        assert!(!archive.files[path].contains("glucose"), "{path}: {}", archive.files[path]);
    }
    let twin = archive.json("twin.json");
    assert_eq!(twin["properties"], serde_json::json!({}));
    let live: Vec<&str> =
        twin["signals"].as_array().unwrap().iter().map(|s| s["signal"].as_str().unwrap()).collect();
    assert_eq!(live, ["heart_rate"]);
    let manifest = archive.json("manifest.json");
    let withheld: Vec<&str> =
        manifest["withheld"].as_array().unwrap().iter().map(|item| item["what"].as_str().unwrap()).collect();
    assert_eq!(withheld, ["properties", "policy.json"]);
}

#[tokio::test]
async fn strangers_and_anonymous_callers_get_nothing() {
    let setup = setup().await;
    let url = setup.server.url("/api/v1/twins/alice/export");
    let stranger = setup.server.client.get(&url).bearer_auth(&setup.stranger).send().await.unwrap();
    assert_eq!(stranger.status(), 404);
    assert_eq!(stranger.headers()["content-type"], "application/problem+json");
    let missing = setup
        .server
        .client
        .get(setup.server.url("/api/v1/twins/nobody/export"))
        .bearer_auth(&setup.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(setup.server.client.get(&url).send().await.unwrap().status(), 401);
}
