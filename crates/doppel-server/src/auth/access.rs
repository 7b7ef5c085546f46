//! The caller of one request, and the questions handlers ask about it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use doppel_auth::{
    Action, Allowance, AuthState, BOOTSTRAP_USER, Decision, Permission, Principal, PrincipalKind, Scopes,
    SignalFilter, Subject, Target, TokenStatus, UserName,
};
use doppel_engine::{Event, EventBody};
use doppel_model::{Timestamp, TwinId};
use tokio::sync::watch;

use super::Auth;
use crate::AppState;
use crate::audit::AuditNote;
use crate::problem::ApiError;

/// Who made a request (put in the request by the authentication
/// middleware) and the state to judge it by. Handlers take it as an
/// extractor and ask it before touching a twin; with authentication
/// disabled every question is answered yes.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    principal: Principal,
    auth: Auth,
    /// What the handler learns for the request's audit record.
    note: AuditNote,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // The middleware authenticates every request; a request that
        // reached a handler without it (a router built without the layer)
        // is anonymous, never trusted.
        let principal = parts.extensions.get::<Principal>().cloned().unwrap_or_else(Principal::anonymous);
        let note = parts.extensions.get::<AuditNote>().cloned().unwrap_or_default();
        Ok(Caller { principal, auth: state.limits.auth.clone(), note })
    }
}

/// What a stream subscriber may see of one event.
#[derive(Debug)]
pub(crate) enum EventView {
    /// The event, trimmed to the signals the subscriber may read.
    Visible(Arc<Event>),
    /// Nothing of it.
    Hidden,
    /// Nothing, and the subscriber can no longer read the event's twin at
    /// all: a stream of that one twin should end.
    TwinUnreadable,
    /// The subscriber's API token was revoked or expired: every stream of
    /// it should end.
    CredentialEnded,
}

/// Why a stream's access ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AccessEnded {
    /// The API token was revoked or expired, or the JWT expired.
    Credential,
    /// The caller may no longer read the stream's twin.
    Twin,
}

/// How often an open stream rechecks its caller's access when nothing
/// changed: expiries happen without a change to hear of, and must end a
/// stream within a second even while its twins are quiet.
const ACCESS_RECHECK: Duration = Duration::from_millis(250);

/// Watches one stream's access while it is open: rechecks at once when
/// the tokens or policies change (a revocation), and every
/// [`ACCESS_RECHECK`] for expiries. Cancel-safe, so a stream's loop can
/// select on [`ended`](Self::ended) alongside its events.
pub(crate) struct AccessWatch {
    caller: Caller,
    twin: Option<TwinId>,
    changes: watch::Receiver<u64>,
    recheck: tokio::time::Interval,
}

impl AccessWatch {
    /// Watches `caller`'s credential, and its access to `twin` if given.
    pub(crate) fn new(caller: &Caller, twin: Option<TwinId>) -> Self {
        let mut recheck =
            tokio::time::interval_at(tokio::time::Instant::now() + ACCESS_RECHECK, ACCESS_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        AccessWatch { caller: caller.clone(), twin, changes: caller.auth.changes(), recheck }
    }

    /// Completes when the access has ended, saying why; never for a caller
    /// whose access cannot end (authentication off).
    pub(crate) async fn ended(&mut self) -> AccessEnded {
        if !self.caller.enforced() {
            return std::future::pending().await;
        }
        loop {
            tokio::select! {
                changed = self.changes.changed() => {
                    // The sender lives as long as the `Auth` this watch
                    // holds; should it go, the ticks still recheck.
                    if changed.is_err() {
                        self.recheck.tick().await;
                    }
                }
                _ = self.recheck.tick() => {}
            }
            if let Some(ended) = self.caller.access_ended(self.twin.as_ref()) {
                return ended;
            }
        }
    }
}

impl Caller {
    /// A caller for requests that need no authorization (tests of the
    /// stream machinery).
    #[cfg(test)]
    pub(crate) fn unrestricted() -> Self {
        Caller { principal: Principal::anonymous(), auth: Auth::disabled(), note: AuditNote::default() }
    }

    /// The principal, for messages and claims.
    pub(crate) fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The principal that changes policies on the caller's behalf: itself,
    /// or, with authentication disabled (where everyone may do
    /// everything), an administrator named after the bootstrap user.
    pub(crate) fn acting_principal(&self) -> Principal {
        if self.enforced() {
            return self.principal.clone();
        }
        UserName::new(BOOTSTRAP_USER).map_or_else(
            |_| self.principal.clone(),
            |user| Principal::from_jwt(user, BTreeSet::new(), Scopes::Admin),
        )
    }

    /// Where the handler adds what the request's audit record should say
    /// beyond its route.
    pub(crate) fn audit_note(&self) -> &AuditNote {
        &self.note
    }

    /// The state the caller is judged by.
    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    fn enforced(&self) -> bool {
        self.auth.is_enabled()
    }

    /// Whether the caller sees everything: authentication is off, or it
    /// holds the admin scope.
    pub(crate) fn sees_everything(&self) -> bool {
        !self.enforced() || self.principal.is_admin()
    }

    /// 401 for an anonymous caller when authentication is enforced.
    pub(crate) fn require_authenticated(&self) -> Result<(), ApiError> {
        if self.enforced() && *self.principal.kind() == PrincipalKind::Anonymous {
            return Err(ApiError::Unauthenticated { presented: false });
        }
        Ok(())
    }

    /// 401 or 403 unless the caller holds the admin scope.
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        self.require_authenticated()?;
        if self.sees_everything() {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!("{} lacks the admin scope this route needs", self.principal)))
    }

    /// Whether the caller may read anything of `twin` now.
    pub(crate) fn can_read(&self, state: &AuthState, twin: &TwinId, now: Timestamp) -> bool {
        self.sees_everything() || state.policies.readable(&self.principal, twin, now)
    }

    /// Whether the caller may do `action` on `twin` now.
    pub(crate) fn allows(&self, state: &AuthState, twin: &TwinId, action: &Action, now: Timestamp) -> bool {
        !self.enforced() || state.policies.authorize(&self.principal, twin, action, now).is_allowed()
    }

    /// Checks `action` on a twin the caller may not even know about: 401
    /// when anonymous, 403 with the reason when refused, and 404 (as for a
    /// missing twin) when refused and the caller may read nothing of it.
    pub(crate) fn check_hidden(&self, twin: &TwinId, action: &Action) -> Result<(), ApiError> {
        self.require_authenticated()?;
        let state = self.auth.state();
        self.decide(&state, twin, action, Timestamp::now()).map_err(|error| self.hide(&state, twin, error))
    }

    /// A refusal as the caller should hear it: a twin it may read nothing
    /// of is answered as missing, so that refusals do not reveal which
    /// twins exist.
    pub(crate) fn hide(&self, state: &AuthState, twin: &TwinId, error: ApiError) -> ApiError {
        match error {
            ApiError::Forbidden(_) | ApiError::GrantNotFound { .. }
                if !self.can_read(state, twin, Timestamp::now()) =>
            {
                ApiError::TwinNotFound(twin.to_string())
            }
            other => other,
        }
    }

    /// The refusal of a twin id the caller may not create and may see
    /// nothing of: one answer whether or not a twin has the id, so that a
    /// refused `PUT` or write tells no more than a refused creation.
    pub(crate) fn cannot_use(&self, twin: &TwinId) -> ApiError {
        ApiError::Forbidden(format!("{} may not create or change twin {twin}", self.principal))
    }

    /// A refusal to change `twin`, as the caller should hear it: for a twin
    /// it may read nothing of, the answer of an id it may not use.
    pub(crate) fn hide_change(&self, state: &AuthState, twin: &TwinId, error: ApiError) -> ApiError {
        match error {
            ApiError::Forbidden(_) if !self.can_read(state, twin, Timestamp::now()) => self.cannot_use(twin),
            other => other,
        }
    }

    /// Checks `action` on `twin`: 401 when anonymous, 403 with the reason
    /// when refused.
    pub(crate) fn check(&self, state: &AuthState, twin: &TwinId, action: &Action) -> Result<(), ApiError> {
        self.require_authenticated()?;
        self.decide(state, twin, action, Timestamp::now())
    }

    fn decide(
        &self,
        state: &AuthState,
        twin: &TwinId,
        action: &Action,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        if !self.enforced() {
            return Ok(());
        }
        match state.policies.authorize(&self.principal, twin, action, now) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(denial) => Err(ApiError::Forbidden(format!(
                "{} may not {action} on twin {twin}: {denial}",
                self.principal
            ))),
        }
    }

    /// Passes administrators and the owner of `twin` (with a credential
    /// that may read it): those who may read its audit records. Others are
    /// refused 403, or 404 when they may read nothing of the twin.
    pub(crate) fn require_owner(&self, twin: &TwinId) -> Result<(), ApiError> {
        self.require_authenticated()?;
        if self.sees_everything() {
            return Ok(());
        }
        let state = self.auth.state();
        let read_policy = Action::new(Permission::Read, Target::Policy);
        match state.policies.authorize(&self.principal, twin, &read_policy, Timestamp::now()) {
            Decision::Allow(Allowance::Owner | Allowance::Admin) => Ok(()),
            _ => {
                let refusal = ApiError::Forbidden(format!(
                    "{} does not own twin {twin}: only its owner and administrators may read its audit records",
                    self.principal
                ));
                Err(self.hide(&state, twin, refusal))
            }
        }
    }

    /// 404 unless the caller may read something of `twin`.
    pub(crate) fn require_readable(&self, twin: &TwinId) -> Result<(), ApiError> {
        self.require_authenticated()?;
        if self.can_read(&self.auth.state(), twin, Timestamp::now()) {
            Ok(())
        } else {
            Err(ApiError::TwinNotFound(twin.to_string()))
        }
    }

    /// Which signals of `twin` the caller may read now.
    pub(crate) fn signal_filter(&self, state: &AuthState, twin: &TwinId, now: Timestamp) -> SignalFilter {
        if self.enforced() {
            state.policies.signal_filter(&self.principal, twin, now)
        } else {
            SignalFilter::All
        }
    }

    /// Whether the caller's credential may create `twin`: it holds write or
    /// manage in its scopes for that twin, and acts as a user.
    pub(crate) fn may_create(&self, twin: &TwinId) -> bool {
        let scopes = self.principal.scopes();
        !self.enforced()
            || self.principal.is_admin()
            || (self.principal.user().is_some()
                && (scopes.permits(Permission::Write, twin) || scopes.permits(Permission::Manage, twin)))
    }

    /// Whom a twin this caller creates should belong to: its user, unless
    /// it is an administrator (an operator importing for others; it may
    /// name the owner instead) or authentication is off.
    pub(crate) fn owner_of_new_twins(&self) -> Option<Subject> {
        if self.sees_everything() {
            return None;
        }
        self.principal.user().cloned().map(Subject::User)
    }

    /// Whether the caller's credential still counts at `now`: its API
    /// token neither revoked nor expired, its JWT not expired.
    fn credential_active(&self, state: &AuthState, now: Timestamp) -> bool {
        if self.principal.expires().is_some_and(|expires| now >= expires) {
            return false;
        }
        match self.principal.kind() {
            PrincipalKind::Token(id) => {
                state.tokens.get(id).is_some_and(|record| record.status(now) == TokenStatus::Active)
            }
            PrincipalKind::Jwt | PrincipalKind::Anonymous => true,
        }
    }

    /// Why a stream of this caller must end now, if it must: its
    /// credential ended, or it may no longer read `twin` (for a stream of
    /// one twin).
    fn access_ended(&self, twin: Option<&TwinId>) -> Option<AccessEnded> {
        if !self.enforced() {
            return None;
        }
        let state = self.auth.state();
        let now = Timestamp::now();
        if !self.credential_active(&state, now) {
            return Some(AccessEnded::Credential);
        }
        match twin {
            Some(twin) if !self.can_read(&state, twin, now) => Some(AccessEnded::Twin),
            _ => None,
        }
    }

    /// What the caller may see of `event` now. Asked afresh for each event,
    /// so a revoked grant, an expired one or a revoked token takes effect
    /// on the very next event.
    pub(crate) fn view_event(&self, event: &Arc<Event>) -> EventView {
        if !self.enforced() {
            return EventView::Visible(event.clone());
        }
        let state = self.auth.state();
        let now = Timestamp::now();
        if !self.credential_active(&state, now) {
            return EventView::CredentialEnded;
        }
        if self.principal.is_admin() {
            return EventView::Visible(event.clone());
        }
        let filter = state.policies.signal_filter(&self.principal, &event.twin, now);
        let EventBody::Points { points } = &event.body else {
            return if state.policies.readable(&self.principal, &event.twin, now) {
                EventView::Visible(event.clone())
            } else {
                EventView::TwinUnreadable
            };
        };
        if filter.is_nothing() {
            return if state.policies.readable(&self.principal, &event.twin, now) {
                EventView::Hidden
            } else {
                EventView::TwinUnreadable
            };
        }
        if points.iter().all(|point| filter.allows(&point.signal)) {
            return EventView::Visible(event.clone());
        }
        let kept: Vec<_> = points.iter().filter(|point| filter.allows(&point.signal)).cloned().collect();
        if kept.is_empty() {
            return EventView::Hidden;
        }
        EventView::Visible(Arc::new(Event {
            seq: event.seq,
            twin: event.twin.clone(),
            kind: event.kind,
            time: event.time,
            body: EventBody::Points { points: kept },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_auth::{Authenticator, NewToken, TokenName};

    /// An enforcing `Auth` holding one standard token of alice, and the
    /// caller that token makes.
    fn alice() -> (Auth, Caller) {
        let now = Timestamp::now();
        let mut state = AuthState::default();
        let new = NewToken {
            name: TokenName::new("phone").unwrap(),
            user: UserName::new("alice").unwrap(),
            scopes: Scopes::standard(),
            expires: None,
        };
        let (secret, _) = state.tokens.create(new, now).unwrap();
        let auth = Auth::build(true, None, state, Authenticator::default(), None);
        let principal = auth.authenticate(Some(&format!("Bearer {}", secret.expose())), now).unwrap();
        (auth.clone(), Caller { principal, auth, note: AuditNote::default() })
    }

    #[tokio::test]
    async fn a_watched_stream_hears_its_token_revoked_without_any_event() {
        let (auth, caller) = alice();
        let mut watch = AccessWatch::new(&caller, None);
        let PrincipalKind::Token(id) = caller.principal().kind().clone() else { panic!("a token caller") };
        auth.update(|state| {
            state
                .tokens
                .revoke(&id, Timestamp::now())
                .map(drop)
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), watch.ended()).await;
        assert_eq!(ended.ok(), Some(AccessEnded::Credential));
    }

    #[tokio::test]
    async fn a_watched_stream_of_one_twin_ends_when_the_twin_becomes_unreadable() {
        let (auth, caller) = alice();
        let twin = TwinId::new("alice").unwrap();
        auth.update(|state| {
            state.policies.claim(&twin, Subject::User(UserName::new("alice").unwrap()));
            Ok(())
        })
        .unwrap();
        let mut watch = AccessWatch::new(&caller, Some(twin.clone()));
        assert_eq!(caller.access_ended(Some(&twin)), None);
        auth.update(|state| {
            state.policies.remove_twin(&twin);
            Ok(())
        })
        .unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(10), watch.ended()).await;
        assert_eq!(ended.ok(), Some(AccessEnded::Twin));
    }

    #[tokio::test(start_paused = true)]
    async fn without_authentication_a_watch_never_ends() {
        let caller = Caller::unrestricted();
        let mut watch = AccessWatch::new(&caller, None);
        // Paused time runs ahead through many recheck periods at once.
        assert!(tokio::time::timeout(Duration::from_secs(60), watch.ended()).await.is_err());
    }
}
