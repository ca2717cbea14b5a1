//! Reading passwords: from standard input (one line) or from a prompt without echo. Passwords are never taken
//! as command-line arguments, where `ps` and shell history would show them. The plaintext is wiped from memory
//! after use.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// Reads one line from standard input, without its line ending.
fn stdin_line() -> anyhow::Result<Zeroizing<String>> {
    let mut input = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut input).context("reading the password from standard input")?;
    let line = input.strip_suffix('\n').unwrap_or(&input);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains('\n') {
        bail!("standard input must hold one line (the password), but it has several");
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// Asks on the terminal without echo, twice when `confirm`.
fn prompt(question: &str, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    let first = Zeroizing::new(rpassword::prompt_password(question)?);
    if confirm {
        let second = Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
        if first != second {
            bail!("the two passwords differ");
        }
    }
    Ok(first)
}

/// Reads a password: asked on the terminal when there is one, else one line of standard input.
pub fn read_password(question: &str, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() { prompt(question, confirm) } else { stdin_line() }
}

/// Reads a new password for an account. `from_stdin` (`--password-stdin`) selects standard input; otherwise
/// the terminal is asked twice, and without a terminal it is an error (so a script never hangs).
pub fn read_new_password(from_stdin: bool, what: &str) -> anyhow::Result<Zeroizing<String>> {
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
