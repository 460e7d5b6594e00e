//! The `ssvae` command line as a user meets it: the last line of train and eval is JSON,
//! resuming with more labels keeps the weights, bad input gives a clear error and no panic,
//! divergence stops training and keeps the last good checkpoint. CPU backend, tiny sizes.

mod common;

use std::path::Path;
use std::process::Output;

use common::cli::{last_json, ssvae, stderr};

/// This test's own folder (removed when the test passes); not made yet.
fn tmp(name: &str) -> common::TempDir {
    common::TempDir::unmade("cli", name)
}

const TINY: &[&str] =
    &["--backend", "cpu", "--synthetic-train", "256", "--synthetic-test", "64", "--hidden", "32,16", "--batch-size", "32", "--quiet"];

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--out", out.to_str().unwrap()];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    ssvae(&args)
}

#[test]
fn semi_unsupervised_gmdgm_reports_cluster_and_label_in_train_and_eval() {
    let out = tmp("gmdgm");
    let o = train(
        &out,
        &["--model", "gmdgm-dense", "--latent", "4", "--epochs", "1", "--labels", "30", "--labeled-classes", "0,1,2", "--extra-slots", "2"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    let acc = j["cluster_accuracy"].as_f64().unwrap_or_else(|| panic!("no cluster_accuracy: {j}"));
    assert!((0.0..=1.0).contains(&acc), "{j}");
    assert!(j["labeled_class_accuracy"].is_number() && j["unlabeled_class_accuracy"].is_number(), "{j}");
    assert_eq!(j["slot_class"].as_array().map(|a| a.len()), Some(j["slots"].as_u64().unwrap() as usize), "{j}");
    // the GM-DGM paper's rule: the labeled classes' slots keep their class
    let kept = &j["cluster_labeled_slots_kept"];
    assert!(kept["accuracy"].is_number() && kept["labeled_class_accuracy"].is_number(), "{j}");
    // eval of the saved run maps the slots on the same training split: the same scores
    let e = ssvae(&["eval", "--run", out.to_str().unwrap(), "--backend", "cpu"]);
    assert!(e.status.success(), "{}", stderr(&e));
    let je = last_json(&e);
    assert_eq!(je["cluster"]["accuracy"], j["cluster_accuracy"], "{je}");
    assert_eq!(je["cluster"]["slot_class"], j["slot_class"], "{je}");
    assert_eq!(je["cluster"]["labeled_slots_kept"], j["cluster_labeled_slots_kept"], "{je}");
}

#[test]
fn train_eval_resume_with_more_labels() {
    let out = tmp("resume");
    let o = train(&out, &["--epochs", "2", "--labels", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    for key in ["model", "dataset", "labels", "epochs", "accuracy", "log_loss", "seconds", "samples_per_s", "backend", "adapter"] {
        assert!(j.get(key).is_some(), "missing {key} in {j}");
    }
    assert_eq!(j["epochs"], 2);
    assert_eq!(j["labels"], 20);
    assert!(j["accuracy"].as_f64().unwrap() > 0.0);
    for f in [
        "checkpoint/config.json",
        "checkpoint/model.safetensors",
        "checkpoint/optimizer.safetensors",
        "checkpoint/manifest.json",
        "metrics.jsonl",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 2);

    let e = ssvae(&["eval", "--run", out.to_str().unwrap(), "--backend", "cpu"]);
    assert!(e.status.success(), "{}", stderr(&e));
    let je = last_json(&e);
    assert_eq!(je["accuracy"], j["accuracy"], "eval of the saved run must reproduce the final test accuracy");

    // more labels arrive: continue from the saved weights
    let r = ssvae(&["train", "--resume", out.to_str().unwrap(), "--labels", "100", "--epochs", "1", "--backend", "cpu", "--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let jr = last_json(&r);
    assert_eq!(jr["epochs"], 3);
    assert_eq!(jr["labels"], 100);
    assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 3);

    // a validation hold-out survives --resume
    let v = tmp("validation");
    let o = train(&v, &["--epochs", "1", "--labels", "20", "--validation", "56"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["evaluated_on"], "validation");
    let r = ssvae(&["train", "--resume", v.to_str().unwrap(), "--epochs", "1", "--backend", "cpu", "--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let jr = last_json(&r);
    assert_eq!(jr["evaluated_on"], "validation");
    // eval reads the split the run was reported on: the hold-out, not the test set; the test
    // split only when asked
    let e = ssvae(&["eval", "--run", v.to_str().unwrap(), "--backend", "cpu"]);
    assert!(e.status.success(), "{}", stderr(&e));
    let je = last_json(&e);
    assert_eq!((je["split"].as_str(), je["n"].as_u64()), (Some("validation"), Some(56)), "{je}");
    assert_eq!(je["accuracy"], jr["accuracy"], "eval must reproduce the reported validation accuracy");
    let e = ssvae(&["eval", "--run", v.to_str().unwrap(), "--backend", "cpu", "--split", "test"]);
    assert!(e.status.success(), "{}", stderr(&e));
    let je = last_json(&e);
    assert_eq!((je["split"].as_str(), je["n"].as_u64()), (Some("test"), Some(64)), "{je}");
    let e = ssvae(&["eval", "--run", out.to_str().unwrap(), "--backend", "cpu", "--split", "validation"]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("--split validation:") && stderr(&e).contains("without --validation N"), "{}", stderr(&e));

    // a resume keeps the model and data: flags that would change them are refused by name
    let r = ssvae(&["train", "--resume", out.to_str().unwrap(), "--hidden", "64", "--seed", "3", "--backend", "cpu", "--quiet"]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("--hidden, --seed would change the saved run"), "{}", stderr(&r));

    // refusing to overwrite a run without --resume
    let again = train(&out, &["--epochs", "1"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already holds a trained run"), "{}", stderr(&again));
}

/// `--average-weights F`: the run's model is the mean of the last epochs' weights, training
/// itself is untouched, the summary and eval report the mean, and a resume that moves the
/// rule's first epoch starts the mean again.
#[test]
fn weight_average_is_the_mean_of_the_last_epochs() {
    use ssvae::train::checkpoint::load_weights;
    let avg = tmp("average");
    let o = train(&avg, &["--epochs", "4", "--labels", "40", "--average-weights", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = last_json(&o);
    assert_eq!(j["averaged_epochs"], serde_json::json!([3, 4]), "{j}");
    assert!(j["last_epoch_accuracy"].is_number(), "{j}");
    // the same run without averaging: epoch 4's checkpoint, and epoch 3's (checkpoint.prev)
    let plain = tmp("average-plain");
    assert!(train(&plain, &["--epochs", "4", "--labels", "40"]).status.success());
    let w3 = load_weights(&plain.join("checkpoint.prev/model.safetensors")).unwrap();
    let w4 = load_weights(&plain.join("checkpoint/model.safetensors")).unwrap();
    let last = load_weights(&avg.join("checkpoint/model.safetensors")).unwrap();
    let mean = load_weights(&avg.join("checkpoint/best.safetensors")).unwrap();
    assert_eq!(mean.params.len(), w4.params.len());
    let get = |w: &ssvae::train::checkpoint::Weights, name: &str| w.params.iter().find(|p| p.0 == name).unwrap().2.clone();
    let mut moved = 0usize;
    for (name, _, m) in &mean.params {
        let (a, b, l) = (get(&w3, name), get(&w4, name), get(&last, name));
        for i in 0..m.len() {
            assert!((l[i] - b[i]).abs() <= 1e-6 * (1.0 + b[i].abs()), "{name}[{i}]: averaging changed training ({} vs {})", l[i], b[i]);
            let want = 0.5 * (a[i] + b[i]);
            assert!((m[i] - want).abs() <= 1e-5 * (1.0 + want.abs()), "{name}[{i}]: mean {} != (w3 + w4) / 2 = {want}", m[i]);
            moved += (a[i] != b[i]) as usize;
        }
    }
    assert!(moved > 0, "epochs 3 and 4 must differ for the check to mean anything");
    // eval and the summary report the mean, not the last epoch
    let e = ssvae(&["eval", "--run", avg.to_str().unwrap(), "--backend", "cpu"]);
    assert!(e.status.success(), "{}", stderr(&e));
    assert_eq!(last_json(&e)["log_loss"], j["log_loss"], "eval opens the averaged weights");
    // two more epochs: the last half is now epochs 4-6; epoch 4 is gone, so the mean restarts at 5
    let r = ssvae(&["train", "--resume", avg.to_str().unwrap(), "--epochs", "2", "--backend", "cpu", "--quiet"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(last_json(&r)["averaged_epochs"], serde_json::json!([5, 6]));
}

#[test]
fn divergence_stops_and_keeps_the_last_good_checkpoint() {
    let out = tmp("diverge");
    assert!(train(&out, &["--epochs", "1"]).status.success());
    let before = std::fs::read(out.join("checkpoint/model.safetensors")).unwrap();
    let o = ssvae(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--lr",
        "1e30",
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--quiet",
        "--metrics-every",
        "2",
    ]);
    assert!(!o.status.success(), "training with lr 1e30 must diverge");
    let err = stderr(&o);
    assert!(err.contains("diverged") && err.contains("between steps"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(out.join("checkpoint/model.safetensors")).unwrap(), before, "the last good checkpoint must be kept");
}

#[test]
fn bad_input_gives_clear_errors() {
    let out = tmp("bad");
    let cases: &[(&[&str], &str)] = &[
        (&["--model", "xx-dense"], "invalid value 'xx-dense' for '--model"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--labels", "100000"], "--labels 100000 exceeds"),
        (&["--labels", "many"], "--labels: expected a number"),
        (&["--dataset", "cifar"], "invalid value 'cifar' for '--dataset"),
        (&["--dataset", "mnist", "--data-dir", "/nonexistent/ssvae"], "train-images-idx3-ubyte"),
        (&["--hidden", "0,4"], "--hidden"),
        (&["--decoder-input", "both"], "--decoder-input"),
        (&["--model", "es-dense", "--anomaly-class", "3"], "needs a model with a decoder"),
        // numbers out of range, and sizes this machine cannot hold, before anything is allocated
        (&["--lr", "-1"], "--lr must be a positive finite number"),
        (&["--lr", "0"], "--lr must be a positive finite number"),
        (&["--lr", "NaN"], "--lr must be a positive finite number"),
        (&["--alpha", "-3"], "--alpha must be a finite number >= 0"),
        (&["--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (&["--entropy-weight", "-1"], "--entropy-weight must be a finite number >= 0"),
        (&["--model", "es-dense", "--entropy-weight", "1"], "--entropy-weight applies to the SS models"),
        (&["--entropy-warmup", "1.5"], "--entropy-warmup must be a fraction of the run in [0, 1]"),
        (&["--kl-warmup", "-0.1"], "--kl-warmup must be a fraction of the run in [0, 1]"),
        (
            &["--model", "es-dense", "--kl-warmup", "0.3"],
            "--kl-warmup applies to the models with a Gaussian KL term (ss-*, eu-*), not es-dense",
        ),
        (
            &["--model", "m2-dense", "--kl-warmup", "0.3"],
            "--kl-warmup applies to the models with a Gaussian KL term (ss-*, eu-*), not m2-dense",
        ),
        (&["--labeled-share", "1"], "--labeled-share must be in (0, 1)"),
        (&["--average-weights", "0"], "--average-weights 0: must be a fraction of the epochs in (0, 1]"),
        (&["--average-weights", "1.5"], "--average-weights 1.5: must be a fraction of the epochs in (0, 1]"),
        (
            &["--average-weights", "0.5", "--validation-labels", "1"],
            "--average-weights and --validation-labels both choose the run's model",
        ),
        (&["--labeled-share", "0"], "--labeled-share must be in (0, 1)"),
        (&["--labeled-share", "0.01"], "--labeled-share 0.01 of --batch-size 32 gives 0 labeled rows"),
        (&["--model", "eu-dense", "--labeled-share", "0.25"], "--labeled-share applies to the semi-supervised models"),
        (&["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
        (&["--label-smoothing", "-0.1"], "--label-smoothing must be in [0, 1)"),
        (&["--model", "eu-dense", "--label-smoothing", "0.1"], "--label-smoothing applies to the models with a classifier"),
        (&["--consistency-weight", "-1"], "--consistency-weight must be a finite number >= 0"),
        (
            &["--consistency-weight", "0", "--consistency-noise", "0.2"],
            "--consistency-noise sets the consistency term's perturbation: give --consistency-weight",
        ),
        (
            &["--recipe", "paper", "--consistency-shift", "2"],
            "--consistency-shift sets the consistency term's perturbation: give --consistency-weight",
        ),
        (&["--recipe", "paper", "--consistency-weight", "5", "--consistency-noise", "0"], "--consistency-weight needs a perturbation"),
        (&["--consistency-weight", "5", "--consistency-scale", "-1"], "--consistency-scale must be a finite standard deviation >= 0"),
        (&["--model", "es-dense", "--consistency-weight", "5"], "--consistency-weight applies to the SS models with one pi head"),
        (
            &["--model", "es-dense", "--pi-to-decoder", "straight-through"],
            "--pi-to-decoder applies to the SS models whose pi feeds the decoder",
        ),
        (&["--epochs", "0"], "--epochs must be at least 1"),
        (&["--var-floor", "0"], "--var-floor must be in (0, 1]"),
        (&["--var-floor", "1.5"], "--var-floor must be in (0, 1]"),
        (&["--var-floor", "0.01"], "--var-floor sets the variance floor of a Gaussian decoder"),
        (&["--max-train", "10"], "--batch-size 32: a batch would hold 16 rows of the 10 training samples"),
        (&["--hidden", "4000000000"], "GiB, more than the"),
    ];
    for (args, want) in cases {
        let o = train(&out, args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: expected '{want}' in: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
    let huge = ssvae(&["train", "--synthetic-train", "10000000000", "--backend", "cpu", "--quiet", "--out", out.to_str().unwrap()]);
    assert!(!huge.status.success() && stderr(&huge).contains("GiB, more than the"), "{}", stderr(&huge));
    assert!(!out.exists(), "nothing is written for refused input");
    // a table's rows have no axis for the consistency term's shift
    let table = tmp("bad-table.csv");
    let rows: String = (0..40)
        .map(|i| format!("{},{},{}\n", i % 7, (i * 3) % 5, if i % 4 == 0 { (i / 4 % 2).to_string() } else { String::new() }))
        .collect();
    std::fs::write(&table, format!("a,b,label\n{rows}")).unwrap();
    let o = train(&out, &["--data", table.to_str().unwrap(), "--consistency-weight", "5", "--consistency-shift", "2"]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("--consistency-shift moves images or series windows"), "{err}");
    assert!(!out.exists(), "nothing is written for a refused shift");
    let _ = std::fs::remove_file(&table);
    let o = ssvae(&["eval", "--run", "/nonexistent/run", "--backend", "cpu"]);
    assert!(!o.status.success() && stderr(&o).contains("/nonexistent/run"), "{}", stderr(&o));
    // a value outside a closed set is a usage error (exit 2) that lists the values
    for (flag, bad, listed) in [
        ("--model", "xx-dense", "gmdgm-cnn"),
        ("--optimizer", "sgd", "adam"),
        ("--loss-norm", "max", "mean"),
        ("--recipe", "best", "paper"),
        ("--lr-schedule", "step", "cooldown"),
        ("--pi-to-decoder", "hard", "straight-through"),
    ] {
        let o = train(&out, &[flag, bad]);
        assert_eq!(o.status.code(), Some(2), "{flag} {bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(listed), "{flag} {bad} should list '{listed}': {}", stderr(&o));
    }
}
