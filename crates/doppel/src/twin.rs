//! `doppel twin list|show|create|delete|export|share|grants|unshare`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use tokio::io::AsyncWriteExt;

use crate::cli::{Format, TwinArgs, TwinCommand};
use crate::client::{Body, Client};
use crate::output::{cell, table};

pub async fn run(args: TwinArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server)?;
    match args.command {
        TwinCommand::List { model, limit, format } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(model) = model {
                query.push(("model", model));
            }
            let answer = client.get_json("/api/v1/twins", &query).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Format::Table | Format::Csv => {
                    let twins = answer["twins"].as_array().cloned().unwrap_or_default();
                    let rows: Vec<Vec<String>> = twins
                        .iter()
                        .map(|t| vec![cell(&t["id"]), cell(&t["model"]), cell(&t["created"])])
                        .collect();
                    if format == Format::Csv {
                        println!("id,model,created");
                        for row in rows {
                            println!("{}", row.join(","));
                        }
                    } else {
                        print!("{}", table(&["id", "model", "created"], &rows));
                    }
                }
            }
        }
        TwinCommand::Show { id, format } => {
            let answer = client.get_json(&format!("/api/v1/twins/{id}"), &[]).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Format::Table | Format::Csv => print!("{}", render_twin(&answer)),
            }
        }
        TwinCommand::Create { id, model, properties } => {
            let mut body = serde_json::Map::new();
            if let Some(model) = model {
                body.insert("model".into(), model.into());
            }
            body.insert("properties".into(), parse_properties(&properties)?.into());
            let text = client
                .send(Method::PUT, &format!("/api/v1/twins/{id}"), &[], Some(Body::Json(body.into())))
                .await?;
            let answer: serde_json::Value =
                serde_json::from_str(&text).context("the server's answer is not JSON")?;
            print!("{}", render_twin(&answer));
        }
        TwinCommand::Delete { id } => {
            client.send(Method::DELETE, &format!("/api/v1/twins/{id}"), &[], None).await?;
            println!("deleted twin {id} and all its data");
        }
        TwinCommand::Share { id, subject, resource, permissions, ttl, expires } => {
            let mut body =
                serde_json::json!({"subject": subject, "resource": resource, "permissions": permissions});
            for (key, value) in [("ttl", ttl), ("expires", expires)] {
                if let Some(value) = value {
                    body[key] = value.into();
                }
            }
            let path = format!("/api/v1/twins/{id}/grants");
            let text = client.send(Method::POST, &path, &[], Some(Body::Json(body))).await?;
            let grant: serde_json::Value =
                serde_json::from_str(&text).context("the server's answer is not JSON")?;
            println!("{}", describe_grant(&id, &grant));
        }
        TwinCommand::Export { id, output } => {
            let path = output.unwrap_or_else(|| PathBuf::from(format!("doppel-export-{id}.zip")));
            let bytes = export(&client, &id, &path).await?;
            println!("exported twin {id} to {} ({bytes} bytes)", path.display());
        }
        TwinCommand::Grants { id, format } => {
            let answer = client.get_json(&format!("/api/v1/twins/{id}/grants"), &[]).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Format::Table | Format::Csv => print!("{}", render_grants(&answer, format)),
            }
        }
        TwinCommand::Unshare { id, grant } => {
            client.send(Method::DELETE, &format!("/api/v1/twins/{id}/grants/{grant}"), &[], None).await?;
            println!("revoked grant {grant} on twin {id}");
        }
    }
    Ok(())
}

/// Downloads a twin's export archive into `path`, showing the bytes
/// received as they come. The archive is written to `<path>.part` and
/// renamed only once complete, so a broken transfer never leaves a file
/// that looks like a whole export. Returns the archive's size.
async fn export(client: &Client, id: &str, path: &Path) -> anyhow::Result<u64> {
    let mut response = client.answer(Method::GET, &format!("/api/v1/twins/{id}/export"), &[], None).await?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} exporting twin {msg}: {bytes} ({bytes_per_sec})")
    {
        bar.set_style(style);
    }
    bar.set_message(id.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut received = 0u64;
    let outcome: anyhow::Result<()> = async {
        while let Some(chunk) = response.chunk().await.context("the export broke off before its end")? {
            file.write_all(&chunk).await.with_context(|| format!("cannot write {}", partial.display()))?;
            received += chunk.len() as u64;
            bar.set_position(received);
        }
        file.sync_all().await.with_context(|| format!("cannot write {}", partial.display()))?;
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    if let Err(error) = outcome {
        // The partial file holds personal data and is not an export.
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(error);
    }
    tokio::fs::rename(&partial, path)
        .await
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    Ok(received)
}

/// `grant 3 on twin alice: user:dr-who may read signals:heart_rate until 2024-06-01T00:00:00Z`.
fn describe_grant(twin: &str, grant: &serde_json::Value) -> String {
    let until = match grant["expires"].as_str() {
        Some(expires) => format!("until {expires}"),
        None => "until revoked".to_owned(),
    };
    format!(
        "grant {} on twin {twin}: {} may {} {} {until}",
        cell(&grant["id"]),
        cell(&grant["subject"]),
        permission_list(&grant["permissions"]).replace(' ', ", "),
        cell(&grant["resource"]),
    )
}

fn permission_list(value: &serde_json::Value) -> String {
    value.as_array().map_or_else(String::new, |items| {
        items.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(" ")
    })
}

fn render_grants(answer: &serde_json::Value, format: Format) -> String {
    let header = ["grant", "subject", "resource", "permissions", "expires", "active", "granted_by"];
    let rows: Vec<Vec<String>> = answer["grants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|grant| {
            vec![
                cell(&grant["id"]),
                cell(&grant["subject"]),
                cell(&grant["resource"]),
                permission_list(&grant["permissions"]),
                cell(&grant["expires"]),
                cell(&grant["active"]),
                cell(&grant["granted_by"]),
            ]
        })
        .collect();
    if format == Format::Csv {
        let mut out = format!("{}\n", header.join(","));
        for row in rows {
            out.push_str(&row.join(","));
            out.push('\n');
        }
        return out;
    }
    let owner = answer["owner"].as_str().unwrap_or("nobody (administrators only)");
    format!("twin {}  owner {owner}\n\n{}", cell(&answer["twin"]), table(&header, &rows))
}

/// `key=value` pairs; values that parse as JSON keep their type.
fn parse_properties(pairs: &[String]) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut map = serde_json::Map::new();
    for pair in pairs {
        let (key, value) =
            pair.split_once('=').with_context(|| format!("property {pair:?} is not key=value"))?;
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        map.insert(key.to_owned(), value);
    }
    Ok(map)
}

fn render_twin(twin: &serde_json::Value) -> String {
    let mut out = format!(
        "twin {}  model {}  created {}\n",
        cell(&twin["id"]),
        cell(&twin["model"]),
        cell(&twin["created"])
    );
    if let Some(properties) = twin["properties"].as_object().filter(|p| !p.is_empty()) {
        let rows: Vec<Vec<String>> = properties.iter().map(|(k, v)| vec![k.clone(), cell(v)]).collect();
        out.push('\n');
        out.push_str(&table(&["property", "value"], &rows));
    }
    let signals = twin["signals"].as_array().cloned().unwrap_or_default();
    if !signals.is_empty() {
        let rows: Vec<Vec<String>> = signals
            .iter()
            .map(|s| {
                let window = &s["windows"][0];
                let value = match s["label"].as_str() {
                    Some(label) => label.to_owned(),
                    None => cell(&s["last_value"]),
                };
                vec![
                    cell(&s["signal"]),
                    value,
                    cell(&s["unit"]),
                    cell(&s["last_time"]),
                    cell(&window["window"]),
                    cell(&window["mean"]),
                    cell(&window["min"]),
                    cell(&window["max"]),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["signal", "last", "unit", "at", "window", "mean", "min", "max"], &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_described_in_one_sentence() {
        let grant = serde_json::json!({"id": 3, "subject": "user:dr-who", "resource": "signals:heart_rate",
            "permissions": ["read", "share"], "expires": "2024-06-01T00:00:00Z"});
        assert_eq!(
            describe_grant("alice", &grant),
            "grant 3 on twin alice: user:dr-who may read, share signals:heart_rate until 2024-06-01T00:00:00Z"
        );
    }

    #[test]
    fn grants_render_with_the_owner_above_them() {
        let answer = serde_json::json!({"twin": "alice", "owner": "user:alice", "grants": [{"id": 1,
            "subject": "user:coach", "resource": "twin", "permissions": ["read"], "expires": null,
            "active": true, "granted_by": "user:alice"}]});
        let text = render_grants(&answer, Format::Table);
        assert!(text.starts_with("twin alice  owner user:alice\n\ngrant"), "{text}");
        assert!(text.contains("user:coach") && text.contains("true"), "{text}");
    }

    #[test]
    fn properties_keep_json_types() {
        let map = parse_properties(&["birth_year=1985".into(), "sex=female".into()]).unwrap();
        assert_eq!(map["birth_year"], serde_json::json!(1985));
        assert_eq!(map["sex"], serde_json::json!("female"));
        assert!(parse_properties(&["novalue".into()]).is_err());
    }
}
