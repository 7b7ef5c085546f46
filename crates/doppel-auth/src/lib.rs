//! Doppel's identities and per-twin policies: who is asking, and what they
//! may do with each twin.
//!
//! - **Identities.** A request's `Authorization: Bearer …` (or, for InfluxDB
//!   clients, `Token …`) header carries an API token ([`token`]: `dpl_…`,
//!   shown once, stored as a hash, with expiry and scopes) or a JWT from an
//!   identity provider ([`jwt`]). [`Authenticator`] turns either into a
//!   [`Principal`]: a user, its groups, and the [`Scopes`] its credential is
//!   limited to.
//! - **Policies.** Each twin has an owner and [`Grant`]s: a [`Subject`]
//!   (user, group or token) may use some [`Permissions`] on a [`Resource`]
//!   of the twin (all of it, signals by pattern, scenarios, alerts, its
//!   policy), perhaps until some time. [`Policies`] answers every check with
//!   a [`Decision`] and its reason, and tells streams and exports which
//!   signals a caller may read ([`SignalFilter`]).
//!
//! ```
//! use doppel_auth::{
//!     Action, NewGrant, NewToken, Permission, Permissions, Policies, Principal, Resource, Scopes,
//!     Subject, TokenName, Tokens, UserName, parse_token,
//! };
//! use doppel_model::{SignalName, Span, Timestamp, TwinId};
//!
//! let now = Timestamp::from_secs(1_700_000_000);
//! let alice = TwinId::new("alice").unwrap();
//!
//! // The owner and a coach each hold a token.
//! let mut tokens = Tokens::new();
//! let new_token = |user: &str| NewToken {
//!     name: TokenName::new("laptop").unwrap(),
//!     user: UserName::new(user).unwrap(),
//!     scopes: Scopes::standard(),
//!     expires: None,
//! };
//! let owner_token = tokens.create(new_token("alice"), now).unwrap().0;
//! let coach_token = tokens.create(new_token("coach"), now).unwrap().0;
//! let owner = tokens.authenticate(&parse_token(owner_token.expose()).unwrap(), now).unwrap();
//! let coach = tokens.authenticate(&parse_token(coach_token.expose()).unwrap(), now).unwrap();
//!
//! // Alice owns her twin and lets the coach read her heart rate for 90 days.
//! let mut policies = Policies::new();
//! policies.claim(&alice, Subject::User(UserName::new("alice").unwrap()));
//! let ninety_days = "90d".parse::<Span>().unwrap().as_nanos();
//! policies
//!     .grant(&owner, &alice, NewGrant {
//!         subject: "user:coach".parse().unwrap(),
//!         resource: "signals:heart_rate".parse().unwrap(),
//!         permissions: Permissions::of(Permission::Read),
//!         expires: Some(now.add_nanos(ninety_days)),
//!     }, now)
//!     .unwrap();
//!
//! let read_hr = Action::on_signal(Permission::Read, SignalName::new("heart_rate").unwrap());
//! let read_glucose = Action::on_signal(Permission::Read, SignalName::new("glucose").unwrap());
//! assert!(policies.authorize(&coach, &alice, &read_hr, now).is_allowed());
//! assert!(!policies.authorize(&coach, &alice, &read_glucose, now).is_allowed());
//! assert!(!policies.authorize(&coach, &alice, &read_hr, now.add_nanos(ninety_days)).is_allowed());
//! assert!(!policies.authorize(&Principal::anonymous(), &alice, &read_hr, now).is_allowed());
//! ```
//!
//! This crate decides; it does not serve or log. [`Tokens`] and
//! [`Policies`] are in-memory sets that serialize to JSON; [`AuthStore`]
//! keeps both in a snapshot file and a log of the frequent changes since
//! ([`AuthChange`]: owners of new twins, tokens made and revoked). The server calls [`Authenticator::authenticate`] once per
//! request and [`Policies::authorize`] (or [`Policies::signal_filter`]) for
//! everything it touches. Time is always passed in, never read, so every
//! decision can be tested and replayed.

mod authenticator;
mod change;
mod credential;
mod error;
pub mod jwt;
mod names;
mod permission;
mod persist;
mod policy;
mod principal;
mod scopes;
pub mod token;
mod tokens;

pub use authenticator::Authenticator;
pub use change::AuthChange;
pub use credential::{Credential, Jwt, MAX_CREDENTIAL_BYTES, parse_authorization, parse_credential};
pub use error::AuthError;
pub use jwt::{JwtAlgorithm, JwtConfig, JwtKeys, JwtVerifier, PemKeyConfig};
pub use names::{GroupName, MAX_NAME_BYTES, TokenName, UserName};
pub use permission::{Permission, Permissions};
pub use persist::{AuthState, AuthStore, LOG_FILE, Loaded, MAX_STATE_BYTES, STATE_FILE};
pub use policy::{
    Action, Allowance, Decision, Denial, Grant, GrantId, NewGrant, Policies, Resource, SignalFilter,
    SignalPattern, Subject, Target,
};
pub use principal::{Principal, PrincipalKind};
pub use scopes::{Scope, Scopes, TwinSet};
pub use token::{NewToken, SecretToken, TokenId, TokenRecord, TokenRef, TokenStatus, generate, parse_token};
pub use tokens::{BOOTSTRAP_TOKEN_NAME, BOOTSTRAP_USER, Bootstrap, Tokens};
