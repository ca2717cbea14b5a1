//! `gatehouse guard list|unban`: the brute-force guard lives in the running server's memory, so these commands
//! ask its internal listener, with the internal endpoints' shared secret.

use anyhow::{Context, bail};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::CommandContext;
use super::config::reachable;
use crate::cli::GuardCommand;
use crate::output::{print_list, utc_time};

#[derive(Deserialize, serde::Serialize)]
struct Entry {
    kind: String,
    key: String,
    failures: u32,
    bans: u32,
    banned_until: Option<i64>,
}

/// One request to the internal listener; returns the status and body.
async fn call(ctx: &CommandContext, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let addr = reachable(ctx.config.listen.internal);
    let mut stream = tokio::net::TcpStream::connect(addr).await.with_context(|| {
        format!("cannot reach the server's internal listener at {addr}; is `gatehouse serve` running?")
    })?;
    let secret = ctx.internal_secret()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-Gatehouse-Secret: {}\r\nConnection: close\r\n\r\n",
        secret.expose()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("malformed HTTP response")?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Runs a `guard` command.
pub async fn run(ctx: &CommandContext, command: GuardCommand) -> anyhow::Result<()> {
    match command {
        GuardCommand::List(args) => {
            let (status, body) = call(ctx, "GET", "/guard").await?;
            if status != 200 {
                bail!("the server answered {status}: {body}");
            }
            let entries: Vec<Entry> = serde_json::from_str(&body).context("unexpected answer from the server")?;
            print_list(args.json, &entries, &["KIND", "ADDRESS OR USER", "FAILURES", "BANS", "BANNED UNTIL"], |e| {
                vec![
                    e.kind.clone(),
                    e.key.clone(),
                    e.failures.to_string(),
                    e.bans.to_string(),
                    e.banned_until.map(utc_time).unwrap_or_else(|| "-".into()),
                ]
            });
        }
        GuardCommand::Unban { address } => {
            let (status, body) = call(ctx, "DELETE", &format!("/guard/{address}")).await?;
            if status != 200 {
                bail!("the server answered {status}: {body}");
            }
            let answer: serde_json::Value = serde_json::from_str(&body).context("unexpected answer from the server")?;
            let failures = answer["failures"].as_u64().unwrap_or(0);
            if answer["was_banned"] != true {
                let forgotten = if failures > 0 {
                    format!("; its {failures} recent failure(s) were forgotten")
                } else {
                    String::new()
                };
                bail!(gatehouse_core::Error::refused(format!("{address} is not banned{forgotten}")));
            }
            eprintln!("lifted the ban of {address}");
        }
    }
    Ok(())
}
