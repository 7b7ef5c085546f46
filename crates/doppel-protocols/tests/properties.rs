//! Property tests: encode → parse round-trips, and no parser panics on any
//! input.

use doppel_model::{Batch, FieldValue, Point, Precision, Provenance, SignalName, Timestamp, TwinId, Value};
use doppel_protocols::csv::CsvOptions;
use doppel_protocols::{csv, json_points, line_protocol};
use proptest::prelude::*;

/// Tag text line protocol can carry: anything but control characters, with
/// a backslash only before a character it does not escape (the format has
/// no way to write `\` before `,`, `=`, space, or at the end).
const TAG_TEXT: &str = r#"([a-zA-Z0-9 ,="'#é🍭_.-]|\\[a-z]){1,8}"#;

fn point_strategy() -> impl Strategy<Value = Point> {
    let twin = "[a-zA-Z0-9_~-][a-zA-Z0-9._~-]{0,15}";
    let signal = "[a-zA-Z_][a-zA-Z0-9_.:-]{0,20}";
    let tags = proptest::collection::vec((TAG_TEXT, TAG_TEXT), 0..4);
    let value = any::<f64>().prop_filter("finite", |v| v.is_finite());
    let time = (i64::MIN + 2)..i64::MAX;
    (twin, signal, tags, value, time).prop_map(|(twin, signal, tags, value, time)| Point {
        twin: TwinId::new(&twin).unwrap(),
        signal: SignalName::new(&signal).unwrap(),
        provenance: Provenance::from_tags(tags.into_iter().filter(|(k, _)| k != "twin")).unwrap(),
        time: Timestamp::from_nanos(time),
        value: Value::new(value).unwrap(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_points_parse_back_to_the_same_batch(points in proptest::collection::vec(point_strategy(), 0..20)) {
        let body = line_protocol::encode_points(&points);
        let parsed = line_protocol::parse(body.as_bytes(), Precision::Ns, Timestamp::from_nanos(0));
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{body}"))),
        };
        let expected = Batch::from_points(points);
        prop_assert_eq!(parsed.series.len(), expected.series.len());
        for (got, want) in parsed.series.iter().zip(&expected.series) {
            prop_assert_eq!(&got.key, &want.key);
            let got: Vec<(Timestamp, FieldValue)> = got.samples.iter().map(|s| (s.time, s.value.clone())).collect();
            let want: Vec<(Timestamp, FieldValue)> =
                want.samples.iter().map(|s| (s.time, FieldValue::Number(s.value))).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn line_protocol_never_panics_on_arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = line_protocol::parse(&input, Precision::S, Timestamp::from_nanos(0));
    }

    #[test]
    fn line_protocol_never_panics_on_near_miss_text(input in r#"([a-z]{1,3}|twin=a|[ ,="\\#\n\r]|[0-9.e+-]{1,4}|[iut]){0,40}"#) {
        let _ = line_protocol::parse(input.as_bytes(), Precision::Ns, Timestamp::from_nanos(0));
    }

    #[test]
    fn json_points_never_panics_on_arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let twin = TwinId::new("a").unwrap();
        let _ = json_points::parse(&input, None);
        let _ = json_points::parse(&input, Some(&twin));
    }

    #[test]
    fn json_points_never_panics_on_near_miss_json(
        input in r#"\[?(\{|\}|"twin"|"signal"|"time"|"value"|"source"|"points"|:|,|"[a-z]{0,3}"|-?[0-9]{1,20}(\.[0-9])?|true|null|\[|\]){0,30}"#
    ) {
        let _ = json_points::parse(input.as_bytes(), None);
    }

    #[test]
    fn csv_never_panics_on_arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let options = CsvOptions { twin: TwinId::new("a").ok(), ..CsvOptions::default() };
        let _ = csv::parse(&input, &options);
        let _ = csv::parse(&input, &CsvOptions::default());
        let _ = csv::next_chunk(&input, 3, b',', false);
    }

    #[test]
    fn csv_never_panics_on_near_miss_text(input in r#"(time|twin|signal|value|[a-z]{1,3}|[0-9]{1,12}|,|"|\n|\r|NaN|-){0,40}"#) {
        let options = CsvOptions { twin: TwinId::new("a").ok(), ..CsvOptions::default() };
        let _ = csv::parse(input.as_bytes(), &options);
    }
}
