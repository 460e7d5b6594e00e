//! Fused losses (shaders/loss.wgsl): Bernoulli NLL from logits, Gaussian NLL, KL to N(0, I)
//! and the semi-supervised softmax cross-entropy (one-hot and label-smoothed targets). GPU vs
//! the CPU twin for the per-row loss and every gradient, on awkward shapes (1 x 1, one feature,
//! odd and prime widths, rows and features over one 64-wide workgroup), large logits (+-30) for
//! stability, unlabeled rows, a batch with no labeled row, and hand-computed CPU values.
//!
//! Every output starts as NaN, so an element a kernel does not write fails the comparison
//! (and "exactly zero" really means written as zero).
//!
//! Tolerances (|gpu - cpu| <= atol + rtol * |cpu|):
//! - gradients: one or two exp / log / divisions per element. Vulkan allows exp (3 + 2|x|)
//!   ulp (|x| <= 30 for the Gaussian and KL terms: ~4e-6 relative; the +-100 BCE logits give
//!   sigmoid values of 1 or below 4e-44, both within atol) and log 2^-21 absolute near 1:
//!   atol 1e-5 + rtol 1e-4
//!   (rtol covers the 1/v^2 terms of the Gaussian gradient with the variance at its floor).
//! - row losses: the CPU sums in f64, the GPU in f32 (strided lanes, then a tree), and each
//!   term may carry log's 2^-21 absolute error, so the error grows with the row length:
//!   atol 1e-5 + 2e-6 * cols, rtol 1e-5 (a 784-wide row of magnitude ~550 gets 1.6e-3 + 5.5e-3).
//! - softmax_ce: lse - logit cancels at |logit| = 30 (ulp(30) = 1.9e-6) and exp(x - lse) has
//!   up to (3 + 2 * 60) ulp at logit gaps of 60: atol 1e-5 + rtol 2e-5 for the loss and
//!   gradient alike. Unlabeled rows: exactly 0.
mod common;

use common::*;
use ssvae::backend::UNLABELED;
use ssvae::Backend;
use ssvae::Kernels;

/// (rows, cols) for the per-row losses (one 64-wide workgroup per row, striding features).
const SHAPES: [(usize, usize); 12] =
    [(1, 1), (1, 63), (1, 64), (1, 65), (3, 1), (2, 2), (7, 129), (65, 10), (13, 31), (31, 200), (130, 784), (257, 3)];
const SCALES: [f32; 3] = [1.0, 0.5, -2.0];

const GRAD_ATOL: f32 = 1e-5;
const GRAD_RTOL: f32 = 1e-4;

fn loss_atol(cols: usize) -> f32 {
    1e-5 + 2e-6 * cols as f32
}

fn nan_buf<B: Backend>(be: &B, n: usize) -> B::Buf {
    be.upload_f32(&vec![f32::NAN; n]).unwrap()
}

fn all_finite(what: &str, v: &[f32]) {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        panic!("{what}: element {i} is {}", v[i]);
    }
}

/// (loss[rows], dlogits)
fn bce<B: Backend>(be: &B, rows: usize, cols: usize, scale: f32, l: &[f32], t: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (lb, tb) = (be.upload_f32(l).unwrap(), be.upload_f32(t).unwrap());
    let (loss, dl) = (nan_buf(be, rows), nan_buf(be, rows * cols));
    be.bce_logits(rows, cols, scale, &lb, &tb, &loss, &dl).unwrap();
    (be.read_f32(&loss).unwrap(), be.read_f32(&dl).unwrap())
}

/// (loss[rows], dmean, dvar_raw)
#[allow(clippy::type_complexity)]
fn gnll<B: Backend>(
    be: &B,
    rows: usize,
    cols: usize,
    scale: f32,
    floor: f32,
    m: &[f32],
    raw: &[f32],
    x: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mb, rb, xb) = (be.upload_f32(m).unwrap(), be.upload_f32(raw).unwrap(), be.upload_f32(x).unwrap());
    let (loss, dm, draw) = (nan_buf(be, rows), nan_buf(be, rows * cols), nan_buf(be, rows * cols));
    be.gaussian_nll(rows, cols, scale, floor, &mb, &rb, &xb, &loss, &dm, &draw).unwrap();
    (be.read_f32(&loss).unwrap(), be.read_f32(&dm).unwrap(), be.read_f32(&draw).unwrap())
}

/// (loss[rows], dmu, dlogvar)
fn kl<B: Backend>(be: &B, rows: usize, cols: usize, scale: f32, mu: &[f32], lv: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mb, lb) = (be.upload_f32(mu).unwrap(), be.upload_f32(lv).unwrap());
    let (loss, dmu, dlv) = (nan_buf(be, rows), nan_buf(be, rows * cols), nan_buf(be, rows * cols));
    be.kl_normal(rows, cols, scale, &mb, &lb, &loss, &dmu, &dlv).unwrap();
    (be.read_f32(&loss).unwrap(), be.read_f32(&dmu).unwrap(), be.read_f32(&dlv).unwrap())
}

/// (loss[rows], dlogits) with one-hot targets
fn ce<B: Backend>(be: &B, rows: usize, classes: usize, scale: f32, l: &[f32], y: &[u32]) -> (Vec<f32>, Vec<f32>) {
    ce_smoothed(be, rows, classes, scale, 0.0, l, y)
}

/// (loss[rows], dlogits) with label smoothing `eps`
fn ce_smoothed<B: Backend>(be: &B, rows: usize, classes: usize, scale: f32, eps: f32, l: &[f32], y: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let (lb, yb) = (be.upload_f32(l).unwrap(), be.upload_u32(y).unwrap());
    let (loss, dl) = (nan_buf(be, rows), nan_buf(be, rows * classes));
    be.softmax_ce(rows, classes, scale, eps, &lb, &yb, &loss, &dl).unwrap();
    (be.read_f32(&loss).unwrap(), be.read_f32(&dl).unwrap())
}

/// Label smoothing values the CE comparisons run with: none, the usual 0.1, and nearly uniform
/// targets.
const SMOOTHING: [f32; 3] = [0.0, 0.1, 0.95];

/// Logits in [-6, 6) with every 5th element at +-30 (saturated sigmoid) and every 7th at
/// +-100 (e^100 overflows f32: a naive log(1 + e^l) would give inf).
fn logits(n: usize, seed: u64) -> Vec<f32> {
    let mut l = uniform(&mut rng(seed), n, -6.0, 6.0);
    for (i, v) in l.iter_mut().enumerate().step_by(5) {
        *v = if i % 2 == 0 { 30.0 } else { -30.0 };
    }
    for (i, v) in l.iter_mut().enumerate().skip(3).step_by(7) {
        *v = if i % 2 == 0 { 100.0 } else { -100.0 };
    }
    l
}

#[test]
fn bce_logits_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in SHAPES.iter().enumerate() {
        let n = rows * cols;
        let l = logits(n, 100 + s as u64);
        // Soft targets in [0, 1] with exact 0s and 1s (binarised pixels) mixed in.
        let mut t = uniform(&mut rng(200 + s as u64), n, 0.0, 1.0);
        for (i, v) in t.iter_mut().enumerate() {
            if i % 3 == 0 {
                *v = v.round();
            }
        }
        let scale = SCALES[s % SCALES.len()];
        let (wl, wd) = bce(&cpu, rows, cols, scale, &l, &t);
        let (gl, gd) = bce(gpu, rows, cols, scale, &l, &t);
        let what = format!("bce_logits {rows}x{cols} scale={scale}");
        all_finite(&what, &gl);
        all_finite(&what, &gd);
        assert_close(&format!("{what} loss"), &gl, &wl, loss_atol(cols), 1e-5);
        assert_close(&format!("{what} dlogits"), &gd, &wd, GRAD_ATOL, GRAD_RTOL);
    }
}

#[test]
fn gaussian_nll_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in SHAPES.iter().enumerate() {
        let n = rows * cols;
        let mut r = rng(300 + s as u64);
        let m = uniform(&mut r, n, -2.0, 2.0);
        let mut raw = uniform(&mut r, n, -4.0, 4.0);
        let x = uniform(&mut r, n, -2.0, 2.0);
        // Extreme raw variances: +30 (var = 30) and -30 (softplus ~ 1e-13, var at the floor).
        for (i, v) in raw.iter_mut().enumerate().step_by(7) {
            *v = if i % 2 == 0 { 30.0 } else { -30.0 };
        }
        let scale = SCALES[s % SCALES.len()];
        // the variance floor: the legacy 1e-6, the tables' 1e-2 and a large one
        let floor = [1e-6, 1e-2, 0.5][s % 3];
        let (wl, wm, wv) = gnll(&cpu, rows, cols, scale, floor, &m, &raw, &x);
        let (gl, gm, gv) = gnll(gpu, rows, cols, scale, floor, &m, &raw, &x);
        let what = format!("gaussian_nll {rows}x{cols} scale={scale} floor={floor}");
        for v in [&gl, &gm, &gv] {
            all_finite(&what, v);
        }
        // Rows with a variance at the floor have losses ~1e6 (d^2 / 1e-6): rtol covers them.
        assert_close(&format!("{what} loss"), &gl, &wl, loss_atol(cols), 1e-5);
        assert_close(&format!("{what} dmean"), &gm, &wm, GRAD_ATOL, GRAD_RTOL);
        assert_close(&format!("{what} dvar_raw"), &gv, &wv, GRAD_ATOL, GRAD_RTOL);
    }
}

#[test]
fn kl_normal_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in SHAPES.iter().enumerate() {
        let n = rows * cols;
        let mut r = rng(400 + s as u64);
        let mut mu = uniform(&mut r, n, -3.0, 3.0);
        let mut lv = uniform(&mut r, n, -5.0, 3.0);
        // The prior itself (KL contribution exactly 0) and large |logvar| (+-30, +-20 mu).
        for i in (0..n).step_by(11) {
            mu[i] = 0.0;
            lv[i] = 0.0;
        }
        for i in (5..n).step_by(13) {
            mu[i] = if i % 2 == 0 { 20.0 } else { -20.0 };
            lv[i] = if i % 3 == 0 { 30.0 } else { -30.0 };
        }
        let scale = SCALES[s % SCALES.len()];
        let (wl, wm, wv) = kl(&cpu, rows, cols, scale, &mu, &lv);
        let (gl, gm, gv) = kl(gpu, rows, cols, scale, &mu, &lv);
        let what = format!("kl_normal {rows}x{cols} scale={scale}");
        for v in [&gl, &gm, &gv] {
            all_finite(&what, v);
        }
        assert_close(&format!("{what} loss"), &gl, &wl, loss_atol(cols), 1e-5);
        assert_close(&format!("{what} dmu"), &gm, &wm, 0.0, 0.0);
        assert_close(&format!("{what} dlogvar"), &gv, &wv, GRAD_ATOL, GRAD_RTOL);
    }
}

/// (rows, classes) for softmax_ce (one invocation per row, 64 rows per workgroup, and every
/// workgroup counts the labeled rows of the whole batch).
const CE_SHAPES: [(usize, usize); 10] = [(1, 1), (1, 2), (2, 10), (7, 3), (63, 10), (64, 10), (65, 10), (129, 37), (300, 11), (1000, 2)];

/// Labels: a mix of classes, `UNLABELED` and other out-of-range values (>= classes).
fn labels(rows: usize, classes: usize, seed: u64, unlabeled_every: usize) -> Vec<u32> {
    let mut r = rng(seed);
    (0..rows)
        .map(|i| {
            let y = (uniform(&mut r, 1, 0.0, classes as f32)[0] as usize).min(classes - 1) as u32;
            if unlabeled_every > 0 && i % unlabeled_every == 1 {
                if i % 4 == 1 {
                    classes as u32 + (i % 3) as u32 // out of range, not UNLABELED
                } else {
                    UNLABELED
                }
            } else {
                y
            }
        })
        .collect()
}

fn check_ce(gpu: &ssvae::backend::gpu::GpuBackend, rows: usize, classes: usize, scale: f32, l: &[f32], y: &[u32]) {
    for eps in SMOOTHING {
        check_ce_smoothed(gpu, rows, classes, scale, eps, l, y);
    }
}

fn check_ce_smoothed(gpu: &ssvae::backend::gpu::GpuBackend, rows: usize, classes: usize, scale: f32, eps: f32, l: &[f32], y: &[u32]) {
    let cpu = cpu();
    let (wl, wd) = ce_smoothed(&cpu, rows, classes, scale, eps, l, y);
    let (gl, gd) = ce_smoothed(gpu, rows, classes, scale, eps, l, y);
    let what = format!("softmax_ce {rows}x{classes} scale={scale} smoothing={eps}");
    all_finite(&format!("{what} GPU loss"), &gl);
    all_finite(&format!("{what} GPU dlogits"), &gd);
    assert_close(&format!("{what} loss"), &gl, &wl, 1e-5, 2e-5);
    assert_close(&format!("{what} dlogits"), &gd, &wd, 1e-5, 2e-5);
    // Unlabeled rows: exactly zero loss and gradient, on both backends.
    for r in 0..rows {
        if (y[r] as usize) < classes {
            continue;
        }
        for (be, loss, d) in [("cpu", &wl, &wd), ("gpu", &gl, &gd)] {
            assert!(loss[r] == 0.0, "{what}: {be} unlabeled row {r} (label {}) has loss {}", y[r], loss[r]);
            let g = &d[r * classes..(r + 1) * classes];
            assert!(g.iter().all(|&v| v == 0.0), "{what}: {be} unlabeled row {r} has gradient {g:?}");
        }
    }
    // Each labeled row's gradient sums to zero (softmax minus a target that sums to one), times
    // the weight.
    for r in 0..rows {
        if (y[r] as usize) < classes {
            let sum: f32 = gd[r * classes..(r + 1) * classes].iter().sum();
            assert!(sum.abs() < 1e-5, "{what}: GPU gradient of labeled row {r} sums to {sum}");
        }
    }
}

#[test]
fn softmax_ce_matches_cpu_with_unlabeled_rows() {
    let Some(gpu) = gpu() else { return };
    for (s, &(rows, classes)) in CE_SHAPES.iter().enumerate() {
        let l = uniform(&mut rng(500 + s as u64), rows * classes, -5.0, 5.0);
        let scale = SCALES[s % SCALES.len()];
        // Fully labeled, and with every other / every third row unlabeled.
        for every in [0, 2, 3] {
            let y = labels(rows, classes, 600 + s as u64, every);
            check_ce(gpu, rows, classes, scale, &l, &y);
        }
    }
}

#[test]
fn softmax_ce_unlabeled_workgroup_blocks() {
    let Some(gpu) = gpu() else { return };
    // Whole 64-row blocks without labels (the labeled count must still be the batch's),
    // and a single labeled row at the very end.
    let (rows, classes) = (200, 10);
    let l = uniform(&mut rng(700), rows * classes, -5.0, 5.0);
    let mut y = labels(rows, classes, 701, 0);
    y[64..128].fill(UNLABELED);
    y[150..190].fill(UNLABELED);
    check_ce(gpu, rows, classes, 1.0, &l, &y);
    let mut y = vec![UNLABELED; rows];
    y[rows - 1] = 3;
    check_ce(gpu, rows, classes, 1.0, &l, &y);
    // With one labeled row the weight is scale / 1: loss = lse - logit.
    let (gl, _) = ce(gpu, rows, classes, 1.0, &l, &y);
    let row = &l[(rows - 1) * classes..];
    let lse = row.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
    let want = (lse - row[3] as f64) as f32;
    assert!((gl[rows - 1] - want).abs() < 1e-5, "single labeled row: GPU loss {} want {want}", gl[rows - 1]);
}

#[test]
fn softmax_ce_no_labeled_row_is_all_zero() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for &(rows, classes) in &[(1usize, 1usize), (5, 3), (64, 10), (65, 10), (300, 7)] {
        let l = uniform(&mut rng(800), rows * classes, -30.0, 30.0);
        let y: Vec<u32> = (0..rows).map(|i| if i % 2 == 0 { UNLABELED } else { classes as u32 + i as u32 }).collect();
        for eps in SMOOTHING {
            for (be, (loss, d)) in
                [("cpu", ce_smoothed(&cpu, rows, classes, 1.0, eps, &l, &y)), ("gpu", ce_smoothed(gpu, rows, classes, 1.0, eps, &l, &y))]
            {
                assert!(loss.iter().all(|&v| v == 0.0), "{be} {rows}x{classes} smoothing {eps}: no labeled row, loss {loss:?}");
                assert!(d.iter().all(|&v| v == 0.0), "{be} {rows}x{classes} smoothing {eps}: no labeled row, nonzero gradient");
            }
        }
    }
}

#[test]
fn softmax_ce_large_logits_are_stable() {
    let Some(gpu) = gpu() else { return };
    for (s, &(rows, classes)) in CE_SHAPES.iter().enumerate() {
        // +-30 logits: a naive exp(30)-based softmax still fits in f32, exp(60) gaps do not.
        let l: Vec<f32> = uniform(&mut rng(900 + s as u64), rows * classes, -1.0, 1.0)
            .iter()
            .enumerate()
            .map(|(i, v)| if (i * 7 + s) % 3 == 0 { 30.0 + v } else { -30.0 + v })
            .collect();
        let y = labels(rows, classes, 950 + s as u64, 3);
        check_ce(gpu, rows, classes, 1.0, &l, &y);
        // Shifting every logit by 80 changes nothing (exp(110) would overflow without the max);
        // with smoothing the shift enters lse, (1 - E) l_y and (E / K) sum_j l_j and cancels.
        let shifted: Vec<f32> = l.iter().map(|v| v + 80.0).collect();
        for eps in SMOOTHING {
            let (gl, gd) = ce_smoothed(gpu, rows, classes, 1.0, eps, &l, &y);
            let (sl, sd) = ce_smoothed(gpu, rows, classes, 1.0, eps, &shifted, &y);
            all_finite("softmax_ce shifted loss", &sl);
            all_finite("softmax_ce shifted dlogits", &sd);
            assert_close(&format!("softmax_ce {rows}x{classes} smoothing {eps} shift invariance loss"), &sl, &gl, 1e-4, 1e-4);
            assert_close(&format!("softmax_ce {rows}x{classes} smoothing {eps} shift invariance dlogits"), &sd, &gd, 1e-4, 1e-4);
        }
    }
}

/// The CPU twins against values computed by hand.
#[test]
fn cpu_loss_hand_computed_values() {
    let cpu = cpu();
    let ln2 = std::f32::consts::LN_2;
    // BCE: logit 0 -> ln 2 for target 0 or 1, gradient sigmoid(0) - t = -1/2 or 1/2;
    // logit ln 3, target 1: -ln(3/4), gradient 3/4 - 1; the row sums its features.
    let ln3 = 3.0f32.ln();
    let (l, d) = bce(&cpu, 2, 2, 1.0, &[0.0, 0.0, ln3, 0.0], &[1.0, 0.0, 1.0, 0.5]);
    assert_close("cpu bce loss", &l, &[2.0 * ln2, -(0.75f32.ln()) + ln2], 1e-6, 1e-6);
    assert_close("cpu bce dlogits", &d, &[-0.5, 0.5, -0.25, 0.0], 1e-7, 1e-6);
    // Large logits stay finite: logit 100, target 0 -> loss 100, gradient 1; logit -100,
    // target 0 -> loss e^-100 ~ 0, gradient 0. Scale 2 doubles both.
    let (l, d) = bce(&cpu, 2, 1, 2.0, &[100.0, -100.0], &[0.0, 0.0]);
    assert_close("cpu bce large loss", &l, &[200.0, 0.0], 1e-6, 1e-6);
    assert_close("cpu bce large dlogits", &d, &[2.0, 0.0], 1e-6, 1e-6);
    // Gaussian NLL with variance 1 (raw = ln(e - 1), so softplus(raw) = 1; plus the 1e-6
    // floor): target = mean -> 0.5 ln(2 pi); target = mean + 1 -> 0.5 (ln(2 pi) + 1);
    // dmean = -(x - m) / v = -1; dvar = 0.5 (1/v - d^2/v^2) = 0 at d = 1.
    let raw = (std::f32::consts::E - 1.0).ln();
    let half_ln2pi = 0.5 * (2.0 * std::f32::consts::PI).ln();
    let (l, dm, dv) = gnll(&cpu, 2, 1, 1.0, 1e-6, &[0.5, 0.5], &[raw, raw], &[0.5, 1.5]);
    assert_close("cpu gaussian_nll loss", &l, &[half_ln2pi, half_ln2pi + 0.5], 1e-5, 1e-5);
    assert_close("cpu gaussian_nll dmean", &dm, &[0.0, -1.0], 1e-5, 1e-5);
    // At d = 0: dvar = 0.5 / v = 0.5, times sigmoid(raw) = 1 - 1/e.
    let sig = 1.0 - (-1.0f32).exp();
    assert_close("cpu gaussian_nll dvar_raw", &dv, &[0.5 * sig, 0.0], 1e-5, 1e-5);
    // The floor is the variance where softplus(raw) vanishes (raw = -40): floor 0.25, target =
    // mean + 1 -> 0.5 (ln 2 pi + ln 0.25 + 1 / 0.25), dmean = -1 / 0.25 = -4, dvar_raw ~ 0
    // (sigmoid(-40)); floor 0.25 on top of variance 1 -> v = 1.25.
    let (l, dm, dv) = gnll(&cpu, 2, 1, 1.0, 0.25, &[0.5, 0.5], &[-40.0, raw], &[1.5, 1.5]);
    let want = [half_ln2pi + 0.5 * (0.25f32.ln() + 4.0), half_ln2pi + 0.5 * (1.25f32.ln() + 1.0 / 1.25)];
    assert_close("cpu gaussian_nll floor loss", &l, &want, 1e-5, 1e-5);
    assert_close("cpu gaussian_nll floor dmean", &dm, &[-4.0, -1.0 / 1.25], 1e-5, 1e-5);
    assert_close("cpu gaussian_nll floor dvar_raw", &dv[..1], &[0.0], 1e-12, 0.0);
    // KL: mu = 0, logvar = 0 -> 0 with zero gradients; mu = 1, logvar = 0 -> 1/2, dmu = 1;
    // mu = 0, logvar = ln 2 -> -0.5 (1 + ln 2 - 2) = 0.5 (1 - ln 2), dlogvar = 0.5 (2 - 1).
    let (l, dm, dv) = kl(&cpu, 3, 1, 1.0, &[0.0, 1.0, 0.0], &[0.0, 0.0, ln2]);
    assert_close("cpu kl loss", &l, &[0.0, 0.5, 0.5 * (1.0 - ln2)], 1e-7, 1e-6);
    assert_eq!(l[0], 0.0);
    assert_close("cpu kl dmu", &dm, &[0.0, 1.0, 0.0], 0.0, 0.0);
    assert_close("cpu kl dlogvar", &dv, &[0.0, 0.0, 0.5], 1e-7, 1e-6);
    // Softmax CE: logits [0, ln 3] -> p = [1/4, 3/4]; label 1 -> -ln(3/4), gradient
    // [1/4, -1/4]; with two labeled rows each is divided by 2; the unlabeled row is 0.
    let logits = [0.0, ln3, 0.0, ln3, 5.0, -5.0];
    let (l, d) = ce(&cpu, 3, 2, 1.0, &logits, &[1, UNLABELED, 0]);
    let nl = -(0.75f32.ln());
    assert_close("cpu softmax_ce loss", &l, &[nl / 2.0, 0.0, 0.5 * (1.0 + (-10.0f32).exp()).ln()], 1e-6, 1e-5);
    assert_close("cpu softmax_ce dlogits", &d[..4], &[0.125, -0.125, 0.0, 0.0], 1e-7, 1e-5);
    assert_eq!(&d[2..4], &[0.0, 0.0]);
    let (l, d) = ce(&cpu, 1, 2, 3.0, &logits[..2], &[0]);
    assert_close("cpu softmax_ce scale 3", &l, &[3.0 * (4.0f32).ln()], 1e-6, 1e-5);
    assert_close("cpu softmax_ce scale 3 grad", &d, &[3.0 * (0.25 - 1.0), 3.0 * 0.75], 1e-6, 1e-5);
    let (l, d) = ce(&cpu, 2, 2, 1.0, &logits[..4], &[UNLABELED, 7]);
    assert_eq!((l, d), (vec![0.0, 0.0], vec![0.0; 4]));
    // Label smoothing 0.5 over 2 classes: label 1 -> target [1/4, 3/4] = p, so the gradient
    // is zero and the loss is the target's entropy -(1/4 ln 1/4 + 3/4 ln 3/4); label 0 ->
    // target [3/4, 1/4], gradient p - t = [-1/2, 1/2], loss -(3/4 ln 1/4 + 1/4 ln 3/4). Both
    // rows are labeled: each is divided by 2.
    let (q, tq) = (0.25f32.ln(), 0.75f32.ln());
    let (l, d) = ce_smoothed(&cpu, 2, 2, 1.0, 0.5, &logits[..4], &[1, 0]);
    assert_close("cpu softmax_ce smoothed loss", &l, &[-(0.25 * q + 0.75 * tq) / 2.0, -(0.75 * q + 0.25 * tq) / 2.0], 1e-6, 1e-5);
    assert_close("cpu softmax_ce smoothed dlogits", &d, &[0.0, 0.0, -0.25, 0.25], 1e-7, 1e-5);
}

/// Smoothing 0 is the one-hot cross-entropy bit for bit (runs without the flag train exactly
/// as before it existed): the CPU twin against the one-hot form written out here, on the
/// shapes and labels of the GPU comparisons.
#[test]
fn softmax_ce_without_smoothing_is_the_one_hot_form_bit_for_bit() {
    let cpu = cpu();
    for (s, &(rows, classes)) in CE_SHAPES.iter().enumerate() {
        let l = uniform(&mut rng(1000 + s as u64), rows * classes, -30.0, 30.0);
        let y = labels(rows, classes, 1100 + s as u64, 3);
        let labeled = y.iter().filter(|&&c| (c as usize) < classes).count();
        let w = if labeled > 0 { 1.5 / labeled as f32 } else { 0.0 };
        let (mut want_l, mut want_d) = (vec![0f32; rows], vec![0f32; rows * classes]);
        for r in 0..rows {
            let (row, c) = (&l[r * classes..(r + 1) * classes], y[r] as usize);
            if c >= classes {
                continue;
            }
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = max + row.iter().map(|&x| (x - max).exp()).sum::<f32>().ln();
            want_l[r] = w * (lse - row[c]);
            for j in 0..classes {
                want_d[r * classes + j] = w * ((row[j] - lse).exp() - if j == c { 1.0 } else { 0.0 });
            }
        }
        let (got_l, got_d) = ce_smoothed(&cpu, rows, classes, 1.5, 0.0, &l, &y);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got_l), bits(&want_l), "softmax_ce {rows}x{classes}: smoothing 0 changed the loss");
        assert_eq!(bits(&got_d), bits(&want_d), "softmax_ce {rows}x{classes}: smoothing 0 changed the gradient");
    }
}
