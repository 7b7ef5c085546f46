//! A real server on 127.0.0.1:0 over a fresh engine in its own tempdir,
//! for the integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset of these helpers")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use doppel_audit::{AuditLog, AuditOptions};
use doppel_auth::{AuthState, AuthStore, NewToken, Scopes, TokenName, UserName};
use doppel_engine::{Engine, EngineConfig};
use doppel_model::Timestamp;
use doppel_server::{Auth, AuthConfig, Privacy, PrivacyConfig, ServerConfig, serve_listener};
use doppel_store::StoreConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// 2024-03-01T12:00:00Z in seconds, the time most test points use.
pub const NOON_SECS: i64 = 1_709_294_400;

/// Covers the whole day of 2024-03-01.
pub const DAY_RANGE: &str = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z";

pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub engine: Arc<Engine>,
    /// Sent with the helper requests (`get`, `post`, ...) when set.
    pub admin_token: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), doppel_server::ServerError>>>,
    dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default(), |_| {}).await
    }

    pub async fn start_with(config: ServerConfig, tune: impl FnOnce(&mut EngineConfig)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), config, tune).await
    }

    /// A server with authentication on: `state` is saved in its data
    /// directory's `auth/` first, an admin token is added to it, and the
    /// helper requests send that token.
    pub async fn start_authenticated(state: AuthState, auth: AuthConfig) -> Self {
        Self::start_authenticated_with(state, auth, ServerConfig::default()).await
    }

    /// Like [`TestServer::start_authenticated`], with the other settings
    /// (an audit log, limits) from `config`.
    pub async fn start_authenticated_with(state: AuthState, auth: AuthConfig, config: ServerConfig) -> Self {
        Self::start_authenticated_in(tempfile::tempdir().unwrap(), state, auth, config).await
    }

    /// [`start_authenticated`](Self::start_authenticated) in `dir` with the
    /// pseudonym secret and privacy budgets kept in `dir/privacy`, so that
    /// a server started again in the same directory finds them.
    pub async fn start_private(dir: tempfile::TempDir, state: AuthState, privacy: PrivacyConfig) -> Self {
        let privacy = Privacy::open(&dir.path().join("privacy"), &privacy).unwrap();
        let config = ServerConfig { privacy, ..ServerConfig::default() };
        Self::start_authenticated_in(dir, state, AuthConfig::default(), config).await
    }

    async fn start_authenticated_in(
        dir: tempfile::TempDir,
        mut state: AuthState,
        auth: AuthConfig,
        config: ServerConfig,
    ) -> Self {
        let admin = add_token(&mut state, "admin", Scopes::Admin);
        let store = AuthStore::new(dir.path().join("auth"));
        store.save(&state).unwrap();
        let (auth, _) = Auth::open(store, &auth, None, Timestamp::now()).unwrap();
        let mut server = Self::start_in(dir, ServerConfig { auth, ..config }, |_| {}).await;
        server.admin_token = Some(admin);
        server
    }

    /// A server with authentication and encryption at rest on, in `dir`
    /// (fresh, or left by an earlier server with the same keyring): the
    /// store and the auth state are sealed under `keyring`, and
    /// `admin_token` (a token text, registered on the first start) is sent
    /// with the helper requests.
    pub async fn start_sealed(
        dir: tempfile::TempDir,
        keyring: Arc<doppel_crypto::Keyring>,
        admin_token: &str,
        tune: impl FnOnce(&mut EngineConfig),
    ) -> Self {
        let auth_key = keyring.get_or_create(doppel_crypto::AUTH_KEY).unwrap();
        let store = AuthStore::new(dir.path().join("auth")).sealed(auth_key);
        let config = AuthConfig { rate_limit: None, ..AuthConfig::default() };
        let (auth, _) = Auth::open(store, &config, Some(admin_token), Timestamp::now()).unwrap();
        let sealing = Arc::new(doppel_store::Sealing::new(keyring).unwrap());
        let config = ServerConfig { auth, ..ServerConfig::default() };
        let mut server = Self::start_in(dir, config, |engine| {
            engine.store.sealing = Some(sealing);
            tune(engine);
        })
        .await;
        server.admin_token = Some(admin_token.to_owned());
        server
    }

    /// A server in `dir` (whose `auth/` the caller may have prepared) with
    /// `auth`.
    pub async fn start_with_auth(dir: tempfile::TempDir, auth: Auth) -> Self {
        Self::start_in(dir, ServerConfig { auth, ..ServerConfig::default() }, |_| {}).await
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts the server; unless `config` brings an audit log, one is
    /// opened in the data directory's `audit/`, so that every test runs
    /// with requests being recorded.
    async fn start_in(
        dir: tempfile::TempDir,
        mut config: ServerConfig,
        tune: impl FnOnce(&mut EngineConfig),
    ) -> Self {
        if config.audit.is_none() {
            let log = AuditLog::open(&dir.path().join("audit"), None, AuditOptions::default()).unwrap();
            config.audit = Some(log);
        }
        let mut store = StoreConfig::new(dir.path());
        store.background = false;
        let mut engine_config = EngineConfig::new(store);
        tune(&mut engine_config);
        let engine = Arc::new(Engine::open(engine_config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, receiver) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_listener(listener, engine.clone(), config, async move {
            let _ = receiver.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Self { addr, client, engine, admin_token: None, shutdown: Some(sender), task: Some(task), dir }
    }

    /// A request with the admin token, when the server has one.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match &self.admin_token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.request(reqwest::Method::POST, path).body(body).send().await.unwrap()
    }

    pub async fn put_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.request(reqwest::Method::PUT, path).json(&body).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path).send().await.unwrap()
    }

    /// Writes line protocol through the Influx v2 route, asserting 204.
    pub async fn write_lines(&self, lines: &str) {
        let response = self.post("/api/v2/write?precision=s", lines.to_owned()).await;
        let status = response.status();
        assert_eq!(status, 204, "write failed: {}", response.text().await.unwrap());
    }

    /// Asks the server to shut down and waits until `serve` returns.
    pub async fn shutdown(mut self) {
        self.stop_serving().await;
    }

    /// Shuts the server down and closes its engine, handing back the data
    /// directory for a server started again in it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.stop_serving().await;
        self.dir
    }

    async fn stop_serving(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("graceful shutdown finished in time")
                .unwrap()
                .unwrap();
        }
    }
}

/// The body as JSON, asserting the content type starts with `content_type`.
pub async fn json_body(response: reqwest::Response, content_type: &str) -> serde_json::Value {
    let actual =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(actual.starts_with(content_type), "content type {actual:?}, expected {content_type:?}");
    response.json().await.unwrap()
}

/// Asserts a problem+json answer with this status naming this parameter.
pub async fn assert_bad_parameter(response: reqwest::Response, parameter: &str) {
    assert_eq!(response.status(), 400);
    let problem = json_body(response, "application/problem+json").await;
    assert_eq!(problem["status"], 400, "{problem}");
    assert_eq!(problem["parameter"], parameter, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains(parameter), "{problem}");
}

/// Adds an API token for `user` with `scopes` to `state`, returning its text.
pub fn add_token(state: &mut AuthState, user: &str, scopes: Scopes) -> String {
    let new = NewToken {
        name: TokenName::new(&format!("{user}-test")).unwrap(),
        user: UserName::new(user).unwrap(),
        scopes,
        expires: None,
    };
    state.tokens.create(new, Timestamp::now()).unwrap().0.expose().to_owned()
}
