//! Line-protocol conformance: a table of accepted inputs with the samples
//! they must produce, and a table of refused inputs with the line number and
//! reason each must report.

use doppel_model::{FieldValue, Precision, Provenance, Timestamp, Value};
use doppel_protocols::{RawBatch, line_protocol};

const NOW_NS: i64 = 1_000;

/// (twin, signal, provenance text, line, time ns, value) for every sample,
/// series by series in first-seen order.
type Flat = Vec<(String, String, String, u32, i64, FieldValue)>;

fn flatten(batch: &RawBatch) -> Flat {
    let mut out = Vec::new();
    for series in &batch.series {
        for s in &series.samples {
            out.push((
                series.key.twin.to_string(),
                series.key.signal.to_string(),
                series.key.provenance.as_str().to_owned(),
                s.line,
                s.time.as_nanos(),
                s.value.clone(),
            ));
        }
    }
    out
}

fn num(v: f64) -> FieldValue {
    FieldValue::Number(Value::new(v).unwrap())
}

fn text(t: &str) -> FieldValue {
    FieldValue::Text(t.into())
}

fn prov(tags: &[(&str, &str)]) -> String {
    Provenance::from_tags(tags.iter().copied()).unwrap().as_str().to_owned()
}

fn sample(twin: &str, signal: &str, provenance: &str, line: u32, time: i64, value: FieldValue) -> Flat {
    vec![(twin.to_owned(), signal.to_owned(), provenance.to_owned(), line, time, value)]
}

fn parse_ok(input: &[u8], precision: Precision) -> Flat {
    match line_protocol::parse(input, precision, Timestamp::from_nanos(NOW_NS)) {
        Ok(batch) => flatten(&batch),
        Err(e) => panic!("{:?} must parse, got {e}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn accepted_inputs_produce_their_samples() {
    let ns = Precision::Ns;
    let cases: Vec<(&[u8], Precision, Flat)> = vec![
        // The basic shape, and the timestamp default.
        (b"m,twin=a value=1 5", ns, sample("a", "m", "", 1, 5, num(1.0))),
        (b"m,twin=a value=1", ns, sample("a", "m", "", 1, NOW_NS, num(1.0))),
        (b"m,twin=a value=1 ", ns, sample("a", "m", "", 1, NOW_NS, num(1.0))),
        (b"m,twin=a value=1 5  ", ns, sample("a", "m", "", 1, 5, num(1.0))),
        (b"  m,twin=a  value=1  5", ns, sample("a", "m", "", 1, 5, num(1.0))),
        // Other tags are provenance; escapes in tag keys and values.
        (
            b"m,twin=a,device=watch value=1 5",
            ns,
            sample("a", "m", &prov(&[("device", "watch")]), 1, 5, num(1.0)),
        ),
        (
            br"m,twin=a,de\ v\,i\=ce=wat\ ch\,x\=y value=1 5",
            ns,
            sample("a", "m", &prov(&[("de v,i=ce", "wat ch,x=y")]), 1, 5, num(1.0)),
        ),
        // Backslashes before other characters, and quotes, are literal in tags.
        (br"m,twin=a,k=a\b value=1 5", ns, sample("a", "m", &prov(&[("k", r"a\b")]), 1, 5, num(1.0))),
        (br#"m,twin=a,k="x" value=1 5"#, ns, sample("a", "m", &prov(&[("k", "\"x\"")]), 1, 5, num(1.0))),
        // Emoji in tags.
        ("m,twin=a,k=🍭 value=1 5".as_bytes(), ns, sample("a", "m", &prov(&[("k", "🍭")]), 1, 5, num(1.0))),
        // Field keys other than `value` name sub-signals.
        (
            b"bp,twin=a systolic=120,diastolic=80 5",
            ns,
            [
                sample("a", "bp.systolic", "", 1, 5, num(120.0)),
                sample("a", "bp.diastolic", "", 1, 5, num(80.0)),
            ]
            .concat(),
        ),
        // Numbers.
        (b"m,twin=a value=-12i 5", ns, sample("a", "m", "", 1, 5, num(-12.0))),
        (b"m,twin=a value=12u 5", ns, sample("a", "m", "", 1, 5, num(12.0))),
        (
            b"m,twin=a value=18446744073709551615u 5",
            ns,
            sample("a", "m", "", 1, 5, num(18_446_744_073_709_551_615.0)),
        ),
        (b"m,twin=a value=9007199254740993i 5", ns, sample("a", "m", "", 1, 5, num(9_007_199_254_740_992.0))),
        (b"m,twin=a value=-1.5 5", ns, sample("a", "m", "", 1, 5, num(-1.5))),
        (b"m,twin=a value=-1.234456e+78 5", ns, sample("a", "m", "", 1, 5, num(-1.234_456e78))),
        (b"m,twin=a value=1E3 5", ns, sample("a", "m", "", 1, 5, num(1000.0))),
        (b"m,twin=a value=.5 5", ns, sample("a", "m", "", 1, 5, num(0.5))),
        // Strings: spaces, commas and equals inside quotes; escapes.
        (b"m,twin=a value=\"deep sleep, ok=1\" 5", ns, sample("a", "m", "", 1, 5, text("deep sleep, ok=1"))),
        (
            br#"m,twin=a value="say \"hi\" \\ \n\t" 5"#,
            ns,
            sample("a", "m", "", 1, 5, text("say \"hi\" \\ \n\t")),
        ),
        (b"m,twin=a value=\"\" 5", ns, sample("a", "m", "", 1, 5, text(""))),
        // The reference's own example: `\=` is literal in strings.
        (
            br#"air,twin=a,sensor_id=TLM\=0201 desc="\=My data==\\""#,
            ns,
            sample("a", "air.desc", &prov(&[("sensor_id", "TLM=0201")]), 1, NOW_NS, text(r"\=My data==\")),
        ),
        (
            br#"air,twin=a desc="\\\"==My data\==\\""#,
            ns,
            sample("a", "air.desc", "", 1, NOW_NS, text(r#"\"==My data\==\"#)),
        ),
        // Timestamp precisions.
        (b"m,twin=a value=1 5", Precision::Us, sample("a", "m", "", 1, 5_000, num(1.0))),
        (b"m,twin=a value=1 5", Precision::Ms, sample("a", "m", "", 1, 5_000_000, num(1.0))),
        (b"m,twin=a value=1 5", Precision::S, sample("a", "m", "", 1, 5_000_000_000, num(1.0))),
        (b"m,twin=a value=1 -5", ns, sample("a", "m", "", 1, -5, num(1.0))),
        // A field repeated within a line keeps its last value.
        (b"m,twin=a value=1,value=2 5", ns, sample("a", "m", "", 1, 5, num(2.0))),
    ];
    for (input, precision, want) in cases {
        assert_eq!(parse_ok(input, precision), want, "input {:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn every_boolean_spelling_is_accepted() {
    for (spelling, want) in [
        ("t", 1.0),
        ("T", 1.0),
        ("true", 1.0),
        ("True", 1.0),
        ("TRUE", 1.0),
        ("f", 0.0),
        ("F", 0.0),
        ("false", 0.0),
        ("False", 0.0),
        ("FALSE", 0.0),
    ] {
        let input = format!("m,twin=a value={spelling} 5");
        assert_eq!(
            parse_ok(input.as_bytes(), Precision::Ns),
            sample("a", "m", "", 1, 5, num(want)),
            "{spelling}"
        );
    }
}

#[test]
fn comments_blank_lines_and_crlf_are_skipped_and_counted() {
    let input = b"# a comment\n\n   \r\nm,twin=a value=1 5\r\n  # indented comment\nm,twin=a value=2 6\r\n\n";
    assert_eq!(
        parse_ok(input, Precision::Ns),
        [sample("a", "m", "", 4, 5, num(1.0)), sample("a", "m", "", 6, 6, num(2.0))].concat()
    );
}

#[test]
fn a_newline_inside_a_string_belongs_to_it_and_advances_line_numbers() {
    let input = b"m,twin=a value=\"line one\nline two\" 5\nm,twin=a value=2 6\n";
    assert_eq!(
        parse_ok(input, Precision::Ns),
        [sample("a", "m", "", 1, 5, text("line one\nline two")), sample("a", "m", "", 3, 6, num(2.0))]
            .concat()
    );
}

#[test]
fn tag_order_and_escaping_do_not_split_a_series() {
    let input = b"m,twin=a,d=w,s=x value=1 1\nm,s=x,d=w,twin=a value=2 2\nm,d=w,twin=a,s=x value=3 3";
    let batch = line_protocol::parse(input, Precision::Ns, Timestamp::from_nanos(0)).unwrap();
    assert_eq!(batch.series.len(), 1);
    assert_eq!(batch.point_count(), 3);
    let lines: Vec<u32> = batch.series[0].samples.iter().map(|s| s.line).collect();
    assert_eq!(lines, [1, 2, 3]);
}

#[test]
fn empty_input_and_comment_only_input_are_empty_batches() {
    for input in [&b""[..], b"\n\n", b"# nothing\n", b"\r\n"] {
        let batch = line_protocol::parse(input, Precision::Ns, Timestamp::from_nanos(0)).unwrap();
        assert!(batch.is_empty());
    }
}

#[test]
fn refused_lines_name_their_line_and_reason() {
    let cases: Vec<(&[u8], Precision, &str)> = vec![
        (b"m,device=w value=1", Precision::Ns, "missing tag 'twin'"),
        (b"m value=1", Precision::Ns, "missing tag 'twin'"),
        (b"m,twin=a,twin=b value=1", Precision::Ns, "duplicate tag \"twin\""),
        (b"m,device=w,twin=a,device=x value=1", Precision::Ns, "duplicate tag \"device\""),
        (b"m,twin=a", Precision::Ns, "missing field set"),
        (b"m,twin=a\r\n", Precision::Ns, "missing field set"),
        (b"m,twin=a ", Precision::Ns, "missing field key"),
        (b"m,twin=a value", Precision::Ns, "has no '='"),
        (b"m,twin=a value=", Precision::Ns, "missing value"),
        (b"m,twin=a value=1,", Precision::Ns, "missing field key"),
        (b"m,twin=a value=1,,x=2", Precision::Ns, "missing field key"),
        (b"m,twin=a =1", Precision::Ns, "missing field key"),
        (b"m,twin=a value=abc", Precision::Ns, "invalid value \"abc\""),
        (b"m,twin=a value=NaN", Precision::Ns, "invalid value"),
        (b"m,twin=a value=inf", Precision::Ns, "invalid value"),
        (b"m,twin=a value=-Inf", Precision::Ns, "invalid value"),
        (b"m,twin=a value=+1", Precision::Ns, "invalid value"),
        (b"m,twin=a value=1e999", Precision::Ns, "out of range"),
        (b"m,twin=a value=1.5i", Precision::Ns, "invalid integer"),
        (b"m,twin=a value=9223372036854775808i", Precision::Ns, "invalid integer"),
        (b"m,twin=a value=-1u", Precision::Ns, "invalid unsigned integer"),
        (b"m,twin=a value=1\rx", Precision::Ns, "invalid value"),
        (b"m,twin=a value=\"abc", Precision::Ns, "unterminated string"),
        (b"m,twin=a value=\"abc\"x", Precision::Ns, "unexpected character after field \"value\""),
        (b"m,twin=a value=1 abc", Precision::Ns, "invalid timestamp \"abc\""),
        (b"m,twin=a value=1 1.5", Precision::Ns, "invalid timestamp"),
        (b"m,twin=a value=1 5 extra", Precision::Ns, "unexpected text after the timestamp"),
        (b"m,twin=a value=1 9223372036854775807", Precision::S, "out of range"),
        (b"m,twin=a value=1 -9223372036854775808", Precision::Ns, "outside line protocol's range"),
        (b"m,twin=a/b value=1", Precision::Ns, "tag \"twin\": invalid twin id"),
        (b"m,twin= value=1", Precision::Ns, "tag \"twin\" has an empty value"),
        (b"m,twin=a,k= value=1", Precision::Ns, "tag \"k\" has an empty value"),
        (b"m,twin=a,=v value=1", Precision::Ns, "empty key"),
        (b"m,twin value=1", Precision::Ns, "is not key=value"),
        (b"m,twin=a=b value=1", Precision::Ns, "is not key=value"),
        (b"m,twin=a, value=1", Precision::Ns, "is not key=value"),
        (b",twin=a value=1", Precision::Ns, "missing measurement"),
        (b"1m,twin=a value=1", Precision::Ns, "measurement \"1m\": invalid signal name"),
        // Escapes are undone before names are checked: the message shows them undone.
        (br"my\ m\,x,twin=a value=1", Precision::Ns, "measurement \"my m,x\""),
        (br"m\=x,twin=a value=1", Precision::Ns, r#"measurement "m\=x""#),
        (br"m,twin=a bad\ k\,e\=y=1", Precision::Ns, "field \"bad k,e=y\": invalid signal name"),
        (b"m,twin=a,k=a\x01b value=1", Precision::Ns, "tag \"k\": invalid provenance tag"),
        (b"m,twin=a value=\"\xff\"", Precision::Ns, "invalid UTF-8"),
        (b"m,twin=a,k=\xff value=1", Precision::Ns, "invalid UTF-8"),
        (b"# comment \xfe\n", Precision::Ns, "invalid UTF-8"),
    ];
    for (input, precision, reason) in cases {
        let shown = String::from_utf8_lossy(input);
        let Err(errors) = line_protocol::parse(input, precision, Timestamp::from_nanos(0)) else {
            panic!("{shown:?} must be refused");
        };
        assert_eq!(errors.lines(), [1], "{shown:?}: {errors}");
        let message = &errors.errors[0].message;
        assert!(message.contains(reason), "{shown:?}: {message:?} does not say {reason:?}");
        assert!(message.contains("(column "), "{shown:?}: {message:?} has no column");
    }
}

#[test]
fn string_fields_longer_than_the_limit_are_refused() {
    let long = "x".repeat(line_protocol::MAX_STRING_FIELD_BYTES + 1);
    let input = format!("m,twin=a value=\"{long}\" 5");
    let errors = line_protocol::parse(input.as_bytes(), Precision::Ns, Timestamp::from_nanos(0)).unwrap_err();
    assert!(errors.errors[0].message.contains("longer than"), "{errors}");
}

#[test]
fn one_bad_line_among_good_ones_refuses_the_batch_naming_exactly_the_bad_lines() {
    let input = b"m,twin=a value=1 1\n\
        m,twin=a value=oops 2\n\
        m,twin=a value=\"multi\nline\" 3\n\
        # comment\n\
        m,device=x value=1 4\n\
        m,twin=a value=2 5\n\
        m,twin=a value=\"unterminated 6\n\
        m,twin=a value=3 7\n\
        m,twin=a value=4 8 trailing\n";
    let errors = line_protocol::parse(input, Precision::Ns, Timestamp::from_nanos(0)).unwrap_err();
    assert_eq!(errors.lines(), [2, 6, 8, 10], "{errors:?}");
    assert!(!errors.truncated);
    assert_eq!(errors.errors[1].to_string(), "line 6: missing tag 'twin' (column 1)");
}

#[test]
fn error_lists_are_capped() {
    let input = "bad\n".repeat(doppel_protocols::MAX_REPORTED_ERRORS + 10);
    let errors = line_protocol::parse(input.as_bytes(), Precision::Ns, Timestamp::from_nanos(0)).unwrap_err();
    assert_eq!(errors.errors.len(), doppel_protocols::MAX_REPORTED_ERRORS);
    assert!(errors.truncated);
}

#[test]
fn many_fields_per_measurement_keep_distinct_series() {
    let fields: Vec<String> = (0..40).map(|i| format!("f{i}={i}")).collect();
    let line = format!("m,twin=a {} 5\n", fields.join(","));
    let batch =
        line_protocol::parse(line.repeat(3).as_bytes(), Precision::Ns, Timestamp::from_nanos(0)).unwrap();
    assert_eq!(batch.series.len(), 40);
    assert!(batch.series.iter().all(|s| s.samples.len() == 3));
    assert_eq!(batch.series[39].key.signal.as_str(), "m.f39");
}

#[test]
fn a_wide_line_keeps_the_last_of_a_repeated_field() {
    let fields: Vec<String> = (0..40).map(|i| format!("f{i}={i}")).chain(["f3=99".to_owned()]).collect();
    let text = format!("m,twin=a {} 5\nm,twin=a f3=7,f3=8 6", fields.join(","));
    let batch = line_protocol::parse(text.as_bytes(), Precision::Ns, Timestamp::from_nanos(NOW_NS)).unwrap();
    let flat = flatten(&batch);
    assert_eq!(flat.len(), 41, "forty fields on line 1, one on line 2");
    let f3: Vec<(u32, FieldValue)> =
        flat.iter().filter(|p| p.1 == "m.f3").map(|p| (p.3, p.5.clone())).collect();
    let number = |v: f64| FieldValue::Number(Value::new(v).unwrap());
    assert_eq!(f3, vec![(1, number(99.0)), (2, number(8.0))]);
}
