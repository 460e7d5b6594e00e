//! The training levers of issue 16 at the trainer level (CPU backend, the built-in glyphs): the
//! KL warm-up weighs the KL term by its level (level 0 trains exactly as a model without the
//! term, level 16 of 32 exactly as one with half the KL weight, and the reported KL is the
//! unweighted one), and the labeled share sets how many rows of a batch are labeled and so the
//! length of an epoch. Label smoothing is checked at the kernel (tests/kernels_loss.rs,
//! tests/gradcheck.rs) and model level (tests/model_gradcheck.rs); resuming with the levers in
//! tests/run_api.rs; the flags' errors in tests/cli.rs and tests/bad_input.rs.
mod common;

use ssvae::backend::cpu::CpuBackend;
use ssvae::data::{label_subset, Split};
use ssvae::model::{Kind, ModelSpec};
use ssvae::train::{LabelSpec, Losses, TrainConfig, Trainer};

type Params = Vec<(String, Vec<usize>, Vec<f32>)>;

/// 256 training glyphs: with batches of 32 an epoch is 16 steps (SS: 16 unlabeled rows a
/// step) or 8 (EU).
fn data() -> (Split, Vec<usize>) {
    let split = ssvae::data::synthetic(256, 10, 4);
    let labeled = label_subset(&split.train.labels, 10, 20, 3).unwrap();
    (split, labeled)
}

fn cfg(kind: Kind, split: &Split) -> TrainConfig {
    let mut spec = ModelSpec::dense(kind, split.train.dim(), split.train.classes);
    spec.hidden = vec![32, 16];
    let mut c = TrainConfig::new(spec, "synthetic");
    c.batch_size = 32;
    c.labels = LabelSpec::Count(20);
    c.seed = 3;
    // 64 steps: a warm-up over the whole run spends its first 2 steps at level 0 of 32
    c.epochs = if kind == Kind::Eu { 8 } else { 4 };
    c
}

/// The parameters and the reported losses after `steps` steps.
fn train(c: TrainConfig, split: &Split, labeled: &[usize], steps: usize) -> (Params, Losses) {
    let be = CpuBackend::new();
    let mut t = Trainer::new(&be, c, &split.train, None, labeled.to_vec()).unwrap();
    assert_eq!(t.steps_per_epoch() * t.cfg.epochs, 64);
    for _ in 0..steps {
        t.step(&be).unwrap();
    }
    let l = t.take_losses(&be).unwrap();
    (t.store.read(&be).unwrap(), l)
}

#[test]
fn kl_warmup_weighs_the_kl_term_by_its_level() {
    let (split, labeled) = data();
    for kind in [Kind::Ss, Kind::Eu] {
        let labeled = if kind == Kind::Eu { vec![] } else { labeled.clone() };
        let base = cfg(kind, &split);
        let (plain, l_plain) = train(base.clone(), &split, &labeled, 1);
        // a warm-up over the whole run starts at level 0: the first step is the model's without KL
        let (warm, l_warm) = train(TrainConfig { kl_warmup: 1.0, ..base.clone() }, &split, &labeled, 1);
        let mut no_kl = base.clone();
        no_kl.model.kl_weight = 0.0;
        let (without, _) = train(no_kl, &split, &labeled, 1);
        assert!(warm == without, "{kind:?}: level 0 does not train as the model without the KL term");
        assert!(warm != plain, "{kind:?}: the KL term moves no weight, so the comparison above cannot fail");
        assert_eq!(l_warm.kl, None, "{kind:?}: a window spent at factor 0 measures no KL");
        // a warm-up over 1/32 of the 64 steps (a ramp of 2): half the weight at the first step
        let (half, l_half) = train(TrainConfig { kl_warmup: 0.03125, ..base.clone() }, &split, &labeled, 1);
        let mut half_kl = base.clone();
        half_kl.model.kl_weight = 0.5;
        let (weighted, l_weighted) = train(half_kl.clone(), &split, &labeled, 1);
        assert!(half == weighted, "{kind:?}: level 16 of 32 does not train as kl_weight 0.5");
        // the KL reported is the KL itself: the first step's forward pass sees the same weights
        let (kp, kh, kw) = (l_plain.kl.unwrap(), l_half.kl.unwrap(), l_weighted.kl.unwrap());
        assert!((kh - kp).abs() <= 1e-9 * kp.abs() && (kw - kp).abs() <= 1e-9 * kp.abs(), "{kind:?}: KL {kh} / {kw} vs {kp}");
        // after the ramp the weight is full: steps 2 and 3 of the warm-up train exactly as the
        // model with the full KL weight continuing from that first half-weight step
        let (ramped, l_ramped) = train(TrainConfig { kl_warmup: 0.03125, ..base.clone() }, &split, &labeled, 3);
        let be = CpuBackend::new();
        let mut a = Trainer::new(&be, half_kl, &split.train, None, labeled.clone()).unwrap();
        a.step(&be).unwrap();
        let mut b = Trainer::new(&be, base.clone(), &split.train, None, labeled.clone()).unwrap();
        b.load_weights(&be, &a.weights(&be).unwrap(), std::path::Path::new("after step 1")).unwrap();
        b.continue_from(1, 0);
        b.step(&be).unwrap();
        b.step(&be).unwrap();
        assert!(ramped == b.store.read(&be).unwrap(), "{kind:?}: the KL weight is not full after the warm-up");
        assert!(l_ramped.kl.is_some_and(f64::is_finite), "{kind:?}: {l_ramped:?}");
    }
}

#[test]
fn labeled_share_sets_the_labeled_rows_and_the_epoch() {
    let (split, labeled) = data();
    let be = CpuBackend::new();
    let base = cfg(Kind::Ss, &split);
    // a quarter of 32 rows labeled: 24 unlabeled rows a step, ceil(256 / 24) = 11 steps an epoch
    let t = Trainer::new(&be, TrainConfig { labeled_share: 0.25, ..base.clone() }, &split.train, None, labeled.clone()).unwrap();
    assert_eq!(t.steps_per_epoch(), 11);
    // the paper's half is the default and trains exactly as before the flag existed (the
    // batcher's rows: tests/data.rs)
    assert_eq!(base.labeled_share, 0.5);
    let (a, _) = train(base.clone(), &split, &labeled, 3);
    let (b, _) = train(TrainConfig { labeled_share: 0.5, ..base.clone() }, &split, &labeled, 3);
    assert!(a == b);
    let e = |c: TrainConfig, labeled: Vec<usize>| Trainer::new(&be, c, &split.train, None, labeled).err().expect("refused").to_string();
    let msg = e(TrainConfig { labeled_share: 0.01, ..base.clone() }, labeled.clone());
    assert!(msg.contains("--labeled-share 0.01 of --batch-size 32 gives 0 labeled rows"), "{msg}");
    let msg = e(TrainConfig { labeled_share: 0.25, ..cfg(Kind::Es, &split) }, labeled.clone());
    assert!(msg.contains("--labeled-share applies to the semi-supervised models") && msg.contains("es-dense"), "{msg}");
    let msg = e(TrainConfig { kl_warmup: 0.3, ..cfg(Kind::Es, &split) }, labeled.clone());
    assert!(msg.contains("--kl-warmup applies to the models with a Gaussian KL term") && msg.contains("es-dense"), "{msg}");
}

/// The default recipe's labeled share: a tenth when fewer than a tenth of the training samples
/// are labeled, else the paper's half; at least one labeled row, and no more unlabeled rows
/// than samples.
#[test]
fn recipe_labeled_share_follows_the_labeled_fraction() {
    use ssvae::data::labeled_rows;
    use ssvae::run::recipe_labeled_share as share;
    let rows = |b: usize, n: usize, l: usize| labeled_rows(b, share(b, n, l));
    // few labels: a tenth (100 of 50000 MNIST images, 1000 of them, 100 of 7352 HAR windows,
    // just under a tenth)
    assert_eq!(share(128, 50000, 100), 0.1);
    assert_eq!(share(128, 50000, 1000), 0.1);
    assert_eq!(rows(128, 7352, 100), 12);
    assert_eq!(share(128, 10000, 999), 0.1);
    // a tenth labeled or more: the paper's half (1000 of 7352 HAR windows, a fully labeled set)
    assert_eq!(share(128, 10000, 1000), 0.5);
    assert_eq!(share(128, 7352, 1000), 0.5);
    assert_eq!(share(128, 1000, 300), 0.5);
    assert_eq!(rows(128, 1000, 300), 64);
    assert_eq!(share(128, 1000, 1000), 0.5);
    assert_eq!(rows(128, 1000, 800), 64);
    // a small batch keeps one labeled row; a batch of 2 one of each
    assert_eq!(rows(8, 50000, 100), 1);
    assert_eq!(rows(2, 50000, 100), 1);
    // a table smaller than the batch's unlabeled rows: labeled rows make up the difference
    // (100 rows, 5 labeled: a tenth would leave 115 unlabeled rows; 28 labeled instead)
    assert_eq!(rows(128, 100, 5), 28);
    assert_eq!(rows(128, 100, 20), 64);
    assert_eq!(rows(128, 70, 70), 64);
    assert_eq!(rows(128, 100, 100), 64);
}

/// The training settings a 1-epoch SS_D run on `n` synthetic samples records in config.json.
fn recorded(name: &str, labels: LabelSpec, n: usize, recipe: ssvae::run::Recipe, given: ssvae::run::RunSpec) -> ssvae::train::TrainConfig {
    use ssvae::run::{self, DatasetName, Quiet, RunConfig, RunSpec};
    let out = common::TempDir::unmade("levers-recorded", name);
    let mut s = RunSpec::new(ssvae::model::Family::Dense, Kind::Ss, DatasetName::Synthetic);
    s.data.synthetic = (n, 32);
    s.model.hidden = Some(vec![16]);
    s.batch_size = 128;
    s.epochs = 1;
    s.labels = Some(labels);
    s.recipe = recipe;
    (s.labeled_share, s.lr_schedule) = (given.labeled_share, given.lr_schedule);
    s.out = Some(out.to_path_buf());
    run::train(&CpuBackend::new(), &s, &mut Quiet).unwrap_or_else(|e| panic!("{name}: {e}"));
    RunConfig::load(&out).unwrap().train
}

/// The share is resolved once the labels are chosen and recorded in config.json; the paper's
/// recipe, a given `--labeled-share` and the other kinds keep theirs.
#[test]
fn recipe_labeled_share_is_resolved_and_recorded() {
    use ssvae::run::{Recipe, RunSpec};
    let run_share = |name: &str, labels: LabelSpec, n: usize, recipe: Recipe, given: Option<f64>| {
        recorded(name, labels, n, recipe, RunSpec { labeled_share: given, ..RunSpec::default() }).labeled_share
    };
    assert_eq!(run_share("few", LabelSpec::Count(20), 1000, Recipe::Default, None), 0.1);
    assert_eq!(run_share("many", LabelSpec::Count(200), 1000, Recipe::Default, None), 0.5);
    assert_eq!(run_share("all", LabelSpec::All, 1000, Recipe::Default, None), 0.5);
    assert_eq!(run_share("paper", LabelSpec::Count(20), 1000, Recipe::Paper, None), 0.5);
    assert_eq!(run_share("given", LabelSpec::Count(20), 1000, Recipe::Default, Some(0.25)), 0.25);
    // 100 samples, 5 labeled, batches of 128: a tenth would leave 115 unlabeled rows; the
    // recipe takes 28 labeled rows instead of refusing the batch
    assert_eq!(run_share("small", LabelSpec::Count(5), 100, Recipe::Default, None), 28.0 / 128.0);
}

/// The default recipe cools the learning rate down over the run's last fifth; the paper's
/// protocol keeps the constant rate, and a given `--lr-schedule` wins over both.
#[test]
fn recipe_lr_schedule_is_recorded() {
    use ssvae::run::{Recipe, RunSpec};
    use ssvae::train::LrSchedule;
    let schedule = |name: &str, recipe: Recipe, given: Option<LrSchedule>| {
        recorded(name, LabelSpec::Count(20), 300, recipe, RunSpec { lr_schedule: given, ..RunSpec::default() }).lr_schedule
    };
    assert_eq!(schedule("default", Recipe::Default, None), LrSchedule::Cooldown);
    assert_eq!(schedule("paper", Recipe::Paper, None), LrSchedule::Constant);
    assert_eq!(schedule("given", Recipe::Default, Some(LrSchedule::Constant)), LrSchedule::Constant);
    assert_eq!(schedule("given-paper", Recipe::Paper, Some(LrSchedule::Cosine)), LrSchedule::Cosine);
}

/// `--consistency-weight` / `--consistency-noise`: resolved into the model (noise 0.3 when not
/// given), recorded in config.json, a shift with the images' layout; refused with the flag's
/// name where it cannot apply (ES, a noise without a weight, no perturbation at all), before
/// the run folder is written; the default recipe gives it to SS models of images in the dense
/// and CNN families.
#[test]
fn consistency_is_resolved_recorded_and_refused_where_it_cannot_apply() {
    use ssvae::model::Family;
    use ssvae::run::{self, DatasetName, Quiet, RunConfig, RunSpec};
    let be = CpuBackend::new();
    let spec = |family: Family, kind: Kind, name: &str, weight: Option<f32>, noise: Option<f32>| {
        let out = std::env::temp_dir().join(format!("ssvae-levers-consistency-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut s = RunSpec::new(family, kind, DatasetName::Synthetic);
        s.data.synthetic = (200, 32);
        s.model.hidden = Some(vec![16]);
        s.batch_size = 64;
        s.epochs = 1;
        s.labels = Some(LabelSpec::Count(20));
        s.model.consistency_weight = weight;
        s.model.consistency_noise = noise;
        s.out = Some(out.clone());
        (s, out)
    };
    let recorded = |weight: Option<f32>, noise: Option<f32>, recipe: ssvae::run::Recipe| {
        let (mut s, out) = spec(Family::Dense, Kind::Ss, "ok", weight, noise);
        s.recipe = recipe;
        run::train(&be, &s, &mut Quiet).unwrap();
        let m = RunConfig::load(&out).unwrap().train.model;
        let _ = std::fs::remove_dir_all(&out);
        let side = m.consistency_shape.map_or(0, |[h, w, _]| h.min(w));
        (m.consistency_weight, m.consistency_noise, m.consistency_shift, side)
    };
    use ssvae::run::{recipe_consistency_shift, Recipe::*, DEFAULT_CONSISTENCY_NOISE, RECIPE_CONSISTENCY_WEIGHT};
    // the paper's recipe with a weight: the default noise, no shift
    assert_eq!(recorded(Some(5.0), None, Paper), (5.0, DEFAULT_CONSISTENCY_NOISE, 0, 0));
    assert_eq!(recorded(Some(5.0), Some(0.1), Paper), (5.0, 0.1, 0, 0));
    // the default recipe on images: its weight, no noise, a sixteenth of the side as the shift
    let (w, noise, shift, side) = recorded(None, None, Default);
    assert!(RECIPE_CONSISTENCY_WEIGHT > 0.0 && side > 0);
    assert_eq!((w, noise, shift), (RECIPE_CONSISTENCY_WEIGHT, ssvae::run::RECIPE_CONSISTENCY_NOISE_IMAGES, recipe_consistency_shift(side)));
    // the CNN family gets the same default on images
    let (mut s, out) = spec(Family::Cnn, Kind::Ss, "cnn", None, None);
    s.model.conv = Some(vec![ssvae::model::ConvLayer { channels: 4, kernel: 3, stride: 2 }]);
    run::train(&be, &s, &mut Quiet).unwrap();
    let m = RunConfig::load(&out).unwrap().train.model;
    let _ = std::fs::remove_dir_all(&out);
    let side = m.consistency_shape.map_or(0, |[h, w, _]| h.min(w));
    assert_eq!((m.consistency_weight, m.consistency_shift), (RECIPE_CONSISTENCY_WEIGHT, recipe_consistency_shift(side)));
    // a shift on images records their layout; a table refuses it by name
    let (mut s, out) = spec(Family::Dense, Kind::Ss, "shift", Some(5.0), Some(0.0));
    s.model.consistency_shift = Some(2);
    s.model.consistency_scale = Some(0.1);
    run::train(&be, &s, &mut Quiet).unwrap();
    let m = RunConfig::load(&out).unwrap().train.model;
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!((m.consistency_shift, m.consistency_scale, m.consistency_noise), (2, 0.1, 0.0));
    let [h, w, c] = m.consistency_shape.expect("the glyphs' layout");
    assert_eq!(h * w * c, m.input_dim);
    for (family, kind, name, weight, noise, want) in [
        (Family::Dense, Kind::Es, "es", Some(5.0), None, "--consistency-weight"),
        (Family::Dense, Kind::Ss, "noise-without-weight", Some(0.0), Some(0.2), "--consistency-noise"),
        (Family::Dense, Kind::Ss, "noise-zero", Some(5.0), Some(0.0), "--consistency-weight needs a perturbation"),
        (Family::Dense, Kind::Ss, "weight-negative", Some(-1.0), None, "--consistency-weight"),
    ] {
        let (mut s, out) = spec(family, kind, name, weight, noise);
        if name == "noise-zero" {
            // the default recipe would shift images: the paper's adds no perturbation of its own
            s.recipe = ssvae::run::Recipe::Paper;
        }
        let err = run::train(&be, &s, &mut Quiet).err().unwrap_or_else(|| panic!("{name}: accepted")).to_string();
        assert!(err.contains(want), "{name}: {err}");
        assert!(!out.join("checkpoint").exists(), "{name}: a run folder was written before the error");
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// The default recipe's translation: a sixteenth of the length along the shifted axis, rounded,
/// at least 1 (2 pixels of a 28 x 28 image, 8 steps of a 128-step window), none for length 1.
#[test]
fn recipe_consistency_shift_is_a_sixteenth_of_the_axis() {
    use ssvae::run::recipe_consistency_shift as shift;
    assert_eq!([shift(1), shift(2), shift(8), shift(28), shift(32), shift(64), shift(128), shift(224)], [0, 1, 1, 2, 2, 4, 8, 14]);
}

/// `--pi-to-decoder gumbel` with its temperature is recorded in config.json (and the
/// temperature only with it), trains, and resumes into the same setting; a temperature without
/// the Gumbel-softmax, or one that is not finite and positive, is refused by name before a run
/// folder is written.
#[test]
fn gumbel_softmax_is_recorded_and_refused_where_it_cannot_apply() {
    use ssvae::model::{Family, PiToDecoder};
    use ssvae::run::{self, DatasetName, Quiet, RunConfig, RunSpec};
    let be = CpuBackend::new();
    let spec = |kind: Kind, name: &str, pi: Option<PiToDecoder>, tau: Option<f32>| {
        let out = std::env::temp_dir().join(format!("ssvae-levers-gumbel-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut s = RunSpec::new(Family::Dense, kind, DatasetName::Synthetic);
        s.data.synthetic = (200, 32);
        s.model.hidden = Some(vec![16]);
        s.batch_size = 64;
        s.epochs = 1;
        s.labels = Some(LabelSpec::Count(20));
        s.model.pi_to_decoder = pi;
        s.model.gumbel_temperature = tau;
        s.out = Some(out.clone());
        (s, out)
    };
    for (tau, want) in [(Some(0.5), 0.5), (None, 1.0)] {
        let (s, out) = spec(Kind::Ss, "ok", Some(PiToDecoder::Gumbel), tau);
        let r = run::train(&be, &s, &mut Quiet).unwrap();
        assert!(r.accuracy.is_some_and(|a| a.is_finite()));
        let m = RunConfig::load(&out).unwrap().train.model;
        assert_eq!((m.pi_to_decoder, m.gumbel_temperature), (PiToDecoder::Gumbel, want));
        let text = std::fs::read_to_string(out.join("checkpoint").join("config.json")).unwrap();
        assert_eq!(text.contains("gumbel_temperature"), tau.is_some(), "the temperature is written only when not 1: {text}");
        let _ = std::fs::remove_dir_all(&out);
    }
    // the softmax default writes neither
    let (s, out) = spec(Kind::Ss, "softmax", None, None);
    run::train(&be, &s, &mut Quiet).unwrap();
    let text = std::fs::read_to_string(out.join("checkpoint").join("config.json")).unwrap();
    assert!(!text.contains("gumbel"), "{text}");
    let _ = std::fs::remove_dir_all(&out);
    for (kind, name, pi, tau, want) in [
        (Kind::Ss, "tau-without-gumbel", None, Some(0.5), "--gumbel-temperature"),
        (Kind::Ss, "tau-zero", Some(PiToDecoder::Gumbel), Some(0.0), "--gumbel-temperature"),
        (Kind::Ss, "tau-nan", Some(PiToDecoder::Gumbel), Some(f32::NAN), "--gumbel-temperature"),
        (Kind::Es, "es", Some(PiToDecoder::Gumbel), None, "--pi-to-decoder"),
    ] {
        let (s, out) = spec(kind, name, pi, tau);
        let err = run::train(&be, &s, &mut Quiet).err().unwrap_or_else(|| panic!("{name}: accepted")).to_string();
        assert!(err.contains(want), "{name}: {err}");
        assert!(!out.join("checkpoint").exists(), "{name}: a run folder was written before the error");
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// `min_epoch_steps`: an epoch is one pass over the training set or that many steps,
/// whichever is more (200 glyphs, batch 64, 10 labels: the default recipe's labeled share of a
/// tenth gives 6 labeled and 58 unlabeled rows, a pass of 4 steps); the epochs stay as asked,
/// the run records the steps it took, and the batches are the ones a run without the minimum
/// draws (only where epochs end moves: the first 8 steps train the same weights).
#[test]
fn min_epoch_steps_lengthen_the_epochs_of_small_training_sets() {
    use ssvae::model::Family;
    use ssvae::run::{self, DatasetName, Quiet, RunConfig, RunSpec};
    let be = CpuBackend::new();
    let run = |name: &str, kind: Kind, epochs: usize, min: Option<usize>| {
        let out = std::env::temp_dir().join(format!("ssvae-levers-min-epoch-steps-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut s = RunSpec::new(Family::Dense, kind, DatasetName::Synthetic);
        s.data.synthetic = (200, 32);
        s.model.hidden = Some(vec![16]);
        s.batch_size = 64;
        s.epochs = epochs;
        s.labels = Some(LabelSpec::Count(10));
        s.min_epoch_steps = min;
        s.out = Some(out.clone());
        run::train(&be, &s, &mut Quiet).unwrap();
        let c = RunConfig::load(&out).unwrap();
        let _ = std::fs::remove_dir_all(&out);
        (c.train.min_epoch_steps, c.epochs_done, c.steps_done)
    };
    assert_eq!(run("ss", Kind::Ss, 2, Some(10)), (10, 2, 20));
    assert_eq!(run("ss-none", Kind::Ss, 2, None), (0, 2, 8));
    // a pass longer than the minimum is kept
    assert_eq!(run("ss-short", Kind::Ss, 2, Some(3)), (3, 2, 8));
    // ES: a pass is 200 / 64 -> 4 steps too
    assert_eq!(run("es", Kind::Es, 1, Some(7)), (7, 1, 7));

    // the same batches: 8 steps as two one-pass epochs or inside one long epoch
    let (split, labeled) = data();
    let weights = |min: usize, epochs: usize| {
        let mut c = cfg(Kind::Ss, &split);
        c.min_epoch_steps = min;
        c.epochs = epochs;
        let be = CpuBackend::new();
        let mut t = Trainer::new(&be, c, &split.train, None, labeled.clone()).unwrap();
        for _ in 0..8 {
            t.step(&be).unwrap();
        }
        (t.steps_per_epoch(), t.store.read(&be).unwrap())
    };
    let (spe_plain, plain) = weights(0, 4);
    let (spe_long, long) = weights(20, 1);
    assert_eq!((spe_plain, spe_long), (16, 20));
    assert_eq!(plain, long, "a longer epoch must draw the same batches");
}

/// The Gaussian decoder's variance floor (`--var-floor`): the default recipe's on SS dense
/// models of real-valued data, the legacy 1e-6 on EU and recurrent models and under the paper's
/// recipe, a given one as given; config.json carries it unless it is the legacy value (a file
/// without it reads as 1e-6, as before the setting existed); the floor reaches the loss (a
/// larger one changes the first step's reconstruction term); refused by name, before a run
/// folder is written, where there is no Gaussian decoder or the value is out of (0, 1].
#[test]
fn var_floor_is_resolved_recorded_and_refused_where_it_cannot_apply() {
    use ssvae::backend::cpu::loss::LEGACY_GAUSSIAN_VAR_FLOOR;
    use ssvae::model::Family;
    use ssvae::run::{self, DatasetName, Quiet, Recipe, RunConfig, RunSpec, RECIPE_VAR_FLOOR};
    let be = CpuBackend::new();
    let spec = |family: Family, kind: Kind, dataset: DatasetName, name: &str, floor: Option<f32>| {
        let out = std::env::temp_dir().join(format!("ssvae-levers-var-floor-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut s = RunSpec::new(family, kind, dataset);
        s.data.synthetic = (96, 16);
        s.model.hidden = Some(if family == Family::Rnn { vec![8, 8, 8] } else { vec![16] });
        s.batch_size = 32;
        s.epochs = 1;
        s.labels = Some(LabelSpec::Count(12));
        s.model.var_floor = floor;
        s.out = Some(out.clone());
        (s, out)
    };
    let sensor = DatasetName::SyntheticSensor;
    for (family, kind) in [(Family::Rnn, Kind::Ss), (Family::Rnn, Kind::Eu), (Family::Dense, Kind::Ss), (Family::Dense, Kind::Eu)] {
        let recipe_floor = if (family, kind) == (Family::Dense, Kind::Ss) { RECIPE_VAR_FLOOR } else { LEGACY_GAUSSIAN_VAR_FLOOR };
        for (floor, recipe, want) in
            [(None, Recipe::Default, recipe_floor), (None, Recipe::Paper, LEGACY_GAUSSIAN_VAR_FLOOR), (Some(0.05), Recipe::Paper, 0.05)]
        {
            let (mut s, out) = spec(family, kind, sensor, "ok", floor);
            s.recipe = recipe;
            let r = run::train(&be, &s, &mut Quiet).unwrap();
            assert!(r.test_rec.is_some_and(|e| e.is_finite()), "{family:?} {kind:?} {floor:?}: {:?}", r.test_rec);
            let m = RunConfig::load(&out).unwrap().train.model;
            assert_eq!(m.var_floor, want, "{family:?} {kind:?} {floor:?} {recipe:?}");
            let text = std::fs::read_to_string(out.join("checkpoint").join("config.json")).unwrap();
            assert_eq!(text.contains("var_floor"), want != LEGACY_GAUSSIAN_VAR_FLOOR, "{text}");
            let _ = std::fs::remove_dir_all(&out);
        }
    }
    // a model spec without the field (written before it existed) reads as the legacy floor
    let mut m = ModelSpec::rnn(Kind::Ss, 8, 2, 3);
    let mut v = serde_json::to_value(&m).unwrap();
    assert!(v.get("var_floor").is_none(), "the legacy floor is not written: {v}");
    assert_eq!(serde_json::from_value::<ModelSpec>(v.clone()).unwrap().var_floor, LEGACY_GAUSSIAN_VAR_FLOOR);
    m.var_floor = 0.01;
    v = serde_json::to_value(&m).unwrap();
    assert_eq!(serde_json::from_value::<ModelSpec>(v).unwrap().var_floor, 0.01);
    // the floor reaches the loss: the first step's reconstruction term differs
    let split = ssvae::data::sensor_synth(64, 8, 5);
    let rec = |floor: f32| {
        use ssvae::train::TrainData;
        let mut spec = ModelSpec::rnn(Kind::Eu, split.train.steps, split.train.channels, split.train.classes);
        spec.hidden = vec![8, 8, 8];
        spec.var_floor = floor;
        let mut c = TrainConfig::new(spec, "synthetic-sensor");
        c.batch_size = 16;
        c.labels = LabelSpec::Count(0);
        let mut t = Trainer::with_data(&be, c, TrainData::Series(&split.train), None, vec![]).unwrap();
        t.step(&be).unwrap();
        t.take_losses(&be).unwrap().rec.unwrap()
    };
    let (small, large) = (rec(LEGACY_GAUSSIAN_VAR_FLOOR), rec(0.5));
    assert!(small.is_finite() && large.is_finite() && (small - large).abs() > 1e-3 * small.abs().max(1.0), "{small} vs {large}");
    for (family, kind, dataset, name, floor) in [
        (Family::Dense, Kind::Ss, DatasetName::Synthetic, "images", Some(0.01)),
        (Family::Rnn, Kind::Es, sensor, "es", Some(0.01)),
        (Family::Rnn, Kind::Ss, sensor, "zero", Some(0.0)),
        (Family::Rnn, Kind::Ss, sensor, "above-one", Some(2.0)),
        (Family::Rnn, Kind::Ss, sensor, "nan", Some(f32::NAN)),
    ] {
        let (s, out) = spec(family, kind, dataset, name, floor);
        let err = run::train(&be, &s, &mut Quiet).err().unwrap_or_else(|| panic!("{name}: accepted")).to_string();
        assert!(err.contains("--var-floor"), "{name}: {err}");
        assert!(!out.join("checkpoint").exists(), "{name}: a run folder was written before the error");
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// The default recipe gives dense models of tables of real values (the Gaussian decoder) two
/// hidden layers of `RECIPE_TABLE_HIDDEN` units (any kind); `--recipe paper`, a given
/// `--hidden`, a table of values in [0, 1] (the Bernoulli decoder, unless `--likelihood
/// gaussian`), images and series windows keep theirs. The same tables get epochs of at least
/// `RECIPE_TABLE_MIN_EPOCH_STEPS` steps. Recorded in config.json (a resumed run keeps them).
#[test]
fn table_width_is_the_recipes_for_dense_models_of_tables_only() {
    use ssvae::model::{Family, Likelihood};
    use ssvae::run::{self, DatasetName, Quiet, Recipe, RunConfig, RunSpec, RECIPE_TABLE_HIDDEN, RECIPE_TABLE_MIN_EPOCH_STEPS};
    let be = CpuBackend::new();
    let dir = std::env::temp_dir().join(format!("ssvae-levers-table-width-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("a,b,c,label\n");
    for i in 0..48 {
        let class = ["x", "y", "z"][i % 3];
        let label = if i < 6 { class } else { "" };
        text += &format!("{},{},{},{label}\n", (i % 3) as f32 * 2.0 + (i as f32 * 0.37).sin(), (i as f32 * 1.3).cos(), i as f32 * 0.1);
    }
    let table = dir.join("t.csv");
    std::fs::write(&table, &text).unwrap();
    // every row labeled: many labels, one pass an epoch (the width stays the tables')
    let labeled = dir.join("labeled.csv");
    let all: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if l.ends_with(',') { format!("{l}{}", ["x", "y", "z"][(i - 1) % 3]) } else { l.to_string() })
        .collect();
    std::fs::write(&labeled, all.join("\n") + "\n").unwrap();
    // the same rows squashed into [0, 1]: the Bernoulli decoder
    let unit = dir.join("unit.csv");
    let squash = |v: &str| v.parse::<f32>().map_or(v.to_string(), |x| format!("{}", 1.0 / (1.0 + (-x).exp())));
    let unit_text: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { l.to_string() } else { l.split(',').map(squash).collect::<Vec<_>>().join(",") })
        .collect();
    std::fs::write(&unit, unit_text.join("\n") + "\n").unwrap();
    let hidden_on = |name: &str, path: &std::path::Path, likelihood: Option<Likelihood>, recipe: Recipe, given: Option<Vec<usize>>| {
        let out = dir.join(name);
        let mut s = RunSpec::new(Family::Dense, Kind::Ss, DatasetName::Table);
        s.data.path = Some(path.to_path_buf());
        s.data.series.test_fraction = Some(0.25);
        let given_width = given.is_some();
        s.model.hidden = given;
        s.model.likelihood = likelihood;
        s.batch_size = 16;
        s.epochs = 1;
        s.recipe = recipe;
        s.out = Some(out.clone());
        run::train(&be, &s, &mut Quiet).unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = RunConfig::load(&out).unwrap().train;
        let few = path != labeled.as_path();
        let want_steps = if few && !given_width && t.model.hidden == RECIPE_TABLE_HIDDEN { RECIPE_TABLE_MIN_EPOCH_STEPS } else { 0 };
        assert_eq!(t.min_epoch_steps, want_steps, "{name}: the epoch length goes with the width");
        (t.model.hidden, t.model.likelihood)
    };
    let hidden = |name: &str, family: Family, kind: Kind, dataset: DatasetName, recipe: Recipe, given: Option<Vec<usize>>| {
        let out = dir.join(name);
        let mut s = RunSpec::new(family, kind, dataset);
        if dataset == DatasetName::Table {
            s.data.path = Some(table.clone());
            s.data.series.test_fraction = Some(0.25);
        } else {
            s.data.synthetic = (96, 16);
            s.labels = Some(LabelSpec::Count(12));
        }
        s.model.hidden = given;
        if family == Family::Rnn {
            s.model.hidden = Some(vec![8, 8, 8]);
        }
        s.batch_size = 16;
        s.epochs = 1;
        s.recipe = recipe;
        s.out = Some(out.clone());
        run::train(&be, &s, &mut Quiet).unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = RunConfig::load(&out).unwrap().train;
        let table_default = dataset == DatasetName::Table && recipe == Recipe::Default;
        assert_eq!(t.min_epoch_steps, if table_default { RECIPE_TABLE_MIN_EPOCH_STEPS } else { 0 }, "{name}");
        t.model.hidden
    };
    let (table_ds, paper, default) = (DatasetName::Table, Recipe::Paper, Recipe::Default);
    for kind in [Kind::Ss, Kind::Es, Kind::Eu] {
        assert_eq!(hidden(&format!("{kind:?}"), Family::Dense, kind, table_ds, default, None), RECIPE_TABLE_HIDDEN.to_vec(), "{kind:?}");
    }
    assert_eq!(hidden("paper", Family::Dense, Kind::Ss, table_ds, paper, None), vec![1024, 1024]);
    assert_eq!(hidden("given", Family::Dense, Kind::Ss, table_ds, default, Some(vec![64])), vec![64]);
    assert_eq!(hidden_on("unit", &unit, None, default, None), (vec![1024, 1024], Likelihood::Bernoulli));
    assert_eq!(
        hidden_on("unit-gaussian", &unit, Some(Likelihood::Gaussian), default, None),
        (RECIPE_TABLE_HIDDEN.to_vec(), Likelihood::Gaussian)
    );
    assert_eq!(hidden_on("real", &table, None, default, None), (RECIPE_TABLE_HIDDEN.to_vec(), Likelihood::Gaussian));
    assert_eq!(hidden_on("all-labeled", &labeled, None, default, None), (RECIPE_TABLE_HIDDEN.to_vec(), Likelihood::Gaussian));
    assert_eq!(hidden("images", Family::Dense, Kind::Es, DatasetName::Synthetic, default, None), vec![1024, 1024]);
    // flattened sensor windows (a dense model of series, not a table) keep the paper's width
    assert_eq!(hidden("windows", Family::Dense, Kind::Es, DatasetName::SyntheticSensor, default, None), vec![1024, 1024]);
    let _ = std::fs::remove_dir_all(&dir);
}
