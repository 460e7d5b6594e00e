//! Anomaly feedback (paper eq. 6): the score adjustment on hand-built probabilities, and the
//! checkpoint migration that gives a trained SS model two more classes (old weights and
//! optimizer state survive, new entries start at zero, training continues). CPU backend.

use ssvae::backend::cpu::CpuBackend;
use ssvae::data::{synthetic, Dataset};
use ssvae::eval::feedback::{adjust_score, adjusted_scores, FeedbackClasses, MIN_DENOMINATOR};
use ssvae::model::{Kind, ModelSpec};
use ssvae::train::checkpoint::{load_weights, save_weights, Weights};
use ssvae::train::migrate::extend_classes;
use ssvae::train::{TrainConfig, Trainer};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn eq6_on_hand_built_probabilities() {
    // no feedback signal: the score is unchanged
    assert!(close(adjust_score(100.0, 0.0, 0.0, 0.0), 100.0));
    // looks like a reported false positive: pulled down by 1 - p_fp
    assert!(close(adjust_score(100.0, 0.75, 0.0, 0.0), 25.0));
    // looks like a missed anomaly: pushed up by 1 / (1 - p_fn)
    assert!(close(adjust_score(100.0, 0.0, 0.5, 0.0), 200.0));
    assert!(close(adjust_score(100.0, 0.2, 0.6, 0.0), 0.8 / 0.4 * 100.0));
    // offset (continuous likelihoods): eq. 6 acts on s - offset, floored at 0
    assert!(close(adjust_score(30.0, 0.5, 0.0, 10.0), 10.0));
    assert_eq!(adjust_score(5.0, 0.5, 0.5, 10.0), 0.0);
    // a certain "false negative" gives a large, finite score
    let s = adjust_score(2.0, 0.0, 1.0, 0.0);
    assert!(s.is_finite() && close(s, 2.0 / MIN_DENOMINATOR));

    // rows of a 2-class model with feedback: [class 0, class 1, fp, fn]
    let classes = FeedbackClasses { base: 2 };
    assert_eq!((classes.false_positive(), classes.false_negative(), classes.total()), (2, 3, 4));
    let probs = [0.5f32, 0.5, 0.0, 0.0, 0.1, 0.1, 0.8, 0.0, 0.1, 0.1, 0.0, 0.8, 0.2, 0.2, 0.3, 0.3];
    let adj = adjusted_scores(&[10.0, 10.0, 10.0, 10.0], &probs, classes, 0.0).unwrap();
    let want = [10.0, 2.0, 50.0, 10.0];
    for (a, w) in adj.iter().zip(want) {
        assert!((a - w).abs() < 1e-5, "{adj:?} vs {want:?}");
    }
    // the ranking flips where the user spoke: a reported false positive with the highest raw
    // score now ranks below a normal sample
    let adj = adjusted_scores(&[20.0, 12.0], &[0.1, 0.0, 0.9, 0.0, 1.0, 0.0, 0.0, 0.0], classes, 0.0).unwrap();
    assert!(adj[0] < adj[1], "{adj:?}");
    // probabilities without feedback classes are refused
    assert!(adjusted_scores(&[1.0], &[0.5, 0.5], classes, 0.0).is_err());
}

fn tensor<'a>(t: &'a [(String, Vec<usize>, Vec<f32>)], name: &str) -> &'a (String, Vec<usize>, Vec<f32>) {
    t.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}"))
}

fn small_spec(train: &Dataset) -> ModelSpec {
    let mut spec = ModelSpec::dense(Kind::Ss, train.dim(), train.classes);
    spec.hidden = vec![24, 12];
    spec
}

/// Trains `steps` steps and returns the trainer's weights with optimizer state.
fn trained(
    be: &CpuBackend,
    spec: &ModelSpec,
    train: &Dataset,
    labeled: Vec<usize>,
    dir: Option<&std::path::Path>,
    steps: usize,
) -> (Trainer<CpuBackend>, Weights) {
    let mut cfg = TrainConfig::new(spec.clone(), "synthetic");
    cfg.batch_size = 16;
    let mut t = Trainer::new(be, cfg, train, None, labeled).unwrap();
    if let Some(d) = dir {
        t.load(be, d).unwrap();
    }
    for _ in 0..steps {
        t.step(be).unwrap();
    }
    let dir = std::env::temp_dir().join(format!("ssvae-fb-{}-{}", std::process::id(), spec.classes));
    t.save(be, &dir).unwrap();
    let w = load_weights(&dir.join(ssvae::train::checkpoint::MODEL_FILE)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (t, w)
}

#[test]
fn migration_keeps_old_weights_and_state_and_training_continues() {
    let be = CpuBackend::new();
    let split = synthetic(200, 10, 5);
    let spec = small_spec(&split.train);
    let (_, old) = trained(&be, &spec, &split.train, (0..40).collect(), None, 6);
    let mut new_spec = spec.clone();
    new_spec.classes = 12;
    let grown = extend_classes(&old, &spec, &new_spec).unwrap();

    let (c, l, h) = (10usize, spec.latent, 12usize);
    for (what, o, g) in
        [("params", &old.params, &grown.params), ("state1", &old.state1, &grown.state1), ("state2", &old.state2, &grown.state2)]
    {
        assert_eq!(o.len(), g.len(), "{what}: same tensors");
        // pi head: columns appended
        let (ow, gw) = (&tensor(o, "pi.weight").2, tensor(g, "pi.weight"));
        assert_eq!(gw.1, vec![h, c + 2]);
        for r in 0..h {
            assert_eq!(&gw.2[r * (c + 2)..r * (c + 2) + c], &ow[r * c..(r + 1) * c], "{what}: pi.weight row {r} old columns");
            assert_eq!(&gw.2[r * (c + 2) + c..(r + 1) * (c + 2)], &[0.0, 0.0], "{what}: pi.weight row {r} new columns");
        }
        let gb = &tensor(g, "pi.bias").2;
        assert_eq!(&gb[..c], &tensor(o, "pi.bias").2[..]);
        assert_eq!(&gb[c..], &[0.0, 0.0]);
        // decoder input concat(z, pi): rows appended
        let (od, gd) = (tensor(o, "dec0.weight"), tensor(g, "dec0.weight"));
        assert_eq!(gd.1, vec![l + c + 2, od.1[1]]);
        let w = od.1[1];
        assert_eq!(&gd.2[..(l + c) * w], &od.2[..]);
        assert!(gd.2[(l + c) * w..].iter().all(|&v| v == 0.0));
        // everything else unchanged
        for (n, s, v) in o.iter().filter(|(n, _, _)| n != "pi.weight" && n != "pi.bias" && n != "dec0.weight") {
            let t = tensor(g, n);
            assert_eq!((&t.1, &t.2), (s, v), "{what}: {n} changed");
        }
    }
    // the optimizer state of the old entries is really carried (not zero after 6 steps)
    assert!(tensor(&grown.state1, "pi.weight").2.iter().any(|&v| v != 0.0));

    // the extended model loads and trains on data with the two new classes
    let dir = std::env::temp_dir().join(format!("ssvae-fb-grown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    save_weights(&dir.join(ssvae::train::checkpoint::MODEL_FILE), &grown).unwrap();
    let mut train = split.train.clone();
    train.classes = 12;
    for i in 0..4 {
        train.labels[100 + i] = 10 + (i % 2) as u8;
    }
    let labeled: Vec<usize> = (0..40).chain(100..104).collect();
    let mut cfg = TrainConfig::new(new_spec.clone(), "synthetic");
    cfg.batch_size = 16;
    let mut t = Trainer::new(&be, cfg, &train, None, labeled).unwrap();
    t.load(&be, &dir).unwrap();
    let loaded = t.store.read(&be).unwrap();
    for (n, _, v) in &grown.params {
        assert_eq!(&tensor(&loaded, n).2, v, "{n} loaded");
    }
    for _ in 0..10 {
        t.step(&be).unwrap();
    }
    let losses = t.take_losses(&be).unwrap();
    assert!(losses.objective.is_finite() && losses.ce.unwrap().is_finite());
    let after = t.store.read(&be).unwrap();
    let pw = &tensor(&after, "pi.weight").2;
    assert!((0..h).any(|r| pw[r * (c + 2) + c] != 0.0 || pw[r * (c + 2) + c + 1] != 0.0), "new pi columns trained");
    let _ = std::fs::remove_dir_all(&dir);

    // refused: fewer classes, or another architecture
    assert!(extend_classes(&old, &new_spec, &spec).is_err());
    let mut other = new_spec.clone();
    other.hidden = vec![24, 8];
    assert!(extend_classes(&old, &spec, &other).is_err());
    let eu = ModelSpec::dense(Kind::Eu, spec.input_dim, 10);
    assert!(extend_classes(&old, &eu, &ModelSpec { classes: 12, ..eu.clone() }).is_err());
}
