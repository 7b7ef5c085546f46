//! Feeds arbitrary text, as an `Authorization` value and as a bare
//! credential, to the credential parser and to a JWT verifier trusting the
//! test keys of `crates/doppel-auth/tests/fixtures`; nothing may panic.
#![no_main]

use std::sync::OnceLock;

use doppel_auth::{
    Credential, JwtAlgorithm, JwtConfig, JwtKeys, JwtVerifier, parse_authorization, parse_credential,
};
use doppel_model::Timestamp;
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let fixtures: [(&[u8], JwtAlgorithm, Option<&str>); 3] = [
            (
                include_bytes!("../../crates/doppel-auth/tests/fixtures/rsa-public.pem"),
                JwtAlgorithm::RS256,
                None,
            ),
            (
                include_bytes!("../../crates/doppel-auth/tests/fixtures/ec-p256-public.pem"),
                JwtAlgorithm::ES256,
                Some("ec"),
            ),
            (
                include_bytes!("../../crates/doppel-auth/tests/fixtures/ed25519-public.pem"),
                JwtAlgorithm::EdDSA,
                None,
            ),
        ];
        let mut keys = JwtKeys::new();
        for (pem, algorithm, kid) in fixtures {
            keys.add_pem(pem, algorithm, kid.map(str::to_owned), "fixture").expect("a fixture key");
        }
        JwtVerifier::new(&JwtConfig::new("https://id.example.org", "doppel"), keys).expect("a verifier")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = Timestamp::from_secs(1_700_000_000);
    for credential in [parse_authorization(text), parse_credential(text)] {
        if let Ok(Credential::Jwt(jwt)) = credential {
            let _ = verifier().verify(&jwt, now);
        }
    }
});
