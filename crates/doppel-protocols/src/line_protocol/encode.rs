//! Writing points as line protocol, for benchmarks, tests and clients.

use std::fmt::Write as _;

use doppel_model::Point;

/// Appends one point as a line: the signal as measurement, `twin` and the
/// provenance tags sorted by key, the value as the field `value`, and the
/// timestamp in nanoseconds, ending in `\n`. [`super::parse`] with
/// `Precision::Ns` reads it back as the same point.
///
/// Two things line protocol cannot say are not written faithfully: a
/// provenance tag named `twin` (the `twin` tag names the twin, so that tag
/// is left out), and a tag key or value ending in a backslash or holding a
/// backslash right before `,`, `=` or a space (the format has no escape for
/// a literal backslash outside strings).
pub fn encode_point(out: &mut String, point: &Point) {
    escape_into(out, point.signal.as_str(), false);
    let tags = point.provenance.tags();
    let mut twin_written = false;
    for (key, value) in tags.iter().filter(|(key, _)| key != "twin") {
        if !twin_written && key.as_str() > "twin" {
            write_twin(out, point);
            twin_written = true;
        }
        out.push(',');
        escape_into(out, key, true);
        out.push('=');
        escape_into(out, value, true);
    }
    if !twin_written {
        write_twin(out, point);
    }
    out.push_str(" value=");
    write_float(out, point.value.get());
    // Writing to a String cannot fail.
    let _ = writeln!(out, " {}", point.time.as_nanos());
}

/// Encodes many points, one line each.
pub fn encode_points<'a>(points: impl IntoIterator<Item = &'a Point>) -> String {
    let mut out = String::new();
    for point in points {
        encode_point(&mut out, point);
    }
    out
}

fn write_twin(out: &mut String, point: &Point) {
    // Twin ids are URL-unreserved characters only: nothing to escape.
    out.push_str(",twin=");
    out.push_str(point.twin.as_str());
}

/// Escapes `,` and space (and `=` in tags and field keys) with a backslash.
fn escape_into(out: &mut String, text: &str, escape_equals: bool) {
    for c in text.chars() {
        if c == ',' || c == ' ' || (escape_equals && c == '=') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Writes the shortest text that reads back as exactly `value`, in plain
/// notation for everyday magnitudes and exponent notation otherwise (the
/// plain form of 1e300 is 301 digits long).
fn write_float(out: &mut String, value: f64) {
    let magnitude = value.abs();
    let plain = magnitude == 0.0 || (1e-5..1e16).contains(&magnitude);
    // Writing to a String cannot fail.
    let _ = if plain { write!(out, "{value}") } else { write!(out, "{value:e}") };
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::{Provenance, SignalName, Timestamp, TwinId, Value};

    fn point(provenance: Provenance, value: f64) -> Point {
        Point {
            twin: TwinId::new("p0001").unwrap(),
            signal: SignalName::new("heart_rate").unwrap(),
            provenance,
            time: Timestamp::from_nanos(1_700_000_000_000_000_000),
            value: Value::new(value).unwrap(),
        }
    }

    #[test]
    fn writes_tags_sorted_with_twin_in_place() {
        let p = point(Provenance::from_tags([("device", "watch"), ("zone", "a b,c=d")]).unwrap(), 62.0);
        assert_eq!(
            encode_points([&p]),
            "heart_rate,device=watch,twin=p0001,zone=a\\ b\\,c\\=d value=62 1700000000000000000\n"
        );
    }

    #[test]
    fn large_and_tiny_values_use_exponents() {
        let mut out = String::new();
        write_float(&mut out, 1e300);
        out.push(' ');
        write_float(&mut out, -2.5e-9);
        out.push(' ');
        write_float(&mut out, 0.1);
        assert_eq!(out, "1e300 -2.5e-9 0.1");
    }
}
