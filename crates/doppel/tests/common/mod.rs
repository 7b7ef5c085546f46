//! Helpers shared by the end-to-end tests: the real `doppel` binary as a
//! child process that is always killed when its guard drops, free ports,
//! the admin token every test server starts with, and running client
//! commands with a time limit.

#![allow(dead_code, reason = "each test binary uses a different subset of these helpers")]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for this test run.
pub const DOPPEL: &str = env!("CARGO_BIN_EXE_doppel");

/// How long a server may take from spawn to answering `/health`: opening a
/// data directory replays its WAL, which in a debug build on a loaded
/// two-core machine takes seconds once the WAL holds a few hundred
/// thousand points.
pub const STARTUP_TIMEOUT_MS: u64 = 60_000;

/// Pause between `/health` probes while a server starts.
const HEALTH_POLL_MS: u64 = 20;

/// How often a start is retried with a new port when the port picked by
/// [`free_port`] was taken by someone else before the server bound it.
const BIND_ATTEMPTS: usize = 3;

/// Longest a client command (`query`, `import`, ...) may run before the
/// test gives up on it and kills it.
pub const CLI_TIMEOUT_MS: u64 = 60_000;

/// Longest a graceful shutdown (SIGTERM) may take.
const SHUTDOWN_TIMEOUT_MS: u64 = 30_000;

/// Variables of the caller's environment that would change how a server
/// or a client command behaves; every child starts without them.
const DOPPEL_VARIABLES: [&str; 15] = [
    "DOPPEL_URL",
    "DOPPEL_DATA",
    "DOPPEL_LISTEN",
    "DOPPEL_CONFIG",
    "DOPPEL_STRICT",
    "DOPPEL_MODELS",
    "DOPPEL_LOG",
    "DOPPEL_TOKEN",
    "DOPPEL_ADMIN_TOKEN",
    "DOPPEL_NO_AUTH",
    "DOPPEL_INSECURE",
    "DOPPEL_TLS_CERT",
    "DOPPEL_TLS_KEY",
    "DOPPEL_TLS_CLIENT_CA",
    "DOPPEL_TLS_CLIENT_AUTH",
];

/// The admin token every test server is started with (through
/// `DOPPEL_ADMIN_TOKEN`), made once per test binary.
pub fn admin_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let new = doppel_auth::NewToken {
            name: doppel_auth::TokenName::new("test-admin").expect("token name"),
            user: doppel_auth::UserName::new("admin").expect("user name"),
            scopes: doppel_auth::Scopes::Admin,
            expires: None,
        };
        let (secret, _) = doppel_auth::generate(new, doppel_model::Timestamp::now())
            .expect("generate the test admin token");
        secret.expose().to_owned()
    })
}

/// An HTTP client whose requests carry the admin token.
pub fn admin_client(timeout: Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {}", admin_token()).parse().expect("a valid header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder().timeout(timeout).default_headers(headers).build().expect("build HTTP client")
}

/// A port on 127.0.0.1 that nothing listened on a moment ago: bind port
/// 0, read the port the kernel chose, release it.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A running `doppel serve`. Dropping it kills the process (SIGKILL) and
/// reaps it, so a failing test never leaves a server behind.
pub struct Server {
    child: Option<Child>,
    /// Port the server listens on.
    pub port: u16,
    /// Data directory the server was started on.
    pub data: PathBuf,
    /// File receiving the server's stdout and stderr (appended across restarts).
    pub log: PathBuf,
}

impl Server {
    /// Starts `doppel serve --data DATA --listen 127.0.0.1:PORT EXTRA...`
    /// and waits until `/health` answers (200, or 503 for a degraded
    /// store). Panics, with the server's
    /// log, when it exits or does not answer in [`STARTUP_TIMEOUT_MS`].
    pub async fn start(data: &Path, log: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data, log, extra, &[("DOPPEL_ADMIN_TOKEN", admin_token())]).await
    }

    /// Like [`Server::start`] with exactly `env` set (no admin token unless
    /// `env` names one).
    pub async fn start_with_env(data: &Path, log: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut last_failure = String::new();
        for _ in 0..BIND_ATTEMPTS {
            match Self::try_start(data, log, extra, env).await {
                Ok(server) => return server,
                Err(failure) if failure.contains("cannot listen") => last_failure = failure,
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("no free port after {BIND_ATTEMPTS} attempts: {last_failure}")
    }

    async fn try_start(
        data: &Path,
        log: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let port = free_port();
        let out = File::options().create(true).append(true).open(log).expect("open server log");
        let err = out.try_clone().expect("clone server log handle");
        let mut command = Command::new(DOPPEL);
        command
            .arg("serve")
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra);
        for name in DOPPEL_VARIABLES {
            command.env_remove(name);
        }
        let child = command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn doppel serve");
        let mut server = Server { child: Some(child), port, data: data.to_owned(), log: log.to_owned() };
        server.wait_healthy().await.map(|()| server)
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("build HTTP client");
        let deadline = Instant::now() + Duration::from_millis(STARTUP_TIMEOUT_MS);
        let url = self.url("/health");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "doppel serve exited during start-up ({status}); log:\n{}",
                    self.log_tail()
                ));
            }
            // 503 is a server that is up with a damaged store: it serves
            // what it can, and the test reads `/health` to see what is wrong.
            if let Ok(response) = client.get(&url).send().await
                && (response.status() == 200 || response.status() == 503)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "doppel serve did not answer /health within {STARTUP_TIMEOUT_MS} ms; log:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(HEALTH_POLL_MS)).await;
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`, plus `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Kills the server with SIGKILL (what `Child::kill` sends on Unix) and
    /// reaps it: the crash the durability promise has to survive.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit, returning its
    /// status; kills it if it does not exit in time.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        let sent =
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_TIMEOUT_MS);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "doppel serve ignored SIGTERM for {SHUTDOWN_TIMEOUT_MS} ms; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(HEALTH_POLL_MS));
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a finished client command printed.
#[derive(Debug)]
pub struct CliOutput {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `doppel ARGS` to completion (killed after [`CLI_TIMEOUT_MS`]) and
/// returns what it printed. `DOPPEL_*` variables of the caller's
/// environment are removed so they cannot change the outcome.
pub async fn doppel(args: &[&str]) -> CliOutput {
    doppel_with_env(args, &[]).await
}

/// Like [`doppel`], with `env` set.
pub async fn doppel_with_env(args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut command = tokio::process::Command::new(DOPPEL);
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    for name in DOPPEL_VARIABLES {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = tokio::time::timeout(Duration::from_millis(CLI_TIMEOUT_MS), command.output())
        .await
        .unwrap_or_else(|_| panic!("doppel {args:?} ran longer than {CLI_TIMEOUT_MS} ms"))
        .expect("run doppel");
    CliOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
