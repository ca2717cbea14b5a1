//! Reading passwords: from standard input (one line) or from a prompt without echo. Passwords are never taken
//! as command-line arguments, where `ps` and shell history would show them. The plaintext is wiped from memory
//! after use. Passwords are bytes: a line of standard input is taken as it is, in whatever encoding (a Latin-1
//! password from an old system stays exactly the bytes it was).

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// Reads one line from standard input, without its line ending.
fn stdin_line() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut input = Zeroizing::new(Vec::new());
    std::io::stdin().read_to_end(&mut input).context("reading the password from standard input")?;
    let line = input.strip_suffix(b"\n").unwrap_or(&input);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.contains(&b'\n') {
        bail!("standard input must hold one line (the password), but it has several");
    }
    Ok(Zeroizing::new(line.to_vec()))
}

/// Asks on the terminal without echo, twice when `confirm`.
fn prompt(question: &str, confirm: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let first = Zeroizing::new(rpassword::prompt_password(question)?);
    if confirm {
        let second = Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
        if first != second {
            bail!("the two passwords differ");
        }
    }
    Ok(Zeroizing::new(first.as_bytes().to_vec()))
}

/// Reads a password: asked on the terminal when there is one, else one line of standard input.
pub fn read_password(question: &str, confirm: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if std::io::stdin().is_terminal() { prompt(question, confirm) } else { stdin_line() }
}

/// Reads a new password for an account. `from_stdin` (`--password-stdin`) selects standard input; otherwise
/// the terminal is asked twice, and without a terminal it is an error (so a script never hangs).
pub fn read_new_password(from_stdin: bool, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let password = if from_stdin {
        stdin_line()?
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the {what} password: use --password-stdin");
        }
        prompt(&format!("New {what} password: "), true)?
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// A new secret that must be text (an LDAP bind password, a client secret), named in full by `what`: one line
/// of standard input with `from_stdin` (`--secret-stdin`), else asked twice on the terminal.
pub fn read_new_secret_text(from_stdin: bool, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let bytes = if from_stdin {
        stdin_line()?
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the {what}: use --secret-stdin");
        }
        prompt(&format!("New {what}: "), true)?
    };
    if bytes.is_empty() {
        bail!("the {what} is empty");
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => bail!("the {what} must be UTF-8 text"),
    }
}
