//! Reading a signal: `GET /api/v1/twins/{id}/signals/{signal}`.
//!
//! Without `every` and `agg` the answer holds the raw points of every
//! matching series (all provenances unless `source` filters), merged in
//! time order. With `every` and/or `agg` it holds buckets aligned to
//! multiples of `every` since the epoch (one bucket over the whole range
//! when `every` is absent); empty buckets are omitted. JSON or CSV.

use std::fmt::Write as _;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use doppel_engine::Engine;
use doppel_model::{Provenance, SignalName, Span, Timestamp, TwinId, Value};
use doppel_store::{Aggregate, Bucket, RangeQuery, SeriesData};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::ser::{CompactFormatter, Formatter as _};
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::limits::MAX_AGGREGATES;
use crate::problem::{ApiError, Problem};

/// Range read when `from` is absent: the last day, the span a dashboard
/// opens on.
const DEFAULT_RANGE_NANOS: i64 = 24 * 3_600 * 1_000_000_000;

/// Names `agg` accepts, for error messages and the OpenAPI description.
const AGGREGATE_NAMES: &str = "mean, min, max, sum, count, first, last, p50 (median), p95";

/// Query of a signal read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SignalQuery {
    /// Start, inclusive: RFC 3339 or integer nanoseconds (default `to` - 24h).
    from: Option<String>,
    /// End, exclusive: RFC 3339 or integer nanoseconds (default now).
    to: Option<String>,
    /// Bucket width such as `5m`, `1h`, `1d`; absent with `agg` = one bucket over the range.
    every: Option<String>,
    /// Comma list of mean, min, max, sum, count, first, last, p50, p95 (default mean).
    agg: Option<String>,
    /// Provenance filter such as `device=watch` (comma-separated tags, all must match).
    source: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Csv,
}

/// A read, parsed and checked.
#[derive(Debug, Clone)]
struct ReadPlan {
    query: RangeQuery,
    /// `Some` for a bucketed read.
    buckets: Option<BucketPlan>,
    format: Format,
}

#[derive(Debug, Clone)]
struct BucketPlan {
    every: Option<Span>,
    aggregates: Vec<Aggregate>,
}

/// Raw points or buckets of one signal of one twin.
#[utoipa::path(
    get,
    path = "/api/v1/twins/{id}/signals/{signal}",
    tag = "signals",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Twin id", example = "p0001"),
        ("signal" = String, Path, description = "Signal name", example = "heart_rate"),
        SignalQuery,
    ),
    responses(
        (status = 200, description = "Raw points (no `every`/`agg`) or buckets; `format=csv` answers text/csv with header `time,value` (or `time,<agg>,...` for several aggregates)",
            body = crate::openapi::SignalReadDoc),
        (status = 400, description = "A parameter is invalid; `parameter` names it", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller may read the twin but not this signal", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such twin, or none the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_signal(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, signal)): Path<(String, String)>,
    query: Result<Query<SignalQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let twin = crate::twins::parse_twin_id(&id)?;
    let signal = SignalName::new(&signal)
        .map_err(|error| ApiError::InvalidPath { name: "signal", reason: error.to_string() })?;
    caller.check_hidden(
        &twin,
        &doppel_auth::Action::on_signal(doppel_auth::Permission::Read, signal.clone()),
    )?;
    let Query(query) = query
        .map_err(|rejection| ApiError::InvalidParameter { name: "query", reason: rejection.body_text() })?;
    let plan = plan_read(twin, signal, &query, Timestamp::now())?;
    let engine = state.engine.clone();
    let max_points = state.limits.max_read_points;
    crate::blocking(move || execute(&engine, plan, max_points)).await?
}

/// The refusal of a raw read whose range holds `points` (a number, or
/// "at least" one), more than `max_points`.
fn too_many_points(points: &str, max_points: usize) -> ApiError {
    invalid(
        "from",
        format!(
            "the range holds {points} points, more than {max_points}; narrow from/to or aggregate with every"
        ),
    )
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidParameter { name, reason: reason.into() }
}

/// Parses a time parameter (RFC 3339 or integer nanoseconds); absent or
/// empty means none.
pub(crate) fn time_parameter(name: &'static str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => Timestamp::parse(text).map(Some).ok_or_else(|| {
            invalid(
                name,
                format!("{text:?} is neither RFC 3339 (2024-03-01T12:00:00Z) nor integer nanoseconds"),
            )
        }),
    }
}

fn plan_read(
    twin: TwinId,
    signal: SignalName,
    query: &SignalQuery,
    now: Timestamp,
) -> Result<ReadPlan, ApiError> {
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref(), now)?;
    let every = parse_every(query.every.as_deref())?;
    let aggregates = match query.agg.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => Some(parse_aggregates(text)?),
    };
    let provenance = match query.source.as_deref().filter(|t| !t.is_empty()) {
        None => Provenance::none(),
        Some(text) => Provenance::parse(text).map_err(|error| invalid("source", error.to_string()))?,
    };
    let format = match query.format.as_deref().filter(|t| !t.is_empty()) {
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(other) => return Err(invalid("format", format!("{other:?} is not json or csv"))),
    };
    let buckets = if every.is_some() || aggregates.is_some() {
        Some(BucketPlan { every, aggregates: aggregates.unwrap_or_else(|| vec![Aggregate::Mean]) })
    } else {
        None
    };
    Ok(ReadPlan { query: RangeQuery { twin, signal, provenance, from, to }, buckets, format })
}

/// The `[from, to)` of a read from its `from` and `to` parameters (RFC 3339
/// or integer nanoseconds): `to` defaults to `now`, `from` to a day
/// before `to`, and `from` must come first.
pub(crate) fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), ApiError> {
    let to = time_parameter("to", to)?.unwrap_or(now);
    let from = time_parameter("from", from)?.unwrap_or(to.add_nanos(-DEFAULT_RANGE_NANOS));
    if from >= to {
        return Err(invalid("from", format!("from ({from}) must be before to ({to})")));
    }
    Ok((from, to))
}

/// The `every` parameter: a bucket width such as `1h`, or none.
pub(crate) fn parse_every(text: Option<&str>) -> Result<Option<Span>, ApiError> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse::<Span>().map(Some).map_err(|error| invalid("every", error.to_string())),
    }
}

/// The `agg` parameter: a comma list of distinct aggregate names.
pub(crate) fn parse_aggregates(text: &str) -> Result<Vec<Aggregate>, ApiError> {
    let mut aggregates: Vec<Aggregate> = Vec::new();
    for name in text.split(',').map(str::trim) {
        let aggregate: Aggregate = name.parse().map_err(|_| {
            invalid("agg", format!("{name:?} is not an aggregate (expected {AGGREGATE_NAMES})"))
        })?;
        if aggregates.contains(&aggregate) {
            return Err(invalid("agg", format!("{name:?} is listed twice")));
        }
        aggregates.push(aggregate);
    }
    if aggregates.len() > MAX_AGGREGATES {
        return Err(invalid("agg", format!("more than {MAX_AGGREGATES} aggregates")));
    }
    Ok(aggregates)
}

fn execute(engine: &Engine, plan: ReadPlan, max_points: usize) -> Result<Response, ApiError> {
    let q = &plan.query;
    let Some(model) = engine.model_of(&q.twin) else {
        return Err(ApiError::TwinNotFound(q.twin.to_string()));
    };
    let unit = model.signal(&q.signal).map(|def| def.unit.as_str()).filter(|unit| !unit.is_empty());
    match &plan.buckets {
        None => {
            // Counted from metadata first, so a range far past the limit
            // is refused before any of it is read into memory.
            let at_least = engine.count_at_least(q)?;
            if at_least > max_points as u64 {
                return Err(too_many_points(&format!("at least {at_least}"), max_points));
            }
            let series = engine.read(q)?;
            let points = merge_series(&series, max_points, &|value| model.label(&q.signal, value))?;
            Ok(match plan.format {
                Format::Json => {
                    Json(RawAnswer { twin: &q.twin, signal: &q.signal, unit, points }).into_response()
                }
                Format::Csv => csv_response(raw_csv(&points)),
            })
        }
        Some(bucket_plan) => {
            let buckets = engine.aggregate(q, bucket_plan.every, &bucket_plan.aggregates)?;
            Ok(match plan.format {
                Format::Json => {
                    let head = BucketAnswerHead {
                        twin: &q.twin,
                        signal: &q.signal,
                        unit,
                        every: bucket_plan.every,
                        aggregates: bucket_plan.aggregates.iter().map(|a| a.name()).collect(),
                    };
                    let body = bucket_json(&head, &buckets, &bucket_plan.aggregates)
                        .map_err(|error| ApiError::Internal(format!("writing the bucket answer: {error}")))?;
                    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
                }
                Format::Csv => csv_response(bucket_csv(&buckets, &bucket_plan.aggregates)),
            })
        }
    }
}

/// One raw point of a read, ready to serialise.
#[derive(Debug, Clone, PartialEq)]
struct RawPoint<'a> {
    time: Timestamp,
    value: f64,
    provenance: &'a Provenance,
    /// Category name for category and interval signals (sleep stage).
    label: Option<&'a str>,
}

/// Merges the series of every matching provenance into one time-ordered
/// list (stable, so equal times keep series order), naming each value's
/// category with `label` where the model has one.
fn merge_series<'a>(
    series: &'a [SeriesData],
    max_points: usize,
    label: &dyn Fn(Value) -> Option<&'a str>,
) -> Result<Vec<RawPoint<'a>>, ApiError> {
    let total: usize = series.iter().map(|s| s.samples.len()).sum();
    if total > max_points {
        return Err(too_many_points(&total.to_string(), max_points));
    }
    let mut points: Vec<RawPoint<'a>> = Vec::with_capacity(total);
    for data in series {
        points.extend(data.samples.iter().map(|sample| RawPoint {
            time: sample.time,
            value: sample.value.get(),
            provenance: &data.key.provenance,
            label: label(sample.value),
        }));
    }
    if series.len() > 1 {
        points.sort_by_key(|p| p.time);
    }
    Ok(points)
}

/// A JSON number that prints whole values without a fraction (`62`, not
/// `62.0`), the way people and Influx clients write them.
struct Number(f64);

/// Largest integer an f64 holds exactly (2^53).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0.abs() <= MAX_EXACT_INTEGER {
            // Exact: the value is a whole number within ±2^53.
            serializer.serialize_i64(self.0 as i64)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

struct Rfc3339(Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339())
    }
}

#[derive(Serialize)]
struct RawAnswer<'a> {
    twin: &'a TwinId,
    signal: &'a SignalName,
    unit: Option<&'a str>,
    #[serde(serialize_with = "serialize_points")]
    points: Vec<RawPoint<'a>>,
}

fn serialize_points<S: Serializer>(points: &[RawPoint<'_>], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(points.iter().map(RawPointJson))
}

struct RawPointJson<'a, 'b>(&'b RawPoint<'a>);

impl Serialize for RawPointJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let point = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("time", &Rfc3339(point.time))?;
        map.serialize_entry("value", &Number(point.value))?;
        if let Some(label) = point.label {
            map.serialize_entry("label", label)?;
        }
        if !point.provenance.is_empty() {
            map.serialize_entry("provenance", point.provenance)?;
        }
        map.end()
    }
}

/// Everything of a bucket answer but its buckets, serialised by serde; the
/// buckets (thousands of rows) are written by [`bucket_json`] directly.
#[derive(Serialize)]
struct BucketAnswerHead<'a> {
    twin: &'a TwinId,
    signal: &'a SignalName,
    unit: Option<&'a str>,
    every: Option<Span>,
    aggregates: Vec<&'static str>,
}

/// Bytes per JSON bucket row before its aggregates
/// (`{"time":"2024-03-01T12:00:00Z","count":60}` and a comma), and per
/// aggregate (`"mean":58.11666666666667`): sizes the answer buffer so that a
/// year of hourly rows is written without reallocating.
const JSON_ROW_BYTES: usize = 48;
const JSON_AGGREGATE_BYTES: usize = 28;

/// The JSON answer of a bucketed read:
/// `{"twin", "signal", "unit", "every", "aggregates", "buckets": [...]}`,
/// each bucket `{"time", "count", <aggregate>: value, ...}` in the order the
/// aggregates were asked for, numbers as serde_json writes them (whole
/// values without a fraction, non-finite ones as `null`). Written row by row
/// into one pre-sized buffer: serialising 8,760 rows through serde's map
/// machinery cost more than the aggregation itself.
fn bucket_json(
    head: &BucketAnswerHead<'_>,
    buckets: &[Bucket],
    aggregates: &[Aggregate],
) -> std::io::Result<Vec<u8>> {
    let named = aggregates.iter().filter(|a| **a != Aggregate::Count).count();
    let mut out = Vec::with_capacity(256 + buckets.len() * (JSON_ROW_BYTES + named * JSON_AGGREGATE_BYTES));
    serde_json::to_writer(&mut out, head)?;
    // Reopen the object the head closed, to append the buckets.
    out.pop();
    out.extend_from_slice(b",\"buckets\":[");
    let mut time = String::with_capacity(40);
    for (i, bucket) in buckets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        time.clear();
        bucket.start.write_rfc3339(&mut time);
        out.extend_from_slice(b"{\"time\":\"");
        out.extend_from_slice(time.as_bytes());
        out.extend_from_slice(b"\",\"count\":");
        CompactFormatter.write_u64(&mut out, bucket.count)?;
        for (aggregate, value) in aggregates.iter().zip(&bucket.values) {
            // `count` is already there; writing it twice would make a
            // duplicate JSON key.
            if *aggregate != Aggregate::Count {
                out.push(b',');
                out.push(b'"');
                out.extend_from_slice(aggregate.name().as_bytes());
                out.extend_from_slice(b"\":");
                write_json_number(&mut out, *value)?;
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// Writes `value` as [`Number`] serialises it through serde_json.
fn write_json_number(out: &mut Vec<u8>, value: f64) -> std::io::Result<()> {
    if !value.is_finite() {
        CompactFormatter.write_null(out)
    } else if value.fract() == 0.0 && value.abs() <= MAX_EXACT_INTEGER {
        // Exact: the value is a whole number within ±2^53.
        CompactFormatter.write_i64(out, value as i64)
    } else {
        CompactFormatter.write_f64(out, value)
    }
}

fn raw_csv(points: &[RawPoint<'_>]) -> String {
    let mut csv = String::with_capacity(16 + points.len() * 32);
    csv.push_str("time,value\n");
    for point in points {
        let _ = writeln!(csv, "{},{}", point.time.to_rfc3339(), point.value);
    }
    csv
}

fn bucket_csv(buckets: &[Bucket], aggregates: &[Aggregate]) -> String {
    let mut csv = String::with_capacity(32 + buckets.len() * 48);
    csv.push_str("time");
    if aggregates.len() == 1 {
        csv.push_str(",value");
    } else {
        for aggregate in aggregates {
            csv.push(',');
            csv.push_str(aggregate.name());
        }
    }
    csv.push('\n');
    for bucket in buckets {
        bucket.start.write_rfc3339(&mut csv);
        for value in &bucket.values {
            let _ = write!(csv, ",{value}");
        }
        csv.push('\n');
    }
    csv
}

fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::{Sample, SeriesKey};

    fn query(pairs: &[(&str, &str)]) -> SignalQuery {
        let mut q = SignalQuery::default();
        for (key, value) in pairs {
            let value = Some((*value).to_owned());
            match *key {
                "from" => q.from = value,
                "to" => q.to = value,
                "every" => q.every = value,
                "agg" => q.agg = value,
                "source" => q.source = value,
                "format" => q.format = value,
                _ => panic!("unknown key {key}"),
            }
        }
        q
    }

    fn plan(pairs: &[(&str, &str)]) -> Result<ReadPlan, ApiError> {
        plan_read(
            TwinId::new("a").unwrap(),
            SignalName::new("heart_rate").unwrap(),
            &query(pairs),
            Timestamp::from_secs(1_000_000),
        )
    }

    fn parameter(result: Result<ReadPlan, ApiError>) -> &'static str {
        match result {
            Err(ApiError::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_last_day_raw_json() {
        let plan = plan(&[]).unwrap();
        assert_eq!(plan.query.to, Timestamp::from_secs(1_000_000));
        assert_eq!(plan.query.from, Timestamp::from_secs(1_000_000 - 86_400));
        assert!(plan.buckets.is_none());
        assert_eq!(plan.format, Format::Json);
    }

    #[test]
    fn every_alone_means_hourly_mean_and_agg_alone_means_one_bucket() {
        let hourly = plan(&[("every", "1h")]).unwrap().buckets.unwrap();
        assert_eq!(hourly.every, Some("1h".parse().unwrap()));
        assert_eq!(hourly.aggregates.iter().map(|a| a.name()).collect::<Vec<_>>(), ["mean"]);
        let whole = plan(&[("agg", "min,max")]).unwrap().buckets.unwrap();
        assert_eq!(whole.every, None);
        assert_eq!(whole.aggregates.len(), 2);
    }

    #[test]
    fn each_bad_parameter_is_named() {
        assert_eq!(parameter(plan(&[("every", "1x")])), "every");
        assert_eq!(parameter(plan(&[("every", "0s")])), "every");
        assert_eq!(parameter(plan(&[("agg", "mean,avg")])), "agg");
        assert_eq!(parameter(plan(&[("agg", "mean,mean")])), "agg");
        assert_eq!(parameter(plan(&[("from", "yesterday")])), "from");
        assert_eq!(parameter(plan(&[("to", "2024-13-01T00:00:00Z")])), "to");
        assert_eq!(parameter(plan(&[("from", "10"), ("to", "10")])), "from");
        assert_eq!(parameter(plan(&[("source", "device")])), "source");
        assert_eq!(parameter(plan(&[("format", "xml")])), "format");
    }

    #[test]
    fn times_accept_rfc3339_and_integer_nanoseconds() {
        let plan = plan(&[("from", "2024-03-01T12:00:00Z"), ("to", "1709298000000000000")]).unwrap();
        assert_eq!(plan.query.from, Timestamp::from_secs(1_709_294_400));
        assert_eq!(plan.query.to, Timestamp::from_secs(1_709_298_000));
    }

    fn series(provenance: &str, samples: &[(i64, f64)]) -> SeriesData {
        SeriesData {
            key: SeriesKey {
                twin: TwinId::new("a").unwrap(),
                signal: SignalName::new("heart_rate").unwrap(),
                provenance: Provenance::parse(provenance).unwrap(),
            },
            samples: samples
                .iter()
                .map(|(secs, v)| Sample { time: Timestamp::from_secs(*secs), value: Value::new(*v).unwrap() })
                .collect(),
        }
    }

    #[test]
    fn series_of_several_provenances_merge_in_time_order() {
        let data = [series("device=watch", &[(1, 60.0), (3, 62.0)]), series("device=ring", &[(2, 61.5)])];
        let points = merge_series(&data, 10, &|value| (value.get() == 61.5).then_some("deep")).unwrap();
        assert_eq!(points.iter().map(|p| p.value).collect::<Vec<_>>(), [60.0, 61.5, 62.0]);
        assert_eq!(
            raw_csv(&points),
            "time,value\n1970-01-01T00:00:01Z,60\n1970-01-01T00:00:02Z,61.5\n1970-01-01T00:00:03Z,62\n"
        );
        let json = serde_json::to_value(RawPointJson(&points[1])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"time": "1970-01-01T00:00:02Z", "value": 61.5, "label": "deep", "provenance": "device=ring"})
        );
    }

    #[test]
    fn whole_numbers_print_without_a_fraction() {
        assert_eq!(serde_json::to_string(&Number(62.0)).unwrap(), "62");
        assert_eq!(serde_json::to_string(&Number(-3.0)).unwrap(), "-3");
        assert_eq!(serde_json::to_string(&Number(62.25)).unwrap(), "62.25");
        assert_eq!(serde_json::to_string(&Number(1e300)).unwrap(), "1e+300");
    }

    fn head<'a>(twin: &'a TwinId, signal: &'a SignalName, aggregates: &[Aggregate]) -> BucketAnswerHead<'a> {
        BucketAnswerHead {
            twin,
            signal,
            unit: Some("bpm"),
            every: Some("1h".parse().unwrap()),
            aggregates: aggregates.iter().map(|a| a.name()).collect(),
        }
    }

    #[test]
    fn bucket_rows_keep_the_asked_order_and_one_count() {
        let aggregates = [Aggregate::Max, Aggregate::Count, Aggregate::Mean];
        let bucket = Bucket { start: Timestamp::from_secs(3600), count: 2, values: vec![70.0, 2.0, 65.5] };
        let (twin, signal) = (TwinId::new("a").unwrap(), SignalName::new("heart_rate").unwrap());
        let json =
            bucket_json(&head(&twin, &signal, &aggregates), std::slice::from_ref(&bucket), &aggregates)
                .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"twin":"a","signal":"heart_rate","unit":"bpm","every":"1h","aggregates":["max","count","mean"],"buckets":[{"time":"1970-01-01T01:00:00Z","count":2,"max":70,"mean":65.5}]}"#
        );
        assert_eq!(
            bucket_csv(&[bucket], &aggregates),
            "time,max,count,mean\n1970-01-01T01:00:00Z,70,2,65.5\n"
        );
        let mean_only = Bucket { start: Timestamp::from_secs(3600), count: 2, values: vec![65.5] };
        assert_eq!(bucket_csv(&[mean_only], &aggregates[2..]), "time,value\n1970-01-01T01:00:00Z,65.5\n");
    }

    #[test]
    fn an_answer_without_buckets_is_valid_json_with_an_empty_list() {
        let (twin, signal) = (TwinId::new("a").unwrap(), SignalName::new("heart_rate").unwrap());
        let mut head = head(&twin, &signal, &[Aggregate::Mean]);
        head.unit = None;
        head.every = None;
        let json = bucket_json(&head, &[], &[Aggregate::Mean]).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"twin":"a","signal":"heart_rate","unit":null,"every":null,"aggregates":["mean"],"buckets":[]}"#
        );
    }

    #[test]
    fn directly_written_buckets_equal_what_serde_json_writes() {
        // The reference: the same answer built as a serde_json value, each
        // number through `Number`, as the server wrote it before.
        let aggregates = Aggregate::ALL;
        let awkward = [
            0.1 + 0.2,
            -0.0,
            1e300,
            -1e-300,
            9_007_199_254_740_993.0,
            2.5e15,
            58.116_666_666_666_67,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            -3.0,
            1.0 / 3.0,
        ];
        let buckets: Vec<Bucket> = (0..40i64)
            .map(|i| Bucket {
                start: Timestamp::from_nanos(i * 3_600_000_000_000 - 86_400_000_000_000 + i * 17),
                count: (i * i) as u64,
                values: (0..aggregates.len()).map(|j| awkward[(i as usize + j) % awkward.len()]).collect(),
            })
            .collect();
        let (twin, signal) = (TwinId::new("a").unwrap(), SignalName::new("heart_rate").unwrap());
        let head = head(&twin, &signal, &aggregates);
        let written: serde_json::Value =
            serde_json::from_slice(&bucket_json(&head, &buckets, &aggregates).unwrap()).unwrap();
        let rows: Vec<serde_json::Value> = buckets
            .iter()
            .map(|bucket| {
                let mut row = serde_json::Map::new();
                row.insert("time".into(), serde_json::to_value(Rfc3339(bucket.start)).unwrap());
                row.insert("count".into(), bucket.count.into());
                for (aggregate, value) in aggregates.iter().zip(&bucket.values) {
                    if *aggregate != Aggregate::Count {
                        row.insert(aggregate.name().into(), serde_json::to_value(Number(*value)).unwrap());
                    }
                }
                serde_json::Value::Object(row)
            })
            .collect();
        let mut expected = serde_json::to_value(&head).unwrap();
        expected["buckets"] = serde_json::Value::Array(rows);
        assert_eq!(written, expected);
        // And byte for byte, number by number.
        for value in awkward {
            let mut direct = Vec::new();
            write_json_number(&mut direct, value).unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                serde_json::to_string(&Number(value)).unwrap(),
                "{value}"
            );
        }
    }
}
