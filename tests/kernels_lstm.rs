//! LSTM kernels (shaders/lstm.wgsl): the recurrence and backprop through time.
//!
//! 1. GPU vs the CPU twin on random inputs and awkward shapes: hidden 1, 7, 40, 129 (units over
//!    one 128-thread workgroup) and 300 (4H = 1200 gate columns, ~9 per thread), a single step,
//!    a single batch row, 3 rows, 5..20 steps, and 70 000 batch rows (more workgroups than one
//!    grid dimension holds, so the 2-D flat grid is exercised). Write-only outputs start as NaN
//!    so an element the kernel misses fails. The backward kernels of both backends get the same
//!    (CPU) forward tensors, so each comparison isolates one kernel.
//!    Tolerances (|gpu - cpu| <= atol + rtol * |cpu|), forward and backward alike:
//!    atol 1e-5 + rtol 1e-4. The GPU contracts the H- and 4H-term dot products into FMAs and its
//!    exp / tanh differ by a few ulp; the recurrence is contractive (|gates| < 1), so errors do
//!    not grow over the T <= 20 steps. Observed on llvmpipe: max |diff| 3.6e-7 (forward) and
//!    1.8e-7 (backward) over all shapes (printed with --nocapture), a ~30x margin that leaves
//!    room for the looser transcendental approximations of hardware GPUs.
//! 2. Central finite differences of the backward on the CPU backend for L = sum(h_seq * R):
//!    gradients w.r.t. xproj (= dgates), w_hh (= hprev^T dgates, the GEMM the graph emits),
//!    h0 and c0. The method and tolerance are those of tests/gradcheck.rs (step 1e-2, f64
//!    accumulation of the f32 kernel outputs, per element |num - ana| <= 2e-4 + 2e-3 max|g|);
//!    and the same checker rejects deliberately wrong gradients.
//! 3. Op::check refuses a hidden size over the workgroup-memory limit.
mod common;

use common::*;
use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::{Gemm, LSTM_MAX_HIDDEN};
use ssvae::{Backend, DType, Kernels};

struct Fwd {
    h_seq: Vec<f32>,
    c_seq: Vec<f32>,
    gates: Vec<f32>,
    hprev: Vec<f32>,
}

struct Bwd {
    dgates: Vec<f32>,
    dh0: Vec<f32>,
    dc0: Vec<f32>,
}

fn nan_buf<B: Backend>(be: &B, n: usize) -> B::Buf {
    be.upload_f32(&vec![f32::NAN; n]).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn forward<B: Backend>(be: &B, b: usize, t: usize, h: usize, xproj: &[f32], w_hh: &[f32], h0: &[f32], c0: &[f32]) -> Fwd {
    let up = |x: &[f32]| be.upload_f32(x).unwrap();
    let (hs, cs, gs, hp) = (nan_buf(be, b * t * h), nan_buf(be, b * t * h), nan_buf(be, b * t * 4 * h), nan_buf(be, b * t * h));
    be.lstm_forward(b, t, h, &up(xproj), &up(w_hh), &up(h0), &up(c0), &hs, &cs, &gs, &hp).unwrap();
    let rd = |x: &B::Buf| be.read_f32(x).unwrap();
    Fwd { h_seq: rd(&hs), c_seq: rd(&cs), gates: rd(&gs), hprev: rd(&hp) }
}

#[allow(clippy::too_many_arguments)]
fn backward<B: Backend>(be: &B, b: usize, t: usize, h: usize, f: &Fwd, c0: &[f32], w_hh: &[f32], dh_seq: &[f32]) -> Bwd {
    let up = |x: &[f32]| be.upload_f32(x).unwrap();
    let (dg, dh0, dc0) = (nan_buf(be, b * t * 4 * h), nan_buf(be, b * h), nan_buf(be, b * h));
    be.lstm_backward(b, t, h, &up(&f.gates), &up(&f.c_seq), &up(c0), &up(w_hh), &up(dh_seq), &dg, &dh0, &dc0).unwrap();
    let rd = |x: &B::Buf| be.read_f32(x).unwrap();
    Bwd { dgates: rd(&dg), dh0: rd(&dh0), dc0: rd(&dc0) }
}

/// Random inputs of one case; W_hh scaled by 1/sqrt(H) so the gates stay out of saturation.
struct Case {
    b: usize,
    t: usize,
    h: usize,
    xproj: Vec<f32>,
    w_hh: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    dh_seq: Vec<f32>,
}

fn case(b: usize, t: usize, h: usize, seed: u64) -> Case {
    let mut r = rng(seed);
    let s = 1.5 / (h as f32).sqrt();
    Case {
        b,
        t,
        h,
        xproj: uniform(&mut r, b * t * 4 * h, -1.5, 1.5),
        w_hh: uniform(&mut r, h * 4 * h, -s, s),
        h0: uniform(&mut r, b * h, -1.0, 1.0),
        c0: uniform(&mut r, b * h, -2.0, 2.0),
        dh_seq: uniform(&mut r, b * t * h, -1.0, 1.0),
    }
}

/// (batch, steps, hidden); batches of 6 and 9 cover the CPU's blocks of 4 rows and the rows
/// left over after them
const SHAPES: [(usize, usize, usize); 11] =
    [(1, 1, 1), (1, 5, 7), (3, 1, 7), (3, 20, 40), (2, 6, 129), (1, 3, 300), (3, 12, 1), (4, 9, 33), (2, 17, 64), (6, 9, 33), (9, 4, 40)];

#[test]
fn lstm_forward_and_backward_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let be = cpu();
    let (mut fwd_max, mut bwd_max) = (0f32, 0f32);
    let maxd = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    for (k, &(b, t, h)) in SHAPES.iter().enumerate() {
        let c = case(b, t, h, 100 + k as u64);
        let what = format!("b{b} t{t} h{h}");
        let fc = forward(&be, b, t, h, &c.xproj, &c.w_hh, &c.h0, &c.c0);
        let fg = forward(gpu, b, t, h, &c.xproj, &c.w_hh, &c.h0, &c.c0);
        assert_close(&format!("{what} h_seq"), &fg.h_seq, &fc.h_seq, 1e-5, 1e-4);
        assert_close(&format!("{what} c_seq"), &fg.c_seq, &fc.c_seq, 1e-5, 1e-4);
        assert_close(&format!("{what} gates"), &fg.gates, &fc.gates, 1e-5, 1e-4);
        assert_close(&format!("{what} hprev"), &fg.hprev, &fc.hprev, 1e-5, 1e-4);
        let bc = backward(&be, b, t, h, &fc, &c.c0, &c.w_hh, &c.dh_seq);
        let bg = backward(gpu, b, t, h, &fc, &c.c0, &c.w_hh, &c.dh_seq);
        assert_close(&format!("{what} dgates"), &bg.dgates, &bc.dgates, 1e-5, 1e-4);
        assert_close(&format!("{what} dh0"), &bg.dh0, &bc.dh0, 1e-5, 1e-4);
        assert_close(&format!("{what} dc0"), &bg.dc0, &bc.dc0, 1e-5, 1e-4);
        fwd_max = fwd_max.max(maxd(&fg.h_seq, &fc.h_seq)).max(maxd(&fg.c_seq, &fc.c_seq)).max(maxd(&fg.gates, &fc.gates));
        bwd_max = bwd_max.max(maxd(&bg.dgates, &bc.dgates)).max(maxd(&bg.dh0, &bc.dh0)).max(maxd(&bg.dc0, &bc.dc0));
    }
    eprintln!("lstm gpu vs cpu: max |diff| forward {fwd_max:.2e}, backward {bwd_max:.2e}");
}

#[test]
fn lstm_runs_more_batch_rows_than_one_grid_dimension() {
    let Some(gpu) = gpu() else { return };
    let be = cpu();
    let (b, t, h) = (70_000, 2, 1);
    let c = case(b, t, h, 7);
    let fc = forward(&be, b, t, h, &c.xproj, &c.w_hh, &c.h0, &c.c0);
    let fg = forward(gpu, b, t, h, &c.xproj, &c.w_hh, &c.h0, &c.c0);
    assert_close("70000 rows h_seq", &fg.h_seq, &fc.h_seq, 1e-5, 1e-4);
    let bc = backward(&be, b, t, h, &fc, &c.c0, &c.w_hh, &c.dh_seq);
    let bg = backward(gpu, b, t, h, &fc, &c.c0, &c.w_hh, &c.dh_seq);
    assert_close("70000 rows dgates", &bg.dgates, &bc.dgates, 1e-5, 1e-4);
    assert_close("70000 rows dh0", &bg.dh0, &bc.dh0, 1e-5, 1e-4);
}

#[test]
fn cpu_forward_matches_hand_computed_step() {
    // H = 1, one step: gates from z = xproj + h0 w, then c = f c0 + i g, h = o tanh(c).
    let be = cpu();
    let xproj = [0.5f32, -0.25, 0.75, 1.0];
    let w = [0.1f32, -0.2, 0.3, 0.4];
    let (h0, c0) = (0.5f32, -1.0f32);
    let f = forward(&be, 1, 1, 1, &xproj, &w, &[h0], &[c0]);
    let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
    let z: Vec<f32> = (0..4).map(|k| xproj[k] + h0 * w[k]).collect();
    let (i, fg, g, o) = (sig(z[0]), sig(z[1]), z[2].tanh(), sig(z[3]));
    let c = fg * c0 + i * g;
    assert_close("gates", &f.gates, &[i, fg, g, o], 1e-6, 1e-6);
    assert_close("c", &f.c_seq, &[c], 1e-6, 1e-6);
    assert_close("h", &f.h_seq, &[o * c.tanh()], 1e-6, 1e-6);
    assert_close("hprev", &f.hprev, &[h0], 0.0, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Finite differences (CPU)
// ---------------------------------------------------------------------------------------------

const STEP: f64 = 1e-2;
const ATOL: f64 = 2e-4;
const RTOL: f64 = 2e-3;

/// L = sum(h_seq * R), accumulated in f64.
fn loss(be: &CpuBackend, c: &Case, xproj: &[f32], w_hh: &[f32], h0: &[f32], c0: &[f32]) -> f64 {
    let f = forward(be, c.b, c.t, c.h, xproj, w_hh, h0, c0);
    f.h_seq.iter().zip(&c.dh_seq).map(|(&a, &r)| a as f64 * r as f64).sum()
}

/// Central differences with the f32 values actually fed in as the denominator.
fn numeric(x: &[f32], f: &dyn Fn(&[f32]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let (p, m) = ((x[i] as f64 + STEP) as f32, (x[i] as f64 - STEP) as f32);
            xp[i] = p;
            let lp = f(&xp);
            xp[i] = m;
            let lm = f(&xp);
            xp[i] = x[i];
            (lp - lm) / (p as f64 - m as f64)
        })
        .collect()
}

/// Worst |num - ana| / bound (accepted when <= 1).
fn worst_ratio(num: &[f64], ana: &[f32]) -> f64 {
    assert_eq!(num.len(), ana.len());
    num.iter().zip(ana).map(|(&n, &a)| (n - a as f64).abs() / (ATOL + RTOL * n.abs().max(a.abs() as f64))).fold(0.0, f64::max)
}

/// Analytic gradients (dxproj, dw_hh, dh0, dc0) of L from the kernels: the backward with
/// dh_seq = R, then dW_hh = hprev^T dgates as the graph computes it.
fn analytic(be: &CpuBackend, c: &Case) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let f = forward(be, c.b, c.t, c.h, &c.xproj, &c.w_hh, &c.h0, &c.c0);
    let g = backward(be, c.b, c.t, c.h, &f, &c.c0, &c.w_hh, &c.dh_seq);
    let dw = w_hh_grad(be, c, &f.hprev, &g.dgates);
    (g.dgates, dw, g.dh0, g.dc0)
}

fn w_hh_grad(be: &CpuBackend, c: &Case, hprev: &[f32], dgates: &[f32]) -> Vec<f32> {
    let out = be.alloc(c.h * 4 * c.h, DType::F32).unwrap();
    let gm = Gemm::new(c.h, 4 * c.h, c.b * c.t).trans(true, false);
    be.gemm(gm, &be.upload_f32(hprev).unwrap(), &be.upload_f32(dgates).unwrap(), None, &out).unwrap();
    be.read_f32(&out).unwrap()
}

fn numeric_all(be: &CpuBackend, c: &Case) -> [Vec<f64>; 4] {
    [
        numeric(&c.xproj, &|x| loss(be, c, x, &c.w_hh, &c.h0, &c.c0)),
        numeric(&c.w_hh, &|w| loss(be, c, &c.xproj, w, &c.h0, &c.c0)),
        numeric(&c.h0, &|h0| loss(be, c, &c.xproj, &c.w_hh, h0, &c.c0)),
        numeric(&c.c0, &|c0| loss(be, c, &c.xproj, &c.w_hh, &c.h0, c0)),
    ]
}

#[test]
fn lstm_backward_matches_finite_differences() {
    let be = cpu();
    let mut worst = (0.0f64, String::new());
    for (k, &(b, t, h)) in [(1, 1, 1), (2, 4, 3), (1, 6, 1), (3, 5, 7), (2, 8, 5)].iter().enumerate() {
        let c = case(b, t, h, 500 + k as u64);
        let (dx, dw, dh0, dc0) = analytic(&be, &c);
        let num = numeric_all(&be, &c);
        for (name, n, a) in [("xproj", &num[0], &dx), ("w_hh", &num[1], &dw), ("h0", &num[2], &dh0), ("c0", &num[3], &dc0)] {
            let r = worst_ratio(n, a);
            let what = format!("b{b} t{t} h{h} d{name}");
            assert!(r <= 1.0, "{what}: gradient differs from finite differences ({r:.2} x the bound {ATOL} + {RTOL} max|g|)");
            if r >= worst.0 {
                worst = (r, what);
            }
        }
    }
    eprintln!("lstm gradient check: worst |diff|/bound = {:.3} ({})", worst.0, worst.1);
}

#[test]
fn checker_rejects_wrong_lstm_gradients() {
    let be = cpu();
    let c = case(2, 5, 4, 77);
    let (dx, dw, dh0, _) = analytic(&be, &c);
    let num = numeric_all(&be, &c);
    assert!(worst_ratio(&num[0], &dx) <= 1.0 && worst_ratio(&num[1], &dw) <= 1.0);
    // a gradient 10% too large
    let big: Vec<f32> = dx.iter().map(|v| v * 1.1).collect();
    assert!(worst_ratio(&num[0], &big) > 1.0, "a 10% error in dxproj must be rejected");
    // dW_hh from h_t instead of h_{t-1} (the classic off-by-one)
    let f = forward(&be, c.b, c.t, c.h, &c.xproj, &c.w_hh, &c.h0, &c.c0);
    let g = backward(&be, c.b, c.t, c.h, &f, &c.c0, &c.w_hh, &c.dh_seq);
    let shifted = w_hh_grad(&be, &c, &f.h_seq, &g.dgates);
    assert!(worst_ratio(&num[1], &shifted) > 1.0, "dW_hh from h_t instead of h_(t-1) must be rejected");
    // truncated backprop: no gradient through the recurrence (each step seen alone)
    let mut trunc = vec![0f32; dx.len()];
    for b in 0..c.b {
        for t in 0..c.t {
            let row = b * c.t + t;
            let one = |v: &[f32], w: usize| v[row * w..(row + 1) * w].to_vec();
            let (g1, c1) = (one(&f.gates, 4 * c.h), one(&f.c_seq, c.h));
            let cprev = if t == 0 { c.c0[b * c.h..(b + 1) * c.h].to_vec() } else { f.c_seq[(row - 1) * c.h..row * c.h].to_vec() };
            let single = Fwd { h_seq: vec![], c_seq: c1, gates: g1, hprev: vec![] };
            let d = backward(&be, 1, 1, c.h, &single, &cprev, &c.w_hh, &one(&c.dh_seq, c.h));
            trunc[row * 4 * c.h..(row + 1) * 4 * c.h].copy_from_slice(&d.dgates);
        }
    }
    assert!(worst_ratio(&num[0], &trunc) > 1.0, "a backward that ignores the recurrence must be rejected");
    // dh0 with the wrong sign
    let neg: Vec<f32> = dh0.iter().map(|v| -v).collect();
    assert!(worst_ratio(&num[2], &neg) > 1.0, "a sign flip in dh0 must be rejected");
}

#[test]
fn hidden_over_the_workgroup_memory_limit_is_refused() {
    let be = cpu();
    let (b, t, h) = (1, 1, LSTM_MAX_HIDDEN + 1);
    let buf = |n: usize| be.alloc(n, DType::F32).unwrap();
    let e = be
        .lstm_forward(b, t, h, &buf(4 * h), &buf(4 * h * h), &buf(h), &buf(h), &buf(h), &buf(h), &buf(4 * h), &buf(h))
        .expect_err("hidden > LSTM_MAX_HIDDEN must be refused");
    let msg = e.to_string();
    assert!(msg.contains("hidden size") && msg.contains(&LSTM_MAX_HIDDEN.to_string()), "unclear message: {msg}");
    // the limit itself is accepted
    let h = LSTM_MAX_HIDDEN;
    be.lstm_backward(b, t, h, &buf(4 * h), &buf(h), &buf(h), &buf(4 * h * h), &buf(h), &buf(4 * h), &buf(h), &buf(h)).unwrap();
}
