//! A small HTTP/1.1 client with a cookie jar, for driving the web UI and nginx like a browser would (forms,
//! redirects by hand, cookies), without JavaScript.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked transfer decoded).
    pub body: String,
}

impl Response {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of a hidden form field `name` in the body.
    pub fn form_value(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        Some(self.body[start..].split('"').next()?.to_string())
    }
}

/// Sends one request to 127.0.0.1:`port`.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw).unwrap();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let raw = if chunked { dechunk(&raw) } else { raw };
    Response { status, headers, body: String::from_utf8_lossy(&raw).into_owned() }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).split(';').next().unwrap().trim(), 16);
        let Ok(size) = size else { break };
        raw = &raw[end + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
    out
}

/// Form-encodes pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url_encoded(pairs)
}

fn url_encoded(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// A client that keeps cookies, like a browser (one host).
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The cookies, by name.
    pub cookies: BTreeMap<String, String>,
    /// Extra headers sent with every request.
    pub extra: Vec<(String, String)>,
}

impl Client {
    /// Sends a request with the jar's cookies and keeps the cookies the answer sets.
    pub fn send(&mut self, port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("Cookie", &cookie));
        }
        for (name, value) in &self.extra {
            all.push((name, value));
        }
        if method == "POST" && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
            all.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let response = request(port, method, path, &all, body);
        for (name, value) in &response.headers {
            if name != "set-cookie" {
                continue;
            }
            let pair = value.split(';').next().unwrap_or("");
            if let Some((key, val)) = pair.split_once('=') {
                if value.contains("Max-Age=0") || val.is_empty() {
                    self.cookies.remove(key.trim());
                } else {
                    self.cookies.insert(key.trim().to_string(), val.trim().to_string());
                }
            }
        }
        response
    }

    /// GET.
    pub fn get(&mut self, port: u16, path: &str) -> Response {
        self.send(port, "GET", path, &[], "")
    }

    /// POST a form.
    pub fn post(&mut self, port: u16, path: &str, pairs: &[(&str, &str)]) -> Response {
        self.send(port, "POST", path, &[], &form(pairs))
    }

    /// Logs in at `page` (`/`, `/admin`, `/domainadmin`) with the form's own CSRF token; returns the answer to
    /// the POST.
    pub fn login(&mut self, port: u16, page: &str, username: &str, password: &str) -> Response {
        let form_page = self.get(port, page);
        let csrf = form_page.form_value("csrf").expect("the login form has a CSRF token");
        self.post(port, page, &[("csrf", &csrf), ("username", username), ("password", password)])
    }
}
