//! docs/configuration.md is generated from the configuration type itself: every key of `Config` with its doc
//! comment (read from this crate's source with `syn`), its default (from `Config::default()`), and its
//! environment variable. This test fails when the file no longer matches, so the reference cannot drift from the
//! code; `GATEHOUSE_UPDATE_DOCS=1 cargo test -p gatehouse-config --test reference` writes it anew.

use std::collections::BTreeMap;

use gatehouse_config::{Config, ENV_PREFIX};

/// A struct of the source: its doc comment and its fields (name, type as written, doc comment).
struct Described {
    doc: String,
    fields: Vec<(String, String, String)>,
}

/// The text of `///` comments, joined into one paragraph.
fn doc_of(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value: syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), .. }),
                ..
            }) => Some(text.value().trim().to_string()),
            _ => None,
        })
        .collect();
    lines.join(" ").trim().to_string()
}

/// The structs and enums of the configuration source.
fn read_source() -> (BTreeMap<String, Described>, BTreeMap<String, Vec<String>>) {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let file = syn::parse_file(&source).unwrap();
    let mut structs = BTreeMap::new();
    let mut enums = BTreeMap::new();
    for item in file.items {
        match item {
            syn::Item::Struct(item) => {
                let fields = item
                    .fields
                    .iter()
                    .filter(|field| matches!(field.vis, syn::Visibility::Public(_)))
                    .filter_map(|field| {
                        let name = field.ident.as_ref()?.to_string();
                        let ty = field.ty.to_token_stream_string();
                        Some((name, ty, doc_of(&field.attrs)))
                    })
                    .collect();
                structs.insert(item.ident.to_string(), Described { doc: doc_of(&item.attrs), fields });
            }
            syn::Item::Enum(item) => {
                // The configuration's enums are written in lower case (`rename_all = "lowercase"`).
                let variants = item.variants.iter().map(|v| v.ident.to_string().to_ascii_lowercase()).collect();
                enums.insert(item.ident.to_string(), variants);
            }
            _ => {}
        }
    }
    (structs, enums)
}

/// A type as written, without spaces (`Option<Secret>`).
trait TypeText {
    fn to_token_stream_string(&self) -> String;
}

impl TypeText for syn::Type {
    fn to_token_stream_string(&self) -> String {
        quote::ToTokens::to_token_stream(self).to_string().replace(' ', "")
    }
}

/// What a value of `ty` looks like, for the reference.
fn kind_of(ty: &str, enums: &BTreeMap<String, Vec<String>>) -> String {
    let inner = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')).unwrap_or(ty);
    let kind = match inner {
        "String" | "DatabaseUrl" => "text".to_string(),
        "Secret" => "secret text".to_string(),
        "bool" => "true / false".to_string(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i64" => "number".to_string(),
        "SocketAddr" => "address:port".to_string(),
        "Vec<String>" => "list of text".to_string(),
        other => match enums.get(other) {
            Some(variants) => variants.join(" / "),
            None => other.to_string(),
        },
    };
    if ty.starts_with("Option<") { format!("{kind}, optional") } else { kind }
}

/// A default value as the reference shows it.
fn shown(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => "(unset)".to_string(),
        Some(serde_json::Value::String(text)) if text.is_empty() => "(empty)".to_string(),
        Some(serde_json::Value::String(text)) => format!("`{text}`"),
        Some(serde_json::Value::Array(items)) if items.is_empty() => "(none)".to_string(),
        Some(other) => format!("`{other}`"),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn generate() -> String {
    let (structs, enums) = read_source();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let root = &structs["Config"];
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the configuration type (`crates/gatehouse-config/src/lib.rs`) by the test\n\
         `crates/gatehouse-config/tests/reference.rs`, which fails when this file no longer matches the code.\n\n\
         Each key can be set in `gatehouse.toml` (top-level keys first, then `[section]` tables), as an environment\n\
         variable (`GATEHOUSE_` and the key in capitals, sections joined with `__`), or as that variable with\n\
         `_FILE` naming a file that holds the value (for secrets from systemd credentials or container secrets).\n\
         Environment variables win over the file; an unknown key in the file is an error.\n",
    );
    let header = "| key | value | default | environment variable | meaning |\n|---|---|---|---|---|\n";
    out.push_str("\n## Top level\n\n");
    out.push_str(header);
    let mut sections = Vec::new();
    for (name, ty, doc) in &root.fields {
        if let Some(section) = structs.get(ty.as_str()) {
            sections.push((name, section, doc));
            continue;
        }
        let env = format!("{ENV_PREFIX}{}", name.to_ascii_uppercase());
        out.push_str(&format!(
            "| `{name}` | {} | {} | `{env}` | {} |\n",
            kind_of(ty, &enums),
            shown(defaults.get(name)),
            cell(doc)
        ));
    }
    for (section_name, section, doc) in sections {
        let about = if section.doc.is_empty() { doc } else { &section.doc };
        out.push_str(&format!("\n## `[{section_name}]`\n\n{about}\n\n"));
        out.push_str(header);
        for (name, ty, doc) in &section.fields {
            let env = format!("{ENV_PREFIX}{}__{}", section_name.to_ascii_uppercase(), name.to_ascii_uppercase());
            let default = defaults.get(section_name.as_str()).and_then(|s| s.get(name));
            out.push_str(&format!(
                "| `{name}` | {} | {} | `{env}` | {} |\n",
                kind_of(ty, &enums),
                shown(default),
                cell(doc)
            ));
        }
    }
    out
}

#[test]
fn the_configuration_reference_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let generated = generate();
    if std::env::var_os("GATEHOUSE_UPDATE_DOCS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/configuration.md does not match the configuration type: run \
         GATEHOUSE_UPDATE_DOCS=1 cargo test -p gatehouse-config --test reference"
    );
    // Every key the configuration knows is in the reference.
    for key in gatehouse_config::known_keys() {
        let last = key.rsplit('.').next().unwrap();
        assert!(generated.contains(&format!("| `{last}` |")), "{key} is missing from the reference");
    }
}
