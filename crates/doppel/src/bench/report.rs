//! The side-by-side result table and its ratios.

use std::fmt::Write as _;

use super::stats::{LatencySummary, format_ms};

/// What one system achieved in an ingest or query run.
#[derive(Clone, PartialEq, Debug)]
pub struct SystemResult {
    /// The system's name as printed.
    pub system: String,
    /// Points acknowledged per second while sending the workload.
    pub points_per_sec: f64,
    /// Bytes on disk per point after the system settled; `None` when not measured.
    pub bytes_per_point: Option<f64>,
    /// Latency of "last value of heart_rate for a twin".
    pub last: Option<LatencySummary>,
    /// Latency of "hourly mean of heart_rate over the workload for a twin".
    pub hourly: Option<LatencySummary>,
}

/// Formats results as an aligned table, then a second table of ratios
/// against the system named `baseline` when it is among the results.
pub fn format_table(results: &[SystemResult], baseline: &str, hourly_label: &str) -> String {
    let header = vec![
        "system".to_owned(),
        "points/s".to_owned(),
        "bytes/point".to_owned(),
        "last p50 ms".to_owned(),
        "last p99 ms".to_owned(),
        format!("{hourly_label} p50 ms"),
        format!("{hourly_label} p99 ms"),
    ];
    let mut rows: Vec<Vec<String>> = vec![header.clone()];
    for r in results {
        rows.push(vec![
            r.system.clone(),
            format_rate(r.points_per_sec),
            r.bytes_per_point.map_or_else(dash, |b| format!("{b:.2}")),
            r.last.map_or_else(dash, |l| format_ms(l.p50_ms)),
            r.last.map_or_else(dash, |l| format_ms(l.p99_ms)),
            r.hourly.map_or_else(dash, |l| format_ms(l.p50_ms)),
            r.hourly.map_or_else(dash, |l| format_ms(l.p99_ms)),
        ]);
    }
    let mut out = render(&rows);
    if let Some(base) = results.iter().find(|r| r.system == baseline) {
        let mut ratio_rows: Vec<Vec<String>> = vec![{
            let mut h = header;
            h[0] = format!("÷ {baseline}");
            h
        }];
        for r in results {
            ratio_rows.push(vec![
                r.system.clone(),
                ratio(Some(r.points_per_sec), Some(base.points_per_sec)),
                ratio(r.bytes_per_point, base.bytes_per_point),
                ratio(r.last.map(|l| l.p50_ms), base.last.map(|l| l.p50_ms)),
                ratio(r.last.map(|l| l.p99_ms), base.last.map(|l| l.p99_ms)),
                ratio(r.hourly.map(|l| l.p50_ms), base.hourly.map(|l| l.p50_ms)),
                ratio(r.hourly.map(|l| l.p99_ms), base.hourly.map(|l| l.p99_ms)),
            ]);
        }
        out.push('\n');
        out.push_str(&render(&ratio_rows));
        out.push_str("(ratios: points/s higher is better; bytes/point and latencies lower is better)\n");
    }
    out
}

fn dash() -> String {
    "-".to_owned()
}

/// `value / base` as `1.23x`; `-` when either is missing or the base is zero.
pub fn ratio(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 && v.is_finite() && b.is_finite() => format!("{:.2}x", v / b),
        _ => dash(),
    }
}

/// A rate with thousands separators and no fraction.
pub fn format_rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec < 0.0 {
        return dash();
    }
    group_thousands(per_sec.round() as u64)
}

/// `1234567` as `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Left-aligns the first column, right-aligns the others.
fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(line, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(line, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(p50: f64, p99: f64) -> Option<LatencySummary> {
        Some(LatencySummary { count: 200, p50_ms: p50, p99_ms: p99, max_ms: p99 })
    }

    #[test]
    fn table_lists_every_system_and_ratios_against_the_baseline() {
        let results = [
            SystemResult {
                system: "Doppel".into(),
                points_per_sec: 3_000_000.0,
                bytes_per_point: Some(1.2),
                last: latency(0.5, 1.0),
                hourly: latency(2.0, 4.0),
            },
            SystemResult {
                system: "VictoriaMetrics".into(),
                points_per_sec: 1_500_000.0,
                bytes_per_point: Some(0.8),
                last: latency(1.0, 2.0),
                hourly: latency(4.0, 8.0),
            },
            SystemResult {
                system: "InfluxDB".into(),
                points_per_sec: 300_000.0,
                bytes_per_point: None,
                last: None,
                hourly: latency(40.0, 80.0),
            },
        ];
        let table = format_table(&results, "VictoriaMetrics", "hourly");
        let expected = "\
system            points/s  bytes/point  last p50 ms  last p99 ms  hourly p50 ms  hourly p99 ms
Doppel           3,000,000         1.20        0.500         1.00           2.00           4.00
VictoriaMetrics  1,500,000         0.80         1.00         2.00           4.00           8.00
InfluxDB           300,000            -            -            -          40.00          80.00

÷ VictoriaMetrics  points/s  bytes/point  last p50 ms  last p99 ms  hourly p50 ms  hourly p99 ms
Doppel                2.00x        1.50x        0.50x        0.50x          0.50x          0.50x
VictoriaMetrics       1.00x        1.00x        1.00x        1.00x          1.00x          1.00x
InfluxDB              0.20x            -            -            -         10.00x         10.00x
(ratios: points/s higher is better; bytes/point and latencies lower is better)
";
        assert_eq!(table, expected);
    }

    #[test]
    fn table_without_the_baseline_has_no_ratio_section() {
        let results = [SystemResult {
            system: "Doppel".into(),
            points_per_sec: 10.0,
            bytes_per_point: None,
            last: None,
            hourly: None,
        }];
        let table = format_table(&results, "VictoriaMetrics", "year-hourly");
        assert_eq!(table.lines().count(), 2);
        assert!(table.starts_with("system"));
        assert!(table.contains("year-hourly p99 ms"));
    }

    #[test]
    fn ratios_refuse_missing_or_zero_bases() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50x");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "-");
        assert_eq!(ratio(None, Some(2.0)), "-");
        assert_eq!(ratio(Some(f64::NAN), Some(2.0)), "-");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(format_rate(1234.6), "1,235");
        assert_eq!(format_rate(f64::NAN), "-");
    }
}
