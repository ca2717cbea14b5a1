//! The SCIM 2.0 conformance checker: PyPI `scim2-tester` (pinned in `scim/requirements.txt`), in the virtualenv
//! `scripts/test` makes and names in `GATEHOUSE_TEST_SCIM_PYTHON`, driven by `scim/check.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::require_peer;

/// What the checker reported.
#[derive(Debug)]
pub struct Conformance {
    /// No check ended in ERROR or CRITICAL.
    pub passed: bool,
    /// One line per check, and the count of failures.
    pub report: String,
}

/// Runs every check of scim2-tester against the SCIM base `url` with `token`, creating Users named `address`.
/// `None` (after [`require_peer`]) when the checker is not installed.
pub fn check_server(url: &str, token: &str, address: &str) -> Option<Conformance> {
    let python = std::env::var_os("GATEHOUSE_TEST_SCIM_PYTHON").map(PathBuf::from).filter(|p| p.is_file());
    let Some(python) = python else {
        require_peer(
            "scim2-tester",
            "GATEHOUSE_TEST_SCIM_PYTHON does not name its virtualenv's python (scripts/test makes it)",
        );
        return None;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scim/check.py");
    let output = Command::new(python).arg(script).args([url, token, address]).output().expect("run scim2-tester");
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Some(Conformance { passed: output.status.success(), report })
}
