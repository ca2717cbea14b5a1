//! The administration pages in a real browser (headless Chromium behind real nginx with the generated
//! configuration) against a seeded database of a few thousand mailboxes and auth-log rows: the overview with its
//! chart, failures and bans; searching for a mailbox, paging through the list, sorting by quota; opening a
//! mailbox and revoking its app password through the confirmation page; lifting a ban the same way; the auth
//! log filtered by client address and paged oldest first. Every page
//! visited passes axe-core's accessibility check (no serious or critical violation), and screenshots at 390 and
//! 1 440 CSS pixels go to `<target>/tmp/admin-ui-screenshots/` (kept as CI artifacts).

mod support;

use std::path::PathBuf;

use gatehouse_core::{DatabaseUrl, DomainName, MailboxAddress, ProtocolSet, Service};
use gatehouse_store::{Actor, ActorRole, AuthResult, NewAuthLogEntry, NewDomain, NewMailbox, Store};
use gatehouse_testkit::browser::Browser;
use gatehouse_testkit::browser::fantoccini::Locator;
use gatehouse_testkit::free_port;
use serde_json::Value;
use support::{Server, cli_ok};

/// Mailboxes seeded per domain.
const PER_DOMAIN: usize = 1_000;
const DOMAINS: [&str; 3] = ["example.org", "shop.example", "long-department-name.university.example"];

/// Seeds the domains, `PER_DOMAIN` mailboxes in each (quotas 0 to 9 999 MiB, every tenth inactive) and a day of
/// auth-log rows, straight through the store (what the CLI does, without a process per mailbox).
async fn seed(url: &str) {
    let store = Store::open(&DatabaseUrl::new(url)).await.unwrap();
    let actor = Actor { name: "seed".into(), role: ActorRole::Cli };
    for (d, name) in DOMAINS.iter().enumerate() {
        store.create_domain(&actor, NewDomain::new(DomainName::parse(name).unwrap())).await.unwrap();
        let news = (0..PER_DOMAIN)
            .map(|i| {
                let mut new = NewMailbox::new(MailboxAddress::parse(&format!("user{i:04}@{name}")).unwrap());
                new.display_name = Some(format!("Person {i} of a rather long department name {d}"));
                new.quota_mib = Some(((i * 7_919 + d * 13) % 10_000) as i64);
                new.active = Some(i % 10 != 3);
                if i % 2 == 0 {
                    new.protocols = Some([Service::Imap, Service::Smtp, Service::Sogo].into_iter().collect());
                } else {
                    new.protocols = Some(ProtocolSet::ALL);
                }
                new
            })
            .collect();
        for outcome in store.create_mailboxes(&actor, news).await.unwrap() {
            outcome.unwrap();
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let rows = (0..5_000)
        .map(|i: i64| {
            let failed = i % 7 == 0;
            let entry = NewAuthLogEntry {
                service: ["imap", "smtp", "sogo", "web"][(i % 4) as usize].into(),
                username: format!("user{:04}@example.org", i % 50),
                master_user: None,
                remote_ip: Some(format!("192.0.2.{}", i % 20)),
                result: if failed { AuthResult::Failure } else { AuthResult::Success },
                reason: if failed { "wrong password".into() } else { "ok".into() },
                app_password_id: None,
            };
            (now - (i * 17) % 86_000, entry)
        })
        .collect();
    store.record_auth_batch(rows).await.unwrap();
}

/// Screenshots at both widths, numbered in the order taken.
struct Shots {
    dir: PathBuf,
    count: usize,
}

impl Shots {
    fn new() -> Shots {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-ui-screenshots");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Shots { dir, count: 0 }
    }

    /// The whole page at 390 and at 1 440 pixels, after checking that it fits 360 pixels without scrolling
    /// sideways; the window is left at 1 440.
    async fn take(&mut self, browser: &Browser, name: &str) {
        self.count += 1;
        browser.set_viewport(360, 800).await;
        let widths = browser
            .client()
            .execute("return [document.documentElement.scrollWidth, window.innerWidth]", vec![])
            .await
            .unwrap();
        let widths: Vec<u64> = serde_json::from_value(widths).unwrap();
        assert!(widths[0] <= widths[1], "{name} is wider than a 360-pixel screen: {widths:?}");
        for width in [390, 1440] {
            browser.set_viewport(width, 900).await;
            browser.full_page_screenshot(self.dir.join(format!("{:02}-{name}-{width}.png", self.count))).await;
        }
    }
}

/// Fails with axe-core's findings if the page has a serious or critical accessibility violation.
async fn accessible(browser: &Browser, page: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{page}: {}", serde_json::to_string_pretty(&Value::from(violations)).unwrap());
}

/// The texts of column `column` (1-based) of the mailbox table.
async fn column(browser: &Browser, column: usize) -> Vec<String> {
    let cells =
        browser.client().find_all(Locator::Css(&format!("#mailboxes tbody tr td:nth-child({column})"))).await.unwrap();
    let mut texts = Vec::new();
    for cell in cells {
        texts.push(cell.text().await.unwrap());
    }
    texts
}

/// A quota as shown ("unlimited", "512 MiB", "2 GiB", "1.5 GiB") in MiB, for comparing the order.
fn quota_mib(text: &str) -> f64 {
    let text = text.trim();
    if text == "unlimited" {
        return 0.0;
    }
    let (number, unit) = text.split_once(' ').unwrap_or_else(|| panic!("a quota: {text}"));
    let number: f64 = number.parse().unwrap();
    if unit == "GiB" { number * 1024.0 } else { number }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_search_page_sort_and_confirm_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    seed(&format!("sqlite://{}/data/gatehouse.db", dir.path().display())).await;
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["app-password", "add", "user0042@shop.example", "--name", "tablet", "--protocols", "imap,smtp"], "");

    let port = free_port();
    let base = format!("http://localhost:{port}");
    let server = Server::start_with_env(
        dir.path(),
        db,
        Some("admin-pw"),
        &[("GATEHOUSE_WEB__PUBLIC_URL", &base), ("GATEHOUSE_GUARD__MAX_DELAY_MS", "0")],
    );
    let locations = support::nginx_locations(dir.path(), db, &server, "http://127.0.0.1:9");
    let Some(_nginx) = support::start_nginx(port, &locations) else { return };
    let Some(browser) = Browser::start().await else { return };
    let mut shots = Shots::new();

    // A client that fails often enough to be banned (through Dovecot's endpoint, as Dovecot would ask).
    let body = r#"{"user":"user0001@example.org","password":"wrong","service":"imap","remote_ip":"203.0.113.50"}"#;
    for _ in 0..20 {
        server.post_internal("/dovecot/auth", body).expect("the server answers");
    }

    // The overview.
    browser.set_viewport(1440, 900).await;
    browser.goto(&format!("{base}/admin")).await;
    browser.fill("#username", "admin").await;
    browser.fill("#password", "admin-pw").await;
    browser.click("#login button[type=submit]").await;
    let counts = browser.wait_text("#counts", "3000 mailbox(es)").await;
    assert!(counts.contains("3 domain(s)") && counts.contains("300 inactive"), "{counts}");
    browser.find("#activity-chart").await;
    let services = browser.text("#services").await;
    assert!(services.contains("imap") && services.contains("sogo"), "{services}");
    let users = browser.text("#failing-users").await;
    assert!(users.contains("user0001@example.org"), "{users}");
    let bans = browser.text("#bans").await;
    assert!(bans.contains("203.0.113.50"), "the banned client is listed: {bans}");
    accessible(&browser, "overview").await;
    shots.take(&browser, "overview").await;

    // The domains: searched, with each one's mailboxes counted and quotas readable.
    browser.click("#admin-nav a[href='/admin/domains']").await;
    browser.wait_text("#pager-status", "1–3 of 3").await;
    browser.fill("#filter-text", "UNIVERSITY").await;
    browser.click("#domain-filter button").await;
    browser.wait_text("#pager-status", "1–1 of 1").await;
    let row = browser.text("#domains tbody tr").await;
    assert!(row.contains("long-department-name.university.example") && row.contains("1000"), "{row}");
    assert!(row.contains("GiB used") || row.contains("GiB of"), "readable quotas: {row}");
    accessible(&browser, "domains").await;

    // The mailbox list: one page of 50 out of 3 000, counted.
    browser.click("#admin-nav a[href='/admin/mailboxes']").await;
    let status = browser.wait_text("#pager-status", "of 3000").await;
    assert!(status.starts_with("1–50 of 3000"), "{status}");
    assert_eq!(column(&browser, 1).await.len(), 50);
    assert_eq!(
        browser.find("#admin-nav a[aria-current=page]").await.text().await.unwrap(),
        "Mailboxes",
        "the navigation marks the page"
    );
    accessible(&browser, "mailbox list").await;
    shots.take(&browser, "mailboxes").await;

    // Paging: the next page, then the last.
    browser.click("#page-next").await;
    browser.wait_text("#pager-status", "51–100 of 3000").await;
    browser.click("#page-last").await;
    browser.wait_text("#pager-status", "2951–3000 of 3000 (page 60 of 60)").await;
    assert!(!browser.exists("#page-next").await, "no next page after the last");

    // Sorting by quota, both ways (the page's numbers, read back as MiB, are in order).
    browser.click("th a[href*='sort=quota']").await;
    browser.wait_text("#pager-status", "1–50 of 3000").await;
    let ascending: Vec<f64> = column(&browser, 5).await.iter().map(|q| quota_mib(q)).collect();
    assert!(ascending.windows(2).all(|w| w[0] <= w[1]), "{ascending:?}");
    assert_eq!(column(&browser, 5).await[0], "unlimited");
    browser.click("th a[href*='sort=quota']").await;
    browser.wait_text("th[aria-sort=descending]", "Quota").await;
    let descending: Vec<f64> = column(&browser, 5).await.iter().map(|q| quota_mib(q)).collect();
    assert!(descending.windows(2).all(|w| w[0] >= w[1]), "{descending:?}");
    assert!(descending[0] > 9_000.0, "{descending:?}");

    // Searching: part of an address, then a display name, with a domain and state filter.
    browser.fill("#filter-text", "user0042").await;
    browser.click("#mailbox-filter button").await;
    browser.wait_text("#pager-status", "1–3 of 3").await;
    browser.fill("#filter-text", "person 42 of").await;
    browser.find("#filter-domain option[value='shop.example']").await.click().await.unwrap();
    browser.click("#mailbox-filter button").await;
    browser.wait_text("#pager-status", "1–1 of 1").await;
    assert_eq!(column(&browser, 1).await, ["user0042@shop.example"]);
    shots.take(&browser, "search").await;

    // Opening it and revoking its app password through the confirmation page.
    browser.click("#mailboxes tbody a[href$='/mailboxes/user0042%40shop.example']").await;
    let apps = browser.wait_text("#app-passwords", "tablet").await;
    assert!(apps.contains("IMAP, SMTP"), "protocols as the forms name them: {apps}");
    accessible(&browser, "mailbox").await;
    shots.take(&browser, "mailbox").await;
    browser.click("#app-passwords button[aria-label='Revoke tablet']").await;
    let effects = browser.wait_text("#effects", "tablet").await;
    assert!(effects.contains("refused from its next login"), "{effects}");
    assert_eq!(browser.text("#page-title").await, "Revoke app password \"tablet\" of user0042@shop.example?");
    accessible(&browser, "confirmation").await;
    shots.take(&browser, "confirm-revoke").await;
    let listed = run(&["app-password", "list", "user0042@shop.example", "--json"], "");
    assert!(listed.contains("\"active\": true") || listed.contains("\"active\":true"), "nothing revoked yet: {listed}");
    browser.click("#confirm").await;
    browser.wait_text("#notice", "revoked").await;
    let listed = run(&["app-password", "list", "user0042@shop.example", "--json"], "");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["active"], false, "{listed}");

    // Lifting the ban from the overview, confirmed on its own page.
    browser.click("#admin-nav a[href='/admin']").await;
    browser.click("#bans button[aria-label='Unban 203.0.113.50']").await;
    let effects = browser.wait_text("#effects", "lift the ban of 203.0.113.50").await;
    assert!(effects.contains("recent failure"), "{effects}");
    browser.click("#confirm").await;
    browser.wait_text("#notice", "The ban of 203.0.113.50 was lifted.").await;
    let bans = browser.text("#bans").await;
    assert!(bans.contains("bans no address now"), "{bans}");
    let audit = run(&["log", "audit", "--json"], "");
    assert!(audit.contains("guard.unban"), "the unban is audited: {audit}");

    // The auth log, a page at a time: the banned client's failures, then everything oldest first.
    browser.goto(&format!("{base}/admin/logs/auth?from=203.0.113.50")).await;
    let status = browser.wait_text("#pager-status", "of 20").await;
    assert!(status.starts_with("1–20 of 20"), "{status}");
    assert!(browser.text("#log").await.contains("refused"));
    browser.click("#admin-nav a[href='/admin/logs/auth']").await;
    let status = browser.wait_text("#pager-status", "1–50 of ").await;
    let total: u64 = status.split(" of ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(total > 5_020, "the seeded rows and the logins since: {status}");
    browser.click("th a[href*='dir=asc']").await;
    browser.wait_text("th[aria-sort=ascending]", "Time").await;
    // Times are shown in the browser's time zone, the UTC value on hover (the page's own script).
    let first_time = browser.find("#log time").await;
    let title = first_time.attr("title").await.unwrap().unwrap_or_default();
    assert!(title.ends_with(" UTC") && title.len() == 20, "{title}");
    assert!(!first_time.text().await.unwrap().ends_with("UTC"), "rewritten to local time");
    accessible(&browser, "auth log").await;
    shots.take(&browser, "auth-log").await;
    browser.close().await;
}
