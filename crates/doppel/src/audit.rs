//! `doppel audit verify|list`, and opening the server's audit log.

use std::path::Path;

use anyhow::Context;
use doppel_audit::{AuditLog, AuditOptions, Verified};

use crate::cli::{AuditArgs, AuditCommand, Format};
use crate::client::Client;
use crate::output::{cell, table};

/// Where in the data directory the audit log lives.
pub const AUDIT_DIR: &str = "audit";

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify { data } => {
            let dir = data.join(AUDIT_DIR);
            if !dir.is_dir() {
                anyhow::bail!(
                    "{} holds no audit log (expected the directory {})",
                    data.display(),
                    dir.display()
                );
            }
            let checked = dir.clone();
            let verified = tokio::task::spawn_blocking(move || doppel_audit::verify(&checked, None))
                .await
                .context("verification panicked")?
                .with_context(|| format!("the audit log in {} does not verify", dir.display()))?;
            print!("{}", render_verified(&dir, &verified));
        }
        AuditCommand::List { twin, from, to, after, limit, format } => {
            let client = Client::new(&args.server)?;
            let mut query = vec![("limit", limit.to_string())];
            for (name, value) in
                [("twin", twin), ("from", from), ("to", to), ("after", after.map(|a| a.to_string()))]
            {
                if let Some(value) = value {
                    query.push((name, value));
                }
            }
            let answer = client.get_json("/api/v1/audit", &query).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Format::Table | Format::Csv => print!("{}", render_records(&answer, format)),
            }
        }
    }
    Ok(())
}

/// Opens (and, after a crash, repairs the end of) the audit log of a data
/// directory, off the async workers, and logs what opening found. With
/// `key` (encryption at rest) every record is sealed under it.
pub async fn open_log(data: &Path, key: Option<doppel_crypto::DataKey>) -> anyhow::Result<AuditLog> {
    let dir = data.join(AUDIT_DIR);
    let opened = dir.clone();
    let log = tokio::task::spawn_blocking(move || AuditLog::open(&opened, key, AuditOptions::default()))
        .await
        .context("opening the audit log panicked")?
        .with_context(|| format!("cannot open the audit log {}", dir.display()))?;
    let recovery = log.recovery();
    for torn in &recovery.truncated {
        tracing::warn!(
            file = %torn.file.display(), offset = torn.offset, bytes = torn.bytes,
            "removed an unfinished audit record left by a crash"
        );
    }
    tracing::info!(records = recovery.records, head = %recovery.head, dir = %dir.display(), "audit log opened");
    Ok(log)
}

/// Closes the log after the server stopped: its last records are written
/// and fsynced, or the failure that lost some is reported.
pub async fn close_log(log: AuditLog) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || log.close())
        .await
        .context("closing the audit log panicked")?
        .context("the audit log could not be closed cleanly: its newest records may be lost")
}

fn render_verified(dir: &Path, verified: &Verified) -> String {
    let files = if verified.files == 1 { "file" } else { "files" };
    let mut text = format!(
        "audit log OK: {} records in {} {files} ({})\nhead: record {} sha256 {}\n",
        verified.records,
        verified.files,
        dir.display(),
        verified.records,
        verified.head
    );
    if verified.unopened > 0 {
        text.push_str(&format!(
            "{} sealed records: their chain was checked, their contents were not opened (no key given)\n",
            verified.unopened
        ));
    }
    if let Some(torn) = &verified.torn_tail {
        text.push_str(&format!(
            "note: {} ends with {} bytes of an unfinished record after byte {} (a crash, or a write in progress); \
             the server removes them when it next starts\n",
            torn.file.display(),
            torn.bytes,
            torn.offset
        ));
    }
    text.push_str(
        "Keep the head line where this machine cannot write: a later head that does not follow from it shows \
         the log was cut back or rewritten.\n",
    );
    text
}

fn render_records(answer: &serde_json::Value, format: Format) -> String {
    let header = ["seq", "time", "principal", "action", "twin", "target", "detail", "outcome"];
    let records = answer["records"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> =
        records.iter().map(|record| header.iter().map(|key| cell(&record[*key])).collect()).collect();
    let mut text = if format == Format::Csv {
        let mut csv = header.join(",") + "\n";
        for row in rows {
            let quoted: Vec<String> = row.iter().map(|field| csv_field(field)).collect();
            csv.push_str(&quoted.join(","));
            csv.push('\n');
        }
        csv
    } else {
        table(&header, &rows)
    };
    if format == Format::Table
        && let Some(next) = answer["next"].as_u64()
    {
        text.push_str(&format!("more records follow: pass --after {next}\n"));
    }
    text
}

/// A CSV field, quoted when it holds a comma, a quote or a line break
/// (principals and details contain spaces and parentheses, and may
/// contain commas).
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_as_a_table_with_a_hint_for_the_next_page_and_as_quoted_csv() {
        let answer = serde_json::json!({"records": [{"seq": 4, "time": "2024-03-01T12:00:00Z",
            "principal": "user alice (token abcdefgh2345)", "action": "share", "twin": "alice",
            "target": "POST /api/v1/twins/{id}/grants", "detail": "grant 1 to user:coach on twin: read,share",
            "outcome": "201", "hash": "00"}], "next": 4});
        let table = render_records(&answer, Format::Table);
        assert!(table.starts_with("seq  time"), "{table}");
        assert!(table.contains("user alice (token abcdefgh2345)  share"), "{table}");
        assert!(table.ends_with("more records follow: pass --after 4\n"), "{table}");
        let csv = render_records(&answer, Format::Csv);
        assert_eq!(
            csv,
            "seq,time,principal,action,twin,target,detail,outcome\n4,2024-03-01T12:00:00Z,user alice (token abcdefgh2345),share,alice,POST /api/v1/twins/{id}/grants,\"grant 1 to user:coach on twin: read,share\",201\n"
        );
    }
}
