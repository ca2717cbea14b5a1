//! `gatehouse log auth|audit|jobs`: the three logs, newest first.

use gatehouse_store::LogFilter;

use super::CommandContext;
use crate::cli::LogArgs;
use crate::output::{print_list, utc_time, yes_no};

/// Runs `log`.
pub async fn run(ctx: &CommandContext, args: LogArgs) -> anyhow::Result<()> {
    let store = ctx.store().await?;
    let filter = LogFilter { subject: args.subject, limit: Some(args.limit), ..LogFilter::default() };
    let json = args.list.json;
    match args.which.as_str() {
        "auth" => {
            let entries = store.auth_log(&filter).await?;
            print_list(
                json,
                &entries,
                &["TIME", "SERVICE", "USER", "MASTER", "REMOTE IP", "RESULT", "APP PW", "REASON"],
                |e| {
                    vec![
                        utc_time(e.created_at),
                        e.service.clone(),
                        e.username.clone(),
                        e.master_user.clone().unwrap_or_else(|| "-".into()),
                        e.remote_ip.clone().unwrap_or_else(|| "-".into()),
                        format!("{:?}", e.result).to_lowercase(),
                        yes_no(e.via_app_password),
                        e.reason.clone(),
                    ]
                },
            );
        }
        "audit" => {
            let entries = store.audit_log(&filter).await?;
            print_list(json, &entries, &["TIME", "ACTOR", "ROLE", "ACTION", "TARGET", "DETAILS"], |e| {
                vec![
                    utc_time(e.created_at),
                    e.actor.clone(),
                    e.actor_role.clone(),
                    e.action.clone(),
                    e.target.clone(),
                    e.details.to_string(),
                ]
            });
        }
        _ => {
            let entries = store.job_log(&filter).await?;
            print_list(json, &entries, &["STARTED", "FINISHED", "JOB", "PROVIDER", "STATUS", "SUMMARY"], |e| {
                vec![
                    utc_time(e.started_at),
                    e.finished_at.map(utc_time).unwrap_or_else(|| "-".into()),
                    e.job.clone(),
                    e.provider.clone().unwrap_or_else(|| "-".into()),
                    e.status.clone(),
                    e.summary.to_string(),
                ]
            });
        }
    }
    store.close().await;
    Ok(())
}
