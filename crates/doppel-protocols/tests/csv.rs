//! CSV import: long and wide files, quoting, and the line and column every
//! refusal names.

use doppel_model::{FieldValue, Precision, Provenance, Timestamp, TwinId, Value};
use doppel_protocols::csv::{self, CsvHeader, CsvOptions};

fn options(twin: Option<&str>) -> CsvOptions {
    CsvOptions { twin: twin.map(|t| TwinId::new(t).unwrap()), precision: Precision::S, delimiter: b',' }
}

fn num(v: f64) -> FieldValue {
    FieldValue::Number(Value::new(v).unwrap())
}

#[test]
fn long_files_put_extra_columns_in_provenance() {
    let input = b"time,twin,signal,value,device,source\n\
        2024-03-01T12:00:00Z,alice,heart_rate,62,watch,garmin\n\
        2024-03-01T12:00:00Z,alice,sleep_stage,deep,,\n\
        1709294460,alice,heart_rate,63,watch,garmin\n";
    let batch = csv::parse(input, &options(None)).unwrap();
    assert_eq!(batch.series.len(), 2);
    let hr = &batch.series[0];
    assert_eq!(
        hr.key.provenance,
        Provenance::from_tags([("device", "watch"), ("source", "garmin")]).unwrap()
    );
    assert_eq!(hr.samples.iter().map(|s| s.line).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(hr.samples[1].time, Timestamp::from_secs(1_709_294_460));
    assert_eq!(hr.samples[1].value, num(63.0));
    let stage = &batch.series[1];
    assert!(stage.key.provenance.is_empty());
    assert_eq!(stage.samples[0].value, FieldValue::Text("deep".into()));
}

#[test]
fn wide_files_take_the_twin_from_options_and_skip_empty_cells() {
    let input = b"time,heart_rate,steps\n1709294400,62,\n1709294460,64,12\n";
    let batch = csv::parse(input, &options(Some("alice"))).unwrap();
    assert_eq!(batch.series.len(), 2);
    assert_eq!(batch.series[0].key.signal.as_str(), "heart_rate");
    assert_eq!(batch.series[0].samples.len(), 2);
    assert_eq!(batch.series[1].samples.len(), 1);
    assert_eq!(batch.series[1].samples[0].line, 3);
    assert_eq!(batch.series[1].key.twin.as_str(), "alice");

    let errors = csv::parse(input, &options(None)).unwrap_err();
    assert_eq!(errors.lines(), [1]);
    assert!(errors.errors[0].message.contains("no twin given"), "{errors}");
}

#[test]
fn quoted_cells_span_lines_and_unescape_doubled_quotes() {
    let input = b"time,twin,signal,value,note\n1,a,symptom,\"head\nache\",\"said \"\"ow\"\", twice\"\n2,a,symptom,ok,\n";
    let batch = csv::parse(input, &options(None)).unwrap();
    let first = &batch.series[0];
    assert_eq!(first.samples[0].value, FieldValue::Text("head\nache".into()));
    assert_eq!(first.key.provenance.get("note").as_deref(), Some("said \"ow\", twice"));
    assert_eq!(batch.series[1].samples[0].line, 4);
}

#[test]
fn precision_delimiter_bom_and_crlf_are_honoured() {
    let input = b"\xEF\xBB\xBFtime;heart_rate\r\n1709294400000;62\r\n";
    let opts = CsvOptions { delimiter: b';', precision: Precision::Ms, ..options(Some("a")) };
    let batch = csv::parse(input, &opts).unwrap();
    assert_eq!(batch.series[0].samples[0].time, Timestamp::from_secs(1_709_294_400));
    assert_eq!(batch.series[0].samples[0].value, num(62.0));
}

#[test]
fn bad_rows_name_their_line_and_column() {
    let input = b"time,heart_rate,mood\n\
        1,62,good\n\
        2,NaN,good\n\
        3,inf,\n\
        yesterday,60,\n\
        5,60\n\
        6,1e999,\n\
        ,60,\n\
        8,61,\"fine\"x\n\
        9,62,\"unterminated\n";
    let errors = csv::parse(input, &options(Some("a"))).unwrap_err();
    let shown: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "line 3: column \"heart_rate\": \"NaN\" is not a finite number",
            "line 4: column \"heart_rate\": \"inf\" is not a finite number",
            "line 5: column \"time\": \"yesterday\" is neither RFC 3339 nor an integer (in s)",
            "line 6: expected 3 cells, found 2",
            "line 7: column \"heart_rate\": \"1e999\" is out of range",
            "line 8: column \"time\": empty",
            "line 9: unexpected text after a closing quote",
            "line 10: unterminated quoted cell",
        ]
    );
}

#[test]
fn bad_headers_are_refused_at_line_one() {
    let cases: [(&[u8], &str); 5] = [
        (b"", "header row is required"),
        (b"twin,signal,value\n", "no \"time\" column"),
        (b"time,heart rate\n", "column \"heart rate\": invalid signal name"),
        (b"time,hr,hr\n", "appears twice"),
        (b"time\n", "no signal columns"),
    ];
    for (input, reason) in cases {
        let errors = csv::parse(input, &options(Some("a"))).unwrap_err();
        assert_eq!(errors.lines(), [1]);
        assert!(errors.errors[0].message.contains(reason), "{errors} should say {reason}");
    }
}

#[test]
fn long_rows_with_bad_names_or_tags_name_the_column() {
    let input = b"time,twin,signal,value,device\n1,a/b,hr,1,w\n2,a,1hr,1,w\n3,,hr,1,w\n4,a,hr,1,\x01\n";
    let errors = csv::parse(input, &options(None)).unwrap_err();
    let shown: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
    assert!(shown[0].starts_with("line 2: column \"twin\": invalid twin id"), "{shown:?}");
    assert!(shown[1].starts_with("line 3: column \"signal\": invalid signal name"), "{shown:?}");
    assert!(shown[2].starts_with("line 4: column \"twin\": empty"), "{shown:?}");
    assert!(shown[3].starts_with("line 5: column \"device\": invalid provenance tag"), "{shown:?}");
}

#[test]
fn parsing_in_chunks_gives_the_same_samples_as_parsing_whole() {
    let mut input = String::from("time,twin,signal,value,note\n");
    for i in 0..50 {
        let value = if i % 7 == 0 { "\"multi\nline\"".to_owned() } else { (60 + i).to_string() };
        input.push_str(&format!("{i},t{},heart_rate,{value},x\n", i % 3));
    }
    let opts = options(None);
    let whole = csv::parse(input.as_bytes(), &opts).unwrap();

    let header = CsvHeader::read(input.as_bytes(), &opts).unwrap();
    let mut rest = &input.as_bytes()[header.body_offset..];
    let mut line = header.body_line;
    let mut samples = Vec::new();
    while !rest.is_empty() {
        let (len, lines) = csv::next_chunk(rest, 8, b',', true);
        assert!(len > 0);
        let batch = header.parse_rows(&rest[..len], line).unwrap();
        for series in batch.series {
            for s in series.samples {
                samples.push((series.key.clone(), s));
            }
        }
        rest = &rest[len..];
        line += lines;
    }
    let mut expected: Vec<_> =
        whole.series.iter().flat_map(|s| s.samples.iter().map(|x| (s.key.clone(), x.clone()))).collect();
    expected.sort_by_key(|(_, s)| s.line);
    samples.sort_by_key(|(_, s)| s.line);
    assert_eq!(samples, expected);
}
