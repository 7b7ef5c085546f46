//! `doppel import`: send a CSV or line-protocol file to a server in
//! batches, with a progress bar. CSV files are parsed here, so a bad line
//! is reported with its number before anything is sent.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use doppel_model::{FieldValue, Precision, TwinId};
use doppel_protocols::csv::{CsvOptions, parse as parse_csv};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;

use crate::cli::{ImportArgs, ImportFormat};
use crate::client::{Body, Client};

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let precision = Precision::parse(&args.precision)?;
    let format = match args.format {
        Some(format) => format,
        None => guess_format(&args.file)?,
    };
    let text = read_text(&args.file)?;
    let batch_lines = args.batch_lines.max(1);
    let imported = match format {
        ImportFormat::LineProtocol => send_line_protocol(&client, &text, precision, batch_lines).await?,
        ImportFormat::Csv => {
            let twin = args.twin.as_deref().map(TwinId::new).transpose()?;
            send_csv(&client, &text, CsvOptions { twin, precision, delimiter: b',' }, batch_lines).await?
        }
    };
    println!("imported {imported} points from {}", args.file.display());
    Ok(())
}

fn guess_format(path: &Path) -> anyhow::Result<ImportFormat> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv") => Ok(ImportFormat::Csv),
        Some("lp" | "txt" | "line") => Ok(ImportFormat::LineProtocol),
        _ => bail!(
            "cannot tell the format of {} from its name: pass --format csv or --format line-protocol",
            path.display()
        ),
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut inflated)
            .with_context(|| format!("{} is not valid gzip", path.display()))?;
        inflated
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|err| {
        let offset = err.utf8_error().valid_up_to();
        anyhow::anyhow!("{} is not UTF-8 text (invalid byte at offset {offset})", path.display())
    })
}

fn progress(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

async fn send_line_protocol(
    client: &Client,
    text: &str,
    precision: Precision,
    batch_lines: usize,
) -> anyhow::Result<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let bar = progress(lines.len() as u64, "lines");
    let query = [("precision", precision.name().to_owned())];
    for (chunk_index, chunk) in lines.chunks(batch_lines).enumerate() {
        let first_line = chunk_index * batch_lines;
        let body = chunk.join("\n");
        if let Err(err) =
            client.send(Method::POST, "/api/v2/write", &query, Some(Body::Text(body, "text/plain"))).await
        {
            bar.abandon();
            bail!(
                "{}\n(lines before {} were imported)",
                renumber(&err.to_string(), first_line),
                first_line + 1
            );
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(lines.iter().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count())
}

/// Shifts every `line N` of a batch's error message by the batch's offset
/// in the file, so the message names lines of the file.
fn renumber(message: &str, offset: usize) -> String {
    const MARK: &str = "line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at + MARK.len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

async fn send_csv(
    client: &Client,
    text: &str,
    options: CsvOptions,
    batch_points: usize,
) -> anyhow::Result<usize> {
    let batch = parse_csv(text.as_bytes(), &options).map_err(|errors| {
        let mut message =
            format!("{} has {} bad line(s); nothing was imported", "the file", errors.errors.len());
        for error in errors.errors.iter().take(50) {
            message.push_str(&format!("\n  {error}"));
        }
        anyhow::anyhow!(message)
    })?;
    let mut items: Vec<serde_json::Value> = Vec::with_capacity(batch.point_count());
    for series in &batch.series {
        let source: serde_json::Map<String, serde_json::Value> =
            series.key.provenance.tags().into_iter().map(|(k, v)| (k, v.into())).collect();
        for sample in &series.samples {
            let value = match &sample.value {
                FieldValue::Number(v) => serde_json::json!(v.get()),
                FieldValue::Text(t) => serde_json::json!(t.as_ref()),
            };
            items.push(serde_json::json!({
                "twin": series.key.twin,
                "signal": series.key.signal,
                "time": sample.time.as_nanos(),
                "value": value,
                "source": source,
            }));
        }
    }
    let total = items.len();
    let bar = progress(total as u64, "points");
    for chunk in items.chunks(batch_points) {
        let body = serde_json::json!({ "points": chunk });
        if let Err(err) = client.send(Method::POST, "/api/v1/points", &[], Some(Body::Json(body))).await {
            bar.abandon();
            bail!("{err}\n({} points were imported before this batch)", bar.position());
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_guessed_from_names_including_gzip() {
        assert_eq!(guess_format(Path::new("a.csv")).unwrap(), ImportFormat::Csv);
        assert_eq!(guess_format(Path::new("a.lp.gz")).unwrap(), ImportFormat::LineProtocol);
        assert!(guess_format(Path::new("a.xml")).unwrap_err().to_string().contains("--format"));
    }

    #[test]
    fn batch_line_numbers_become_file_line_numbers() {
        let message = "server answered 400: 1 bad line; first: line 2: x\n  line 2: missing tag 'twin'";
        assert_eq!(
            renumber(message, 5000),
            "server answered 400: 1 bad line; first: line 5002: x\n  line 5002: missing tag 'twin'"
        );
    }

    #[test]
    fn gzip_files_are_inflated() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.lp.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(b"heart_rate,twin=a value=60 1\n").unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        assert_eq!(read_text(&path).unwrap(), "heart_rate,twin=a value=60 1\n");
    }
}
