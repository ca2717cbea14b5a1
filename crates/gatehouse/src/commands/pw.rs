//! `gatehouse pw`: like `doveadm pw`. Without `--test` it prints a new `{SCHEME}…` hash of the password; with
//! `--test HASH` it exits 0 when the password matches, 1 when it does not, 2 when the hash cannot be checked
//! (unknown scheme, malformed hash) or anything else goes wrong.

use std::path::Path;
use std::process::ExitCode;

use gatehouse_config::Config;
use gatehouse_passwords::{GenerateScheme, Verification, VerifyOptions};

use crate::cli::PwArgs;
use crate::password_input::read_password;

const MISMATCH: u8 = 1;
const ERROR: u8 = 2;

/// Runs `pw` and returns its exit code.
pub fn run(args: &PwArgs, config_file: Option<&Path>) -> ExitCode {
    match execute(args, config_file) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("gatehouse: error: {err:#}");
            ExitCode::from(ERROR)
        }
    }
}

fn execute(args: &PwArgs, config_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    if let Some(stored) = &args.test {
        let password = read_password("Enter password: ", false)?;
        return Ok(match gatehouse_passwords::verify(stored, &password, &VerifyOptions::default()) {
            Verification::Match => {
                eprintln!("(verified)");
                ExitCode::SUCCESS
            }
            Verification::Mismatch => {
                eprintln!("(password mismatch)");
                ExitCode::from(MISMATCH)
            }
            Verification::Unsupported(why) => {
                eprintln!("gatehouse: error: unsupported password scheme: {why}");
                ExitCode::from(ERROR)
            }
            Verification::Malformed(why) => {
                eprintln!("gatehouse: error: malformed hash: {why}");
                ExitCode::from(ERROR)
            }
        });
    }
    let scheme = match &args.scheme {
        Some(name) => GenerateScheme::from_name(name, args.rounds)?,
        None => {
            let passwords = Config::load(config_file)?.config.passwords;
            GenerateScheme::from_name(&passwords.scheme, args.rounds.or(passwords.rounds))?
        }
    };
    let password = read_password("Enter password: ", true)?;
    // A one-off hash on this (non-async) thread; the server hashes only on its hash pool.
    outln!("{}", gatehouse_passwords::generate(&password, &scheme)?);
    Ok(ExitCode::SUCCESS)
}
