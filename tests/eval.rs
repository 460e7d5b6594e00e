//! Anomaly scores, exact ROC AUC, sample grids and the `anomaly` / `score` / `sample` commands.
mod common;

use common::cli::ssvae;

use ssvae::backend::cpu::CpuBackend;
use ssvae::data;
use ssvae::eval::grid::{class_style_grid, normal_quantile, Decoder};
use ssvae::eval::{roc_auc, roc_curve, Scorer};
use ssvae::model::{Kind, ModelSpec};
use ssvae::train::{LabelSpec, TrainConfig, Trainer};

#[test]
fn roc_auc_hand_computed_cases() {
    // perfect separation, perfect inversion
    assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), Some(1.0));
    assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
    // all scores tied: 0.5
    assert_eq!(roc_auc(&[1.0; 5], &[true, false, true, false, false]), Some(0.5));
    // positives {0.5, 0.3}, negatives {0.4, 0.3, 0.1}: pairs (pos > neg) = 0.5 beats 3, 0.3 beats
    // 0.1 and ties 0.3 -> (3 + 1 + 0.5) / 6 = 0.75
    assert_eq!(roc_auc(&[0.5, 0.3, 0.4, 0.3, 0.1], &[true, true, false, false, false]), Some(0.75));
    // one class empty
    assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    // agrees with the brute-force pair count on random data with many ties
    let mut r = common::rng(7);
    let scores: Vec<f64> = (0..300).map(|_| (rand::Rng::random_range(&mut r, 0..20)) as f64).collect();
    let pos: Vec<bool> = (0..300).map(|_| rand::Rng::random_bool(&mut r, 0.3)).collect();
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..300 {
        for j in 0..300 {
            if pos[i] && !pos[j] {
                den += 1.0;
                num += if scores[i] > scores[j] {
                    1.0
                } else if scores[i] == scores[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    assert!((roc_auc(&scores, &pos).unwrap() - num / den).abs() < 1e-12);
    // the curve ends at (1, 1) and its trapezoid area is the AUC
    let c = roc_curve(&scores, &pos);
    assert_eq!(*c.last().unwrap(), (1.0, 1.0));
    let area: f64 = c.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum();
    assert!((area - num / den).abs() < 1e-12);
}

#[test]
fn normal_quantile_matches_known_values() {
    for (p, z) in [(0.5, 0.0), (0.975, 1.959963984540054), (0.01, -2.326347874040841), (0.8413447460685429, 1.0)] {
        assert!((normal_quantile(p) - z).abs() < 1e-8, "{p}");
    }
}

/// A small SS model trained briefly on the synthetic glyphs (CPU).
fn trained_small_ss() -> (CpuBackend, Trainer<CpuBackend>, data::Split) {
    let be = CpuBackend::new();
    let split = data::synthetic(3000, 500, 1);
    let mut spec = ModelSpec::dense(Kind::Ss, 784, 10);
    spec.hidden = vec![256, 128];
    let mut cfg = TrainConfig::new(spec, "synthetic");
    cfg.labels = LabelSpec::Count(300);
    cfg.optimizer = ssvae::graph::exec::Optimizer::adam(1e-3);
    let labeled = data::label_subset(&split.train.labels, 10, 300, 0).unwrap();
    let mut t = Trainer::new(&be, cfg, &split.train, Some(&split.test), labeled).unwrap();
    for _ in 0..600 {
        t.step(&be).unwrap();
    }
    t.take_losses(&be).unwrap();
    (be, t, split)
}

#[test]
fn sample_grid_rows_are_recognised_as_their_class() {
    let (be, t, _) = trained_small_ss();
    let spec = t.cfg.model.clone();
    let dec = Decoder::new(&be, &spec, &t.store, 64).unwrap();
    let styles = 6;
    let grid = class_style_grid(&be, &dec, styles, 3, (28, 28, 1)).unwrap();
    assert_eq!((grid.rows, grid.cols, grid.cells.len()), (10, styles, 10 * styles * 784));
    // labelled on the rows: a margin for the names, then 6 columns of 28 px with 2 px gaps
    let names: Vec<String> = (0..10).map(|c| format!("digit {c}")).collect();
    let img = ssvae::eval::plot::label_grid(&grid.cells, (10, styles), (28, 28, 1), 1, &names, None).unwrap();
    assert_eq!((img.width(), img.height()), ((12 + 8 * 7 + 6 * 30) as u32, (2 + 10 * 30) as u32));
    let dir = common::TempDir::new("grid", "png");
    let path = dir.join("grid.png");
    img.save(&path).unwrap();
    let back = image::open(&path).unwrap();
    assert_eq!((back.width(), back.height()), (img.width(), img.height()));
    let cells = grid.cells;
    // the model's own classifier on the generated cells
    let pixels: Vec<u8> = cells.iter().map(|&p| (p * 255.0).round() as u8).collect();
    let (_, probs) = Scorer::new(&be, &spec, &t.store, &pixels, 64).unwrap().run(&be, 1, 0).unwrap();
    let probs = probs.unwrap();
    let mut hits = 0;
    for cell in 0..10 * styles {
        let row = &probs[cell * 10..(cell + 1) * 10];
        let arg = (0..10).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        hits += (arg == cell / styles) as usize;
    }
    eprintln!("{hits} of {} generated cells classified as their row's class", 10 * styles);
    assert!(hits * 10 >= 7 * 10 * styles, "only {hits} of {} cells recognised as their row's class", 10 * styles);
}

#[test]
fn anomaly_scores_separate_an_unseen_class() {
    // train on everything but class 3, then the unseen class should score higher
    let be = CpuBackend::new();
    let split = data::synthetic(3000, 600, 2);
    let keep: Vec<usize> = (0..split.train.n).filter(|&i| split.train.labels[i] != 3).collect();
    let train = split.train.subset(&keep);
    let mut spec = ModelSpec::dense(Kind::Eu, 784, 10);
    spec.hidden = vec![256, 128];
    let mut cfg = TrainConfig::new(spec.clone(), "synthetic");
    cfg.optimizer = ssvae::graph::exec::Optimizer::adam(1e-3);
    let mut t = Trainer::new(&be, cfg, &train, None, vec![]).unwrap();
    for _ in 0..500 {
        t.step(&be).unwrap();
    }
    let (scores, probs) = Scorer::new(&be, &spec, &t.store, &split.test.pixels, 100).unwrap().run(&be, 4, 0).unwrap();
    assert!(probs.is_none());
    let pos: Vec<bool> = split.test.labels.iter().map(|&y| y == 3).collect();
    let auc = roc_auc(&scores, &pos).unwrap();
    eprintln!("EU, class 3 unseen: AUC {auc}");
    assert!(auc > 0.6, "AUC {auc}");
    assert!(scores.iter().all(|s| s.is_finite() && *s > 0.0));
}

#[test]
fn anomaly_score_and_sample_commands() {
    let dir = common::TempDir::unmade("eval-cli", "anomaly");
    let out = dir.join("run");
    let o = ssvae(&[
        "anomaly",
        "--anomaly-class",
        "2",
        "--backend",
        "cpu",
        "--synthetic-train",
        "300",
        "--synthetic-test",
        "100",
        "--hidden",
        "32,16",
        "--batch-size",
        "32",
        "--epochs",
        "1",
        "--labels",
        "45",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let last: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["anomaly_class"], 2);
    assert!(last["auc"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{last}");
    assert_eq!(std::fs::read_to_string(out.join("anomaly_scores.csv")).unwrap().lines().count(), 101);

    // anomaly without a class, or out of range
    let o = ssvae(&["anomaly", "--backend", "cpu"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--anomaly-class"));
    let o = ssvae(&[
        "anomaly",
        "--anomaly-class",
        "10",
        "--backend",
        "cpu",
        "--synthetic-train",
        "100",
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--anomaly-class 10"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // score a CSV: right width works, wrong width is a clear error
    let good = dir.join("good.csv");
    std::fs::write(&good, format!("{}\n{}\n", vec!["0"; 784].join(","), vec!["255"; 784].join(","))).unwrap();
    let scores = dir.join("scores.csv");
    let o = ssvae(&[
        "score",
        "--run",
        out.to_str().unwrap(),
        "--input",
        good.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(&scores).unwrap();
    assert_eq!(csv.lines().next().unwrap(), "index,score,predicted_class");
    assert_eq!(csv.lines().count(), 3);
    // a byte-order mark and a header are skipped; a mix of scales is refused
    let bom = dir.join("bom.csv");
    std::fs::write(&bom, format!("\u{feff}{}\n{}\n", vec!["0.5"; 784].join(","), vec!["1"; 784].join(","))).unwrap();
    let o = ssvae(&[
        "score",
        "--run",
        out.to_str().unwrap(),
        "--input",
        bom.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&scores).unwrap().lines().count(), 3, "both rows of the BOM file are scored");
    let mixed = dir.join("mixed.csv");
    std::fs::write(&mixed, format!("{},1.5\n", vec!["0.5"; 783].join(","))).unwrap();
    let o = ssvae(&["score", "--run", out.to_str().unwrap(), "--input", mixed.to_str().unwrap(), "--backend", "cpu"]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("whole numbers 0..255"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "1,2,3\n").unwrap();
    let o = ssvae(&["score", "--run", out.to_str().unwrap(), "--input", bad.to_str().unwrap(), "--backend", "cpu"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("3 values, the model expects 784"), "{e}");

    // figures of the run, all decodable PNGs, and report.html with every one inlined
    let o = ssvae(&["plot", "--run", out.to_str().unwrap(), "--backend", "cpu", "--points", "100"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let figures = ["curves.png", "roc.png", "scores.png", "confusion.png", "latent.png", "grid.png"];
    for f in figures {
        let img = image::open(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(img.width() >= 300 && img.height() >= 300, "{f}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<img ").count(), figures.len(), "every figure inlined in report.html");
    assert!(html.contains("data:image/png;base64,") && html.contains("Anomaly ROC AUC"));
    // SVG too
    let o = ssvae(&["plot", "--run", out.to_str().unwrap(), "--backend", "cpu", "--points", "100", "--format", "svg", "--no-report"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(out.join("roc.svg")).unwrap().contains("AUC"));

    // sample grid: size as stated; zero styles and runs without a checkpoint are errors
    let png = dir.join("grid.png");
    let o = ssvae(&["sample", "--run", out.to_str().unwrap(), "--out", png.to_str().unwrap(), "--styles", "4", "--backend", "cpu"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = image::open(&png).unwrap();
    // 10 rows of 28 px cells scaled x2 with 2 px gaps; the class names left of 4 columns
    assert_eq!(img.height(), 2 + 10 * (56 + 2));
    assert!(img.width() > 4 * (56 + 2) + 12, "a margin for the row names: {}", img.width());
    let o = ssvae(&["sample", "--run", out.to_str().unwrap(), "--styles", "0", "--backend", "cpu"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--styles"));
    let o = ssvae(&["sample", "--run", out.to_str().unwrap(), "--styles", "100000", "--backend", "cpu"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("pixel limit"));
    let o = ssvae(&["sample", "--run", out.to_str().unwrap(), "--styles", "20000", "--traverse", "--backend", "cpu"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("pixel limit"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ssvae(&["sample", "--run", dir.to_str().unwrap(), "--backend", "cpu"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("config.json"));
}

/// A cell stopped part-way (Ctrl-C, or killed after a checkpoint) is continued by the same
/// command from its checkpoint, not trained again from scratch, and ends exactly where an
/// uninterrupted cell does.
#[test]
fn reproduce_continues_an_interrupted_cell() {
    use ssvae::run::reproduce::{reproduce, ReproduceOptions};
    let Some(_) = common::mnist() else { return };
    let root = common::data_root();
    let be = CpuBackend::new();
    let opts = |dir: &std::path::Path| ReproduceOptions {
        table: "table3".into(),
        seeds: 1,
        quick: true,
        epochs: None,
        epoch_scale: None,
        rows: Some(vec!["SS_D".into()]),
        columns: Some(vec!["100 labels".into()]),
        extra_description: None,
        tag: None,
        out: dir.to_path_buf(),
        data_root: Some(root.clone()),
    };
    let keep = |_: &mut ssvae::run::RunSpec| Ok(());
    let (whole, parts) = (common::TempDir::unmade("repro", "whole"), common::TempDir::unmade("repro", "parts"));
    reproduce(&be, &opts(&whole), &keep, &mut ssvae::run::Quiet).unwrap();
    let cell = |d: &std::path::Path| d.join("table3-quick").join("SS_D-100_labels-s0");
    let mut stop = common::StopAfter::new(7);
    let e = reproduce(&be, &opts(&parts), &keep, &mut stop).err().expect("the stop must end the table");
    assert!(e.to_string().contains("interrupted") && e.to_string().contains("again"), "{e}");
    assert!(!cell(&parts).join("summary.json").exists(), "an interrupted cell has no summary");
    let mut again = common::StopAfter::new(0);
    reproduce(&be, &opts(&parts), &keep, &mut again).unwrap();
    assert!(again.notes.iter().any(|n| n.contains("continuing the interrupted run")), "the checkpoint was not used: {:?}", again.notes);
    let summary = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(cell(d).join("summary.json")).unwrap()).unwrap()
    };
    let (a, b) = (summary(&whole), summary(&parts));
    for key in ["accuracy", "log_loss", "steps", "epochs"] {
        assert_eq!(a[key], b[key], "{key}: uninterrupted {} vs continued {}", a[key], b[key]);
    }
    assert!(a["accuracy"].as_f64().is_some_and(|v| v > 0.3), "{a}");
    // a checkpoint of other settings (here another learning rate) is not continued: the cell
    // starts over
    let other = common::TempDir::unmade("repro", "other");
    let mut stop = common::StopAfter::new(7);
    assert!(reproduce(&be, &opts(&other), &keep, &mut stop).is_err());
    let lr = |s: &mut ssvae::run::RunSpec| {
        s.lr = Some(5e-4);
        Ok(())
    };
    let mut again = common::StopAfter::new(0);
    reproduce(&be, &opts(&other), &lr, &mut again).unwrap();
    assert!(!again.notes.iter().any(|n| n.contains("continuing")), "another run's checkpoint was continued: {:?}", again.notes);
    assert_eq!(summary(&other)["steps"], a["steps"]);
    // a run that trained all its epochs but died before its summary (while scoring) is
    // trained again, with a note, and gives the same figures
    std::fs::remove_file(cell(&whole).join("summary.json")).unwrap();
    let mut again = common::StopAfter::new(0);
    reproduce(&be, &opts(&whole), &keep, &mut again).unwrap();
    assert!(again.notes.iter().any(|n| n.contains("before writing its summary")), "{:?}", again.notes);
    assert_eq!(summary(&whole)["accuracy"], a["accuracy"]);
    // Ctrl-C before a cell starts (while loading or scoring): no cell is started
    let early = common::TempDir::unmade("repro", "early");
    let e = reproduce(&be, &opts(&early), &keep, &mut common::StopAfter::new(1)).err().expect("a stop before the first cell");
    assert!(e.to_string().contains("interrupted before"), "{e}");
    assert!(!cell(&early).exists(), "no cell folder is made after a stop");
}

#[test]
fn reproduce_quick_writes_a_markdown_table_next_to_the_paper() {
    let Some(_) = common::mnist() else { return };
    let root = common::data_root();
    let dir = common::TempDir::unmade("repro", "quick");
    // the dense rows only (--rows): the CNN rows would take minutes on two cores
    let args = [
        "reproduce",
        "table3",
        "--quick",
        "--seeds",
        "1",
        "--rows",
        "SS_D,ES_D",
        "--backend",
        "cpu",
        "--out",
        dir.to_str().unwrap(),
        "--data-root",
        root.to_str().unwrap(),
    ];
    let o = ssvae(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("table3-quick/table3.md")).unwrap();
    assert!(md.contains("| SS_D |") && md.contains("| ES_D |") && md.contains("(0.808 ± 0.006)") && md.contains("QUICK"), "{md}");
    assert!(!md.contains("SS_CNN"), "--rows keeps only the rows asked for: {md}");
    // a second invocation reuses the finished runs
    let t = std::time::Instant::now();
    let o = ssvae(&args);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("ssvae train"), "finished runs must not be repeated");
    eprintln!("second pass {:?}", t.elapsed());
    let o = ssvae(&["reproduce", "table99", "--backend", "cpu"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("unknown table"));
    // --columns keeps the named columns (the finished runs are reused) and names the
    // table's columns when one is wrong
    let mut cols = args.to_vec();
    cols.extend(["--columns", "100 labels"]);
    let o = ssvae(&cols);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("table3-quick/table3.md")).unwrap();
    assert!(md.contains("100 labels") && !md.contains("1000 labels"), "--columns keeps only the columns asked for: {md}");
    let mut bad = args.to_vec();
    bad.extend(["--columns", "100"]);
    let o = ssvae(&bad);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--columns") && e.contains("'100'") && e.contains("100 labels, 1000 labels"), "{e}");
    // table12 takes only its own hyper-parameters in --extra, named when wrong
    for (extra, want) in [
        ("--conv 3:3:1", "not --conv"),
        ("--kl-weight", "needs a value"),
        ("--latent x", "--latent x is not a valid value"),
        ("--kl-weight 0", "KL weight > 0"),
    ] {
        let o = ssvae(&["reproduce", "table12", "--quick", "--extra", extra, "--backend", "cpu", "--out", dir.to_str().unwrap()]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(want), "--extra {extra}: {e}");
    }
    let o = ssvae(&["reproduce", "table12", "--quick", "--rows", "0,5", "--backend", "cpu", "--out", dir.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("'5' is not a row of table12"), "{e}");
    // the paper's last row: the labeled samples alone, no unlabeled ones
    let o = ssvae(&[
        "reproduce",
        "table12",
        "--quick",
        "--seeds",
        "1",
        "--rows",
        "1000-only",
        "--backend",
        "cpu",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("table12-quick-1ep/table12.md")).unwrap();
    assert!(md.contains("| 1000, no unlabeled |") && md.contains("(87 ± 0.8)") && !md.contains("| 0 |"), "{md}");
    let cell: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("table12-quick-1ep/N1000only-s0.json")).unwrap()).unwrap();
    assert_eq!((cell["labeled"].as_u64(), cell["unlabeled"].as_u64()), (Some(1000), Some(0)), "{cell}");
}
