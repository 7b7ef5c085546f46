//! From a verified JWT's claims to a principal: time checks against the
//! caller's clock, the user, the groups and the scopes.

use std::collections::BTreeSet;

use doppel_model::Timestamp;
use serde_json::{Map, Value};

use crate::{AuthError, GroupName, Principal, Scope, Scopes, UserName};

/// Clock skew forgiven on `exp` and `nbf`, in seconds: the provider's
/// clock and Doppel's may differ by this much.
pub const JWT_LEEWAY_SECONDS: f64 = 60.0;
/// Most groups taken from one token; a longer list is refused rather than
/// truncated, because dropping a group could drop a grant silently.
pub const MAX_GROUPS: usize = 256;

/// The configured rules for reading claims.
pub(crate) struct ClaimRules<'a> {
    pub(crate) groups_claim: &'a str,
    pub(crate) admin_group: Option<&'a GroupName>,
    pub(crate) scope_prefix: &'a str,
}

/// The principal a verified token's claims describe, if the token is
/// within its validity window at `now`.
pub(crate) fn principal(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: Timestamp,
) -> Result<Principal, AuthError> {
    let ends = check_time(claims, now)?;
    let user = match claims.get("sub") {
        Some(Value::String(sub)) => UserName::new(sub).map_err(|e| invalid("sub", e.to_string()))?,
        Some(_) => return Err(invalid("sub", "is not a string".to_owned())),
        None => return Err(AuthError::MissingClaim { claim: "sub".to_owned() }),
    };
    let groups = groups(claims.get(rules.groups_claim), rules.groups_claim)?;
    let base = match rules.admin_group {
        Some(admin) if groups.contains(admin) => Scopes::Admin,
        _ => Scopes::standard(),
    };
    let scopes = match claimed_scopes(claims.get("scope"), rules.scope_prefix)? {
        Some(claimed) => base.narrow(&claimed),
        None => base,
    };
    Ok(Principal::from_jwt(user, groups, scopes).until(ends))
}

/// Checks `exp` and `nbf` at `now`; answers when the token stops counting.
fn check_time(claims: &Map<String, Value>, now: Timestamp) -> Result<Timestamp, AuthError> {
    let now_secs = now.as_nanos() as f64 / 1e9;
    let expires = match claims.get("exp") {
        Some(value) => seconds(value, "exp")?,
        None => return Err(AuthError::MissingClaim { claim: "exp".to_owned() }),
    };
    if now_secs >= expires + JWT_LEEWAY_SECONDS {
        return Err(AuthError::JwtExpired { at: timestamp(expires) });
    }
    if let Some(value) = claims.get("nbf") {
        let not_before = seconds(value, "nbf")?;
        if now_secs + JWT_LEEWAY_SECONDS < not_before {
            return Err(AuthError::JwtNotYetValid { at: timestamp(not_before) });
        }
    }
    Ok(timestamp(expires + JWT_LEEWAY_SECONDS))
}

/// A NumericDate: seconds since the epoch, possibly fractional (RFC 7519 §2).
fn seconds(value: &Value, claim: &str) -> Result<f64, AuthError> {
    value.as_f64().ok_or_else(|| invalid(claim, "is not a number of seconds".to_owned()))
}

fn timestamp(seconds: f64) -> Timestamp {
    // `as` saturates at the ends of i64, which is what a far-off date needs.
    Timestamp::from_nanos((seconds * 1e9) as i64)
}

/// The groups claim: a list of names, or one name; absent means none.
fn groups(value: Option<&Value>, claim: &str) -> Result<BTreeSet<GroupName>, AuthError> {
    let names: Vec<&Value> = match value {
        None | Some(Value::Null) => return Ok(BTreeSet::new()),
        Some(one @ Value::String(_)) => vec![one],
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return Err(invalid(claim, "is not a list of group names".to_owned())),
    };
    if names.len() > MAX_GROUPS {
        return Err(invalid(claim, format!("lists {} groups, more than {MAX_GROUPS}", names.len())));
    }
    names
        .into_iter()
        .map(|name| match name {
            Value::String(name) => GroupName::new(name).map_err(|e| invalid(claim, e.to_string())),
            _ => Err(invalid(claim, "is not a list of group names".to_owned())),
        })
        .collect()
}

/// The Doppel scopes a `scope` claim names, or `None` when it names none
/// (absent, or only the provider's own scopes such as `openid`). With a
/// prefix, an unknown `doppel:` word still counts as naming scopes, so a
/// misspelt `doppel:reed` narrows the token to nothing instead of leaving
/// it unnarrowed.
fn claimed_scopes(value: Option<&Value>, prefix: &str) -> Result<Option<Scopes>, AuthError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text,
        Some(_) => return Err(invalid("scope", "is not a space-separated string".to_owned())),
    };
    let mut mentioned = false;
    let mut scopes = Vec::new();
    for word in text.split_whitespace() {
        let Some(name) = word.strip_prefix(prefix) else {
            continue;
        };
        match name.parse::<Scope>() {
            Ok(scope) => {
                mentioned = true;
                scopes.push(scope);
            }
            Err(_) => mentioned |= !prefix.is_empty(),
        }
    }
    if !mentioned {
        return Ok(None);
    }
    Scopes::new(scopes, None).map(Some)
}

fn invalid(claim: &str, reason: String) -> AuthError {
    AuthError::InvalidClaim { claim: crate::error::echo(claim), reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Permission;
    use doppel_model::TwinId;
    use serde_json::json;

    const NOW_SECS: i64 = 1_700_000_000;

    fn rules<'a>(admin: Option<&'a GroupName>) -> ClaimRules<'a> {
        ClaimRules { groups_claim: "groups", admin_group: admin, scope_prefix: "doppel:" }
    }

    fn read(claims: Value, admin: Option<&GroupName>) -> Result<Principal, AuthError> {
        let Value::Object(claims) = claims else { panic!("claims are an object") };
        principal(&claims, &rules(admin), Timestamp::from_secs(NOW_SECS))
    }

    #[test]
    fn claims_map_to_user_groups_and_standard_scopes() {
        let principal =
            read(json!({"sub": "carol", "exp": NOW_SECS + 60, "groups": ["clinicians"]}), None).unwrap();
        assert_eq!(principal.user().map(UserName::as_str), Some("carol"));
        assert!(principal.groups().contains(&GroupName::new("clinicians").unwrap()));
        assert_eq!(principal.scopes(), &Scopes::standard());
        let ends = Timestamp::from_secs(NOW_SECS + 60 + JWT_LEEWAY_SECONDS as i64);
        assert_eq!(principal.expires(), Some(ends), "exp and leeway bound what outlives the request");
    }

    #[test]
    fn only_the_configured_admin_group_gives_the_admin_scope() {
        let admins = GroupName::new("doppel-admins").unwrap();
        let claims = json!({"sub": "root", "exp": NOW_SECS + 60, "groups": ["doppel-admins"], "scope": "doppel:admin"});
        assert!(read(claims.clone(), Some(&admins)).unwrap().is_admin());
        assert!(!read(claims, None).unwrap().is_admin());
    }

    #[test]
    fn the_scope_claim_narrows_and_ignores_provider_scopes() {
        let twin = TwinId::new("alice").unwrap();
        let narrowed =
            read(json!({"sub": "u", "exp": NOW_SECS + 60, "scope": "openid doppel:read email"}), None)
                .unwrap();
        assert!(narrowed.scopes().permits(Permission::Read, &twin));
        assert!(!narrowed.scopes().permits(Permission::Write, &twin));
        let provider_only =
            read(json!({"sub": "u", "exp": NOW_SECS + 60, "scope": "openid email"}), None).unwrap();
        assert_eq!(provider_only.scopes(), &Scopes::standard());
        let misspelt = read(json!({"sub": "u", "exp": NOW_SECS + 60, "scope": "doppel:reed"}), None).unwrap();
        assert!(!misspelt.scopes().permits(Permission::Read, &twin));
    }

    #[test]
    fn time_claims_are_checked_with_leeway_against_the_given_clock() {
        assert!(read(json!({"sub": "u", "exp": NOW_SECS - 30}), None).is_ok());
        let expired = read(json!({"sub": "u", "exp": NOW_SECS - 61}), None).unwrap_err();
        assert!(matches!(expired, AuthError::JwtExpired { .. }), "{expired}");
        let early =
            read(json!({"sub": "u", "exp": NOW_SECS + 600, "nbf": NOW_SECS + 120}), None).unwrap_err();
        assert!(matches!(early, AuthError::JwtNotYetValid { .. }), "{early}");
        assert!(read(json!({"sub": "u", "exp": NOW_SECS + 600, "nbf": NOW_SECS + 30}), None).is_ok());
        assert!(read(json!({"sub": "u", "exp": (NOW_SECS + 60) as f64 + 0.5}), None).is_ok());
    }

    #[test]
    fn malformed_claims_are_named() {
        let cases = [
            (json!({"sub": 7, "exp": NOW_SECS + 60}), "sub"),
            (json!({"sub": "", "exp": NOW_SECS + 60}), "sub"),
            (json!({"sub": "u", "exp": "tomorrow"}), "exp"),
            (json!({"sub": "u", "exp": NOW_SECS + 60, "groups": [1]}), "groups"),
            (json!({"sub": "u", "exp": NOW_SECS + 60, "groups": {"a": 1}}), "groups"),
            (json!({"sub": "u", "exp": NOW_SECS + 60, "scope": ["doppel:read"]}), "scope"),
        ];
        for (claims, claim) in cases {
            let err = read(claims, None).unwrap_err();
            assert!(err.to_string().contains(&format!("{claim:?}")), "{err}");
        }
        let too_many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        assert!(read(json!({"sub": "u", "exp": NOW_SECS + 60, "groups": too_many}), None).is_err());
    }
}
