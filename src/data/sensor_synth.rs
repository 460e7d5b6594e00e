//! A built-in time-series dataset: vibration of a rotating machine (a motor driving a pump or fan
//! through a coupling), generated in-process from a seed, so the recurrent models can be tried
//! and tested without a download and with a known ground truth.
//!
//! Each window is `steps` samples (default 128) at `sample_rate` Hz (default 1 kHz, so 0.128 s)
//! from a 3-axis accelerometer on the bearing housing, in g: `x` radial horizontal, `y` radial
//! vertical (the load direction), `z` axial; optionally a fourth channel, the shaft speed in Hz
//! from a tachometer. The shaft turns at `fr`, drawn per window from 18..32 Hz (1080..1920 rpm),
//! so harmonics move between windows and a classifier cannot key on one frequency bin. The five
//! classes follow the textbook vibration signatures (e.g. Randall, "Vibration-based Condition
//! Monitoring", 2011):
//!
//! - `normal`: a small residual 1x (once-per-revolution) component, a trace of 2x.
//! - `imbalance`: a mass off the rotation axis is a force rotating with the shaft: a strong 1x
//!   in both radial axes, 90 degrees apart (a circular orbit), little axial motion.
//! - `misalignment`: the coupling forces the shafts to flex twice per turn: a strong 2x
//!   radially next to a raised 1x, and a strong axial 1x and 2x (the signature that tells it
//!   from imbalance).
//! - `bearing_defect`: a spall on the inner race is struck by each passing rolling element, at
//!   the ball-pass frequency of the inner race (about 5.4 x fr for a common deep-groove
//!   bearing). Each strike rings the housing's structural resonance (220..320 Hz here) as a
//!   decaying sinusoid, and since the defect turns with the shaft in and out of the load zone,
//!   the strikes are amplitude-modulated at 1x; mostly in the vertical (load) axis.
//! - `looseness`: a loose mounting rattles: a long series of harmonics (1x..8x) and a 0.5x
//!   sub-harmonic, mostly vertical, with the waveform truncated (clipped) on one side where the
//!   foot hits its base.
//!
//! Every window also gets random phases, a fault severity and an overall gain (mounting, load)
//! drawn from ranges that overlap between neighbouring classes, and white sensor noise, so the
//! classes are learnable but not trivially separable. Window `i` is class `i mod 5` (balanced in
//! every prefix) and depends only on `(seed, split, i)`.

use std::f32::consts::TAU;

use rayon::prelude::*;

use super::series::{SeriesDataset, SeriesSplit};
use super::synthetic::SplitMix64;
use crate::error::{Error, Result};

/// The classes, indexed by label.
pub const SENSOR_CLASSES: [&str; 5] = ["normal", "imbalance", "misalignment", "bearing_defect", "looseness"];

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorSynthConfig {
    pub n_train: usize,
    pub n_test: usize,
    /// Samples per window.
    pub steps: usize,
    /// Samples per second; the bearing resonance (up to 320 Hz) needs at least ~700.
    pub sample_rate: f32,
    /// Adds a fourth channel, the shaft speed in Hz (tachometer, with a little noise).
    pub speed_channel: bool,
    pub seed: u64,
}

impl Default for SensorSynthConfig {
    fn default() -> Self {
        SensorSynthConfig { n_train: 6000, n_test: 1500, steps: 128, sample_rate: 1000.0, speed_channel: false, seed: 0 }
    }
}

/// The sensor dataset with the default window (128 steps at 1 kHz, 3 channels).
pub fn sensor_synth(n_train: usize, n_test: usize, seed: u64) -> SeriesSplit {
    let cfg = SensorSynthConfig { n_train, n_test, seed, ..SensorSynthConfig::default() };
    sensor_synth_with(&cfg).expect("the default configuration is valid")
}

/// The sensor dataset as configured; fails on zero steps or a sample rate too low for the
/// signatures (below 700 Hz) or not finite.
pub fn sensor_synth_with(cfg: &SensorSynthConfig) -> Result<SeriesSplit> {
    if cfg.steps == 0 {
        return Err(Error::Invalid("sensor dataset: windows need at least one step".into()));
    }
    if !(cfg.sample_rate.is_finite() && cfg.sample_rate >= 700.0) {
        return Err(Error::Invalid(format!(
            "sensor dataset: sample rate {} Hz is too low; the bearing resonance (up to 320 Hz) needs at least 700 Hz",
            cfg.sample_rate
        )));
    }
    let (train, test) = rayon::join(|| generate(cfg, cfg.n_train, false), || generate(cfg, cfg.n_test, true));
    Ok(SeriesSplit { train, test })
}

fn generate(cfg: &SensorSynthConfig, n: usize, test: bool) -> SeriesDataset {
    let channels = 3 + usize::from(cfg.speed_channel);
    let d = cfg.steps * channels;
    let mut values = vec![0f32; n * d];
    let base = SplitMix64(cfg.seed).next() ^ (u64::from(test) << 63);
    values.par_chunks_mut(d.max(1)).enumerate().for_each(|(i, out)| {
        let mut rng = Rng(SplitMix64(base ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)));
        rng.0.next();
        render_window(i % SENSOR_CLASSES.len(), cfg, &mut rng, out, channels);
    });
    let mut channel_names: Vec<String> = ["acc_x", "acc_y", "acc_z"].iter().map(|s| s.to_string()).collect();
    if cfg.speed_channel {
        channel_names.push("speed_hz".into());
    }
    SeriesDataset {
        name: "sensor-synth".into(),
        values,
        labels: (0..n).map(|i| Some((i % SENSOR_CLASSES.len()) as u8)).collect(),
        n,
        steps: cfg.steps,
        channels,
        classes: SENSOR_CLASSES.len(),
        class_names: SENSOR_CLASSES.iter().map(|s| s.to_string()).collect(),
        channel_names,
        ids: Vec::new(),
    }
}

struct Rng(SplitMix64);

impl Rng {
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.0.unit()
    }

    fn phase(&mut self) -> f32 {
        self.uniform(0.0, TAU)
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.0.unit(); // in (0, 1]
        let u2 = self.0.unit();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// A sum of shaft harmonics on one axis: `(order, amplitude, phase)`.
type Harmonics = Vec<(f32, f32, f32)>;

fn render_window(class: usize, cfg: &SensorSynthConfig, rng: &mut Rng, out: &mut [f32], channels: usize) {
    let steps = cfg.steps;
    let dt = 1.0 / cfg.sample_rate;
    let fr = rng.uniform(18.0, 32.0);
    let gain = rng.uniform(0.75, 1.25);
    let noise = rng.uniform(0.03, 0.08);
    // Every machine has some residual imbalance and a trace of 2x.
    let (a1, p1) = (rng.uniform(0.1, 0.3), rng.phase());
    let mut x: Harmonics = vec![(1.0, a1, p1), (2.0, rng.uniform(0.02, 0.08), rng.phase())];
    let mut y: Harmonics = vec![(1.0, a1 * rng.uniform(0.8, 1.2), p1 - TAU / 4.0), (2.0, rng.uniform(0.02, 0.08), rng.phase())];
    let mut z: Harmonics = vec![(1.0, rng.uniform(0.02, 0.08), rng.phase())];
    let mut clip = f32::INFINITY;
    let mut bearing: Option<(f32, f32, f32, f32, f32, f32)> = None;
    match class {
        1 => {
            // imbalance: a strong rotating 1x force, circular orbit
            let (a, p) = (rng.uniform(0.5, 1.0), rng.phase());
            x.push((1.0, a, p));
            y.push((1.0, a * rng.uniform(0.8, 1.2), p - TAU / 4.0 + rng.uniform(-0.3, 0.3)));
        }
        2 => {
            // misalignment: 2x radial, strong axial 1x and 2x
            let a2 = rng.uniform(0.3, 0.7);
            x.push((2.0, a2, rng.phase()));
            y.push((2.0, a2 * rng.uniform(0.7, 1.1), rng.phase()));
            let a1r = rng.uniform(0.1, 0.3);
            x.push((1.0, a1r, rng.phase()));
            y.push((1.0, a1r, rng.phase()));
            z.push((1.0, rng.uniform(0.25, 0.55), rng.phase()));
            z.push((2.0, rng.uniform(0.2, 0.5), rng.phase()));
        }
        3 => {
            // bearing: (amplitude, ball-pass order, resonance Hz, decay s, modulation depth, phase)
            bearing = Some((
                rng.uniform(0.4, 0.9),
                5.415 * rng.uniform(0.99, 1.01),
                rng.uniform(220.0, 320.0),
                rng.uniform(0.004, 0.008),
                rng.uniform(0.5, 1.0),
                rng.phase(),
            ));
        }
        4 => {
            // looseness: many harmonics and a sub-harmonic, vertical, clipped
            let a = rng.uniform(0.25, 0.5);
            for k in 1..=8 {
                let ak = a / (k as f32).powf(0.6);
                y.push((k as f32, ak, rng.phase()));
                x.push((k as f32, 0.4 * ak, rng.phase()));
            }
            y.push((0.5, rng.uniform(0.1, 0.25), rng.phase()));
            clip = a * rng.uniform(0.8, 1.2);
        }
        _ => {}
    }
    let (start, spacing) = match bearing {
        Some((_, order, ..)) => {
            let spacing = 1.0 / (order * fr);
            (-spacing * rng.0.unit() - 0.03, spacing) // strikes began before the window
        }
        None => (0.0, 1.0),
    };
    let wave = |h: &Harmonics, t: f32| h.iter().map(|&(k, a, p)| a * (TAU * k * fr * t + p).cos()).sum::<f32>();
    for s in 0..steps {
        let t = s as f32 * dt;
        let (mut vx, mut vy, mut vz) = (wave(&x, t), wave(&y, t), wave(&z, t));
        if let Some((a, _, fres, tau, depth, phase)) = bearing {
            // Sum the ringing of every strike at or before t (older ones have decayed).
            let mut ring = 0.0;
            let mut tk = start;
            while tk <= t {
                let age = t - tk;
                if age < 6.0 * tau {
                    let load = 1.0 - depth * 0.5 * (1.0 - (TAU * fr * tk + phase).cos());
                    ring += load * (-age / tau).exp() * (TAU * fres * age).sin();
                }
                tk += spacing;
            }
            vy += a * ring;
            vx += 0.5 * a * ring;
            vz += 0.2 * a * ring;
        }
        vy = vy.min(clip);
        let o = &mut out[s * channels..(s + 1) * channels];
        o[0] = gain * vx + noise * rng.normal();
        o[1] = gain * vy + noise * rng.normal();
        o[2] = gain * vz + noise * rng.normal();
        if channels == 4 {
            o[3] = fr + 0.05 * rng.normal();
        }
    }
}
