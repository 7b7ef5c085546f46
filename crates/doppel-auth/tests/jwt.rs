//! JWT verification end to end: tokens signed with the fixture keys
//! (`tests/fixtures/README.md`) against verifiers configured from PEM files
//! and JWKS documents.

use std::collections::BTreeSet;

use doppel_auth::{
    AuthError, Authenticator, Credential, GroupName, JwtAlgorithm, JwtConfig, JwtKeys, JwtVerifier,
    PemKeyConfig, Permission, PrincipalKind, Tokens, parse_credential,
};
use doppel_model::{Timestamp, TwinId};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW_SECS: i64 = 1_700_000_000;
const ISSUER: &str = "https://id.example.org/realms/doppel";
const AUDIENCE: &str = "doppel";

const RSA_PRIVATE: &[u8] = include_bytes!("fixtures/rsa-private.pem");
const RSA_OTHER_PRIVATE: &[u8] = include_bytes!("fixtures/rsa-other-private.pem");
const EC_PRIVATE: &[u8] = include_bytes!("fixtures/ec-p256-private.pem");
const ED_PRIVATE: &[u8] = include_bytes!("fixtures/ed25519-private.pem");

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn now() -> Timestamp {
    Timestamp::from_secs(NOW_SECS)
}

fn encoding_key(algorithm: Algorithm) -> EncodingKey {
    match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_PRIVATE),
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED_PRIVATE),
        other => panic!("no fixture key for {other:?}"),
    }
    .unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "carol",
        "exp": NOW_SECS + 300,
        "iat": NOW_SECS,
        "groups": ["clinicians"],
    })
}

fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key(algorithm)).unwrap()
}

fn jwt(text: &str) -> doppel_auth::Jwt {
    match parse_credential(text).unwrap() {
        Credential::Jwt(jwt) => jwt,
        other => panic!("expected a JWT, got {other:?}"),
    }
}

/// A verifier trusting the three fixture public keys from PEM files, with
/// the given key ids.
fn pem_verifier(kids: [Option<&str>; 3]) -> JwtVerifier {
    let mut config = JwtConfig::new(ISSUER, AUDIENCE);
    let files = [
        ("rsa-public.pem", JwtAlgorithm::RS256),
        ("ec-p256-public.pem", JwtAlgorithm::ES256),
        ("ed25519-public.pem", JwtAlgorithm::EdDSA),
    ];
    for ((file, algorithm), kid) in files.into_iter().zip(kids) {
        config.pem_keys.push(PemKeyConfig { path: fixture(file), algorithm, kid: kid.map(str::to_owned) });
    }
    JwtVerifier::from_config(&config).unwrap()
}

/// The fixture public keys as a JWKS document, each with a kid.
fn jwks() -> String {
    let keys = [(Algorithm::RS256, "rsa-1"), (Algorithm::ES256, "ec-1"), (Algorithm::EdDSA, "ed-1")]
        .into_iter()
        .map(|(algorithm, kid)| {
            let mut jwk = Jwk::from_encoding_key(&encoding_key(algorithm), algorithm).unwrap();
            jwk.common.key_id = Some(kid.to_owned());
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

fn jwks_verifier(config: &JwtConfig) -> JwtVerifier {
    let mut keys = JwtKeys::new();
    keys.add_jwks(&jwks(), "jwks.json").unwrap();
    JwtVerifier::new(config, keys).unwrap()
}

#[test]
fn tokens_of_each_algorithm_verify_against_pem_keys() {
    let verifier = pem_verifier([None, None, None]);
    for algorithm in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let principal = verifier.verify(&jwt(&sign(algorithm, None, &claims())), now()).unwrap();
        assert_eq!(principal.kind(), &PrincipalKind::Jwt);
        assert_eq!(principal.user().unwrap().as_str(), "carol");
        assert_eq!(principal.groups(), &BTreeSet::from([GroupName::new("clinicians").unwrap()]));
    }
}

#[test]
fn tokens_of_each_algorithm_verify_against_a_jwks_by_kid() {
    let verifier = jwks_verifier(&JwtConfig::new(ISSUER, AUDIENCE));
    for (algorithm, kid) in
        [(Algorithm::RS256, "rsa-1"), (Algorithm::ES256, "ec-1"), (Algorithm::EdDSA, "ed-1")]
    {
        assert!(verifier.verify(&jwt(&sign(algorithm, Some(kid), &claims())), now()).is_ok(), "{kid}");
    }
}

#[test]
fn a_jwks_file_is_read_from_the_configured_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks()).unwrap();
    let mut config = JwtConfig::new(ISSUER, AUDIENCE);
    config.jwks_file = Some(path);
    let verifier = JwtVerifier::from_config(&config).unwrap();
    assert!(verifier.verify(&jwt(&sign(Algorithm::ES256, Some("ec-1"), &claims())), now()).is_ok());
}

#[test]
fn a_token_signed_by_an_untrusted_key_is_refused() {
    let verifier = pem_verifier([None, None, None]);
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(RSA_OTHER_PRIVATE).unwrap(),
    )
    .unwrap();
    assert!(matches!(verifier.verify(&jwt(&forged), now()), Err(AuthError::BadSignature)));
}

#[test]
fn a_tampered_payload_is_refused() {
    let verifier = pem_verifier([None, None, None]);
    let token = sign(Algorithm::ES256, None, &claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut admin_claims = claims();
    admin_claims["sub"] = json!("root");
    let payload = base64_url(&serde_json::to_vec(&admin_claims).unwrap());
    parts[1] = &payload;
    assert!(matches!(verifier.verify(&jwt(&parts.join(".")), now()), Err(AuthError::BadSignature)));
}

#[test]
fn key_ids_pick_the_key_and_must_agree_with_the_algorithm() {
    let verifier = jwks_verifier(&JwtConfig::new(ISSUER, AUDIENCE));
    let unknown =
        verifier.verify(&jwt(&sign(Algorithm::ES256, Some("retired"), &claims())), now()).unwrap_err();
    assert!(matches!(unknown, AuthError::UnknownKeyId { .. }), "{unknown}");
    let mismatch =
        verifier.verify(&jwt(&sign(Algorithm::ES256, Some("rsa-1"), &claims())), now()).unwrap_err();
    assert!(matches!(mismatch, AuthError::KeyAlgorithmMismatch { .. }), "{mismatch}");
}

#[test]
fn without_a_kid_every_key_of_the_algorithm_is_tried() {
    let mut keys = JwtKeys::new();
    keys.add_pem_file(&fixture("ec-p256-public.pem"), JwtAlgorithm::ES256, None).unwrap();
    keys.add_jwks(&jwks(), "jwks.json").unwrap();
    let verifier = JwtVerifier::new(&JwtConfig::new(ISSUER, AUDIENCE), keys).unwrap();
    assert!(verifier.verify(&jwt(&sign(Algorithm::RS256, None, &claims())), now()).is_ok());
    assert!(verifier.verify(&jwt(&sign(Algorithm::ES256, None, &claims())), now()).is_ok());
}

#[test]
fn hmac_and_unsigned_tokens_are_refused() {
    let verifier = pem_verifier([None, None, None]);
    let hmac =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(b"k"))
            .unwrap();
    let err = verifier.verify(&jwt(&hmac), now()).unwrap_err();
    assert!(matches!(err, AuthError::JwtAlgorithmNotAccepted { .. }), "{err}");

    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64_url(&serde_json::to_vec(&claims()).unwrap());
    let unsigned = format!("{header}.{payload}.AAAA");
    assert!(verifier.verify(&jwt(&unsigned), now()).is_err());
}

#[test]
fn issuer_audience_and_required_claims_are_enforced() {
    let verifier = pem_verifier([None, None, None]);
    let with = |key: &str, value: Value| {
        let mut claims = claims();
        claims[key] = value;
        verifier.verify(&jwt(&sign(Algorithm::EdDSA, None, &claims)), now())
    };
    assert!(matches!(with("iss", json!("https://evil.example")), Err(AuthError::WrongIssuer)));
    assert!(matches!(with("aud", json!("another-service")), Err(AuthError::WrongAudience)));
    assert!(with("aud", json!(["another-service", AUDIENCE])).is_ok());
    for claim in ["iss", "aud", "sub", "exp"] {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove(claim);
        let err = verifier.verify(&jwt(&sign(Algorithm::EdDSA, None, &claims)), now()).unwrap_err();
        assert!(matches!(&err, AuthError::MissingClaim { claim: c } if c == claim), "{claim}: {err}");
    }
}

#[test]
fn expiry_is_checked_against_the_given_time() {
    let verifier = pem_verifier([None, None, None]);
    let token = jwt(&sign(Algorithm::ES256, None, &claims()));
    assert!(verifier.verify(&token, Timestamp::from_secs(NOW_SECS + 300 + 59)).is_ok());
    let err = verifier.verify(&token, Timestamp::from_secs(NOW_SECS + 300 + 60)).unwrap_err();
    assert!(matches!(err, AuthError::JwtExpired { .. }), "{err}");
    assert!(err.to_string().contains("2023-11-14T22:18:20Z"), "{err}");
}

#[test]
fn critical_header_extensions_are_refused() {
    let verifier = pem_verifier([None, None, None]);
    let mut header = Header::new(Algorithm::ES256);
    header.crit = Some(vec!["exp".to_owned()]);
    let token = jsonwebtoken::encode(&header, &claims(), &encoding_key(Algorithm::ES256)).unwrap();
    assert!(matches!(verifier.verify(&jwt(&token), now()), Err(AuthError::MalformedJwt { .. })));
}

#[test]
fn the_admin_group_and_scope_claim_shape_the_scopes() {
    let mut config = JwtConfig::new(ISSUER, AUDIENCE);
    config.admin_group = Some(GroupName::new("doppel-admins").unwrap());
    config.groups_claim = "roles".to_owned();
    let verifier = jwks_verifier(&config);
    let twin = TwinId::new("alice").unwrap();

    let mut admin = claims();
    admin["roles"] = json!(["doppel-admins"]);
    assert!(verifier.verify(&jwt(&sign(Algorithm::RS256, Some("rsa-1"), &admin)), now()).unwrap().is_admin());

    let mut reader = claims();
    reader["scope"] = json!("openid doppel:read");
    let principal = verifier.verify(&jwt(&sign(Algorithm::RS256, Some("rsa-1"), &reader)), now()).unwrap();
    assert!(principal.groups().is_empty(), "groups come from the configured claim only");
    assert!(principal.scopes().permits(Permission::Read, &twin));
    assert!(!principal.scopes().permits(Permission::Write, &twin));
}

#[test]
fn the_authenticator_takes_bearer_and_token_headers_and_no_header_as_anonymous() {
    let authenticator = Authenticator::new(Some(pem_verifier([None, None, None])));
    let tokens = Tokens::new();
    let token = sign(Algorithm::ES256, None, &claims());
    for scheme in ["Bearer", "Token"] {
        let principal =
            authenticator.authenticate(Some(&format!("{scheme} {token}")), &tokens, now()).unwrap();
        assert_eq!(principal.user().unwrap().as_str(), "carol");
    }
    assert_eq!(authenticator.authenticate(None, &tokens, now()).unwrap().kind(), &PrincipalKind::Anonymous);
    assert!(authenticator.authenticate(Some("Bearer"), &tokens, now()).is_err());

    let without_jwt = Authenticator::new(None);
    let err = without_jwt.authenticate(Some(&format!("Bearer {token}")), &tokens, now()).unwrap_err();
    assert!(matches!(err, AuthError::JwtNotConfigured), "{err}");
}

#[test]
fn a_verifier_needs_an_issuer_an_audience_and_keys() {
    assert!(JwtVerifier::new(&JwtConfig::new(ISSUER, AUDIENCE), JwtKeys::new()).is_err());
    let mut keys = JwtKeys::new();
    keys.add_jwks(&jwks(), "jwks.json").unwrap();
    assert!(JwtVerifier::new(&JwtConfig::new("", AUDIENCE), keys.clone()).is_err());
    assert!(JwtVerifier::new(&JwtConfig::new(ISSUER, ""), keys).is_err());
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a client sends, verification answers Ok or Err.
    #[test]
    fn verifying_arbitrary_jwt_shaped_text_never_panics(
        header in "[A-Za-z0-9_-]{1,40}",
        payload in "[A-Za-z0-9_-]{1,80}",
        signature in "[A-Za-z0-9_-]{1,90}",
    ) {
        let verifier = pem_verifier([None, Some("ec"), None]);
        let text = format!("{header}.{payload}.{signature}");
        if let Ok(Credential::Jwt(token)) = parse_credential(&text) {
            let _ = verifier.verify(&token, now());
        }
    }

    /// Arbitrary JSON headers and claims around a real signature: the
    /// decoder sees every shape of header and payload.
    #[test]
    fn verifying_arbitrary_headers_and_claims_never_panics(
        alg in prop::sample::select(vec!["RS256", "ES256", "EdDSA", "HS256", "none", "PS256", ""]),
        kid in prop::option::of("[a-z]{0,3}"),
        sub in prop::option::of(prop_oneof![Just(json!("u")), Just(json!(7)), Just(json!(null)), Just(json!(""))]),
        exp in prop::option::of(prop_oneof![Just(json!(NOW_SECS + 60)), Just(json!("x")), Just(json!(-1e300)), Just(json!(1e300))]),
        groups in prop::option::of(prop_oneof![Just(json!(["a"])), Just(json!([1])), Just(json!("a")), Just(json!({}))]),
    ) {
        let verifier = pem_verifier([None, Some("ec"), None]);
        let mut header = json!({"alg": alg});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE});
        for (key, value) in [("sub", sub), ("exp", exp), ("groups", groups)] {
            if let Some(value) = value {
                claims[key] = value;
            }
        }
        let signed = sign(Algorithm::ES256, Some("ec"), &json!({}));
        let signature = signed.rsplit('.').next().unwrap_or_default();
        let text = format!(
            "{}.{}.{signature}",
            base64_url(&serde_json::to_vec(&header).unwrap()),
            base64_url(&serde_json::to_vec(&claims).unwrap()),
        );
        let _ = verifier.verify(&jwt(&text), now());
    }
}
