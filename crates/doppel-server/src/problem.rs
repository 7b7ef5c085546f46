//! Every way a request can fail, mapped once to an HTTP answer.
//!
//! Handlers return [`ApiError`]; it becomes an RFC 9457
//! `application/problem+json` body (`type`, `title`, `status`, `detail`,
//! plus extension members naming the parameter, the limit or every bad
//! item). The Influx write routes use [`ApiError::into_influx_response`]
//! instead, which answers in InfluxDB's `{"code","message"}` shape.

use axum::Json;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use doppel_engine::{EngineError, IngestError};
use doppel_protocols::{LineError, ParseErrors};
use doppel_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::limits::{BUSY_RETRY_AFTER_SECS, FLUSH_BEHIND_RETRY_AFTER_SECS};

/// Media type of RFC 9457 problem documents.
pub(crate) const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Why a request failed; each variant knows its status and its body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// A query parameter could not be parsed or is out of range.
    #[error("query parameter `{name}` is invalid: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// A path segment (twin id, signal name) is not valid.
    #[error("path segment `{name}` is invalid: {reason}")]
    InvalidPath { name: &'static str, reason: String },
    /// A request header is unusable, such as one that must appear once
    /// appearing twice.
    #[error("header `{name}` is invalid: {reason}")]
    InvalidHeader { name: &'static str, reason: String },
    /// The body is not the JSON document the route expects.
    #[error("request body is invalid: {0}")]
    InvalidBody(String),
    /// Items of a batch were rejected by the parser or the twin's model;
    /// nothing of the batch was written.
    #[error("{} item(s) rejected, nothing was written", distinct_lines(errors))]
    BadItems { errors: Vec<LineError>, truncated: bool },
    /// The request held no points at all.
    #[error("writing requires points")]
    EmptyBatch,
    /// The twin does not exist.
    #[error("twin {0:?} does not exist")]
    TwinNotFound(String),
    /// No route matches the path.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// A twin's model name is unknown; the text names the known ones.
    #[error("{0}")]
    UnknownModel(String),
    /// A twin's properties do not fit its model.
    #[error("invalid properties: {}", .0.join("; "))]
    InvalidProperties(Vec<String>),
    /// The body, as sent or inflated, is larger than allowed.
    #[error("request body is larger than {limit_bytes} bytes{}", if *inflated { " after gzip inflation" } else { "" })]
    BodyTooLarge { limit_bytes: usize, inflated: bool },
    /// The batch holds more points than allowed.
    #[error("batch holds {points} points, more than the limit of {limit}; split it into smaller batches")]
    TooManyPoints { points: usize, limit: usize },
    /// The answer took longer than the request timeout.
    #[error("the request did not complete within {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// A `Content-Encoding` other than gzip or identity.
    #[error("Content-Encoding {0:?} is not supported (use gzip or identity)")]
    UnsupportedEncoding(String),
    /// A gzip body could not be inflated.
    #[error("gzip body could not be inflated: {0}")]
    BadGzip(String),
    /// The body could not be read from the connection.
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    /// No credential, or one that did not verify, on a route that needs
    /// one. The text is the same whatever went wrong, so that a guesser
    /// cannot tell an unknown token from a wrong secret or a revoked one;
    /// why goes to the server's log.
    #[error(
        "authentication required: send a valid, current credential as `Authorization: Bearer <credential>`"
    )]
    Unauthenticated {
        /// Whether a credential was presented (and refused).
        presented: bool,
    },
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The caller may not write some (twin, signal) pairs of a batch;
    /// nothing of the batch was written.
    #[error("{principal} may not write {}; nothing was written", describe_refused(refused))]
    WriteForbidden { principal: String, refused: Vec<RefusedWrite> },
    /// The caller sent more requests than its rate limit allows.
    #[error(
        "too many requests: the limit is {per_second} per second (bursts of {burst}); retry in {retry_after_secs} s"
    )]
    RateLimited { per_second: f64, burst: u32, retry_after_secs: u64 },
    /// No API token with this id (or none the caller may see).
    #[error("no API token {0}")]
    TokenNotFound(String),
    /// No grant with this id on the twin.
    #[error("twin {twin} has no grant {grant}")]
    GrantNotFound { twin: String, grant: u64 },
    /// A differentially private answer would spend more of the analyst's
    /// privacy budget than is left; nothing was charged or answered.
    #[error(
        "{analyst} asked for epsilon {} but has {} left of a budget of {} (spent {}); the budget does not renew",
        .budget.requested, .budget.remaining, .budget.total, .budget.spent
    )]
    BudgetExhausted { analyst: String, budget: BudgetDoc },
    /// The audit log cannot record requests now, so audited requests are
    /// refused rather than served unrecorded.
    /// The cause (naming files) is logged, never sent.
    #[error(
        "the audit log cannot record this request now, so it was refused before it did anything; retry later"
    )]
    AuditUnavailable(String),
    /// The server keeps no audit log.
    #[error("this server keeps no audit log")]
    AuditOff,
    /// The store stopped accepting writes after a failed fsync; reads
    /// still work, writes need a restart of the server. The cause
    /// (naming files) is logged, never sent.
    #[error(
        "the store stopped accepting writes after a failed fsync; reads still work, and writes resume after the server is restarted"
    )]
    StorageStopped(String),
    /// The store's heads are full because flushing has fallen behind the
    /// writes; nothing of the write was kept. Answered with `Retry-After`,
    /// which InfluxDB clients and Telegraf honour.
    #[error("{0}")]
    FlushBehind(String),
    /// More requests are in flight than the server serves at once; this
    /// one was refused before it did anything. Answered with `Retry-After`.
    #[error("the server is serving its limit of {limit} requests at once; nothing was done, retry shortly")]
    Busy { limit: usize },
    /// Writing to the store's WAL, the auth state or the privacy
    /// budget failed (an I/O error, a full disk) and nothing of the
    /// request was kept; it may be retried. The text names no file.
    #[error("{0}")]
    StorageWriteFailed(String),
    /// Something failed inside the server or engine; the client cannot fix it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Most refused twins named in a 403 to a write, so an answer about a huge
/// batch stays small.
pub(crate) const MAX_REFUSED_TWINS: usize = 100;

/// One twin of a refused batch and what of it the caller may not write.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(crate) struct RefusedWrite {
    /// The twin.
    pub(crate) twin: String,
    /// The signals refused; empty when the whole twin is (it may not be created, or not written at all).
    pub(crate) signals: Vec<String>,
}

fn describe_refused(refused: &[RefusedWrite]) -> String {
    let mut text = String::new();
    for (i, item) in refused.iter().enumerate() {
        if i > 0 {
            text.push_str("; ");
        }
        if item.signals.is_empty() {
            text.push_str(&format!("twin {}", item.twin));
        } else {
            text.push_str(&format!("{} of twin {}", item.signals.join(", "), item.twin));
        }
    }
    text
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidParameter { .. }
            | Self::InvalidPath { .. }
            | Self::InvalidHeader { .. }
            | Self::InvalidBody(_)
            | Self::BadItems { .. }
            | Self::EmptyBatch
            | Self::UnknownModel(_)
            | Self::InvalidProperties(_)
            | Self::BadGzip(_)
            | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::TwinNotFound(_)
            | Self::RouteNotFound(_)
            | Self::TokenNotFound(_)
            | Self::GrantNotFound { .. }
            | Self::AuditOff => StatusCode::NOT_FOUND,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::WriteForbidden { .. } | Self::BudgetExhausted { .. } => {
                StatusCode::FORBIDDEN
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } | Self::TooManyPoints { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::AuditUnavailable(_)
            | Self::StorageStopped(_)
            | Self::StorageWriteFailed(_)
            | Self::FlushBehind(_)
            | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable identifier of the problem kind (the tail of its `type` URI).
    fn slug(&self) -> &'static str {
        match self {
            Self::InvalidParameter { .. } => "invalid-parameter",
            Self::InvalidPath { .. } => "invalid-path",
            Self::InvalidHeader { .. } => "invalid-header",
            Self::InvalidBody(_) => "invalid-body",
            Self::BadItems { .. } => "invalid-points",
            Self::EmptyBatch => "empty-batch",
            Self::TwinNotFound(_) => "twin-not-found",
            Self::RouteNotFound(_) => "route-not-found",
            Self::MethodNotAllowed { .. } => "method-not-allowed",
            Self::UnknownModel(_) => "unknown-model",
            Self::InvalidProperties(_) => "invalid-properties",
            Self::BodyTooLarge { .. } => "body-too-large",
            Self::TooManyPoints { .. } => "batch-too-large",
            Self::Timeout { .. } => "request-timeout",
            Self::UnsupportedEncoding(_) => "unsupported-encoding",
            Self::BadGzip(_) => "invalid-gzip",
            Self::BodyRead(_) => "body-read-failed",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::WriteForbidden { .. } => "write-forbidden",
            Self::RateLimited { .. } => "rate-limited",
            Self::TokenNotFound(_) => "token-not-found",
            Self::GrantNotFound { .. } => "grant-not-found",
            Self::BudgetExhausted { .. } => "privacy-budget-exhausted",
            Self::AuditUnavailable(_) => "audit-unavailable",
            Self::AuditOff => "audit-off",
            Self::StorageStopped(_) => "storage-stopped",
            Self::StorageWriteFailed(_) => "storage-write-failed",
            Self::FlushBehind(_) => "flush-behind",
            Self::Busy { .. } => "server-busy",
            Self::Internal(_) => "internal-error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::InvalidParameter { .. } => "Invalid query parameter",
            Self::InvalidPath { .. } => "Invalid path segment",
            Self::InvalidHeader { .. } => "Invalid header",
            Self::InvalidBody(_) => "Invalid request body",
            Self::BadItems { .. } => "Invalid points",
            Self::EmptyBatch => "Empty batch",
            Self::TwinNotFound(_) => "Twin not found",
            Self::RouteNotFound(_) => "Not found",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::UnknownModel(_) => "Unknown model",
            Self::InvalidProperties(_) => "Invalid properties",
            Self::BodyTooLarge { .. } => "Request body too large",
            Self::TooManyPoints { .. } => "Batch too large",
            Self::Timeout { .. } => "Request timeout",
            Self::UnsupportedEncoding(_) => "Unsupported content encoding",
            Self::BadGzip(_) => "Invalid gzip body",
            Self::BodyRead(_) => "Request body could not be read",
            Self::Unauthenticated { .. } => "Authentication required",
            Self::Forbidden(_) => "Forbidden",
            Self::WriteForbidden { .. } => "Write forbidden",
            Self::RateLimited { .. } => "Too many requests",
            Self::TokenNotFound(_) => "API token not found",
            Self::GrantNotFound { .. } => "Grant not found",
            Self::BudgetExhausted { .. } => "Privacy budget exhausted",
            Self::AuditUnavailable(_) => "Audit log unavailable",
            Self::AuditOff => "No audit log",
            Self::StorageStopped(_) => "Storage stopped",
            Self::StorageWriteFailed(_) => "Storage write failed",
            Self::FlushBehind(_) => "Flushing behind",
            Self::Busy { .. } => "Server busy",
            Self::Internal(_) => "Internal server error",
        }
    }

    /// The RFC 9457 document for this error.
    pub(crate) fn to_problem(&self) -> Problem {
        let status = self.status();
        let mut problem = Problem {
            problem_type: format!("urn:doppel:problem:{}", self.slug()),
            title: self.title().to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            parameter: None,
            errors: None,
            truncated: None,
            limit: None,
            refused: None,
            budget: None,
            error_id: None,
        };
        match self {
            Self::InvalidParameter { name, .. }
            | Self::InvalidPath { name, .. }
            | Self::InvalidHeader { name, .. } => {
                problem.parameter = Some((*name).to_owned());
            }
            Self::BadItems { errors, truncated } => {
                problem.errors = Some(
                    errors.iter().map(|e| ItemError { item: e.line, message: e.message.clone() }).collect(),
                );
                problem.truncated = Some(*truncated);
            }
            Self::UnknownModel(_) => problem.parameter = Some("model".to_owned()),
            Self::BodyTooLarge { limit_bytes, .. } => problem.limit = Some(*limit_bytes as u64),
            Self::Busy { limit } => problem.limit = Some(*limit as u64),
            Self::TooManyPoints { limit, .. } => problem.limit = Some(*limit as u64),
            Self::WriteForbidden { refused, .. } => problem.refused = Some(refused.clone()),
            Self::BudgetExhausted { budget, .. } => problem.budget = Some(*budget),
            // What failed inside names files and internals; it is logged,
            // never sent.
            Self::Internal(_) => problem.detail = INTERNAL_DETAIL.to_owned(),
            _ => {}
        }
        problem
    }

    /// The answer in InfluxDB's error shape, for the line-protocol write
    /// routes: `{"code": "invalid", "message": "...", "errors": [{"line",
    /// "message"}]}` (InfluxDB 2.x uses these `code` names).
    pub(crate) fn into_influx_response(self) -> Response {
        let status = self.status();
        let code = match status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::REQUEST_TIMEOUT => "request timeout",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::TOO_MANY_REQUESTS => "too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal error",
        };
        let error_id = self.log();
        let errors = match &self {
            Self::BadItems { errors, .. } => {
                errors.iter().map(|e| InfluxLineError { line: e.line, message: e.message.clone() }).collect()
            }
            _ => Vec::new(),
        };
        let message = match &self {
            Self::BadItems { errors, truncated } => {
                let first = errors.first().map(|e| format!("; first: line {}: {}", e.line, e.message));
                format!(
                    "{}{} bad line(s), nothing was written{}",
                    distinct_lines(errors),
                    if *truncated { "+" } else { "" },
                    first.unwrap_or_default()
                )
            }
            other => match &error_id {
                Some(id) => internal_detail(id),
                None => other.to_string(),
            },
        };
        let mut response = (status, Json(InfluxError { code, message, errors })).into_response();
        self.add_headers(&mut response);
        response
    }

    /// Headers some answers must carry: the challenge of a 401 (RFC 6750)
    /// and the wait of a 429 or an overload 503 (RFC 9110 `Retry-After`).
    fn add_headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            Self::Unauthenticated { presented } => {
                let challenge = if *presented {
                    header::HeaderValue::from_static(r#"Bearer realm="doppel", error="invalid_token""#)
                } else {
                    header::HeaderValue::from_static(r#"Bearer realm="doppel""#)
                };
                headers.insert(header::WWW_AUTHENTICATE, challenge);
            }
            Self::RateLimited { retry_after_secs, .. } => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after_secs));
            }
            Self::FlushBehind(_) => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from(FLUSH_BEHIND_RETRY_AFTER_SECS));
            }
            Self::Busy { .. } => {
                headers.insert(header::RETRY_AFTER, header::HeaderValue::from(BUSY_RETRY_AFTER_SECS));
            }
            _ => {}
        }
    }

    /// Logs what the operator must see; for an internal failure, returns
    /// the error id logged with its detail, which the client is given in
    /// place of the detail.
    fn log(&self) -> Option<String> {
        match self {
            Self::Internal(detail) => {
                let error_id = format!("{:016x}", rand::random::<u64>());
                tracing::error!(%error_id, %detail, "request failed inside the server");
                return Some(error_id);
            }
            Self::AuditUnavailable(detail) => {
                tracing::error!(%detail, "refused a request the audit log cannot record");
            }
            Self::StorageStopped(detail) | Self::StorageWriteFailed(detail) => {
                tracing::error!(%detail, "refused a write the disk cannot take");
            }
            _ => {}
        }
        None
    }
}

/// How many lines (items) the errors name: one line may break several
/// rules, and each is listed.
fn distinct_lines(errors: &[LineError]) -> usize {
    errors.iter().map(|e| e.line).collect::<std::collections::BTreeSet<_>>().len()
}

/// The whole detail a client gets of an internal failure.
const INTERNAL_DETAIL: &str = "the server could not complete the request";

/// That detail with the error id under which the server logged the cause.
fn internal_detail(error_id: &str) -> String {
    format!("{INTERNAL_DETAIL}; the server log names the cause under error id {error_id}")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error_id = self.log();
        let mut problem = self.to_problem();
        if let Some(id) = error_id {
            problem.detail = internal_detail(&id);
            problem.error_id = Some(id);
        }
        let status = self.status();
        let mut response = (status, Json(problem)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        self.add_headers(&mut response);
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownTwin(id) => Self::TwinNotFound(id.to_string()),
            error @ EngineError::UnknownModel { .. } => Self::UnknownModel(error.to_string()),
            EngineError::InvalidProperties(reasons) => Self::InvalidProperties(reasons),
            EngineError::Store(error) => error.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Rejected(rejected) => {
                Self::BadItems { errors: rejected.errors, truncated: rejected.truncated }
            }
            IngestError::Store(error) => error.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            error @ StoreError::Stopped { .. } => Self::StorageStopped(error.to_string()),
            error @ StoreError::FlushBehind { .. } => {
                tracing::warn!(%error, "refused a write while flushing is behind");
                Self::FlushBehind(error.to_string())
            }
            StoreError::WriteFailed { path, source } => {
                tracing::error!(file = %path.display(), %source, "a WAL append failed and was cut off");
                Self::StorageWriteFailed(format!(
                    "writing the WAL failed: {source}; nothing of this write was kept, and it may be retried"
                ))
            }
            other => match other.keyring_io() {
                Some((op, source)) => {
                    tracing::error!(error = %other, "a keyring file could not be written");
                    Self::StorageWriteFailed(format!(
                        "storing a twin's data key failed (cannot {op} a keyring file: {source}); nothing was kept, \
                         and it may be retried"
                    ))
                }
                None => Self::Internal(other.to_string()),
            },
        }
    }
}

impl From<ParseErrors> for ApiError {
    fn from(errors: ParseErrors) -> Self {
        Self::BadItems { errors: errors.errors, truncated: errors.truncated }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// URI naming the kind of problem (`urn:doppel:problem:<kind>`).
    #[serde(rename = "type")]
    pub(crate) problem_type: String,
    /// Short summary of the kind of problem.
    pub(crate) title: String,
    /// The HTTP status code.
    pub(crate) status: u16,
    /// What went wrong with this request, in words.
    pub(crate) detail: String,
    /// The query parameter or path segment at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parameter: Option<String>,
    /// Every rejected item of a batch, with its 1-based number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) errors: Option<Vec<ItemError>>,
    /// True when `errors` was cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) truncated: Option<bool>,
    /// The limit that was exceeded (bytes or points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<u64>,
    /// A refused write: each twin, and the signals of it, the caller may not write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<Vec<RefusedWrite>>,
    /// A refused differentially private answer: the analyst's privacy budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) budget: Option<BudgetDoc>,
    /// An internal failure: the id the server logged its cause under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_id: Option<String>,
}

/// An analyst's privacy budget when a request was refused, in units of ε.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub(crate) struct BudgetDoc {
    /// The analyst's total.
    pub(crate) total: f64,
    /// Spent before this request.
    pub(crate) spent: f64,
    /// Left before this request.
    pub(crate) remaining: f64,
    /// What this request asked for.
    pub(crate) requested: f64,
}

/// One rejected item of a JSON points batch.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemError {
    /// 1-based item number in the request.
    pub(crate) item: u32,
    /// Why it was rejected.
    pub(crate) message: String,
}

/// InfluxDB's error body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InfluxError {
    /// InfluxDB error code: `invalid`, `request too large`, `internal error`, ...
    pub(crate) code: &'static str,
    /// What went wrong.
    pub(crate) message: String,
    /// Every bad line, with its 1-based line number.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<InfluxLineError>,
}

/// One bad line of a line-protocol write.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InfluxLineError {
    /// 1-based line number in the (inflated) body.
    pub(crate) line: u32,
    /// Why the line was rejected.
    pub(crate) message: String,
}

/// Longest path echoed back in an error, so a huge URI does not make a huge answer.
const MAX_ECHOED_PATH_CHARS: usize = 256;

/// Answers unknown paths with a problem document rather than an empty 404.
pub(crate) async fn not_found_fallback(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().chars().take(MAX_ECHOED_PATH_CHARS).collect())
}

/// Answers a known path with the wrong method with a problem document
/// rather than an empty 405.
pub(crate) async fn method_not_allowed_fallback(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().chars().take(MAX_ECHOED_PATH_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_keyring_that_cannot_be_written_is_a_retryable_503_naming_no_file() {
        let error = StoreError::Keyring(doppel_crypto::CryptoError::Io {
            op: "write",
            path: "/srv/doppel/data.keys/shard-0003".into(),
            source: std::io::Error::from_raw_os_error(28),
        });
        let response = ApiError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = body_json(response).await;
        assert_eq!(body["type"], "urn:doppel:problem:storage-write-failed", "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("cannot write a keyring file") && !detail.contains("/srv"), "{detail}");
    }

    #[tokio::test]
    async fn invalid_parameter_is_a_problem_naming_the_parameter() {
        let response =
            ApiError::InvalidParameter { name: "every", reason: "bad duration".into() }.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        assert_eq!(
            body_json(response).await,
            serde_json::json!({
                "type": "urn:doppel:problem:invalid-parameter",
                "title": "Invalid query parameter",
                "status": 400,
                "detail": "query parameter `every` is invalid: bad duration",
                "parameter": "every"
            })
        );
    }

    #[tokio::test]
    async fn bad_items_list_every_item_in_problem_and_influx_shapes() {
        let errors =
            vec![LineError::at_line(2, "value out of range"), LineError::at_line(5, "missing tag 'twin'")];
        let problem =
            body_json(ApiError::BadItems { errors: errors.clone(), truncated: false }.into_response()).await;
        assert_eq!(problem["errors"][1]["item"], 5);
        let influx = ApiError::BadItems { errors, truncated: false }.into_influx_response();
        assert_eq!(influx.status(), StatusCode::BAD_REQUEST);
        let influx = body_json(influx).await;
        assert_eq!(influx["code"], "invalid");
        assert_eq!(influx["errors"][0], serde_json::json!({"line": 2, "message": "value out of range"}));
        assert_eq!(influx["errors"][1]["line"], 5);
    }

    #[tokio::test]
    async fn an_internal_error_answers_an_error_id_and_never_its_detail() {
        let cause = "segment /srv/doppel/data/segments/00000000000000000007.seg corrupt at byte 812";
        let response = ApiError::Internal(cause.to_owned()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let problem = body_json(response).await;
        let id = problem["error_id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 16);
        assert_eq!(
            problem["detail"],
            format!(
                "the server could not complete the request; the server log names the cause under error id {id}"
            )
        );
        assert!(!problem.to_string().contains("/srv"), "{problem}");
        let influx = body_json(ApiError::Internal(cause.to_owned()).into_influx_response()).await;
        assert_eq!(influx["code"], "internal error");
        let message = influx["message"].as_str().unwrap();
        assert!(message.contains("error id") && !message.contains("/srv"), "{message}");
    }

    #[tokio::test]
    async fn limits_map_to_413_and_408() {
        let too_big = ApiError::BodyTooLarge { limit_bytes: 10, inflated: true };
        assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(too_big.to_string().contains("after gzip inflation"));
        let influx = body_json(too_big.into_influx_response()).await;
        assert_eq!(influx["code"], "request too large");
        assert_eq!(ApiError::Timeout { after_ms: 5 }.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(ApiError::TooManyPoints { points: 3, limit: 2 }.to_problem().limit, Some(2));
    }
}
