//! A twin's export: `GET /api/v1/twins/{id}/export`.
//!
//! Everything Doppel holds about a person, in a zip archive of JSON and CSV
//! files that any unzip tool and spreadsheet can open (the layout is in
//! `docs/export.md`). It is what data portability asks for: the person can
//! take their data elsewhere without Doppel.
//!
//! The archive is written while it is sent: signal histories are read a
//! day at a time ([`crate::history`]) and compressed into the answer, so an
//! export of years of data needs memory for a slice, not for the years.
//! Zip allows that because each member's sizes and checksum may follow its
//! data; `manifest.json` comes last, once every file's row count is known.
//!
//! Access is what the caller may read: a caller who may read nothing of
//! the twin is answered 404; signals it may not read are left out, as are
//! the twin's properties without `read` on the twin and `policy.json`
//! without `read` on its policy (the manifest says which of those were
//! withheld).

use std::io::Write;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use doppel_auth::{Action, Permission, Target};
use doppel_engine::{Engine, TwinView};
use doppel_model::{ModelDef, SignalName, Timestamp, TwinId};
use serde::Serialize;
use std::sync::Arc;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::AppState;
use crate::auth::Caller;
use crate::auth::grants::TwinGrants;
use crate::history::{HistoryPoint, for_each_slice};
use crate::problem::{ApiError, Problem};
use crate::streaming::{BodyWriter, stream_body};

/// The archive's `format` member, so a reader can tell what it holds.
const EXPORT_FORMAT: &str = "doppel-twin-export";
/// Version of the archive layout; a reader checks it before trusting the
/// layout described in `docs/export.md`.
const EXPORT_VERSION: u32 = 1;
/// Header of every signal CSV.
const CSV_HEADER: &str = "time,value,provenance\n";

/// Everything of an export but the signal histories, gathered before the
/// answer starts so that a missing twin is still a 404.
struct ExportPlan {
    twin: TwinId,
    exported: Timestamp,
    exported_by: String,
    view: TwinView,
    model: Arc<ModelDef>,
    /// `None` when the caller may not read the twin's policy.
    policy: Option<TwinGrants>,
    properties_withheld: bool,
    signals: Vec<SignalName>,
}

/// One file of the archive, as the manifest lists it.
#[derive(Serialize)]
struct ManifestFile {
    path: String,
    /// What the file holds: `twin`, `model`, `policy` or `signal`.
    contents: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<SignalName>,
    /// Data rows of a CSV file (its header not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
}

/// Something held about the twin that the caller may not read, so the
/// archive leaves it out.
#[derive(Serialize)]
struct Withheld {
    what: &'static str,
    reason: &'static str,
}

#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    version: u32,
    twin: &'a TwinId,
    exported: String,
    exported_by: &'a str,
    files: &'a [ManifestFile],
    withheld: &'a [Withheld],
}

/// Everything held about a twin, as a zip archive.
#[utoipa::path(
    get,
    path = "/api/v1/twins/{id}/export",
    tag = "twins",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id")),
    responses(
        (status = 200, description = "A zip archive: manifest.json, twin.json, model.json, policy.json and signals/<signal>.csv (`time,value,provenance`), limited to what the caller may read; see docs/export.md",
            content_type = "application/zip", body = crate::openapi::ZipArchiveDoc),
        (status = 404, description = "No such twin, or none the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn export_twin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let twin = crate::twins::parse_twin_id(&id)?;
    caller.require_readable(&twin)?;
    let engine = state.engine.clone();
    let plan = crate::blocking(move || plan(&caller, &engine, twin)).await??;
    let disposition = format!("attachment; filename=\"doppel-export-{}.zip\"", plan.twin);
    let engine = state.engine.clone();
    let body = stream_body(move |writer| write_archive(&engine, &plan, writer));
    Ok((
        [(header::CONTENT_TYPE, "application/zip".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
}

fn plan(caller: &Caller, engine: &Engine, twin: TwinId) -> Result<ExportPlan, ApiError> {
    let missing = || ApiError::TwinNotFound(twin.to_string());
    let view = engine.twin(&twin).ok_or_else(missing)?;
    let model = engine.model_of(&twin).ok_or_else(missing)?;
    let series = engine.store().series(&twin).map_err(doppel_engine::EngineError::from)?;
    let now = Timestamp::now();
    let state = caller.auth().state();
    let filter = caller.signal_filter(&state, &twin, now);
    let mut signals: Vec<SignalName> =
        series.into_iter().map(|key| key.signal).filter(|signal| filter.allows(signal)).collect();
    signals.dedup();
    let may_read_policy = caller.allows(&state, &twin, &Action::new(Permission::Read, Target::Policy), now);
    let policy = may_read_policy.then(|| TwinGrants::of(&state, &twin, now));
    let properties_withheld =
        !caller.allows(&state, &twin, &Action::new(Permission::Read, Target::Twin), now);
    drop(state);
    let view = crate::auth::twins::visible_twin(caller, view);
    Ok(ExportPlan {
        twin,
        exported: now,
        exported_by: caller.principal().to_string(),
        view,
        model,
        policy,
        properties_withheld,
        signals,
    })
}

fn archive_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("writing the export archive: {error}"))
}

fn write_archive(engine: &Engine, plan: &ExportPlan, writer: &mut BodyWriter) -> Result<(), ApiError> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(plan.exported));
    let mut zip = ZipWriter::new_stream(writer);
    let mut files = Vec::new();
    let mut withheld = Vec::new();
    write_json(&mut zip, "twin.json", &plan.view, options)?;
    files.push(ManifestFile { path: "twin.json".to_owned(), contents: "twin", signal: None, rows: None });
    if plan.properties_withheld {
        withheld.push(Withheld {
            what: "properties",
            reason: "the caller may read some signals of the twin, not the twin itself",
        });
    }
    write_json(&mut zip, "model.json", plan.model.as_ref(), options)?;
    files.push(ManifestFile { path: "model.json".to_owned(), contents: "model", signal: None, rows: None });
    match &plan.policy {
        Some(policy) => {
            write_json(&mut zip, "policy.json", policy, options)?;
            files.push(ManifestFile {
                path: "policy.json".to_owned(),
                contents: "policy",
                signal: None,
                rows: None,
            });
        }
        None => withheld.push(Withheld {
            what: "policy.json",
            reason: "the caller may not read the twin's policy (its owner and grants)",
        }),
    }
    for signal in &plan.signals {
        let path = format!("signals/{}.csv", signal_file_name(signal));
        // A signal's history can pass 4 GiB: zip64 sizes from the start,
        // since they cannot be known before the data is written.
        zip.start_file(path.as_str(), options.large_file(true)).map_err(archive_error)?;
        zip.write_all(CSV_HEADER.as_bytes()).map_err(archive_error)?;
        let mut rows = 0u64;
        let mut text = String::new();
        for_each_slice(engine, &plan.twin, signal, Timestamp::MIN, Timestamp::MAX, |points| {
            text.clear();
            write_csv_rows(&mut text, points);
            rows += points.len() as u64;
            zip.write_all(text.as_bytes()).map_err(archive_error)
        })?;
        files.push(ManifestFile { path, contents: "signal", signal: Some(signal.clone()), rows: Some(rows) });
    }
    let manifest = Manifest {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        twin: &plan.twin,
        exported: plan.exported.to_rfc3339(),
        exported_by: &plan.exported_by,
        files: &files,
        withheld: &withheld,
    };
    write_json(&mut zip, "manifest.json", &manifest, options)?;
    zip.finish().map_err(archive_error)?;
    Ok(())
}

fn write_json<W: Write + std::io::Seek>(
    zip: &mut ZipWriter<W>,
    path: &str,
    value: &impl Serialize,
    options: SimpleFileOptions,
) -> Result<(), ApiError> {
    zip.start_file(path, options).map_err(archive_error)?;
    serde_json::to_writer_pretty(&mut *zip, value).map_err(archive_error)?;
    zip.write_all(b"\n").map_err(archive_error)
}

/// Appends one CSV row per point: RFC 3339 UTC time, the value in the
/// shortest form that reads back to the same number, the provenance tags
/// (quoted per RFC 4180 when they hold a comma or quote).
fn write_csv_rows(out: &mut String, points: &[HistoryPoint<'_>]) {
    use std::fmt::Write as _;
    for point in points {
        point.time.write_rfc3339(out);
        let _ = write!(out, ",{},", point.value);
        write_csv_field(out, point.provenance.as_str());
        out.push('\n');
    }
}

/// `text` as one CSV field: as it is, or in double quotes with inner
/// quotes doubled when it holds a comma, quote or line break.
pub(crate) fn write_csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// A signal name as a file name that is the same on every file system:
/// lowercase letters, digits, `_`, `.` and `-` stay; every other byte
/// (`:`, capitals, which case-insensitive file systems would fold) becomes
/// `%` and two uppercase hex digits.
fn signal_file_name(signal: &SignalName) -> String {
    let mut name = String::with_capacity(signal.as_str().len());
    for byte in signal.as_str().bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'_' | b'.' | b'-') {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    name
}

/// The export time as a zip member time (UTC; zip has no time zone field).
/// Zip times run from 1980 to 2107; outside that, the format's earliest.
fn zip_time(time: Timestamp) -> DateTime {
    let text = time.to_rfc3339();
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(|digits| digits.parse::<u16>().ok());
    let parts = (field(0..4), field(5..7), field(8..10), field(11..13), field(14..16), field(17..19));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = parts else {
        return DateTime::default();
    };
    let narrow = |value: u16| u8::try_from(value).unwrap_or(0);
    DateTime::from_date_and_time(
        year,
        narrow(month),
        narrow(day),
        narrow(hour),
        narrow(minute),
        narrow(second),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::Provenance;

    #[test]
    fn signal_file_names_keep_plain_names_and_escape_the_rest() {
        let name = |text: &str| signal_file_name(&SignalName::new(text).unwrap());
        assert_eq!(name("heart_rate"), "heart_rate");
        assert_eq!(name("blood_pressure.systolic"), "blood_pressure.systolic");
        assert_eq!(name("lab:hba1c"), "lab%3Ahba1c");
        assert_eq!(name("Heart_Rate"), "%48eart_%52ate");
        assert_ne!(name("Heart_Rate"), name("heart_rate"));
    }

    #[test]
    fn csv_rows_quote_provenance_with_commas() {
        let (watch, both) = (
            Provenance::parse("device=watch").unwrap(),
            Provenance::parse("device=watch,source=app").unwrap(),
        );
        let points = [
            HistoryPoint { time: Timestamp::from_secs(1), value: 60.0, provenance: &watch },
            HistoryPoint { time: Timestamp::from_nanos(1_500_000_000), value: 61.25, provenance: &both },
            HistoryPoint { time: Timestamp::from_secs(2), value: 0.1 + 0.2, provenance: &Provenance::none() },
        ];
        let mut text = String::new();
        write_csv_rows(&mut text, &points);
        assert_eq!(
            text,
            "1970-01-01T00:00:01Z,60,device=watch\n\
             1970-01-01T00:00:01.5Z,61.25,\"device=watch,source=app\"\n\
             1970-01-01T00:00:02Z,0.30000000000000004,\n"
        );
        let mut quoted = String::new();
        write_csv_field(&mut quoted, "a\"b");
        assert_eq!(quoted, "\"a\"\"b\"");
        quoted.clear();
        write_csv_field(&mut quoted, "a,\"b\"");
        assert_eq!(quoted, "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn zip_times_are_the_export_time_in_utc() {
        let time = zip_time(Timestamp::from_secs(1_709_294_400));
        assert_eq!((time.year(), time.month(), time.day()), (2024, 3, 1));
        assert_eq!((time.hour(), time.minute(), time.second()), (12, 0, 0));
        assert_eq!(zip_time(Timestamp::from_secs(0)), DateTime::default());
    }
}
