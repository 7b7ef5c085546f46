//! `serve` settings: a TOML file, overridden by `DOPPEL_*` environment
//! variables, overridden by flags (clap merges the last two).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use doppel_model::{SignalName, Span};
use serde::Deserialize;

use crate::cli::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, ServeArgs};

/// The configuration file's shape. Every key is optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Reject writes to twins that do not exist.
    pub strict: Option<bool>,
    /// Directory of extra model definitions.
    pub models: Option<PathBuf>,
    /// Model of twins created by their first write.
    pub default_model: Option<String>,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Storage settings.
    #[serde(default)]
    pub store: StoreFileConfig,
}

/// `[limits]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, compressed or inflated, in bytes.
    pub max_body_bytes: Option<usize>,
    /// Largest batch, in points.
    pub max_batch_points: Option<usize>,
    /// Longest a request may take.
    pub request_timeout: Option<Span>,
}

/// `[store]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreFileConfig {
    /// Head older than this is flushed to a segment.
    pub flush_interval: Option<Span>,
    /// Head size, in points, that triggers a flush.
    pub head_flush_points: Option<usize>,
    /// Default retention of every signal (kept forever when absent).
    pub retention: Option<Span>,
    /// Retention per signal name.
    #[serde(default)]
    pub retention_per_signal: HashMap<String, Span>,
}

/// Everything `serve` needs, resolved.
#[derive(Debug)]
pub struct Settings {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub strict: bool,
    pub models: Option<PathBuf>,
    pub default_model: String,
    pub limits: LimitsConfig,
    pub store: StoreFileConfig,
}

impl Settings {
    /// Merges file < environment < flags.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None => FileConfig::default(),
        };
        let default_listen: SocketAddr = DEFAULT_LISTEN.parse().context("default listen address")?;
        Ok(Self {
            data: args.data.or(file.data).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen: args.listen.or(file.listen).unwrap_or(default_listen),
            strict: args.strict || file.strict.unwrap_or(false),
            models: args.models.or(file.models),
            default_model: file.default_model.unwrap_or_else(|| "person".to_owned()),
            limits: file.limits,
            store: file.store,
        })
    }

    /// The store's retention policy from `[store]`.
    pub fn retention(&self) -> anyhow::Result<doppel_store::RetentionPolicy> {
        let mut per_signal = HashMap::new();
        for (name, span) in &self.store.retention_per_signal {
            let signal =
                SignalName::new(name).with_context(|| format!("[store.retention_per_signal] {name}"))?;
            per_signal.insert(signal, *span);
        }
        Ok(doppel_store::RetentionPolicy { default: self.store.retention, per_signal })
    }
}

fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(
            &path,
            "data = \"/srv/doppel\"\nlisten = \"127.0.0.1:9000\"\n[store]\nretention = \"400d\"\n[store.retention_per_signal]\nheart_rate = \"90d\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let settings = Settings::resolve(args).unwrap();
        assert_eq!(settings.data, PathBuf::from("/srv/doppel"));
        assert_eq!(settings.listen.port(), 9100);
        let retention = settings.retention().unwrap();
        assert_eq!(retention.default, Some("400d".parse().unwrap()));
        assert_eq!(retention.per_signal.len(), 1);
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "dta = \"x\"\n").unwrap();
        let err = Settings::resolve(ServeArgs { config: Some(path), ..Default::default() }).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("bad.toml") && text.contains("dta"), "{text}");
    }
}
