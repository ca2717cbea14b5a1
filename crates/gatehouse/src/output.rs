//! Printing command results: aligned tables for people, JSON for scripts.

use serde::Serialize;

/// Prints `rows` as JSON (`json`) or as a table with `headers`.
pub fn print_list<T: Serialize>(json: bool, items: &[T], headers: &[&str], row: impl Fn(&T) -> Vec<String>) {
    if json {
        println!("{}", serde_json::to_string_pretty(items).expect("records serialise"));
        return;
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for cells in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
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
