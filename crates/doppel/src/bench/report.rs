//! The side-by-side result table and its ratios.

use std::fmt::Write as _;

use super::stats::{LatencySummary, format_ms};

/// Latencies of the two queries every comparison times.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub struct QueryLatencies {
    /// "Last value of heart_rate for a twin".
    pub last: Option<LatencySummary>,
    /// "Hourly means of heart_rate over the query range for a twin".
    pub hourly: Option<LatencySummary>,
}

/// What one system achieved in an ingest or query run.
#[derive(Clone, PartialEq, Debug)]
pub struct SystemResult {
    /// The system's name as printed.
    pub system: String,
    /// Points acknowledged per second while sending.
    pub points_per_sec: f64,
    /// Seconds from the first send to the last acknowledgement.
    pub seconds: f64,
    /// Bytes on disk per point, the server running, once it has flushed
    /// and its files stopped changing; `None` when not measured.
    pub bytes_running: Option<f64>,
    /// Bytes on disk per point after a graceful stop, every file counted.
    pub bytes_stopped: Option<f64>,
    /// Seconds from starting the stopped system again to its first
    /// healthy answer.
    pub restart_secs: Option<f64>,
    /// Queries right after the last write was acknowledged (Doppel: the
    /// data still in its head).
    pub fresh: QueryLatencies,
    /// Queries once the system has flushed and settled.
    pub settled: QueryLatencies,
}

/// Formats results as two aligned tables (ingest and disk; query
/// latencies fresh and settled), each followed by its ratios against the
/// system named `baseline` when it is among the results.
pub fn format_table(results: &[SystemResult], baseline: &str, hourly_label: &str) -> String {
    let base = results.iter().find(|r| r.system == baseline);
    let ingest_header = ["points/s", "seconds", "B/pt flushed", "B/pt stopped", "restart s"];
    let ingest = |r: &SystemResult| {
        [Some(r.points_per_sec), Some(r.seconds), r.bytes_running, r.bytes_stopped, r.restart_secs]
    };
    let ingest_formats: [fn(f64) -> String; 5] = [
        format_rate,
        |s| format!("{s:.1}"),
        |b| format!("{b:.2}"),
        |b| format!("{b:.2}"),
        |s| format!("{s:.2}"),
    ];
    let query_header: Vec<String> =
        [("fresh", "last"), ("fresh", hourly_label), ("settled", "last"), ("settled", hourly_label)]
            .iter()
            .flat_map(|(phase, query)| [format!("{phase} {query} p50"), format!("{phase} {query} p99")])
            .collect();
    let query = |r: &SystemResult| {
        [r.fresh.last, r.fresh.hourly, r.settled.last, r.settled.hourly]
            .into_iter()
            .flat_map(|l| [l.map(|l| l.p50_ms), l.map(|l| l.p99_ms)])
            .collect::<Vec<_>>()
    };
    let mut out = table(results, &ingest_header.map(str::to_owned), |r| {
        ingest(r).iter().zip(ingest_formats).map(|(v, f)| v.map_or_else(dash, f)).collect()
    });
    if let Some(base) = base {
        out.push('\n');
        out.push_str(&ratio_table(results, baseline, &ingest_header.map(str::to_owned), |r| {
            ingest(r).iter().zip(ingest(base)).map(|(v, b)| ratio(*v, b)).collect()
        }));
        out.push_str("(ratios: points/s higher is better; bytes/point and restart time lower is better)\n");
    }
    out.push_str("\nquery latency, ms (fresh: right after the last write; settled: after the flush)\n");
    out.push_str(&table(results, &query_header, |r| {
        query(r).into_iter().map(|v| v.map_or_else(dash, format_ms)).collect()
    }));
    if let Some(base) = base {
        out.push('\n');
        out.push_str(&ratio_table(results, baseline, &query_header, |r| {
            query(r).into_iter().zip(query(base)).map(|(v, b)| ratio(v, b)).collect()
        }));
        out.push_str("(ratios: lower is better)\n");
    }
    out
}

/// A table with one row per system.
fn table(
    results: &[SystemResult],
    header: &[String],
    cells: impl Fn(&SystemResult) -> Vec<String>,
) -> String {
    let mut rows =
        vec![std::iter::once("system".to_owned()).chain(header.iter().cloned()).collect::<Vec<_>>()];
    rows.extend(results.iter().map(|r| std::iter::once(r.system.clone()).chain(cells(r)).collect()));
    render(&rows)
}

/// A table of ratios against `baseline`, one row per system.
fn ratio_table(
    results: &[SystemResult],
    baseline: &str,
    header: &[String],
    cells: impl Fn(&SystemResult) -> Vec<String>,
) -> String {
    let mut rows =
        vec![std::iter::once(format!("÷ {baseline}")).chain(header.iter().cloned()).collect::<Vec<_>>()];
    rows.extend(results.iter().map(|r| std::iter::once(r.system.clone()).chain(cells(r)).collect()));
    render(&rows)
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
        Some(LatencySummary { count: 200, p50_ms: p50, p99_ms: p99, p999_ms: p99, max_ms: p99 })
    }

    fn result(system: &str, points_per_sec: f64, bytes: Option<f64>, hourly_p50: f64) -> SystemResult {
        let queries =
            QueryLatencies { last: latency(0.5, 1.0), hourly: latency(hourly_p50, 2.0 * hourly_p50) };
        SystemResult {
            system: system.into(),
            points_per_sec,
            seconds: 30.0,
            bytes_running: bytes,
            bytes_stopped: bytes.map(|b| b + 0.1),
            restart_secs: Some(0.25),
            fresh: queries,
            settled: queries,
        }
    }

    #[test]
    fn tables_list_every_system_and_ratios_against_the_baseline() {
        let mut influx = result("InfluxDB", 300_000.0, None, 40.0);
        influx.settled.last = None;
        let results = [
            result("Doppel", 3_000_000.0, Some(1.2), 2.0),
            result("VictoriaMetrics", 1_500_000.0, Some(0.8), 4.0),
            influx,
        ];
        let table = format_table(&results, "VictoriaMetrics", "hourly");
        let expected = "\
system            points/s  seconds  B/pt flushed  B/pt stopped  restart s
Doppel           3,000,000     30.0          1.20          1.30       0.25
VictoriaMetrics  1,500,000     30.0          0.80          0.90       0.25
InfluxDB           300,000     30.0             -             -       0.25

÷ VictoriaMetrics  points/s  seconds  B/pt flushed  B/pt stopped  restart s
Doppel                2.00x    1.00x         1.50x         1.44x      1.00x
VictoriaMetrics       1.00x    1.00x         1.00x         1.00x      1.00x
InfluxDB              0.20x    1.00x             -             -      1.00x
(ratios: points/s higher is better; bytes/point and restart time lower is better)

query latency, ms (fresh: right after the last write; settled: after the flush)
system           fresh last p50  fresh last p99  fresh hourly p50  fresh hourly p99  settled last p50  settled last p99  settled hourly p50  settled hourly p99
Doppel                    0.500            1.00              2.00              4.00             0.500              1.00                2.00                4.00
VictoriaMetrics           0.500            1.00              4.00              8.00             0.500              1.00                4.00                8.00
InfluxDB                  0.500            1.00             40.00             80.00                 -                 -               40.00               80.00

÷ VictoriaMetrics  fresh last p50  fresh last p99  fresh hourly p50  fresh hourly p99  settled last p50  settled last p99  settled hourly p50  settled hourly p99
Doppel                      1.00x           1.00x             0.50x             0.50x             1.00x             1.00x               0.50x               0.50x
VictoriaMetrics             1.00x           1.00x             1.00x             1.00x             1.00x             1.00x               1.00x               1.00x
InfluxDB                    1.00x           1.00x            10.00x            10.00x                 -                 -              10.00x              10.00x
(ratios: lower is better)
";
        assert_eq!(table, expected, "\n{table}");
    }

    #[test]
    fn tables_without_the_baseline_have_no_ratio_section() {
        let results = [result("Doppel", 10.0, None, 1.0)];
        let table = format_table(&results, "VictoriaMetrics", "year-hourly");
        assert!(!table.contains('÷'));
        assert!(table.starts_with("system"));
        assert!(table.contains("settled year-hourly p99"));
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
