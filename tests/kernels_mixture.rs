//! Kernels of objectives summed over a discrete latent (shaders/mixture.wgsl): GPU vs the CPU
//! twin on awkward shapes (1 x 1, one class, odd and prime widths, rows over one workgroup,
//! features over one 64-wide workgroup), and central finite differences of every gradient on
//! the CPU (method and tolerances of tests/common/fd.rs: h 1e-2, atol 2e-4, rtol 2e-3).
//!
//! GPU tolerances (|gpu - cpu| <= atol + rtol * |cpu|): repeat_rows and row_scale are exact
//! copies / one product (1e-6 relative; the backward sums `copies` terms in the same order:
//! 1e-6 + 1e-6 rel); weighted_row_sum sums `classes` products in f32 on both (1e-5 rel);
//! categorical_kl, consistency_kl and kl_gaussians have a few exp / log per element (Vulkan's exp error of
//! (3 + 2|x|) ulp at |x| <= 6 here, log 2^-21 absolute): atol 1e-5 + 2e-6 * cols, rtol 1e-4.
mod common;

use common::*;
use ssvae::backend::UNLABELED;
use ssvae::Backend;
use ssvae::Kernels;

const SHAPES: [(usize, usize); 8] = [(1, 1), (1, 65), (3, 1), (2, 2), (7, 13), (65, 10), (13, 31), (130, 200)];

fn nan_buf<B: Backend>(be: &B, n: usize) -> B::Buf {
    be.upload_f32(&vec![f32::NAN; n]).unwrap()
}

fn repeat<B: Backend>(be: &B, rows: usize, cols: usize, copies: usize, x: &[f32], dout: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (xb, db) = (be.upload_f32(x).unwrap(), be.upload_f32(dout).unwrap());
    let (out, dx) = (nan_buf(be, rows * copies * cols), nan_buf(be, rows * cols));
    be.repeat_rows(rows, cols, copies, &xb, &out).unwrap();
    be.repeat_rows_backward(rows, cols, copies, &db, &dx).unwrap();
    (be.read_f32(&out).unwrap(), be.read_f32(&dx).unwrap())
}

fn row_scale<B: Backend>(be: &B, rows: usize, cols: usize, alpha: f32, x: &[f32], w: &[f32]) -> Vec<f32> {
    let (xb, wb, y) = (be.upload_f32(x).unwrap(), be.upload_f32(w).unwrap(), nan_buf(be, rows * cols));
    be.row_scale(rows, cols, alpha, &xb, &wb, &y).unwrap();
    be.read_f32(&y).unwrap()
}

fn wsum<B: Backend>(be: &B, rows: usize, k: usize, scale: f32, l: &[f32], w: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (lb, wb) = (be.upload_f32(l).unwrap(), be.upload_f32(w).unwrap());
    let (out, dw) = (nan_buf(be, rows), nan_buf(be, rows * k));
    be.weighted_row_sum(rows, k, scale, &lb, &wb, &out, &dw).unwrap();
    (be.read_f32(&out).unwrap(), be.read_f32(&dw).unwrap())
}

fn cat_kl<B: Backend>(be: &B, rows: usize, k: usize, scale: f32, logits: &[f32], lp: &[f32], y: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let (lb, pb, yb) = (be.upload_f32(logits).unwrap(), be.upload_f32(lp).unwrap(), be.upload_u32(y).unwrap());
    let (loss, dl) = (nan_buf(be, rows), nan_buf(be, rows * k));
    be.categorical_kl(rows, k, scale, &lb, &pb, &yb, &loss, &dl).unwrap();
    (be.read_f32(&loss).unwrap(), be.read_f32(&dl).unwrap())
}

fn cons_kl<B: Backend>(be: &B, rows: usize, k: usize, scale: f32, logits: &[f32], target: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (lb, tb) = (be.upload_f32(logits).unwrap(), be.upload_f32(target).unwrap());
    let (loss, dl) = (nan_buf(be, rows), nan_buf(be, rows * k));
    be.consistency_kl(rows, k, scale, &lb, &tb, &loss, &dl).unwrap();
    (be.read_f32(&loss).unwrap(), be.read_f32(&dl).unwrap())
}

#[allow(clippy::type_complexity)]
fn klg<B: Backend>(be: &B, rows: usize, cols: usize, scale: f32, v: [&[f32]; 4]) -> [Vec<f32>; 4] {
    let b: Vec<B::Buf> = v.iter().map(|x| be.upload_f32(x).unwrap()).collect();
    let (loss, a, c, d) = (nan_buf(be, rows), nan_buf(be, rows * cols), nan_buf(be, rows * cols), nan_buf(be, rows * cols));
    be.kl_gaussians(rows, cols, scale, &b[0], &b[1], &b[2], &b[3], &loss, &a, &c, &d).unwrap();
    [&loss, &a, &c, &d].map(|x| be.read_f32(x).unwrap())
}

/// A log prior: random positive masses, normalised.
fn log_prior(r: &mut rand::rngs::StdRng, k: usize) -> Vec<f32> {
    let m = uniform(r, k, 0.2, 1.0);
    let s: f32 = m.iter().sum();
    m.iter().map(|x| (x / s).ln()).collect()
}

/// Labels: every third row unlabeled, the others a class.
fn labels(rows: usize, k: usize) -> Vec<u32> {
    (0..rows).map(|r| if r % 3 == 1 { UNLABELED } else { (r % k) as u32 }).collect()
}

#[test]
fn mixture_kernels_gpu_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    let mut r = rng(11);
    for &(rows, cols) in &SHAPES {
        for copies in [1, 3, 15] {
            let x = uniform(&mut r, rows * cols, -2.0, 2.0);
            let d = uniform(&mut r, rows * copies * cols, -2.0, 2.0);
            let (a, b) = (repeat(&cpu, rows, cols, copies, &x, &d), repeat(gpu, rows, cols, copies, &x, &d));
            assert_close(&format!("repeat_rows {rows}x{cols}x{copies}"), &b.0, &a.0, 0.0, 0.0);
            assert_close(&format!("repeat_rows_backward {rows}x{cols}x{copies}"), &b.1, &a.1, 1e-6, 1e-6);
        }
        let (x, w) = (uniform(&mut r, rows * cols, -3.0, 3.0), uniform(&mut r, rows, -1.0, 1.0));
        assert_close(
            &format!("row_scale {rows}x{cols}"),
            &row_scale(gpu, rows, cols, 0.7, &x, &w),
            &row_scale(&cpu, rows, cols, 0.7, &x, &w),
            1e-7,
            1e-6,
        );
        let (k, scale) = (cols, 0.25);
        let (l, w) = (uniform(&mut r, rows * k, 0.0, 50.0), uniform(&mut r, rows * k, 0.0, 1.0));
        let (a, b) = (wsum(&cpu, rows, k, scale, &l, &w), wsum(gpu, rows, k, scale, &l, &w));
        assert_close(&format!("weighted_row_sum {rows}x{k}"), &b.0, &a.0, 1e-5, 1e-5);
        assert_close(&format!("weighted_row_sum dw {rows}x{k}"), &b.1, &a.1, 0.0, 0.0);
        let (logits, lp, y) = (uniform(&mut r, rows * k, -6.0, 6.0), log_prior(&mut r, k), labels(rows, k));
        let (a, b) = (cat_kl(&cpu, rows, k, -0.5, &logits, &lp, &y), cat_kl(gpu, rows, k, -0.5, &logits, &lp, &y));
        let atol = 1e-5 + 2e-6 * k as f32;
        assert_close(&format!("categorical_kl loss {rows}x{k}"), &b.0, &a.0, atol, 1e-4);
        assert_close(&format!("categorical_kl dlogits {rows}x{k}"), &b.1, &a.1, atol, 1e-4);
        let target = uniform(&mut r, rows * k, -6.0, 6.0);
        let (a, b) = (cons_kl(&cpu, rows, k, 0.3, &logits, &target), cons_kl(gpu, rows, k, 0.3, &logits, &target));
        assert_close(&format!("consistency_kl loss {rows}x{k}"), &b.0, &a.0, atol, 1e-4);
        assert_close(&format!("consistency_kl dlogits {rows}x{k}"), &b.1, &a.1, atol, 1e-4);
        let v: Vec<Vec<f32>> = (0..4).map(|i| uniform(&mut r, rows * cols, -3.0, 3.0 - i as f32 % 2.0)).collect();
        let (a, b) = (klg(&cpu, rows, cols, 1.5, [&v[0], &v[1], &v[2], &v[3]]), klg(gpu, rows, cols, 1.5, [&v[0], &v[1], &v[2], &v[3]]));
        for (i, what) in ["loss", "dmu_q", "dlogvar_q", "dlogvar_p"].iter().enumerate() {
            assert_close(&format!("kl_gaussians {what} {rows}x{cols}"), &b[i], &a[i], 1e-5 + 2e-6 * cols as f32, 1e-4);
        }
    }
}

#[test]
fn mixture_kernels_hand_values() {
    let cpu = cpu();
    // KL(N(1, e^0) || N(0, e^ln4)) = 0.5 (ln 4 - 0 + (1 + 1) / 4 - 1) = 0.5 ln 4 - 0.25
    let [loss, dmq, dlq, dlp] = klg(&cpu, 1, 1, 1.0, [&[1.0], &[0.0], &[0.0], &[4f32.ln()]]);
    assert!((loss[0] - (0.5 * 4f32.ln() - 0.25)).abs() < 1e-6, "{loss:?}");
    assert!((dmq[0] - 0.25).abs() < 1e-6 && (dlq[0] + 0.375).abs() < 1e-6 && (dlp[0] - 0.25).abs() < 1e-6, "{dmq:?} {dlq:?} {dlp:?}");
    // against N(0, I) the general KL equals kl_normal
    let mut r = rng(3);
    let (mu, lv) = (uniform(&mut r, 12, -2.0, 2.0), uniform(&mut r, 12, -2.0, 2.0));
    let [l1, ..] = klg(&cpu, 3, 4, 1.0, [&mu, &lv, &[0.0; 12], &[0.0; 12]]);
    let (mb, lb, l2, d1, d2) =
        (cpu.upload_f32(&mu).unwrap(), cpu.upload_f32(&lv).unwrap(), nan_buf(&cpu, 3), nan_buf(&cpu, 12), nan_buf(&cpu, 12));
    cpu.kl_normal(3, 4, 1.0, &mb, &lb, &l2, &d1, &d2).unwrap();
    assert_close("kl_gaussians vs kl_normal", &l1, &cpu.read_f32(&l2).unwrap(), 1e-5, 1e-5);
    // uniform q against a uniform prior: KL 0; a labeled row: -log p(y), zero gradient
    let lp = [(0.5f32).ln(), (0.25f32).ln(), (0.25f32).ln()];
    let (loss, dl) = cat_kl(&cpu, 2, 3, 1.0, &[0.0, 0.0, 0.0, 5.0, 1.0, 2.0], &[(1.0f32 / 3.0).ln(); 3], &[UNLABELED, 1]);
    assert!(loss[0].abs() < 1e-6 && dl[..3].iter().all(|d| d.abs() < 1e-6), "{loss:?} {dl:?}");
    assert!((loss[1] - 3f32.ln()).abs() < 1e-6 && dl[3..].iter().all(|&d| d == 0.0));
    let (loss, _) = cat_kl(&cpu, 1, 3, 1.0, &[1.0, 1.0, 1.0], &lp, &[UNLABELED]);
    // KL(uniform || (1/2, 1/4, 1/4)) = ln(1/3) - (ln 1/2 + 2 ln 1/4) / 3
    assert!((loss[0] - ((1.0f32 / 3.0).ln() - (lp[0] + 2.0 * lp[1]) / 3.0)).abs() < 1e-6);
    // consistency_kl: 0 with its gradient for equal rows (logits shifted by a constant too);
    // KL((1/2, 1/2) || (e^2, 1) / (e^2 + 1)) by hand; the gradient q - p
    let (loss, dl) = cons_kl(&cpu, 1, 3, 2.0, &[1.0, 2.0, 3.0], &[11.0, 12.0, 13.0]);
    assert!(loss[0].abs() < 1e-6 && dl.iter().all(|d| d.abs() < 1e-6), "{loss:?} {dl:?}");
    let (loss, dl) = cons_kl(&cpu, 1, 2, 1.0, &[2.0, 0.0], &[0.0, 0.0]);
    let q0 = 2f32.exp() / (2f32.exp() + 1.0);
    let want = 0.5 * (0.5f32 / q0).ln() + 0.5 * (0.5f32 / (1.0 - q0)).ln();
    assert!((loss[0] - want).abs() < 1e-6, "{loss:?} vs {want}");
    assert!((dl[0] - (q0 - 0.5)).abs() < 1e-6 && (dl[1] + (q0 - 0.5)).abs() < 1e-6, "{dl:?}");
    // repeat_rows row order: row r * copies + k is row r
    let (out, dx) = repeat(&cpu, 2, 2, 3, &[1.0, 2.0, 3.0, 4.0], &[1.0; 12]);
    assert_eq!(out, [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 3.0, 4.0]);
    assert_eq!(dx, [3.0; 4]);
}

#[test]
fn mixture_gradients_match_finite_differences() {
    use common::fd::{Report, TOL};
    let cpu = cpu();
    let mut rep = Report::new("mixture kernels");
    let mut r = rng(21);
    for &(rows, k) in &[(1, 1), (3, 4), (5, 7)] {
        // repeat_rows: d/dx <dout, repeat(x)> = repeat_rows_backward(dout)
        let copies = 3;
        let (x, d) = (uniform(&mut r, rows * k, -1.0, 1.0), uniform(&mut r, rows * copies * k, -1.0, 1.0));
        let (_, ana) = repeat(&cpu, rows, k, copies, &x, &d);
        rep.check(&format!("repeat_rows {rows}x{k}"), &x, &ana, TOL, &|xp| {
            repeat(&cpu, rows, k, copies, xp, &d).0.iter().zip(&d).map(|(a, b)| (*a as f64) * (*b as f64)).sum()
        });
        // weighted_row_sum: d/dw sum(out) = dw; d/dloss sum(out) = scale * w
        let scale = 0.7;
        let (l, w) = (uniform(&mut r, rows * k, 0.0, 3.0), uniform(&mut r, rows * k, 0.0, 1.0));
        let (_, dw) = wsum(&cpu, rows, k, scale, &l, &w);
        rep.check(&format!("weighted_row_sum dw {rows}x{k}"), &w, &dw, TOL, &|wp| {
            wsum(&cpu, rows, k, scale, &l, wp).0.iter().map(|&v| v as f64).sum()
        });
        let dl: Vec<f32> = w.iter().map(|v| scale * v).collect();
        rep.check(&format!("weighted_row_sum dloss {rows}x{k}"), &l, &dl, TOL, &|lp| {
            wsum(&cpu, rows, k, scale, lp, &w).0.iter().map(|&v| v as f64).sum()
        });
        // row_scale is linear in x: d/dx <c, y> = alpha * w[row] * c
        let (xs, ws, c) = (uniform(&mut r, rows * k, -1.0, 1.0), uniform(&mut r, rows, -1.0, 1.0), uniform(&mut r, rows * k, -1.0, 1.0));
        let ana = row_scale(&cpu, rows, k, 1.3, &c, &ws);
        rep.check(&format!("row_scale {rows}x{k}"), &xs, &ana, TOL, &|xp| {
            row_scale(&cpu, rows, k, 1.3, xp, &ws).iter().zip(&c).map(|(a, b)| (*a as f64) * (*b as f64)).sum()
        });
        // categorical_kl: labeled and unlabeled rows
        let (logits, lp, y) = (uniform(&mut r, rows * k, -3.0, 3.0), log_prior(&mut r, k), labels(rows, k));
        let y: Vec<u32> = if rows == 1 { vec![UNLABELED] } else { y };
        let (_, dl) = cat_kl(&cpu, rows, k, 0.8, &logits, &lp, &y);
        rep.check(&format!("categorical_kl {rows}x{k}"), &logits, &dl, TOL, &|xp| {
            cat_kl(&cpu, rows, k, 0.8, xp, &lp, &y).0.iter().map(|&v| v as f64).sum()
        });
        // consistency_kl w.r.t. its logits (the target is held fixed)
        let target = uniform(&mut r, rows * k, -3.0, 3.0);
        let (_, dl) = cons_kl(&cpu, rows, k, 0.8, &logits, &target);
        rep.check(&format!("consistency_kl {rows}x{k}"), &logits, &dl, TOL, &|xp| {
            cons_kl(&cpu, rows, k, 0.8, xp, &target).0.iter().map(|&v| v as f64).sum()
        });
        // kl_gaussians w.r.t. each of its four inputs (mu_p's gradient is -dmu_q)
        let v: Vec<Vec<f32>> = (0..4).map(|_| uniform(&mut r, rows * k, -1.5, 1.5)).collect();
        let [_, dmq, dlq, dlp] = klg(&cpu, rows, k, 0.9, [&v[0], &v[1], &v[2], &v[3]]);
        let dmp: Vec<f32> = dmq.iter().map(|g| -g).collect();
        for (i, ana) in [(0, &dmq), (1, &dlq), (2, &dmp), (3, &dlp)] {
            rep.check(&format!("kl_gaussians input {i} {rows}x{k}"), &v[i], ana, TOL.scaled(0.9), &|xp| {
                let mut args: Vec<&[f32]> = v.iter().map(|x| x.as_slice()).collect();
                args[i] = xp;
                klg(&cpu, rows, k, 0.9, [args[0], args[1], args[2], args[3]])[0].iter().map(|&v| v as f64).sum()
            });
        }
    }
    rep.finish();
}
