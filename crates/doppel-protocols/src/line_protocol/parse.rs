//! The line-protocol parser.
//!
//! One pass over the bytes, no per-line allocation on the common path:
//! the series part of a line (measurement and tag set, as raw bytes) is
//! looked up in a small cache that remembers its twin, measurement and
//! provenance; each field key is looked up in that entry's own cache, which
//! gives the series index directly. Only a line with a new series key, or
//! a string value, allocates.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};

use doppel_model::{FieldValue, Precision, Provenance, SeriesKey, SignalName, Timestamp, TwinId, Value};

use crate::number::{parse_float, parse_i64, parse_u64};
use crate::raw::{
    ErrorList, Grouper, LineError, ParseErrors, PrehashedKey, RawBatch, RawSample, line_number,
};

/// Longest string field value accepted, in bytes. Doppel stores text only
/// as category labels (a sleep stage, a symptom); InfluxDB's own
/// recommended limit for strings is 64 KiB, and nothing longer is a label.
pub const MAX_STRING_FIELD_BYTES: usize = 64 * 1024;

/// Field keys remembered per series prefix in a plain list before switching
/// to a hash map; most measurements have one to a dozen fields.
const FIELD_LIST_LEN: usize = 16;

/// Most bytes of an offending token quoted back in an error message.
const SHOWN_TOKEN_BYTES: usize = 64;

/// Earliest and latest timestamp line protocol allows, in nanoseconds: the
/// i64 range less the sentinel values at either end (InfluxDB 2.x reference,
/// "Unix timestamp").
const MIN_TIMESTAMP_NS: i64 = i64::MIN + 2;
const MAX_TIMESTAMP_NS: i64 = i64::MAX - 1;

/// Parses a line-protocol body. `precision` is the unit of the timestamps
/// written in it; lines without a timestamp take `now`.
///
/// # Errors
/// [`ParseErrors`] listing every bad line with its number when any line is
/// bad; nothing of the body is accepted then.
pub fn parse(input: &[u8], precision: Precision, now: Timestamp) -> Result<RawBatch, ParseErrors> {
    let mut parser = Parser {
        input,
        pos: 0,
        line: 1,
        precision,
        now,
        input_is_utf8: std::str::from_utf8(input).is_ok(),
        prefix_hasher: RandomState::new(),
        prefixes: HashMap::default(),
        entries: Vec::new(),
        last_prefix: None,
        grouper: Grouper::default(),
        errors: ErrorList::default(),
        fields: Vec::new(),
        field_slots: HashMap::new(),
    };
    parser.run();
    let Parser { grouper, errors, .. } = parser;
    errors.finish(grouper.finish())
}

/// Why a line was refused, and the byte offset (from the start of the
/// input) the reason points at.
struct Fault {
    message: String,
    at: usize,
}

impl Fault {
    fn new(at: usize, message: impl Into<String>) -> Self {
        Self { message: message.into(), at }
    }
}

/// What a series prefix (measurement and tag set) resolves to.
struct PrefixEntry {
    /// The prefix as written, to tell entries with equal hashes apart.
    raw: Box<[u8]>,
    /// The next entry whose prefix has the same hash, if any.
    next_same_hash: Option<usize>,
    twin: TwinId,
    /// The measurement, which is also the signal of the field `value`.
    measurement: SignalName,
    provenance: Provenance,
    fields: FieldCache,
}

/// Raw field-key bytes to series index, for one prefix.
#[derive(Default)]
struct FieldCache {
    list: Vec<(Box<[u8]>, usize)>,
    map: HashMap<Box<[u8]>, usize>,
}

impl FieldCache {
    fn get(&self, key: &[u8]) -> Option<usize> {
        if self.map.is_empty() {
            self.list.iter().find(|(k, _)| bytes_eq(k, key)).map(|&(_, i)| i)
        } else {
            self.map.get(key).copied()
        }
    }

    fn insert(&mut self, key: &[u8], index: usize) {
        if self.map.is_empty() && self.list.len() < FIELD_LIST_LEN {
            self.list.push((key.into(), index));
        } else {
            self.map.extend(self.list.drain(..));
            self.map.insert(key.into(), index);
        }
    }
}

struct Parser<'a> {
    input: &'a [u8],
    /// Next byte to read.
    pos: usize,
    /// 1-based line number of the byte at `pos`.
    line: usize,
    precision: Precision,
    now: Timestamp,
    /// When the whole body is valid UTF-8 no line needs its own check.
    input_is_utf8: bool,
    /// Keyed hash of the raw prefix bytes (SipHash with a random key, so
    /// input cannot be crafted to collide) to the first entry with that
    /// hash. Hashing once here and comparing bytes inline is markedly faster
    /// than a map keyed by the bytes themselves.
    prefix_hasher: RandomState,
    prefixes: HashMap<u64, usize, BuildHasherDefault<PrehashedKey>>,
    entries: Vec<PrefixEntry>,
    /// The previous line's prefix (byte range and entry), checked before
    /// hashing because writers often send runs of one series.
    last_prefix: Option<(usize, usize, usize)>,
    grouper: Grouper,
    errors: ErrorList,
    /// The current line's (series index, value) pairs, reused across lines.
    fields: Vec<(usize, FieldValue)>,
    /// Where each series sits in `fields`, once a line has more than
    /// [`FIELD_LIST_LEN`] fields: a line of tens of thousands of fields
    /// would otherwise cost a scan of the list per field.
    field_slots: HashMap<usize, usize>,
}

impl Parser<'_> {
    fn run(&mut self) {
        while self.pos < self.input.len() {
            let line = self.line;
            let line_start = self.pos;
            if let Err(fault) = self.line() {
                let column = fault.at.saturating_sub(line_start) + 1;
                let message = format!("{} (column {column})", fault.message);
                if !self.errors.push(LineError::at_line(line_number(line), message)) {
                    return;
                }
                self.skip_past_newline(fault.at);
            }
        }
    }

    /// Moves to the start of the line after the one holding `from`.
    fn skip_past_newline(&mut self, from: usize) {
        let from = from.max(self.pos).min(self.input.len());
        match self.input[from..].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                self.pos = from + offset + 1;
                self.line += 1;
            }
            None => self.pos = self.input.len(),
        }
    }

    /// Parses one line (a point, a comment or a blank line) starting at
    /// `pos`, leaving `pos` at the start of the next.
    fn line(&mut self) -> Result<(), Fault> {
        let input = self.input;
        if !self.input_is_utf8 {
            let end =
                input[self.pos..].iter().position(|&b| b == b'\n').map_or(input.len(), |o| self.pos + o);
            if let Err(e) = std::str::from_utf8(&input[self.pos..end]) {
                return Err(Fault::new(self.pos + e.valid_up_to(), "invalid UTF-8"));
            }
        }
        while self.pos < input.len() && matches!(input[self.pos], b' ' | b'\t') {
            self.pos += 1;
        }
        match input.get(self.pos) {
            None => return Ok(()),
            Some(b'#') => {
                self.skip_past_newline(self.pos);
                return Ok(());
            }
            _ => {}
        }
        if self.at_line_end(self.pos) {
            self.end_line(self.pos);
            return Ok(());
        }
        self.point()
    }

    /// True when `at` is the end of input, a `\n`, or a `\r\n`.
    fn at_line_end(&self, at: usize) -> bool {
        match self.input.get(at) {
            None | Some(b'\n') => true,
            Some(b'\r') => self.input.get(at + 1) == Some(&b'\n'),
            Some(_) => false,
        }
    }

    /// Consumes the line ending at `at` (see [`Self::at_line_end`]).
    fn end_line(&mut self, at: usize) {
        let at = if self.input.get(at) == Some(&b'\r') { at + 1 } else { at };
        if at < self.input.len() {
            self.pos = at + 1;
            self.line += 1;
        } else {
            self.pos = self.input.len();
        }
    }

    fn point(&mut self) -> Result<(), Fault> {
        let line = line_number(self.line);
        let prefix_start = self.pos;
        let prefix_end = scan_name(self.input, prefix_start);
        if self.at_line_end(prefix_end) {
            return Err(Fault::new(prefix_end, "missing field set (expected a space, then key=value)"));
        }
        let entry = self.resolve_prefix(prefix_start, prefix_end)?;
        self.pos = skip_spaces(self.input, prefix_end);
        self.fields.clear();
        if !self.field_slots.is_empty() {
            self.field_slots = HashMap::new();
        }
        self.field_set(entry)?;
        let time = self.timestamp()?;
        if self.errors.is_empty() {
            for (index, value) in self.fields.drain(..) {
                self.grouper.push(index, RawSample { line, time, value });
            }
        }
        Ok(())
    }

    /// The cache entry for the measurement and tag set in `start..end`.
    fn resolve_prefix(&mut self, start: usize, end: usize) -> Result<usize, Fault> {
        let bytes = &self.input[start..end];
        if let Some((last_start, last_end, entry)) = self.last_prefix
            && bytes_eq(&self.input[last_start..last_end], bytes)
        {
            return Ok(entry);
        }
        let hash = self.prefix_hasher.hash_one(bytes);
        let mut candidate = self.prefixes.get(&hash).copied();
        let mut last_in_chain = None;
        while let Some(index) = candidate {
            let Some(entry) = self.entries.get(index) else { break };
            if bytes_eq(&entry.raw, bytes) {
                self.last_prefix = Some((start, end, index));
                return Ok(index);
            }
            last_in_chain = Some(index);
            candidate = entry.next_same_hash;
        }
        let mut parsed = parse_prefix(bytes).map_err(|message| Fault::new(start, message))?;
        parsed.raw = bytes.into();
        let index = self.entries.len();
        self.entries.push(parsed);
        match last_in_chain.and_then(|i| self.entries.get_mut(i)) {
            Some(previous) => previous.next_same_hash = Some(index),
            None => {
                self.prefixes.insert(hash, index);
            }
        }
        self.last_prefix = Some((start, end, index));
        Ok(index)
    }

    /// Parses `key=value[,key=value...]` up to the space before the
    /// timestamp or the end of the line.
    fn field_set(&mut self, entry: usize) -> Result<(), Fault> {
        let input = self.input;
        loop {
            let key_start = self.pos;
            let key_end = scan_field_key(input, key_start);
            if key_end == key_start {
                return Err(Fault::new(key_start, "missing field key"));
            }
            if input.get(key_end) != Some(&b'=') {
                let key = show(&input[key_start..key_end]);
                return Err(Fault::new(key_end, format!("field \"{key}\" has no '=' and value")));
            }
            let key = &input[key_start..key_end];
            let series = self.resolve_field(entry, key).map_err(|m| Fault::new(key_start, m))?;
            let value_start = key_end + 1;
            let (value, value_end) = self.field_value(key, value_start)?;
            self.put_field(series, value);
            match input.get(value_end) {
                Some(b',') => self.pos = value_end + 1,
                Some(b' ') => {
                    self.pos = value_end;
                    return Ok(());
                }
                _ if self.at_line_end(value_end) => {
                    self.pos = value_end;
                    return Ok(());
                }
                Some(_) => {
                    let key = show(key);
                    return Err(Fault::new(value_end, format!("unexpected character after field \"{key}\"")));
                }
                None => return Ok(()),
            }
        }
    }

    /// Records a field of the current line; a repeated field keeps its
    /// last value.
    fn put_field(&mut self, series: usize, value: FieldValue) {
        let slot = if self.fields.len() < FIELD_LIST_LEN {
            self.fields.iter().position(|(index, _)| *index == series)
        } else {
            if self.field_slots.is_empty() {
                self.field_slots
                    .extend(self.fields.iter().enumerate().map(|(slot, (index, _))| (*index, slot)));
            }
            self.field_slots.get(&series).copied()
        };
        match slot.and_then(|slot| self.fields.get_mut(slot)) {
            Some(field) => field.1 = value,
            None => {
                if !self.field_slots.is_empty() {
                    self.field_slots.insert(series, self.fields.len());
                }
                self.fields.push((series, value));
            }
        }
    }

    /// The series index of field `key` under prefix `entry`.
    fn resolve_field(&mut self, entry: usize, key: &[u8]) -> Result<usize, String> {
        let Some(prefix) = self.entries.get(entry) else {
            return Err("internal: unknown series prefix".to_owned());
        };
        if let Some(index) = prefix.fields.get(key) {
            return Ok(index);
        }
        let field = unescape_name(key, b",= ");
        let field = std::str::from_utf8(&field)
            .map_err(|_| format!("field \"{}\": invalid UTF-8 in the key", show(key)))?;
        let signal = if field == "value" {
            prefix.measurement.clone()
        } else {
            SignalName::new(&format!("{}.{field}", prefix.measurement))
                .map_err(|e| format!("field \"{field}\": {e}"))?
        };
        let key_struct =
            SeriesKey { twin: prefix.twin.clone(), signal, provenance: prefix.provenance.clone() };
        let index = self.grouper.series_index(key_struct);
        if let Some(prefix) = self.entries.get_mut(entry) {
            prefix.fields.insert(key, index);
        }
        Ok(index)
    }

    /// Parses the value starting at `start`; returns it and the offset just
    /// past it.
    fn field_value(&mut self, key: &[u8], start: usize) -> Result<(FieldValue, usize), Fault> {
        let input = self.input;
        if input.get(start) == Some(&b'"') {
            return self.string_value(key, start);
        }
        let end = start
            + input[start..]
                .iter()
                .position(|&b| matches!(b, b',' | b' ' | b'\n'))
                .unwrap_or(input.len() - start);
        // A `\r` before the newline is part of the line ending, not the value.
        let token_end = if end > start && input[end - 1] == b'\r' && input.get(end) == Some(&b'\n') {
            end - 1
        } else {
            end
        };
        let token = &input[start..token_end];
        let value = scalar_value(token)
            .map_err(|reason| Fault::new(start, format!("field \"{}\": {reason}", show(key))))?;
        Ok((value, token_end))
    }

    /// A double-quoted string value starting at the quote at `start`.
    fn string_value(&mut self, key: &[u8], start: usize) -> Result<(FieldValue, usize), Fault> {
        let input = self.input;
        let mut i = start + 1;
        let mut newlines = 0;
        let mut escaped = false;
        while i < input.len() {
            match input[i] {
                b'\\' => {
                    escaped = true;
                    if input.get(i + 1) == Some(&b'\n') {
                        newlines += 1;
                    }
                    i += 2;
                    continue;
                }
                b'"' => break,
                b'\n' => newlines += 1,
                _ => {}
            }
            i += 1;
        }
        if i >= input.len() {
            return Err(Fault::new(start, format!("field \"{}\": unterminated string", show(key))));
        }
        let raw = &input[start + 1..i];
        if raw.len() > MAX_STRING_FIELD_BYTES {
            return Err(Fault::new(
                start,
                format!("field \"{}\": string longer than {MAX_STRING_FIELD_BYTES} bytes", show(key)),
            ));
        }
        let bytes = if escaped { unescape_string(raw) } else { raw.to_vec() };
        let text = String::from_utf8(bytes).map_err(|_| {
            Fault::new(start, format!("field \"{}\": invalid UTF-8 in the string", show(key)))
        })?;
        self.line += newlines;
        Ok((FieldValue::Text(text.into_boxed_str()), i + 1))
    }

    /// Parses the optional timestamp at `pos` and the end of the line.
    fn timestamp(&mut self) -> Result<Timestamp, Fault> {
        let input = self.input;
        let start = skip_spaces(input, self.pos);
        if self.at_line_end(start) {
            self.end_line(start);
            return Ok(self.now);
        }
        let end = start
            + input[start..].iter().position(|&b| matches!(b, b' ' | b'\n')).unwrap_or(input.len() - start);
        let token_end = if input[end - 1] == b'\r' && input.get(end) == Some(&b'\n') { end - 1 } else { end };
        let token = &input[start..token_end];
        let Some(value) = parse_i64(token) else {
            return Err(Fault::new(
                start,
                format!("invalid timestamp \"{}\": expected an integer", show(token)),
            ));
        };
        let time = self.precision.to_timestamp(value).map_err(|e| Fault::new(start, e.to_string()))?;
        if !(MIN_TIMESTAMP_NS..=MAX_TIMESTAMP_NS).contains(&time.as_nanos()) {
            return Err(Fault::new(start, format!("timestamp {value} is outside line protocol's range")));
        }
        let after = skip_spaces(input, token_end);
        if !self.at_line_end(after) {
            return Err(Fault::new(after, "unexpected text after the timestamp"));
        }
        self.end_line(after);
        Ok(time)
    }
}

/// Byte equality for the short keys of the caches, eight bytes at a time
/// and inlined: a libc `memcmp` call costs more than these comparisons.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut a_words).zip(&mut b_words) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(y.try_into().unwrap_or_default());
        if x != y {
            return false;
        }
    }
    a_words.remainder().iter().zip(b_words.remainder()).all(|(x, y)| x == y)
}

/// Offset of the first unescaped space at or after `start`, or of the end
/// of the line (`\n`, `\r\n` or end of input) if none comes first. A
/// backslash escapes the byte after it, except a newline.
fn scan_name(input: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < input.len() {
        match input[i] {
            b' ' | b'\n' => return i,
            b'\r' if input.get(i + 1) == Some(&b'\n') => return i,
            b'\\' if input.get(i + 1).is_some_and(|&b| b != b'\n') => i += 2,
            _ => i += 1,
        }
    }
    input.len()
}

/// Offset of the end of a field key: the first unescaped `=`, `,`, space or
/// line end at or after `start`.
fn scan_field_key(input: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < input.len() {
        match input[i] {
            b'=' | b',' | b' ' | b'\n' => return i,
            b'\r' if input.get(i + 1) == Some(&b'\n') => return i,
            b'\\' if input.get(i + 1).is_some_and(|&b| b != b'\n') => i += 2,
            _ => i += 1,
        }
    }
    input.len()
}

fn skip_spaces(input: &[u8], mut at: usize) -> usize {
    while input.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// Splits `bytes` at each unescaped `separator`.
fn split_unescaped(bytes: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'\\' {
                i += 2;
            } else if s[i] == separator {
                rest = Some(&s[i + 1..]);
                return Some(&s[..i]);
            } else {
                i += 1;
            }
        }
        rest = None;
        Some(s)
    })
}

/// Removes the backslash of each `\x` where `x` is in `escapable`; other
/// backslashes are literal. Borrows when there is no backslash at all.
fn unescape_name<'b>(bytes: &'b [u8], escapable: &[u8]) -> Cow<'b, [u8]> {
    if !bytes.contains(&b'\\') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i + 1) {
            Some(next) if bytes[i] == b'\\' && escapable.contains(next) => {
                out.push(*next);
                i += 2;
            }
            Some(next) if bytes[i] == b'\\' => {
                out.extend_from_slice(&[b'\\', *next]);
                i += 2;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Applies string-field escapes: `\"`, `\\`, `\n`, `\r`, `\t`.
fn unescape_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(&next) = bytes.get(i + 1)
        {
            match next {
                b'"' | b'\\' => out.push(next),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                _ => out.extend_from_slice(&[b'\\', next]),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Parses the measurement and tag set of a line into a cache entry.
fn parse_prefix(bytes: &[u8]) -> Result<PrefixEntry, String> {
    let mut parts = split_unescaped(bytes, b',');
    let measurement_raw = parts.next().unwrap_or_default();
    if measurement_raw.is_empty() {
        return Err("missing measurement".to_owned());
    }
    let measurement = unescape_name(measurement_raw, b", ");
    let measurement = std::str::from_utf8(&measurement).map_err(|_| "invalid UTF-8 in the measurement")?;
    let measurement =
        SignalName::new(measurement).map_err(|e| format!("measurement \"{measurement}\": {e}"))?;
    let mut twin = None;
    let mut tags: Vec<(String, String)> = Vec::new();
    for tag in parts {
        let mut kv = split_unescaped(tag, b'=');
        let (Some(key), Some(value), None) = (kv.next(), kv.next(), kv.next()) else {
            return Err(format!("tag \"{}\" is not key=value (escape '=' in it as \\=)", show(tag)));
        };
        let key = String::from_utf8(unescape_name(key, b",= ").into_owned())
            .map_err(|_| "invalid UTF-8 in a tag key")?;
        let value = String::from_utf8(unescape_name(value, b",= ").into_owned())
            .map_err(|_| format!("tag \"{key}\": invalid UTF-8 in the value"))?;
        if key.is_empty() {
            return Err("tag with an empty key".to_owned());
        }
        if value.is_empty() {
            return Err(format!("tag \"{key}\" has an empty value"));
        }
        // Readers disagree on which of two equal keys wins (a proxy may
        // judge a line by the one Doppel ignores), so neither does.
        if (key == "twin" && twin.is_some()) || tags.iter().any(|(seen, _)| *seen == key) {
            return Err(format!("duplicate tag \"{key}\": a tag key may appear once in a line"));
        }
        if key == "twin" {
            twin = Some(value);
        } else {
            tags.push((key, value));
        }
    }
    let Some(twin) = twin else {
        return Err("missing tag 'twin'".to_owned());
    };
    let twin = TwinId::new(&twin).map_err(|e| format!("tag \"twin\": {e}"))?;
    let provenance = Provenance::from_tags(tags.iter().map(|(k, v)| (k, v))).map_err(|e| {
        match tags.iter().find(|(k, v)| Provenance::from_tags([(k, v)]).is_err()) {
            Some((key, _)) => format!("tag \"{key}\": {e}"),
            None => format!("tags: {e}"),
        }
    })?;
    Ok(PrefixEntry {
        raw: Box::default(),
        next_same_hash: None,
        twin,
        measurement,
        provenance,
        fields: FieldCache::default(),
    })
}

/// Parses an unquoted field value: integer (`i`), unsigned (`u`), boolean
/// or float.
fn scalar_value(token: &[u8]) -> Result<FieldValue, String> {
    let number = |value: f64| {
        Value::new(value).map(FieldValue::Number).map_err(|_| format!("{} is out of range", show(token)))
    };
    match token {
        [] => Err("missing value".to_owned()),
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => number(1.0),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => number(0.0),
        [digits @ .., b'i'] => match parse_i64(digits) {
            Some(value) => number(value as f64),
            None => Err(format!("invalid integer \"{}\" (64-bit signed, like -12i)", show(token))),
        },
        [digits @ .., b'u'] => match parse_u64(digits) {
            Some(value) => number(value as f64),
            None => Err(format!("invalid unsigned integer \"{}\" (64-bit, like 12u)", show(token))),
        },
        _ => match parse_float(token, false) {
            Some(value) => number(value),
            None => Err(format!(
                "invalid value \"{}\" (expected a number, 12i, 12u, a boolean or a \"string\")",
                show(token)
            )),
        },
    }
}

/// A token as text for an error message, bounded and lossy for bad UTF-8.
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_TOKEN_BYTES)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if bytes.len() > SHOWN_TOKEN_BYTES {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unescape_only_their_own_escapes() {
        assert_eq!(&*unescape_name(br"a\,b\ c\=d", b", "), br"a,b c\=d");
        assert_eq!(&*unescape_name(br"a\,b\ c\=d", b",= "), b"a,b c=d");
        assert_eq!(&*unescape_name(br"a\\b", b",= "), br"a\\b");
        assert_eq!(&*unescape_name(br"a\", b",= "), br"a\");
    }

    #[test]
    fn strings_unescape_quotes_backslashes_and_controls() {
        assert_eq!(unescape_string(br#"\"x\" \\ \n\t\r \= \"#), b"\"x\" \\ \n\t\r \\= \\".to_vec());
    }

    #[test]
    fn scanning_respects_escapes_and_line_ends() {
        assert_eq!(scan_name(br"a\ b c", 0), 4);
        assert_eq!(scan_name(b"abc\r\nx", 0), 3);
        assert_eq!(scan_name(b"a\\\nb", 0), 2);
        assert_eq!(scan_field_key(br"k\=x=1", 0), 4);
    }

    #[test]
    fn inline_equality_matches_slice_equality() {
        let samples: [&[u8]; 6] =
            [b"", b"a", b"heart_rate,twin=p0001", b"heart_rate,twin=p0002", b"12345678", b"12345679"];
        for a in samples {
            for b in samples {
                assert_eq!(bytes_eq(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn field_cache_switches_to_a_map_past_its_list() {
        let mut cache = FieldCache::default();
        for i in 0..FIELD_LIST_LEN + 3 {
            cache.insert(format!("f{i}").as_bytes(), i);
        }
        for i in 0..FIELD_LIST_LEN + 3 {
            assert_eq!(cache.get(format!("f{i}").as_bytes()), Some(i));
        }
        assert_eq!(cache.get(b"nope"), None);
    }
}
