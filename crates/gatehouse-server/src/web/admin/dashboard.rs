//! The landing page of the administration: what is happening at a glance. It counts the domains and mailboxes
//! this login reaches and charts the logins and failures of the last 24 hours or 7 days by service. It names
//! the usernames and addresses that fail most, the addresses the brute-force guard has banned (administrators
//! can lift a ban), each identity provider's last and next sync, and what needs attention. Every number is
//! counted by the database (or read from the guard's memory). The chart is SVG drawn here, so the page needs no
//! script.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use std::net::IpAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_core::Error;
use gatehouse_sources::dispatch::SourceSettings;
use gatehouse_sources::registry::SYNC_JOB;
use gatehouse_store::{AuthResult, FailureKey, MailboxSearch, Store, Window};

use super::{Chrome, Confirm, Ctx, Section, date_time, done, enter_form, not_found, segment};
use crate::AppState;
use crate::web::respond::unavailable;
use crate::web::session::Role;

/// The periods the page covers: the query value, its label, its length and its bucket length (seconds).
const PERIODS: [(&str, &str, i64, i64); 2] =
    [("24h", "last 24 hours", 86_400, 3_600), ("7d", "last 7 days", 604_800, 21_600)];

/// Rows of the "most failures" tables.
const TOP: u64 = 10;

#[derive(Template)]
#[template(path = "admin.html")]
pub(super) struct DashboardPage {
    notice: Option<String>,
    chrome: Chrome,
    /// Domains, mailboxes and inactive mailboxes within reach.
    domains: usize,
    mailboxes: u64,
    inactive: u64,
    /// The periods offered (query value, label, chosen).
    periods: Vec<(&'static str, &'static str, bool)>,
    period_label: &'static str,
    /// The chart (SVG drawn by [`chart`]).
    chart: String,
    /// Per service: name, successes, failures, temporary failures.
    services: Vec<(String, u64, u64, u64)>,
    users: Vec<(String, u64)>,
    addresses: Vec<(String, u64)>,
    bans: Vec<BanView>,
    providers: Vec<ProviderView>,
    warnings: Vec<String>,
    impersonating: Vec<String>,
}

/// A banned address.
pub(super) struct BanView {
    address: String,
    /// The address as a path segment.
    path: String,
    failures: u32,
    until: String,
}

/// An identity provider's syncs.
pub(super) struct ProviderView {
    name: String,
    path: String,
    last: String,
    status: String,
    next: String,
}

impl DashboardPage {
    /// Loads the page of `ctx`'s login for the period named in `query` (`24h` when none or an unknown one).
    pub(super) async fn load(
        state: &AppState,
        ctx: &Ctx,
        query: &HashMap<String, String>,
        notice: Option<String>,
    ) -> Result<DashboardPage, Error> {
        let wanted = query.get("period").map(String::as_str).unwrap_or("24h");
        let (period, period_label, length, bucket) =
            PERIODS.iter().copied().find(|(name, ..)| *name == wanted).unwrap_or(PERIODS[0]);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let end = now - now % bucket + bucket;
        let since = end - length;
        let store = &ctx.store;
        let count = |active: Option<bool>| {
            store.search_mailboxes(MailboxSearch { active, window: Window::new(0, 1), ..MailboxSearch::default() })
        };
        let domains = store.domain_names().await?.len();
        let mailboxes = count(None).await?.total;
        let inactive = count(Some(false)).await?.total;
        let activity = store.auth_activity(since, bucket).await?;
        let users = store.top_failures(FailureKey::Username, since, TOP).await?;
        let addresses = store.top_failures(FailureKey::RemoteIp, since, TOP).await?;

        let mut services: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        let slots = usize::try_from(length / bucket).unwrap_or(1);
        let mut buckets = vec![(0u64, 0u64, 0u64); slots];
        for entry in &activity {
            let totals = services.entry(entry.service.clone()).or_default();
            let slot = usize::try_from((entry.bucket - since) / bucket).ok().and_then(|i| buckets.get_mut(i));
            match entry.result {
                AuthResult::Success => {
                    totals.0 += entry.count;
                    if let Some(slot) = slot {
                        slot.0 += entry.count;
                    }
                }
                AuthResult::Failure => {
                    totals.1 += entry.count;
                    if let Some(slot) = slot {
                        slot.1 += entry.count;
                    }
                }
                AuthResult::TempFail => {
                    totals.2 += entry.count;
                    if let Some(slot) = slot {
                        slot.2 += entry.count;
                    }
                }
            }
        }

        let mut warnings = Vec::new();
        let (bans, providers) = match store.instance() {
            Ok(whole) => {
                let bans = bans(state);
                (bans, providers(whole, now, &mut warnings).await?)
            }
            Err(_) => (Vec::new(), Vec::new()),
        };
        if !bans.is_empty() {
            warnings.push(format!("{} address(es) banned by the brute-force guard.", bans.len()));
        }
        if state.web.public_url.as_ref().is_some_and(|url| url.scheme() == "http") {
            warnings.push("The web interface's public address uses plain http: passwords and sessions cross the network unencrypted.".into());
        }
        Ok(DashboardPage {
            notice,
            chrome: ctx.chrome(Section::Overview, "Overview"),
            domains,
            mailboxes,
            inactive,
            periods: PERIODS.iter().map(|(name, label, ..)| (*name, *label, *name == period)).collect(),
            period_label,
            chart: chart(&buckets, since, bucket),
            services: services.into_iter().map(|(name, (ok, failed, temp))| (name, ok, failed, temp)).collect(),
            users: users.into_iter().map(|f| (f.key, f.failures)).collect(),
            addresses: addresses.into_iter().map(|f| (f.key, f.failures)).collect(),
            bans,
            providers,
            warnings,
            impersonating: ctx
                .session
                .data
                .webmail
                .iter()
                .filter(|g| g.impersonation)
                .map(|g| g.mailbox.clone())
                .collect(),
        })
    }
}

/// `POST /admin/bans/{address}/unban`: after confirmation, lifts the guard's ban of an address (administrators
/// only: the guard protects every domain) and forgets its failures.
pub(super) async fn unban(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(address): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let (ctx, form) = enter_form(&state, &headers, Role::Admin, &body).await?;
    ctx.instance()?;
    let ip: IpAddr = address.parse().map_err(|_| not_found())?;
    if !form.confirmed() {
        let tracked =
            state.auth.guard_snapshot().into_iter().find(|entry| entry.kind == "ip" && entry.key == ip.to_string());
        let failures = tracked.as_ref().map_or(0, |entry| entry.failures);
        let banned = tracked
            .as_ref()
            .and_then(|entry| entry.banned_until)
            .map(|until| date_time(i64::try_from(until).unwrap_or(i64::MAX)));
        let mut effects = vec![match banned {
            Some(until) => format!("lift the ban of {ip} (it would last until {until} UTC)"),
            None => format!("{ip} is not banned now; nothing to lift"),
        }];
        effects.push(format!("forget its {failures} recent failure(s), so its next failures count from zero"));
        return Ok(Confirm {
            section: Section::Overview,
            title: format!("Unban {ip}?"),
            action: format!("/admin/bans/{}/unban", segment(&ip.to_string())),
            effects,
            button: "Unban",
            back: "/admin".into(),
        }
        .page(&ctx));
    }
    let unbanned = state.auth.unban(ip);
    let message = match unbanned {
        Some(u) if u.was_banned => {
            tracing::info!(address = %ip, actor = ctx.account.username, "ban lifted by an administrator");
            format!("The ban of {ip} was lifted.")
        }
        _ => format!("{ip} was not banned."),
    };
    if let Err(err) = state
        .store
        .record_audit(
            &ctx.actor(),
            "guard.unban",
            &ip.to_string(),
            serde_json::json!({ "was_banned": unbanned.is_some_and(|u| u.was_banned) }),
        )
        .await
    {
        return Err(unavailable(err));
    }
    done(&state, ctx, message, "/admin").await
}

/// The addresses the guard bans now.
fn bans(state: &AppState) -> Vec<BanView> {
    state
        .auth
        .guard_snapshot()
        .into_iter()
        .filter(|entry| entry.kind == "ip")
        .filter_map(|entry| {
            let until = entry.banned_until?;
            Some(BanView {
                path: segment(&entry.key),
                address: entry.key,
                failures: entry.failures,
                until: date_time(i64::try_from(until).unwrap_or(i64::MAX)),
            })
        })
        .collect()
}

/// Each identity provider's last sync, its outcome and when the next one is due; a warning for a provider whose
/// last sync did not succeed.
async fn providers(store: &Store, now: i64, warnings: &mut Vec<String>) -> Result<Vec<ProviderView>, Error> {
    let mut views = Vec::new();
    for provider in store.list_identity_providers().await? {
        let last = store.last_finished_job(SYNC_JOB, &provider.name).await?;
        let settings = SourceSettings::parse(provider.kind, &provider.settings).ok().map(|s| s.provisioning());
        let next = match (&settings, provider.active) {
            (_, false) => "never (inactive)".to_string(),
            (Some(settings), true) if settings.sync_enabled() => {
                let interval = i64::try_from(settings.sync_interval_minutes * 60).unwrap_or(i64::MAX);
                match last.as_ref().and_then(|run| run.finished_at) {
                    Some(finished) if finished + interval > now => date_time(finished + interval),
                    _ => "now".to_string(),
                }
            }
            _ => "never (periodic sync off)".to_string(),
        };
        let status = last.as_ref().map(|run| run.status.clone()).unwrap_or_else(|| "none yet".into());
        if let Some(run) = &last
            && run.status != "ok"
        {
            warnings.push(format!("The last sync of {} ended as '{}'.", provider.name, run.status));
        }
        views.push(ProviderView {
            path: segment(&provider.name),
            name: provider.name,
            last: last
                .map(|run| date_time(run.finished_at.unwrap_or(run.started_at)))
                .unwrap_or_else(|| "never".into()),
            status,
            next,
        });
    }
    Ok(views)
}

/// Successes, failures and temporary failures per bucket as stacked bars, with the first, middle and last
/// bucket's time under them (UTC).
fn chart(buckets: &[(u64, u64, u64)], since: i64, bucket: i64) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 160.0;
    const TOP_MARGIN: f64 = 14.0;
    let highest = buckets.iter().map(|(a, b, c)| a + b + c).max().unwrap_or(0).max(1);
    let slot = WIDTH / buckets.len().max(1) as f64;
    let scale = (HEIGHT - TOP_MARGIN) / highest as f64;
    let mut svg = format!(
        "<svg id=\"activity-chart\" viewBox=\"0 0 {WIDTH} {}\" width=\"100%\" role=\"img\" aria-labelledby=\"chart-title\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">Logins per {} (blue: allowed, red: refused, \
         yellow: temporary failures); the most in one bar: {highest}</title>",
        HEIGHT + 18.0,
        if bucket == 3_600 { "hour".to_string() } else { format!("{} hours", bucket / 3_600) },
    );
    let _ = write!(svg, "<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\" stroke=\"#57606a\"/>");
    let _ = write!(svg, "<text x=\"2\" y=\"10\" font-size=\"10\" fill=\"#57606a\">{highest}</text>");
    for (i, (ok, failed, temp)) in buckets.iter().enumerate() {
        let x = i as f64 * slot + slot * 0.1;
        let mut y = HEIGHT;
        for (count, colour) in [(ok, "#1f6feb"), (failed, "#cf222e"), (temp, "#d4a72c")] {
            if *count == 0 {
                continue;
            }
            let h = *count as f64 * scale;
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>",
                slot * 0.8
            );
        }
    }
    let labels = [0, buckets.len() / 2, buckets.len().saturating_sub(1)];
    for (n, i) in labels.into_iter().enumerate() {
        let at = since + i as i64 * bucket;
        let anchor = ["start", "middle", "end"][n];
        let x = match n {
            0 => 0.0,
            1 => i as f64 * slot + slot / 2.0,
            _ => WIDTH,
        };
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\" fill=\"#1d232b\">{} UTC</text>",
            HEIGHT + 14.0,
            date_time(at)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_to_the_busiest_bucket() {
        let svg = chart(&[(0, 0, 0), (30, 10, 0), (5, 0, 1)], 1_800_000_000, 3_600);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 4, "one bar part per non-zero count: {svg}");
        assert!(svg.contains("the most in one bar: 40"), "{svg}");
        assert!(svg.contains("height=\"109.5\""), "30 of 40 on a 146-unit scale: {svg}");
        let empty = chart(&[(0, 0, 0); 24], 1_800_000_000, 3_600);
        assert_eq!(empty.matches("<rect").count(), 0);
    }
}
