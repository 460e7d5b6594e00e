//! Running the `ssvae` binary as a user would, for the command-line tests.

use std::process::{Command, Output};

/// Runs `ssvae ARGS` (XDG_RUNTIME_DIR set, which lavapipe wants).
pub fn ssvae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssvae")).args(args).env("XDG_RUNTIME_DIR", std::env::temp_dir()).output().expect("run ssvae")
}

/// The last line of stdout, which train / eval / anomaly print as one JSON object.
pub fn last_json(o: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output; stderr: {}", String::from_utf8_lossy(&o.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}
