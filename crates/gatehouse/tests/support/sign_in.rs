//! A browser's part of a sign-in at the test OpenID provider, without a browser: Gatehouse's start URL, the
//! provider's redirects, its development login form (any password) and consent form, up to the URL the
//! provider sends the browser back to. Cookies are kept per side, as a browser keeps them per host.

use super::http::{Client, Response, form};

/// The two sides of one browser: Gatehouse's cookies and the provider's.
#[derive(Debug, Default)]
pub struct Browser {
    /// Cookies of Gatehouse.
    pub gatehouse: Client,
    /// Cookies of the provider.
    pub provider: Client,
}

/// The path and query of an absolute or relative URL.
pub fn path_of(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(url) => match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        },
        Err(_) => location.to_string(),
    }
}

fn form_action(page: &Response) -> Option<String> {
    let start = page.body.find("<form")?;
    let rest = &page.body[start..];
    let action = rest.find("action=\"")? + "action=\"".len();
    Some(rest[action..].split('"').next()?.replace("&amp;", "&"))
}

impl Browser {
    /// Starts a sign-in at Gatehouse (`start`, e.g. `/oidc/sign-in/corp`) and returns Gatehouse's answer:
    /// the redirect to the provider.
    pub fn start(&mut self, gatehouse_port: u16, start: &str) -> Response {
        self.gatehouse.get(gatehouse_port, start)
    }

    /// Goes through the provider from `authorize` (its authorization URL) as `account`, up to the URL it sends
    /// the browser back to (returned, not visited). `consent` false aborts at the login form instead (the
    /// provider then sends an `error` back).
    pub fn at_provider(&mut self, provider_port: u16, authorize: &str, account: &str, sign_in: bool) -> String {
        let mut location = authorize.to_string();
        for _ in 0..20 {
            let own = location.starts_with('/') || location.contains(&format!("127.0.0.1:{provider_port}/"));
            if !own {
                return location;
            }
            let page = self.provider.get(provider_port, &path_of(&location));
            if let Some(next) = page.header("location") {
                location = next.to_string();
                continue;
            }
            assert_eq!(page.status, 200, "the provider answered {}: {}", page.status, page.body);
            let action = form_action(&page).unwrap_or_else(|| panic!("no form on the provider's page: {}", page.body));
            let answer = if page.body.contains("value=\"login\"") {
                if !sign_in {
                    let abort = page.body.find("/abort").map(|end| {
                        let start = page.body[..end].rfind('"').map_or(0, |s| s + 1);
                        page.body[start..end + "/abort".len()].to_string()
                    });
                    let abort = abort.unwrap_or_else(|| panic!("no abort link: {}", page.body));
                    self.provider.get(provider_port, &path_of(&abort))
                } else {
                    let body = form(&[("prompt", "login"), ("login", account), ("password", "any")]);
                    self.provider.send(provider_port, "POST", &path_of(&action), &[], &body)
                }
            } else {
                let body = form(&[("prompt", "consent")]);
                self.provider.send(provider_port, "POST", &path_of(&action), &[], &body)
            };
            location = answer
                .header("location")
                .unwrap_or_else(|| panic!("the provider did not redirect ({}): {}", answer.status, answer.body))
                .to_string();
        }
        panic!("the provider kept redirecting");
    }

    /// A whole sign-in: start at Gatehouse, sign in at the provider as `account`; returns the callback path
    /// (not yet visited).
    pub fn sign_in(&mut self, gatehouse_port: u16, provider_port: u16, start: &str, account: &str) -> String {
        let started = self.start(gatehouse_port, start);
        assert_eq!(started.status, 303, "the sign-in did not start: {}", started.body);
        let authorize = started.header("location").expect("a redirect to the provider").to_string();
        path_of(&self.at_provider(provider_port, &authorize, account, true))
    }
}
