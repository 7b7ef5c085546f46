//! Strict number scanning shared by the text formats.
//!
//! `str::parse::<f64>` alone is too lenient for wire formats: it takes
//! `inf`, `NaN`, `infinity` and `+1`. These scanners check the grammar first
//! and leave the digit-to-float conversion, which is subtle to get right, to
//! the standard library.

/// Decimal digits that always fit an `f64` exactly and an `i64` without
/// overflow, so short integers skip the general float conversion.
const EXACT_DIGITS: usize = 15;

/// Parses a decimal float: an optional sign (`+` only when `allow_plus`),
/// digits with at most one `.` (at least one digit overall), and an optional
/// exponent `e`/`E`, sign, digits. Returns `None` when the text does not
/// follow that grammar; the result may be infinite when the exponent is
/// out of range, which callers reject by name.
pub(crate) fn parse_float(text: &[u8], allow_plus: bool) -> Option<f64> {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) if allow_plus => (false, rest),
        _ => (false, text),
    };
    if !body.is_empty() && body.len() <= EXACT_DIGITS && body.iter().all(u8::is_ascii_digit) {
        let magnitude = body.iter().fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
        // Exact: fewer than 2^53 by construction.
        let value = magnitude as f64;
        return Some(if negative { -value } else { value });
    }
    if !is_float_grammar(body) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse::<f64>().ok()
}

fn is_float_grammar(body: &[u8]) -> bool {
    let mut i = 0;
    let mut mantissa_digits = 0;
    while i < body.len() && body[i].is_ascii_digit() {
        i += 1;
        mantissa_digits += 1;
    }
    if i < body.len() && body[i] == b'.' {
        i += 1;
        while i < body.len() && body[i].is_ascii_digit() {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < body.len() && matches!(body[i], b'e' | b'E') {
        i += 1;
        if i < body.len() && matches!(body[i], b'+' | b'-') {
            i += 1;
        }
        let start = i;
        while i < body.len() && body[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == body.len()
}

/// Parses `-?[0-9]+` as an `i64`; `None` on bad grammar or overflow.
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so i64::MIN parses without overflow.
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative { Some(value) } else { value.checked_neg() }
}

/// Parses `[0-9]+` as a `u64`; `None` on bad grammar or overflow.
pub(crate) fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &d in text {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(value)
}

/// True for the spellings of NaN and infinity that people and spreadsheets
/// write, so they can be refused as non-finite rather than taken as text.
pub(crate) fn is_non_finite_word(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    ["nan", "inf", "infinity"].iter().any(|word| unsigned.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_follow_the_strict_grammar() {
        let good: [(&str, f64); 10] = [
            ("62", 62.0),
            ("-62", -62.0),
            ("1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("-1.234456e+78", -1.234456e78),
            ("2E-2", 0.02),
            ("0", 0.0),
            ("12345678901234567890", 12_345_678_901_234_567_890.0),
        ];
        for (text, want) in good {
            assert_eq!(parse_float(text.as_bytes(), false), Some(want), "{text}");
        }
        for bad in ["", "-", ".", "e5", "1e", "1e+", "1.2.3", "inf", "NaN", "+1", "1_0", " 1", "0x10", "1,5"]
        {
            assert_eq!(parse_float(bad.as_bytes(), false), None, "{bad:?} must be refused");
        }
        assert_eq!(parse_float(b"+1", true), Some(1.0));
        assert_eq!(parse_float(b"1e999", false), Some(f64::INFINITY));
    }

    #[test]
    fn integers_cover_the_full_range_and_refuse_overflow() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"1.0"), None);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
    }

    #[test]
    fn non_finite_words_are_recognised_in_any_case() {
        for word in ["NaN", "nan", "-inf", "+Infinity", "INF"] {
            assert!(is_non_finite_word(word), "{word}");
        }
        assert!(!is_non_finite_word("info"));
    }
}
