//! `doppel token create|list|revoke|generate`.

use anyhow::Context;
use doppel_auth::{NewToken, Scopes, TokenName, UserName};
use doppel_model::Timestamp;
use reqwest::Method;

use crate::cli::{Format, TokenArgs, TokenCommand};
use crate::client::{Body, Client};
use crate::output::{cell, table};

pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    if let TokenCommand::Generate = args.command {
        println!("{}", generate()?);
        return Ok(());
    }
    let client = Client::new(&args.server)?;
    match args.command {
        TokenCommand::Create { name, user, scopes, twins, ttl, expires } => {
            let mut body = serde_json::json!({"name": name, "user": user, "scopes": scopes});
            for (key, value) in [("ttl", ttl), ("expires", expires)] {
                if let Some(value) = value {
                    body[key] = value.into();
                }
            }
            if let Some(twins) = twins {
                body["twins"] = twins.into();
            }
            let text = client.send(Method::POST, "/api/v1/tokens", &[], Some(Body::Json(body))).await?;
            let created: serde_json::Value =
                serde_json::from_str(&text).context("the server's answer is not JSON")?;
            print!("{}", render_created(&created));
        }
        TokenCommand::List { format } => {
            let answer = client.get_json("/api/v1/tokens", &[]).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
                Format::Table | Format::Csv => {
                    let tokens = answer["tokens"].as_array().cloned().unwrap_or_default();
                    let header = ["id", "name", "user", "scopes", "twins", "status", "expires"];
                    let rows: Vec<Vec<String>> = tokens.iter().map(row).collect();
                    if format == Format::Csv {
                        println!("{}", header.join(","));
                        for row in rows {
                            println!("{}", row.join(","));
                        }
                    } else {
                        print!("{}", table(&header, &rows));
                    }
                }
            }
        }
        TokenCommand::Revoke { id } => {
            client.send(Method::DELETE, &format!("/api/v1/tokens/{id}"), &[], None).await?;
            println!("revoked token {id}: it no longer authenticates");
        }
        TokenCommand::Generate => {}
    }
    Ok(())
}

/// A fresh token text, made here and registered nowhere: a server takes it
/// as its admin token from `DOPPEL_ADMIN_TOKEN`.
pub fn generate() -> anyhow::Result<String> {
    let new = NewToken {
        name: TokenName::new(doppel_auth::BOOTSTRAP_TOKEN_NAME)?,
        user: UserName::new(doppel_auth::BOOTSTRAP_USER)?,
        scopes: Scopes::Admin,
        expires: None,
    };
    let (secret, _record) = doppel_auth::generate(new, Timestamp::now())?;
    Ok(secret.expose().to_owned())
}

fn row(token: &serde_json::Value) -> Vec<String> {
    let list = |value: &serde_json::Value| {
        value.as_array().map_or_else(String::new, |items| {
            items.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(" ")
        })
    };
    vec![
        cell(&token["id"]),
        cell(&token["name"]),
        cell(&token["user"]),
        list(&token["scopes"]),
        list(&token["twins"]),
        cell(&token["status"]),
        cell(&token["expires"]),
    ]
}

fn render_created(created: &serde_json::Value) -> String {
    format!(
        "{}\n\ntoken {} for user {} ({}); shown this once: store it now\n",
        cell(&created["token"]),
        cell(&created["id"]),
        cell(&created["user"]),
        row(created)[3],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_admin_token_texts_that_differ() {
        let first = generate().unwrap();
        let second = generate().unwrap();
        assert_ne!(first, second);
        let mut tokens = doppel_auth::Tokens::new();
        let now = Timestamp::now();
        assert!(matches!(
            tokens.bootstrap_admin(Some(&first), now).unwrap(),
            doppel_auth::Bootstrap::FromEnvironment(_)
        ));
    }

    #[test]
    fn a_listing_row_joins_scopes_and_twins() {
        let token = serde_json::json!({"id": "abcdefgh2345", "name": "phone", "user": "alice",
            "scopes": ["read", "write"], "twins": ["alice"], "status": "active", "expires": null});
        assert_eq!(row(&token), ["abcdefgh2345", "phone", "alice", "read write", "alice", "active", ""]);
    }
}
