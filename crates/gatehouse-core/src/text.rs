//! The one rule for free text that people type and others read — display names, descriptions, labels of app
//! passwords and API keys — whatever the entry point (command line, web UI, REST API, provisioning): at most
//! [`MAX_FREE_TEXT`] characters and no control characters (newlines, NUL, escape sequences), which would break
//! lines in logs and listings or smuggle markup into them. And the one rule for the login names of
//! administrators, domain administrators and master users ([`login_name`]).

use crate::Error;

/// The longest free text, in characters.
pub const MAX_FREE_TEXT: usize = 255;

/// Checks free text for `what` (`"description"`, `"display name"`, …): at most `max` characters and no control
/// characters. Surrounding whitespace is the caller's to trim.
pub fn check_free_text(what: &str, value: &str, max: usize) -> Result<(), Error> {
    let length = value.chars().count();
    if length > max {
        return Err(Error::invalid(format!("the {what} is {length} characters long; at most {max} are allowed")));
    }
    if let Some(bad) = value.chars().find(|c| c.is_control()) {
        return Err(Error::invalid(format!(
            "the {what} contains a control character ({}); only printable text is allowed",
            bad.escape_default()
        )));
    }
    Ok(())
}

/// Free text from elsewhere (a directory's display name) made to follow the rule: control characters become
/// spaces, and it is cut at `max` characters.
pub fn clean_free_text(value: &str, max: usize) -> String {
    value.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect::<String>().trim().to_string()
}

/// Normalises and checks the login name of an administrator, domain administrator or master user (`kind`
/// names which, for the error): lowercase letters, digits and `. _ - + @`, 1–255 characters.
pub fn login_name(kind: &str, input: &str) -> Result<String, Error> {
    let name = input.trim().to_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@'));
    if valid {
        Ok(name)
    } else {
        Err(Error::invalid(format!("'{}' is not a valid {kind} name (letters, digits and . _ - + @)", input.trim())))
    }
}

/// Percent-encodes `text` as one URL path segment or query value: everything but RFC 3986's unreserved
/// characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a+b/c d@x.org"), "a%2Bb%2Fc%20d%40x.org");
        assert_eq!(percent_encode("plain-name_1.x~"), "plain-name_1.x~");
    }

    #[test]
    fn login_names_are_lowercased_and_checked() {
        assert_eq!(login_name("admin", " Ops.Team+1@Example.org ").unwrap(), "ops.team+1@example.org");
        for bad in ["", "   ", "with space", "semi;colon", "star*master", &"x".repeat(256)] {
            let err = login_name("master user", bad).unwrap_err();
            assert!(err.to_string().contains("not a valid master user name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn free_text_is_printable_and_bounded() {
        assert!(check_free_text("description", "Die Bücher-Abteilung", MAX_FREE_TEXT).is_ok());
        let long = check_free_text("description", &"x".repeat(10 * 1024), MAX_FREE_TEXT).unwrap_err();
        assert_eq!(long.to_string(), "the description is 10240 characters long; at most 255 are allowed");
        for bad in ["two\nlines", "nul\0byte", "escape\u{1b}[2J", "tab\there", "c1\u{9b}"] {
            assert!(check_free_text("display name", bad, MAX_FREE_TEXT).is_err(), "{bad:?}");
        }
        assert_eq!(clean_free_text(" Carol\nExample\0 ", 255), "Carol Example");
        assert_eq!(clean_free_text(&"ü".repeat(300), 255).chars().count(), 255);
    }
}
