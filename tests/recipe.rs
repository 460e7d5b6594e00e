//! The default recipe delivers the semi-supervised gain on a built-in dataset (issue 16): on the
//! built-in glyphs (10000 training images, 100 labels, 2 epochs, the README's main job
//! shortened) the default recipe's SS_D beats its ES sibling on every seed and by at least
//! 10 points on average, and beats the paper's protocol on average. Measured when written (test
//! accuracy, seeds 0 / 1): default SS 0.872 / 0.765, paper SS 0.800 / 0.724, ES 0.641 / 0.602:
//! a 20-point gap (the 10-epoch main job, 3 seeds: RESULTS.md); with the default recipe's
//! labeled share of a tenth (session 9) default SS 0.875 / 0.827. CPU backend, ~40 s on 2 cores
//! (~100 s under load).
//!
//! It can fail: with the unlabeled half of each SS batch drawn from the 100 labeled samples
//! (the batcher mutated so that unlabeled data never reaches the model) the default SS fell to
//! 0.698 / 0.676, a 6.5-point gap over ES that the decoder's regularisation of the labeled
//! samples alone gives, and the 10-point threshold failed it.

mod common;

use ssvae::backend::cpu::CpuBackend;
use ssvae::model::{Family, Kind};
use ssvae::run::{self, DatasetName, Quiet, Recipe, RunSpec};
use ssvae::train::LabelSpec;

/// This test's own folder (removed when the test passes); not made yet.
fn tmp(name: &str) -> common::TempDir {
    common::TempDir::unmade("recipe", name)
}

fn accuracy(kind: Kind, recipe: Recipe, seed: u64) -> f64 {
    let out = tmp(&format!("{kind:?}-{recipe:?}-{seed}"));
    let mut s = RunSpec::new(Family::Dense, kind, DatasetName::Synthetic);
    s.data.synthetic = (10000, 1000);
    s.labels = Some(LabelSpec::Count(100));
    s.epochs = 2;
    s.seed = seed;
    s.recipe = recipe;
    s.out = Some(out.to_path_buf());
    let r = run::train(&CpuBackend::new(), &s, &mut Quiet).unwrap();
    r.accuracy.expect("a classifier reports its accuracy")
}

#[test]
fn default_recipe_ss_beats_its_es_sibling_with_few_labels() {
    let seeds = [0u64, 1];
    let ss: Vec<f64> = seeds.iter().map(|&s| accuracy(Kind::Ss, Recipe::Default, s)).collect();
    let paper: Vec<f64> = seeds.iter().map(|&s| accuracy(Kind::Ss, Recipe::Paper, s)).collect();
    let es: Vec<f64> = seeds.iter().map(|&s| accuracy(Kind::Es, Recipe::Default, s)).collect();
    eprintln!("default SS {ss:?}, paper SS {paper:?}, ES {es:?}");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    for i in 0..seeds.len() {
        assert!(ss[i] > es[i], "seed {}: SS {} is not ahead of ES {}", seeds[i], ss[i], es[i]);
    }
    assert!(mean(&ss) >= mean(&es) + 0.10, "SS {ss:?} is not 10 points ahead of ES {es:?} on average");
    assert!(mean(&ss) > mean(&paper), "the default recipe {ss:?} is not ahead of the paper's protocol {paper:?}");
}
