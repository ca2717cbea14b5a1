//! Values as the administration pages show them: quotas in MiB or GiB ("unlimited" for 0), protocols by the
//! names the forms give them, and the JSON the logs keep (a job run's summary, an audit entry's details) as
//! named fields instead of raw JSON.

use gatehouse_core::{ProtocolSet, Service};
use serde_json::Value;

/// The protocols with the names the forms give them.
pub(super) const PROTOCOL_LABELS: [(Service, &str); 7] = [
    (Service::Imap, "IMAP"),
    (Service::Pop3, "POP3"),
    (Service::Smtp, "SMTP"),
    (Service::Sieve, "ManageSieve"),
    (Service::Sogo, "Webmail (SOGo)"),
    (Service::Dav, "CalDAV/CardDAV"),
    (Service::Eas, "ActiveSync"),
];

/// A protocol set as the forms name its members ("all protocols", "none", or "IMAP, SMTP").
pub(in crate::web) fn protocol_names(set: ProtocolSet) -> String {
    if set == ProtocolSet::ALL {
        return "all protocols".into();
    }
    let names: Vec<&str> =
        PROTOCOL_LABELS.into_iter().filter(|(service, _)| set.contains(*service)).map(|(_, label)| label).collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// A quota in MiB as people read it: "unlimited" for 0, MiB below 1 GiB, GiB from there.
pub(in crate::web) fn quota_text(mib: i64) -> String {
    match mib {
        ..=0 => "unlimited".into(),
        1..1024 => format!("{mib} MiB"),
        _ if mib % 1024 == 0 => format!("{} GiB", mib / 1024),
        _ => format!("{:.1} GiB", mib as f64 / 1024.0),
    }
}

/// The counters of a sync or import summary, in the order they are read, with their labels.
const SUMMARY_COUNTS: [(&str, &str); 8] = [
    ("entries", "read"),
    ("created", "created"),
    ("updated", "updated"),
    ("deactivated", "deactivated"),
    ("unchanged", "unchanged"),
    ("missing_ignored", "missing, left alone"),
    ("not_imported", "not imported"),
    ("skipped", "skipped"),
];

/// A job run's summary as fields: "created 3 · updated 1 · skipped 2 (a@example.org: no address; …) · took
/// 1.2 s · refused: …". Keys it does not know are shown as `key: value`.
pub(super) fn summary_fields(summary: &Value) -> Vec<(String, String)> {
    let Some(object) = summary.as_object() else {
        return if summary.is_null() { Vec::new() } else { vec![("summary".into(), plain(summary))] };
    };
    let mut fields = Vec::new();
    for (key, label) in SUMMARY_COUNTS {
        if let Some(count) = object.get(key).and_then(Value::as_u64) {
            let mut text = count.to_string();
            if key == "skipped"
                && let Some(examples) = object.get("skipped_examples").and_then(Value::as_array)
                && !examples.is_empty()
            {
                let shown: Vec<String> = examples
                    .iter()
                    .take(3)
                    .map(|e| format!("{}: {}", plain(&e["address"]), plain(&e["reason"])))
                    .collect();
                let more = if examples.len() > 3 { "; …" } else { "" };
                text = format!("{count} ({}{more})", shown.join("; "));
            }
            fields.push((label.to_string(), text));
        }
    }
    if let Some(ms) = object.get("duration_ms").and_then(Value::as_u64) {
        fields.push(("took".into(), format!("{:.1} s", ms as f64 / 1000.0)));
    }
    if let Some(error) = object.get("error") {
        fields.push(("reason".into(), plain(error)));
    }
    let known = |key: &str| {
        SUMMARY_COUNTS.iter().any(|(k, _)| *k == key)
            || ["skipped_examples", "duration_ms", "error", "provider", "dry_run"].contains(&key)
    };
    for (key, value) in object.iter().filter(|(key, _)| !known(key)) {
        fields.push((key.replace('_', " "), plain(value)));
    }
    fields
}

/// An audit entry's details as `key: value` fields (nested values as compact text).
pub(super) fn detail_fields(details: &Value) -> Vec<(String, String)> {
    match details.as_object() {
        Some(object) => object.iter().map(|(key, value)| (key.replace('_', " "), plain(value))).collect(),
        None if details.is_null() => Vec::new(),
        None => vec![("details".into(), plain(details))],
    }
}

/// A JSON value as text: strings without quotes, lists joined with commas, `true`/`false` as yes/no.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => "none".into(),
        Value::Bool(flag) => if *flag { "yes" } else { "no" }.into(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_the_forms_name_them() {
        assert_eq!(quota_text(0), "unlimited");
        assert_eq!(quota_text(512), "512 MiB");
        assert_eq!(quota_text(2048), "2 GiB");
        assert_eq!(quota_text(1536), "1.5 GiB");
        assert_eq!(protocol_names(ProtocolSet::ALL), "all protocols");
        assert_eq!(protocol_names(ProtocolSet::NONE), "none");
        let set: ProtocolSet = [Service::Imap, Service::Sogo].into_iter().collect();
        assert_eq!(protocol_names(set), "IMAP, Webmail (SOGo)");
    }

    #[test]
    fn summaries_read_as_fields() {
        let summary = json!({
            "provider": "corp", "dry_run": false, "entries": 5, "created": 2, "updated": 0, "deactivated": 1,
            "unchanged": 1, "missing_ignored": 0, "not_imported": 0, "skipped": 1,
            "skipped_examples": [{ "address": "x@nowhere.example", "reason": "no such domain" }],
            "duration_ms": 1234, "error": "would deactivate 60 % of the mailboxes"
        });
        let fields = summary_fields(&summary);
        let text: Vec<String> = fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
        assert_eq!(
            text,
            [
                "read 5",
                "created 2",
                "updated 0",
                "deactivated 1",
                "unchanged 1",
                "missing, left alone 0",
                "not imported 0",
                "skipped 1 (x@nowhere.example: no such domain)",
                "took 1.2 s",
                "reason would deactivate 60 % of the mailboxes",
            ]
        );
        assert_eq!(summary_fields(&json!({ "mailboxes_created": 3 })), [("mailboxes created".into(), "3".into())]);
        assert_eq!(
            detail_fields(&json!({ "quota_mib": 100, "active": false, "names": ["a", "b"] })),
            [("active".into(), "no".into()), ("names".into(), "a, b".into()), ("quota mib".into(), "100".into())]
        );
    }
}
