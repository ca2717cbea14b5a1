//! Log output on standard error: human-readable lines (colours only when standard error is a terminal) or one
//! JSON object per line (`log_format = "json"`, for journald and log shippers).
//!
//! Logged values come from clients (usernames, addresses). A username with a newline must not forge a second
//! log line, nor one with escape sequences repaint a terminal: every control character inside an event is
//! written escaped (`\n`, `\u{1b}`); only the newline that ends the event stays. JSON escapes them by itself.

use std::io::{IsTerminal, Write};

use gatehouse_config::LogFormat;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Sets up the global subscriber.
pub fn init(filter: &str, format: LogFormat) {
    // sea-orm's migrator narrates every start; the store logs the migrations it applies itself.
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(format!("{filter},sea_orm_migration=warn")))
        .unwrap_or_else(|_| EnvFilter::new("info,sea_orm_migration=warn"));
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => {
            builder.with_ansi(terminal).with_writer(EscapingStderr { keep_ansi: terminal }).init();
        }
        LogFormat::Json => builder.json().with_ansi(false).with_writer(std::io::stderr).init(),
    }
}

/// Standard error, with control characters inside an event escaped.
#[derive(Clone, Copy)]
struct EscapingStderr {
    /// Keep ESC (the subscriber's own colours on a terminal); every other control character is escaped.
    keep_ansi: bool,
}

impl<'a> MakeWriter<'a> for EscapingStderr {
    type Writer = Escaping<std::io::StderrLock<'static>>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping { inner: std::io::stderr().lock(), keep_ansi: self.keep_ansi }
    }
}

/// A writer that escapes control characters; the subscriber writes each event with one call, so a final
/// newline is the event's end and is kept.
struct Escaping<W: Write> {
    inner: W,
    keep_ansi: bool,
}

/// `event` with control characters escaped (C0, DEL and, in UTF-8 text, C1), except a final newline and tabs
/// (and ESC when `keep_ansi`).
fn escape_event(event: &[u8], keep_ansi: bool) -> std::borrow::Cow<'_, [u8]> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    let keep = |c: char| c == '\t' || (keep_ansi && c == '\u{1b}');
    let text = String::from_utf8_lossy(body);
    if !text.chars().any(|c| c.is_control() && !keep(c)) && matches!(text, std::borrow::Cow::Borrowed(_)) {
        return std::borrow::Cow::Borrowed(event);
    }
    let mut out = String::with_capacity(event.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && !keep(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    let mut out = out.into_bytes();
    out.extend_from_slice(end);
    std::borrow::Cow::Owned(out)
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(&escape_event(buf, self.keep_ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::escape_event;

    #[test]
    fn a_newline_in_a_value_cannot_forge_a_log_line() {
        let event = b"INFO login denied user=evil\nINFO login allowed user=admin\n";
        let written = escape_event(event, false);
        assert_eq!(&*written, b"INFO login denied user=evil\\nINFO login allowed user=admin\n".as_slice());
        assert_eq!(&*escape_event(b"\x1b[2mINFO\x1b[0m x\r\n", false), b"\\u{1b}[2mINFO\\u{1b}[0m x\\r\n".as_slice());
        assert_eq!(&*escape_event(b"\x1b[2mINFO\x1b[0m x\n", true), b"\x1b[2mINFO\x1b[0m x\n".as_slice());
        assert_eq!(&*escape_event(b"plain\tline\n", false), b"plain\tline\n".as_slice());
        assert_eq!(&*escape_event("c1 \u{9b}2J ü\n".as_bytes(), true), "c1 \\u{9b}2J ü\n".as_bytes());
    }
}
