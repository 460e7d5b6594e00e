//! Sampling (shaders/sample.wgsl): the Philox4x32-10 bits must be identical BIT FOR BIT on
//! both backends for every seed, step, stream and length; Gaussian draws and the
//! reparameterisation match the CPU twin within a tolerance; the draws have the right
//! statistics; and the CPU twin reproduces the published Philox known-answer vector.
//!
//! Tolerances (|gpu - cpu| <= atol + rtol * |cpu|):
//! - random_bits: exact (assert_eq on the u32 words): integer arithmetic only.
//! - random_normal, reparam eps: Box-Muller r cos(2 pi u2) with r = sqrt(-2 ln u1) <= 5.77
//!   (u1 >= 2^-24). Vulkan guarantees cos only to 2^-11 absolute and ln to 2^-21 absolute near
//!   1, so a conforming GPU may differ by up to 5.77 * 2^-11 + sqrt(2 * 2^-21) ~ 3.8e-3:
//!   atol 4e-3. (Real drivers, lavapipe included, are far closer; a wrong index, stream or
//!   formula gives O(1) differences.)
//! - reparam z = mu + exp(logvar / 2) eps with logvar in [-3, 1] (sigma <= e^0.5 = 1.65):
//!   1.65 * 4e-3 ~ 6.6e-3, plus exp's few ulp: atol 7e-3 + rtol 1e-5.
//! - reparam_backward: dmu is a copy (exact); dlogvar has one exp (|x| <= 2: <= 7 ulp):
//!   atol 1e-6 + rtol 1e-5.
//!
//! Statistical bounds (100,000 draws; the seeds are fixed, so these cannot flake, but a wrong
//! transform would break them): each bound is 5 standard errors, a two-sided false-alarm
//! probability of 5.7e-7 per check for a correct generator.
//! - N(0, 1) sample mean: SE = 1 / sqrt(n) = 3.16e-3 -> |mean| < 0.0159.
//! - N(0, 1) sample variance: SE = sqrt(2 / n) = 4.47e-3 -> |var - 1| < 0.0224.
//! - P(|z| < 1) = 0.682689: SE = sqrt(p (1 - p) / n) = 1.47e-3 -> within 7.4e-3.
//! - Box-Muller with u1 >= 2^-24 bounds |z| <= sqrt(2 * 24 ln 2) = 5.768 (exactly, so max |z|
//!   is checked against that plus rounding).
//! - Uniform top 24 bits / 2^24: mean 1/2, SD 1/sqrt(12): SE = 9.13e-4 -> within 4.6e-3.
//! - Each of the 32 bit positions is 1 with probability 1/2: SE = 1.58e-3 -> within 7.9e-3.
//! - Top 4 bits: 16 bins of expected 6250, SD sqrt(n p (1 - p)) = 76.5 -> each within 383.
mod common;

use common::*;
use ssvae::backend::COUNTER_LEN;
use ssvae::{rng as philox, Backend, BufferLike, Kernels};

const N_ATOL: f32 = 4e-3;

/// Lengths: 1, odd, prime, exactly one and just over one 256-wide workgroup, many.
const LENS: [usize; 8] = [1, 3, 31, 256, 257, 1021, 4099, 65537];
const SEEDS: [u64; 5] = [0, 1, 42, 0xDEAD_BEEF_1234_5678, u64::MAX];
const STEPS: [u32; 4] = [0, 1, 12345, u32::MAX];
const STREAMS: [u32; 3] = [0, 1, 7];

fn bits<B: Backend>(be: &B, seed: u64, step: u32, stream: u32, n: usize) -> Vec<u32> {
    let ctr = be.upload_u32(&philox::counter(seed, step)).unwrap();
    assert_eq!(ctr.len(), COUNTER_LEN);
    let out = be.upload_u32(&vec![0xA5A5_A5A5; n]).unwrap();
    be.random_bits(stream, &ctr, &out).unwrap();
    be.read_u32(&out).unwrap()
}

fn normals<B: Backend>(be: &B, seed: u64, step: u32, stream: u32, n: usize) -> Vec<f32> {
    let ctr = be.upload_u32(&philox::counter(seed, step)).unwrap();
    let out = be.upload_f32(&vec![f32::NAN; n]).unwrap();
    be.random_normal(stream, &ctr, &out).unwrap();
    be.read_f32(&out).unwrap()
}

fn reparam<B: Backend>(be: &B, seed: u64, step: u32, stream: u32, mu: &[f32], lv: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let ctr = be.upload_u32(&philox::counter(seed, step)).unwrap();
    let (mb, lb) = (be.upload_f32(mu).unwrap(), be.upload_f32(lv).unwrap());
    let z = be.upload_f32(&vec![f32::NAN; mu.len()]).unwrap();
    let eps = be.upload_f32(&vec![f32::NAN; mu.len()]).unwrap();
    be.reparam(stream, &ctr, &mb, &lb, &z, &eps).unwrap();
    (be.read_f32(&z).unwrap(), be.read_f32(&eps).unwrap())
}

fn reparam_bwd<B: Backend>(be: &B, dz: &[f32], lv: &[f32], eps: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (dzb, lb, eb) = (be.upload_f32(dz).unwrap(), be.upload_f32(lv).unwrap(), be.upload_f32(eps).unwrap());
    let dmu = be.upload_f32(&vec![f32::NAN; dz.len()]).unwrap();
    let dlv = be.upload_f32(&vec![f32::NAN; dz.len()]).unwrap();
    be.reparam_backward(&dzb, &lb, &eb, &dmu, &dlv).unwrap();
    (be.read_f32(&dmu).unwrap(), be.read_f32(&dlv).unwrap())
}

fn same_positions(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

#[test]
fn random_bits_identical_bit_for_bit() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for &seed in &SEEDS {
        for &step in &STEPS {
            for &stream in &STREAMS {
                for &n in &[1usize, 257, 1021] {
                    let want = bits(&cpu, seed, step, stream, n);
                    let got = bits(gpu, seed, step, stream, n);
                    assert_eq!(got, want, "random_bits seed={seed:#x} step={step} stream={stream} n={n}");
                }
            }
        }
    }
    for &n in &LENS {
        let want = bits(&cpu, 99, 3, 2, n);
        let got = bits(gpu, 99, 3, 2, n);
        assert_eq!(got, want, "random_bits n={n}");
    }
    // Streams beyond the small ones (the shader takes stream from the parameter block).
    for stream in [255, 65_536, u32::MAX] {
        assert_eq!(bits(gpu, 5, 6, stream, 300), bits(&cpu, 5, 6, stream, 300), "random_bits stream={stream}");
    }
}

#[test]
fn random_bits_differ_across_seeds_steps_streams() {
    let Some(gpu) = gpu() else { return };
    let n = 4096;
    let base = bits(gpu, 42, 7, 1, n);
    // Independent 32-bit words agree at a position with probability 2^-32: over 4096
    // positions one coincidence is already a 1e-6 event, so allow at most 1.
    let variants = [
        ("seed + 1", bits(gpu, 43, 7, 1, n)),
        ("seed high word", bits(gpu, 42 + (1 << 32), 7, 1, n)),
        ("step + 1", bits(gpu, 42, 8, 1, n)),
        ("stream + 1", bits(gpu, 42, 7, 2, n)),
        ("stream 0", bits(gpu, 42, 7, 0, n)),
    ];
    for (what, v) in &variants {
        let same = same_positions(&base, v);
        assert!(same <= 1, "random_bits with {what} repeats {same} of {n} words of the base draw");
    }
    // Within one draw, neighbouring elements differ too, and the draw is deterministic.
    let dup = base.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(dup <= 1, "{dup} adjacent equal words");
    assert_eq!(bits(gpu, 42, 7, 1, n), base, "same counter, same bits");
    // A prefix of a longer draw is the shorter draw (element i depends on i only).
    assert_eq!(&bits(gpu, 42, 7, 1, 2 * n)[..n], &base[..], "element i must not depend on n");
}

#[test]
fn random_bits_are_roughly_uniform() {
    let Some(gpu) = gpu() else { return };
    let n = 100_000usize;
    let b = bits(gpu, 2024, 11, 3, n);
    let nf = n as f64;
    let mean_u = b.iter().map(|&w| philox::uniform(w) as f64).sum::<f64>() / nf;
    assert!((mean_u - 0.5).abs() < 4.6e-3, "mean of uniform(top 24 bits) = {mean_u}, want 0.5 +- 4.6e-3");
    for k in 0..32 {
        let ones = b.iter().filter(|&&w| w >> k & 1 == 1).count() as f64 / nf;
        assert!((ones - 0.5).abs() < 7.9e-3, "bit {k} is 1 in {ones} of draws, want 0.5 +- 7.9e-3");
    }
    let mut bins = [0usize; 16];
    for &w in &b {
        bins[(w >> 28) as usize] += 1;
    }
    for (i, &c) in bins.iter().enumerate() {
        assert!((c as f64 - 6250.0).abs() < 383.0, "top-4-bit bin {i} has {c} draws, want 6250 +- 383 ({bins:?})");
    }
}

#[test]
fn random_normal_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &n) in LENS.iter().enumerate() {
        let (seed, step, stream) = (SEEDS[s % SEEDS.len()], STEPS[s % STEPS.len()], STREAMS[s % STREAMS.len()]);
        let want = normals(&cpu, seed, step, stream, n);
        let got = normals(gpu, seed, step, stream, n);
        assert!(got.iter().all(|v| v.is_finite()), "random_normal n={n}: non-finite draw");
        assert_close(&format!("random_normal seed={seed:#x} step={step} stream={stream} n={n}"), &got, &want, N_ATOL, 0.0);
    }
}

/// Counters (seed, step, element) whose first word has top 24 bits 0 (u1 = 2^-24, the
/// largest radius sqrt(48 ln 2) = 5.768) or all ones (u1 = 1, radius 0), found by searching
/// the CPU generator. An off-by-one in the bits-to-u1 mapping is below the tolerance almost
/// everywhere but moves these draws by 0.12 or to NaN.
const EXTREME_U1: [(u64, u32, usize, u32); 4] =
    [(7, 699_171, 31, 0), (7, 24_771, 7, 0), (7, 461_190, 33, 0xFF_FFFF), (2024, 535_423, 12, 0xFF_FFFF)];

#[test]
fn random_normal_matches_cpu_at_extreme_uniforms() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for &(seed, step, i, top) in &EXTREME_U1 {
        let w = philox::draw(&philox::counter(seed, step), 0, i as u32);
        assert_eq!(w[0] >> 8, top, "search result for seed {seed} step {step} element {i} no longer holds");
        let want = normals(&cpu, seed, step, 0, 64);
        let got = normals(gpu, seed, step, 0, 64);
        assert_close(&format!("random_normal seed={seed} step={step} (element {i} extreme)"), &got, &want, N_ATOL, 0.0);
        // The CPU value against the formula in f64.
        let u1 = ((top + 1) as f64) / 16_777_216.0;
        let u2 = (w[1] >> 8) as f64 / 16_777_216.0;
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        assert!((want[i] as f64 - z).abs() < 1e-5, "cpu element {i}: {} vs Box-Muller {z}", want[i]);
        if top == 0xFF_FFFF {
            assert_eq!(got[i], 0.0, "u1 = 1 must give z = 0 on the GPU");
        }
    }
}

#[test]
fn random_normal_has_unit_gaussian_statistics() {
    let Some(gpu) = gpu() else { return };
    let n = 100_000usize;
    for (seed, step, stream) in [(7u64, 0u32, 0u32), (123_456_789, 99, 5)] {
        let z = normals(gpu, seed, step, stream, n);
        let nf = n as f64;
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / nf;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / nf;
        let within1 = z.iter().filter(|v| v.abs() < 1.0).count() as f64 / nf;
        let max = z.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(mean.abs() < 0.0159, "seed {seed}: mean {mean}, want 0 +- 0.0159 (5 SE)");
        assert!((var - 1.0).abs() < 0.0224, "seed {seed}: variance {var}, want 1 +- 0.0224 (5 SE)");
        assert!((within1 - 0.682_689).abs() < 7.4e-3, "seed {seed}: P(|z| < 1) = {within1}, want 0.6827 +- 7.4e-3");
        assert!(max <= 5.77, "seed {seed}: |z| reached {max}, over the Box-Muller bound 5.768");
        assert!(max > 3.5, "seed {seed}: max |z| only {max} over {n} draws (expected about 4.4)");
    }
}

#[test]
fn reparam_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &n) in LENS.iter().enumerate() {
        let mut r = rng(40 + s as u64);
        let mu = uniform(&mut r, n, -2.0, 2.0);
        let lv = uniform(&mut r, n, -3.0, 1.0);
        let (seed, step, stream) = (SEEDS[(s + 1) % SEEDS.len()], STEPS[s % STEPS.len()], STREAMS[(s + 2) % STREAMS.len()]);
        let (wz, weps) = reparam(&cpu, seed, step, stream, &mu, &lv);
        let (gz, geps) = reparam(gpu, seed, step, stream, &mu, &lv);
        let what = format!("reparam seed={seed:#x} step={step} stream={stream} n={n}");
        assert_close(&format!("{what} eps"), &geps, &weps, N_ATOL, 0.0);
        assert_close(&format!("{what} z"), &gz, &wz, 7e-3, 1e-5);
        // eps is the stream's standard normal draw, the same as random_normal gives.
        let direct = normals(gpu, seed, step, stream, n);
        assert_close(&format!("{what} eps vs random_normal (GPU)"), &geps, &direct, 1e-6, 1e-6);
    }
}

#[test]
fn reparam_backward_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &n) in LENS.iter().enumerate() {
        let mut r = rng(60 + s as u64);
        let dz = uniform(&mut r, n, -2.0, 2.0);
        let lv = uniform(&mut r, n, -4.0, 4.0);
        let eps = uniform(&mut r, n, -4.0, 4.0);
        let (wdmu, wdlv) = reparam_bwd(&cpu, &dz, &lv, &eps);
        let (gdmu, gdlv) = reparam_bwd(gpu, &dz, &lv, &eps);
        assert_close(&format!("reparam_backward dmu n={n}"), &gdmu, &wdmu, 0.0, 0.0);
        assert_close(&format!("reparam_backward dlogvar n={n}"), &gdlv, &wdlv, 1e-6, 1e-5);
    }
}

/// The CPU twins against values computed by hand (and the published Philox vector).
#[test]
fn cpu_sample_hand_computed_values() {
    let cpu = cpu();
    // Random123 known answer: philox4x32_10(counter 0, key 0) = [0x6627e8d5, 0xe169c58d, ..].
    // With seed 0, step 0, stream 0, element 0 the counter is (0, 0, 0, 0) and key (0, 0).
    assert_eq!(bits(&cpu, 0, 0, 0, 1), [0x6627_e8d5]);
    // Box-Muller from those two words, in f64: u1 = ((w0 >> 8) + 1) / 2^24, u2 = (w1 >> 8) / 2^24.
    let u1 = ((0x6627_e8d5u32 >> 8) + 1) as f64 / 16_777_216.0;
    let u2 = (0xe169_c58du32 >> 8) as f64 / 16_777_216.0;
    let z0 = ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32;
    assert_close("cpu random_normal element 0", &normals(&cpu, 0, 0, 0, 1), &[z0], 1e-6, 1e-5);
    // reparam with mu = 1, logvar = 2 ln 2 (sigma = 2): z = 1 + 2 eps, eps the same draw.
    let (z, eps) = reparam(&cpu, 0, 0, 0, &[1.0], &[2.0 * std::f32::consts::LN_2]);
    assert_close("cpu reparam eps", &eps, &[z0], 1e-6, 1e-5);
    assert_close("cpu reparam z", &z, &[1.0 + 2.0 * z0], 1e-6, 1e-5);
    // mu = 0, logvar = 0: z = eps exactly.
    let (z, eps) = reparam(&cpu, 5, 1, 2, &[0.0; 4], &[0.0; 4]);
    assert_eq!(z, eps);
    // Backward: dz = 1, logvar = 2 ln 2, eps = 0.5 -> dmu = 1, dlogvar = 1 * 0.5 * 2 / 2 = 0.5;
    // dz = -3, logvar = 0, eps = 2 -> dmu = -3, dlogvar = -3 * 2 * 1 / 2 = -3.
    let (dmu, dlv) = reparam_bwd(&cpu, &[1.0, -3.0], &[2.0 * std::f32::consts::LN_2, 0.0], &[0.5, 2.0]);
    assert_eq!(dmu, [1.0, -3.0]);
    assert_close("cpu reparam_backward dlogvar", &dlv, &[0.5, -3.0], 1e-6, 1e-6);
}

fn shift_scale<B: Backend>(be: &B, seed: u64, shape: [usize; 4], max_shift: u32, scale: f32, x: &[f32]) -> Vec<f32> {
    let [rows, height, width, channels] = shape;
    let ctr = be.upload_u32(&philox::counter(seed, 3)).unwrap();
    let xb = be.upload_f32(x).unwrap();
    let y = be.upload_f32(&vec![f32::NAN; x.len()]).unwrap();
    let op = ssvae::backend::Op::ShiftScale { rows, height, width, channels, max_shift, scale, stream: 301 };
    be.launch(op, &[&ctr, &xb, &y]).unwrap();
    be.read_f32(&y).unwrap()
}

/// The consistency term's perturbation (shift_scale): GPU = CPU on awkward shapes (one value,
/// odd sizes, shifts beyond the sample, series windows as [steps, 1, channels], rows over a
/// workgroup). The translation is exact; the factor 1 + scale N(0, 1) carries Box-Muller's
/// tolerance (see above): atol scale * 4e-3 * |x| <= 2 and 1e-5 relative.
#[test]
fn shift_scale_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    let mut r = rng(17);
    for (shape, shift, scale) in
        [([1, 1, 1, 1], 0, 0.0), ([3, 5, 7, 2], 2, 0.1), ([130, 28, 28, 1], 2, 0.0), ([17, 128, 1, 6], 8, 0.2), ([2, 3, 3, 3], 5, 0.5)]
    {
        let x = uniform(&mut r, shape.iter().product(), -2.0, 2.0);
        let (a, b) = (shift_scale(&cpu, 5, shape, shift, scale, &x), shift_scale(gpu, 5, shape, shift, scale, &x));
        assert_close(&format!("shift_scale {shape:?} shift {shift} scale {scale}"), &b, &a, scale * 4e-3 * 2.0 + 1e-7, 1e-5);
    }
}

/// What shift_scale does, on the CPU twin: each row is its own translated copy (zeros where
/// the source is outside), by the draw's (dy, dx), times its factor; no shift and no scale is
/// the identity; over many rows every shift in [-s, s] occurs (none across a width of 1), and
/// the factors have mean 1 and standard deviation `scale`.
#[test]
fn shift_scale_translates_and_scales_each_row() {
    let cpu = cpu();
    let shape = [400, 6, 5, 2];
    let per = 6 * 5 * 2;
    let x: Vec<f32> = (0..400 * per).map(|i| 1.0 + (i % per) as f32).collect();
    assert_eq!(shift_scale(&cpu, 1, shape, 0, 0.0, &x), x, "no shift and no scale must be the identity");
    let ctr = philox::counter(1, 3);
    let y = shift_scale(&cpu, 1, shape, 2, 0.0, &x);
    let mut seen = std::collections::BTreeSet::new();
    for row in 0..400 {
        let (dy, dx, _) = ssvae::backend::cpu::sample::shift_scale_draw(&ctr, 301, row as u32, 5, 2, 0.0);
        seen.insert((dy, dx));
        for i in 0..6i64 {
            for j in 0..5i64 {
                for c in 0..2 {
                    let (si, sj) = (i + dy, j + dx);
                    let want = if (0..6).contains(&si) && (0..5).contains(&sj) { 1.0 + ((si * 5 + sj) * 2 + c) as f32 } else { 0.0 };
                    assert_eq!(y[row * per + ((i * 5 + j) * 2 + c) as usize], want, "row {row} (dy {dy}, dx {dx}) at {i},{j},{c}");
                }
            }
        }
    }
    assert_eq!(seen.len(), 25, "every (dy, dx) in [-2, 2]^2 occurs over 400 rows: {seen:?}");
    let series: Vec<(i64, i64, f32)> = (0..2000).map(|r| ssvae::backend::cpu::sample::shift_scale_draw(&ctr, 301, r, 1, 3, 0.1)).collect();
    assert!(series.iter().all(|d| d.1 == 0) && series.iter().map(|d| d.0).collect::<std::collections::BTreeSet<_>>().len() == 7);
    let (m, v) = mean_var(&series.iter().map(|d| d.2).collect::<Vec<_>>());
    // 2000 factors: SE of the mean 0.1 / sqrt(2000) = 2.2e-3, of the SD ~1.6e-3; 5 SE bounds
    assert!((m - 1.0).abs() < 0.012 && (v.sqrt() - 0.1).abs() < 0.008, "factor mean {m}, sd {}", v.sqrt());
}

fn mean_var(x: &[f32]) -> (f32, f32) {
    let n = x.len() as f64;
    let m = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let v = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
    (m as f32, v as f32)
}

fn gumbel<B: Backend>(be: &B, seed: u64, step: u32, stream: u32, tau: f32, x: &[f32]) -> Vec<f32> {
    let ctr = be.upload_u32(&philox::counter(seed, step)).unwrap();
    let xb = be.upload_f32(x).unwrap();
    let y = be.upload_f32(&vec![f32::NAN; x.len()]).unwrap();
    be.gumbel(stream, tau, &ctr, &xb, &y).unwrap();
    be.read_f32(&y).unwrap()
}

/// Gumbel noise (`Op::Gumbel`, the Gumbel-softmax of `--pi-to-decoder gumbel`): y = (x + g) / tau,
/// g = -ln(-ln u). Tolerance: where u <= 1 - 2^-8 the inner -ln u >= 2^-8, so ln's absolute
/// error (2^-21 near 1 in Vulkan's minimum) moves the outer log by <= 2^-13 relative, a few
/// 1e-4 in g: atol 2e-3 + rtol 1e-4 on y (tau >= 0.5). The 1/256 of draws closer to 1 take g up
/// to 16.6 from an inner log of 2^-24..2^-8, where only a driver computing ln to a few ulp
/// (lavapipe, llvmpipe, real GPUs) agrees: those are checked finite and within 0.05 + 1e-2
/// relative. A wrong word, stream, bit count or sign moves most elements by O(1).
#[test]
fn gumbel_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &n) in LENS.iter().enumerate() {
        let mut r = rng(80 + s as u64);
        let x = uniform(&mut r, n, -5.0, 5.0);
        let tau = [1.0, 0.5, 2.0][s % 3];
        let (seed, step, stream) = (SEEDS[(s + 2) % SEEDS.len()], STEPS[(s + 1) % STEPS.len()], STREAMS[s % STREAMS.len()]);
        let want = gumbel(&cpu, seed, step, stream, tau, &x);
        let got = gumbel(gpu, seed, step, stream, tau, &x);
        let what = format!("gumbel seed={seed:#x} step={step} stream={stream} tau={tau} n={n}");
        assert!(got.iter().all(|v| v.is_finite()), "{what}: non-finite value");
        let ctr = philox::counter(seed, step);
        for i in 0..n {
            let u_top = philox::draw(&ctr, stream, i as u32)[0] >> 9;
            let (atol, rtol) = if u_top >= (1 << 23) - (1 << 15) { (0.05, 1e-2) } else { (2e-3, 1e-4) };
            let (g, w) = (got[i], want[i]);
            assert!((g - w).abs() <= atol + rtol * w.abs(), "{what}: element {i}: gpu {g} vs cpu {w}");
        }
    }
}

/// The noise has the standard Gumbel law (mean Euler's gamma 0.5772, variance pi^2 / 6 =
/// 1.6449; 100,000 draws, 5 standard errors: mean within 0.0203, variance within 0.0546 with
/// the Gumbel's excess kurtosis 2.4), and P(g <= 0) = exp(-1) = 0.3679 within 7.6e-3.
#[test]
fn gumbel_has_the_gumbel_law() {
    let Some(gpu) = gpu() else { return };
    let n = 100_000usize;
    let g = gumbel(gpu, 31, 4, 9, 1.0, &vec![0.0; n]);
    let nf = n as f64;
    let mean = g.iter().map(|&v| v as f64).sum::<f64>() / nf;
    let var = g.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / nf;
    let below = g.iter().filter(|&&v| v <= 0.0).count() as f64 / nf;
    assert!((mean - 0.577_215_7).abs() < 0.0203, "Gumbel mean {mean}, want 0.5772 +- 0.0203");
    assert!((var - 1.644_934).abs() < 0.0546, "Gumbel variance {var}, want 1.6449 +- 0.0546");
    assert!((below - (-1.0f64).exp()).abs() < 7.6e-3, "P(g <= 0) = {below}, want 0.3679 +- 7.6e-3");
}

/// The CPU twin by hand: g from word 0 of draw i, u = (top 23 bits + 1/2) / 2^23, both ends
/// finite (the largest word gives u = 1 - 2^-24, not 1).
#[test]
fn cpu_gumbel_hand_computed_values() {
    let cpu = cpu();
    // element 0 of (seed 0, step 0, stream 0) is word 0x6627e8d5 (the Random123 vector above)
    let u = (((0x6627_e8d5u32 >> 9) as f64) + 0.5) / 8_388_608.0;
    let g0 = -(-u.ln()).ln();
    let y = gumbel(&cpu, 0, 0, 0, 0.5, &[1.5]);
    assert_close("cpu gumbel element 0", &y, &[((1.5 + g0) / 0.5) as f32], 1e-5, 1e-6);
    let lo = -(-(0.5f64 / 8_388_608.0).ln()).ln();
    let hi = -(-(1.0 - 0.5f64 / 8_388_608.0).ln()).ln();
    assert!((philox::gumbel(0) as f64 - lo).abs() < 1e-5, "smallest word: {} vs {lo}", philox::gumbel(0));
    assert!((philox::gumbel(u32::MAX) as f64 - hi).abs() < 1e-3, "largest word: {} vs {hi}", philox::gumbel(u32::MAX));
    assert!(philox::gumbel(u32::MAX).is_finite() && hi > 16.0);
}
