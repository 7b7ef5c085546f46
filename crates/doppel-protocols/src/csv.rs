//! CSV for `doppel import`, in two shapes told apart by the header row.
//!
//! Long, one sample per row; other columns become provenance tags (an empty
//! cell leaves the tag out):
//!
//! ```text
//! time,twin,signal,value,device
//! 2024-03-01T12:00:00Z,alice,heart_rate,62,watch
//! 2024-03-01T12:00:00Z,alice,sleep_stage,deep,
//! ```
//!
//! Wide, one column per signal; empty cells are skipped, and the twin comes
//! from [`CsvOptions::twin`] (or a `twin` column, when present):
//!
//! ```text
//! time,heart_rate,steps
//! 1709294400,62,
//! 1709294460,64,12
//! ```
//!
//! A header with `signal` and `value` columns is long, any other header is
//! wide; both need `time`. Times are RFC 3339 or integers in
//! [`CsvOptions::precision`]. Cells may be quoted (`"a,b"`, with `""` for a
//! quote inside); quoted cells may span lines. Cells that read as numbers
//! become numbers, anything else is text (a category label), except NaN and
//! infinities, which are refused. Cells are trimmed of surrounding spaces;
//! a UTF-8 byte-order mark before the header is ignored.
//!
//! For large files, [`CsvHeader::read`] reads the header once, [`next_chunk`]
//! cuts the rest at record boundaries, and [`CsvHeader::parse_rows`] parses
//! each chunk into its own batch; [`parse`] does all three on a whole input.

use std::borrow::Cow;
use std::collections::HashMap;

use doppel_model::{FieldValue, Precision, Provenance, SeriesKey, SignalName, Timestamp, TwinId, Value};

use crate::number::{is_non_finite_word, parse_float, parse_i64};
use crate::raw::{ErrorList, Grouper, LineError, ParseErrors, RawBatch, RawSample, line_number};

/// Bytes of the UTF-8 byte-order mark some spreadsheet programs put first.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How to read a CSV file.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// The twin of every row without a `twin` cell; required for wide files
    /// without a `twin` column.
    pub twin: Option<TwinId>,
    /// The unit of integer times (RFC 3339 times carry their own).
    pub precision: Precision,
    /// The cell separator, `b','` by default (`b';'` and `b'\t'` are common).
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { twin: None, precision: Precision::default(), delimiter: b',' }
    }
}

/// Parses a whole CSV input, header row first.
///
/// # Errors
/// [`ParseErrors`] naming every bad row by line and column, or the header's
/// problems at its line.
pub fn parse(input: &[u8], options: &CsvOptions) -> Result<RawBatch, ParseErrors> {
    let header = CsvHeader::read(input, options)?;
    header.parse_rows(&input[header.body_offset..], header.body_line)
}

/// Where each column's meaning lies, decided once from the header.
#[derive(Clone, Debug)]
enum Shape {
    Long { signal: usize, value: usize, tags: Vec<usize> },
    Wide { signals: Vec<(usize, SignalName)> },
}

/// A parsed header row: the file's shape, and where its rows begin.
#[derive(Clone, Debug)]
pub struct CsvHeader {
    options: CsvOptions,
    columns: Vec<String>,
    time: usize,
    twin: Option<usize>,
    shape: Shape,
    /// Byte offset of the first row after the header.
    pub body_offset: usize,
    /// 1-based line number of the byte at `body_offset`.
    pub body_line: u32,
}

impl CsvHeader {
    /// Reads the first non-blank record of `input` as the header.
    ///
    /// # Errors
    /// A missing header, a missing `time` column, duplicate or empty column
    /// names, invalid signal names in a wide header, or no twin for rows.
    pub fn read(input: &[u8], options: &CsvOptions) -> Result<Self, ParseErrors> {
        let start = if input.starts_with(UTF8_BOM) { UTF8_BOM.len() } else { 0 };
        let mut reader = RecordReader::new(input, start, 1, options.delimiter);
        let mut cells = Vec::new();
        let line = match reader.next(&mut cells) {
            None => {
                return Err(ParseErrors::single(LineError::at_line(
                    1,
                    "empty input: a header row is required",
                )));
            }
            Some(Err(error)) => return Err(ParseErrors::single(error)),
            Some(Ok(line)) => line_number(line),
        };
        let mut errors = ErrorList::default();
        let mut columns: Vec<String> = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            let name = match std::str::from_utf8(cell) {
                Ok(name) => name.trim().to_owned(),
                Err(_) => {
                    errors.push(LineError::at_line(
                        line,
                        format!("column {}: invalid UTF-8 in the name", i + 1),
                    ));
                    continue;
                }
            };
            if name.is_empty() {
                errors.push(LineError::at_line(line, format!("column {}: empty name", i + 1)));
            } else if columns.contains(&name) {
                errors.push(LineError::at_line(line, format!("column \"{name}\": appears twice")));
            }
            columns.push(name);
        }
        let find = |name: &str| columns.iter().position(|c| c == name);
        let (time, twin) = (find("time"), find("twin"));
        let Some(time) = time else {
            errors.push(LineError::at_line(line, "no \"time\" column"));
            return Err(errors.finish(RawBatch::default()).unwrap_err());
        };
        if twin.is_none() && options.twin.is_none() {
            errors.push(LineError::at_line(line, "no \"twin\" column and no twin given (pass --twin)"));
        }
        let shape = match (find("signal"), find("value")) {
            (Some(signal), Some(value)) => {
                let tags =
                    (0..columns.len()).filter(|&i| ![time, signal, value].contains(&i) && Some(i) != twin);
                Shape::Long { signal, value, tags: tags.collect() }
            }
            _ => {
                let mut signals = Vec::new();
                for (i, name) in columns.iter().enumerate() {
                    if i == time || Some(i) == twin {
                        continue;
                    }
                    match SignalName::new(name) {
                        Ok(signal) => signals.push((i, signal)),
                        Err(e) => {
                            errors.push(LineError::at_line(line, format!("column \"{name}\": {e}")));
                        }
                    }
                }
                if signals.is_empty() && errors.is_empty() {
                    errors.push(LineError::at_line(
                        line,
                        "no signal columns (a long file needs \"signal\" and \"value\" columns)",
                    ));
                }
                Shape::Wide { signals }
            }
        };
        if !errors.is_empty() {
            return Err(errors.finish(RawBatch::default()).unwrap_err());
        }
        Ok(Self {
            options: options.clone(),
            columns,
            time,
            twin,
            shape,
            body_offset: reader.pos,
            body_line: line_number(reader.line),
        })
    }

    /// Parses rows (no header) that start on line `first_line` of the file.
    ///
    /// # Errors
    /// [`ParseErrors`] listing every bad row, each naming its line and the
    /// column at fault.
    pub fn parse_rows(&self, rows: &[u8], first_line: u32) -> Result<RawBatch, ParseErrors> {
        let mut state = RowState::default();
        let mut reader = RecordReader::new(rows, 0, first_line as usize, self.options.delimiter);
        let mut cells = Vec::with_capacity(self.columns.len());
        let mut errors = ErrorList::default();
        while let Some(record) = reader.next(&mut cells) {
            let outcome = record.and_then(|line| {
                self.row(&cells, &mut state)
                    .map(|()| line)
                    .map_err(|message| LineError::at_line(line_number(line), message))
            });
            match outcome {
                Ok(line) if errors.is_empty() => {
                    for (index, time, value) in state.samples.drain(..) {
                        state.grouper.push(index, RawSample { line: line_number(line), time, value });
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    if !errors.push(error) {
                        break;
                    }
                }
            }
        }
        errors.finish(state.grouper.finish())
    }

    /// Checks one row, leaving its samples in `state.samples`.
    fn row(&self, cells: &[Cow<'_, [u8]>], state: &mut RowState) -> Result<(), String> {
        state.samples.clear();
        if cells.len() != self.columns.len() {
            return Err(format!("expected {} cells, found {}", self.columns.len(), cells.len()));
        }
        let text = |i: usize| -> Result<&str, String> {
            std::str::from_utf8(&cells[i])
                .map(str::trim)
                .map_err(|_| format!("column \"{}\": invalid UTF-8", self.columns[i]))
        };
        let time = self.time(text(self.time)?)?;
        let twin_text = match self.twin.map(text).transpose()? {
            Some(id) if !id.is_empty() => id,
            _ => match &self.options.twin {
                Some(twin) => twin.as_str(),
                None => return Err("column \"twin\": empty, and no twin given (pass --twin)".to_owned()),
            },
        };
        match &self.shape {
            Shape::Long { signal, value, tags } => {
                let value = cell_value(text(*value)?).map_err(|e| format!("column \"value\": {e}"))?;
                let signal_text = text(*signal)?;
                state.key.clear();
                state.key.extend_from_slice(twin_text.as_bytes());
                state.key.push(0);
                state.key.extend_from_slice(signal_text.as_bytes());
                for &tag in tags {
                    state.key.push(0);
                    state.key.extend_from_slice(text(tag)?.as_bytes());
                }
                let index = match state.series.get(state.key.as_slice()) {
                    Some(&index) => index,
                    None => {
                        let key = self.long_key(twin_text, signal_text, tags, &text)?;
                        let index = state.grouper.series_index(key);
                        state.series.insert(state.key.as_slice().into(), index);
                        index
                    }
                };
                state.samples.push((index, time, value));
            }
            Shape::Wide { signals } => {
                for (column, signal) in signals {
                    let cell = text(*column)?;
                    if cell.is_empty() {
                        continue;
                    }
                    let value = cell_value(cell).map_err(|e| format!("column \"{signal}\": {e}"))?;
                    state.key.clear();
                    state.key.extend_from_slice(twin_text.as_bytes());
                    state.key.push(0);
                    state.key.extend_from_slice(&column.to_le_bytes());
                    let index = match state.series.get(state.key.as_slice()) {
                        Some(&index) => index,
                        None => {
                            let twin = TwinId::new(twin_text).map_err(|e| format!("column \"twin\": {e}"))?;
                            let key =
                                SeriesKey { twin, signal: signal.clone(), provenance: Provenance::none() };
                            let index = state.grouper.series_index(key);
                            state.series.insert(state.key.as_slice().into(), index);
                            index
                        }
                    };
                    state.samples.push((index, time, value));
                }
            }
        }
        Ok(())
    }

    /// Builds and checks the series key of a long row.
    fn long_key<'c>(
        &self,
        twin: &str,
        signal: &str,
        tags: &[usize],
        text: &impl Fn(usize) -> Result<&'c str, String>,
    ) -> Result<SeriesKey, String> {
        let twin = TwinId::new(twin).map_err(|e| format!("column \"twin\": {e}"))?;
        let signal = SignalName::new(signal).map_err(|e| format!("column \"signal\": {e}"))?;
        let mut pairs = Vec::with_capacity(tags.len());
        for &tag in tags {
            let value = text(tag)?;
            if value.is_empty() {
                continue;
            }
            let name = self.columns[tag].as_str();
            Provenance::from_tags([(name, value)]).map_err(|e| format!("column \"{name}\": {e}"))?;
            pairs.push((name, value));
        }
        let provenance = Provenance::from_tags(pairs).map_err(|e| format!("tag columns: {e}"))?;
        Ok(SeriesKey { twin, signal, provenance })
    }

    fn time(&self, cell: &str) -> Result<Timestamp, String> {
        if cell.is_empty() {
            return Err("column \"time\": empty".to_owned());
        }
        if let Some(value) = parse_i64(cell.as_bytes()) {
            return self.options.precision.to_timestamp(value).map_err(|e| format!("column \"time\": {e}"));
        }
        Timestamp::parse(cell).ok_or_else(|| {
            let unit = self.options.precision.name();
            format!("column \"time\": {cell:?} is neither RFC 3339 nor an integer (in {unit})")
        })
    }
}

/// Per-parse scratch state: the series cache and the current row's samples.
#[derive(Default)]
struct RowState {
    grouper: Grouper,
    /// Raw key text (twin, signal and tag cells, NUL-separated) to series.
    series: HashMap<Box<[u8]>, usize>,
    /// Reused buffer for building the raw key of a row.
    key: Vec<u8>,
    samples: Vec<(usize, Timestamp, FieldValue)>,
}

/// A number when the cell reads as one, text otherwise; NaN and infinities
/// are refused rather than kept as labels.
fn cell_value(cell: &str) -> Result<FieldValue, String> {
    if cell.is_empty() {
        return Err("empty".to_owned());
    }
    match parse_float(cell.as_bytes(), true) {
        Some(number) => {
            Value::new(number).map(FieldValue::Number).map_err(|_| format!("{cell:?} is out of range"))
        }
        None if is_non_finite_word(cell) => Err(format!("{cell:?} is not a finite number")),
        None => Ok(FieldValue::Text(cell.into())),
    }
}

/// Finds where a chunk of at most `max_records` records of `input` ends, so
/// a large file can be parsed piece by piece with
/// [`CsvHeader::parse_rows`]. Returns the chunk's length in bytes and the
/// number of lines it spans (to add to the next chunk's first line). A
/// record is complete once its line end has been read; unless `at_eof`, a
/// last record without one is left for the next chunk.
pub fn next_chunk(input: &[u8], max_records: usize, delimiter: u8, at_eof: bool) -> (usize, u32) {
    let mut reader = RecordReader::new(input, 0, 0, delimiter);
    let mut cells = Vec::new();
    let (mut end, mut lines) = (0, 0);
    let mut records = 0;
    while records < max_records {
        if reader.next(&mut cells).is_none() {
            break;
        }
        let complete = reader.pos < input.len() || input.last() == Some(&b'\n');
        if !complete && !at_eof {
            break;
        }
        (end, lines) = (reader.pos, reader.line);
        records += 1;
    }
    if records < max_records && (at_eof || input.last() == Some(&b'\n')) {
        // Trailing blank lines belong to the last chunk.
        (end, lines) = (reader.pos, reader.line);
    }
    (end, line_number(lines))
}

/// Splits CSV text into records of cells (RFC 4180, plus bare `\n` line
/// ends and blank lines skipped).
struct RecordReader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Line number of the byte at `pos`.
    line: usize,
    delimiter: u8,
}

impl<'a> RecordReader<'a> {
    fn new(input: &'a [u8], pos: usize, line: usize, delimiter: u8) -> Self {
        Self { input, pos, line, delimiter }
    }

    /// Reads the next record into `cells`; returns its first line, or an
    /// error after skipping to the next line; `None` at the end of input.
    fn next(&mut self, cells: &mut Vec<Cow<'a, [u8]>>) -> Option<Result<usize, LineError>> {
        cells.clear();
        let input = self.input;
        while self.at_line_end(self.pos) {
            if self.pos >= input.len() {
                return None;
            }
            self.consume_line_end();
        }
        let line = self.line;
        loop {
            let cell_start = self.pos;
            let end = if input.get(cell_start) == Some(&b'"') {
                match self.quoted_cell(cell_start) {
                    Ok((cell, end)) => {
                        cells.push(cell);
                        end
                    }
                    Err(message) => return Some(Err(self.fail(line, message))),
                }
            } else {
                let end = input[cell_start..]
                    .iter()
                    .position(|&b| b == self.delimiter || b == b'\n')
                    .map_or(input.len(), |o| cell_start + o);
                let cell_end =
                    if end > cell_start && input[end - 1] == b'\r' && input.get(end) == Some(&b'\n') {
                        end - 1
                    } else {
                        end
                    };
                cells.push(Cow::Borrowed(&input[cell_start..cell_end]));
                cell_end
            };
            if input.get(end) == Some(&self.delimiter) {
                self.pos = end + 1;
            } else if self.at_line_end(end) {
                self.pos = end;
                self.consume_line_end();
                return Some(Ok(line));
            } else {
                self.pos = end;
                return Some(Err(self.fail(line, "unexpected text after a closing quote".to_owned())));
            }
        }
    }

    /// A quoted cell starting at the quote at `start`: its content and the
    /// offset just past the closing quote.
    fn quoted_cell(&mut self, start: usize) -> Result<(Cow<'a, [u8]>, usize), String> {
        let input = self.input;
        let mut i = start + 1;
        let mut doubled = false;
        loop {
            let Some(offset) = input[i..].iter().position(|&b| b == b'"') else {
                return Err("unterminated quoted cell".to_owned());
            };
            let quote = i + offset;
            if input.get(quote + 1) == Some(&b'"') {
                doubled = true;
                i = quote + 2;
                continue;
            }
            let content = &input[start + 1..quote];
            self.line += content.iter().filter(|&&b| b == b'\n').count();
            let cell = if doubled {
                let mut owned = Vec::with_capacity(content.len());
                let mut j = 0;
                while j < content.len() {
                    owned.push(content[j]);
                    j += if content[j] == b'"' { 2 } else { 1 };
                }
                Cow::Owned(owned)
            } else {
                Cow::Borrowed(content)
            };
            return Ok((cell, quote + 1));
        }
    }

    fn at_line_end(&self, at: usize) -> bool {
        match self.input.get(at) {
            None | Some(b'\n') => true,
            Some(b'\r') => self.input.get(at + 1) == Some(&b'\n'),
            Some(_) => false,
        }
    }

    /// Consumes the line end at `pos`.
    fn consume_line_end(&mut self) {
        if self.input.get(self.pos) == Some(&b'\r') {
            self.pos += 1;
        }
        if self.pos < self.input.len() {
            self.pos += 1;
            self.line += 1;
        }
    }

    /// An error for the record that began on `line`; moves past the line
    /// holding `pos` so reading can go on.
    fn fail(&mut self, line: usize, message: String) -> LineError {
        match self.input[self.pos.min(self.input.len())..].iter().position(|&b| b == b'\n') {
            Some(offset) => {
                self.pos += offset + 1;
                self.line += 1;
            }
            None => self.pos = self.input.len(),
        }
        LineError::at_line(line_number(line), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &str) -> Vec<Vec<String>> {
        let mut reader = RecordReader::new(input.as_bytes(), 0, 1, b',');
        let mut cells = Vec::new();
        let mut out = Vec::new();
        while let Some(record) = reader.next(&mut cells) {
            record.unwrap();
            out.push(cells.iter().map(|c| String::from_utf8(c.to_vec()).unwrap()).collect());
        }
        out
    }

    #[test]
    fn reader_handles_quotes_crlf_and_blank_lines() {
        let got = records("a,\"b,\"\"c\"\"\"\r\n\n\"x\ny\",\r\n");
        assert_eq!(
            got,
            vec![vec!["a".to_owned(), "b,\"c\"".to_owned()], vec!["x\ny".to_owned(), String::new()]]
        );
    }

    #[test]
    fn cell_values_are_numbers_text_or_refused() {
        assert_eq!(cell_value("62").unwrap(), FieldValue::Number(Value::new(62.0).unwrap()));
        assert_eq!(cell_value("+1.5e2").unwrap(), FieldValue::Number(Value::new(150.0).unwrap()));
        assert_eq!(cell_value("deep").unwrap(), FieldValue::Text("deep".into()));
        assert!(cell_value("NaN").is_err());
        assert!(cell_value("-inf").is_err());
        assert!(cell_value("1e999").is_err());
    }

    #[test]
    fn chunks_end_at_record_boundaries() {
        let input = b"1,\"a\nb\"\n2,c\n3,d";
        assert_eq!(next_chunk(input, 1, b',', false), (8, 2));
        assert_eq!(next_chunk(input, 5, b',', false), (12, 3));
        assert_eq!(next_chunk(input, 5, b',', true), (input.len(), 3));
    }
}
