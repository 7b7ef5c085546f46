//! Differentially private cohort statistics: `POST /api/v1/cohort/stats`.
//!
//! Each twin of the cohort contributes one value, its mean of the signal
//! over the range (so a person counts once however many points they
//! have); twins without a point in the range contribute nothing. The
//! statistic over those values is released with Laplace noise by
//! `doppel-privacy`, after the caller's privacy budget is charged on disk.
//!
//! Order of work: the request is checked and the budget looked at (a
//! request that cannot be afforded is refused before any data is read);
//! the values are gathered; the charge is saved; only then is the noise
//! drawn and the answer sent. A failure before the charge costs nothing.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use doppel_engine::Engine;
use doppel_model::{SignalName, Timestamp, TwinId};
use doppel_privacy::{Clamp, Epsilon, MAX_HISTOGRAM_BINS, Statistic, release};
use doppel_store::Aggregate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::problem::{ApiError, Problem};
use crate::signals::parse_range;

/// Body of `POST /api/v1/cohort/stats`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsRequest {
    /// Signal name, such as heart_rate.
    signal: String,
    /// `count`, `sum`, `mean` or `histogram`.
    statistic: String,
    /// Privacy loss to spend on this answer, charged to the caller's budget; smaller is noisier.
    epsilon: f64,
    /// Start, inclusive: RFC 3339 or integer nanoseconds (default `to` - 24h).
    #[serde(default)]
    from: Option<String>,
    /// End, exclusive: RFC 3339 or integer nanoseconds (default now).
    #[serde(default)]
    to: Option<String>,
    /// Lower end of the clamping range; default the signal's valid range in `model`.
    #[serde(default)]
    lo: Option<f64>,
    /// Upper end of the clamping range; default the signal's valid range in `model`.
    #[serde(default)]
    hi: Option<f64>,
    /// Bins of a histogram over [lo, hi] (default 10).
    #[serde(default)]
    bins: Option<u32>,
    /// Only twins of this model; its definition of the signal supplies `lo` and `hi` when absent.
    #[serde(default)]
    model: Option<String>,
}

/// Bins of a histogram when the request names none.
const DEFAULT_BINS: u32 = 10;

/// The caller's privacy budget after an answer, in units of ε.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BudgetView {
    /// The caller's total.
    total: f64,
    /// Spent, this answer included.
    spent: f64,
    /// Left.
    remaining: f64,
}

/// One bin of a noisy histogram.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BinView {
    /// Lower edge, inclusive.
    lo: f64,
    /// Upper edge, exclusive (inclusive for the last bin).
    hi: f64,
    /// Noisy count of twins, rounded and at least 0.
    count: f64,
}

/// A differentially private answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatsAnswer {
    /// The statistic.
    statistic: &'static str,
    /// The signal.
    signal: String,
    /// Start of the range (RFC 3339).
    from: String,
    /// End of the range (RFC 3339).
    to: String,
    /// Clamping range applied to each twin's value; null for a count.
    clamp: Option<[f64; 2]>,
    /// Noisy count, sum or mean; null for a histogram.
    value: Option<f64>,
    /// Noisy number of contributing twins (count, mean); null when withheld (sum, histogram).
    count: Option<f64>,
    /// Noisy bins of a histogram.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bins: Vec<BinView>,
    /// Scale b = sensitivity/epsilon of the Laplace noise added (for a mean, to its sum; for a histogram, to each bin).
    noise_scale: f64,
    /// Epsilon charged for this answer.
    epsilon_spent: f64,
    /// The caller's budget after this answer.
    budget: BudgetView,
    /// Whose presence the answer protects: one twin, contributing one value.
    unit_of_privacy: &'static str,
}

/// A request, checked.
struct StatsPlan {
    signal: SignalName,
    statistic: Statistic,
    epsilon: Epsilon,
    from: Timestamp,
    to: Timestamp,
    clamp: Option<Clamp>,
    model: Option<String>,
}

/// A cohort statistic under differential privacy, charged to the caller's budget.
#[utoipa::path(
    post,
    path = "/api/v1/cohort/stats",
    tag = "cohort",
    security(("bearer" = [])),
    request_body(content = StatsRequest, description = "e.g. {\"signal\": \"heart_rate\", \"statistic\": \"mean\", \"epsilon\": 0.5, \"from\": \"2024-03-01T00:00:00Z\", \"to\": \"2024-04-01T00:00:00Z\", \"lo\": 30, \"hi\": 200}"),
    responses(
        (status = 200, description = "The noisy statistic, the epsilon spent and the budget left", body = StatsAnswer),
        (status = 400, description = "A member of the body is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The answer would spend more than the caller's budget has left (`budget` says how much); nothing was charged", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn cohort_stats(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<StatsAnswer>, ApiError> {
    caller.require_authenticated()?;
    let body = crate::limits::read_body(&headers, body, state.limits.max_body_bytes).await?;
    let request: StatsRequest = crate::limits::parse_json(&body)?;
    let engine = state.engine.clone();
    let privacy = state.limits.privacy.clone();
    crate::blocking(move || {
        let plan = plan(&engine, request, Timestamp::now())?;
        let analyst = super::analyst(&caller);
        privacy.check_affordable(&analyst, plan.epsilon)?;
        let twins = super::members(&caller, &engine, &plan.signal, plan.model.as_deref());
        let values = twin_means(&engine, &plan, &twins)?;
        let budget = privacy.charge(&analyst, plan.epsilon)?;
        let released = release(plan.statistic, &values, plan.clamp, plan.epsilon, &mut rand::rng())
            .map_err(|error| ApiError::Internal(format!("releasing the statistic: {error}")))?;
        Ok(Json(StatsAnswer {
            statistic: plan.statistic.name(),
            signal: plan.signal.to_string(),
            from: plan.from.to_rfc3339(),
            to: plan.to.to_rfc3339(),
            clamp: plan.clamp.map(|clamp| [clamp.lo(), clamp.hi()]),
            value: released.value,
            count: released.count,
            bins: released
                .bins
                .iter()
                .map(|bin| BinView { lo: bin.lo, hi: bin.hi, count: bin.count })
                .collect(),
            noise_scale: released.noise_scale,
            epsilon_spent: plan.epsilon.get(),
            budget: BudgetView {
                total: budget.total(),
                spent: budget.spent(),
                remaining: budget.remaining(),
            },
            unit_of_privacy: "twin",
        }))
    })
    .await?
}

fn invalid(reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidBody(reason.to_string())
}

fn plan(engine: &Engine, request: StatsRequest, now: Timestamp) -> Result<StatsPlan, ApiError> {
    let signal = SignalName::new(&request.signal).map_err(|error| invalid(format!("signal: {error}")))?;
    let statistic = match request.statistic.as_str() {
        "count" => Statistic::Count,
        "sum" => Statistic::Sum,
        "mean" => Statistic::Mean,
        "histogram" => Statistic::Histogram { bins: request.bins.unwrap_or(DEFAULT_BINS) },
        other => {
            return Err(invalid(format!("statistic {other:?} is not one of count, sum, mean, histogram")));
        }
    };
    if let (Some(bins), Statistic::Histogram { .. }) = (request.bins, statistic)
        && !(1..=MAX_HISTOGRAM_BINS).contains(&bins)
    {
        return Err(invalid(format!("bins: a histogram needs 1 to {MAX_HISTOGRAM_BINS} bins, not {bins}")));
    }
    let epsilon = Epsilon::new(request.epsilon).map_err(|error| invalid(format!("epsilon: {error}")))?;
    let (from, to) = parse_range(request.from.as_deref(), request.to.as_deref(), now)
        .map_err(|error| invalid(error.to_string().replace("query parameter", "member")))?;
    let model = request.model.filter(|model| !model.is_empty());
    let clamp = match (request.lo, request.hi) {
        (Some(lo), Some(hi)) => Some(Clamp::new(lo, hi).map_err(invalid)?),
        (None, None) => default_clamp(engine, model.as_deref(), &signal)?,
        _ => {
            return Err(invalid(
                "lo and hi go together: give both, or neither to take the model's valid range",
            ));
        }
    };
    if clamp.is_none() && statistic != Statistic::Count {
        return Err(invalid(format!(
            "{} needs a clamping range: give lo and hi, or a model whose {signal} has a valid range",
            statistic.name()
        )));
    }
    let clamp = if statistic == Statistic::Count { None } else { clamp };
    Ok(StatsPlan { signal, statistic, epsilon, from, to, clamp, model })
}

/// The valid range of `signal` in `model`, when both are named and known.
/// Taken from the definition, never from the data, as differential
/// privacy requires.
fn default_clamp(
    engine: &Engine,
    model: Option<&str>,
    signal: &SignalName,
) -> Result<Option<Clamp>, ApiError> {
    let Some(name) = model else { return Ok(None) };
    let definition = engine.models().get(name).ok_or_else(|| {
        ApiError::UnknownModel(format!(
            "model {name:?} is not defined (known models: {})",
            engine.models().names().join(", ")
        ))
    })?;
    let range = definition.signal(signal).and_then(|def| def.range);
    range.map(|range| Clamp::new(range.min(), range.max()).map_err(invalid)).transpose()
}

/// Each twin's mean of the signal over the range, for the twins that have
/// a point in it. Means come from the store's aggregation, so no twin's
/// history is held in memory.
fn twin_means(engine: &Engine, plan: &StatsPlan, twins: &[TwinId]) -> Result<Vec<f64>, ApiError> {
    let mut values = Vec::with_capacity(twins.len());
    for twin in twins {
        let range = (plan.from, plan.to);
        // A twin deleted since the cohort was gathered contributes nothing.
        let Some(buckets) = super::twin_buckets(engine, twin, &plan.signal, range, None, Aggregate::Mean)?
        else {
            continue;
        };
        if let Some(mean) =
            buckets.first().and_then(|bucket| bucket.values.first()).filter(|mean| mean.is_finite())
        {
            values.push(*mean);
        }
    }
    Ok(values)
}
