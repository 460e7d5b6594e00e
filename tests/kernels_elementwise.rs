//! Elementwise kernels (shaders/elementwise.wgsl): GPU vs the CPU twin on awkward lengths (1,
//! odd, prime, exactly one and just over one 256-wide workgroup, many workgroups), every
//! activation forward and backward, the one-hot of a row's argmax (ties, negative rows, rows
//! wider than a workgroup), and a CPU-only check of hand-computed values.
//!
//! Write-only outputs start as NaN, so an element a kernel forgets to write fails the
//! comparison; buffers longer than the op's `n` check that nothing past `n` is touched.
//!
//! Tolerances (|gpu - cpu| <= atol + rtol * |cpu|):
//! - copies (fill, concat_cols, split_cols): exact (atol = rtol = 0).
//! - add, mul, scale: one correctly rounded f32 operation on both sides (Vulkan requires
//!   OpFAdd / OpFMul to be correctly rounded), so rtol = 2^-23 (one ulp) and atol = 0.
//! - axpy: the driver may contract `y + alpha * x` into an FMA, which differs from two
//!   roundings by at most one ulp of `alpha * x`: atol 1e-6 (|alpha x| <= 3) + rtol 2^-23.
//! - activations: exp / log / tanh are transcendental; Vulkan allows exp (3 + 2|x|) ulp and
//!   log 2^-21 absolute near 1, and the shader computes softplus as log(1 + e^-|x|) (no log1p)
//!   and tanh via a clamp to [-15, 15]. Inputs reach |x| = 30, so exp may be off by ~63 ulp
//!   (4e-6 relative): atol 1e-5 + rtol 1e-5 (outputs are O(1) except identity / relu / softplus,
//!   which grow linearly and are covered by rtol).
mod common;

use common::*;
use ssvae::backend::{Act, Op};
use ssvae::{Backend, DType, Kernels};

/// Lengths: 1, tiny odd, primes, one workgroup (256) and just over (257), many workgroups.
const LENS: [usize; 10] = [1, 2, 7, 31, 255, 256, 257, 1021, 4099, 65537];

const ACT_ATOL: f32 = 1e-5;
const ACT_RTOL: f32 = 1e-5;
const ULP: f32 = 1.0 / 8_388_608.0; // 2^-23

/// Inputs in [-8, 8) with exact special values sprinkled in: 0, +-30 (saturation), +-15 and
/// +-15.5 (tanh clamp boundary), tiny values.
fn act_inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut x = uniform(&mut rng(seed), n, -8.0, 8.0);
    let special = [0.0, 30.0, -30.0, 15.0, -15.0, 15.5, -15.5, 1e-4, -1e-4, -0.0];
    for (i, s) in special.iter().enumerate() {
        if i * 3 < n {
            x[i * 3] = *s;
        }
    }
    x
}

fn nan_buf<B: Backend>(be: &B, n: usize) -> B::Buf {
    be.upload_f32(&vec![f32::NAN; n]).unwrap()
}

fn act_fwd<B: Backend>(be: &B, act: Act, x: &[f32]) -> Vec<f32> {
    let xb = be.upload_f32(x).unwrap();
    let yb = nan_buf(be, x.len());
    be.act_forward(act, &xb, &yb).unwrap();
    be.read_f32(&yb).unwrap()
}

fn act_bwd<B: Backend>(be: &B, act: Act, y: &[f32], dy: &[f32]) -> Vec<f32> {
    let (yb, dyb) = (be.upload_f32(y).unwrap(), be.upload_f32(dy).unwrap());
    let dxb = nan_buf(be, y.len());
    be.act_backward(act, &yb, &dyb, &dxb).unwrap();
    be.read_f32(&dxb).unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Binary {
    Add,
    Mul,
}

fn binary<B: Backend>(be: &B, op: Binary, a: &[f32], b: &[f32]) -> Vec<f32> {
    let (ab, bb) = (be.upload_f32(a).unwrap(), be.upload_f32(b).unwrap());
    let cb = nan_buf(be, a.len());
    match op {
        Binary::Add => be.add(&ab, &bb, &cb).unwrap(),
        Binary::Mul => be.mul(&ab, &bb, &cb).unwrap(),
    }
    be.read_f32(&cb).unwrap()
}

fn scale<B: Backend>(be: &B, alpha: f32, x: &[f32]) -> Vec<f32> {
    let xb = be.upload_f32(x).unwrap();
    let yb = nan_buf(be, x.len());
    be.scale(alpha, &xb, &yb).unwrap();
    be.read_f32(&yb).unwrap()
}

fn axpy<B: Backend>(be: &B, alpha: f32, x: &[f32], y0: &[f32]) -> Vec<f32> {
    let (xb, yb) = (be.upload_f32(x).unwrap(), be.upload_f32(y0).unwrap());
    be.axpy(alpha, &xb, &yb).unwrap();
    be.read_f32(&yb).unwrap()
}

fn fill<B: Backend>(be: &B, value: f32, n: usize) -> Vec<f32> {
    let yb = nan_buf(be, n);
    be.fill(value, &yb).unwrap();
    be.read_f32(&yb).unwrap()
}

fn concat<B: Backend>(be: &B, rows: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let (ab, bb) = (be.upload_f32(a).unwrap(), be.upload_f32(b).unwrap());
    let cb = nan_buf(be, a.len() + b.len());
    be.concat_cols(rows, &ab, &bb, &cb).unwrap();
    be.read_f32(&cb).unwrap()
}

fn split<B: Backend>(be: &B, rows: usize, ca: usize, cb: usize, c: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let cbuf = be.upload_f32(c).unwrap();
    let (ab, bb) = (nan_buf(be, rows * ca), nan_buf(be, rows * cb));
    be.split_cols(rows, &cbuf, &ab, &bb).unwrap();
    (be.read_f32(&ab).unwrap(), be.read_f32(&bb).unwrap())
}

fn one_hot<B: Backend>(be: &B, rows: usize, classes: usize, x: &[f32]) -> Vec<f32> {
    let xb = be.upload_f32(x).unwrap();
    let yb = nan_buf(be, x.len());
    be.one_hot_argmax(rows, classes, &xb, &yb).unwrap();
    be.read_f32(&yb).unwrap()
}

/// The straight-through forward: exact on both backends (comparisons only), the first of equal
/// maxima wins, every element written.
#[test]
fn one_hot_argmax_hand_computed_and_matches_cpu() {
    let cpu = cpu();
    // rows: a plain maximum, a tie (the first wins), all negative, all equal, one class
    let x = [0.1, 0.7, 0.2, 0.4, 0.1, 0.4, -3.0, -1.0, -2.0, 5.0, 5.0, 5.0];
    assert_eq!(one_hot(&cpu, 4, 3, &x), vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(one_hot(&cpu, 2, 1, &[-7.0, 3.0]), vec![1.0, 1.0]);
    let Some(gpu) = gpu() else { return };
    let mut r = rng(31);
    for &(rows, classes) in &[(1, 1), (1, 2), (7, 3), (64, 10), (130, 10), (65, 17), (3, 300), (300, 257)] {
        let mut x = uniform(&mut r, rows * classes, -1.0, 1.0);
        // ties at the maximum: a copy of the row's largest value at a later column, and a
        // row of equal values
        for row in 0..rows {
            let s = &mut x[row * classes..(row + 1) * classes];
            let (m, at) = s.iter().enumerate().fold((f32::NEG_INFINITY, 0), |(m, a), (j, &v)| if v > m { (v, j) } else { (m, a) });
            if row % 3 == 0 && at + 1 < classes {
                s[classes - 1] = m;
            }
            if row % 5 == 4 {
                s.fill(0.25);
            }
        }
        let want = one_hot(&cpu, rows, classes, &x);
        let got = one_hot(gpu, rows, classes, &x);
        assert_close(&format!("one_hot_argmax {rows}x{classes}"), &got, &want, 0.0, 0.0);
        for row in want.chunks(classes) {
            assert_eq!(row.iter().sum::<f32>(), 1.0, "one 1 per row");
        }
    }
}

#[test]
fn act_forward_matches_cpu_every_act() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for act in Act::ALL {
        for (s, &n) in LENS.iter().enumerate() {
            let x = act_inputs(n, 100 + s as u64);
            let want = act_fwd(&cpu, act, &x);
            let got = act_fwd(gpu, act, &x);
            assert!(got.iter().all(|v| v.is_finite()), "act_forward {act:?} n={n}: non-finite output");
            assert_close(&format!("act_forward {act:?} n={n}"), &got, &want, ACT_ATOL, ACT_RTOL);
        }
    }
}

#[test]
fn act_backward_matches_cpu_every_act() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for act in Act::ALL {
        for (s, &n) in LENS.iter().enumerate() {
            // y must be an output of the activation (the backward is written in terms of y).
            let x = act_inputs(n, 200 + s as u64);
            let y: Vec<f32> = x.iter().map(|&v| act.apply(v)).collect();
            let dy = uniform(&mut rng(300 + s as u64), n, -2.0, 2.0);
            let want = act_bwd(&cpu, act, &y, &dy);
            let got = act_bwd(gpu, act, &y, &dy);
            assert!(got.iter().all(|v| v.is_finite()), "act_backward {act:?} n={n}: non-finite output");
            assert_close(&format!("act_backward {act:?} n={n}"), &got, &want, ACT_ATOL, ACT_RTOL);
        }
    }
}

#[test]
fn add_mul_scale_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &n) in LENS.iter().enumerate() {
        let mut r = rng(400 + s as u64);
        let a = uniform(&mut r, n, -3.0, 3.0);
        let b = uniform(&mut r, n, -3.0, 3.0);
        for op in [Binary::Add, Binary::Mul] {
            let want = binary(&cpu, op, &a, &b);
            let got = binary(gpu, op, &a, &b);
            assert_close(&format!("{op:?} n={n}"), &got, &want, 0.0, ULP);
        }
        for alpha in [1.0, -0.5, 0.0, 3.7] {
            let want = scale(&cpu, alpha, &a);
            let got = scale(gpu, alpha, &a);
            assert_close(&format!("scale alpha={alpha} n={n}"), &got, &want, 0.0, ULP);
        }
    }
}

#[test]
fn axpy_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &n) in LENS.iter().enumerate() {
        let mut r = rng(500 + s as u64);
        let x = uniform(&mut r, n, -1.0, 1.0);
        let y0 = uniform(&mut r, n, -1.0, 1.0);
        for alpha in [1.0, -1.0, 0.25, -3.0] {
            let want = axpy(&cpu, alpha, &x, &y0);
            let got = axpy(gpu, alpha, &x, &y0);
            assert_close(&format!("axpy alpha={alpha} n={n}"), &got, &want, 1e-6, ULP);
        }
    }
}

#[test]
fn fill_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for &n in &LENS {
        for value in [0.0, -1.5, 3.25e7, f32::MIN_POSITIVE] {
            let want = fill(&cpu, value, n);
            let got = fill(gpu, value, n);
            assert_close(&format!("fill {value} n={n}"), &got, &want, 0.0, 0.0);
            assert!(want.iter().all(|&v| v == value), "cpu fill {value} n={n}");
        }
    }
}

/// (rows, cols_a, cols_b): 1x1 parts, odd and prime widths, rows over one 256-element
/// workgroup and total sizes over many workgroups.
const CONCAT_SHAPES: [(usize, usize, usize); 9] =
    [(1, 1, 1), (1, 7, 1), (3, 1, 5), (5, 13, 17), (64, 32, 1), (65, 33, 31), (130, 300, 7), (257, 1, 2), (97, 101, 103)];

#[test]
fn concat_cols_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, ca, cb)) in CONCAT_SHAPES.iter().enumerate() {
        let mut r = rng(600 + s as u64);
        let a = uniform(&mut r, rows * ca, -1.0, 1.0);
        let b = uniform(&mut r, rows * cb, -1.0, 1.0);
        let want = concat(&cpu, rows, &a, &b);
        let got = concat(gpu, rows, &a, &b);
        assert_close(&format!("concat_cols {rows}x({ca}+{cb})"), &got, &want, 0.0, 0.0);
    }
}

#[test]
fn split_cols_matches_cpu_and_inverts_concat() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, ca, cb)) in CONCAT_SHAPES.iter().enumerate() {
        let mut r = rng(700 + s as u64);
        let c = uniform(&mut r, rows * (ca + cb), -1.0, 1.0);
        let (wa, wb) = split(&cpu, rows, ca, cb, &c);
        let (ga, gb) = split(gpu, rows, ca, cb, &c);
        assert_close(&format!("split_cols a {rows}x({ca}+{cb})"), &ga, &wa, 0.0, 0.0);
        assert_close(&format!("split_cols b {rows}x({ca}+{cb})"), &gb, &wb, 0.0, 0.0);
        // Round trip on the GPU: concat(split(c)) == c.
        let back = concat(gpu, rows, &ga, &gb);
        assert_close(&format!("concat(split(c)) {rows}x({ca}+{cb})"), &back, &c, 0.0, 0.0);
    }
}

/// Launching with `n` smaller than the buffers must leave the tail untouched on both backends.
#[test]
fn elementwise_ops_leave_elements_past_n_untouched() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    fn go<B: Backend>(be: &B, op: Op, len: usize) -> Vec<Vec<f32>> {
        let mut r = rng(800);
        let nbuf = op.slots().len();
        let bufs: Vec<B::Buf> = (0..nbuf).map(|_| be.upload_f32(&uniform(&mut r, len, 0.5, 1.0)).unwrap()).collect();
        let refs: Vec<&B::Buf> = bufs.iter().collect();
        be.launch(op, &refs).unwrap();
        bufs.iter().map(|b| be.read_f32(b).unwrap()).collect()
    }
    for &(n, len) in &[(1usize, 2usize), (255, 300), (257, 600), (1000, 1100)] {
        let ops = [
            Op::ActForward { n, act: Act::Sigmoid },
            Op::ActBackward { n, act: Act::Tanh },
            Op::Add { n },
            Op::Mul { n },
            Op::Scale { n, alpha: 2.0 },
            Op::Axpy { n, alpha: -1.0 },
            Op::Fill { n, value: 9.0 },
        ];
        for op in ops {
            let want = go(&cpu, op.clone(), len);
            let got = go(gpu, op.clone(), len);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_close(&format!("{op:?} buffer {k} (len {len})"), g, w, ACT_ATOL, ACT_RTOL);
                assert_eq!(&g[n..], &w[n..], "{op:?} buffer {k}: elements past n={n} changed");
            }
        }
    }
}

#[test]
fn elementwise_rejects_bad_shapes() {
    let cpu = cpu();
    let a = cpu.alloc(4, DType::F32).unwrap();
    let short = cpu.alloc(3, DType::F32).unwrap();
    let e = cpu.add(&a, &a.clone(), &short).unwrap_err().to_string();
    assert!(e.contains("add"), "{e}");
    let e = cpu.act_forward(Act::Relu, &a, &a.clone()).unwrap_err().to_string();
    assert!(e.contains("aliasing"), "{e}");
    let u = cpu.alloc(4, DType::U32).unwrap();
    let e = cpu.scale(1.0, &u, &a).unwrap_err().to_string();
    assert!(e.contains("F32"), "{e}");
}

/// The CPU twins against values computed by hand.
#[test]
fn cpu_elementwise_hand_computed_values() {
    let cpu = cpu();
    let ln2 = std::f32::consts::LN_2;
    let ln3 = 3.0f32.ln();
    // Forward: relu(-1) = 0, relu(2) = 2; sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4;
    // tanh(ln(3)/2) = (3 - 1) / (3 + 1) = 1/2; softplus(0) = ln 2, softplus(ln 3) = ln 4.
    let cases: [(Act, &[f32], &[f32]); 5] = [
        (Act::Identity, &[-1.5, 0.0, 2.0], &[-1.5, 0.0, 2.0]),
        (Act::Relu, &[-1.0, 0.0, 2.0], &[0.0, 0.0, 2.0]),
        (Act::Sigmoid, &[0.0, ln3, -ln3], &[0.5, 0.75, 0.25]),
        (Act::Tanh, &[0.0, 0.5 * ln3, -0.5 * ln3], &[0.0, 0.5, -0.5]),
        (Act::Softplus, &[0.0, ln3, -30.0], &[ln2, 2.0 * ln2, (-30.0f32).exp()]),
    ];
    for (act, x, y) in cases {
        assert_close(&format!("cpu act_forward {act:?}"), &act_fwd(&cpu, act, x), y, 1e-6, 1e-5);
    }
    // Backward from the output: identity 1; relu 1 if y > 0 else 0; sigmoid y(1 - y);
    // tanh 1 - y^2; softplus 1 - e^-y (y = ln 2 -> 1/2, y = ln 4 -> 3/4).
    let dy = [2.0, 2.0, 2.0];
    let cases: [(Act, &[f32], &[f32]); 5] = [
        (Act::Identity, &[-1.0, 0.0, 5.0], &[2.0, 2.0, 2.0]),
        (Act::Relu, &[0.0, 1.0, 3.0], &[0.0, 2.0, 2.0]),
        (Act::Sigmoid, &[0.5, 0.75, 0.0], &[0.5, 0.375, 0.0]),
        (Act::Tanh, &[0.0, 0.5, -0.5], &[2.0, 1.5, 1.5]),
        (Act::Softplus, &[ln2, 2.0 * ln2, 0.0], &[1.0, 1.5, 0.0]),
    ];
    for (act, y, dx) in cases {
        assert_close(&format!("cpu act_backward {act:?}"), &act_bwd(&cpu, act, y, &dy), dx, 1e-6, 1e-5);
    }
    assert_eq!(binary(&cpu, Binary::Add, &[1.0, 2.0, -3.0], &[3.0, 4.0, 3.0]), [4.0, 6.0, 0.0]);
    assert_eq!(binary(&cpu, Binary::Mul, &[1.0, 2.0, -3.0], &[3.0, 4.0, 0.5]), [3.0, 8.0, -1.5]);
    assert_eq!(scale(&cpu, -2.0, &[1.0, 0.5, -4.0]), [-2.0, -1.0, 8.0]);
    assert_eq!(axpy(&cpu, 2.0, &[1.0, 2.0], &[1.0, 1.0]), [3.0, 5.0]);
    assert_eq!(fill(&cpu, 7.5, 3), [7.5, 7.5, 7.5]);
    // a = [[1, 2], [3, 4]], b = [[5], [6]] -> c = [[1, 2, 5], [3, 4, 6]].
    assert_eq!(concat(&cpu, 2, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0]), [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    let (a, b) = split(&cpu, 2, 2, 1, &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    assert_eq!((a.as_slice(), b.as_slice()), (&[1.0, 2.0, 3.0, 4.0][..], &[5.0, 6.0][..]));
}
