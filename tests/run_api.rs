//! The library's run API without the binary: train a spec, open the folder, predict, encode,
//! score, sample; resume; and a config.json of the earlier layout (version 1) still opens.
//! CPU backend, tiny sizes.

mod common;

use std::path::Path;

use ssvae::backend::cpu::CpuBackend;
use ssvae::model::{Family, Kind};
use ssvae::run::{self, DatasetName, Quiet, ResumeChanges, Run, RunConfig, RunSpec};
use ssvae::train::LabelSpec;

/// This test's own folder (removed when the test passes); not made yet.
fn tmp(name: &str) -> common::TempDir {
    common::TempDir::unmade("run-api", name)
}

fn tiny(out: &Path) -> RunSpec {
    let mut s = RunSpec::new(Family::Dense, Kind::Ss, DatasetName::Synthetic);
    s.data.synthetic = (256, 64);
    s.model.hidden = Some(vec![32, 16]);
    s.batch_size = 32;
    s.epochs = 2;
    s.labels = Some(LabelSpec::Count(20));
    s.out = Some(out.to_path_buf());
    s
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, j| if row[j] > row[b] { j } else { b })
}

#[test]
fn train_open_predict_encode_score_sample() {
    let be = CpuBackend::new();
    let out = tmp("open");
    let summary = run::train(&be, &tiny(&out), &mut Quiet).unwrap();
    assert_eq!((summary.epochs, summary.labels, summary.model.as_str()), (2, 20, "ss-dense"));
    let config = RunConfig::load(&out).unwrap();
    assert_eq!((config.epochs_done, config.train.epochs, config.spec.epochs), (2, 2, 2), "config.json records the epochs trained");
    // levers left at their defaults are not written: config.json reads as before they existed
    let text = std::fs::read_to_string(out.join("checkpoint").join(ssvae::train::checkpoint::CONFIG_FILE)).unwrap();
    for key in ["kl_warmup", "label_smoothing", "pi_to_decoder"] {
        assert!(!text.contains(key), "a default run's config.json holds {key}");
    }
    // the default recipe's labeled share (20 labels of 256 samples: a tenth) is written
    assert!(text.contains("\"labeled_share\": 0.1"), "config.json records the recipe's labeled share:\n{text}");
    assert_eq!((config.train.kl_warmup, config.train.labeled_share, config.train.model.label_smoothing), (0.0, 0.1, 0.0));

    let saved = Run::open(&be, &out).unwrap();
    let data = saved.load_data(None, None).unwrap();
    let test = data.test();
    let classes = saved.model().classes;
    let probs = saved.predict_proba(&be, test).unwrap();
    assert_eq!(probs.len(), test.n() * classes);
    for row in probs.chunks(classes) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4, "a probability row sums to 1: {row:?}");
    }
    // the predicted columns give the accuracy the run reported
    let correct = (0..test.n()).filter(|&i| test.label(i) == Some(argmax(&probs[i * classes..(i + 1) * classes]) as u8)).count();
    assert_eq!(Some(correct as f64 / test.n() as f64), summary.accuracy);
    assert_eq!(saved.evaluate(&be, test).unwrap().accuracy, summary.accuracy);

    let z = saved.encode(&be, test).unwrap();
    assert_eq!(z.len(), test.n() * saved.model().latent);
    let (scores, p) = saved.score(&be, test, 2, 0).unwrap();
    assert_eq!(scores.len(), test.n());
    assert!(scores.iter().all(|s| s.is_finite() && *s > 0.0));
    assert_eq!(p.map(|p| p.len()), Some(test.n() * classes));
    let grid = saved.sample(&be, 3, 0, false, 1, false).unwrap();
    assert!(grid.width() > 0 && grid.height() > grid.width(), "10 class rows, 3 style columns");
}

#[test]
fn resume_adds_epochs_and_labels() {
    let be = CpuBackend::new();
    let out = tmp("resume");
    run::train(&be, &RunSpec { epochs: 1, ..tiny(&out) }, &mut Quiet).unwrap();
    let changes = ResumeChanges { epochs: Some(2), labels: Some(LabelSpec::Count(40)), ..ResumeChanges::default() };
    let s = run::resume(&be, &out, &changes, &mut Quiet).unwrap();
    assert_eq!((s.epochs, s.labels), (3, 40));
    let c = RunConfig::load(&out).unwrap();
    assert_eq!((c.epochs_done, c.train.epochs, c.spec.epochs), (3, 3, 3), "config.json records the epochs trained");
    assert_eq!((c.train.labels, c.spec.labels), (LabelSpec::Count(40), Some(LabelSpec::Count(40))));
    // the default recipe's share (20 of 256 samples labeled: a tenth, 3 of 32 rows), kept on
    // resume: one pass over 29 unlabeled rows a step per epoch
    assert_eq!(c.train.labeled_share, 0.1);
    assert_eq!(c.steps_done, 3 * (256u64).div_ceil(29), "SS steps: one pass over the unlabeled rows per epoch");
}

#[test]
fn a_version_1_config_still_opens() {
    use ssvae::run::folder;
    use ssvae::train::checkpoint::save_weights;
    let be = CpuBackend::new();
    let out = tmp("v1");
    let summary = run::train(&be, &tiny(&out), &mut Quiet).unwrap();
    // rewrite the folder in the layout written before the run module: config.json without a
    // version, the data options beside `train`, and model.safetensors beside it
    let ckpt = folder::load(&out).unwrap();
    let c = serde_json::to_value(&ckpt.config).unwrap();
    let d = &c["spec"]["data"];
    let v1 = serde_json::json!({
        "train": c["train"], "labels_used": c["labels_used"], "epochs_done": c["epochs_done"], "steps_done": c["steps_done"],
        "max_train": d["max_train"], "validation": d["validation"], "synthetic": d["synthetic"], "data_dir": d["data_dir"],
        "anomaly_class": d["anomaly_class"], "series": {"channels": null, "csv_layout": null}, "standardizer": null,
    });
    for dir in [folder::CHECKPOINT_DIR, folder::PREVIOUS_DIR] {
        std::fs::remove_dir_all(out.join(dir)).unwrap();
    }
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&v1).unwrap()).unwrap();
    save_weights(&out.join("model.safetensors"), &ckpt.weights).unwrap();
    let saved = Run::open(&be, &out).unwrap();
    assert_eq!(saved.config.spec.data.synthetic, (256, 64));
    assert_eq!(saved.config.spec.model.hidden, Some(vec![32, 16]));
    let data = saved.load_data(None, None).unwrap();
    assert_eq!(saved.evaluate(&be, data.test()).unwrap().accuracy, summary.accuracy);
    // it resumes, into the new layout
    run::resume(&be, &out, &ResumeChanges { epochs: Some(1), ..ResumeChanges::default() }, &mut Quiet).unwrap();
    assert_eq!(RunConfig::load(&out).unwrap().epochs_done, 3);
    assert!(out.join(folder::CHECKPOINT_DIR).join("manifest.json").exists());
    // and a newer version is refused with a message, not misread
    let mut v9 = c.clone();
    v9["version"] = 9.into();
    let legacy = tmp("v9");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(legacy.join("config.json"), serde_json::to_string(&v9).unwrap()).unwrap();
    save_weights(&legacy.join("model.safetensors"), &ckpt.weights).unwrap();
    let err = Run::open(&be, &legacy).err().expect("a newer config.json is refused").to_string();
    assert!(err.contains("version 9") && err.contains("update ssvae"), "{err}");
}

#[test]
fn bad_specs_fail_before_the_folder_is_written() {
    let be = CpuBackend::new();
    for (what, spec, want) in [
        (
            "rnn on images",
            RunSpec { model: run::ModelChoice::new(Family::Rnn, Kind::Ss), ..tiny(&tmp("bad1")) },
            "recurrent model takes time series",
        ),
        ("zero epochs", RunSpec { epochs: 0, ..tiny(&tmp("bad2")) }, "--epochs must be at least 1"),
        ("too many labels", RunSpec { labels: Some(LabelSpec::Count(100000)), ..tiny(&tmp("bad3")) }, "exceeds"),
    ] {
        let out = spec.out.clone().unwrap();
        let err = run::train(&be, &spec, &mut Quiet).err().unwrap_or_else(|| panic!("{what} should fail")).to_string();
        assert!(err.contains(want), "{what}: expected '{want}' in {err}");
        assert!(!out.exists(), "{what}: nothing may be written before the inputs are checked");
    }
}

/// `--epochs a+b` and `--epochs a` then resume `--epochs b` give bit-identical weights and
/// optimizer state on the CPU backend (the batcher, the noise counter and Adam's t continue).
/// With a constant learning rate: a schedule spans the run's planned epochs, so a run planned
/// for `a` decays over `a` (a scheduled run resumed to its planned total is checked by
/// `a_stopped_run_resumes_mid_epoch_exactly`, with the cosine).
#[test]
fn resume_equals_uninterrupted_training() {
    use ssvae::run::OptimizerKind;
    let be = CpuBackend::new();
    for (name, kind, optimizer) in [("ss", Kind::Ss, OptimizerKind::Rmsprop), ("es-adam", Kind::Es, OptimizerKind::Adam)] {
        let (whole, split) = (tmp(&format!("whole-{name}")), tmp(&format!("split-{name}")));
        let spec = |out: &Path, epochs| {
            let mut s = RunSpec { epochs, optimizer, lr_schedule: Some(ssvae::train::LrSchedule::Constant), ..tiny(out) };
            s.model.kind = kind;
            s.data.synthetic = (200, 64); // not a multiple of the half batch: permutations wrap mid-batch
            s
        };
        run::train(&be, &spec(&whole, 3), &mut Quiet).unwrap();
        run::train(&be, &spec(&split, 1), &mut Quiet).unwrap();
        let changes = ResumeChanges { epochs: Some(2), ..ResumeChanges::default() };
        run::resume(&be, &split, &changes, &mut Quiet).unwrap();
        let (a, b) = (ssvae::run::folder::load(&whole).unwrap().weights, ssvae::run::folder::load(&split).unwrap().weights);
        let all = |w: &ssvae::train::checkpoint::Weights| {
            let mut v: Vec<(String, Vec<f32>)> = [(&w.params, "p"), (&w.state1, "s1"), (&w.state2, "s2")]
                .iter()
                .flat_map(|(t, k)| t.iter().map(move |(n, _, x)| (format!("{k}.{n}"), x.clone())))
                .collect();
            v.sort_by(|x, y| x.0.cmp(&y.0));
            v
        };
        let (ta, tb) = (all(&a), all(&b));
        assert_eq!(ta.len(), tb.len());
        for (x, y) in ta.iter().zip(&tb) {
            assert_eq!(x.0, y.0);
            assert!(x.1 == y.1, "{name}: tensor {} differs after resuming", x.0);
        }
        let (ca, cb) = (RunConfig::load(&whole).unwrap(), RunConfig::load(&split).unwrap());
        assert_eq!((ca.epochs_done, ca.steps_done), (cb.epochs_done, cb.steps_done));
    }
}

/// A torn or damaged checkpoint falls back to the previous one with a note; with no good one
/// left the error names the file; a non-finite weight is refused naming the tensor.
#[test]
fn a_damaged_checkpoint_falls_back_or_is_refused_naming_the_fault() {
    use ssvae::run::folder::{self, CHECKPOINT_DIR, PREVIOUS_DIR};
    let be = CpuBackend::new();
    let out = tmp("damaged");
    run::train(&be, &RunSpec { epochs: 2, ..tiny(&out) }, &mut Quiet).unwrap();
    // flipped bits in the newest weights: its checksum no longer matches, the previous epoch's
    // checkpoint is used
    let model = out.join(CHECKPOINT_DIR).join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x40;
    std::fs::write(&model, &bytes).unwrap();
    let saved = Run::open(&be, &out).unwrap();
    assert_eq!(saved.config.epochs_done, 1, "the previous checkpoint (epoch 1) is used");
    // an interrupted commit (between its two renames) leaves only the previous one: it opens
    std::fs::remove_dir_all(out.join(CHECKPOINT_DIR)).unwrap();
    assert_eq!(RunConfig::load(&out).unwrap().epochs_done, 1);
    // nothing good left: the error names the file and what is wrong with it
    let prev_model = out.join(PREVIOUS_DIR).join("model.safetensors");
    let mut bytes = std::fs::read(&prev_model).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&prev_model, &bytes).unwrap();
    let err = Run::open(&be, &out).err().expect("no good checkpoint left").to_string();
    assert!(err.contains("model.safetensors") && err.contains("checksum"), "{err}");

    // a NaN committed with a matching checksum (a bug, not a disk) is refused by its name
    let out = tmp("nan");
    run::train(&be, &RunSpec { epochs: 1, ..tiny(&out) }, &mut Quiet).unwrap();
    let mut c = folder::load(&out).unwrap();
    let (name, _, values) = c.weights.params.iter_mut().find(|(n, _, _)| n.starts_with("pi")).expect("an SS model has a pi head");
    values[3] = f32::NAN;
    let name = name.clone();
    folder::commit(&out, &c.config, &c.weights).unwrap();
    std::fs::remove_dir_all(out.join(PREVIOUS_DIR)).unwrap();
    let err = Run::open(&be, &out).err().expect("a NaN weight is refused").to_string();
    assert!(err.contains(&format!("tensor '{name}'")) && err.contains("NaN") && err.contains("damaged"), "{err}");
}

/// A run stopped mid-epoch commits the steps so far; resuming finishes that epoch first and
/// ends exactly where an uninterrupted run does.
#[test]
fn a_stopped_run_resumes_mid_epoch_exactly() {
    let be = CpuBackend::new();
    let (whole, stopped) = (tmp("stop-whole"), tmp("stop-part"));
    // with a learning-rate schedule and a KL warm-up over the run, which the resume must
    // continue as planned (the stop falls inside the warm-up), on batches a quarter labeled
    // (11 steps an epoch) with label smoothing: config.json must carry all of them
    let levers = |out: &Path| {
        let mut s = RunSpec {
            epochs: 2,
            lr_schedule: Some(ssvae::train::LrSchedule::Cosine),
            kl_warmup: Some(0.5),
            labeled_share: Some(0.25),
            ..tiny(out)
        };
        s.model.label_smoothing = Some(0.1);
        s.model.pi_to_decoder = Some(ssvae::model::PiToDecoder::StraightThrough);
        s
    };
    run::train(&be, &levers(&whole), &mut Quiet).unwrap();
    let s = run::train(&be, &levers(&stopped), &mut common::StopAfter::new(5)).unwrap();
    assert!(s.interrupted && s.steps == 5 && s.epochs == 0, "{s:?}");
    assert!(!stopped.join(run::SUMMARY_FILE).exists(), "an unfinished run writes no summary.json");
    let c = RunConfig::load(&stopped).unwrap();
    assert_eq!((c.steps_done, c.epochs_done, c.spec.epochs), (5, 0, 2));
    assert_eq!(
        (c.train.kl_warmup, c.train.labeled_share, c.train.model.label_smoothing),
        (0.5, 0.25, 0.1),
        "config.json records the levers"
    );
    assert_eq!(c.train.model.pi_to_decoder, ssvae::model::PiToDecoder::StraightThrough);
    assert_eq!(c.steps_done + 17, 22, "11 steps an epoch with a quarter of the rows labeled");
    let r = run::resume(&be, &stopped, &ResumeChanges { epochs: Some(2), ..ResumeChanges::default() }, &mut Quiet).unwrap();
    assert_eq!((r.epochs, r.steps, r.interrupted), (2, RunConfig::load(&whole).unwrap().steps_done, false));
    let (a, b) = (ssvae::run::folder::load(&whole).unwrap().weights, ssvae::run::folder::load(&stopped).unwrap().weights);
    for (x, y) in a.params.iter().zip(&b.params) {
        let y = b.params.iter().find(|t| t.0 == x.0).unwrap_or(y);
        assert!(x.2 == y.2, "tensor {} differs after the stop and resume", x.0);
    }
}
