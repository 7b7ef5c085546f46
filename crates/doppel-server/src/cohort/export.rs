//! A pseudonymised cohort export: `GET /api/v1/cohort/export`.
//!
//! CSV rows `pseudonym,time,value` of one signal over every twin the
//! caller may read, raw or bucketed. Twin ids are replaced by the caller's
//! pseudonyms (`doppel-privacy`), and twins are written in pseudonym order,
//! since id order would tell which block of rows belongs to which id.
//! Provenance (device names) is left out. The answer is streamed, one
//! twin and one slice of its history at a time.

use std::io::Write;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use doppel_engine::Engine;
use doppel_model::{SignalName, Span, Timestamp, TwinId};
use doppel_store::Aggregate;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::history::for_each_slice;
use crate::problem::{ApiError, Problem};
use crate::signals::{parse_aggregates, parse_every, parse_range};
use crate::streaming::stream_body;

/// Header of the answer.
const CSV_HEADER: &str = "pseudonym,time,value\n";

/// Query of a cohort export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CohortExportQuery {
    /// Signal name, such as heart_rate (required).
    signal: Option<String>,
    /// Only twins of this model.
    model: Option<String>,
    /// Start, inclusive: RFC 3339 or integer nanoseconds (default `to` - 24h).
    from: Option<String>,
    /// End, exclusive: RFC 3339 or integer nanoseconds (default now).
    to: Option<String>,
    /// Bucket width such as `1h`: one row per twin and bucket instead of raw points.
    every: Option<String>,
    /// One aggregate per bucket: mean (default), min, max, sum, count, first, last, p50, p95. Absent with `every` absent = raw points.
    agg: Option<String>,
}

/// A cohort export, parsed and checked.
struct ExportPlan {
    signal: SignalName,
    model: Option<String>,
    from: Timestamp,
    to: Timestamp,
    /// `Some` for bucketed rows.
    buckets: Option<(Option<Span>, Aggregate)>,
}

/// One signal of every twin the caller may read, under pseudonyms.
#[utoipa::path(
    get,
    path = "/api/v1/cohort/export",
    tag = "cohort",
    security(("bearer" = [])),
    params(CohortExportQuery),
    responses(
        (status = 200, description = "text/csv `pseudonym,time,value`: each readable twin's points (or buckets with `every`/`agg`), twins in pseudonym order; pseudonyms are stable for the caller and differ between callers",
            content_type = "text/csv", body = String),
        (status = 400, description = "A parameter is invalid; `parameter` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn cohort_export(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<CohortExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_authenticated()?;
    let Query(query) = query
        .map_err(|rejection| ApiError::InvalidParameter { name: "query", reason: rejection.body_text() })?;
    let plan = plan(&query, Timestamp::now())?;
    let engine = state.engine.clone();
    let privacy = state.limits.privacy.clone();
    let rows = crate::blocking(move || {
        let twins = super::members(&caller, &engine, &plan.signal, plan.model.as_deref());
        let key = privacy.analyst_key(&super::analyst(&caller));
        let mut named: Vec<(String, TwinId)> =
            twins.into_iter().map(|twin| (key.pseudonym(twin.as_str()), twin)).collect();
        named.sort_unstable();
        (plan, named)
    })
    .await?;
    let engine = state.engine.clone();
    let body = stream_body(move |writer| {
        let (plan, twins) = rows;
        writer.write_all(CSV_HEADER.as_bytes()).map_err(write_error)?;
        for (pseudonym, twin) in &twins {
            write_twin(&engine, &plan, pseudonym, twin, writer)?;
        }
        Ok(())
    });
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

fn plan(query: &CohortExportQuery, now: Timestamp) -> Result<ExportPlan, ApiError> {
    let signal = match query.signal.as_deref().filter(|text| !text.is_empty()) {
        None => {
            return Err(ApiError::InvalidParameter {
                name: "signal",
                reason: "a signal name is required".to_owned(),
            });
        }
        Some(text) => SignalName::new(text)
            .map_err(|error| ApiError::InvalidParameter { name: "signal", reason: error.to_string() })?,
    };
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref(), now)?;
    let every = parse_every(query.every.as_deref())?;
    let aggregate = match query.agg.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => match parse_aggregates(text)?.as_slice() {
            [one] => Some(*one),
            _ => {
                return Err(ApiError::InvalidParameter {
                    name: "agg",
                    reason: "a cohort export takes one aggregate: its rows have one value".to_owned(),
                });
            }
        },
    };
    let buckets = match (every, aggregate) {
        (None, None) => None,
        (every, aggregate) => Some((every, aggregate.unwrap_or(Aggregate::Mean))),
    };
    let model = query.model.clone().filter(|model| !model.is_empty());
    Ok(ExportPlan { signal, model, from, to, buckets })
}

fn write_error(error: std::io::Error) -> ApiError {
    ApiError::Internal(format!("writing the cohort export: {error}"))
}

/// Writes the rows of one twin. A twin deleted since the cohort was
/// gathered contributes nothing.
fn write_twin(
    engine: &Engine,
    plan: &ExportPlan,
    pseudonym: &str,
    twin: &TwinId,
    writer: &mut impl Write,
) -> Result<(), ApiError> {
    let mut text = String::new();
    let row = |text: &mut String, time: Timestamp, value: f64| {
        text.push_str(pseudonym);
        text.push(',');
        time.write_rfc3339(text);
        text.push(',');
        text.push_str(&value.to_string());
        text.push('\n');
    };
    match plan.buckets {
        Some((every, aggregate)) => {
            let range = (plan.from, plan.to);
            let Some(buckets) = super::twin_buckets(engine, twin, &plan.signal, range, every, aggregate)?
            else {
                return Ok(());
            };
            for bucket in &buckets {
                if let Some(value) = bucket.values.first().filter(|value| value.is_finite()) {
                    row(&mut text, bucket.start, *value);
                }
            }
            writer.write_all(text.as_bytes()).map_err(write_error)
        }
        None => {
            let outcome = for_each_slice(engine, twin, &plan.signal, plan.from, plan.to, |points| {
                text.clear();
                for point in points {
                    row(&mut text, point.time, point.value);
                }
                writer.write_all(text.as_bytes()).map_err(write_error)
            });
            match outcome {
                Err(ApiError::TwinNotFound(_)) => Ok(()),
                other => other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> CohortExportQuery {
        let mut query = CohortExportQuery::default();
        for (key, value) in pairs {
            let value = Some((*value).to_owned());
            match *key {
                "signal" => query.signal = value,
                "model" => query.model = value,
                "from" => query.from = value,
                "to" => query.to = value,
                "every" => query.every = value,
                "agg" => query.agg = value,
                _ => panic!("unknown key {key}"),
            }
        }
        query
    }

    fn parameter(pairs: &[(&str, &str)]) -> &'static str {
        match plan(&query(pairs), Timestamp::from_secs(1_000_000)) {
            Err(ApiError::InvalidParameter { name, .. }) => name,
            other => panic!("expected InvalidParameter, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_signal_is_required_and_one_aggregate_at_most() {
        assert_eq!(parameter(&[]), "signal");
        assert_eq!(parameter(&[("signal", "heart rate")]), "signal");
        assert_eq!(parameter(&[("signal", "heart_rate"), ("agg", "mean,max")]), "agg");
        assert_eq!(parameter(&[("signal", "heart_rate"), ("every", "1x")]), "every");
        assert_eq!(parameter(&[("signal", "heart_rate"), ("from", "10"), ("to", "5")]), "from");
    }

    #[test]
    fn every_alone_means_a_mean_per_bucket_and_nothing_means_raw_points() {
        let now = Timestamp::from_secs(1_000_000);
        let raw = plan(&query(&[("signal", "heart_rate")]), now).unwrap();
        assert!(raw.buckets.is_none());
        assert_eq!((raw.from, raw.to), (Timestamp::from_secs(1_000_000 - 86_400), now));
        let hourly = plan(&query(&[("signal", "heart_rate"), ("every", "1h")]), now).unwrap();
        assert_eq!(hourly.buckets, Some((Some("1h".parse().unwrap()), Aggregate::Mean)));
        let whole = plan(&query(&[("signal", "heart_rate"), ("agg", "max")]), now).unwrap();
        assert_eq!(whole.buckets, Some((None, Aggregate::Max)));
    }
}
