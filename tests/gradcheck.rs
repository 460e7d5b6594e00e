//! Central finite-difference checks of every backward formula the compute core provides, run on
//! the CPU backend through the `Kernels` trait (so the `Op::slots` binding contract and the CPU
//! twins are exercised together, as the autodiff uses them).
//!
//! Method. For a scalar loss L(x) built from the f32 kernels (kernel outputs are read back and
//! the scalar is accumulated in f64), element i of the numeric gradient is
//!
//!   g_i = (L(x + h e_i) - L(x - h e_i)) / (x_i^+ - x_i^-)
//!
//! where x_i^+ and x_i^- are the f32 values actually fed to the kernel (x_i +/- h rounded to
//! f32), so the rounding of the step itself does not bias the quotient.
//!
//! Acceptance, per element: |g_num - g_ana| <= atol + rtol * max(|g_num|, |g_ana|).
//!
//! Step sizes and tolerances (see `Tol` in tests/common/fd.rs):
//! * The error of a central difference is truncation h^2 |L'''| / 6 plus round-off
//!   ~ ulp(L) / h, where ulp(L) is the f32 rounding of the kernel outputs that change with x_i
//!   (a per-row loss, one activation, one GEMM row). h = 1e-2 balances the two for every
//!   smooth function here (h^2 / 6 ~ 2e-5 against ~1e-7 * |L_row| / 2e-2 ~ 1e-5 for rows of
//!   loss ~ 5); linear or quadratic maps (identity/relu GEMM, concat/split, reparam in mu,
//!   Gaussian NLL in the mean, mean/var) have no truncation error at all.
//! * rtol = 2e-3, atol = 2e-4 (atol times max(1, |scale|) for the fused losses, whose outputs
//!   and round-off are scaled). The largest deviation observed over all ~750 checks is ~0.14 of
//!   that bound (round-off: a GEMM bias probe moves a whole output column, a scaled loss row is
//!   an f32), so there is a ~7x margin; a 10% error in a gradient entry of magnitude >= 0.05 is
//!   still 20-45x over the bound, so a wrong factor, sign, transpose or chain-rule term is
//!   rejected (see `checker_rejects_wrong_gradients`). Each test prints its worst ratio and
//!   case with `--nocapture`.
//! * ReLU is only probed away from its kink: inputs (and GEMM pre-activations) are kept at
//!   least 3h away from 0, so the +/- h probes never straddle it.
//!
//! Shapes are small and awkward (1x1, 3x5, 7x3, 1-row, 1-column) and the whole file runs in
//! well under a second in the test profile.
mod common;

use common::{cpu, rng, uniform};
use ssvae::backend::cpu::{CpuBackend, CpuBuf};
use ssvae::backend::{Act, Gemm, UNLABELED};
use ssvae::{Backend, DType, Kernels};

type Be = CpuBackend;

use common::fd::{fd_check, numeric_grad, Report, TOL};

// ---------------------------------------------------------------------------------------------
// Backend helpers
// ---------------------------------------------------------------------------------------------

fn up(be: &Be, x: &[f32]) -> CpuBuf {
    be.upload_f32(x).unwrap()
}
fn zeros(be: &Be, n: usize) -> CpuBuf {
    be.alloc(n, DType::F32).unwrap()
}
fn rd(be: &Be, b: &CpuBuf) -> Vec<f32> {
    be.read_f32(b).unwrap()
}
fn dot(w: &[f32], y: &[f32]) -> f64 {
    assert_eq!(w.len(), y.len());
    w.iter().zip(y).map(|(&a, &b)| a as f64 * b as f64).sum()
}
fn sum(y: &[f32]) -> f64 {
    y.iter().map(|&v| v as f64).sum()
}

fn act_fwd(be: &Be, act: Act, x: &[f32]) -> Vec<f32> {
    let y = zeros(be, x.len());
    be.act_forward(act, &up(be, x), &y).unwrap();
    rd(be, &y)
}
fn act_bwd(be: &Be, act: Act, y: &[f32], dy: &[f32]) -> Vec<f32> {
    let dx = zeros(be, y.len());
    be.act_backward(act, &up(be, y), &up(be, dy), &dx).unwrap();
    rd(be, &dx)
}

/// Moves values within `margin` of 0 out to +/- margin (for ReLU's kink).
fn away_from_zero(x: &mut [f32], margin: f32) {
    for v in x {
        if v.abs() < margin {
            *v = if *v < 0.0 { -margin - v.abs() } else { margin + v.abs() };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Elementwise and row-wise ops
// ---------------------------------------------------------------------------------------------

#[test]
fn act_backward_matches_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("act_backward");
    for act in Act::ALL {
        for (s, &n) in [1usize, 3, 15, 21].iter().enumerate() {
            let mut r = rng(100 + s as u64);
            let mut x = uniform(&mut r, n, -4.0, 4.0);
            if act == Act::Relu {
                away_from_zero(&mut x, 3.0 * TOL.h as f32);
            }
            let w = uniform(&mut r, n, -1.5, 1.5);
            let y = act_fwd(&be, act, &x);
            let dx = act_bwd(&be, act, &y, &w);
            rep.check(&format!("act_backward {act:?} n={n}"), &x, &dx, TOL, &|x| dot(&w, &act_fwd(&be, act, x)));
        }
    }
    rep.finish();
}

fn softmax(be: &Be, rows: usize, cols: usize, x: &[f32]) -> Vec<f32> {
    let y = zeros(be, rows * cols);
    be.softmax_rows(rows, cols, &up(be, x), &y).unwrap();
    rd(be, &y)
}

#[test]
fn softmax_backward_matches_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("softmax_backward");
    for (s, &(rows, cols)) in [(1usize, 1usize), (1, 4), (3, 5), (7, 3), (2, 1)].iter().enumerate() {
        let mut r = rng(200 + s as u64);
        let x = uniform(&mut r, rows * cols, -3.0, 3.0);
        let w = uniform(&mut r, rows * cols, -1.0, 1.0);
        let y = softmax(&be, rows, cols, &x);
        let dx = zeros(&be, rows * cols);
        be.softmax_backward(rows, cols, &up(&be, &y), &up(&be, &w), &dx).unwrap();
        let dx = rd(&be, &dx);
        rep.check(&format!("softmax_backward {rows}x{cols}"), &x, &dx, TOL, &|x| dot(&w, &softmax(&be, rows, cols, x)));
    }
    rep.finish();
}

/// z and eps from the reparam kernel with a fixed counter.
fn reparam(be: &Be, ctr: &[u32; 3], stream: u32, mu: &[f32], lv: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (z, eps) = (zeros(be, mu.len()), zeros(be, mu.len()));
    be.reparam(stream, &be.upload_u32(ctr).unwrap(), &up(be, mu), &up(be, lv), &z, &eps).unwrap();
    (rd(be, &z), rd(be, &eps))
}

#[test]
fn reparam_backward_matches_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("reparam_backward");
    for (s, &n) in [1usize, 5, 21].iter().enumerate() {
        let mut r = rng(300 + s as u64);
        let ctr = ssvae::rng::counter(0x1234_5678_9abc + s as u64, 7);
        let stream = 3;
        let mu = uniform(&mut r, n, -2.0, 2.0);
        let lv = uniform(&mut r, n, -3.0, 2.0);
        let w = uniform(&mut r, n, -1.0, 1.0);
        let (_, eps) = reparam(&be, &ctr, stream, &mu, &lv);
        // L = sum(w * z); the counter is fixed, so every forward call draws the same eps.
        let loss = |mu: &[f32], lv: &[f32]| {
            let (z, e) = reparam(&be, &ctr, stream, mu, lv);
            assert_eq!(e, eps, "eps must depend on the counter only");
            dot(&w, &z)
        };
        let (dmu, dlv) = (zeros(&be, n), zeros(&be, n));
        be.reparam_backward(&up(&be, &w), &up(&be, &lv), &up(&be, &eps), &dmu, &dlv).unwrap();
        let (dmu, dlv) = (rd(&be, &dmu), rd(&be, &dlv));
        rep.check(&format!("reparam dmu n={n}"), &mu, &dmu, TOL, &|m| loss(m, &lv));
        rep.check(&format!("reparam dlogvar n={n}"), &lv, &dlv, TOL, &|l| loss(&mu, l));
    }
    rep.finish();
}

// ---------------------------------------------------------------------------------------------
// Fused losses (the checked scalar is the sum of the per-row loss outputs)
// ---------------------------------------------------------------------------------------------

const LOSS_SHAPES: [(usize, usize); 5] = [(1, 1), (1, 6), (3, 5), (7, 3), (4, 1)];
const SCALES: [f32; 3] = [1.0, 0.37, -2.5];

fn bce(be: &Be, rows: usize, cols: usize, scale: f32, l: &[f32], t: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (loss, dl) = (zeros(be, rows), zeros(be, rows * cols));
    be.bce_logits(rows, cols, scale, &up(be, l), &up(be, t), &loss, &dl).unwrap();
    (rd(be, &loss), rd(be, &dl))
}

#[test]
fn bce_logits_gradient_matches_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("bce_logits");
    for (s, &(rows, cols)) in LOSS_SHAPES.iter().enumerate() {
        for &scale in &SCALES {
            let mut r = rng(400 + s as u64);
            let n = rows * cols;
            let l = uniform(&mut r, n, -5.0, 5.0);
            let mut t = uniform(&mut r, n, 0.0, 1.0);
            // Hard targets too (the usual binarized-image case).
            for (i, v) in t.iter_mut().enumerate() {
                if i % 3 == 1 {
                    *v = (*v > 0.5) as u32 as f32;
                }
            }
            let (_, dl) = bce(&be, rows, cols, scale, &l, &t);
            rep.check(&format!("bce_logits {rows}x{cols} scale={scale}"), &l, &dl, TOL.scaled(scale), &|l| {
                sum(&bce(&be, rows, cols, scale, l, &t).0)
            });
        }
    }
    rep.finish();
}

#[allow(clippy::too_many_arguments)]
fn gnll(be: &Be, rows: usize, cols: usize, scale: f32, floor: f32, m: &[f32], raw: &[f32], x: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (loss, dm, draw) = (zeros(be, rows), zeros(be, rows * cols), zeros(be, rows * cols));
    be.gaussian_nll(rows, cols, scale, floor, &up(be, m), &up(be, raw), &up(be, x), &loss, &dm, &draw).unwrap();
    (rd(be, &loss), rd(be, &dm), rd(be, &draw))
}

#[test]
fn gaussian_nll_gradients_match_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("gaussian_nll");
    for (s, &(rows, cols)) in LOSS_SHAPES.iter().enumerate() {
        for &scale in &SCALES {
            let mut r = rng(500 + s as u64);
            let n = rows * cols;
            let m = uniform(&mut r, n, -1.0, 1.0);
            // softplus(-1.5) ~ 0.2: variances from ~0.2 to ~2.1.
            let raw = uniform(&mut r, n, -1.5, 2.0);
            let x = uniform(&mut r, n, -1.0, 1.0);
            // the legacy floor and a large one (the variance's derivative is unchanged by it,
            // the loss and dmean are not)
            let floor = [1e-6, 0.3][s % 2];
            let (_, dm, draw) = gnll(&be, rows, cols, scale, floor, &m, &raw, &x);
            let tol = TOL.scaled(scale);
            rep.check(&format!("gaussian_nll d/dmean {rows}x{cols} scale={scale} floor={floor}"), &m, &dm, tol, &|m| {
                sum(&gnll(&be, rows, cols, scale, floor, m, &raw, &x).0)
            });
            rep.check(&format!("gaussian_nll d/dvar_raw {rows}x{cols} scale={scale} floor={floor}"), &raw, &draw, tol, &|raw| {
                sum(&gnll(&be, rows, cols, scale, floor, &m, raw, &x).0)
            });
        }
    }
    rep.finish();
}

fn kl(be: &Be, rows: usize, cols: usize, scale: f32, mu: &[f32], lv: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (loss, dmu, dlv) = (zeros(be, rows), zeros(be, rows * cols), zeros(be, rows * cols));
    be.kl_normal(rows, cols, scale, &up(be, mu), &up(be, lv), &loss, &dmu, &dlv).unwrap();
    (rd(be, &loss), rd(be, &dmu), rd(be, &dlv))
}

#[test]
fn kl_normal_gradients_match_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("kl_normal");
    for (s, &(rows, cols)) in LOSS_SHAPES.iter().enumerate() {
        for &scale in &SCALES {
            let mut r = rng(600 + s as u64);
            let n = rows * cols;
            let mu = uniform(&mut r, n, -2.0, 2.0);
            let lv = uniform(&mut r, n, -3.0, 2.0);
            let (_, dmu, dlv) = kl(&be, rows, cols, scale, &mu, &lv);
            let tol = TOL.scaled(scale);
            rep.check(&format!("kl d/dmu {rows}x{cols} scale={scale}"), &mu, &dmu, tol, &|mu| sum(&kl(&be, rows, cols, scale, mu, &lv).0));
            rep.check(&format!("kl d/dlogvar {rows}x{cols} scale={scale}"), &lv, &dlv, tol, &|lv| {
                sum(&kl(&be, rows, cols, scale, &mu, lv).0)
            });
        }
    }
    rep.finish();
}

fn ce(be: &Be, rows: usize, classes: usize, scale: f32, l: &[f32], labels: &[u32]) -> (Vec<f32>, Vec<f32>) {
    ce_smoothed(be, rows, classes, scale, 0.0, l, labels)
}

fn ce_smoothed(be: &Be, rows: usize, classes: usize, scale: f32, eps: f32, l: &[f32], labels: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let (loss, dl) = (zeros(be, rows), zeros(be, rows * classes));
    be.softmax_ce(rows, classes, scale, eps, &up(be, l), &be.upload_u32(labels).unwrap(), &loss, &dl).unwrap();
    (rd(be, &loss), rd(be, &dl))
}

#[test]
fn softmax_ce_gradient_matches_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("softmax_ce");
    let u = UNLABELED;
    // (rows, classes, labels): labeled, UNLABELED and out-of-range (== classes) rows mixed.
    let cases: [(usize, usize, Vec<u32>); 7] = [
        (1, 1, vec![0]),
        (1, 1, vec![u]),
        (1, 4, vec![2]),
        (3, 5, vec![4, u, 0]),
        (7, 3, vec![0, u, 2, 1, 3, u, 1]),
        (3, 5, vec![u, 5, u]), // no labeled row: loss and gradient all zero
        (5, 2, vec![1, 1, 0, u, 1]),
    ];
    // label smoothing: none, the usual 0.1, and 0.7 (targets far from one-hot)
    for (s, (rows, classes, labels)) in cases.iter().enumerate() {
        let (rows, classes) = (*rows, *classes);
        for (&scale, eps) in SCALES.iter().flat_map(|sc| [(sc, 0.0f32), (sc, 0.1), (sc, 0.7)]) {
            let mut r = rng(700 + s as u64);
            let l = uniform(&mut r, rows * classes, -4.0, 4.0);
            let (loss, dl) = ce_smoothed(&be, rows, classes, scale, eps, &l, labels);
            let f = |l: &[f32]| sum(&ce_smoothed(&be, rows, classes, scale, eps, l, labels).0);
            let what = format!("softmax_ce {rows}x{classes} labels={labels:?} scale={scale} smoothing={eps}");
            rep.check(&what, &l, &dl, TOL.scaled(scale), &f);
            // Unlabeled rows: loss and gradient exactly zero, and the loss does not move at all
            // when their logits do.
            let num = numeric_grad(&l, TOL.h, &f);
            for (row, &y) in labels.iter().enumerate() {
                if (y as usize) < classes {
                    continue;
                }
                assert_eq!(loss[row].to_bits(), 0, "{what}: unlabeled row {row} has loss {}", loss[row]);
                for j in row * classes..(row + 1) * classes {
                    assert_eq!(dl[j].to_bits(), 0, "{what}: unlabeled row {row} has gradient {} at {j}", dl[j]);
                    assert_eq!(num[j], 0.0, "{what}: loss moves with unlabeled row {row}'s logit {j}");
                }
            }
        }
    }
    rep.finish();
}

// ---------------------------------------------------------------------------------------------
// GEMM backward identities
// ---------------------------------------------------------------------------------------------

fn gemm(be: &Be, g: Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let c = zeros(be, g.m * g.n);
    let bias = bias.map(|x| up(be, x));
    be.gemm(g, &up(be, a), &up(be, b), bias.as_ref(), &c).unwrap();
    rd(be, &c)
}

/// The gradients of L = sum(W * act(op(A) op(B) + bias)) with respect to the stored A, the
/// stored B and the bias, written as the autodiff writes them: dZ = act_backward(C, W), then
/// dA = dZ op(B)^T (stored transposed: op(B) dZ^T), dB = op(A)^T dZ (stored transposed:
/// dZ^T op(A)), dbias = col_sum(dZ), each product a single GEMM with transpose flags.
fn gemm_backward(be: &Be, g: Gemm, a: &[f32], b: &[f32], c: &[f32], w: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (m, n, k, ta, tb) = (g.m, g.n, g.k, g.trans_a, g.trans_b);
    let dz = act_bwd(be, g.act, c, w);
    let da = if !ta {
        gemm(be, Gemm::new(m, k, n).trans(false, !tb), &dz, b, None) // NT for plain B
    } else {
        gemm(be, Gemm::new(k, m, n).trans(tb, true), b, &dz, None)
    };
    let db = if !tb {
        gemm(be, Gemm::new(k, n, m).trans(!ta, false), a, &dz, None) // TN for plain A
    } else {
        gemm(be, Gemm::new(n, k, m).trans(true, ta), &dz, a, None)
    };
    let dbias = zeros(be, n);
    be.col_sum(m, n, false, &up(be, &dz), &dbias).unwrap();
    (da, db, rd(be, &dbias))
}

struct GemmCase {
    g: Gemm,
    a: Vec<f32>,
    b: Vec<f32>,
    bias: Vec<f32>,
    w: Vec<f32>,
}

/// Random inputs; for ReLU, re-drawn until every pre-activation is at least 3h from the kink
/// (entries lie in [-1, 1], so one probe moves a pre-activation by at most h).
fn gemm_case(be: &Be, g: Gemm, seed: u64) -> GemmCase {
    for attempt in 0..1000 {
        let mut r = rng(seed * 1000 + attempt);
        let a = uniform(&mut r, g.m * g.k, -1.0, 1.0);
        let b = uniform(&mut r, g.k * g.n, -1.0, 1.0);
        let bias = uniform(&mut r, g.n, -1.0, 1.0);
        let w = uniform(&mut r, g.m * g.n, -1.0, 1.0);
        if g.act == Act::Relu {
            let z = gemm(be, Gemm { act: Act::Identity, ..g }, &a, &b, g.bias.then_some(&bias[..]));
            if z.iter().any(|v| (v.abs() as f64) < 3.0 * TOL.h) {
                continue;
            }
        }
        return GemmCase { g, a, b, bias, w };
    }
    panic!("no ReLU-safe inputs for {g:?}");
}

#[test]
fn gemm_backward_identities_match_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("gemm_backward");
    let shapes = [(1usize, 1usize, 1usize), (3, 5, 4), (7, 3, 5), (1, 6, 3), (5, 1, 2), (2, 3, 1)];
    let mut seed = 0;
    for &(m, n, k) in &shapes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for act in Act::ALL {
                for with_bias in [true, false] {
                    seed += 1;
                    let g = Gemm::new(m, n, k).trans(ta, tb).act(act);
                    let GemmCase { g, a, b, bias, w } = gemm_case(&be, Gemm { bias: with_bias, ..g }, seed);
                    let bias_opt = with_bias.then_some(&bias[..]);
                    let c = gemm(&be, g, &a, &b, bias_opt);
                    let (da, db, dbias) = gemm_backward(&be, g, &a, &b, &c, &w);
                    let what = format!("gemm {m}x{n}x{k} trans_a={ta} trans_b={tb} {act:?} bias={with_bias}");
                    rep.check(&format!("{what} dA"), &a, &da, TOL, &|a| dot(&w, &gemm(&be, g, a, &b, bias_opt)));
                    rep.check(&format!("{what} dB"), &b, &db, TOL, &|b| dot(&w, &gemm(&be, g, &a, b, bias_opt)));
                    if with_bias {
                        rep.check(&format!("{what} dbias"), &bias, &dbias, TOL, &|bias| dot(&w, &gemm(&be, g, &a, &b, Some(bias))));
                    }
                }
            }
        }
    }
    rep.finish();
}

// ---------------------------------------------------------------------------------------------
// concat / split, mean / var
// ---------------------------------------------------------------------------------------------

fn concat(be: &Be, rows: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let c = zeros(be, a.len() + b.len());
    be.concat_cols(rows, &up(be, a), &up(be, b), &c).unwrap();
    rd(be, &c)
}
fn split(be: &Be, rows: usize, ca: usize, cb: usize, c: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (a, b) = (zeros(be, rows * ca), zeros(be, rows * cb));
    be.split_cols(rows, &up(be, c), &a, &b).unwrap();
    (rd(be, &a), rd(be, &b))
}

#[test]
fn concat_and_split_are_adjoint() {
    let be = cpu();
    let mut rep = Report::new("concat/split");
    for (s, &(rows, ca, cb)) in [(1usize, 1usize, 1usize), (3, 5, 2), (7, 3, 4), (1, 2, 7), (4, 1, 3)].iter().enumerate() {
        let mut r = rng(800 + s as u64);
        let a = uniform(&mut r, rows * ca, -2.0, 2.0);
        let b = uniform(&mut r, rows * cb, -2.0, 2.0);
        let w = uniform(&mut r, rows * (ca + cb), -1.0, 1.0);
        // d/d(a, b) of sum(W * concat(a, b)) = split(W).
        let (da, db) = split(&be, rows, ca, cb, &w);
        let what = format!("concat {rows}x({ca}+{cb})");
        rep.check(&format!("{what} da"), &a, &da, TOL, &|a| dot(&w, &concat(&be, rows, a, &b)));
        rep.check(&format!("{what} db"), &b, &db, TOL, &|b| dot(&w, &concat(&be, rows, &a, b)));
        // And the other way: d/dc of sum(Wa * a) + sum(Wb * b) with (a, b) = split(c) is
        // concat(Wa, Wb).
        let c = uniform(&mut r, rows * (ca + cb), -2.0, 2.0);
        let (wa, wb) = (uniform(&mut r, rows * ca, -1.0, 1.0), uniform(&mut r, rows * cb, -1.0, 1.0));
        let dc = concat(&be, rows, &wa, &wb);
        rep.check(&format!("split {rows}x({ca}+{cb}) dc"), &c, &dc, TOL, &|c| {
            let (a, b) = split(&be, rows, ca, cb, c);
            dot(&wa, &a) + dot(&wb, &b)
        });
        // Exact adjointness in f64: <concat(a, b), W> = <a, Wa> + <b, Wb> with (Wa, Wb) = split(W).
        let lhs = dot(&w, &concat(&be, rows, &a, &b));
        let rhs = dot(&da, &a) + dot(&db, &b);
        assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{what}: <concat(a,b), W> = {lhs} but <a, Wa> + <b, Wb> = {rhs}");
    }
    rep.finish();
}

fn mean_var(be: &Be, rows: usize, cols: usize, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (m, v) = (zeros(be, cols), zeros(be, cols));
    be.mean_var(rows, cols, &up(be, x), &m, &v).unwrap();
    (rd(be, &m), rd(be, &v))
}

/// d/dx of sum_c (w1[c] mean[c] + w2[c] var[c]) for the biased batch statistics:
/// d mean_c / d x[r, c] = 1 / rows, d var_c / d x[r, c] = 2 (x[r, c] - mean_c) / rows.
fn mean_var_grad(rows: usize, cols: usize, x: &[f32], w1: &[f32], w2: &[f32]) -> Vec<f32> {
    let mean: Vec<f64> = (0..cols).map(|c| (0..rows).map(|r| x[r * cols + c] as f64).sum::<f64>() / rows as f64).collect();
    let mut dx = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let d = w1[c] as f64 / rows as f64 + w2[c] as f64 * 2.0 * (x[r * cols + c] as f64 - mean[c]) / rows as f64;
            dx[r * cols + c] = d as f32;
        }
    }
    dx
}

#[test]
fn mean_var_matches_analytic_gradient() {
    let be = cpu();
    let mut rep = Report::new("mean_var");
    for (s, &(rows, cols)) in [(1usize, 1usize), (1, 4), (3, 5), (7, 3), (6, 1)].iter().enumerate() {
        let mut r = rng(900 + s as u64);
        let x = uniform(&mut r, rows * cols, -2.0, 2.0);
        let w1 = uniform(&mut r, cols, -1.0, 1.0);
        let w2 = uniform(&mut r, cols, -1.0, 1.0);
        let dx = mean_var_grad(rows, cols, &x, &w1, &w2);
        rep.check(&format!("mean_var {rows}x{cols}"), &x, &dx, TOL, &|x| {
            let (m, v) = mean_var(&be, rows, cols, x);
            dot(&w1, &m) + dot(&w2, &v)
        });
    }
    rep.finish();
}

// ---------------------------------------------------------------------------------------------
// The checker can fail
// ---------------------------------------------------------------------------------------------

#[test]
fn checker_rejects_wrong_gradients() {
    let be = cpu();
    let mut r = rng(1000);
    let (rows, cols) = (3, 5);
    let n = rows * cols;

    // BCE: the correct gradient passes, the same times 1.1 does not, nor one element off by 2%.
    let l = uniform(&mut r, n, -3.0, 3.0);
    let t = uniform(&mut r, n, 0.0, 1.0);
    let f = |l: &[f32]| sum(&bce(&be, rows, cols, 1.0, l, &t).0);
    let (_, dl) = bce(&be, rows, cols, 1.0, &l, &t);
    fd_check("bce (correct)", &l, &dl, TOL, &f).unwrap();
    let wrong: Vec<f32> = dl.iter().map(|g| g * 1.1).collect();
    let e = fd_check("bce x1.1", &l, &wrong, TOL, &f).expect_err("a gradient 10% too large must be rejected");
    assert!(e.contains("bce x1.1") && e.contains("elements fail"), "{e}");
    let i = (0..n).max_by(|&i, &j| dl[i].abs().total_cmp(&dl[j].abs())).unwrap();
    let mut one_off = dl.clone();
    one_off[i] *= 1.02;
    fd_check("bce one element 2% off", &l, &one_off, TOL, &f).expect_err("one wrong element must be rejected");

    // KL: dlogvar without the 1/2 factor, and a sign flip in dmu.
    let mu = uniform(&mut r, n, -2.0, 2.0);
    let lv = uniform(&mut r, n, -2.0, 2.0);
    let (_, dmu, dlv) = kl(&be, rows, cols, 1.0, &mu, &lv);
    let no_half: Vec<f32> = dlv.iter().map(|g| 2.0 * g).collect();
    fd_check("kl dlogvar x2", &lv, &no_half, TOL, &|lv| sum(&kl(&be, rows, cols, 1.0, &mu, lv).0))
        .expect_err("missing 1/2 must be rejected");
    let neg: Vec<f32> = dmu.iter().map(|g| -g).collect();
    fd_check("kl -dmu", &mu, &neg, TOL, &|mu| sum(&kl(&be, rows, cols, 1.0, mu, &lv).0)).expect_err("sign flip must be rejected");

    // Gaussian NLL: dvar_raw without the softplus chain factor sigmoid(raw).
    let m = uniform(&mut r, n, -1.0, 1.0);
    let raw = uniform(&mut r, n, -1.5, 2.0);
    let x = uniform(&mut r, n, -1.0, 1.0);
    let (_, _, draw) = gnll(&be, rows, cols, 1.0, 1e-6, &m, &raw, &x);
    let no_chain: Vec<f32> = draw.iter().zip(&raw).map(|(g, &v)| g * (1.0 + (-v).exp())).collect();
    fd_check("gnll dvar_raw without sigmoid", &raw, &no_chain, TOL, &|raw| sum(&gnll(&be, rows, cols, 1.0, 1e-6, &m, raw, &x).0))
        .expect_err("missing chain factor must be rejected");

    // Activation: tanh's gradient computed with the sigmoid formula.
    let xa = uniform(&mut r, 7, -2.0, 2.0);
    let wa = uniform(&mut r, 7, -1.0, 1.0);
    let ya = act_fwd(&be, Act::Tanh, &xa);
    let wrong_act = act_bwd(&be, Act::Sigmoid, &ya, &wa);
    fd_check("tanh with sigmoid grad", &xa, &wrong_act, TOL, &|x| dot(&wa, &act_fwd(&be, Act::Tanh, x)))
        .expect_err("wrong activation derivative must be rejected");

    // GEMM: dbias as col_sum(W) instead of col_sum(dZ) (forgetting the activation), and dA with
    // B not transposed where it should be (shape-compatible because n == k).
    let g = Gemm::new(3, 4, 4).act(Act::Sigmoid);
    let GemmCase { g, a, b, bias, w } = gemm_case(&be, Gemm { bias: true, ..g }, 4242);
    let c = gemm(&be, g, &a, &b, Some(&bias));
    let (da, _, _) = gemm_backward(&be, g, &a, &b, &c, &w);
    let fa = |a: &[f32]| dot(&w, &gemm(&be, g, a, &b, Some(&bias)));
    fd_check("gemm dA (correct)", &a, &da, TOL, &fa).unwrap();
    let dbias_wrong = zeros(&be, 4);
    be.col_sum(3, 4, false, &up(&be, &w), &dbias_wrong).unwrap();
    fd_check("gemm dbias without act'", &bias, &rd(&be, &dbias_wrong), TOL, &|bias| dot(&w, &gemm(&be, g, &a, &b, Some(bias))))
        .expect_err("dbias ignoring the activation must be rejected");
    let dz = act_bwd(&be, g.act, &c, &w);
    let da_nn = gemm(&be, Gemm::new(3, 4, 4), &dz, &b, None);
    fd_check("gemm dA = dZ B (not B^T)", &a, &da_nn, TOL, &fa).expect_err("a missing transpose must be rejected");

    // softmax_ce: a gradient that leaks into an unlabeled row.
    let lc = uniform(&mut r, 9, -2.0, 2.0);
    let labels = [1, UNLABELED, 2];
    let (_, mut dce) = ce(&be, 3, 3, 1.0, &lc, &labels);
    dce[4] = 0.01;
    fd_check("softmax_ce leaking into unlabeled row", &lc, &dce, TOL, &|l| sum(&ce(&be, 3, 3, 1.0, l, &labels).0))
        .expect_err("a nonzero gradient on an unlabeled row must be rejected");
    // softmax_ce with label smoothing 0.2: the one-hot gradient (p - one-hot, the smoothing
    // left out of the backward) against the smoothed loss.
    let smoothed = |l: &[f32]| sum(&ce_smoothed(&be, 3, 3, 1.0, 0.2, l, &labels).0);
    fd_check("softmax_ce smoothed (correct)", &lc, &ce_smoothed(&be, 3, 3, 1.0, 0.2, &lc, &labels).1, TOL, &smoothed).unwrap();
    fd_check("softmax_ce smoothed loss, one-hot gradient", &lc, &ce(&be, 3, 3, 1.0, &lc, &labels).1, TOL, &smoothed)
        .expect_err("a gradient that ignores the smoothing must be rejected");
}
