//! `doppel query`: a twin's signal as a table, CSV or JSON.

use reqwest::Method;

use crate::cli::{Format, QueryArgs};
use crate::client::Client;
use crate::output::{cell, table};

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    let path = format!("/api/v1/twins/{}/signals/{}", args.twin, args.signal);
    let mut query: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("from", &args.from),
        ("to", &args.to),
        ("every", &args.every),
        ("agg", &args.agg),
        ("source", &args.source),
    ] {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    match args.format {
        Format::Csv => {
            query.push(("format", "csv".to_owned()));
            print!("{}", client.send(Method::GET, &path, &query, None).await?);
        }
        Format::Json => {
            let answer = client.get_json(&path, &query).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        Format::Table => {
            let answer = client.get_json(&path, &query).await?;
            let aggregates: Vec<&str> = match args.agg.as_deref() {
                Some(list) => list.split(',').map(str::trim).filter(|a| !a.is_empty()).collect(),
                None => vec!["mean"],
            };
            print!("{}", render(&answer, &aggregates));
        }
    }
    Ok(())
}

/// Raw points or buckets as an aligned table; bucket columns are the
/// count, then the aggregates in the order they were asked for.
fn render(answer: &serde_json::Value, aggregates: &[&str]) -> String {
    if let Some(buckets) = answer["buckets"].as_array() {
        let mut columns: Vec<String> = vec!["count".to_owned()];
        columns.extend(aggregates.iter().map(|a| (*a).to_owned()));
        for bucket in buckets {
            for key in bucket.as_object().into_iter().flat_map(|o| o.keys()) {
                if key != "time" && !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
        let mut header = vec!["time"];
        header.extend(columns.iter().map(String::as_str));
        let rows: Vec<Vec<String>> = buckets
            .iter()
            .map(|b| std::iter::once(cell(&b["time"])).chain(columns.iter().map(|c| cell(&b[c]))).collect())
            .collect();
        return table(&header, &rows);
    }
    let points = answer["points"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| vec![cell(&p["time"]), cell(&p["value"]), cell(&p["label"]), cell(&p["provenance"])])
        .collect();
    table(&["time", "value", "label", "source"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_render_one_column_per_aggregate() {
        let answer =
            serde_json::json!({"buckets": [{"time": "2024-01-01T00:00:00Z", "count": 60, "mean": 61.5}]});
        let text = render(&answer, &["mean"]);
        assert!(text.starts_with("time                  count  mean\n"), "{text}");
        assert!(text.contains("61.5"));
    }

    #[test]
    fn raw_points_show_labels_and_sources() {
        let answer = serde_json::json!({"points": [{"time": "2024-01-01T00:00:00Z", "value": 2.0, "label": "deep", "provenance": "device=ring"}]});
        let text = render(&answer, &[]);
        assert!(text.contains("deep") && text.contains("device=ring"), "{text}");
    }
}
