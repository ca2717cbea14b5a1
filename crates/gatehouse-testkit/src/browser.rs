//! Headless Chromium for browser tests, driven through chromedriver (W3C WebDriver) with the
//! [`fantoccini`] client.
//!
//! chromedriver listens on a free loopback port; fantoccini talks plain HTTP to it through hyper's
//! `HttpConnector` (fantoccini is built without its TLS features, which would bring OpenSSL or aws-lc). Chromium
//! (`/usr/lib/chromium/chromium`, the binary behind Debian's `/usr/bin/chromium` launcher script, so the
//! script's `/etc/chromium.d` flags and API keys stay out) runs with `--headless=new --no-sandbox --disable-gpu
//! --disable-dev-shm-usage`, a fresh `--user-data-dir` and the flags that stop it from calling Google's services
//! (the machine's closed network refuses them). `HOME` points into the temporary folder too.
//!
//! The helpers panic with context on WebDriver errors, as a test wants; [`Browser::client`] gives the full
//! fantoccini API. [`Browser::add_virtual_authenticator`] gives the page a virtual WebAuthn authenticator (the
//! WebDriver WebAuthn extension) for passkey tests. Element lookups wait up to [`WAIT`] for the element to appear. [`Browser::close`] ends the
//! session; drop kills chromedriver and every Chromium process of the instance (found by its profile folder).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use fantoccini;
use fantoccini::cookies::Cookie;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::{free_port, process, require_peer, wait_for_port};

/// The chromedriver binary (Debian package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The Chromium binaries (Debian package `chromium`): the real one first, then the launcher script.
pub const CHROMIUM: [&str; 2] = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"];

/// How long element lookups wait for the element.
pub const WAIT: Duration = Duration::from_secs(10);

/// A headless Chromium with its chromedriver; both are stopped on drop.
pub struct Browser {
    client: Option<Client>,
    driver: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Browser {
    /// Starts chromedriver and a Chromium session (about 1 s). `None` (after [`require_peer`]) when chromedriver
    /// or Chromium are missing. Panics, with chromedriver's log, when the session cannot be created.
    pub async fn start() -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() {
            require_peer("chromedriver", &format!("{CHROMEDRIVER} is missing (package chromium-driver)"));
            return None;
        }
        let Some(chromium) = CHROMIUM.into_iter().find(|p| Path::new(p).exists()) else {
            require_peer("Chromium", "/usr/bin/chromium is missing (package chromium)");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("gatehouse-browser-").tempdir().expect("temporary folder");
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).unwrap();
        let port = free_port();
        let output = std::fs::File::create(dir.path().join("chromedriver.out")).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", dir.path().join("chromedriver.log").display()))
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser { client: None, driver: Some(driver), dir, port };
        if !wait_for_port(port, Duration::from_secs(20)) {
            panic!("chromedriver did not listen on {port}:\n{}", browser.driver_log());
        }
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.display()),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--disable-extensions".into(),
            "--window-size=1280,900".into(),
        ];
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": chromium, "args": args }));
        let connected = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        match connected {
            Ok(client) => browser.client = Some(client),
            Err(err) => panic!("cannot start a Chromium session: {err}\n{}", browser.driver_log()),
        }
        Some(browser)
    }

    /// The fantoccini client, for anything the helpers lack.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is closed")
    }

    /// The temporary folder (profile, chromedriver's log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// chromedriver's port.
    pub fn driver_port(&self) -> u16 {
        self.port
    }

    /// chromedriver's log so far.
    pub fn driver_log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("chromedriver.out"), read("chromedriver.log"))
    }

    /// The text of the element `css` once it contains `wanted` (waits up to 10 s; the page may be replaced
    /// meanwhile, so an element found may be gone a moment later); fails with the last text seen.
    pub async fn wait_text(&self, css: &str, wanted: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            if let Ok(element) = self.client().find(fantoccini::Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if text.contains(wanted) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} did not show {wanted:?} (last: {last:?})");
    }

    /// Loads `url` and waits for the page load to finish.
    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Waits for the element matching the CSS selector `css` and returns it.
    pub async fn find(&self, css: &str) -> Element {
        self.client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element `{css}` within {WAIT:?}: {e}"))
    }

    /// Whether an element matches `css` right now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.client().find(Locator::Css(css)).await.is_ok()
    }

    /// Clears the input matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
        element.send_keys(text).await.unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// Clicks the element matching `css` (a submit button submits its form and the page load is awaited).
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// The rendered text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_else(|e| panic!("text of `{css}`: {e}"))
    }

    /// The current page's source (the DOM serialised).
    pub async fn source(&self) -> String {
        self.client().source().await.expect("page source")
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.client().title().await.expect("page title")
    }

    /// The current URL (after redirects).
    pub async fn current_url(&self) -> url::Url {
        self.client().current_url().await.expect("current URL")
    }

    /// The cookies visible to the current page.
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client().get_all_cookies().await.expect("cookies")
    }

    /// The value of the cookie `name` for the current page, if set.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().await.into_iter().find(|c| c.name() == name).map(|c| c.value().to_string())
    }

    /// Saves a PNG screenshot of the viewport to `path` (for a failing test's artefacts) and returns the path.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        let png = self.client().screenshot().await.expect("screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_path_buf()
    }

    /// Resizes the window so the page's viewport is `width` CSS pixels wide (and `height` high), for
    /// screenshots of narrow and wide layouts.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        // The window is larger than its viewport by the browser's frame; measure it once and add it.
        self.client().set_window_size(width, height).await.expect("set window size");
        let inner = self.client().execute("return [window.innerWidth, window.innerHeight]", vec![]).await;
        let inner: Vec<u32> = inner.ok().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
        if let [w, h] = inner[..] {
            let (extra_w, extra_h) = (width.saturating_sub(w), height.saturating_sub(h));
            if extra_w > 0 || extra_h > 0 {
                self.client().set_window_size(width + extra_w, height + extra_h).await.expect("set window size");
            }
        }
    }

    /// Saves a PNG screenshot of the whole page (not only the viewport, up to 8000 pixels high) to `path`; the
    /// window gets its size back afterwards.
    pub async fn full_page_screenshot(&self, path: impl AsRef<Path>) -> PathBuf {
        let (width, height) = self.client().get_window_size().await.expect("window size");
        let measured = self
            .client()
            .execute("return [document.documentElement.scrollHeight, window.innerHeight]", vec![])
            .await
            .ok()
            .and_then(|v| serde_json::from_value::<Vec<u64>>(v).ok())
            .unwrap_or_default();
        let [page, inner] = measured[..] else { return self.screenshot(path).await };
        let frame = height.saturating_sub(inner);
        let tall = (page.min(8000) + frame).max(height);
        self.client().set_window_size(width as u32, tall as u32).await.expect("set window size");
        let shot = self.screenshot(path).await;
        self.client().set_window_size(width as u32, height as u32).await.expect("set window size");
        shot
    }

    /// Runs axe-core (npm, installed by the test script in `crates/gatehouse-testkit/axe`) on the page and
    /// returns its violations of impact "serious" or "critical" (rule id, impact, help, and the offending
    /// elements' HTML). WebDriver injects the script, so the page's own CSP stays as it is.
    pub async fn accessibility_violations(&self) -> Vec<serde_json::Value> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("axe/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&script).unwrap_or_else(|err| {
            panic!(
                "{} is missing ({err}): run scripts/test once, or npm ci in crates/gatehouse-testkit/axe",
                script.display()
            )
        });
        self.client().execute(&source, vec![]).await.expect("load axe-core");
        let run = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(results => done(results.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html) }))))
              .catch(err => done([{ id: 'axe-failed', impact: 'critical', help: String(err), nodes: [] }]));
        "#;
        let found = self.client().execute_async(run, vec![]).await.expect("run axe-core");
        found.as_array().cloned().unwrap_or_default()
    }

    /// Ends the WebDriver session (Chromium quits) and stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        self.kill();
    }

    /// Kills chromedriver, its process tree and any Chromium process still using this instance's profile.
    fn kill(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            process::stop_child(&mut driver, None, Duration::ZERO);
        }
        let profile = self.dir.path().display().to_string();
        for _ in 0..3 {
            let left = process::pids_with_arg(&profile);
            if left.is_empty() {
                break;
            }
            for pid in left {
                process::kill_tree(pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Without a runtime to await the session's end, chromedriver and Chromium are killed.
        self.client.take();
        self.kill();
    }
}

/// A command of WebDriver's WebAuthn extension: `<method> /session/{id}/webauthn/<path>`.
#[derive(Debug)]
struct WebAuthnCommand {
    method: http::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthnCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/webauthn/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (self.method.clone(), self.body.as_ref().map(|body| body.to_string()))
    }
}

impl Browser {
    async fn webauthn(&self, method: http::Method, path: String, body: Option<serde_json::Value>) -> serde_json::Value {
        let command = WebAuthnCommand { method, path: path.clone(), body };
        self.client().issue_cmd(command).await.unwrap_or_else(|err| panic!("webauthn/{path}: {err}"))
    }

    /// Adds a virtual CTAP2 authenticator (internal transport, resident keys, user verification that succeeds)
    /// to the session; returns its id. Passkey ceremonies on the page use it without any prompt.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let id = self.webauthn(http::Method::POST, "authenticator".into(), Some(options)).await;
        id.as_str().unwrap_or_else(|| panic!("webauthn/authenticator answered {id}")).to_string()
    }

    /// Removes a virtual authenticator (its credentials go with it).
    pub async fn remove_virtual_authenticator(&self, authenticator: &str) {
        self.webauthn(http::Method::DELETE, format!("authenticator/{authenticator}"), None).await;
    }

    /// The credentials a virtual authenticator holds (`credentialId`, `rpId`, `signCount`, …).
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<serde_json::Value> {
        let listed = self.webauthn(http::Method::GET, format!("authenticator/{authenticator}/credentials"), None).await;
        listed.as_array().cloned().unwrap_or_default()
    }

    /// Adds a credential to a virtual authenticator (`credentialId`, `isResidentCredential`, `rpId`,
    /// `privateKey` (PKCS#8, base64url), `userHandle`, `signCount`), e.g. one taken from another authenticator.
    pub async fn add_virtual_credential(&self, authenticator: &str, credential: serde_json::Value) {
        self.webauthn(http::Method::POST, format!("authenticator/{authenticator}/credential"), Some(credential)).await;
    }
}
