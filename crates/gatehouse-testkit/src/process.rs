//! Stopping test peers together with everything they forked: a peer's workers may sit in their own process
//! group or session (sogod's do), so signals go to each process of the tree, found through
//! `/proc/<pid>/task/<tid>/children`. Signals are sent with `kill(1)`, which keeps the crate free of `unsafe`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The direct children of `pid` (empty when it is gone).
pub(crate) fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("children")) else { continue };
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out
}

/// Sends `signal` (a name such as `TERM`) to each process; errors (a process already gone) are ignored.
pub(crate) fn signal(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-s")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Kills `root` and all its descendants with SIGKILL. Each process is stopped (SIGSTOP) before its children are
/// read, so none can fork a new one in between.
pub(crate) fn kill_tree(root: u32) {
    let mut all = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        if all.contains(&pid) {
            continue;
        }
        signal(&[pid], "STOP");
        all.push(pid);
        todo.extend(children(pid));
    }
    signal(&all, "KILL");
}

/// Processes whose command line contains `needle` (a unique temporary path, typically).
pub(crate) fn pids_with_arg(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let own = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
        })
        .collect()
}

/// Waits up to `timeout` for `child` to exit; true when it did.
pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Stops `child` and its descendants: `graceful` (a signal name) first if given, waiting up to `grace` for the
/// child to exit, then SIGKILL for whatever is left of the tree. The child is reaped.
pub(crate) fn stop_child(child: &mut Child, graceful: Option<&str>, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(sig) = graceful {
        signal(&[child.id()], sig);
        if wait_exit(child, grace) {
            return;
        }
    }
    kill_tree(child.id());
    let _ = child.wait();
}
