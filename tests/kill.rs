//! `kill -9` at random moments of `ssvae train` never leaves a folder that `eval` cannot open
//! or `--resume` cannot continue, and the checkpoint found is exactly the one an uninterrupted
//! run had after the same number of epochs (weights, optimizer state, epochs and steps).
//! `SSVAE_KILLS` sets the number of kills (default 12; RESULTS.md reports a run of 100).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{last_json, ssvae, stderr};
use rand::{Rng, SeedableRng};
use ssvae::run::folder;

// A constant learning rate (the default; given explicitly): the references are runs of 1..4
// epochs, and a schedule over the run (`--lr-schedule cosine`) makes epoch k of a 4-epoch run
// differ from a k-epoch run.
// Resuming a scheduled run is checked in tests/run_api.rs.
const ARGS: &[&str] = &[
    "--lr-schedule",
    "constant",
    "--backend",
    "cpu",
    "--synthetic-train",
    "512",
    "--synthetic-test",
    "64",
    "--hidden",
    "64,32",
    "--batch-size",
    "32",
    "--labels",
    "20",
    "--quiet",
    "--epochs",
    "4",
];

/// This test's own folder (removed when the test passes); not made yet.
fn tmp(name: &str) -> common::TempDir {
    common::TempDir::unmade("kill", name)
}

/// Every tensor of a checkpoint (parameters and optimizer state), sorted by name.
fn tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let w = folder::load(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).weights;
    let mut v: Vec<(String, Vec<f32>)> = [(&w.params, "p"), (&w.state1, "s1"), (&w.state2, "s2")]
        .iter()
        .flat_map(|(t, k)| t.iter().map(move |(n, _, x)| (format!("{k}.{n}"), x.clone())))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn kill_9_leaves_a_folder_that_opens_resumes_and_matches_its_epoch() {
    // references: the checkpoint after each number of epochs, uninterrupted
    let mut reference = Vec::new();
    for epochs in 1..=4 {
        let out = tmp(&format!("ref{epochs}"));
        let mut args = vec!["train", "--out", out.to_str().unwrap()];
        args.extend_from_slice(ARGS);
        *args.last_mut().unwrap() = ["1", "2", "3", "4"][epochs - 1];
        let o = ssvae(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        reference.push((tensors(&out), folder::load(&out).unwrap().config.steps_done));
    }
    let full = Instant::now();
    let out = tmp("timing");
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend_from_slice(ARGS);
    assert!(ssvae(&args).status.success());
    let run_time = full.elapsed();

    let kills: usize = std::env::var("SSVAE_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut seen_epochs = std::collections::BTreeSet::new();
    let mut absent = 0;
    for k in 0..kills {
        let out = tmp(&format!("k{k}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_ssvae"))
            .args(["train", "--out", out.to_str().unwrap()])
            .args(ARGS)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // anywhere from process start to the end of training
        std::thread::sleep(Duration::from_secs_f64(rng.random::<f64>() * run_time.as_secs_f64()));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !out.exists() {
            absent += 1; // killed before the folder existed: nothing to check
            continue;
        }
        // eval opens it (a folder never exists without a checkpoint)...
        let e = ssvae(&["eval", "--run", out.to_str().unwrap(), "--backend", "cpu"]);
        assert!(e.status.success(), "kill {k}: eval fails: {}", stderr(&e));
        // ...with the weights of exactly the epoch its progress says
        let c = folder::load(&out).unwrap().config;
        seen_epochs.insert(c.epochs_done);
        if c.epochs_done > 0 {
            let (want, steps) = &reference[c.epochs_done - 1];
            assert_eq!(c.steps_done, *steps, "kill {k}: steps of epoch {}", c.epochs_done);
            assert!(tensors(&out) == *want, "kill {k}: the weights are not those of epoch {}", c.epochs_done);
        }
        // ...and --resume continues it to the end, where it equals the uninterrupted run
        if c.epochs_done < 4 {
            let more = (4 - c.epochs_done).to_string();
            let r = ssvae(&["train", "--resume", out.to_str().unwrap(), "--epochs", &more, "--backend", "cpu", "--quiet"]);
            assert!(r.status.success(), "kill {k}: resume fails: {}", stderr(&r));
            assert_eq!(last_json(&r)["epochs"], 4);
            assert!(tensors(&out) == reference[3].0, "kill {k}: resumed from epoch {} but ends elsewhere", c.epochs_done);
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    common::notice(&format!(
        "kill -9: {kills} kills, {absent} before the folder existed, the others left checkpoints at epochs {seen_epochs:?}; all opened and resumed"
    ));
}

/// Ctrl-C (SIGINT) stops after the current step with a checkpoint, prints the summary and how
/// to resume, and exits with 130; the resume then finishes the run.
#[test]
fn ctrl_c_writes_a_checkpoint_and_says_how_to_resume() {
    let out = tmp("sigint");
    let mut args: Vec<&str> = ARGS.to_vec();
    *args.last_mut().unwrap() = "400"; // far longer than the test waits
    let child = Command::new(env!("CARGO_BIN_EXE_ssvae"))
        .args(["train", "--out", out.to_str().unwrap()])
        .args(&args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !folder::has_run(&out) && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Command::new("kill").args(["-s", "INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["interrupted"], true, "{j}");
    let err = stderr(&o);
    assert!(err.contains("continue with: ssvae train --resume") && !err.contains("panicked"), "{err}");
    let c = folder::load(&out).unwrap().config;
    assert_eq!(c.steps_done, j["steps"].as_u64().unwrap(), "the checkpoint holds every step done");
    let r = ssvae(&["train", "--resume", out.to_str().unwrap(), "--epochs", "1", "--backend", "cpu", "--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(last_json(&r)["epochs"].as_u64().unwrap(), c.epochs_done as u64 + 1);
}
