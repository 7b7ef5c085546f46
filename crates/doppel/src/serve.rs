//! `doppel serve`: open the engine, report what recovery found, serve
//! until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use doppel_engine::{Engine, EngineConfig};
use doppel_model::ModelRegistry;
use doppel_server::ServerConfig;
use doppel_store::StoreConfig;

use crate::cli::ServeArgs;
use crate::config::Settings;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(args)?;
    let engine = open_engine(&settings).await?;
    let config = server_config(&settings);
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    tracing::info!(url = %format!("{scheme}://{}", config.listen), data = %settings.data.display(), "doppel is serving");
    doppel_server::serve(engine, config, shutdown_signal()).await.context("server failed")
}

/// Opens (and, after a crash, recovers) the engine on a blocking thread.
pub async fn open_engine(settings: &Settings) -> anyhow::Result<Arc<Engine>> {
    let mut models = ModelRegistry::with_builtins();
    if let Some(dir) = &settings.models {
        let loaded =
            models.load_dir(dir).with_context(|| format!("cannot load models from {}", dir.display()))?;
        tracing::info!(loaded, dir = %dir.display(), "loaded model definitions");
    }
    let mut store = StoreConfig::new(&settings.data);
    store.retention = settings.retention()?;
    if let Some(interval) = settings.store.flush_interval {
        store.flush_interval = std::time::Duration::from_nanos(interval.as_nanos().unsigned_abs());
    }
    if let Some(points) = settings.store.head_flush_points {
        store.head_flush_points = points;
    }
    let mut config = EngineConfig::new(store);
    config.models = models;
    config.default_model = settings.default_model.clone();
    config.strict_twins = settings.strict;
    let data = settings.data.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(config))
        .await
        .context("engine start-up panicked")?
        .with_context(|| format!("cannot open data directory {}", data.display()))?;
    let report = engine.store().recovery_report();
    tracing::info!(?report, "store opened");
    Ok(Arc::new(engine))
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
    if let Some(timeout) = settings.limits.request_timeout {
        config.request_timeout = std::time::Duration::from_nanos(timeout.as_nanos().unsigned_abs());
    }
    if let Some(timeout) = settings.limits.header_read_timeout {
        config.header_read_timeout = std::time::Duration::from_nanos(timeout.as_nanos().unsigned_abs());
    }
    if let Some(bytes) = settings.limits.max_header_bytes {
        config.max_header_bytes = bytes;
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
