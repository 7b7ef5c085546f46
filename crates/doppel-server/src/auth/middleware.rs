//! The layer every request passes: authentication, then the rate limit.
//!
//! The `Authorization` header is read once here; the principal it proves
//! (or the anonymous one) goes into the request for handlers to take as a
//! [`Caller`](super::Caller). A header that is present but wrong is a 401
//! on every route, public ones included, so that a client with a broken
//! token hears about it; every 401 says the same, the reason going to the
//! server's log only, so that nobody learns which token ids exist. Requests are then counted against their client's
//! bucket: the API token, the JWT user, or, without a credential, the
//! remote address when the server knows it.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use doppel_auth::{Principal, PrincipalKind};
use doppel_model::Timestamp;

use super::rate::Client;
use crate::AppState;
use crate::problem::ApiError;

/// The routes that answer errors the way InfluxDB does.
pub(crate) const INFLUX_ROUTES: [&str; 2] = ["/api/v2/write", "/write"];

/// Middleware: authenticates the request, applies the rate limit, and hands
/// the principal to the handler.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = &state.limits.auth;
    let influx =
        request.extensions().get::<MatchedPath>().is_some_and(|path| INFLUX_ROUTES.contains(&path.as_str()));
    let answer = |error: ApiError| if influx { error.into_influx_response() } else { error.into_response() };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    // Readers disagree on which of two credentials counts (a proxy may
    // check one while Doppel uses the other), so neither does.
    let credentials = request.headers().get_all(header::AUTHORIZATION).iter().count();
    if credentials > 1 {
        return answer(ApiError::InvalidHeader {
            name: "Authorization",
            reason: format!("it appears {credentials} times; send one credential"),
        });
    }
    let principal = if auth.is_enabled() {
        let header = request.headers().get(header::AUTHORIZATION).map(|value| value.to_str());
        let outcome = match header {
            None => Ok(Principal::anonymous()),
            Some(Err(_)) => Err("the Authorization header is not visible ASCII".to_owned()),
            Some(Ok(text)) => auth.authenticate(Some(text), Timestamp::now()).map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(principal) => principal,
            Err(reason) => {
                // A failed attempt still counts against its address, so
                // guessing costs the guesser.
                if let (Some(limiter), Some(peer)) = (auth.limiter(), peer) {
                    let _ = limiter.take(Client::Peer(peer), Instant::now());
                }
                // Why is for the operator only: the client hears the same
                // refusal whatever went wrong.
                tracing::info!(%reason, peer = ?peer, "refused a credential");
                return answer(ApiError::Unauthenticated { presented: true });
            }
        }
    } else {
        Principal::anonymous()
    };
    if let Some(limiter) = auth.limiter() {
        let client = match (principal.kind(), principal.user()) {
            (PrincipalKind::Token(id), _) => Some(Client::Token(*id)),
            (PrincipalKind::Jwt, Some(user)) => Some(Client::User(user.clone())),
            _ => peer.map(Client::Peer),
        };
        if let Some(client) = client
            && let Err(wait) = limiter.take(client, Instant::now())
        {
            let limit = limiter.limit();
            return answer(ApiError::RateLimited {
                per_second: limit.per_second(),
                burst: limit.burst(),
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            });
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
