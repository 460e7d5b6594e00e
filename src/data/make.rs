//! Example data in the formats users bring (`ssvae generate`): a folder of photos of parts, a
//! table of sensor features and a sensor log, each with a few labels, a labeled test split and
//! new unlabeled samples to predict. The README's recipes run on them, and tests build smaller
//! ones. Everything is a deterministic function of the seed.
//!
//! - [`write_image_folder`]: the built-in glyphs as RGB PNGs, drawn in a random colour on a
//!   dark, noisy background: `train/<class>/`, `train/unlabeled/`, `test/<class>/`, `new/`.
//! - [`write_table`]: per-window features (mean, standard deviation, RMS, peak, crest factor and
//!   kurtosis of each axis, 18 columns in physical units) of the built-in vibration windows:
//!   `train.csv` (id, features, a `label` column mostly empty), `test.csv`, `new.csv` (no
//!   label column).
//! - [`write_sensor_windows`]: many vibration windows as NPY arrays (`train.npy` f32
//!   [n, steps, 3], `train_labels.npy` int64 mostly -1, `test.npy`, `test_labels.npy`), written
//!   in chunks so that a million windows need no more memory than one chunk: the data for
//!   streamed training (`ssvae train --stream`).
//! - [`write_sensor_log`]: the vibration windows as a long CSV (one row per time step) with a
//!   `recording` column and a `label` column that only some recordings fill.

use std::fmt::Write as _;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{sensor_synth_with, synthetic, SensorSynthConfig, SeriesDataset, GLYPH_SIZE, SENSOR_CLASSES, SYNTHETIC_CLASSES};
use crate::error::{Error, Result};

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io { path: path.to_path_buf(), msg: e.to_string() }
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| io(path, e))
}

/// Sizes of an example set: labeled samples per class, unlabeled samples, test samples per
/// class, new samples to predict, and the number of classes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExampleSizes {
    pub labeled_per_class: usize,
    pub unlabeled: usize,
    pub test_per_class: usize,
    pub new: usize,
    pub classes: usize,
}

impl Default for ExampleSizes {
    fn default() -> Self {
        ExampleSizes { labeled_per_class: 10, unlabeled: 2000, test_per_class: 50, new: 20, classes: 4 }
    }
}

/// Class indices: `labeled_per_class` of each class for the labeled part, then the rest
/// round-robin for the unlabeled part, then the test part, then the new samples.
fn roles(s: &ExampleSizes) -> Vec<(usize, &'static str)> {
    let mut v = Vec::new();
    for c in 0..s.classes {
        v.extend(std::iter::repeat_n((c, "train"), s.labeled_per_class));
    }
    v.extend((0..s.unlabeled).map(|i| (i % s.classes, "unlabeled")));
    for c in 0..s.classes {
        v.extend(std::iter::repeat_n((c, "test"), s.test_per_class));
    }
    v.extend((0..s.new).map(|i| (i % s.classes, "new")));
    v
}

/// Writes an image folder under `dir` (see the module comment); classes are the first
/// `sizes.classes` glyph shapes.
pub fn write_image_folder(dir: &Path, sizes: &ExampleSizes, seed: u64) -> Result<()> {
    if sizes.classes < 2 || sizes.classes > SYNTHETIC_CLASSES.len() {
        return Err(Error::Invalid(format!("--classes must be between 2 and {} for images", SYNTHETIC_CLASSES.len())));
    }
    let roles = roles(sizes);
    // enough glyphs of each class: draw from the generator and keep them by class
    let mut by_class: Vec<Vec<Vec<u8>>> = vec![Vec::new(); sizes.classes];
    let need: Vec<usize> = (0..sizes.classes).map(|c| roles.iter().filter(|r| r.0 == c).count()).collect();
    let mut n = roles.len() * 12;
    loop {
        let split = synthetic(n, 1, seed);
        for i in 0..split.train.n {
            let c = split.train.labels[i] as usize;
            if c < sizes.classes && by_class[c].len() < need[c] {
                by_class[c].push(split.train.sample(i).to_vec());
            }
        }
        if by_class.iter().zip(&need).all(|(v, &k)| v.len() >= k) {
            break;
        }
        n *= 2;
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1a9e5);
    let mut taken = vec![0usize; sizes.classes];
    let mut counter = 0usize;
    for (c, role) in roles {
        let glyph = &by_class[c][taken[c]];
        taken[c] += 1;
        let name = SYNTHETIC_CLASSES[c];
        let sub = match role {
            "train" => dir.join("train").join(name),
            "unlabeled" => dir.join("train").join("unlabeled"),
            "test" => dir.join("test").join(name),
            _ => dir.join("new"),
        };
        mkdir(&sub)?;
        let colour: [f32; 3] = [rng.random_range(0.4..1.0), rng.random_range(0.4..1.0), rng.random_range(0.4..1.0)];
        let mut rgb = Vec::with_capacity(GLYPH_SIZE * GLYPH_SIZE * 3);
        for &g in glyph {
            let ink = g as f32 / 255.0;
            for ch in colour {
                let bg: f32 = 20.0 + rng.random_range(0.0..12.0);
                rgb.push((bg * (1.0 - ink) + 255.0 * ch * ink).round().clamp(0.0, 255.0) as u8);
            }
        }
        counter += 1;
        let path = sub.join(format!("img_{counter:05}.png"));
        image::save_buffer_with_format(&path, &rgb, GLYPH_SIZE as u32, GLYPH_SIZE as u32, image::ColorType::Rgb8, image::ImageFormat::Png)
            .map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// The vibration windows of each role, generated by class.
fn sensor_windows(sizes: &ExampleSizes, seed: u64, steps: usize) -> Result<(SeriesDataset, Vec<(usize, &'static str)>)> {
    if sizes.classes < 2 || sizes.classes > SENSOR_CLASSES.len() {
        return Err(Error::Invalid(format!("--classes must be between 2 and {} for sensor data", SENSOR_CLASSES.len())));
    }
    let roles = roles(sizes);
    // the generator cycles through its 5 classes: window i has class i % 5
    let k = SENSOR_CLASSES.len();
    let need = roles.iter().map(|r| r.0).fold(vec![0usize; k], |mut v, c| {
        v[c] += 1;
        v
    });
    let n = need.iter().max().copied().unwrap_or(0) * k;
    let cfg = SensorSynthConfig { n_train: n, n_test: 1, steps, seed, ..SensorSynthConfig::default() };
    let all = sensor_synth_with(&cfg)?.train;
    let mut next = vec![0usize; k];
    let idx: Vec<usize> = roles
        .iter()
        .map(|&(c, _)| {
            let i = next[c] * k + c;
            next[c] += 1;
            i
        })
        .collect();
    Ok((all.subset(&idx), roles))
}

/// Features of one window (steps x channels): per channel mean, std, RMS, peak, crest factor,
/// kurtosis.
fn features(w: &[f32], channels: usize) -> Vec<f64> {
    let steps = w.len() / channels;
    let mut out = Vec::new();
    for c in 0..channels {
        let x: Vec<f64> = (0..steps).map(|t| w[t * channels + c] as f64).collect();
        let mean = x.iter().sum::<f64>() / steps as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / steps as f64;
        let rms = (x.iter().map(|v| v * v).sum::<f64>() / steps as f64).sqrt();
        let peak = x.iter().fold(0f64, |m, v| m.max(v.abs()));
        let kurt = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / steps as f64 / var.max(1e-12).powi(2);
        out.extend([mean, var.sqrt(), rms, peak, peak / rms.max(1e-12), kurt]);
    }
    out
}

const FEATURE_NAMES: [&str; 6] = ["mean", "std", "rms", "peak", "crest", "kurtosis"];
const AXES: [&str; 3] = ["x", "y", "z"];

/// Writes `train.csv`, `test.csv` and `new.csv` under `dir` (see the module comment).
pub fn write_table(dir: &Path, sizes: &ExampleSizes, seed: u64) -> Result<()> {
    mkdir(dir)?;
    let (ds, roles) = sensor_windows(sizes, seed, 256)?;
    let mut head = String::from("id");
    for a in AXES {
        for f in FEATURE_NAMES {
            let _ = write!(head, ",{f}_{a}");
        }
    }
    let (mut train, mut test, mut new) = (format!("{head},label\n"), format!("{head},label\n"), format!("{head}\n"));
    for (i, (c, role)) in roles.iter().enumerate() {
        let f = features(ds.window(i), ds.channels);
        let mut row = format!("w{:05}", i + 1);
        for v in f {
            let _ = write!(row, ",{v:.6}");
        }
        match *role {
            "train" => train += &format!("{row},{}\n", SENSOR_CLASSES[*c]),
            "unlabeled" => train += &format!("{row},\n"),
            "test" => test += &format!("{row},{}\n", SENSOR_CLASSES[*c]),
            _ => new += &format!("{row}\n"),
        }
    }
    write(&dir.join("train.csv"), &train)?;
    write(&dir.join("test.csv"), &test)?;
    write(&dir.join("new.csv"), &new)
}

/// Writes `train.csv` (long layout: recording, acc_x, acc_y, acc_z, label; `window` rows per
/// recording, labeled recordings first), `test.csv` and `new.csv` (no label column) under `dir`.
pub fn write_sensor_log(dir: &Path, sizes: &ExampleSizes, seed: u64, window: usize) -> Result<()> {
    mkdir(dir)?;
    let (ds, roles) = sensor_windows(sizes, seed, window)?;
    let head = "recording,acc_x,acc_y,acc_z";
    let (mut train, mut test, mut new) = (format!("{head},label\n"), format!("{head},label\n"), format!("{head}\n"));
    for (i, (c, role)) in roles.iter().enumerate() {
        let w = ds.window(i);
        let label = match *role {
            "train" | "test" => SENSOR_CLASSES[*c],
            _ => "",
        };
        let out = match *role {
            "train" | "unlabeled" => &mut train,
            "test" => &mut test,
            _ => &mut new,
        };
        for t in 0..ds.steps {
            let v = &w[t * ds.channels..(t + 1) * ds.channels];
            let _ = write!(out, "r{:05},{:.5},{:.5},{:.5}", i + 1, v[0], v[1], v[2]);
            if *role != "new" {
                let _ = write!(out, ",{label}");
            }
            out.push('\n');
        }
    }
    write(&dir.join("train.csv"), &train)?;
    write(&dir.join("test.csv"), &test)?;
    write(&dir.join("new.csv"), &new)
}

/// Windows generated per chunk by [`write_sensor_windows`] (a multiple of the 5 classes).
pub const WINDOW_CHUNK: usize = 10_000;

/// Writes `n` training windows and `n_test` test windows of `steps` x 3 under `dir` as NPY
/// (see the module comment). Labels: the first `labeled_per_class` windows of each class in
/// the training set, every test window. Chunk `k` of [`WINDOW_CHUNK`] windows is generated with
/// its own seed derived from `seed` and `k` (window `i` of a chunk has class `i % 5`), so the
/// memory used is one chunk's whatever `n`.
pub fn write_sensor_windows(dir: &Path, n: usize, n_test: usize, labeled_per_class: usize, steps: usize, seed: u64) -> Result<()> {
    use super::NpyWriter;
    mkdir(dir)?;
    if n == 0 || n_test == 0 {
        return Err(Error::Invalid("--n and --n-test must be at least 1".into()));
    }
    let k = SENSOR_CLASSES.len();
    let chunk_cfg = |chunk: usize, n_train: usize, n_test: usize| SensorSynthConfig {
        n_train,
        n_test,
        steps,
        seed: seed ^ (chunk as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ..SensorSynthConfig::default()
    };
    let channels = 3;
    let mut x = NpyWriter::create(&dir.join("train.npy"), "<f4", &[n, steps, channels])?;
    let mut labels = Vec::with_capacity(n);
    let mut seen = vec![0usize; k];
    for (c, first) in (0..n).step_by(WINDOW_CHUNK).enumerate() {
        let m = WINDOW_CHUNK.min(n - first);
        let split = sensor_synth_with(&chunk_cfg(c, m, 1))?;
        if split.train.channels != channels {
            return Err(Error::Invalid(format!("the sensor generator gave {} channels, expected {channels}", split.train.channels)));
        }
        x.write_f32(&split.train.values)?;
        for i in 0..m {
            let class = i % k;
            seen[class] += 1;
            labels.push(if seen[class] <= labeled_per_class { class as i64 } else { -1 });
        }
    }
    x.finish()?;
    let mut y = NpyWriter::create(&dir.join("train_labels.npy"), "<i8", &[n])?;
    y.write_i64(&labels)?;
    y.finish()?;
    // the test windows come from the generator's test stream of one more chunk seed
    let test = sensor_synth_with(&chunk_cfg(usize::MAX - 1, 1, n_test))?.test;
    let mut tx = NpyWriter::create(&dir.join("test.npy"), "<f4", &[n_test, steps, channels])?;
    tx.write_f32(&test.values)?;
    tx.finish()?;
    let mut ty = NpyWriter::create(&dir.join("test_labels.npy"), "<i8", &[n_test])?;
    ty.write_i64(&test.labels.iter().map(|l| l.map_or(-1, |c| c as i64)).collect::<Vec<_>>())?;
    ty.finish()
}
