//! Authentication over real HTTP: the token lifecycle, the bootstrap admin
//! token, JWTs from an identity provider, ownership and sharing, atomic
//! refusal of writes, and the rate limit.

mod common;

use std::collections::BTreeSet;

use common::{DAY_RANGE, NOON_SECS, TestServer, add_token, json_body};
use doppel_auth::{
    AuthState, AuthStore, Bootstrap, JwtAlgorithm, JwtConfig, NewToken, PemKeyConfig, Scopes, TokenName,
    UserName,
};
use doppel_model::Timestamp;
use doppel_server::{Auth, AuthConfig, RateLimit};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../doppel-auth/tests/fixtures").join(name)
}

async fn as_user(server: &TestServer, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    server.client.request(method, server.url(path)).bearer_auth(token)
}

/// Writes one heart rate point of `twin` with `token`, returning the status.
async fn write_as(server: &TestServer, token: &str, lines: &str) -> reqwest::Response {
    as_user(server, token, Method::POST, "/api/v2/write?precision=s")
        .await
        .body(lines.to_owned())
        .send()
        .await
        .unwrap()
}

async fn status_as(server: &TestServer, token: &str, path: &str) -> u16 {
    as_user(server, token, Method::GET, path).await.send().await.unwrap().status().as_u16()
}

// ------------------------------------------------------------ API tokens

#[tokio::test]
async fn a_token_is_shown_once_listed_without_its_secret_and_refused_once_revoked() {
    let server = TestServer::start_authenticated(AuthState::default(), AuthConfig::default()).await;
    let response = server
        .request(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "alice-phone", "user": "alice", "scopes": ["read", "write"], "ttl": "30d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created = json_body(response, "application/json").await;
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("dpl_{id}_")), "{created}");
    assert_eq!(created["scopes"], json!(["read", "write"]));
    assert_eq!(created["status"], "active");
    assert!(created["expires"].is_string());

    assert_eq!(
        write_as(&server, &token, &format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await.status(),
        204
    );
    assert_eq!(status_as(&server, &token, "/api/v1/twins/alice").await, 200);

    let secret = &token[17..];
    let listing = server.get("/api/v1/tokens").await.text().await.unwrap();
    assert!(listing.contains(&id) && !listing.contains(secret) && !listing.contains("sha256"), "{listing}");
    // A new token is a record of the auth log until the log is folded
    // into the snapshot: neither holds its secret.
    let stored: String = ["auth/state.json", "auth/state.log"]
        .map(|file| {
            String::from_utf8_lossy(&std::fs::read(server.data_dir().join(file)).unwrap()).into_owned()
        })
        .concat();
    assert!(stored.contains(&id) && !stored.contains(secret), "{stored}");

    assert_eq!(server.delete(&format!("/api/v1/tokens/{id}")).await.status(), 204);
    let refused = as_user(&server, &token, Method::GET, "/api/v1/twins/alice").await.send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer") && challenge.contains("invalid_token"), "{challenge}");
    let problem = json_body(refused, "application/problem+json").await;
    assert!(!problem["detail"].as_str().unwrap().contains("revoked"), "the reason is not told: {problem}");
    let listing: Value = server.get("/api/v1/tokens").await.json().await.unwrap();
    let record =
        listing["tokens"].as_array().unwrap().iter().find(|t| t["id"] == id.as_str()).unwrap().clone();
    assert_eq!(record["status"], "revoked");
}

#[tokio::test]
async fn a_user_may_revoke_its_own_token_but_not_anothers() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let alice_laptop = add_token(&mut state, "alice", Scopes::standard());
    let bob = add_token(&mut state, "bob", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let revoke = |token: &str, id: &str| {
        server.client.delete(server.url(&format!("/api/v1/tokens/{id}"))).bearer_auth(token.to_owned()).send()
    };
    assert_eq!(revoke(&bob, &alice_laptop[4..16]).await.unwrap().status(), 404);
    assert_eq!(revoke(&alice, &alice_laptop[4..16]).await.unwrap().status(), 204);
    assert_eq!(status_as(&server, &alice_laptop, "/api/v1/twins").await, 401);
    assert_eq!(status_as(&server, &alice, "/api/v1/twins").await, 200);
}

#[tokio::test]
async fn bad_token_requests_are_refused_with_the_field_named() {
    let server = TestServer::start_authenticated(AuthState::default(), AuthConfig::default()).await;
    for (body, needle) in [
        (json!({"name": "x", "user": "bob", "scopes": ["sudo"]}), "sudo"),
        (json!({"name": "x", "user": "bob", "scopes": []}), "scopes"),
        (json!({"name": "x", "user": "bob", "scopes": ["admin"], "twins": ["a"]}), "admin"),
        (
            json!({"name": "x", "user": "bob", "scopes": ["read"], "ttl": "1d", "expires": "2030-01-01T00:00:00Z"}),
            "not both",
        ),
        (
            json!({"name": "x", "user": "bob", "scopes": ["read"], "expires": "2001-01-01T00:00:00Z"}),
            "expiry",
        ),
    ] {
        let response = server.request(Method::POST, "/api/v1/tokens").json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let problem = json_body(response, "application/problem+json").await;
        assert!(problem["detail"].as_str().unwrap().contains(needle), "{problem}");
    }
}

#[tokio::test]
async fn only_an_administrator_may_flush_the_head() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let admin = add_token(&mut state, "ops", Scopes::Admin);
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let flush = |token: String| {
        let request =
            server.client.request(Method::POST, server.url("/api/v1/admin/flush")).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(flush(alice).await, 403);
    assert_eq!(flush(admin).await, 200);
}

// ------------------------------------------------------------ bootstrap

#[tokio::test]
async fn first_start_generates_an_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = AuthStore::new(dir.path().join("auth"));
    let (auth, bootstrap) =
        Auth::open(store.clone(), &AuthConfig::default(), None, Timestamp::now()).unwrap();
    let Bootstrap::Generated(secret) = bootstrap else {
        panic!("expected a generated token, got {bootstrap:?}")
    };
    let (_, again) = Auth::open(store, &AuthConfig::default(), None, Timestamp::now()).unwrap();
    assert!(matches!(again, Bootstrap::NotNeeded), "{again:?}");
    let server = TestServer::start_with_auth(dir, auth).await;
    assert_eq!(status_as(&server, secret.expose(), "/metrics").await, 200);
}

#[tokio::test]
async fn the_environment_admin_token_is_kept_as_a_hash_and_admits_its_holder() {
    let now = Timestamp::now();
    let text = doppel_auth::generate(
        NewToken {
            name: TokenName::new("ops").unwrap(),
            user: UserName::new("ops").unwrap(),
            scopes: Scopes::Admin,
            expires: None,
        },
        now,
    )
    .unwrap()
    .0;
    let dir = tempfile::tempdir().unwrap();
    let store = AuthStore::new(dir.path().join("auth"));
    let (auth, bootstrap) =
        Auth::open(store.clone(), &AuthConfig::default(), Some(text.expose()), now).unwrap();
    assert!(matches!(bootstrap, Bootstrap::FromEnvironment(_)), "{bootstrap:?}");
    let stored = std::fs::read_to_string(store.path()).unwrap();
    assert!(!stored.contains(&text.expose()[17..]), "{stored}");
    let server = TestServer::start_with_auth(dir, auth).await;
    assert_eq!(status_as(&server, text.expose(), "/metrics").await, 200);
}

#[tokio::test]
async fn disabled_authentication_makes_no_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuthConfig { enabled: false, ..AuthConfig::default() };
    let (_, bootstrap) = Auth::open(AuthStore::new(dir.path()), &config, None, Timestamp::now()).unwrap();
    assert!(matches!(bootstrap, Bootstrap::NotNeeded));
    assert!(!dir.path().join("state.json").exists());
}

#[tokio::test]
async fn a_start_refused_for_its_jwt_settings_makes_no_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut jwt = JwtConfig::new("https://id.example.org", "doppel");
    jwt.pem_keys.push(PemKeyConfig {
        path: dir.path().join("missing.pem"),
        algorithm: JwtAlgorithm::RS256,
        kid: None,
    });
    let config = AuthConfig { jwt: Some(jwt), ..AuthConfig::default() };
    let error = Auth::open(AuthStore::new(dir.path()), &config, None, Timestamp::now()).unwrap_err();
    assert!(error.to_string().contains("missing.pem"), "{error}");
    assert!(!dir.path().join("state.json").exists(), "a token nobody was shown must not be saved");
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), "{\"version\": 1, \"tokens\": [").unwrap();
    let error =
        Auth::open(AuthStore::new(dir.path()), &AuthConfig::default(), None, Timestamp::now()).unwrap_err();
    assert!(error.to_string().contains("state.json"), "{error}");
}

// ------------------------------------------------------------ JWTs

fn jwt(private_key: &str, subject: &str) -> String {
    let now = Timestamp::now().as_nanos() / 1_000_000_000;
    let claims = json!({"iss": "https://id.example.org", "aud": "doppel", "sub": subject, "exp": now + 300, "iat": now});
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixture(private_key)).unwrap()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn a_jwt_from_the_configured_provider_is_a_user_that_owns_what_it_creates() {
    let mut jwt_config = JwtConfig::new("https://id.example.org", "doppel");
    jwt_config.pem_keys.push(PemKeyConfig {
        path: fixture("rsa-public.pem"),
        algorithm: JwtAlgorithm::RS256,
        kid: None,
    });
    let config = AuthConfig { jwt: Some(jwt_config), ..AuthConfig::default() };
    let server = TestServer::start_authenticated(AuthState::default(), config).await;
    let carol = jwt("rsa-private.pem", "carol");
    assert_eq!(
        write_as(&server, &carol, &format!("heart_rate,twin=carol value=58 {NOON_SECS}")).await.status(),
        204
    );
    assert_eq!(
        status_as(&server, &carol, &format!("/api/v1/twins/carol/signals/heart_rate?{DAY_RANGE}")).await,
        200
    );
    let grants: Value = as_user(&server, &carol, Method::GET, "/api/v1/twins/carol/grants")
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(grants["owner"], "user:carol");
    assert_eq!(status_as(&server, &jwt("rsa-private.pem", "dave"), "/api/v1/twins/carol").await, 404);
    assert_eq!(status_as(&server, &jwt("rsa-other-private.pem", "carol"), "/api/v1/twins/carol").await, 401);
    // InfluxDB clients send the same credential with the `Token` scheme.
    let response = server
        .client
        .post(server.url("/api/v2/write?precision=s"))
        .header("authorization", format!("Token {carol}"))
        .body(format!("heart_rate,twin=carol value=59 {}", NOON_SECS + 60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

// ------------------------------------------------------------ ownership and sharing

#[tokio::test]
async fn an_owner_shares_heart_rate_with_a_coach_for_ninety_days_and_revokes_it() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let coach = add_token(&mut state, "coach", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let lines =
        format!("heart_rate,twin=alice value=62 {NOON_SECS}\nglucose,twin=alice value=104 {NOON_SECS}");
    assert_eq!(write_as(&server, &alice, &lines).await.status(), 204);
    let heart_rate = format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}");
    let glucose = format!("/api/v1/twins/alice/signals/glucose?{DAY_RANGE}");
    assert_eq!(status_as(&server, &coach, &heart_rate).await, 404);

    let response = as_user(&server, &alice, Method::POST, "/api/v1/twins/alice/grants")
        .await
        .json(&json!({"subject": "user:coach", "resource": "signals:heart_rate", "permissions": ["read"], "ttl": "90d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let grant = json_body(response, "application/json").await;
    assert_eq!(grant["granted_by"], "user:alice");
    assert!(grant["expires"].is_string());

    assert_eq!(status_as(&server, &coach, &heart_rate).await, 200);
    assert_eq!(status_as(&server, &coach, &glucose).await, 403);
    let view: Value = as_user(&server, &coach, Method::GET, "/api/v1/twins/alice")
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signals: Vec<&str> =
        view["signals"].as_array().unwrap().iter().filter_map(|s| s["signal"].as_str()).collect();
    assert_eq!(signals, ["heart_rate"]);
    assert_eq!(view["properties"], json!({}));
    let page: Value = as_user(&server, &coach, Method::GET, "/api/v1/twins")
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["twins"][0]["id"], "alice");

    let path = format!("/api/v1/twins/alice/grants/{}", grant["id"]);
    let revoked = as_user(&server, &alice, Method::DELETE, &path).await.send().await.unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(status_as(&server, &coach, &heart_rate).await, 404);
}

#[tokio::test]
async fn revoking_a_grant_revokes_the_grants_made_under_it_persistently() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let eve = add_token(&mut state, "eve", Scopes::standard());
    let bob = add_token(&mut state, "bob", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    assert_eq!(
        write_as(&server, &alice, &format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await.status(),
        204
    );
    let share = |token: &str, body: Value| {
        let request =
            server.client.post(server.url("/api/v1/twins/alice/grants")).bearer_auth(token.to_owned());
        async move { request.json(&body).send().await.unwrap() }
    };
    let to_eve =
        share(&alice, json!({"subject": "user:eve", "resource": "twin", "permissions": ["read", "share"]}))
            .await;
    assert_eq!(to_eve.status(), 201);
    let to_eve = json_body(to_eve, "application/json").await;
    let to_bob =
        share(&eve, json!({"subject": "user:bob", "resource": "twin", "permissions": ["read"]})).await;
    assert_eq!(to_bob.status(), 201);
    let to_bob = json_body(to_bob, "application/json").await;
    assert_eq!(to_bob["derived_from"], json!([to_eve["id"]]), "{to_bob}");
    assert_eq!(to_eve["derived_from"], json!([]), "{to_eve}");
    assert_eq!(status_as(&server, &bob, "/api/v1/twins/alice").await, 200);

    let path = format!("/api/v1/twins/alice/grants/{}", to_eve["id"]);
    assert_eq!(as_user(&server, &alice, Method::DELETE, &path).await.send().await.unwrap().status(), 204);
    assert_eq!(status_as(&server, &eve, "/api/v1/twins/alice").await, 404);
    assert_eq!(status_as(&server, &bob, "/api/v1/twins/alice").await, 404, "the derived grant went too");
    let listing: Value = as_user(&server, &alice, Method::GET, "/api/v1/twins/alice/grants")
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing["grants"], json!([]), "{listing}");
    let stored = AuthStore::new(server.data_dir().join("auth")).load().unwrap().state;
    assert_eq!(stored.policies.grants(&doppel_model::TwinId::new("alice").unwrap()).count(), 0);

    let audit: Value = server.get("/api/v1/audit?twin=alice").await.json().await.unwrap();
    let unshare = audit["records"].as_array().unwrap().iter().find(|r| r["action"] == "unshare").unwrap();
    let detail = unshare["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("derived from it: {}", to_bob["id"])), "{detail}");
}

#[tokio::test]
async fn a_batch_touching_a_forbidden_twin_is_refused_whole_naming_it() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let bob = add_token(&mut state, "bob", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    assert_eq!(
        write_as(&server, &alice, &format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await.status(),
        204
    );

    let mixed =
        format!("heart_rate,twin=bob value=70 {NOON_SECS}\nheart_rate,twin=alice value=99 {NOON_SECS}");
    let response = write_as(&server, &bob, &mixed).await;
    assert_eq!(response.status(), 403);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "forbidden");
    // Bob may see nothing of alice: the refusal names the twin only, as
    // for an id he could not create.
    assert!(answer["message"].as_str().unwrap().contains("may not write twin alice"), "{answer}");

    let points = json!([{"twin": "bob", "signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 70},
                        {"twin": "alice", "signal": "heart_rate", "time": "2024-03-01T12:00:00Z", "value": 99}]);
    let response =
        as_user(&server, &bob, Method::POST, "/api/v1/points").await.json(&points).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["refused"], json!([{"twin": "alice", "signals": []}]));

    assert_eq!(
        status_as(&server, &bob, "/api/v1/twins/bob").await,
        404,
        "nothing of the refused batch was written"
    );
    let read: Value = server
        .get(&format!("/api/v1/twins/alice/signals/heart_rate?{DAY_RANGE}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["points"], json!([{"time": "2024-03-01T12:00:00Z", "value": 62}]));
}

#[tokio::test]
async fn a_token_limited_to_one_twin_cannot_create_another() {
    let mut state = AuthState::default();
    let scopes = Scopes::new(
        [doppel_auth::Scope::Write],
        Some(BTreeSet::from([doppel_model::TwinId::new("alice").unwrap()])),
    )
    .unwrap();
    let phone = add_token(&mut state, "alice", scopes);
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    assert_eq!(
        write_as(&server, &phone, &format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await.status(),
        204
    );
    assert_eq!(
        write_as(&server, &phone, &format!("heart_rate,twin=other value=62 {NOON_SECS}")).await.status(),
        403
    );
    assert_eq!(
        status_as(&server, &phone, "/api/v1/twins/alice").await,
        404,
        "a write-only token reads nothing"
    );
}

#[tokio::test]
async fn an_admin_assigns_a_twin_to_its_person() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    let response = server.put_json("/api/v1/twins/alice", json!({"owner": "user:alice"})).await;
    assert_eq!(response.status(), 201);
    assert_eq!(status_as(&server, &alice, "/api/v1/twins/alice").await, 200);
    let response = as_user(&server, &alice, Method::PUT, "/api/v1/twins/alice")
        .await
        .json(&json!({"owner": "user:mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "only administrators name owners");
}

// ------------------------------------------------------------ rate limit

#[tokio::test]
async fn a_client_past_its_rate_limit_is_answered_429_with_retry_after() {
    let mut state = AuthState::default();
    let other = add_token(&mut state, "bob", Scopes::standard());
    let config = AuthConfig { rate_limit: RateLimit::new(0.001, 2), ..AuthConfig::default() };
    let server = TestServer::start_authenticated(state, config).await;
    assert_eq!(server.get("/health").await.status(), 200);
    assert_eq!(server.get("/health").await.status(), 200);
    let limited = server.get("/health").await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let problem = json_body(limited, "application/problem+json").await;
    assert_eq!(problem["type"], "urn:doppel:problem:rate-limited");
    assert_eq!(status_as(&server, &other, "/health").await, 200, "another token has its own bucket");

    let anonymous = || server.client.get(server.url("/health")).send();
    assert_eq!(anonymous().await.unwrap().status(), 200);
    assert_eq!(anonymous().await.unwrap().status(), 200);
    assert_eq!(anonymous().await.unwrap().status(), 429, "anonymous callers are limited by address");
}

#[tokio::test]
async fn streams_without_a_credential_are_refused_before_anything_else() {
    let server = TestServer::start_authenticated(AuthState::default(), AuthConfig::default()).await;
    for path in ["/api/v1/stream", "/api/v1/twins/alice/events"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert!(response.headers().contains_key("www-authenticate"), "{path}");
    }
    let plain = server.get("/api/v1/stream").await;
    assert_eq!(plain.status(), 400, "an authenticated request that is no WebSocket upgrade says so");
}

// ------------------------------------------------------------ duplicates

#[tokio::test]
async fn duplicated_tags_keys_and_credentials_are_refused_naming_them() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;

    let lines = format!(
        "heart_rate,twin=alice value=60 {NOON_SECS}\nheart_rate,twin=alice,twin=bob value=61 {NOON_SECS}"
    );
    let response = write_as(&server, &alice, &lines).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let text = body.to_string();
    assert!(text.contains("duplicate tag \\\"twin\\\"") && text.contains("line 2"), "{text}");
    let lines = format!("heart_rate,twin=alice,device=a,device=b value=61 {NOON_SECS}");
    let text = write_as(&server, &alice, &lines).await.text().await.unwrap();
    assert!(text.contains("duplicate tag \\\"device\\\""), "{text}");

    let points = r#"[{"twin": "alice", "signal": "heart_rate", "time": 0, "value": 1, "twin": "bob"}]"#;
    let response =
        as_user(&server, &alice, Method::POST, "/api/v1/points").await.body(points).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    let text = problem.to_string();
    assert!(text.contains("duplicate key \\\"twin\\\"") && text.contains("line 1"), "{problem}");

    let put = r#"{"properties": {"birth_year": 1980, "birth_year": 1990}}"#;
    let response =
        as_user(&server, &alice, Method::PUT, "/api/v1/twins/alice").await.body(put).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    assert!(problem["detail"].as_str().unwrap().contains("duplicate key \"birth_year\""), "{problem}");
    assert_eq!(status_as(&server, &alice, "/api/v1/twins/alice").await, 404, "nothing was created");

    let admin = server.admin_token.clone().unwrap();
    let response = server
        .client
        .get(server.url("/api/v1/twins"))
        .header("authorization", format!("Bearer {alice}"))
        .header("authorization", format!("Bearer {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["parameter"], "Authorization", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("2 times"), "{problem}");
}

// ------------------------------------------------------------ oracles

#[tokio::test]
async fn every_authentication_failure_reads_the_same() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let revoked = add_token(&mut state, "bob", Scopes::standard());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    assert_eq!(server.delete(&format!("/api/v1/tokens/{}", &revoked[4..16])).await.status(), 204);
    let wrong_secret = format!("{}{}", &alice[..17], "A".repeat(alice.len() - 17));
    let unknown_id = format!("dpl_zzzzzzzz2345{}", &alice[16..]);
    let mut bodies = Vec::new();
    for credential in [wrong_secret.as_str(), unknown_id.as_str(), revoked.as_str(), "not-a-credential"] {
        let response = as_user(&server, credential, Method::GET, "/api/v1/twins").await.send().await.unwrap();
        assert_eq!(response.status(), 401, "{credential}");
        let problem = json_body(response, "application/problem+json").await;
        bodies.push(problem);
    }
    let anonymous = server.client.get(server.url("/api/v1/twins")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    bodies.push(json_body(anonymous, "application/problem+json").await);
    assert!(bodies.iter().all(|body| *body == bodies[0]), "{bodies:#?}");
    let detail = bodies[0]["detail"].as_str().unwrap();
    for hint in ["unknown", "does not match", "revoked", "zzzzzzzz2345"] {
        assert!(!detail.contains(hint), "{detail}");
    }
}

#[tokio::test]
async fn a_twin_one_may_not_see_answers_like_an_id_one_may_not_use() {
    let mut state = AuthState::default();
    let alice = add_token(&mut state, "alice", Scopes::standard());
    let bob = add_token(&mut state, "bob", Scopes::standard());
    let bob_reader = add_token(&mut state, "bob", Scopes::new([doppel_auth::Scope::Read], None).unwrap());
    let server = TestServer::start_authenticated(state, AuthConfig::default()).await;
    assert_eq!(
        write_as(&server, &alice, &format!("heart_rate,twin=alice value=62 {NOON_SECS}")).await.status(),
        204
    );

    // Reading: the same 404 and body shape for the hidden twin and an absent one.
    let get = |token: &str, twin: &str| {
        let request =
            server.client.get(server.url(&format!("/api/v1/twins/{twin}"))).bearer_auth(token.to_owned());
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (hidden, absent) = (get(&bob, "alice").await, get(&bob, "nobody").await);
    assert_eq!((hidden.0, absent.0), (404, 404));
    assert_eq!(hidden.1["type"], absent.1["type"]);
    assert_eq!(
        hidden.1["detail"].as_str().unwrap().replace("alice", "X"),
        absent.1["detail"].as_str().unwrap().replace("nobody", "X")
    );

    // Changing: PUT and writes of the hidden twin answer exactly as those of
    // an id the caller may not create; a creator's refusal says no more.
    let put = |token: &str, twin: &str| {
        let request = server
            .client
            .put(server.url(&format!("/api/v1/twins/{twin}")))
            .bearer_auth(token.to_owned())
            .json(&json!({"properties": {}}));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let unify = |body: &Value, twin: &str| body.to_string().replace(twin, "X");
    let hidden = put(&bob_reader, "alice").await;
    let uncreatable = put(&bob_reader, "nobody").await;
    assert_eq!((hidden.0, uncreatable.0), (403, 403));
    assert_eq!(unify(&hidden.1, "alice"), unify(&uncreatable.1, "nobody"));
    let taken = put(&bob, "alice").await;
    assert_eq!(taken.0, 403);
    assert_eq!(
        unify(&taken.1, "alice").replace(&bob[4..16], "T"),
        unify(&hidden.1, "alice").replace(&bob_reader[4..16], "T")
    );

    let write = |token: &str, twin: &str| {
        let request = server.client.post(server.url("/api/v1/points")).bearer_auth(token.to_owned());
        let body = json!([{"twin": twin, "signal": "heart_rate", "time": 0, "value": 1}]);
        async move {
            let response = request.json(&body).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let hidden = write(&bob_reader, "alice").await;
    let uncreatable = write(&bob_reader, "nobody").await;
    assert_eq!((hidden.0, uncreatable.0), (403, 403));
    assert_eq!(unify(&hidden.1, "alice"), unify(&uncreatable.1, "nobody"));
    assert_eq!(write(&bob, "alice").await.1["refused"], json!([{"twin": "alice", "signals": []}]));
}
