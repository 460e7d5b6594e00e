//! Shared test harness: one GPU backend per test binary, seeded random data, and a comparison
//! that prints the worst element on failure.
//!
//! Without an adapter, GPU tests fail when `CI=true` (or `SSVAE_REQUIRE_GPU=1`) and otherwise
//! print that they were skipped.
#![allow(dead_code)]

pub mod cli;
pub mod fd;
pub mod model_fd;
pub mod tempdir;

#[allow(unused_imports)]
pub use tempdir::TempDir;

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::GpuBackend;
use ssvae::Backend;

/// Writes straight to stderr, past the test harness's output capture, so the adapter used
/// and any skip show in every test log.
pub fn notice(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

pub fn require_gpu() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || std::env::var("SSVAE_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// The shared GPU backend, or `None` (after printing a notice) when no adapter exists and the
/// environment does not require one.
pub fn gpu() -> Option<&'static GpuBackend> {
    static GPU: OnceLock<Result<GpuBackend, String>> = OnceLock::new();
    let g = GPU.get_or_init(|| {
        let r = GpuBackend::from_env().map_err(|e| e.to_string());
        match &r {
            Ok(g) => notice(&format!("GPU tests run on adapter: {}", g.describe())),
            Err(e) => notice(&format!("no GPU adapter: {e}")),
        }
        r
    });
    match g {
        Ok(g) => Some(g),
        Err(e) if require_gpu() => panic!("GPU tests are required here (CI=true or SSVAE_REQUIRE_GPU=1) but no adapter opened: {e}"),
        Err(_) => {
            notice("SKIPPED: GPU test skipped (no adapter; set CI=true to make this a failure)");
            None
        }
    }
}

pub fn cpu() -> CpuBackend {
    CpuBackend::new()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Asserts |a - b| <= atol + rtol * |b| everywhere (a NaN anywhere fails); on failure names
/// the worst element and the largest difference.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    let (mut worst_i, mut worst_excess, mut max_diff) = (0usize, f32::NEG_INFINITY, 0.0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        let excess = if d.is_nan() { f32::INFINITY } else { d - (atol + rtol * w.abs()) };
        if excess > worst_excess {
            (worst_i, worst_excess) = (i, excess);
        }
        max_diff = max_diff.max(if d.is_nan() { f32::INFINITY } else { d });
    }
    assert!(
        worst_excess <= 0.0,
        "{what}: mismatch at element {worst_i}: got {} want {} (tolerance {atol} + {rtol}*|want|); max |diff| over all {} elements: {max_diff}",
        got[worst_i],
        want[worst_i],
        got.len()
    );
}

/// The folder holding mnist/, fashion-mnist/ and uci-har/: $SSVAE_DATA, or ../shared/data.
pub fn data_root() -> std::path::PathBuf {
    match std::env::var_os("SSVAE_DATA") {
        Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
        _ => std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
    }
}

/// The real MNIST split from $SSVAE_DATA/mnist or ../shared/data/mnist. Missing data fails
/// under CI=true and is a printed skip elsewhere (`None`).
pub fn mnist() -> Option<ssvae::data::Split> {
    let root = data_root();
    let dir = root.join("mnist");
    match ssvae::data::load_idx_dataset(&dir, ssvae::data::IdxDataset::Mnist) {
        Ok(s) => Some(s),
        Err(e) if require_gpu() => panic!("MNIST is required under CI=true but could not be loaded from {}: {e}", dir.display()),
        Err(e) => {
            notice(&format!("SKIPPED: MNIST not available ({e}); set SSVAE_DATA"));
            None
        }
    }
}

/// The real UCI-HAR split (the paper's six channels, standardised on the training windows)
/// from $SSVAE_DATA/uci-har or ../shared/data/uci-har. Missing data fails under CI=true and is a
/// printed skip elsewhere (`None`).
pub fn har() -> Option<ssvae::data::SeriesSplit> {
    let root = data_root();
    let dir = root.join("uci-har");
    match ssvae::data::load_har(&dir, &ssvae::data::HAR_DEFAULT_CHANNELS) {
        Ok(mut s) => {
            s.standardize().expect("UCI-HAR has training windows");
            Some(s)
        }
        Err(e) if require_gpu() => panic!("UCI-HAR is required under CI=true but could not be loaded from {}: {e}", dir.display()),
        Err(e) => {
            notice(&format!("SKIPPED: UCI-HAR not available ({e}); set SSVAE_DATA"));
            None
        }
    }
}

/// Trains `steps` steps and evaluates: the mean losses of the first `head` steps, of the rest,
/// and the test report after training (for the "it learns" tests).
pub fn train_and_evaluate<B: Backend>(
    be: &B,
    t: &mut ssvae::train::Trainer<B>,
    steps: usize,
    head: usize,
) -> (ssvae::train::Losses, ssvae::train::Losses, ssvae::train::EvalReport) {
    let mut first = None;
    for s in 0..steps {
        t.step(be).unwrap();
        if s + 1 == head {
            first = Some(t.take_losses(be).unwrap());
        }
    }
    let last = t.take_losses(be).unwrap();
    let after = t.evaluate(be).unwrap().expect("a test set was given");
    eprintln!("after {steps} steps: {after:?}\nlosses first {head} steps {first:?}, last {} {last:?}", steps - head);
    (first.expect("head < steps"), last, after)
}

/// An observer that asks the run to stop after a number of steps, as Ctrl-C does in the CLI
/// (0: never), and keeps the notes it hears.
pub struct StopAfter {
    left: std::cell::Cell<usize>,
    pub notes: Vec<String>,
}

impl StopAfter {
    pub fn new(steps: usize) -> Self {
        StopAfter { left: std::cell::Cell::new(steps), notes: Vec::new() }
    }
}

impl ssvae::run::Observer for StopAfter {
    fn note(&mut self, msg: &str) {
        self.notes.push(msg.to_string());
    }
    fn stop_requested(&self) -> bool {
        let left = self.left.get();
        self.left.set(left.saturating_sub(1));
        left == 1
    }
}
