//! `doppel serve`: open the engine, the authentication state and the audit
//! log, report what recovery found, serve until Ctrl-C or SIGTERM, then
//! flush the store's head to a segment (so the WAL is empty and the next
//! start replays nothing) and close the audit log so its last records are
//! durable.

use std::sync::Arc;

use anyhow::Context;
use doppel_auth::{AuthStore, Bootstrap};
use doppel_crypto::{AUDIT_KEY, AUTH_KEY, Keyring, PRIVACY_KEY};
use doppel_engine::{Engine, EngineConfig};
use doppel_model::{ModelRegistry, Timestamp};
use doppel_server::{Auth, Privacy, ServerConfig};
use doppel_store::{DEFAULT_HEAD_LIMIT_FLUSHES, Sealing, StoreConfig};

use crate::cli::ServeArgs;
use crate::config::Settings;
use crate::encryption::{EncryptionSettings, reserved_key, rotate_if_changed};

/// The variable holding an admin token to register at start.
pub const ADMIN_TOKEN_VARIABLE: &str = "DOPPEL_ADMIN_TOKEN";
/// Where in the data directory the tokens and policies live.
const AUTH_DIR: &str = "auth";
/// Where in the data directory the pseudonym secret and privacy budgets live.
const PRIVACY_DIR: &str = "privacy";

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    settings.check_exposure()?;
    let keyring = open_keyring(&settings).await?;
    let engine = open_engine(&settings, keyring.as_ref()).await?;
    let admin_token = std::env::var(ADMIN_TOKEN_VARIABLE).ok();
    let (auth, bootstrap) = open_auth(&settings, keyring.as_ref(), admin_token.as_deref()).await?;
    match (&settings.encryption, &keyring) {
        (Some(encryption), Some(keyring)) => {
            tracing::info!(keyring = %encryption.keyring.display(), master_key = %keyring.master_id(), "encryption at rest is on");
            tokio::spawn(rotate_on_hangup(encryption.clone(), Arc::clone(keyring)));
        }
        _ => tracing::warn!("encryption at rest is off: twin data is written in plain files"),
    }
    match bootstrap {
        Bootstrap::Generated(token) => eprint!("{}", admin_token_box(token.expose())),
        Bootstrap::FromEnvironment(id) => {
            tracing::info!(%id, "registered the admin token from {ADMIN_TOKEN_VARIABLE}");
        }
        Bootstrap::NotNeeded => {}
    }
    if !auth.is_enabled() {
        tracing::warn!("authentication is off: every request may read and change every twin");
    }
    let privacy = open_privacy(&settings, keyring.as_ref()).await?;
    let audit_key = keyring.as_ref().map(|keyring| reserved_key(keyring, AUDIT_KEY)).transpose()?;
    let audit = crate::audit::open_log(&settings.data, audit_key).await?;
    let config = ServerConfig { auth, privacy, audit: Some(audit.clone()), ..server_config(&settings) };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{}", config.listen), data = %settings.data.display(), "doppel is serving");
    let served =
        doppel_server::serve(Arc::clone(&engine), config, shutdown_signal()).await.context("server failed");
    let flushed = flush_on_stop(engine).await;
    let closed = crate::audit::close_log(audit).await;
    served?;
    flushed?;
    closed
}

/// Writes what the head holds to a segment once the server has stopped
/// taking requests. Nothing is at risk if it fails (the WAL still holds
/// every acknowledged point and the next start replays it), but the
/// operator learns of it from the exit status, not only from a log line.
async fn flush_on_stop(engine: Arc<Engine>) -> anyhow::Result<()> {
    let report = tokio::task::spawn_blocking(move || engine.store().flush())
        .await
        .context("flushing the store at stop panicked")?
        .context(
            "flushing the store at stop failed; the WAL keeps every acknowledged point for the next start",
        )?;
    tracing::info!(
        points = report.points,
        series = report.series,
        segment_bytes = report.segment_bytes,
        wal_files_removed = report.wal_files_removed,
        "flushed the head at stop"
    );
    Ok(())
}

/// Opens the keyring when encryption at rest is on (off the async workers:
/// it may generate and fsync a key).
pub async fn open_keyring(settings: &Settings) -> anyhow::Result<Option<Arc<Keyring>>> {
    let Some(encryption) = settings.encryption.clone() else { return Ok(None) };
    tokio::task::spawn_blocking(move || encryption.open().map(Some))
        .await
        .context("opening the keyring panicked")?
}

/// Reseals the keyring under the master key read again from its source on
/// every SIGHUP: replace the key file (or the secret behind the command),
/// send SIGHUP, and the old key is no longer needed, with no restart.
async fn rotate_on_hangup(encryption: EncryptionSettings, keyring: Arc<Keyring>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: master key rotation needs a restart");
        return;
    };
    while hangups.recv().await.is_some() {
        let (encryption, keyring) = (encryption.clone(), Arc::clone(&keyring));
        match tokio::task::spawn_blocking(move || rotate_if_changed(&encryption, &keyring)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => tracing::info!("SIGHUP: the master key is unchanged"),
            Ok(Err(error)) => tracing::error!(
                error = format!("{error:#}"),
                "SIGHUP: master key rotation failed; the old key stays in use"
            ),
            Err(error) => tracing::error!(%error, "SIGHUP: master key rotation panicked"),
        }
    }
}

/// Opens (and, after a crash, recovers) the engine on a blocking thread.
pub async fn open_engine(settings: &Settings, keyring: Option<&Arc<Keyring>>) -> anyhow::Result<Arc<Engine>> {
    let mut models = ModelRegistry::with_builtins();
    if let Some(dir) = &settings.models {
        let loaded =
            models.load_dir(dir).with_context(|| format!("cannot load models from {}", dir.display()))?;
        tracing::info!(loaded, dir = %dir.display(), "loaded model definitions");
    }
    let mut store = StoreConfig::new(&settings.data);
    store.retention = settings.retention()?;
    if let Some(keyring) = keyring {
        store.sealing =
            Some(Arc::new(Sealing::new(Arc::clone(keyring)).context("cannot create the store key")?));
    }
    if let Some(interval) = settings.store.flush_interval {
        store.flush_interval = std::time::Duration::from_nanos(interval.as_nanos().unsigned_abs());
    }
    if let Some(points) = settings.store.head_flush_points {
        store.head_flush_points = points;
    }
    store.head_limit_points = settings
        .store
        .head_limit_points
        .unwrap_or(store.head_flush_points.saturating_mul(DEFAULT_HEAD_LIMIT_FLUSHES));
    // At or below the flush threshold, the heads would fill before a
    // flush starts, and writes would wait for the flush interval.
    if store.head_limit_points <= store.head_flush_points {
        anyhow::bail!(
            "[store] head_limit_points = {} must be above head_flush_points = {}",
            store.head_limit_points,
            store.head_flush_points
        );
    }
    let mut config = EngineConfig::new(store);
    config.models = models;
    config.default_model = settings.default_model.clone();
    config.strict_twins = settings.strict;
    config.limits = settings.limits.ingest();
    let data = settings.data.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(config))
        .await
        .context("engine start-up panicked")?
        .with_context(|| format!("cannot open data directory {}", data.display()))?;
    let report = engine.store().recovery_report();
    tracing::info!(?report, "store opened");
    Ok(Arc::new(engine))
}

/// Loads the tokens and policies from the data directory (off the async
/// workers: the bootstrap may fsync), registering an admin token when
/// needed.
pub async fn open_auth(
    settings: &Settings,
    keyring: Option<&Arc<Keyring>>,
    admin_token: Option<&str>,
) -> anyhow::Result<(Auth, Bootstrap)> {
    let mut store = AuthStore::new(settings.data.join(AUTH_DIR));
    if let Some(keyring) = keyring {
        store = store.sealed(reserved_key(keyring, AUTH_KEY)?);
    }
    let path = store.path();
    let config = settings.auth.clone();
    let admin_token = admin_token.map(str::to_owned);
    tokio::task::spawn_blocking(move || Auth::open(store, &config, admin_token.as_deref(), Timestamp::now()))
        .await
        .context("loading the authentication state panicked")?
        .with_context(|| format!("cannot load the authentication state {}", path.display()))
}

/// Loads the pseudonym secret (made on the first start) and the analysts'
/// privacy budgets from the data directory, off the async workers.
pub async fn open_privacy(settings: &Settings, keyring: Option<&Arc<Keyring>>) -> anyhow::Result<Privacy> {
    let dir = settings.data.join(PRIVACY_DIR);
    let config = settings.privacy.clone();
    let shown = dir.clone();
    // With encryption at rest the pseudonym secret is derived from a key
    // in the keyring, so no file in the data directory holds it.
    let sealed = match keyring {
        Some(keyring) if config.pseudonym_key_file.is_none() => {
            let secret = reserved_key(keyring, PRIVACY_KEY)?.derive(b"pseudonyms");
            Some(doppel_privacy::PseudonymKey::from_bytes(*secret))
        }
        _ => None,
    };
    tokio::task::spawn_blocking(move || match sealed {
        Some(key) => Privacy::open_with_key(&dir, &config, key),
        None => Privacy::open(&dir, &config),
    })
    .await
    .context("loading the privacy state panicked")?
    .with_context(|| format!("cannot load the privacy state in {}", shown.display()))
}

/// The one time a generated admin token is shown: boxed, on stderr, so it
/// stands out from the log lines around it.
pub fn admin_token_box(token: &str) -> String {
    let lines = [
        "Doppel made an admin token for this data directory.".to_owned(),
        "It is stored only as a hash: it will not be shown again.".to_owned(),
        String::new(),
        format!("    {token}"),
        String::new(),
        "Send it as `Authorization: Bearer <token>`, or give it to the".to_owned(),
        "client commands with --token or DOPPEL_TOKEN. To choose the admin".to_owned(),
        format!("token yourself, set {ADMIN_TOKEN_VARIABLE} (see `doppel token generate`)."),
    ];
    let width = lines.iter().map(|line| line.chars().count()).max().unwrap_or(0);
    let rule = format!("+{}+\n", "-".repeat(width + 2));
    let mut text = String::from("\n");
    text.push_str(&rule);
    for line in &lines {
        text.push_str(&format!("| {line:<width$} |\n"));
    }
    text.push_str(&rule);
    text.push('\n');
    text
}

/// Server settings from `[limits]`, `[tls]` and the listen address.
pub fn server_config(settings: &Settings) -> ServerConfig {
    let mut config =
        ServerConfig { listen: settings.listen, tls: settings.tls.clone(), ..ServerConfig::default() };
    if let Some(bytes) = settings.limits.max_body_bytes {
        config.max_body_bytes = bytes;
    }
    if let Some(points) = settings.limits.max_batch_points {
        config.max_batch_points = points;
    }
    if let Some(points) = settings.limits.max_read_points {
        config.max_read_points = points;
    }
    if let Some(connections) = settings.limits.max_connections {
        config.max_connections = connections;
    }
    if let Some(requests) = settings.limits.max_in_flight {
        config.max_in_flight = requests;
    }
    if let Some(timeout) = settings.limits.request_timeout {
        config.request_timeout = std::time::Duration::from_nanos(timeout.as_nanos().unsigned_abs());
    }
    if let Some(timeout) = settings.limits.header_read_timeout {
        config.header_read_timeout = std::time::Duration::from_nanos(timeout.as_nanos().unsigned_abs());
    }
    if let Some(bytes) = settings.limits.max_header_bytes {
        config.max_header_bytes = bytes;
    }
    if let Some(timeout) = settings.limits.subscriber_send_timeout {
        config.subscriber_send_timeout = std::time::Duration::from_nanos(timeout.as_nanos().unsigned_abs());
    }
    config
}

/// Resolves on Ctrl-C or SIGTERM, so a service manager can stop Doppel
/// gracefully.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscriber_send_timeout_comes_from_the_limits_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(&path, "[limits]\nsubscriber_send_timeout = \"250ms\"\n").unwrap();
        let args = crate::cli::ServeArgs { config: Some(path), ..Default::default() };
        let config = server_config(&Settings::resolve(args).unwrap());
        assert_eq!(config.subscriber_send_timeout, std::time::Duration::from_millis(250));
        let defaults = server_config(&Settings::resolve(crate::cli::ServeArgs::default()).unwrap());
        assert_eq!(
            defaults.subscriber_send_timeout,
            std::time::Duration::from_millis(doppel_server::DEFAULT_SUBSCRIBER_SEND_TIMEOUT_MS)
        );
    }

    #[test]
    fn the_admin_token_box_shows_the_token_and_says_it_is_shown_once() {
        let token = "dpl_abcdefgh2345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let text = admin_token_box(token);
        assert!(text.contains(token), "{text}");
        assert!(text.contains("will not be shown again"), "{text}");
        let widths: Vec<usize> = text.lines().filter(|l| !l.is_empty()).map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|pair| pair[0] == pair[1]), "ragged box:\n{text}");
    }
}
