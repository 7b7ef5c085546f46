//! Per-twin policies as the server will use them: owners, sharing with
//! expiry, revocation, groups, token subjects, scopes, signal filters and
//! persistence.

use std::collections::BTreeSet;

use doppel_auth::{
    Action, Allowance, AuthError, Decision, Denial, GroupName, NewGrant, NewToken, Permission, Permissions,
    Policies, Principal, Resource, Scope, Scopes, SignalFilter, Subject, Target, TokenName, Tokens, UserName,
    parse_token,
};
use doppel_model::{SignalName, Timestamp, TwinId};
use proptest::prelude::*;

const DAY_NS: i64 = 86_400 * 1_000_000_000;

fn now() -> Timestamp {
    Timestamp::from_secs(1_700_000_000)
}

fn twin(name: &str) -> TwinId {
    TwinId::new(name).unwrap()
}

fn signal(name: &str) -> SignalName {
    SignalName::new(name).unwrap()
}

fn user(name: &str) -> Principal {
    Principal::from_jwt(UserName::new(name).unwrap(), BTreeSet::new(), Scopes::standard())
}

fn member(name: &str, group: &str) -> Principal {
    Principal::from_jwt(
        UserName::new(name).unwrap(),
        BTreeSet::from([GroupName::new(group).unwrap()]),
        Scopes::standard(),
    )
}

fn scoped(name: &str, scopes: Scopes) -> Principal {
    Principal::from_jwt(UserName::new(name).unwrap(), BTreeSet::new(), scopes)
}

fn admin() -> Principal {
    Principal::from_jwt(UserName::new("root").unwrap(), BTreeSet::new(), Scopes::Admin)
}

fn read(name: &str) -> Action {
    Action::on_signal(Permission::Read, signal(name))
}

fn share(subject: &str, resource: &str, permissions: &str, expires: Option<Timestamp>) -> NewGrant {
    NewGrant {
        subject: subject.parse().unwrap(),
        resource: resource.parse().unwrap(),
        permissions: permissions.parse().unwrap(),
        expires,
    }
}

/// Alice owns twin `alice`.
fn alices_twin() -> Policies {
    let mut policies = Policies::new();
    assert!(policies.claim(&twin("alice"), Subject::User(UserName::new("alice").unwrap())));
    policies
}

#[test]
fn the_owner_may_do_everything_and_others_nothing() {
    let policies = alices_twin();
    for permission in Permission::ALL {
        let action = Action::new(permission, Target::Twin);
        assert_eq!(
            policies.authorize(&user("alice"), &twin("alice"), &action, now()),
            Decision::Allow(Allowance::Owner)
        );
        assert_eq!(
            policies.authorize(&user("bob"), &twin("alice"), &action, now()),
            Decision::Deny(Denial::NoGrant)
        );
    }
    assert!(!policies.authorize(&user("alice"), &twin("bob"), &read("heart_rate"), now()).is_allowed());
}

#[test]
fn a_twin_is_claimed_once() {
    let mut policies = alices_twin();
    assert!(!policies.claim(&twin("alice"), Subject::User(UserName::new("mallory").unwrap())));
    assert_eq!(policies.owner(&twin("alice")).unwrap().to_string(), "user:alice");
}

#[test]
fn an_assigned_owner_replaces_the_previous_one_and_grants_stay() {
    let mut policies = alices_twin();
    policies.grant(&user("alice"), &twin("alice"), share("user:coach", "twin", "read", None), now()).unwrap();
    let previous = policies.set_owner(&twin("alice"), Subject::User(UserName::new("alicia").unwrap()));
    assert_eq!(previous.map(|p| p.to_string()).as_deref(), Some("user:alice"));
    assert!(policies.authorize(&user("alicia"), &twin("alice"), &read("heart_rate"), now()).is_allowed());
    assert!(!policies.authorize(&user("alice"), &twin("alice"), &read("heart_rate"), now()).is_allowed());
    assert!(policies.readable(&user("coach"), &twin("alice"), now()));
}

#[test]
fn the_twins_with_a_policy_are_listed_in_id_order() {
    let mut policies = alices_twin();
    policies.claim(&twin("carol"), Subject::User(UserName::new("carol").unwrap()));
    policies.grant(&admin(), &twin("bob"), share("user:coach", "twin", "read", None), now()).unwrap();
    let listed: Vec<&str> = policies.twins().map(TwinId::as_str).collect();
    assert_eq!(listed, ["alice", "bob", "carol"]);
}

#[test]
fn sharing_signals_with_a_clinician_for_ninety_days_then_revoking() {
    let mut policies = alices_twin();
    let until = now().add_nanos(90 * DAY_NS);
    let id = policies
        .grant(
            &user("alice"),
            &twin("alice"),
            share("user:dr-who", "signals:heart_rate", "read", Some(until)),
            now(),
        )
        .unwrap()
        .id;
    let clinician = user("dr-who");
    assert_eq!(
        policies.authorize(&clinician, &twin("alice"), &read("heart_rate"), now()),
        Decision::Allow(Allowance::Grant(id))
    );
    assert!(!policies.authorize(&clinician, &twin("alice"), &read("glucose"), now()).is_allowed());
    let write = Action::on_signal(Permission::Write, signal("heart_rate"));
    assert!(!policies.authorize(&clinician, &twin("alice"), &write, now()).is_allowed());
    assert!(!policies.authorize(&clinician, &twin("alice"), &read("heart_rate"), until).is_allowed());

    let revoked = policies.revoke(&user("alice"), &twin("alice"), id, now()).unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].granted_by.to_string(), "user:alice");
    assert!(!policies.authorize(&clinician, &twin("alice"), &read("heart_rate"), now()).is_allowed());
    assert!(matches!(
        policies.revoke(&user("alice"), &twin("alice"), id, now()),
        Err(AuthError::UnknownGrant { .. })
    ));
}

#[test]
fn group_grants_reach_every_member() {
    let mut policies = alices_twin();
    policies
        .grant(&user("alice"), &twin("alice"), share("group:coaches", "signals:*", "read", None), now())
        .unwrap();
    assert!(
        policies.authorize(&member("carol", "coaches"), &twin("alice"), &read("steps"), now()).is_allowed()
    );
    assert!(
        !policies.authorize(&member("dave", "nurses"), &twin("alice"), &read("steps"), now()).is_allowed()
    );
}

#[test]
fn a_token_subject_grant_reaches_that_token_only() {
    let mut tokens = Tokens::new();
    let new = |name: &str| NewToken {
        name: TokenName::new(name).unwrap(),
        user: UserName::new("uploader").unwrap(),
        scopes: Scopes::standard(),
        expires: None,
    };
    let (granted_secret, granted) = tokens.create(new("scale"), now()).unwrap();
    let granted_id = granted.id;
    let (other_secret, _) = tokens.create(new("other"), now()).unwrap();
    let mut policies = alices_twin();
    let subject = format!("token:{granted_id}");
    policies
        .grant(&user("alice"), &twin("alice"), share(&subject, "signals:weight", "write", None), now())
        .unwrap();

    let write = Action::on_signal(Permission::Write, signal("weight"));
    let granted = tokens.authenticate(&parse_token(granted_secret.expose()).unwrap(), now()).unwrap();
    let other = tokens.authenticate(&parse_token(other_secret.expose()).unwrap(), now()).unwrap();
    assert!(policies.authorize(&granted, &twin("alice"), &write, now()).is_allowed());
    assert!(!policies.authorize(&other, &twin("alice"), &write, now()).is_allowed());
}

#[test]
fn scopes_cap_what_the_owner_may_do() {
    let policies = alices_twin();
    let upload_only = scoped("alice", Scopes::new([Scope::Write], None).unwrap());
    let write = Action::on_signal(Permission::Write, signal("steps"));
    assert!(policies.authorize(&upload_only, &twin("alice"), &write, now()).is_allowed());
    assert_eq!(
        policies.authorize(&upload_only, &twin("alice"), &read("steps"), now()),
        Decision::Deny(Denial::ScopeMissing(Permission::Read))
    );
    let other_twin =
        scoped("alice", Scopes::new([Scope::Write], Some(BTreeSet::from([twin("bob")]))).unwrap());
    assert_eq!(
        policies.authorize(&other_twin, &twin("alice"), &write, now()),
        Decision::Deny(Denial::TwinOutOfScope)
    );
}

#[test]
fn admins_may_do_anything_and_anonymous_callers_nothing() {
    let policies = alices_twin();
    let manage = Action::new(Permission::Manage, Target::Twin);
    assert_eq!(
        policies.authorize(&admin(), &twin("alice"), &manage, now()),
        Decision::Allow(Allowance::Admin)
    );
    assert_eq!(
        policies.authorize(&admin(), &twin("nobody"), &manage, now()),
        Decision::Allow(Allowance::Admin)
    );
    assert_eq!(
        policies.authorize(&Principal::anonymous(), &twin("alice"), &read("heart_rate"), now()),
        Decision::Deny(Denial::Unauthenticated)
    );
    assert!(!policies.readable(&Principal::anonymous(), &twin("alice"), now()));
}

#[test]
fn check_reports_who_was_refused_what_and_why() {
    let policies = alices_twin();
    let err = policies.check(&user("bob"), &twin("alice"), &read("glucose"), now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "user bob (JWT) may not read signal glucose on twin alice: no ownership or active grant covers it"
    );
}

#[test]
fn signal_filters_follow_the_read_grants() {
    let mut policies = alices_twin();
    let alice = user("alice");
    policies
        .grant(&alice, &twin("alice"), share("user:coach", "signals:heart*", "read", None), now())
        .unwrap();
    policies
        .grant(&alice, &twin("alice"), share("user:coach", "signals:steps", "read", None), now())
        .unwrap();
    policies
        .grant(&alice, &twin("alice"), share("user:coach", "signals:glucose", "write", None), now())
        .unwrap();
    policies.grant(&alice, &twin("alice"), share("user:coach", "scenarios", "read", None), now()).unwrap();

    let filter = policies.signal_filter(&user("coach"), &twin("alice"), now());
    assert!(filter.allows(&signal("heart_rate")) && filter.allows(&signal("steps")));
    assert!(!filter.allows(&signal("glucose")), "write does not let one read");
    assert_eq!(policies.signal_filter(&alice, &twin("alice"), now()), SignalFilter::All);
    assert_eq!(policies.signal_filter(&user("eve"), &twin("alice"), now()), SignalFilter::Nothing);
    let write_only = scoped("coach", Scopes::new([Scope::Write], None).unwrap());
    assert!(policies.signal_filter(&write_only, &twin("alice"), now()).is_nothing());

    policies.grant(&alice, &twin("alice"), share("user:coach", "signals:*", "read", None), now()).unwrap();
    assert_eq!(policies.signal_filter(&user("coach"), &twin("alice"), now()), SignalFilter::All);
}

#[test]
fn readable_twins_are_those_with_any_read_access() {
    let mut policies = alices_twin();
    policies.claim(&twin("bob"), Subject::User(UserName::new("bob").unwrap()));
    policies
        .grant(&user("alice"), &twin("alice"), share("user:coach", "alerts", "read", None), now())
        .unwrap();
    let coach = user("coach");
    assert!(policies.readable(&coach, &twin("alice"), now()));
    assert!(!policies.readable(&coach, &twin("bob"), now()));
    assert!(policies.readable(&admin(), &twin("bob"), now()));
}

#[test]
fn grants_must_make_sense() {
    let mut policies = alices_twin();
    let alice = user("alice");
    let err = policies
        .grant(&alice, &twin("alice"), share("user:b", "signals:*", "simulate", None), now())
        .unwrap_err();
    assert!(matches!(err, AuthError::PermissionNotApplicable { .. }), "{err}");
    assert!(err.to_string().contains("it takes only read, write, share"), "{err}");
    let none = NewGrant { permissions: Permissions::NONE, ..share("user:b", "twin", "read", None) };
    assert!(matches!(policies.grant(&alice, &twin("alice"), none, now()), Err(AuthError::NoPermissions)));
    let past = share("user:b", "twin", "read", Some(now()));
    assert!(matches!(
        policies.grant(&alice, &twin("alice"), past, now()),
        Err(AuthError::ExpiryNotInFuture { .. })
    ));
}

#[test]
fn strangers_may_neither_grant_nor_revoke() {
    let mut policies = alices_twin();
    let id = policies
        .grant(&user("alice"), &twin("alice"), share("user:coach", "twin", "read", None), now())
        .unwrap()
        .id;
    let err =
        policies.grant(&user("mallory"), &twin("alice"), share("user:mallory", "twin", "read", None), now());
    assert!(matches!(err, Err(AuthError::Forbidden { denial: Denial::NoGrant, .. })));
    let err = policies.revoke(&user("coach"), &twin("alice"), id, now()).unwrap_err();
    assert!(matches!(err, AuthError::Forbidden { .. }), "{err}");
    let err =
        policies.grant(&Principal::anonymous(), &twin("alice"), share("user:x", "twin", "read", None), now());
    assert!(matches!(err, Err(AuthError::Forbidden { denial: Denial::Unauthenticated, .. })));
}

#[test]
fn a_sharer_passes_on_only_what_it_holds_and_not_for_longer() {
    let mut policies = alices_twin();
    let alice = user("alice");
    let until = now().add_nanos(30 * DAY_NS);
    policies
        .grant(
            &alice,
            &twin("alice"),
            share("user:guardian", "signals:glucose*", "read, share", Some(until)),
            now(),
        )
        .unwrap();
    let guardian = user("guardian");

    let narrower = share("user:nurse", "signals:glucose_cgm", "read", Some(until));
    let id = policies.grant(&guardian, &twin("alice"), narrower, now()).unwrap().id;
    assert!(policies.authorize(&user("nurse"), &twin("alice"), &read("glucose_cgm"), now()).is_allowed());

    let wider = share("user:nurse", "signals:*", "read", Some(until));
    assert!(matches!(
        policies.grant(&guardian, &twin("alice"), wider, now()),
        Err(AuthError::Forbidden { .. })
    ));
    let more = share("user:nurse", "signals:glucose", "read, write", Some(until));
    assert!(matches!(
        policies.grant(&guardian, &twin("alice"), more, now()),
        Err(AuthError::Forbidden { .. })
    ));
    let longer = share("user:nurse", "signals:glucose", "read", Some(until.add_nanos(1)));
    assert!(
        matches!(policies.grant(&guardian, &twin("alice"), longer, now()), Err(AuthError::GrantOutlivesGranter { limit }) if limit == until)
    );
    let forever = share("user:nurse", "signals:glucose", "read", None);
    assert!(matches!(
        policies.grant(&guardian, &twin("alice"), forever, now()),
        Err(AuthError::GrantOutlivesGranter { .. })
    ));

    policies.revoke(&guardian, &twin("alice"), id, now()).unwrap();
    let share_scoped_out = scoped("guardian", Scopes::new([Scope::Read], None).unwrap());
    let again = share("user:nurse", "signals:glucose", "read", Some(until));
    let err = policies.grant(&share_scoped_out, &twin("alice"), again, now()).unwrap_err();
    assert!(
        matches!(err, AuthError::Forbidden { denial: Denial::ScopeMissing(Permission::Share), .. }),
        "{err}"
    );
}

#[test]
fn pruning_drops_expired_grants_only() {
    let mut policies = alices_twin();
    let soon = now().add_nanos(DAY_NS);
    policies
        .grant(&user("alice"), &twin("alice"), share("user:a", "twin", "read", Some(soon)), now())
        .unwrap();
    policies.grant(&user("alice"), &twin("alice"), share("user:b", "twin", "read", None), now()).unwrap();
    assert_eq!(policies.prune(now()), 0);
    assert_eq!(policies.prune(soon), 1);
    assert_eq!(policies.grants(&twin("alice")).count(), 1);
}

#[test]
fn revoking_a_grant_revokes_every_grant_derived_from_it() {
    let mut policies = alices_twin();
    let eve = policies
        .grant(&user("alice"), &twin("alice"), share("user:eve", "twin", "read, share", None), now())
        .unwrap()
        .id;
    let bob = policies
        .grant(&user("eve"), &twin("alice"), share("user:bob", "twin", "read, share", None), now())
        .unwrap();
    assert_eq!(bob.derived_from, vec![eve]);
    let bob = bob.id;
    let carol = policies
        .grant(&user("bob"), &twin("alice"), share("user:carol", "twin", "read", None), now())
        .unwrap()
        .id;
    let dave = policies
        .grant(&user("alice"), &twin("alice"), share("user:dave", "twin", "read", None), now())
        .unwrap()
        .id;
    let action = Action::new(Permission::Read, Target::Twin);
    assert!(policies.authorize(&user("carol"), &twin("alice"), &action, now()).is_allowed());

    let revoked = policies.revoke(&user("alice"), &twin("alice"), eve, now()).unwrap();
    let ids: Vec<_> = revoked.iter().map(|grant| grant.id).collect();
    assert_eq!(ids, vec![eve, bob, carol]);
    for name in ["eve", "bob", "carol"] {
        assert!(!policies.authorize(&user(name), &twin("alice"), &action, now()).is_allowed(), "{name}");
    }
    assert!(policies.authorize(&user("dave"), &twin("alice"), &action, now()).is_allowed());
    assert_eq!(policies.grants(&twin("alice")).map(|grant| grant.id).collect::<Vec<_>>(), vec![dave]);
}

#[test]
fn a_grant_derives_from_each_grant_it_needed_and_pruning_cascades() {
    let mut policies = alices_twin();
    let soon = now().add_nanos(DAY_NS);
    let reads = policies
        .grant(&user("alice"), &twin("alice"), share("user:eve", "twin", "read", None), now())
        .unwrap()
        .id;
    let shares = policies
        .grant(&user("alice"), &twin("alice"), share("user:eve", "twin", "share", Some(soon)), now())
        .unwrap()
        .id;
    let derived = policies
        .grant(&user("eve"), &twin("alice"), share("user:bob", "twin", "read", Some(soon)), now())
        .unwrap();
    assert_eq!(derived.derived_from, vec![reads, shares]);
    assert_eq!(policies.prune(soon), 2, "the expired share grant and the grant derived from it");
    assert_eq!(policies.grants(&twin("alice")).map(|grant| grant.id).collect::<Vec<_>>(), vec![reads]);
}

#[test]
fn stored_derivations_must_name_older_grants_of_the_same_twin() {
    let grant = |id: u64, derived: &str| {
        format!(
            r#"{{"id":{id},"twin":"alice","subject":"user:b","resource":"twin","permissions":["read","share"],
            "expires":null,"granted_by":"user:alice","created":0{derived}}}"#
        )
    };
    let without = format!(r#"{{"grants":[{}],"last_grant_id":1}}"#, grant(1, ""));
    let loaded: Policies = serde_json::from_str(&without).unwrap();
    assert!(loaded.grants(&twin("alice")).all(|grant| grant.derived_from.is_empty()));
    let good = format!(
        r#"{{"grants":[{},{}],"last_grant_id":2}}"#,
        grant(1, ""),
        grant(2, r#","derived_from":[1]"#)
    );
    assert!(serde_json::from_str::<Policies>(&good).is_ok());
    for bad in [r#","derived_from":[3]"#, r#","derived_from":[2]"#] {
        let json = format!(r#"{{"grants":[{},{}],"last_grant_id":3}}"#, grant(1, ""), grant(2, bad));
        assert!(serde_json::from_str::<Policies>(&json).is_err(), "{bad}");
    }
}

#[test]
fn removing_a_twin_forgets_its_policy() {
    let mut policies = alices_twin();
    policies.grant(&user("alice"), &twin("alice"), share("user:a", "twin", "read", None), now()).unwrap();
    assert!(policies.remove_twin(&twin("alice")));
    assert!(policies.owner(&twin("alice")).is_none());
    assert!(!policies.readable(&user("a"), &twin("alice"), now()));
}

#[test]
fn policies_round_trip_through_json_and_never_reuse_grant_ids() {
    let mut policies = alices_twin();
    let first = policies
        .grant(&user("alice"), &twin("alice"), share("group:c", "policy", "read", None), now())
        .unwrap()
        .id;
    policies.revoke(&user("alice"), &twin("alice"), first, now()).unwrap();
    policies.grant(&admin(), &twin("bob"), share("user:bob", "twin", "read, manage", None), now()).unwrap();
    let json = serde_json::to_string(&policies).unwrap();
    let mut loaded: Policies = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded, policies);
    let next = loaded
        .grant(&user("alice"), &twin("alice"), share("user:x", "alerts", "read", None), now())
        .unwrap()
        .id;
    assert!(next.0 > 2, "ids continue after the stored ones: {next}");
}

#[test]
fn inconsistent_stored_policies_are_refused() {
    let grant = r#"{"id":1,"twin":"alice","subject":"user:b","resource":"twin","permissions":["read"],
        "expires":null,"granted_by":"user:alice","created":0}"#;
    let duplicate = format!(r#"{{"grants":[{grant},{grant}],"last_grant_id":1}}"#);
    assert!(serde_json::from_str::<Policies>(&duplicate).is_err());
    let beyond_last = format!(r#"{{"grants":[{grant}],"last_grant_id":0}}"#);
    assert!(serde_json::from_str::<Policies>(&beyond_last).is_err());
    let bad_resource = grant.replace(r#""resource":"twin""#, r#""resource":"everything""#);
    assert!(
        serde_json::from_str::<Policies>(&format!(r#"{{"grants":[{bad_resource}],"last_grant_id":1}}"#))
            .is_err()
    );
}

// ---- properties --------------------------------------------------------

const TWINS: [&str; 2] = ["t1", "t2"];
const USERS: [&str; 3] = ["u1", "u2", "u3"];
const GROUPS: [&str; 2] = ["g1", "g2"];
const SIGNALS: [&str; 3] = ["hr", "hrv", "glucose"];

fn any_subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        prop::sample::select(USERS.to_vec()).prop_map(|u| Subject::User(UserName::new(u).unwrap())),
        prop::sample::select(GROUPS.to_vec()).prop_map(|g| Subject::Group(GroupName::new(g).unwrap())),
    ]
}

fn any_resource() -> impl Strategy<Value = Resource> {
    prop::sample::select(vec![
        "twin",
        "signals:*",
        "signals:hr*",
        "signals:glucose",
        "scenarios",
        "alerts",
        "policy",
    ])
    .prop_map(|text| text.parse().unwrap())
}

fn any_permissions() -> impl Strategy<Value = Permissions> {
    prop::collection::vec(prop::sample::select(Permission::ALL.to_vec()), 1..4)
        .prop_map(|list| list.into_iter().collect())
}

/// A grant request, on one of the twins, maybe expiring 1–10 days from now.
fn any_grant() -> impl Strategy<Value = (usize, NewGrant)> {
    (0..TWINS.len(), any_subject(), any_resource(), any_permissions(), prop::option::of(1i64..10)).prop_map(
        |(twin, subject, resource, permissions, days)| {
            let permissions = permissions & resource.applicable();
            let permissions =
                if permissions.is_empty() { Permissions::of(Permission::Read) } else { permissions };
            let expires = days.map(|d| now().add_nanos(d * DAY_NS));
            (twin, NewGrant { subject, resource, permissions, expires })
        },
    )
}

fn any_principal() -> impl Strategy<Value = Principal> {
    (
        prop::sample::select(USERS.to_vec()),
        prop::collection::btree_set(prop::sample::select(GROUPS.to_vec()), 0..2),
    )
        .prop_map(|(user, groups)| {
            Principal::from_jwt(
                UserName::new(user).unwrap(),
                groups.into_iter().map(|g| GroupName::new(g).unwrap()).collect(),
                Scopes::standard(),
            )
        })
}

fn any_action() -> impl Strategy<Value = Action> {
    let target = prop_oneof![
        Just(Target::Twin),
        prop::sample::select(SIGNALS.to_vec()).prop_map(|s| Target::Signal(signal(s))),
        Just(Target::Scenarios),
        Just(Target::Alerts),
        Just(Target::Policy),
    ];
    (prop::sample::select(Permission::ALL.to_vec()), target).prop_map(|(p, t)| Action::new(p, t))
}

fn any_scopes() -> impl Strategy<Value = Scopes> {
    (
        any_permissions(),
        prop::option::of(prop::collection::btree_set(prop::sample::select(TWINS.to_vec()), 0..2)),
    )
        .prop_map(|(permissions, twins)| {
            let scopes =
                Scope::ALL.into_iter().filter(|s| s.permission().is_some_and(|p| permissions.contains(p)));
            Scopes::new(scopes, twins.map(|t| t.into_iter().map(twin).collect())).unwrap()
        })
}

/// Policies owned by an administrator-free setup: each twin owned by
/// `owner`, grants given by the admin.
fn policies_with(grants: &[(usize, NewGrant)]) -> Policies {
    let mut policies = Policies::new();
    for name in TWINS {
        policies.claim(&twin(name), Subject::User(UserName::new("owner").unwrap()));
    }
    for (index, grant) in grants {
        policies.grant(&admin(), &twin(TWINS[*index]), grant.clone(), now()).unwrap();
    }
    policies
}

proptest! {
    /// Every allowance by a grant names a grant that is active, on that
    /// twin, for this principal, with this permission, covering the target.
    #[test]
    fn allowances_come_only_from_matching_active_grants(
        grants in prop::collection::vec(any_grant(), 0..8),
        principal in any_principal(),
        action in any_action(),
        twin_index in 0..TWINS.len(),
        days_later in 0i64..12,
    ) {
        let policies = policies_with(&grants);
        let at = now().add_nanos(days_later * DAY_NS);
        let target_twin = twin(TWINS[twin_index]);
        match policies.authorize(&principal, &target_twin, &action, at) {
            Decision::Allow(Allowance::Grant(id)) => {
                let grant = policies.grants(&target_twin).find(|g| g.id == id).expect("a grant of this twin");
                prop_assert!(grant.is_active(at));
                prop_assert_eq!(&grant.twin, &target_twin);
                prop_assert!(principal.is(&grant.subject));
                prop_assert!(grant.permissions.contains(action.permission));
                prop_assert!(grant.resource.covers(&action.target));
            }
            Decision::Allow(other) => prop_assert!(false, "only grants can allow a non-owner: {:?}", other),
            Decision::Deny(_) => {
                let covered = policies.grants(&target_twin).any(|g| {
                    g.is_active(at) && principal.is(&g.subject) && g.permissions.contains(action.permission)
                        && g.resource.covers(&action.target)
                });
                prop_assert!(!covered, "a matching active grant must allow");
            }
        }
    }

    /// Scopes only take away: with narrower scopes nothing is allowed that
    /// standard scopes did not allow, and what is allowed is within them.
    #[test]
    fn scopes_only_narrow_what_policies_allow(
        grants in prop::collection::vec(any_grant(), 0..8),
        principal in any_principal(),
        scopes in any_scopes(),
        action in any_action(),
        twin_index in 0..TWINS.len(),
    ) {
        let policies = policies_with(&grants);
        let target_twin = twin(TWINS[twin_index]);
        let narrowed = Principal::from_jwt(principal.user().unwrap().clone(), principal.groups().clone(), scopes.clone());
        let wide = policies.authorize(&principal, &target_twin, &action, now()).is_allowed();
        let narrow = policies.authorize(&narrowed, &target_twin, &action, now()).is_allowed();
        prop_assert!(!narrow || wide);
        prop_assert!(!narrow || scopes.permits(action.permission, &target_twin));

        let wide_filter = policies.signal_filter(&principal, &target_twin, now());
        let narrow_filter = policies.signal_filter(&narrowed, &target_twin, now());
        for name in SIGNALS {
            prop_assert!(!narrow_filter.allows(&signal(name)) || wide_filter.allows(&signal(name)));
        }
    }

    /// The signal filter and `readable` agree with `authorize` on reads.
    #[test]
    fn filters_agree_with_authorize(
        grants in prop::collection::vec(any_grant(), 0..8),
        principal in any_principal(),
        twin_index in 0..TWINS.len(),
        days_later in 0i64..12,
    ) {
        let policies = policies_with(&grants);
        let at = now().add_nanos(days_later * DAY_NS);
        let target_twin = twin(TWINS[twin_index]);
        let filter = policies.signal_filter(&principal, &target_twin, at);
        for name in SIGNALS {
            let allowed = policies.authorize(&principal, &target_twin, &read(name), at).is_allowed();
            prop_assert_eq!(filter.allows(&signal(name)), allowed, "signal {}", name);
        }
        let any_read = [Target::Twin, Target::Scenarios, Target::Alerts, Target::Policy]
            .into_iter()
            .chain(SIGNALS.iter().map(|s| Target::Signal(signal(s))))
            .any(|t| policies.authorize(&principal, &target_twin, &Action::new(Permission::Read, t), at).is_allowed());
        prop_assert_eq!(policies.readable(&principal, &target_twin, at), any_read);
    }
}
