//! Feeds arbitrary text to the API-token parser and to a token set's
//! authentication; neither may panic, and a token that parses has exactly
//! the documented shape.
#![no_main]

use std::sync::OnceLock;

use doppel_auth::{Tokens, parse_authorization, parse_token, token::TOKEN_CHARS};
use doppel_model::Timestamp;
use libfuzzer_sys::fuzz_target;

/// A set holding one admin token, so that well-formed inputs reach the
/// secret comparison.
fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let mut tokens = Tokens::new();
        let known = "dpl_abcdefgh2345_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        tokens.bootstrap_admin(Some(known), Timestamp::from_secs(0)).expect("a valid bootstrap token");
        tokens
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(presented) = parse_token(text) {
        assert_eq!(text.len(), TOKEN_CHARS, "a parsed token has the documented length");
        assert!(text.starts_with("dpl_"), "a parsed token starts with dpl_");
        assert_eq!(presented.id().as_str(), &text[4..16], "the id is the 12 characters after dpl_");
        let _ = tokens().authenticate(&presented, Timestamp::from_secs(1));
    }
    let _ = parse_authorization(text);
});
