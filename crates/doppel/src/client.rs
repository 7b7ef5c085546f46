//! A small HTTP client for the client subcommands: one place that turns
//! transport failures and problem answers into readable errors.

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode};

use crate::cli::ServerArgs;

/// Talks to one Doppel server as one caller.
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// Sent as `Authorization: Bearer` with every request.
    token: Option<String>,
}

impl Client {
    /// A client for the server and credential of `args`.
    pub fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().build().context("cannot build the HTTP client")?;
        let token = args.token.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
        Ok(Self { base: args.server.trim_end_matches('/').to_owned(), http, token })
    }

    /// The URL of an API path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns the body of a successful answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> anyhow::Result<String> {
        let url = self.url(path);
        let response = self.answer(method.clone(), path, query, body).await?;
        response.text().await.with_context(|| format!("reading the answer of {method} {url}"))
    }

    /// Sends a request and returns a successful answer before reading its
    /// body, for answers too large to hold in memory.
    pub async fn answer(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> anyhow::Result<reqwest::Response> {
        let url = self.url(path);
        let mut request = self.http.request(method.clone(), &url).query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        match body {
            Some(Body::Json(value)) => request = request.json(&value),
            Some(Body::Text(text, content_type)) => {
                request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(text)
            }
            None => {}
        }
        let response = request.send().await.map_err(|err| {
            if err.is_connect() {
                anyhow!("cannot reach Doppel at {}: is `doppel serve` running there? ({err})", self.base)
            } else {
                anyhow!("{method} {url} failed: {err}")
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.with_context(|| format!("reading the answer of {method} {url}"))?;
        let mut message = describe_failure(status, &text);
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            message.push_str("\n  (no credential was sent: pass --token or set DOPPEL_TOKEN)");
        }
        Err(anyhow!("{message}"))
    }

    /// GET and parse JSON.
    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<serde_json::Value> {
        let text = self.send(Method::GET, path, query, None).await?;
        serde_json::from_str(&text).with_context(|| format!("the server's answer to {path} is not JSON"))
    }
}

/// A request body.
pub enum Body {
    /// Serialised as JSON.
    Json(serde_json::Value),
    /// Sent as is with the content type.
    Text(String, &'static str),
}

/// Turns a failed answer into one readable message: the problem's detail
/// (RFC 9457) or Influx-style message, plus every listed bad line.
pub fn describe_failure(status: StatusCode, body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return format!("server answered {status}: {}", body.trim());
    };
    let message = json["detail"].as_str().or_else(|| json["message"].as_str()).unwrap_or("no details");
    let mut text = format!("server answered {status}: {message}");
    for item in json["errors"].as_array().into_iter().flatten().take(50) {
        let place = item["line"].as_u64().or_else(|| item["item"].as_u64()).map(|n| format!("line {n}: "));
        let what = item["message"].as_str().unwrap_or("");
        text.push_str(&format!("\n  {}{what}", place.unwrap_or_default()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_show_the_detail_and_every_bad_line() {
        let body = r#"{"code":"invalid","message":"2 bad lines","errors":[{"line":2,"message":"missing tag 'twin'"},{"line":5,"message":"bad value"}]}"#;
        let text = describe_failure(StatusCode::BAD_REQUEST, body);
        assert!(text.contains("2 bad lines"));
        assert!(text.contains("line 2: missing tag 'twin'"));
        assert!(text.contains("line 5: bad value"));
    }

    #[test]
    fn non_json_failures_are_shown_verbatim() {
        assert_eq!(
            describe_failure(StatusCode::BAD_GATEWAY, "oops\n"),
            "server answered 502 Bad Gateway: oops"
        );
    }
}
