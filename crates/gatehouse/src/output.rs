//! Printing command results: aligned tables for people, JSON for scripts. Everything goes through [`out!`] and
//! [`outln!`]: a reader that goes away (`gatehouse mailbox list | head -1`) ends the command quietly instead of
//! a panic, and control characters in values (a forged newline in a logged username) are shown escaped in
//! tables.

use std::io::Write;

use serde::Serialize;

/// Like `print!`, but a closed pipe ends the process quietly.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// Like `println!`, but a closed pipe ends the process quietly.
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes to standard output. When the reader has gone (EPIPE), nothing more can be shown: the process ends
/// with status 0, its work (one transaction, done before printing) already committed.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_fmt(args) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("gatehouse: error: cannot write to standard output: {err}");
        std::process::exit(74);
    }
}

/// Unix seconds as an RFC 3339 UTC time (the number itself when it is out of range).
pub fn utc_time(seconds: i64) -> String {
    gatehouse_core::clock::rfc3339(seconds).unwrap_or_else(|| seconds.to_string())
}

/// `text` with control characters shown as escapes (`\n`, `\u{1b}`), for one-line cells.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Prints `rows` as JSON (`json`) or as a table with `headers`.
pub fn print_list<T: Serialize>(json: bool, items: &[T], headers: &[&str], row: impl Fn(&T) -> Vec<String>) {
    if json {
        outln!("{}", serde_json::to_string_pretty(items).expect("records serialise"));
        return;
    }
    let rows: Vec<Vec<String>> =
        items.iter().map(|item| row(item).iter().map(|cell| printable(cell)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for cells in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        outln!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for cells in rows {
        line(cells);
    }
}

/// "unlimited" for 0, else the number with its unit.
pub fn limit(value: i64, unit: &str) -> String {
    if value == 0 { "unlimited".to_string() } else { format!("{value}{unit}") }
}

/// "yes"/"no".
pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}
