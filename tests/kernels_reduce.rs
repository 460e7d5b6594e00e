//! Reductions (shaders/reduce.wgsl): column sums (overwrite and accumulate), row softmax and
//! its backward, per-column batch mean and variance. GPU vs the CPU twin on awkward shapes:
//! 1 x 1, a single row or column, odd and prime sizes, columns over one 32-column workgroup,
//! rows over one 64-row workgroup and over the 8 row lanes, plus hand-computed CPU values.
//!
//! Write-only outputs start as NaN so a column or row the kernel misses fails the comparison.
//!
//! Tolerances (|gpu - cpu| <= atol + rtol * |cpu|):
//! - col_sum, mean: the CPU sums in f64, the GPU in f32 over 8 strided lanes then across lanes;
//!   for up to 1000 terms in [-1, 1] (|sum| <~ 40) the f32 rounding error is ~ (rows / 8 + 8)
//!   ulps of the partial sums, well under 1e-4: atol 1e-4 + rtol 1e-5.
//! - var: two-pass on both sides (mean first); inputs are offset by 3 to make a one-pass
//!   formula fail; error ~ the same ulps of sum (x - mean)^2 / rows: atol 1e-5 + rtol 1e-4.
//! - softmax_rows: same order of operations as the CPU (max, exp, sum, divide), so only exp
//!   differs (Vulkan: (3 + 2|x|) ulp; outputs above 1e-6 have |x - max| < 14, ~2e-6
//!   relative; smaller ones are covered by atol): atol 1e-6 + rtol 2e-5.
//! - softmax_backward: products and a dot product in the same order as the CPU; an FMA
//!   contraction can change the dot by ~1 ulp per term: atol 1e-6 + rtol 1e-5.
mod common;

use common::*;
use ssvae::{Backend, Kernels};

/// (rows, cols) for the column reductions: 1 x 1, one row / one column, one full workgroup
/// (8 lanes x 32 columns), just over it in both directions, long columns, wide rows.
const COL_SHAPES: [(usize, usize); 13] =
    [(1, 1), (1, 33), (7, 1), (8, 32), (9, 33), (2, 64), (65, 31), (64, 65), (257, 67), (1000, 3), (3, 1000), (513, 129), (131, 97)];

/// (rows, cols) for the row kernels (one invocation per row, 64 rows per workgroup).
const ROW_SHAPES: [(usize, usize); 11] =
    [(1, 1), (1, 10), (63, 1), (64, 10), (65, 10), (130, 7), (257, 3), (5, 300), (129, 2), (1000, 11), (37, 61)];

fn nan_buf<B: Backend>(be: &B, n: usize) -> B::Buf {
    be.upload_f32(&vec![f32::NAN; n]).unwrap()
}

fn col_sum<B: Backend>(be: &B, rows: usize, cols: usize, accumulate: bool, x: &[f32], out0: &[f32]) -> Vec<f32> {
    let xb = be.upload_f32(x).unwrap();
    let ob = if accumulate { be.upload_f32(out0).unwrap() } else { nan_buf(be, cols) };
    be.col_sum(rows, cols, accumulate, &xb, &ob).unwrap();
    be.read_f32(&ob).unwrap()
}

fn softmax<B: Backend>(be: &B, rows: usize, cols: usize, x: &[f32]) -> Vec<f32> {
    let xb = be.upload_f32(x).unwrap();
    let yb = nan_buf(be, rows * cols);
    be.softmax_rows(rows, cols, &xb, &yb).unwrap();
    be.read_f32(&yb).unwrap()
}

fn softmax_bwd<B: Backend>(be: &B, rows: usize, cols: usize, y: &[f32], dy: &[f32]) -> Vec<f32> {
    let (yb, dyb) = (be.upload_f32(y).unwrap(), be.upload_f32(dy).unwrap());
    let dxb = nan_buf(be, rows * cols);
    be.softmax_backward(rows, cols, &yb, &dyb, &dxb).unwrap();
    be.read_f32(&dxb).unwrap()
}

fn mean_var<B: Backend>(be: &B, rows: usize, cols: usize, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let xb = be.upload_f32(x).unwrap();
    let (mb, vb) = (nan_buf(be, cols), nan_buf(be, cols));
    be.mean_var(rows, cols, &xb, &mb, &vb).unwrap();
    (be.read_f32(&mb).unwrap(), be.read_f32(&vb).unwrap())
}

#[test]
fn col_sum_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in COL_SHAPES.iter().enumerate() {
        let x = uniform(&mut rng(10 + s as u64), rows * cols, -1.0, 1.0);
        let want = col_sum(&cpu, rows, cols, false, &x, &[]);
        let got = col_sum(gpu, rows, cols, false, &x, &[]);
        assert_close(&format!("col_sum {rows}x{cols}"), &got, &want, 1e-4, 1e-5);
    }
}

#[test]
fn col_sum_accumulate_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in COL_SHAPES.iter().enumerate() {
        let mut r = rng(30 + s as u64);
        let x = uniform(&mut r, rows * cols, -1.0, 1.0);
        let out0 = uniform(&mut r, cols, -5.0, 5.0);
        let want = col_sum(&cpu, rows, cols, true, &x, &out0);
        let got = col_sum(gpu, rows, cols, true, &x, &out0);
        assert_close(&format!("col_sum accumulate {rows}x{cols}"), &got, &want, 1e-4, 1e-5);
        // Accumulating must differ from overwriting (out0 is nonzero), on the GPU too.
        let plain = col_sum(gpu, rows, cols, false, &x, &[]);
        let moved: Vec<f32> = plain.iter().zip(&out0).map(|(p, o)| p + o).collect();
        assert_close(&format!("col_sum accumulate = out0 + sum {rows}x{cols}"), &got, &moved, 1e-4, 1e-5);
    }
}

#[test]
fn softmax_rows_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in ROW_SHAPES.iter().enumerate() {
        let mut x = uniform(&mut rng(50 + s as u64), rows * cols, -5.0, 5.0);
        // Large logits in some rows (stability: no overflow, max subtracted), equal logits in
        // another.
        for r in (0..rows).step_by(3) {
            for j in 0..cols {
                x[r * cols + j] = if (r + j) % 2 == 0 { 30.0 } else { -30.0 } + x[r * cols + j] * 0.01;
            }
        }
        if rows > 1 {
            x[cols..2 * cols].fill(2.5);
        }
        // Gaps over 88 (exp overflows f32 unless the row maximum is subtracted): the first
        // element low, a later one high.
        for r in (2..rows).step_by(5) {
            x[r * cols] = -60.0;
            x[r * cols + cols - 1] = 60.0;
        }
        let want = softmax(&cpu, rows, cols, &x);
        let got = softmax(gpu, rows, cols, &x);
        assert!(got.iter().all(|v| v.is_finite()), "softmax {rows}x{cols}: non-finite output");
        assert_close(&format!("softmax_rows {rows}x{cols}"), &got, &want, 1e-6, 2e-5);
        for r in 0..rows {
            let sum: f32 = got[r * cols..(r + 1) * cols].iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "softmax {rows}x{cols}: GPU row {r} sums to {sum}");
        }
    }
}

#[test]
fn softmax_backward_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in ROW_SHAPES.iter().enumerate() {
        let mut r = rng(70 + s as u64);
        let x = uniform(&mut r, rows * cols, -4.0, 4.0);
        let y = softmax(&cpu, rows, cols, &x);
        let dy = uniform(&mut r, rows * cols, -2.0, 2.0);
        let want = softmax_bwd(&cpu, rows, cols, &y, &dy);
        let got = softmax_bwd(gpu, rows, cols, &y, &dy);
        assert_close(&format!("softmax_backward {rows}x{cols}"), &got, &want, 1e-6, 1e-5);
    }
}

#[test]
fn mean_var_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    for (s, &(rows, cols)) in COL_SHAPES.iter().enumerate() {
        // Offset from zero so that the variance is small next to the mean squared.
        let x: Vec<f32> = uniform(&mut rng(90 + s as u64), rows * cols, -1.0, 1.0).iter().map(|v| v + 3.0).collect();
        let (wm, wv) = mean_var(&cpu, rows, cols, &x);
        let (gm, gv) = mean_var(gpu, rows, cols, &x);
        assert_close(&format!("mean_var mean {rows}x{cols}"), &gm, &wm, 1e-4, 1e-5);
        assert_close(&format!("mean_var var {rows}x{cols}"), &gv, &wv, 1e-5, 1e-4);
        if rows == 1 {
            assert!(gv.iter().all(|&v| v == 0.0), "mean_var 1x{cols}: variance of one row must be 0, GPU gave {gv:?}");
        }
    }
}

/// The CPU twins against values computed by hand.
#[test]
fn cpu_reduce_hand_computed_values() {
    let cpu = cpu();
    // x = [[1, 2], [3, 4], [5, -6]]: column sums [9, 0]; accumulated onto [10, -1]: [19, -1].
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, -6.0];
    assert_eq!(col_sum(&cpu, 3, 2, false, &x, &[]), [9.0, 0.0]);
    assert_eq!(col_sum(&cpu, 3, 2, true, &x, &[10.0, -1.0]), [19.0, -1.0]);
    // softmax([0, ln 3]) = [1/4, 3/4]; softmax([c, c, c, c]) = 1/4 each; shift invariance at 1000.
    let ln3 = 3.0f32.ln();
    assert_close("cpu softmax [0, ln 3]", &softmax(&cpu, 1, 2, &[0.0, ln3]), &[0.25, 0.75], 1e-7, 1e-6);
    assert_close("cpu softmax [1000, 1000 + ln 3]", &softmax(&cpu, 1, 2, &[1000.0, 1000.0 + ln3]), &[0.25, 0.75], 1e-7, 1e-4);
    assert_close("cpu softmax equal", &softmax(&cpu, 1, 4, &[7.0; 4]), &[0.25; 4], 0.0, 1e-7);
    assert_eq!(softmax(&cpu, 1, 1, &[-3.0]), [1.0]);
    // y = [1/4, 3/4], dy = [1, 0]: dot = 1/4, dx = [1/4 * 3/4, 3/4 * -1/4] = [3/16, -3/16].
    assert_close("cpu softmax_backward", &softmax_bwd(&cpu, 1, 2, &[0.25, 0.75], &[1.0, 0.0]), &[0.1875, -0.1875], 0.0, 1e-7);
    // A constant dy has zero gradient through softmax.
    assert_close("cpu softmax_backward const dy", &softmax_bwd(&cpu, 1, 3, &[0.2, 0.3, 0.5], &[4.0; 3]), &[0.0; 3], 1e-6, 0.0);
    // Columns [1, 3] and [2, 2]: mean [2, 2], biased variance [1, 0].
    let (m, v) = mean_var(&cpu, 2, 2, &[1.0, 2.0, 3.0, 2.0]);
    assert_eq!((m, v), (vec![2.0, 2.0], vec![1.0, 0.0]));
    // Column [1, 2, 3, 4]: mean 2.5, biased variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    let (m, v) = mean_var(&cpu, 4, 1, &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!((m, v), (vec![2.5], vec![1.25]));
}
