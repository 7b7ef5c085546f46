//! Editing the configuration `influxd config` prints, so the benchmark's
//! InfluxDB runs on loopback, in its own temporary directory, without
//! background self-monitoring writes competing with the measured ones.
//!
//! The file is TOML, but a TOML round trip through a parser would reorder
//! and drop comments; a line editor keeps everything it does not touch
//! byte for byte, and the result is checked by parsing it in the tests.

use std::path::Path;

/// One `key = value` setting; `section: None` is the top level, before the
/// first `[table]` header. `value` is TOML text (quoted when a string).
#[derive(Clone, PartialEq, Debug)]
pub struct Setting {
    /// The `[table]` it belongs to, without brackets.
    pub section: Option<&'static str>,
    /// The key.
    pub key: &'static str,
    /// The value as TOML text.
    pub value: String,
}

impl Setting {
    fn new(section: Option<&'static str>, key: &'static str, value: impl Into<String>) -> Self {
        Self { section, key, value: value.into() }
    }
}

/// Quotes a string as a TOML basic string.
pub fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The settings the benchmark changes: every directory under `dir`, HTTP
/// on `127.0.0.1:http_port`, the backup RPC service on
/// `127.0.0.1:rpc_port`, no usage reporting, no `_internal` monitor writes,
/// no per-request logs, and short "cold" durations so the in-memory cache
/// is written out as TSM files (and those fully compacted) within seconds
/// of the last write instead of after 10 minutes and 4 hours — otherwise the
/// bytes on disk would measure the uncompressed WAL, not the storage format.
pub fn benchmark_settings(dir: &Path, http_port: u16, rpc_port: u16) -> Vec<Setting> {
    let path = |sub: &str| toml_string(&dir.join(sub).to_string_lossy());
    vec![
        Setting::new(None, "reporting-enabled", "false"),
        Setting::new(None, "reporting-disabled", "true"),
        Setting::new(None, "bind-address", toml_string(&format!("127.0.0.1:{rpc_port}"))),
        Setting::new(Some("meta"), "dir", path("meta")),
        Setting::new(Some("meta"), "logging-enabled", "false"),
        Setting::new(Some("data"), "dir", path("data")),
        Setting::new(Some("data"), "wal-dir", path("wal")),
        Setting::new(Some("data"), "query-log-enabled", "false"),
        Setting::new(Some("data"), "cache-snapshot-write-cold-duration", toml_string("5s")),
        Setting::new(Some("data"), "compact-full-write-cold-duration", toml_string("10s")),
        Setting::new(Some("monitor"), "store-enabled", "false"),
        Setting::new(Some("http"), "bind-address", toml_string(&format!("127.0.0.1:{http_port}"))),
        Setting::new(Some("http"), "log-enabled", "false"),
        Setting::new(Some("continuous_queries"), "enabled", "false"),
    ]
}

/// Applies settings to a configuration text. A key already present in its
/// section (also as a `# key = ...` comment) is replaced in place; a
/// missing key is added at the end of its section; a missing section is
/// appended. Array-of-tables sections (`[[udp]]`) are never touched.
pub fn apply_settings(text: &str, settings: &[Setting]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for setting in settings {
        apply_one(&mut lines, setting);
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn apply_one(lines: &mut Vec<String>, setting: &Setting) {
    let new_line = |indent: &str| format!("{indent}{} = {}", setting.key, setting.value);
    let Some((body_start, body_end)) = section_body(lines, setting.section) else {
        // Keys of a missing table go into a new table at the end; top-level
        // keys always have a body (possibly empty) so this is tables only.
        if let Some(section) = setting.section {
            lines.push(String::new());
            lines.push(format!("[{section}]"));
            lines.push(new_line("  "));
        }
        return;
    };
    let mut commented = None;
    for (i, line) in lines.iter_mut().enumerate().take(body_end).skip(body_start) {
        match line_key(line) {
            Some((key, false)) if key == setting.key => {
                let indent = leading_whitespace(line).to_owned();
                *line = new_line(&indent);
                return;
            }
            Some((key, true)) if key == setting.key && commented.is_none() => commented = Some(i),
            _ => {}
        }
    }
    if let Some(i) = commented {
        let indent = leading_whitespace(&lines[i]).to_owned();
        lines[i] = new_line(&indent);
        return;
    }
    // Insert after the last non-blank line of the body so the blank line
    // separating it from the next header stays where it was.
    let mut at = body_end;
    while at > body_start && lines[at - 1].trim().is_empty() {
        at -= 1;
    }
    let indent = if setting.section.is_some() { "  " } else { "" };
    lines.insert(at, new_line(indent));
}

/// Line range `[start, end)` of a section's keys; for the top level, the
/// lines before the first header.
fn section_body(lines: &[String], section: Option<&str>) -> Option<(usize, usize)> {
    let next_header =
        |from: usize| (from..lines.len()).find(|&i| header(&lines[i]).is_some()).unwrap_or(lines.len());
    match section {
        None => Some((0, next_header(0))),
        Some(name) => {
            let at = lines.iter().position(|l| header(l) == Some(Header::Table(name)))?;
            Some((at + 1, next_header(at + 1)))
        }
    }
}

#[derive(PartialEq, Debug)]
enum Header<'a> {
    Table(&'a str),
    ArrayOfTables,
}

fn header(line: &str) -> Option<Header<'_>> {
    let trimmed = line.trim();
    if trimmed.starts_with("[[") {
        return Some(Header::ArrayOfTables);
    }
    let inner = trimmed.strip_prefix('[')?.split(']').next()?;
    Some(Header::Table(inner.trim()))
}

/// The key a line sets, and whether the line is commented out.
fn line_key(line: &str) -> Option<(&str, bool)> {
    let trimmed = line.trim_start();
    let (rest, commented) = match trimmed.strip_prefix('#') {
        Some(rest) => (rest.trim_start(), true),
        None => (trimmed, false),
    };
    let (key, _) = rest.split_once('=')?;
    let key = key.trim();
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then_some((key, commented))
}

fn leading_whitespace(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "reporting-enabled = false\nbind-address = \"127.0.0.1:8088\"\n\n[meta]\n  dir = \"/var/lib/influxdb/meta\"\n  retention-autocreate = true\n\n[data]\n  dir = \"/var/lib/influxdb/data\"\n  wal-dir = \"/var/lib/influxdb/wal\"\n  # query-log-enabled = true\n\n[monitor]\n  store-enabled = true\n\n[http]\n  enabled = true\n  bind-address = \":8086\"\n\n[[udp]]\n  enabled = false\n  bind-address = \":8089\"\n";

    fn parsed(text: &str) -> toml::Table {
        text.parse::<toml::Table>().unwrap()
    }

    #[test]
    fn benchmark_settings_redirect_every_directory_and_port() {
        let dir = Path::new("/tmp/bench-influx");
        let text = apply_settings(SAMPLE, &benchmark_settings(dir, 18086, 18088));
        let table = parsed(&text);
        assert_eq!(table["bind-address"].as_str(), Some("127.0.0.1:18088"));
        assert_eq!(table["reporting-disabled"].as_bool(), Some(true));
        assert_eq!(table["meta"]["dir"].as_str(), Some("/tmp/bench-influx/meta"));
        assert_eq!(table["meta"]["retention-autocreate"].as_bool(), Some(true));
        assert_eq!(table["data"]["dir"].as_str(), Some("/tmp/bench-influx/data"));
        assert_eq!(table["data"]["wal-dir"].as_str(), Some("/tmp/bench-influx/wal"));
        assert_eq!(table["data"]["query-log-enabled"].as_bool(), Some(false));
        assert_eq!(table["monitor"]["store-enabled"].as_bool(), Some(false));
        assert_eq!(table["http"]["bind-address"].as_str(), Some("127.0.0.1:18086"));
        assert_eq!(table["continuous_queries"]["enabled"].as_bool(), Some(false));
    }

    #[test]
    fn array_of_tables_sections_are_left_alone() {
        let text = apply_settings(SAMPLE, &benchmark_settings(Path::new("/x"), 1, 2));
        let table = parsed(&text);
        assert_eq!(table["udp"][0]["bind-address"].as_str(), Some(":8089"));
    }

    #[test]
    fn existing_keys_are_replaced_in_place_keeping_indentation() {
        let setting = Setting::new(Some("http"), "bind-address", toml_string("127.0.0.1:1"));
        let text = apply_settings(SAMPLE, &[setting]);
        assert!(text.contains("\n  bind-address = \"127.0.0.1:1\"\n"), "{text}");
        assert!(!text.contains("\":8086\""));
        assert_eq!(text.matches("bind-address").count(), SAMPLE.matches("bind-address").count());
    }

    #[test]
    fn commented_keys_are_uncommented_and_missing_keys_added_to_their_section() {
        let settings = [
            Setting::new(Some("data"), "query-log-enabled", "false"),
            Setting::new(Some("meta"), "logging-enabled", "false"),
        ];
        let text = apply_settings(SAMPLE, &settings);
        assert!(!text.contains("# query-log-enabled"));
        let meta = text.split("[meta]").nth(1).unwrap().split("[data]").next().unwrap();
        assert!(meta.contains("logging-enabled = false"), "{meta}");
        // The blank separator line before the next header survives.
        assert!(text.contains("logging-enabled = false\n\n[data]"), "{text}");
    }

    #[test]
    fn missing_sections_are_appended() {
        let text = apply_settings("a = 1\n", &[Setting::new(Some("monitor"), "store-enabled", "false")]);
        let table = parsed(&text);
        assert_eq!(table["a"].as_integer(), Some(1));
        assert_eq!(table["monitor"]["store-enabled"].as_bool(), Some(false));
    }

    #[test]
    fn top_level_keys_go_before_the_first_header() {
        let text =
            apply_settings("[meta]\n  dir = \"x\"\n", &[Setting::new(None, "reporting-disabled", "true")]);
        assert!(text.starts_with("reporting-disabled = true\n[meta]"), "{text}");
        assert_eq!(parsed(&text)["reporting-disabled"].as_bool(), Some(true));
    }

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("x\ny"), r#""x\ny""#);
        let table = parsed(&format!("k = {}", toml_string("tab\there \u{1} \"q\"")));
        assert_eq!(table["k"].as_str(), Some("tab\there \u{1} \"q\""));
    }
}
