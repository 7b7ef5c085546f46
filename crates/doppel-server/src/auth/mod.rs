//! Authentication and per-twin authorization of every request.
//!
//! [`Auth`] is the server's side of `doppel-auth`: the API tokens and
//! policies (kept by an [`AuthStore`]: frequent changes appended to its
//! log, rare ones rewriting its snapshot), the
//! JWT verifier and the rate limiter. A middleware ([`middleware`])
//! authenticates each request once and rate-limits it; handlers take a
//! [`Caller`] and ask it before touching a twin. The rules, route by route,
//! are in `docs/security.md`; `tests/authz_matrix.rs` checks every route
//! against them.
//!
//! Two rules shape the answers: a caller without a credential on a
//! protected route gets 401, and a twin the caller may not read at all is
//! answered 404, like a missing one, so that nobody learns which twins
//! exist by probing ids. With authentication disabled every request is
//! allowed, as before authentication existed.

mod access;
pub(crate) mod grants;
pub(crate) mod middleware;
mod rate;
pub(crate) mod tokens;
pub(crate) mod twins;
mod writes;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use doppel_auth::{
    AuthChange, AuthError, AuthState, AuthStore, Authenticator, Bootstrap, JwtConfig, JwtVerifier, Principal,
};
use doppel_model::Timestamp;
use tokio::sync::watch;

pub(crate) use access::{AccessEnded, AccessWatch, Caller, EventView};
pub(crate) use middleware::INFLUX_ROUTES;
pub use rate::{DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, RateLimit};
pub(crate) use writes::ingest_authorized;

use crate::problem::ApiError;
use rate::RateLimiter;

/// How the server authenticates callers: what `[auth]` in the
/// configuration file says.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Whether credentials are required and policies enforced.
    pub enabled: bool,
    /// The identity provider whose JWTs are accepted, if any.
    pub jwt: Option<JwtConfig>,
    /// Requests per client; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
}

impl Default for AuthConfig {
    /// Enabled, API tokens only, the default rate limit.
    fn default() -> Self {
        AuthConfig { enabled: true, jwt: None, rate_limit: Some(RateLimit::default()) }
    }
}

/// The server's authentication and authorization state, shared by every
/// request. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    /// Where changes are saved; `None` for a server that keeps them in
    /// memory only.
    store: Option<AuthStore>,
    state: RwLock<AuthState>,
    authenticator: Authenticator,
    limiter: Option<RateLimiter>,
    /// Held by every change of the state while it is judged, made durable
    /// and applied, so that changes reach the disk in the order memory
    /// takes them. Readers never wait on it.
    writing: Mutex<()>,
    /// Held while twins are created and their owners recorded, so that two
    /// callers creating the same twin cannot both become its owner, and no
    /// write lands in a new twin before its owner is known.
    creation: Mutex<()>,
    /// Counts changes of the state, so that open streams recheck their
    /// caller's access at once when a token or grant is revoked.
    changes: watch::Sender<u64>,
}

impl Auth {
    /// No authentication: every request is allowed, nothing is limited and
    /// nothing is saved. The library's default, for embedding and tests;
    /// `doppel serve` enables authentication unless told `--no-auth`.
    pub fn disabled() -> Self {
        Auth::build(false, None, AuthState::default(), Authenticator::default(), None)
    }

    /// Loads the tokens and policies from `store` and applies `config`.
    /// When authentication is enabled and no token exists, or
    /// `admin_token` (the text of `DOPPEL_ADMIN_TOKEN`) is new, an admin
    /// token is registered and saved first; the answer says which, so that
    /// a generated token can be shown once.
    pub fn open(
        store: AuthStore,
        config: &AuthConfig,
        admin_token: Option<&str>,
        now: Timestamp,
    ) -> Result<(Self, Bootstrap), AuthError> {
        // Everything that can refuse the start comes before the bootstrap,
        // so that a generated admin token is never saved by a start that
        // then fails before showing it.
        let jwt = config.jwt.as_ref().map(JwtVerifier::from_config).transpose()?;
        let loaded = store.load()?;
        if let Some(offset) = loaded.torn_log_at {
            tracing::warn!(
                log = %store.log_path().display(),
                offset,
                "the authentication log ended in a torn record (a crash during its append, never acknowledged); it was cut off"
            );
        }
        let mut state = loaded.state;
        let bootstrap = if config.enabled {
            state.tokens.bootstrap_admin(admin_token, now)?
        } else {
            Bootstrap::NotNeeded
        };
        if !matches!(bootstrap, Bootstrap::NotNeeded) {
            store.save(&state)?;
        }
        let auth = Auth::build(
            config.enabled,
            Some(store),
            state,
            Authenticator::new(jwt),
            config.rate_limit.map(RateLimiter::new),
        );
        Ok((auth, bootstrap))
    }

    fn build(
        enabled: bool,
        store: Option<AuthStore>,
        state: AuthState,
        authenticator: Authenticator,
        limiter: Option<RateLimiter>,
    ) -> Self {
        Auth {
            inner: Arc::new(Inner {
                enabled,
                store,
                state: RwLock::new(state),
                authenticator,
                limiter,
                writing: Mutex::new(()),
                creation: Mutex::new(()),
                changes: watch::Sender::new(0),
            }),
        }
    }

    /// Whether credentials are required and policies enforced.
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled
    }

    /// The principal behind an `Authorization` header value.
    pub(crate) fn authenticate(
        &self,
        authorization: Option<&str>,
        now: Timestamp,
    ) -> Result<Principal, AuthError> {
        self.inner.authenticator.authenticate(authorization, &self.state().tokens, now)
    }

    pub(crate) fn limiter(&self) -> Option<&RateLimiter> {
        self.inner.limiter.as_ref()
    }

    /// The current tokens and policies, for reading.
    pub(crate) fn state(&self) -> RwLockReadGuard<'_, AuthState> {
        // A poisoned lock means a panic while a change was applied to a
        // copy (see `update`), so the state itself is intact.
        self.inner.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `change` to a copy of the state, saves the copy whole, and
    /// only then makes it current, so memory never holds a change the disk
    /// does not. Costs O(state): for rare changes (grants, owners set by an
    /// administrator); frequent ones go through [`Auth::record`]. Blocks on
    /// fsync: call it from a blocking thread.
    pub(crate) fn update<T>(
        &self,
        change: impl FnOnce(&mut AuthState) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _writing = self.writing_guard();
        self.replace_state(change)
    }

    /// [`Auth::update`], the caller holding `writing`.
    fn replace_state<T>(
        &self,
        change: impl FnOnce(&mut AuthState) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut current = self.inner.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = current.clone();
        let answer = change(&mut next)?;
        if next != *current {
            if let Some(store) = &self.inner.store {
                store.save(&next).map_err(not_saved)?;
            }
            *current = next;
            drop(current);
            self.announce_change();
        }
        Ok(answer)
    }

    /// Makes the changes `plan` draws from the current state durable as
    /// one record of the store's log, then applies them: O(changes), not
    /// O(state), so that creating twins and tokens costs the same with a
    /// million of them as with one. Memory never holds a change the disk
    /// does not, and readers are not held up by the fsync. Folds the log
    /// into a new snapshot once it holds more superseded entries than live
    /// ones. Blocks on fsync: call
    /// it from a blocking thread.
    pub(crate) fn record<T>(
        &self,
        plan: impl FnOnce(&AuthState) -> Result<(Vec<AuthChange>, T), ApiError>,
    ) -> Result<T, ApiError> {
        let _writing = self.writing_guard();
        let (changes, answer) = plan(&self.state())?;
        if changes.is_empty() {
            return Ok(answer);
        }
        // Plans are judged on the state under the writers' lock, so a
        // change that does not apply is a bug, not input.
        let apply = |state: &mut AuthState| {
            changes
                .iter()
                .try_for_each(|change| change.apply(state))
                .map_err(|e| ApiError::Internal(e.to_string()))
        };
        if let Some(store) = &self.inner.store {
            if store.log_stopped() {
                // After a failed fsync the log cannot be trusted: the
                // change goes into a whole snapshot written from memory,
                // which starts a new log.
                self.replace_state(apply)?;
                return Ok(answer);
            }
            store.append(&changes).map_err(not_saved)?;
        }
        apply(&mut self.inner.state.write().unwrap_or_else(|poisoned| poisoned.into_inner()))?;
        self.announce_change();
        if let Some(store) = &self.inner.store
            && store.wants_snapshot(&self.state())
            && let Err(error) = store.save(&self.state())
        {
            // Every change is durable in the log, which keeps growing
            // until a later fold succeeds.
            tracing::error!(%error, "the authentication log was not folded into a new snapshot");
        }
        Ok(answer)
    }

    fn writing_guard(&self) -> MutexGuard<'_, ()> {
        self.inner.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn announce_change(&self) {
        self.inner.changes.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Hears of every change of the tokens and policies.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Serialises twin creation with the recording of owners.
    pub(crate) fn creation_guard(&self) -> MutexGuard<'_, ()> {
        self.inner.creation.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Auth {
    fn default() -> Self {
        Auth::disabled()
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.inner.enabled)
            .field("store", &self.inner.store.as_ref().map(AuthStore::path))
            .field("rate_limit", &self.inner.limiter.as_ref().map(RateLimiter::limit))
            .finish_non_exhaustive()
    }
}

/// The answer when a change of the state could not be made durable.
fn not_saved(error: AuthError) -> ApiError {
    tracing::error!(%error, "the authentication state was not saved");
    ApiError::StorageWriteFailed(match error {
        AuthError::StateFile { action, source, .. } => format!(
            "the authentication state was not saved (cannot {action} its file: {source}); nothing changed"
        ),
        _ => "the authentication state was not saved; nothing changed".to_owned(),
    })
}

/// Maps a refusal from `doppel-auth` to an answer: the caller's mistakes
/// are 400, refusals 403, unknown grants and tokens 404.
pub(crate) fn refusal(error: AuthError) -> ApiError {
    match error {
        AuthError::Forbidden { .. }
        | AuthError::GrantOutlivesGranter { .. }
        | AuthError::AdminRequired { .. } => ApiError::Forbidden(error.to_string()),
        AuthError::UnknownGrant { twin, grant } => {
            ApiError::GrantNotFound { twin: twin.to_string(), grant: grant.0 }
        }
        AuthError::UnknownToken { id } => ApiError::TokenNotFound(id.to_string()),
        AuthError::StateFile { .. }
        | AuthError::CorruptState { .. }
        | AuthError::CorruptTokens { .. }
        | AuthError::CorruptPolicies { .. }
        | AuthError::Entropy(_) => ApiError::Internal(error.to_string()),
        other => ApiError::InvalidBody(other.to_string()),
    }
}
