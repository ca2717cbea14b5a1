//! The administration pages over HTTP, like a browser without JavaScript: CRUD of domains, templates,
//! mailboxes, administrators, master users and app links through the forms (checked against the store through
//! the CLI), the store's limits shown as notices, the LDAP identity-provider form against a real slapd, the logs
//! with filters; the tenant boundary of domain administrators and CSRF on every form, looped over every route;
//! and no password hash or identity-provider secret in any page.

mod support;

use gatehouse_testkit::slapd::Slapd;
use gatehouse_testkit::{Engine, TestDatabase};
use serde_json::Value;
use support::http::{Client, Response};
use support::{Server, cli_ok, eventually};

/// A logged-in browser that remembers every page it saw.
struct Browser {
    client: Client,
    port: u16,
    csrf: String,
    seen: Vec<String>,
}

impl Browser {
    fn login(port: u16, page: &str, username: &str, password: &str) -> Browser {
        let mut client = Client::default();
        let login = client.login(port, page, username, password);
        assert_eq!(login.status, 303, "{username} logs in at {page}: {}", login.body);
        let home = client.get(port, page);
        assert_eq!(home.status, 200, "{}", home.body);
        let csrf = home.form_value("csrf").expect("a CSRF token");
        Browser { client, port, csrf, seen: vec![home.body] }
    }

    fn get(&mut self, path: &str) -> Response {
        let response = self.client.get(self.port, path);
        self.seen.push(response.body.clone());
        response
    }

    /// Posts a form with the session's token.
    fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> Response {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(pairs);
        let response = self.client.post(self.port, path, &all);
        self.seen.push(response.body.clone());
        response
    }

    /// Posts a form, expects the redirect of POST-redirect-GET, and returns the page it leads to.
    fn submit(&mut self, path: &str, pairs: &[(&str, &str)]) -> Response {
        let response = self.post(path, pairs);
        assert_eq!(response.status, 303, "POST {path}: {}", response.body);
        let to = response.header("location").expect("a location").to_string();
        assert!(to.starts_with("/admin/") || to.starts_with("/domainadmin/"), "a fixed page: {to}");
        let page = self.get(&to);
        assert_eq!(page.status, 200, "GET {to}: {}", page.body);
        page
    }
}

/// The field a confirmation page adds to the form it posts again.
const CONFIRMED: &[(&str, &str)] = &[("confirmed", "yes")];

/// The page's notice (HTML-escaped as shown).
fn notice(page: &Response) -> String {
    page.body.split("id=\"notice\">").nth(1).and_then(|rest| rest.split('<').next()).unwrap_or("").to_string()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

/// The entry of a JSON list whose `key` is `value`.
fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array().unwrap().iter().find(|item| item[key] == value)
}

fn protocols(mailbox: &Value) -> String {
    mailbox["protocols"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect::<Vec<_>>().join(",")
}

fn assert_no_secrets(pages: &[String], secrets: &[&str]) {
    for page in pages {
        for marker in
            ["$2y$", "{BLF-CRYPT}", "{SSHA", "{ARGON2", "$argon2", "{SHA512-CRYPT}", "$6$"].iter().chain(secrets)
        {
            assert!(!page.contains(marker), "a page shows {marker}: {page}");
        }
    }
}

/// Every administrator POST route (objects need not exist: the token is checked first).
const ADMIN_POSTS: &[&str] = &[
    "/admin/domains",
    "/admin/domains/example.org",
    "/admin/domains/example.org/remove",
    "/admin/templates",
    "/admin/templates/basic",
    "/admin/templates/basic/remove",
    "/admin/mailboxes",
    "/admin/mailboxes/alice@example.org",
    "/admin/mailboxes/alice@example.org/password",
    "/admin/mailboxes/alice@example.org/remove",
    "/admin/mailboxes/alice@example.org/app-passwords/1/revoke",
    "/admin/admins",
    "/admin/admins/admin/remove",
    "/admin/domain-admins",
    "/admin/domain-admins/helper",
    "/admin/domain-admins/helper/remove",
    "/admin/master-users",
    "/admin/master-users/master/remove",
    "/admin/app-links",
    "/admin/app-links/1",
    "/admin/app-links/1/remove",
    "/admin/api-keys",
    "/admin/api-keys/1/revoke",
    "/admin/bans/192.0.2.1/unban",
    "/admin/mailboxes/alice@example.org/sessions/end",
    "/admin/mailboxes/alice@example.org/sessions/0123456789abcdef/end",
    "/admin/identity-providers",
    "/admin/identity-providers/corp",
    "/admin/identity-providers/corp/mappings",
    "/admin/identity-providers/corp/test",
    "/admin/identity-providers/corp/sync",
    "/admin/identity-providers/corp/dry-run",
    "/admin/identity-providers/corp/remove",
];

/// Every administrator page (the objects are created by the test before these are visited).
const ADMIN_GETS: &[&str] = &[
    "/admin/domains",
    "/admin/domains/example.org",
    "/admin/templates",
    "/admin/templates/basic",
    "/admin/mailboxes",
    "/admin/mailboxes?domain=example.org",
    "/admin/mailboxes/alice@example.org",
    "/admin/admins",
    "/admin/domain-admins/helper",
    "/admin/master-users",
    "/admin/app-links",
    "/admin/app-links/1",
    "/admin/api-keys",
    "/admin/identity-providers",
    "/admin/identity-providers/corp",
    "/admin/logs/auth",
    "/admin/logs/audit",
    "/admin/logs/jobs",
];

/// The domain administrator's POST routes, on its own domain's objects.
const DOMAIN_ADMIN_POSTS: &[&str] = &[
    "/domainadmin/domains/example.org",
    "/domainadmin/mailboxes",
    "/domainadmin/mailboxes/alice@example.org",
    "/domainadmin/mailboxes/alice@example.org/password",
    "/domainadmin/mailboxes/alice@example.org/remove",
    "/domainadmin/mailboxes/alice@example.org/app-passwords/1/revoke",
    "/domainadmin/mailboxes/alice@example.org/sessions/end",
];

#[test]
fn admin_pages_manage_the_store_within_its_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["domain", "add", "other.org"], "");
    run(&["mailbox", "add", "alice@example.org", "--password-stdin"], "alicepw12\n");
    run(&["mailbox", "add", "bob@other.org", "--password-stdin"], "bobpw1234\n");
    run(&["domain-admin", "add", "helper", "--domains", "example.org", "--password-stdin"], "helperpw\n");
    let server = Server::start_with_env(
        dir.path(),
        db,
        Some("admin-pw"),
        &[("GATEHOUSE_GUARD__MAX_DELAY_MS", "0"), ("ALLOW_ADMIN_EMAIL_LOGIN", "yes")],
    );
    let port = server.public;
    let mut admin = Browser::login(port, "/admin", "admin", "admin-pw");
    let home = admin.get("/admin");
    assert!(home.body.contains("href=\"/admin/identity-providers\""), "{}", home.body);
    // The overview: counts, the chart of the last 24 hours, and the current page marked in the navigation.
    assert!(home.body.contains(">2 domain(s)</a>") && home.body.contains(">2 mailbox(es)</a>"), "{}", home.body);
    assert!(home.body.contains(r#"<svg id="activity-chart""#), "{}", home.body);
    assert!(home.body.contains(r#"<a href="/admin" aria-current="page">Overview</a>"#), "{}", home.body);
    let slash = admin.get("/admin/");
    assert_eq!((slash.status, slash.header("location")), (303, Some("/admin")), "/admin/ leads to the overview");

    // Domains.
    let page = admin.submit(
        "/admin/domains",
        &[
            ("name", "Shop.Example"),
            ("description", "The shop"),
            ("active", "on"),
            ("max_mailboxes", "1"),
            ("default_quota_mib", "50"),
            ("max_quota_mib", "100"),
            ("total_quota_mib", "150"),
        ],
    );
    assert!(notice(&page).contains("Domain shop.example added"), "{}", page.body);
    assert!(page.body.contains("The shop"));
    let bad = admin.submit("/admin/domains", &[("name", "not a domain")]);
    assert!(notice(&bad).starts_with("Not saved"), "{}", bad.body);
    let page = admin.submit(
        "/admin/domains/shop.example",
        &[
            ("description", "The web shop"),
            ("active", "on"),
            ("max_mailboxes", "1"),
            ("default_quota_mib", "50"),
            ("max_quota_mib", "100"),
            ("total_quota_mib", "200"),
        ],
    );
    assert!(notice(&page).contains("saved"), "{}", page.body);
    let domains = json(&run(&["domain", "list", "--json"], ""));
    let shop = find(&domains, "name", "shop.example").expect("the domain exists");
    assert_eq!((shop["description"].as_str(), shop["total_quota_mib"].as_i64()), (Some("The web shop"), Some(200)));
    assert_eq!((shop["max_mailboxes"].as_i64(), shop["max_quota_mib"].as_i64()), (Some(1), Some(100)));

    // Templates.
    let page = admin.submit(
        "/admin/templates",
        &[("name", "basic"), ("quota_mib", "10"), ("protocol", "imap"), ("protocol", "smtp"), ("active", "on")],
    );
    assert!(notice(&page).contains("Template basic added"), "{}", page.body);
    admin.submit("/admin/templates", &[("name", "spare"), ("quota_mib", "1"), ("protocol", "imap")]);
    let page = admin.submit(
        "/admin/templates/basic",
        &[("quota_mib", "20"), ("protocol", "imap"), ("protocol", "sogo"), ("active", "on"), ("attributes", "{}")],
    );
    assert!(notice(&page).contains("saved"), "{}", page.body);
    let bad = admin.submit("/admin/templates/basic", &[("quota_mib", "20"), ("attributes", "[1]")]);
    assert!(notice(&bad).contains("Not saved"), "{}", bad.body);
    admin.submit("/admin/templates/spare/remove", CONFIRMED);
    let templates = json(&run(&["template", "list", "--json"], ""));
    let basic = find(&templates, "name", "basic").expect("the template exists");
    assert_eq!((basic["quota_mib"].as_i64(), protocols(basic).as_str()), (Some(20), "imap,sogo"));
    assert!(find(&templates, "name", "spare").is_none(), "removed");

    // Mailboxes, and the domain's rules as notices with nothing written.
    let page = admin.submit(
        "/admin/mailboxes",
        &[
            ("local_part", "carol"),
            ("domain", "shop.example"),
            ("display_name", "Carol"),
            ("password", "carolpw12"),
            ("repeat", "carolpw12"),
            ("auth_source", "local"),
            ("template", ""),
            ("quota_mib", "60"),
            ("protocol", "imap"),
            ("protocol", "sogo"),
            ("active", "on"),
        ],
    );
    assert!(notice(&page).contains("Mailbox carol@shop.example added"), "{}", page.body);
    let before = run(&["mailbox", "list", "--json"], "");
    let full = admin.submit(
        "/admin/mailboxes",
        &[("local_part", "dave"), ("domain", "shop.example"), ("quota_mib", "10"), ("active", "on")],
    );
    assert!(notice(&full).contains("already has 1 of its 1 allowed mailboxes"), "{}", full.body);
    let over = admin.submit(
        "/admin/mailboxes/carol@shop.example",
        &[
            ("display_name", "Carol"),
            ("quota_mib", "500"),
            ("protocol", "imap"),
            ("protocol", "sogo"),
            ("active", "on"),
        ],
    );
    assert!(notice(&over).contains("exceeds domain shop.example"), "{}", over.body);
    let differ = admin.submit(
        "/admin/mailboxes",
        &[("local_part", "x"), ("domain", "example.org"), ("password", "a"), ("repeat", "b")],
    );
    assert!(notice(&differ).contains("differ"), "{}", differ.body);
    assert_eq!(run(&["mailbox", "list", "--json"], ""), before, "refused changes write nothing");
    let mailboxes = json(&before);
    let carol = find(&mailboxes, "address", "carol@shop.example").unwrap();
    assert_eq!((carol["quota_mib"].as_i64(), protocols(carol).as_str()), (Some(60), "imap,sogo"));
    assert_eq!(carol["display_name"], "Carol");

    let page = admin.get("/admin/mailboxes/carol%40shop.example");
    assert!(page.body.contains("Webmail as this user"), "impersonation is allowed: {}", page.body);
    let page = admin.submit(
        "/admin/mailboxes/carol@shop.example",
        &[
            ("display_name", "Carol C."),
            ("auth_source", "local"),
            ("template", ""),
            ("quota_mib", "80"),
            ("protocol", "imap"),
            ("protocol", "pop3"),
            ("protocol", "sogo"),
            ("active", "on"),
            ("force_totp", "on"),
        ],
    );
    assert!(notice(&page).contains("saved"), "{}", page.body);
    let mailboxes = json(&run(&["mailbox", "list", "--json"], ""));
    let carol = find(&mailboxes, "address", "carol@shop.example").unwrap();
    assert_eq!((carol["quota_mib"].as_i64(), protocols(carol).as_str()), (Some(80), "imap,pop3,sogo"));
    assert_eq!((carol["display_name"].as_str(), carol["force_totp"].as_bool()), (Some("Carol C."), Some(true)));
    admin.submit(
        "/admin/mailboxes/carol@shop.example",
        &[
            ("display_name", "Carol C."),
            ("quota_mib", "80"),
            ("protocol", "imap"),
            ("protocol", "sogo"),
            ("active", "on"),
        ],
    );

    // Setting the password ends the mailbox's web sessions; so does deactivating it.
    let mut carol_web = Client::default();
    assert_eq!(carol_web.login(port, "/", "carol@shop.example", "carolpw12").status, 303);
    assert_eq!(carol_web.get(port, "/").status, 200);
    let page = admin.submit(
        "/admin/mailboxes/carol@shop.example/password",
        &[("password", "carolnew12"), ("repeat", "carolnew12")],
    );
    assert!(notice(&page).contains("its web sessions were ended"), "{}", page.body);
    assert!(carol_web.get(port, "/").body.contains("id=\"login\""), "the session ended");
    let mut carol_web = Client::default();
    assert_eq!(carol_web.login(port, "/", "carol@shop.example", "carolpw12").status, 401);
    assert_eq!(carol_web.login(port, "/", "carol@shop.example", "carolnew12").status, 303);
    // Deactivating asks first, carrying the form's other fields to the confirmation.
    let fields = [("display_name", "Carol C."), ("quota_mib", "80"), ("protocol", "imap"), ("protocol", "sogo")];
    let ask = admin.post("/admin/mailboxes/carol@shop.example", &fields);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(
        ask.body.contains("Deactivate mailbox carol@shop.example?") && ask.body.contains("end its 1 open web session")
    );
    assert!(ask.body.contains(r#"<input type="hidden" name="protocol" value="sogo">"#), "{}", ask.body);
    assert!(carol_web.get(port, "/").status == 200, "nothing happened yet");
    let mut confirmed = fields.to_vec();
    confirmed.extend_from_slice(CONFIRMED);
    let page = admin.submit("/admin/mailboxes/carol@shop.example", &confirmed);
    assert!(notice(&page).contains("deactivated"), "{}", page.body);
    assert!(carol_web.get(port, "/").body.contains("id=\"login\""), "deactivation ended the session");
    let mailboxes = json(&run(&["mailbox", "list", "--json"], ""));
    assert_eq!(find(&mailboxes, "address", "carol@shop.example").unwrap()["active"], false);

    // App passwords of a mailbox: listed, revoked.
    run(&["app-password", "add", "carol@shop.example", "--name", "phone", "--protocols", "imap"], "");
    let apps = json(&run(&["app-password", "list", "carol@shop.example", "--json"], ""));
    let id = apps[0]["id"].as_i64().unwrap().to_string();
    assert!(admin.get("/admin/mailboxes/carol@shop.example").body.contains("phone"));
    // Without confirmation, a page of its own says what would happen, and nothing does.
    let ask = admin.post(&format!("/admin/mailboxes/carol@shop.example/app-passwords/{id}/revoke"), &[]);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("Revoke app password &#34;phone&#34; of carol@shop.example?"), "{}", ask.body);
    assert!(ask.body.contains(r#"name="confirmed" value="yes""#) && ask.body.contains(r#"id="back""#), "{}", ask.body);
    assert!(admin.get("/admin/mailboxes/carol@shop.example").body.contains(">Revoke<"), "still active");
    let page = admin.submit(&format!("/admin/mailboxes/carol@shop.example/app-passwords/{id}/revoke"), CONFIRMED);
    assert!(notice(&page).contains("revoked"), "{}", page.body);
    let apps = json(&run(&["app-password", "list", "carol@shop.example", "--json"], ""));
    assert_eq!(apps[0]["active"], false);
    let ask = admin.post("/admin/mailboxes/carol@shop.example/remove", &[]);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("it has no active app password or passkey to remove"), "{}", ask.body);
    assert!(ask.body.contains("it has no open web session to end"), "{}", ask.body);
    let page = admin.submit("/admin/mailboxes/carol@shop.example/remove", CONFIRMED);
    assert!(notice(&page).contains("removed"), "{}", page.body);
    assert!(!run(&["mailbox", "list", "--json"], "").contains("carol@"), "the mailbox is gone");
    let page = admin.submit("/admin/domains/shop.example/remove", CONFIRMED);
    assert!(notice(&page).contains("removed"), "{}", page.body);

    // Administrators, domain administrators (domains and login_as), master users.
    let page =
        admin.submit("/admin/admins", &[("username", "second"), ("password", "secondpw1"), ("repeat", "secondpw1")]);
    assert!(notice(&page).contains("Administrator second added"), "{}", page.body);
    let page = admin.submit(
        "/admin/domain-admins",
        &[
            ("username", "da2"),
            ("password", "da2pw1234"),
            ("repeat", "da2pw1234"),
            ("domain", "other.org"),
            ("login_as", "on"),
        ],
    );
    assert!(notice(&page).contains("Domain administrator da2 added"), "{}", page.body);
    let mut da2 = Browser::login(port, "/domainadmin", "da2", "da2pw1234");
    let page = da2.get("/domainadmin/mailboxes");
    assert!(page.body.contains("bob@other.org") && page.body.contains("Webmail as this user"), "{}", page.body);
    let page = admin
        .submit("/admin/domain-admins/da2", &[("domain", "other.org"), ("domain", "example.org"), ("active", "on")]);
    assert!(notice(&page).contains("saved"), "{}", page.body);
    let mut da2 = Browser::login(port, "/domainadmin", "da2", "da2pw1234");
    let page = da2.get("/domainadmin/mailboxes");
    assert!(page.body.contains("alice@example.org"), "the new domain is managed: {}", page.body);
    assert!(!page.body.contains("Webmail as this user"), "no login_as, no impersonation: {}", page.body);
    let page = admin.submit("/admin/domain-admins/da2", &[("domain", "other.org"), ("domain", "example.org")]);
    assert!(notice(&page).contains("saved"), "{}", page.body);
    assert_eq!(da2.get("/domainadmin/domains").status, 303, "deactivating ended its session");
    let listed = json(&run(&["domain-admin", "list", "--json"], ""));
    let da = find(&listed, "username", "da2").unwrap();
    assert_eq!(da["domains"], serde_json::json!(["example.org", "other.org"]));
    assert_eq!((da["acl"].as_array().unwrap().len(), da["active"].as_bool()), (0, Some(false)));
    admin.submit("/admin/domain-admins/da2/remove", CONFIRMED);
    let page = admin.submit("/admin/admins/second/remove", CONFIRMED);
    assert!(notice(&page).contains("removed"), "{}", page.body);
    let page = admin.submit("/admin/admins/admin/remove", CONFIRMED);
    assert!(notice(&page).contains("your own account"), "{}", page.body);
    let page = admin.submit(
        "/admin/master-users",
        &[
            ("username", "master"),
            ("password", "masterpw1"),
            ("repeat", "masterpw1"),
            ("scope", "owned"),
            ("domain", "other.org"),
        ],
    );
    assert!(notice(&page).contains("Master user master added"), "{}", page.body);
    let masters = json(&run(&["master-user", "list", "--json"], ""));
    assert_eq!(masters[0]["scope"], "owned");
    assert!(
        run(&["admin", "list", "--json"], "").contains("\"admin\"")
            && !run(&["admin", "list", "--json"], "").contains("second")
    );
    assert!(!run(&["domain-admin", "list", "--json"], "").contains("da2"));

    // App links: http(s) only, never javascript:.
    let page = admin.submit(
        "/admin/app-links",
        &[
            ("name", "Cloud"),
            ("url", "https://cloud.example.org/"),
            ("user_url", "https://cloud.example.org/u/%u"),
            ("hidden_on_login", "on"),
        ],
    );
    assert!(notice(&page).contains("App link Cloud added"), "{}", page.body);
    assert!(page.body.contains("https://cloud.example.org/u/%u"), "{}", page.body);
    for url in ["javascript:alert(1)", "JavaScript:alert(document.cookie)", "data:text/html,x", "//evil.example/"] {
        let refused = admin.submit("/admin/app-links", &[("name", "Evil"), ("url", url)]);
        assert!(notice(&refused).contains("Not saved"), "{url}: {}", refused.body);
        let refused = admin.submit("/admin/app-links/1", &[("name", "Cloud"), ("url", "/ok"), ("user_url", url)]);
        assert!(notice(&refused).contains("Not saved"), "{url}: {}", refused.body);
    }
    assert!(!admin.get("/admin/app-links").body.contains("Evil"));
    let page = admin.submit("/admin/app-links/1", &[("name", "Files"), ("url", "/files/"), ("position", "3")]);
    assert!(notice(&page).contains("App link Files saved"), "{}", page.body);
    let page = admin.get("/admin/app-links/1");
    assert!(page.body.contains("value=\"/files/\"") && !page.body.contains(" checked>"), "{}", page.body);
    admin.submit("/admin/app-links", &[("name", "Webmail"), ("url", "/SOGo/so/")]);
    admin.submit("/admin/app-links/2/remove", CONFIRMED);
    assert!(!admin.get("/admin/app-links").body.contains("Webmail"));
    // The login page lists the links not hidden there; a user's page lists them all, with %u filled in.
    let status = [
        ("name", "Status"),
        ("url", "https://status.example.org/"),
        ("user_url", "https://status.example.org/for/%u"),
        ("hidden_on_login", "on"),
    ];
    admin.submit("/admin/app-links", &status);
    let login = support::http::Client::default().get(port, "/");
    assert!(login.body.contains("href=\"/files/\"") && !login.body.contains("status.example.org"), "{}", login.body);
    let mut bob = support::http::Client::default();
    assert_eq!(bob.login(port, "/", "bob@other.org", "bobpw1234").status, 303);
    let home = bob.get(port, "/");
    assert!(home.body.contains("https://status.example.org/for/bob%40other.org"), "{}", home.body);
    assert!(home.body.contains("href=\"/files/\""), "{}", home.body);

    // An LDAP provider whose directory is not there: stored, its secret never shown, the test says why.
    let page = admin.submit(
        "/admin/identity-providers",
        &[
            ("name", "corp"),
            ("hosts", "127.0.0.1"),
            ("port", "1"),
            ("security", "plain"),
            ("bind_dn", "cn=admin,dc=example,dc=org"),
            ("bind_password", "idp-secret-xyz"),
            ("base_dn", "dc=example,dc=org"),
            ("timeout_seconds", "2"),
        ],
    );
    assert!(notice(&page).contains("Identity provider corp added"), "{}", page.body);
    let tested = admin.post("/admin/identity-providers/corp/test", &[("sample", "")]);
    assert_eq!(tested.status, 200);
    assert!(tested.body.contains("connect (TCP and TLS)") && tested.body.contains("FAILED"), "{}", tested.body);
    let bad = admin.submit("/admin/identity-providers", &[("name", "broken"), ("hosts", ""), ("base_dn", "dc=x")]);
    assert!(notice(&bad).contains("Not saved"), "{}", bad.body);
    assert!(!run(&["idp", "list", "--json"], "").contains("broken"));

    // Every administrator page answers, and the logs filter.
    let mut bob = Client::default();
    assert_eq!(bob.login(port, "/", "bob@other.org", "wrong-password").status, 401);
    assert_eq!(bob.login(port, "/", "bob@other.org", "bobpw1234").status, 303);
    let mut alice = Client::default();
    assert_eq!(alice.login(port, "/", "alice@example.org", "alicepw12").status, 303);
    eventually("the logins are logged", || run(&["log", "auth", "--json"], "").contains("alice@example.org"));
    for path in ADMIN_GETS {
        let page = admin.get(path);
        assert_eq!(page.status, 200, "GET {path}: {}", page.body);
    }
    // The smaller lists are searched and paged in the database too.
    for list in ["/admin/templates", "/admin/master-users", "/admin/api-keys", "/admin/app-links", "/admin/admins"] {
        let none = admin.get(&format!("{list}?q=no-such-thing"));
        assert_eq!(none.status, 200, "{list}: {}", none.body);
        let status = none.body.split(r#"id="pager-status">"#).nth(1).map(|rest| rest.split('<').next().unwrap());
        assert!(list == "/admin/api-keys" || status == Some("Nothing matches."), "{list}: {}", none.body);
    }
    let basic = admin.get("/admin/templates?q=BAS");
    assert!(basic.body.contains(r#"id="pager-status">1–1 of 1"#), "{}", basic.body);

    // alice's web session, listed on her page with where it came from, and ended there (confirmed first).
    let page = admin.get("/admin/mailboxes/alice@example.org");
    assert!(page.body.contains(r#"id="sessions""#) && page.body.contains(">127.0.0.1</td>"), "{}", page.body);
    let reference = page.body.split("/sessions/").nth(1).and_then(|rest| rest.split('/').next()).unwrap().to_string();
    assert_eq!(reference.len(), 16, "{reference}");
    let ask = admin.post(&format!("/admin/mailboxes/alice@example.org/sessions/{reference}/end"), &[]);
    assert!(ask.body.contains("from 127.0.0.1") && ask.body.contains("End session"), "{}", ask.body);
    assert!(alice.get(port, "/").body.contains(r#"id="logout""#), "still signed in before the confirmation");
    let page = admin.submit(&format!("/admin/mailboxes/alice@example.org/sessions/{reference}/end"), CONFIRMED);
    assert!(notice(&page).contains("1 web session of alice@example.org ended"), "{}", page.body);
    assert!(alice.get(port, "/").body.contains(r#"id="login""#), "the session ended");
    assert!(run(&["log", "audit", "--json"], "").contains("web_session.end"));
    assert_eq!(alice.login(port, "/", "alice@example.org", "alicepw12").status, 303);
    let page = admin.submit("/admin/mailboxes/alice@example.org/sessions/end", CONFIRMED);
    assert!(notice(&page).contains("1 web session of alice@example.org ended"), "{}", page.body);
    assert!(page.body.contains(r#"id="no-sessions""#), "{}", page.body);
    let unknown = admin.post("/admin/mailboxes/alice@example.org/sessions/0123456789abcdef/end", CONFIRMED);
    let to = unknown.header("location").unwrap_or("/admin").to_string();
    assert!(notice(&admin.get(&to)).contains("Not saved"));

    // API keys: added with the token shown once, used, revoked after confirmation.
    let added = admin.post(
        "/admin/api-keys",
        &[("name", "monitoring"), ("networks", "127.0.0.0/8, ::1"), ("domains", "example.org")],
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let token = added.body.split(r#"id="token">"#).nth(1).unwrap().split('<').next().unwrap().to_string();
    assert!(notice(&added).contains("API key monitoring added"), "{}", added.body);
    let bearer = format!("Bearer {token}");
    let listed = support::http::request(port, "GET", "/api/v1/domains", &[("Authorization", &bearer)], "");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("example.org") && !listed.body.contains("other.org"), "{}", listed.body);
    let page = admin.get("/admin/api-keys");
    assert!(page.body.contains("127.0.0.0/8, ::1") && !page.body.contains(&token), "the token is shown once only");
    let keys = json(&run(&["api-key", "list", "--json"], ""));
    let id = find(&keys, "name", "monitoring").unwrap()["id"].as_i64().unwrap();
    let ask = admin.post(&format!("/admin/api-keys/{id}/revoke"), &[]);
    assert!(ask.body.contains("Revoke API key monitoring?"), "{}", ask.body);
    let page = admin.submit(&format!("/admin/api-keys/{id}/revoke"), CONFIRMED);
    assert!(notice(&page).contains("API key monitoring revoked"), "{}", page.body);
    let refused = support::http::request(port, "GET", "/api/v1/domains", &[("Authorization", &bearer)], "");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let bad = admin.post("/admin/api-keys", &[("name", "x"), ("domains", "not a domain!")]);
    assert!(notice(&bad).starts_with("Not added:"), "{}", bad.body);
    let failures = admin.get("/admin/logs/auth?user=bob%40other.org&result=failure");
    assert!(failures.body.contains(">refused</td>") && !failures.body.contains(">allowed</td>"), "{}", failures.body);
    assert!(!failures.body.contains(">alice@example.org</td>"));
    let audit = admin.get("/admin/logs/audit?target=shop.example");
    for action in ["domain.add", "domain.edit", "domain.remove"] {
        assert!(audit.body.contains(&format!(">{action}</td>")), "{action}: {}", audit.body);
    }
    assert!(!audit.body.contains(">template.add</td>"));
    let links = admin.get("/admin/logs/audit?action=app_link");
    assert!(links.body.contains(">app_link.add</td>") && !links.body.contains(">domain.add</td>"));
    let bad_date = admin.get("/admin/logs/auth?since=yesterday");
    assert!(notice(&bad_date).contains("not a date"), "{}", bad_date.body);

    // The domain administrator of example.org: its own domain and mailboxes only.
    let mut helper = Browser::login(port, "/domainadmin", "helper", "helperpw");
    let page = helper.get("/domainadmin/mailboxes");
    assert!(page.body.contains("alice@example.org") && !page.body.contains("bob@other.org"), "{}", page.body);
    assert!(page.body.contains("Webmail as this user"), "helper has login_as");
    assert!(!page.body.contains("name=\"auth_source\""), "no auth source for domain admins");
    let page = helper.get("/domainadmin/domains");
    assert!(page.body.contains("example.org") && !page.body.contains("other.org"), "{}", page.body);
    let page = helper.submit(
        "/domainadmin/domains/example.org",
        &[("description", "Ours"), ("max_mailboxes", "99"), ("active", "")],
    );
    assert!(notice(&page).contains("saved"), "{}", page.body);
    let domains = json(&run(&["domain", "list", "--json"], ""));
    let example = find(&domains, "name", "example.org").unwrap();
    assert_eq!((example["description"].as_str(), example["max_mailboxes"].as_i64()), (Some("Ours"), Some(0)));
    assert_eq!(example["active"], true, "domain admins change the description only");
    let page = helper.submit(
        "/domainadmin/mailboxes",
        &[
            ("local_part", "eve"),
            ("domain", "example.org"),
            ("password", "evepw1234"),
            ("repeat", "evepw1234"),
            ("active", "on"),
            ("auth_source", "corp"),
        ],
    );
    assert!(notice(&page).contains("Mailbox eve@example.org added"), "{}", page.body);
    let page = helper.submit(
        "/domainadmin/mailboxes/eve@example.org",
        &[("display_name", "Eve"), ("quota_mib", "5"), ("protocol", "imap"), ("active", "on")],
    );
    assert!(notice(&page).contains("saved"), "{}", page.body);
    let page = helper.submit(
        "/domainadmin/mailboxes/eve@example.org/password",
        &[("password", "evenew1234"), ("repeat", "evenew1234")],
    );
    assert!(notice(&page).contains("Password of eve@example.org set"), "{}", page.body);
    let mailboxes = json(&run(&["mailbox", "list", "--json"], ""));
    let eve = find(&mailboxes, "address", "eve@example.org").unwrap();
    assert_eq!((eve["auth_source"].as_str(), eve["quota_mib"].as_i64()), (Some("local"), Some(5)));
    assert!(helper.get("/domainadmin/logs/auth").body.contains(">alice@example.org</td>"));
    assert!(!helper.get("/domainadmin/logs/auth").body.contains("bob@other.org"));
    let audit = helper.get("/domainadmin/logs/audit");
    assert!(audit.body.contains("eve@example.org") && !audit.body.contains("shop.example"), "{}", audit.body);
    helper.submit("/domainadmin/mailboxes/eve@example.org/remove", CONFIRMED);

    // ... and nothing else: every administrator route is 403, every other domain's object 404.
    for path in ADMIN_GETS {
        assert_eq!(helper.get(path).status, 403, "GET {path} as a domain admin");
    }
    for path in ADMIN_POSTS {
        assert_eq!(helper.post(path, &[("name", "x")]).status, 403, "POST {path} as a domain admin");
    }
    for path in ADMIN_GETS.iter().chain(ADMIN_POSTS).filter(|p| {
        [
            "/templates",
            "/admins",
            "/domain-admins",
            "/master-users",
            "/app-links",
            "/api-keys",
            "/bans/",
            "/identity-providers",
            "/logs/jobs",
            "/remove",
        ]
        .iter()
        .any(|admin_only| p.contains(admin_only))
            && !p.contains("/mailboxes/")
    }) {
        let path = path.replacen("/admin/", "/domainadmin/", 1);
        let missing = helper.get(&path);
        assert_eq!(missing.status, 404, "GET {path}");
        assert!(missing.body.contains("no such page") && missing.body.contains(r#"id="back""#), "{path}");
        assert_eq!(helper.post(&path, &[]).status, 404, "POST {path}");
    }
    run(&["app-password", "add", "bob@other.org", "--name", "bobphone", "--protocols", "imap"], "");
    let bob_before = run(&["mailbox", "list", "--json"], "");
    let bob_apps = json(&run(&["app-password", "list", "bob@other.org", "--json"], ""));
    let bob_app = bob_apps[0]["id"].as_i64().unwrap();
    for (method, path, pairs) in [
        ("GET", "/domainadmin/domains/other.org".to_string(), vec![]),
        ("POST", "/domainadmin/domains/other.org".to_string(), vec![("description", "mine now")]),
        ("GET", "/domainadmin/mailboxes/bob@other.org".to_string(), vec![]),
        ("GET", "/domainadmin/mailboxes/nobody@other.org".to_string(), vec![]),
        ("POST", "/domainadmin/mailboxes/bob@other.org".to_string(), vec![("quota_mib", "1"), ("active", "")]),
        (
            "POST",
            "/domainadmin/mailboxes/bob@other.org/password".to_string(),
            vec![("password", "stolen123"), ("repeat", "stolen123")],
        ),
        ("POST", "/domainadmin/mailboxes/bob@other.org/remove".to_string(), vec![]),
        ("POST", format!("/domainadmin/mailboxes/bob@other.org/app-passwords/{bob_app}/revoke"), vec![]),
        (
            "POST",
            "/domainadmin/mailboxes".to_string(),
            vec![("local_part", "mallory"), ("domain", "other.org"), ("active", "on")],
        ),
        ("GET", "/domainadmin/logs/auth?user=bob%40other.org".to_string(), vec![]),
        ("GET", "/domainadmin/logs/audit?target=other.org".to_string(), vec![]),
    ] {
        let status = if method == "GET" { helper.get(&path).status } else { helper.post(&path, &pairs).status };
        assert_eq!(status, 404, "{method} {path} as the domain admin of example.org");
    }
    // A revoke naming its own mailbox with another mailbox's app password finds nothing either.
    let page =
        helper.submit(&format!("/domainadmin/mailboxes/alice@example.org/app-passwords/{bob_app}/revoke"), CONFIRMED);
    assert!(notice(&page).contains("Not saved"), "{}", page.body);
    assert_eq!(run(&["mailbox", "list", "--json"], ""), bob_before, "bob and other.org are untouched");
    assert_eq!(json(&run(&["app-password", "list", "bob@other.org", "--json"], ""))[0]["active"], true);
    // An administrator's session is no domain administrator's either.
    assert_eq!(admin.get("/domainadmin/mailboxes").status, 403);
    assert_eq!(admin.post("/domainadmin/mailboxes", &[]).status, 403);
    // Without a session: the login page, nothing else.
    for path in ["/admin/domains", "/domainadmin/mailboxes"] {
        let anonymous = Client::default().get(port, path);
        assert_eq!(anonymous.status, 303, "{path}");
    }

    // CSRF: every form refuses a missing or wrong token, and changes nothing.
    let before = (run(&["domain", "list", "--json"], ""), run(&["mailbox", "list", "--json"], ""));
    let pairs =
        [("name", "csrf.example"), ("local_part", "csrf"), ("domain", "example.org"), ("description", "forged")];
    for (browser, routes) in [(&mut admin, ADMIN_POSTS), (&mut helper, DOMAIN_ADMIN_POSTS)] {
        for path in routes {
            let missing = browser.client.post(port, path, &pairs);
            assert_eq!(missing.status, 403, "POST {path} without a token");
            let mut forged = pairs.to_vec();
            forged.push(("csrf", "not-the-token"));
            assert_eq!(browser.client.post(port, path, &forged).status, 403, "POST {path} with a wrong token");
        }
    }
    assert_eq!((run(&["domain", "list", "--json"], ""), run(&["mailbox", "list", "--json"], "")), before);

    // No page showed a password hash or the identity provider's secret.
    assert!(run(&["idp", "show", "corp"], "").contains("bind_password"), "the secret is stored");
    let mut pages = admin.seen;
    pages.extend(helper.seen);
    assert_no_secrets(&pages, &["idp-secret-xyz", "carolnew12", "evenew1234"]);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn ldap_provider_form_test_and_sync() {
    let Some(slapd) = Slapd::start(support::LDAP_PEOPLE) else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = "sqlite://./data/gatehouse.db";
    support::init(dir.path(), db, "admin-pw");
    let run = |args: &[&str], stdin: &str| cli_ok(dir.path(), db, args, stdin);
    run(&["domain", "add", "example.org"], "");
    run(&["template", "add", "staff", "--protocols", "imap,smtp"], "");
    run(&["template", "add", "it-staff", "--quota-mib", "100", "--protocols", "imap"], "");
    let server = Server::start_with_env(dir.path(), db, Some("admin-pw"), &[("GATEHOUSE_GUARD__MAX_DELAY_MS", "0")]);
    let mut admin = Browser::login(server.public, "/admin", "admin", "admin-pw");
    let port = slapd.ldap_port.to_string();
    let ca_file = slapd.ca_file().display().to_string();
    let form = |password: &'static str| {
        vec![
            ("hosts", "127.0.0.1".to_string()),
            ("port", port.clone()),
            ("security", "starttls".into()),
            ("ca_file", ca_file.clone()),
            ("bind_dn", "cn=admin,dc=example,dc=org".into()),
            ("bind_password", password.into()),
            ("base_dn", "ou=people,dc=example,dc=org".into()),
            ("user_filter", "(&(objectClass=inetOrgPerson)(mail=%u))".into()),
            ("mail_attribute", "mail".into()),
            ("display_name_attribute", "displayName".into()),
            ("template_attribute", "employeeType".into()),
            ("default_template", "staff".into()),
            ("create_on_login", "on".into()),
            ("import_users", "on".into()),
            ("sync_interval_minutes", "30".into()),
            ("deprovision", "deactivate".into()),
            ("deprovision_threshold_percent", "50".into()),
            ("active", "on".into()),
        ]
    };
    let post = |admin: &mut Browser, path: &str, fields: &[(&'static str, String)]| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        admin.submit(path, &fields)
    };

    let mut create = vec![("name", "corp".to_string())];
    create.extend(form("adminpw"));
    let page = post(&mut admin, "/admin/identity-providers", &create);
    assert!(notice(&page).contains("Identity provider corp added"), "{}", page.body);
    assert!(page.body.contains("stored; leave empty to keep it"), "{}", page.body);
    let shown: Value = json(&run(&["idp", "show", "corp"], ""));
    assert_eq!(shown["secret_names"], serde_json::json!(["bind_password"]));
    let settings = &shown["settings"];
    assert_eq!((settings["import_users"].as_bool(), settings["create_on_login"].as_bool()), (Some(true), Some(true)));
    assert_eq!(
        (settings["periodic_sync"].as_bool(), settings["deprovision"].as_str()),
        (Some(false), Some("deactivate"))
    );
    assert_eq!(
        (settings["deprovision_threshold_percent"].as_u64(), settings["port"].as_u64()),
        (Some(50), Some(slapd.ldap_port as u64))
    );
    assert_eq!(settings["default_template"], "staff");
    assert!(!settings.to_string().contains("adminpw"));

    let page = post(
        &mut admin,
        "/admin/identity-providers/corp/mappings",
        &[("mappings", "it=it-staff\r\nstaff = staff\r\n".into())],
    );
    assert!(notice(&page).contains("maps 2 attribute value(s)"), "{}", page.body);
    assert!(page.body.contains("it=it-staff\nstaff=staff"), "{}", page.body);
    let shown: Value = json(&run(&["idp", "show", "corp"], ""));
    assert_eq!(shown["mappings"][0], serde_json::json!({"attribute_value": "it", "template": "it-staff"}));
    let bad =
        post(&mut admin, "/admin/identity-providers/corp/mappings", &[("mappings", "it=no-such-template".into())]);
    assert!(notice(&bad).contains("Not saved"), "{}", bad.body);

    let tested = admin.post("/admin/identity-providers/corp/test", &[("sample", "carol@example.org")]);
    assert_eq!(tested.status, 200, "{}", tested.body);
    for step in
        ["StartTLS, certificate checked", "bind as the service account", "bound as cn=admin", "uid=carol,ou=people"]
    {
        assert!(tested.body.contains(step), "{step}: {}", tested.body);
    }
    assert!(!tested.body.contains("FAILED"), "{}", tested.body);

    let page = admin.submit("/admin/identity-providers/corp/dry-run", &[]);
    assert!(notice(&page).contains("(dry run): 2 entries; 2 created"), "{}", page.body);
    assert!(!run(&["mailbox", "list", "--json"], "").contains("carol@"), "a dry run changes nothing");
    let page = admin.submit("/admin/identity-providers/corp/sync", CONFIRMED);
    assert!(notice(&page).contains("corp: 2 entries; 2 created"), "{}", page.body);
    assert!(page.body.contains("sync-dry-run") && page.body.contains("<td>ok</td>"), "recent runs: {}", page.body);
    let mailboxes = json(&run(&["mailbox", "list", "--json"], ""));
    let carol = find(&mailboxes, "address", "carol@example.org").expect("carol was imported");
    let dave = find(&mailboxes, "address", "dave@example.org").expect("dave was imported");
    assert_eq!((carol["auth_source"].as_str(), carol["template"].as_str()), (Some("corp"), Some("staff")));
    assert_eq!((dave["template"].as_str(), dave["quota_mib"].as_i64()), (Some("it-staff"), Some(100)));

    // Saving without a password keeps the stored one; a new one replaces it.
    let page = post(&mut admin, "/admin/identity-providers/corp", &form(""));
    assert!(notice(&page).contains("saved"), "{}", page.body);
    let tested = admin.post("/admin/identity-providers/corp/test", &[("sample", "")]);
    assert!(tested.body.contains("bound as cn=admin") && !tested.body.contains("FAILED"), "{}", tested.body);
    post(&mut admin, "/admin/identity-providers/corp", &form("not-the-password"));
    let tested = admin.post("/admin/identity-providers/corp/test", &[("sample", "")]);
    assert!(tested.body.contains("FAILED"), "a wrong bind password fails the test: {}", tested.body);
    post(&mut admin, "/admin/identity-providers/corp", &form("adminpw"));

    let jobs = admin.get("/admin/logs/jobs?provider=corp&status=ok");
    assert!(jobs.body.contains(">sync</td>") && jobs.body.contains(">sync-dry-run</td>"), "{}", jobs.body);
    for path in ["/admin/identity-providers", "/admin/identity-providers/corp", "/admin/mailboxes", "/admin/logs/audit"]
    {
        admin.get(path);
    }
    assert_no_secrets(&admin.seen, &["adminpw", "not-the-password"]);
    drop(slapd);
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// The forms on the server databases: app links (positions, validation), a domain's limit as a notice.
#[test]
fn forms_work_on_postgres_and_mariadb() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for engine in [Engine::Postgres, Engine::MariaDb] {
        let Some(database) = runtime.block_on(TestDatabase::create(engine)) else { continue };
        let dir = tempfile::tempdir().unwrap();
        let db = database.url().expose().to_string();
        let run = |args: &[&str]| cli_ok(dir.path(), &db, args, "");
        let server = Server::start(dir.path(), &db, Some("admin-pw"));
        let mut admin = Browser::login(server.public, "/admin", "admin", "admin-pw");
        admin.submit("/admin/domains", &[("name", "example.org"), ("active", "on"), ("max_mailboxes", "1")]);
        let added =
            admin.submit("/admin/mailboxes", &[("local_part", "a"), ("domain", "example.org"), ("active", "on")]);
        assert!(notice(&added).contains("added"), "{engine:?}: {}", added.body);
        let full =
            admin.submit("/admin/mailboxes", &[("local_part", "b"), ("domain", "example.org"), ("active", "on")]);
        assert!(notice(&full).contains("allowed mailboxes"), "{engine:?}: {}", full.body);
        assert_eq!(json(&run(&["mailbox", "list", "--json"])).as_array().unwrap().len(), 1);
        for name in ["First", "Second"] {
            let page = admin.submit("/admin/app-links", &[("name", name), ("url", "https://example.org/")]);
            assert!(notice(&page).contains("added"), "{engine:?}: {}", page.body);
        }
        let refused = admin.submit("/admin/app-links", &[("name", "Evil"), ("url", "javascript:alert(1)")]);
        assert!(notice(&refused).contains("Not saved"), "{engine:?}: {}", refused.body);
        admin.submit("/admin/app-links/2", &[("name", "Second"), ("url", "/two/"), ("position", "-1")]);
        let list = admin.get("/admin/app-links").body;
        let (first, second) = (list.find("<td>First</td>").unwrap(), list.find("<td>Second</td>").unwrap());
        assert!(second < first && list.contains("<td>/two/</td>") && !list.contains("Evil"), "{engine:?}: {list}");
        admin.submit("/admin/app-links/1/remove", CONFIRMED);
        assert!(!admin.get("/admin/app-links").body.contains("First"));
        let (status, _) = server.terminate();
        assert!(status.success());
        runtime.block_on(database.drop_database());
    }
}
