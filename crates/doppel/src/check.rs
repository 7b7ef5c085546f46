//! `doppel check` and `doppel repair`: verify a stopped server's data
//! directory offline, and salvage what is readable from a damaged one.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use doppel_store::{Sealing, StoreConfig};

use crate::cli::{CheckArgs, RepairArgs};
use crate::encryption::{EncryptionFileConfig, EncryptionSettings};

pub async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let dir = args.data.clone();
    let sealing = sealing(&dir, args.encryption)?;
    let report = tokio::task::spawn_blocking(move || {
        doppel_store::check(&dir, sealing.as_ref(), &mut |what| eprintln!("checking {what}"))
            .with_context(|| format!("cannot check {}", dir.display()))
    })
    .await
    .context("the check panicked")??;
    for note in &report.notes {
        println!("note: {note}");
    }
    for damage in &report.damage {
        println!("damaged: {damage}");
    }
    let summary = format!(
        "{} segment(s), {} WAL file(s) with {} readable record(s) checked",
        report.segments, report.wal_files, report.wal_records
    );
    if report.damage.is_empty() {
        println!("ok: {summary}; no damage found");
        return Ok(());
    }
    println!("{summary}");
    anyhow::bail!(
        "{} damaged part(s) found in {}; `doppel repair --data {}` salvages the rest",
        report.damage.len(),
        args.data.display(),
        args.data.display()
    )
}

pub async fn repair(args: RepairArgs) -> anyhow::Result<()> {
    let dir = args.data.clone();
    let sealing = sealing(&dir, args.encryption)?;
    let report = tokio::task::spawn_blocking(move || {
        let mut config = StoreConfig::new(&dir);
        config.sealing = sealing;
        doppel_store::repair(config, &mut |what| eprintln!("repair: {what}"))
            .with_context(|| format!("cannot repair {}", dir.display()))
    })
    .await
    .context("the repair panicked")??;
    for action in &report.actions {
        println!("done: {action}");
    }
    for lost in &report.lost {
        println!("lost: {lost}");
    }
    if report.lost.is_empty() {
        println!("repaired {}: nothing was lost", args.data.display());
    } else {
        println!(
            "repaired {}: {} damaged part(s) dropped, everything else kept",
            args.data.display(),
            report.lost.len()
        );
    }
    Ok(())
}

/// The keys of a sealed data directory (one holding the `SEALED` marker),
/// opened as `serve` and `compact` open them; `None` for a plain one, which
/// checking or repairing must not turn into a sealed one.
fn sealing(dir: &Path, args: crate::cli::EncryptionArgs) -> anyhow::Result<Option<Arc<Sealing>>> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a data directory", dir.display());
    }
    if !dir.join("SEALED").exists() {
        return Ok(None);
    }
    let Some(encryption) = EncryptionSettings::resolve(EncryptionFileConfig::default(), dir, args)? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(Sealing::new(encryption.open()?)?)))
}
