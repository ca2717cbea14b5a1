//! Reading new passwords: from standard input (`--password-stdin`, one line) or from a prompt without echo,
//! asked twice. Passwords are never taken as command-line arguments, where `ps` and shell history would show
//! them. The plaintext is wiped from memory after hashing.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// Reads a new password. `from_stdin` selects standard input; otherwise the terminal is asked.
pub fn read_new_password(from_stdin: bool, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let password = if from_stdin {
        let mut input = Zeroizing::new(String::new());
        std::io::stdin().read_to_string(&mut input).context("reading the password from standard input")?;
        let line = input.strip_suffix('\n').unwrap_or(&input);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\n') {
            bail!("--password-stdin expects one line, but standard input has several");
        }
        Zeroizing::new(line.to_string())
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("no terminal to ask for the {what} password: use --password-stdin");
        }
        let first = Zeroizing::new(rpassword::prompt_password(format!("New {what} password: "))?);
        let second = Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
        if first != second {
            bail!("the two passwords differ");
        }
        first
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}
