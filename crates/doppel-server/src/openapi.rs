//! The OpenAPI 3 document (`GET /api/openapi.json`), generated from the
//! `#[utoipa::path]` annotations on every handler.
//!
//! The engine's answer types (twin views, summaries) do not depend on
//! utoipa, so their schemas are described here by `*Doc` types that mirror
//! their JSON; a test in `tests/` checks the document lists every route.
//! Every route that needs a credential names the `bearer` security scheme,
//! and [`SharedResponses`] adds the answers authentication can give it
//! (401, 403, 429), so they are written once; public routes get the two
//! they can give too (401 for a credential that does not verify, 429).
//! Every route with path segments can also answer 400 naming a segment
//! that does not parse; that answer is added the same way.

use axum::Json;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Schema of a twin with its live state (the engine's `TwinView`).
#[derive(ToSchema)]
#[schema(as = TwinView)]
#[expect(dead_code, reason = "schema only: describes the JSON the engine's TwinView serialises to")]
pub(crate) struct TwinViewDoc {
    /// Twin id.
    id: String,
    /// Model name, such as `person`.
    model: String,
    /// Creation time (RFC 3339 UTC).
    #[schema(format = DateTime)]
    created: String,
    /// Slow facts about the twin.
    #[schema(value_type = Object)]
    properties: serde_json::Map<String, serde_json::Value>,
    /// Live state of each signal seen.
    signals: Vec<SignalStateDoc>,
}

/// Schema of one signal's live state (the engine's `SignalState`).
#[derive(ToSchema)]
#[schema(as = SignalState)]
#[expect(dead_code, reason = "schema only")]
pub(crate) struct SignalStateDoc {
    /// Signal name.
    signal: String,
    /// Unit from the twin's model, when it defines one.
    unit: Option<String>,
    /// Time of the latest point (RFC 3339 UTC).
    #[schema(format = DateTime)]
    last_time: String,
    /// Latest value.
    last_value: f64,
    /// Category label of the latest value (sleep stage, symptom), if any.
    label: Option<String>,
    /// Rolling statistics over the model's windows.
    windows: Vec<WindowStatsDoc>,
}

/// Schema of rolling statistics over one window (the engine's `WindowStats`).
#[derive(ToSchema)]
#[schema(as = WindowStats)]
#[expect(dead_code, reason = "schema only")]
pub(crate) struct WindowStatsDoc {
    /// Window length such as `1h` or `7d`.
    window: String,
    /// Points in the window.
    count: u64,
    /// Mean.
    mean: f64,
    /// Minimum.
    min: f64,
    /// Maximum.
    max: f64,
    /// Standard deviation.
    std: f64,
}

/// Schema of one entry of the twin list (the engine's `TwinSummary`).
#[derive(ToSchema)]
#[schema(as = TwinSummary)]
#[expect(dead_code, reason = "schema only")]
pub(crate) struct TwinSummaryDoc {
    /// Twin id.
    id: String,
    /// Model name.
    model: String,
    /// Creation time (RFC 3339 UTC).
    #[schema(format = DateTime)]
    created: String,
}

/// Schema of a signal read: `points` for a raw read, `every`,
/// `aggregates` and `buckets` for an aggregate read.
#[derive(ToSchema)]
#[schema(as = SignalRead)]
#[expect(dead_code, reason = "schema only")]
pub(crate) struct SignalReadDoc {
    /// Twin id.
    twin: String,
    /// Signal name.
    signal: String,
    /// Unit, when the twin's model defines one.
    unit: Option<String>,
    /// Raw read: points of every matching series in time order.
    points: Option<Vec<RawPointDoc>>,
    /// Aggregate read: bucket width (null = one bucket over the range).
    every: Option<String>,
    /// Aggregate read: the aggregates, in the order asked.
    aggregates: Option<Vec<String>>,
    /// Aggregate read: `{"time", "count", <aggregate>: value, ...}` per non-empty bucket.
    #[schema(value_type = Option<Vec<Object>>)]
    buckets: Option<Vec<serde_json::Value>>,
}

/// Schema of one raw point of a read.
#[derive(ToSchema)]
#[schema(as = RawPoint)]
#[expect(dead_code, reason = "schema only")]
pub(crate) struct RawPointDoc {
    /// RFC 3339 UTC.
    time: String,
    /// The value; whole numbers are written without a fraction.
    value: f64,
    /// Provenance tags such as `device=watch`, when the series has any.
    provenance: Option<String>,
}

/// Schema of an answer that is a zip archive (a twin's export).
#[derive(ToSchema)]
#[schema(as = ZipArchive, value_type = String, format = Binary)]
#[expect(dead_code, reason = "schema only: describes the bytes of a zip archive")]
pub(crate) struct ZipArchiveDoc(Vec<u8>);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Doppel API",
        description = "Ingest, query and follow personal digital twins. Errors are RFC 9457 problem documents, except on the InfluxDB-compatible write routes."
    ),
    paths(
        crate::write::write_v2,
        crate::write::write_v1,
        crate::points::post_points,
        crate::points::post_twin_points,
        crate::twins::put_twin,
        crate::twins::get_twin,
        crate::twins::delete_twin,
        crate::twins::list_twins,
        crate::signals::get_signal,
        crate::export::export_twin,
        crate::cohort::export::cohort_export,
        crate::cohort::stats::cohort_stats,
        crate::stream::sse::twin_events,
        crate::stream::websocket::websocket,
        crate::ops::health,
        crate::ops::metrics,
        crate::ops::flush,
        openapi_json,
        crate::auth::tokens::create_token,
        crate::auth::tokens::list_tokens,
        crate::auth::tokens::revoke_token,
        crate::auth::grants::list_grants,
        crate::auth::grants::create_grant,
        crate::auth::grants::revoke_grant,
        crate::audit::read::list_audit,
    ),
    components(schemas(
        crate::problem::Problem,
        crate::problem::ItemError,
        crate::problem::InfluxError,
        crate::problem::InfluxLineError,
        crate::problem::RefusedWrite,
        crate::problem::BudgetDoc,
        crate::auth::tokens::CreateToken,
        crate::auth::tokens::CreatedToken,
        crate::auth::tokens::TokenView,
        crate::auth::tokens::TokenList,
        crate::auth::grants::CreateGrant,
        crate::auth::grants::GrantView,
        crate::auth::grants::TwinGrants,
        crate::cohort::stats::StatsRequest,
        crate::cohort::stats::StatsAnswer,
        crate::cohort::stats::BudgetView,
        crate::cohort::stats::BinView,
        crate::audit::read::AuditRecordView,
        crate::audit::read::AuditPage,
        crate::points::PointsWritten,
        crate::twins::PutTwin,
        crate::twins::TwinPage,
        crate::stream::Subscription,
        crate::stream::ClientMessage,
        crate::ops::Health,
        crate::ops::Flushed,
        TwinViewDoc,
        SignalStateDoc,
        WindowStatsDoc,
        TwinSummaryDoc,
        SignalReadDoc,
        RawPointDoc,
        ZipArchiveDoc,
    )),
    tags(
        (name = "write", description = "InfluxDB line protocol; `bucket`, `org`, `db` are accepted and ignored"),
        (name = "points", description = "JSON points"),
        (name = "twins", description = "Twin management"),
        (name = "signals", description = "Range and aggregate reads"),
        (name = "events", description = "Live events over SSE and WebSocket"),
        (name = "ops", description = "Health and metrics"),
        (name = "auth", description = "API tokens and sharing twins"),
        (name = "cohort", description = "Pseudonymised exports and differentially private statistics over the twins the caller may read"),
        (name = "audit", description = "The hash-chained record of who read, wrote, shared or deleted what"),
    ),
    modifiers(&SharedResponses)
)]
struct ApiDoc;

/// Declares the `bearer` scheme (a Doppel API token or a JWT, as
/// `Authorization: Bearer …`; InfluxDB clients may send `Token …`) and
/// adds to every operation the answers the shared layers can give it:
/// authentication and rate limiting, and the 400 of a bad path segment.
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("dpl_<id>_<secret> API token or JWT")
                    .description(Some(
                        "`Authorization: Bearer <credential>`; InfluxDB clients may send `Authorization: Token <credential>`.",
                    ))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    crate::problem::PROBLEM_CONTENT_TYPE,
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let public = operation.security.as_ref().is_none_or(Vec::is_empty);
                let has_path_segments = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|parameter| parameter.parameter_in == ParameterIn::Path);
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
                };
                if has_path_segments {
                    add("400", "A path segment is not valid; `parameter` names it");
                }
                if public {
                    // A credential that is sent is checked on every route,
                    // and every client is rate-limited, public routes too.
                    add("401", "A credential was sent and does not verify; `WWW-Authenticate: Bearer`");
                    add("429", "Too many requests from this client; `Retry-After` says when to retry");
                } else {
                    add("401", "No credential, or one that does not verify; `WWW-Authenticate: Bearer`");
                    add("403", "The credential does not allow this (the problem says why)");
                    add("429", "Too many requests from this credential; `Retry-After` says when to retry");
                }
            }
        }
    }
}

/// The OpenAPI 3 document of this API, for `GET /api/openapi.json` and for
/// tools that generate clients.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "ops",
    responses((status = 200, description = "OpenAPI 3 document", body = Object))
)]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(doc: &utoipa::openapi::OpenApi, path: &str, method: &str) -> Vec<String> {
        let item = &doc.paths.paths[path];
        let operation = match method {
            "get" => item.get.as_ref(),
            "delete" => item.delete.as_ref(),
            "post" => item.post.as_ref(),
            _ => None,
        };
        operation.map(|operation| operation.responses.responses.keys().cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn public_routes_document_the_refusal_of_a_bad_credential_and_the_rate_limit() {
        let doc = openapi();
        for path in ["/health", "/api/openapi.json"] {
            let listed = statuses(&doc, path, "get");
            assert!(
                listed.contains(&"401".to_owned()) && listed.contains(&"429".to_owned()),
                "{path}: {listed:?}"
            );
            assert!(!listed.contains(&"403".to_owned()), "{path}: {listed:?}");
        }
    }

    #[test]
    fn routes_with_path_segments_document_the_400_of_a_bad_segment() {
        let doc = openapi();
        for (path, method) in [
            ("/api/v1/twins/{id}", "get"),
            ("/api/v1/twins/{id}", "delete"),
            ("/api/v1/twins/{id}/grants/{grant}", "delete"),
            ("/api/v1/tokens/{id}", "delete"),
        ] {
            assert!(statuses(&doc, path, method).contains(&"400".to_owned()), "{method} {path}");
        }
        assert!(!statuses(&doc, "/api/v1/tokens", "get").contains(&"400".to_owned()));
    }

    #[test]
    fn influx_write_routes_document_refusals_in_their_own_shape() {
        let doc = serde_json::to_value(openapi()).unwrap();
        for path in ["/api/v2/write", "/write"] {
            for status in ["401", "429"] {
                let content = &doc["paths"][path]["post"]["responses"][status]["content"];
                assert!(content.get("application/json").is_some(), "{path} {status}: {content}");
                assert!(content.get(crate::problem::PROBLEM_CONTENT_TYPE).is_none(), "{path} {status}");
            }
        }
    }

    #[test]
    fn times_in_twin_answers_are_documented_as_rfc3339_text() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        for (schema, member) in
            [("TwinView", "created"), ("TwinSummary", "created"), ("SignalState", "last_time")]
        {
            let property = &schemas[schema]["properties"][member];
            assert_eq!(property["type"], "string", "{schema}.{member}: {property}");
            assert_eq!(property["format"], "date-time", "{schema}.{member}: {property}");
        }
    }
}
