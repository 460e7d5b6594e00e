//! The bad-input census: one case per class of defect found by trying `ssvae` as a new user
//! would, each with the fragment its message must contain, no panic, and (where a folder is
//! involved) nothing changed. Numeric flags and sizes are in tests/cli.rs
//! (`bad_input_gives_clear_errors`), damaged checkpoints in tests/run_api.rs, kills in
//! tests/kill.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{ssvae, stderr};

/// This test's own folder (removed when the test passes); not made yet.
fn tmp(name: &str) -> common::TempDir {
    common::TempDir::unmade("bad", name)
}

/// A tiny trained SS_D run on 28x28 glyphs.
fn tiny_run(name: &str, extra: &[&str]) -> common::TempDir {
    let out = tmp(name);
    let mut args = vec![
        "train",
        "--backend",
        "cpu",
        "--synthetic-train",
        "256",
        "--synthetic-test",
        "64",
        "--hidden",
        "16,16",
        "--batch-size",
        "32",
        "--epochs",
        "1",
        "--labels",
        "20",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = ssvae(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

fn idx_images(path: &Path, n: u32, h: u32, w: u32) {
    let mut b = vec![0u8, 0, 8, 3];
    for d in [n, h, w] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.resize(b.len() + (n * h * w) as usize, 0);
    std::fs::write(path, b).unwrap();
}

fn fails_with(o: &std::process::Output, want: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail with '{want}'");
    assert!(err.contains(want), "expected '{want}' in: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
}

/// Every file of `dir` with its bytes, to see that a refused command changed nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn scoring_input_must_have_the_models_shape() {
    let run = tiny_run("score", &[]);
    let (wrong, empty) = (tmp("wrong.idx"), tmp("empty.idx"));
    idx_images(&wrong, 2, 14, 56); // as many pixels as 28x28, another shape
    idx_images(&empty, 0, 28, 28);
    let score = |input: &Path| ssvae(&["score", "--run", run.to_str().unwrap(), "--input", input.to_str().unwrap(), "--backend", "cpu"]);
    fails_with(&score(&wrong), "images of [14, 56], the model was trained on 28x28");
    fails_with(&score(&empty), "holds no samples");
}

#[test]
fn plot_refuses_a_metrics_log_without_epochs() {
    let run = tiny_run("plot", &[]);
    let metrics = run.join("metrics.jsonl");
    let good = std::fs::read_to_string(&metrics).unwrap();
    std::fs::write(&metrics, format!("{good}not json\n")).unwrap();
    fails_with(&ssvae(&["plot", "--run", run.to_str().unwrap(), "--backend", "cpu"]), "metrics.jsonl line 2: not an epoch line");
    std::fs::write(&metrics, "").unwrap();
    fails_with(&ssvae(&["plot", "--run", run.to_str().unwrap(), "--backend", "cpu"]), "no epochs recorded yet");
    fails_with(&ssvae(&["plot", "--run", run.to_str().unwrap(), "--points", "0", "--backend", "cpu"]), "--points must be at least 1");
}

#[test]
fn a_gpu_api_that_does_not_exist_is_an_error_not_a_fallback() {
    let o = Command::new(env!("CARGO_BIN_EXE_ssvae"))
        .args(["devices"])
        .env("WGPU_BACKEND", "banana")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    fails_with(&o, "WGPU_BACKEND 'banana' names no GPU API");
    let o = Command::new(env!("CARGO_BIN_EXE_ssvae"))
        .args(["train", "--epochs", "1", "--quiet", "--out", tmp("banana").to_str().unwrap()])
        .env("WGPU_BACKEND", "banana")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    fails_with(&o, "names no GPU API");
}

#[test]
fn refused_commands_leave_the_run_folder_as_it_was() {
    let run = tiny_run("feedback", &["--anomaly-class", "3"]);
    let before = snapshot(&run);
    let marks = tmp("marks.txt");
    std::fs::write(&marks, "0\n1\n").unwrap();
    let r = run.to_str().unwrap();
    fails_with(
        &ssvae(&["feedback", "--run", r, "--false-positives", marks.to_str().unwrap(), "--epochs", "0", "--backend", "cpu", "--quiet"]),
        "--epochs must be at least 1",
    );
    fails_with(
        &ssvae(&["feedback", "--run", r, "--false-positives", marks.to_str().unwrap(), "--repeat", "0", "--backend", "cpu", "--quiet"]),
        "--repeat must be at least 1",
    );
    fails_with(&ssvae(&["train", "--resume", r, "--latent", "8", "--backend", "cpu", "--quiet"]), "--latent would change the saved run");
    // the training levers change the objective or the batches: a resume keeps the run's own
    fails_with(
        &ssvae(&[
            "train",
            "--resume",
            r,
            "--kl-warmup",
            "0.3",
            "--labeled-share",
            "0.25",
            "--label-smoothing",
            "0.1",
            "--consistency-weight",
            "5",
            "--pi-to-decoder",
            "straight-through",
            "--backend",
            "cpu",
            "--quiet",
        ]),
        "--label-smoothing, --consistency-weight, --pi-to-decoder, --kl-warmup, --labeled-share would change the saved run",
    );
    fails_with(&ssvae(&["train", "--resume", r, "--lr", "-1", "--backend", "cpu", "--quiet"]), "--lr must be a positive finite number");
    assert!(snapshot(&run) == before, "a refused command changed the run folder");
}

#[test]
fn constant_and_extreme_series_channels_are_reported() {
    // channel a: normal readings and one 1e30 cell; channel b: constant
    let csv = tmp("channels.csv");
    let mut text = String::from("a,b,label\n");
    for i in 0..400 {
        let a = if i == 123 { 1e30 } else { ((i * 37 % 101) as f64 - 50.0) / 25.0 };
        text += &format!("{a},7.5,{}\n", if (i / 20) % 2 == 0 { "x" } else { "y" });
    }
    std::fs::write(&csv, text).unwrap();
    let train = |name: &str, extra: &[&str]| {
        let out = tmp(name);
        let mut args = vec!["train", "--model", "ss-rnn", "--dataset", "csv", "--train-csv", csv.to_str().unwrap()];
        args.extend(["--csv-layout", "long", "--window", "20", "--label-column", "label", "--epochs", "1", "--batch-size", "8"]);
        args.extend(["--labels", "4", "--backend", "cpu", "--quiet", "--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let o = ssvae(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let err = stderr(&train("channels-run", &[]));
    assert!(err.contains("channel a:") && err.contains("a few extreme values set its scale"), "{err}");
    assert!(err.contains("channel(s) b are constant"), "{err}");
    // robust scaling: the extreme value no longer sets the scale, so no note about it
    let o = train("channels-robust", &["--scaling", "robust"]);
    assert!(!stderr(&o).contains("a few extreme values"), "{}", stderr(&o));
}
