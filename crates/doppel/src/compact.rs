//! `doppel compact`: flush and compact a data directory offline, then say
//! how much space its history takes.

use std::sync::Arc;

use anyhow::Context;
use doppel_store::{Sealing, Store, StoreConfig};

use crate::cli::CompactArgs;
use crate::encryption::{EncryptionFileConfig, EncryptionSettings};

pub async fn run(args: CompactArgs) -> anyhow::Result<()> {
    let dir = args.data.clone();
    if !dir.is_dir() {
        anyhow::bail!("{} is not a data directory", dir.display());
    }
    let encryption = EncryptionSettings::resolve(EncryptionFileConfig::default(), &dir, args.encryption)?;
    let stats = tokio::task::spawn_blocking(move || -> anyhow::Result<doppel_store::StoreStats> {
        let mut config = StoreConfig::new(&dir);
        config.background = false;
        if let Some(encryption) = encryption {
            config.sealing = Some(Arc::new(Sealing::new(encryption.open()?)?));
        }
        let store = Store::open(config).with_context(|| format!("cannot open {}", dir.display()))?;
        store.flush().context("flush failed")?;
        store.compact().context("compaction failed")?;
        Ok(store.stats())
    })
    .await
    .context("compaction panicked")??;
    println!("{}", serde_json::to_string_pretty(&stats_json(&stats))?);
    Ok(())
}

fn stats_json(stats: &doppel_store::StoreStats) -> serde_json::Value {
    serde_json::json!({
        "series": stats.series,
        "segments": stats.segments,
        "segment_bytes": stats.segment_bytes,
        "wal_bytes": stats.wal_bytes,
    })
}
