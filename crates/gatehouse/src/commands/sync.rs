//! `gatehouse sync [--idp NAME] [--dry-run]`: runs identity-provider syncs now, with a progress bar on a
//! terminal and a summary per provider. The runs are the same the server starts by itself (one per provider
//! at a time across processes, each in the job log).

use std::time::Duration;

use anyhow::bail;
use gatehouse_core::Error;
use gatehouse_sources::SourceRegistry;
use gatehouse_sources::registry::SyncProgress;
use indicatif::{ProgressBar, ProgressStyle};

use super::CommandContext;
use crate::cli::SyncArgs;

/// A progress bar: a spinner while entries are read, then a bar over the changes.
struct Bar(ProgressBar);

impl SyncProgress for Bar {
    fn reading(&self, entries: usize) {
        self.0.set_message(format!("reading entries: {entries}"));
    }

    fn applying(&self, done: usize, total: usize) {
        if self.0.length() != Some(total as u64) {
            self.0.set_length(total as u64);
            self.0.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta} left)")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            self.0.set_message("applying changes");
        }
        self.0.set_position(done as u64);
    }
}

/// Runs `sync`.
pub async fn run(ctx: &CommandContext, args: SyncArgs) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    let names = match args.idp {
        Some(name) => vec![name],
        None => store.list_identity_providers().await?.into_iter().filter(|p| p.active).map(|p| p.name).collect(),
    };
    if names.is_empty() {
        bail!("there is no active identity provider to synchronise");
    }
    let registry = SourceRegistry::new(store.clone());
    let mut reports = Vec::new();
    let mut errors: Vec<(String, Error)> = Vec::new();
    for name in names {
        // Hidden by indicatif when stderr is not a terminal (cron, CI).
        let bar = ProgressBar::new_spinner();
        bar.set_message(format!("{name}: connecting"));
        bar.enable_steady_tick(Duration::from_millis(120));
        let outcome = registry.sync(&name, args.dry_run, &Bar(bar.clone())).await;
        bar.finish_and_clear();
        match outcome {
            Ok(report) => {
                if !args.json {
                    outln!("{}", report.summary());
                    for skipped in &report.skipped_examples {
                        outln!("  skipped {}: {}", skipped.address, skipped.reason);
                    }
                    if report.skipped > report.skipped_examples.len() {
                        outln!(
                            "  … and {} more (see `gatehouse log jobs --json`)",
                            report.skipped - report.skipped_examples.len()
                        );
                    }
                }
                reports.push(report);
            }
            Err(err) => errors.push((name, err)),
        }
    }
    store.close().await;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&reports)?);
    }
    // One line for all failures; the exit code follows the first one.
    let message = errors.iter().map(|(name, err)| format!("{name}: {err}")).collect::<Vec<_>>().join("; ");
    match errors.into_iter().next() {
        Some((_, first)) => Err(anyhow::Error::from(first).context(message)),
        None => Ok(()),
    }
}
