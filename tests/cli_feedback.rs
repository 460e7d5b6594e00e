//! `ssvae feedback` as a user meets it, on the built-in synthetic dataset (CPU, tiny sizes):
//! marks given as test indices, anomaly_scores.csv rows or image files extend and retrain an
//! anomaly run and write adjusted scores; bad marks are refused before anything is changed.

mod common;

use std::path::Path;
use std::process::Output;

use common::cli::{last_json, ssvae, stderr};

/// This test's own folder (removed when the test passes), made and empty.
fn tmp(name: &str) -> common::TempDir {
    common::TempDir::new("clifb", name)
}

const TINY: &[&str] =
    &["--backend", "cpu", "--synthetic-train", "256", "--synthetic-test", "64", "--hidden", "32,16", "--batch-size", "32", "--quiet"];

fn anomaly(out: &Path, model: &str) -> Output {
    let mut args =
        vec!["anomaly", "--model", model, "--anomaly-class", "3", "--labels", "40", "--epochs", "1", "--out", out.to_str().unwrap()];
    args.extend_from_slice(TINY);
    ssvae(&args)
}

fn feedback(run: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["feedback", "--run", run.to_str().unwrap(), "--epochs", "1", "--backend", "cpu", "--quiet", "--score-samples", "2"];
    args.extend_from_slice(extra);
    ssvae(&args)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn refused(o: &Output, want: &str) {
    assert!(!o.status.success(), "should fail with '{want}'");
    let e = stderr(o);
    assert!(e.contains(want), "expected '{want}' in: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn feedback_extends_retrains_and_adjusts_scores() {
    let dir = tmp("flow");
    let run = dir.join("run");
    let o = anomaly(&run, "ss-dense");
    assert!(o.status.success(), "{}", stderr(&o));
    let auc_before = last_json(&o)["auc"].as_f64().unwrap();
    // the user's marks: the 3 highest-scoring normal test samples, the 2 lowest anomalies
    let csv = std::fs::read_to_string(run.join("anomaly_scores.csv")).unwrap();
    let mut rows: Vec<(usize, bool, f64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[2] == "1", f[3].parse().unwrap())
        })
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let fp: Vec<usize> = rows.iter().filter(|r| !r.1).take(3).map(|r| r.0).collect();
    let fnn: Vec<usize> = rows.iter().rev().filter(|r| r.1).take(2).map(|r| r.0).collect();
    let fp_file = write(&dir, "fp.txt", &fp.iter().map(|i| format!("{i}\n")).collect::<String>());
    // false negatives as rows copied from anomaly_scores.csv, header kept
    let header = csv.lines().next().unwrap();
    let fn_rows: String = fnn.iter().map(|&i| format!("{}\n", csv.lines().nth(i + 1).unwrap())).collect();
    let fn_file = write(&dir, "fn.csv", &format!("{header}\n{fn_rows}"));

    // refused before anything changes
    refused(&feedback(&run, &["--false-positives", &write(&dir, "far.txt", "1\n100000\n")]), "index 100000 is out of range");
    refused(&feedback(&run, &["--false-positives", &write(&dir, "empty.txt", "\n \n")]), "empty");
    refused(
        &feedback(&run, &["--false-positives", &fp_file, "--false-negatives", &write(&dir, "dup.txt", &format!("{}\n", fp[1]))]),
        "marked both",
    );
    refused(&feedback(&run, &[]), "--false-positives");
    assert!(!run.join("feedback_samples.idx").exists(), "a refused call must not record feedback");

    let o = feedback(&run, &["--false-positives", &fp_file, "--false-negatives", &fn_file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["false_positives"], 3);
    assert_eq!(j["false_negatives"], 2);
    assert_eq!(j["slots"], 12, "two classes added");
    assert_eq!(j["epochs"], 2, "resumed, not restarted");
    assert_eq!(j["auc_before_feedback"].as_f64().unwrap(), auc_before);
    for key in ["auc", "auc_adjusted", "auc_unmarked", "auc_adjusted_unmarked"] {
        let v = j[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {j}"));
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    for f in ["feedback_samples.idx", "model.before-feedback.safetensors", "summary.before-feedback.json"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let scores = std::fs::read_to_string(run.join("anomaly_scores.csv")).unwrap();
    assert_eq!(scores.lines().next().unwrap(), "index,label,anomalous,score,p_false_positive,p_false_negative,adjusted_score,id");
    for l in scores.lines().skip(1) {
        let f: Vec<f64> = l.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        let want = ssvae::eval::feedback::adjust_score(f[0], f[1], f[2], 0.0);
        assert!((f[3] - want).abs() <= 1e-3 * want.abs().max(1.0), "eq. 6 in {l}");
    }

    // a second round with an image file (IDX, n x 784): recorded on top, no second extension
    let mut idx = vec![0u8, 0, 8, 2, 0, 0, 0, 1, 0, 0, 3, 16];
    idx.extend((0..784).map(|i| (i % 251) as u8));
    let img = dir.join("new.idx");
    std::fs::write(&img, idx).unwrap();
    let o = feedback(&run, &["--false-positives", img.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!((j["false_positives"].as_u64(), j["false_negatives"].as_u64(), j["slots"].as_u64()), (Some(4), Some(2), Some(12)));
    // a marked test sample cannot switch sides in a later round
    refused(&feedback(&run, &["--false-negatives", &fp_file]), "marked both");

    // `score` of a feedback run adds the adjusted score
    let out = dir.join("scores.csv");
    let o = ssvae(&[
        "score",
        "--run",
        run.to_str().unwrap(),
        "--input",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().next().unwrap(), "index,score,predicted_class,adjusted_score");

    // plain resume keeps the feedback classes and samples
    let o = ssvae(&["train", "--resume", run.to_str().unwrap(), "--epochs", "1", "--backend", "cpu", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last_json(&o)["auc_adjusted"].as_f64().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn feedback_needs_an_ss_anomaly_run() {
    let dir = tmp("eu");
    let run = dir.join("eu");
    let o = anomaly(&run, "eu-dense");
    assert!(o.status.success(), "{}", stderr(&o));
    refused(&feedback(&run, &["--false-positives", &write(&dir, "fp.txt", "0\n")]), "has no classifier");
    let plain = dir.join("plain");
    let mut args = vec!["train", "--out", plain.to_str().unwrap(), "--epochs", "1", "--labels", "20"];
    args.extend_from_slice(TINY);
    assert!(ssvae(&args).status.success());
    refused(&feedback(&plain, &["--false-positives", &write(&dir, "fp.txt", "0\n")]), "not an anomaly run");
    let _ = std::fs::remove_dir_all(&dir);
}
