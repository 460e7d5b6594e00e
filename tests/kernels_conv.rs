//! Convolution, batch normalisation and dropout kernels: the CPU twins against direct loops
//! written from the definitions, the GPU against the CPU on awkward shapes, and every backward
//! against central finite differences (checker in tests/common/fd.rs).
mod common;

use common::fd::{Report, Tol, TOL};
use common::{assert_close, cpu, gpu, rng, uniform};
use rand::Rng;
use ssvae::backend::{Act, Conv2d, Op, Padding, COUNTER_LEN};
use ssvae::{Backend, DType};

fn geom(batch: usize, hw: (usize, usize), in_c: usize, out_c: usize, k: usize, stride: usize, padding: Padding) -> Conv2d {
    Conv2d::new("test", batch, (hw.0, hw.1, in_c), out_c, k, stride, padding).unwrap()
}

/// Shapes covering 1x1 kernels, odd sizes, strides 1..3, both paddings, one pixel, batch 1, and
/// sizes that are not a multiple of any tile.
fn geometries() -> Vec<Conv2d> {
    vec![
        geom(1, (1, 1), 1, 1, 1, 1, Padding::Same),
        geom(2, (5, 5), 3, 4, 3, 1, Padding::Same),
        geom(3, (7, 6), 2, 5, 3, 2, Padding::Same),
        geom(2, (8, 8), 4, 3, 3, 2, Padding::Same),
        geom(1, (9, 7), 3, 2, 5, 3, Padding::Valid),
        geom(2, (6, 6), 5, 7, 1, 1, Padding::Same),
        geom(2, (6, 5), 3, 2, 1, 2, Padding::Valid),
        geom(1, (4, 4), 1, 1, 4, 1, Padding::Same),
        // stride 1 without padding: the CPU adjoint runs as a forward convolution padded by k - 1
        geom(2, (7, 6), 3, 4, 3, 1, Padding::Valid),
        geom(3, (14, 14), 17, 9, 3, 2, Padding::Same),
        // batches of 4 or more samples: with two or more threads the CPU runs pieces of the
        // batch on the threads (uneven pieces here), each with one-thread products
        geom(9, (6, 5), 3, 4, 3, 1, Padding::Same),
        geom(7, (7, 7), 2, 3, 3, 2, Padding::Same),
    ]
}

fn x_index(c: &Conv2d, b: usize, y: usize, x: usize, ch: usize) -> usize {
    ((b * c.in_h + y) * c.in_w + x) * c.in_c + ch
}
fn y_index(c: &Conv2d, b: usize, y: usize, x: usize, ch: usize) -> usize {
    ((b * c.out_h + y) * c.out_w + x) * c.out_c + ch
}
fn w_index(c: &Conv2d, ky: usize, kx: usize, ci: usize, co: usize) -> usize {
    ((ky * c.kw + kx) * c.in_c + ci) * c.out_c + co
}

/// Calls `f(b, oy, ox, ky, kx, iy, ix)` for every (output pixel, tap) that lands inside the
/// input: the definition of the convolution's sparsity pattern.
fn for_each_tap(c: &Conv2d, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize)) {
    for b in 0..c.batch {
        for oy in 0..c.out_h {
            for ox in 0..c.out_w {
                for ky in 0..c.kh {
                    for kx in 0..c.kw {
                        let iy = (oy * c.stride + ky) as isize - c.pad_h as isize;
                        let ix = (ox * c.stride + kx) as isize - c.pad_w as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < c.in_h && (ix as usize) < c.in_w {
                            f(b, oy, ox, ky, kx, iy as usize, ix as usize);
                        }
                    }
                }
            }
        }
    }
}

fn direct_forward(c: &Conv2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    let mut y = vec![0f64; c.out_len()];
    for_each_tap(c, |b, oy, ox, ky, kx, iy, ix| {
        for co in 0..c.out_c {
            for ci in 0..c.in_c {
                y[y_index(c, b, oy, ox, co)] += x[x_index(c, b, iy, ix, ci)] as f64 * w[w_index(c, ky, kx, ci, co)] as f64;
            }
        }
    });
    y.iter().enumerate().map(|(i, &v)| (v + bias[i % c.out_c] as f64) as f32).collect()
}

fn direct_backward(c: &Conv2d, x: &[f32], w: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mut dx, mut dw) = (vec![0f64; c.in_len()], vec![0f64; c.w_len()]);
    for_each_tap(c, |b, oy, ox, ky, kx, iy, ix| {
        for co in 0..c.out_c {
            let g = dy[y_index(c, b, oy, ox, co)] as f64;
            for ci in 0..c.in_c {
                dx[x_index(c, b, iy, ix, ci)] += g * w[w_index(c, ky, kx, ci, co)] as f64;
                dw[w_index(c, ky, kx, ci, co)] += g * x[x_index(c, b, iy, ix, ci)] as f64;
            }
        }
    });
    (dx.iter().map(|&v| v as f32).collect(), dw.iter().map(|&v| v as f32).collect())
}

/// Runs the three conv kernels on a backend: (y, dx, dw, dx + bias, dw accumulated onto dw0).
fn run_conv<B: Backend>(be: &B, c: &Conv2d, x: &[f32], w: &[f32], bias: &[f32], dy: &[f32], dw0: &[f32]) -> [Vec<f32>; 5] {
    let (xb, wb, bb, dyb) =
        (be.upload_f32(x).unwrap(), be.upload_f32(w).unwrap(), be.upload_f32(bias).unwrap(), be.upload_f32(dy).unwrap());
    let bias_in = be.upload_f32(&bias.iter().cycle().take(c.in_c).copied().collect::<Vec<_>>()).unwrap();
    let y = be.alloc(c.out_len(), DType::F32).unwrap();
    let dx = be.alloc(c.in_len(), DType::F32).unwrap();
    let dxb = be.alloc(c.in_len(), DType::F32).unwrap();
    let dw = be.alloc(c.w_len(), DType::F32).unwrap();
    let dwacc = be.upload_f32(dw0).unwrap();
    be.launch(Op::Conv2dForward { conv: *c, bias: true }, &[&xb, &wb, &bb, &y]).unwrap();
    be.launch(Op::Conv2dBackwardInput { conv: *c, bias: false }, &[&dyb, &wb, be.placeholder(), &dx]).unwrap();
    be.launch(Op::Conv2dBackwardInput { conv: *c, bias: true }, &[&dyb, &wb, &bias_in, &dxb]).unwrap();
    be.launch(Op::Conv2dBackwardWeight { conv: *c, accumulate: false }, &[&xb, &dyb, be.placeholder(), &dw]).unwrap();
    be.launch(Op::Conv2dBackwardWeight { conv: *c, accumulate: true }, &[&xb, &dyb, be.placeholder(), &dwacc]).unwrap();
    [&y, &dx, &dxb, &dw, &dwacc].map(|b| be.read_f32(b).unwrap())
}

struct ConvCase {
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    dy: Vec<f32>,
    dw0: Vec<f32>,
}

fn case(c: Conv2d, seed: u64) -> ConvCase {
    let mut r = rng(seed);
    ConvCase {
        x: uniform(&mut r, c.in_len(), -1.0, 1.0),
        w: uniform(&mut r, c.w_len(), -1.0, 1.0),
        bias: uniform(&mut r, c.out_c.max(c.in_c), -1.0, 1.0)[..c.out_c].to_vec(),
        dy: uniform(&mut r, c.out_len(), -1.0, 1.0),
        dw0: uniform(&mut r, c.w_len(), -1.0, 1.0),
    }
}

#[test]
fn cpu_conv_matches_direct_loops() {
    let be = cpu();
    for (i, c) in geometries().into_iter().enumerate() {
        let k = case(c, i as u64);
        let [y, dx, dxb, dw, dwacc] = run_conv(&be, &c, &k.x, &k.w, &k.bias, &k.dy, &k.dw0);
        let (want_dx, want_dw) = direct_backward(&c, &k.x, &k.w, &k.dy);
        let tag = format!("{c:?}");
        assert_close(&format!("forward {tag}"), &y, &direct_forward(&c, &k.x, &k.w, &k.bias), 1e-4, 1e-4);
        assert_close(&format!("backward input {tag}"), &dx, &want_dx, 1e-4, 1e-4);
        let bias_in: Vec<f32> = k.bias.iter().cycle().take(c.in_c).copied().collect();
        let want_dxb: Vec<f32> = want_dx.iter().enumerate().map(|(i, v)| v + bias_in[i % c.in_c]).collect();
        assert_close(&format!("backward input + bias {tag}"), &dxb, &want_dxb, 1e-4, 1e-4);
        assert_close(&format!("backward weight {tag}"), &dw, &want_dw, 1e-4, 1e-4);
        let want_acc: Vec<f32> = want_dw.iter().zip(&k.dw0).map(|(a, b)| a + b).collect();
        assert_close(&format!("backward weight accumulate {tag}"), &dwacc, &want_acc, 1e-4, 1e-4);
    }
}

#[test]
fn gpu_conv_matches_cpu() {
    let Some(g) = gpu() else { return };
    let be = cpu();
    let mut shapes = geometries();
    // a feature map larger than one 64 x 64 tile in both GEMM dimensions
    shapes.push(geom(2, (12, 12), 8, 70, 3, 1, Padding::Same));
    for (i, c) in shapes.into_iter().enumerate() {
        let k = case(c, 100 + i as u64);
        let want = run_conv(&be, &c, &k.x, &k.w, &k.bias, &k.dy, &k.dw0);
        let got = run_conv(g, &c, &k.x, &k.w, &k.bias, &k.dy, &k.dw0);
        for (name, (a, b)) in ["forward", "backward input", "backward input + bias", "backward weight", "backward weight accumulate"]
            .iter()
            .zip(got.iter().zip(&want))
        {
            assert_close(&format!("{name} {c:?}"), a, b, 1e-4, 1e-4);
        }
    }
}

/// Split-K weight gradient: runs of `samples` samples into part, then sum_slices (plain and
/// accumulated onto dw0).
fn run_split<B: Backend>(be: &B, c: &Conv2d, samples: usize, x: &[f32], dy: &[f32], dw0: &[f32]) -> [Vec<f32>; 2] {
    let runs = c.batch.div_ceil(samples);
    let (xb, dyb) = (be.upload_f32(x).unwrap(), be.upload_f32(dy).unwrap());
    let part = be.alloc(runs * c.w_len(), DType::F32).unwrap();
    let (dw, dwacc) = (be.alloc(c.w_len(), DType::F32).unwrap(), be.upload_f32(dw0).unwrap());
    be.launch(Op::Conv2dBackwardWeightSplit { conv: *c, samples }, &[&xb, &dyb, be.placeholder(), &part]).unwrap();
    be.launch(Op::SumSlices { n: c.w_len(), slices: runs, accumulate: false }, &[&part, &dw]).unwrap();
    be.launch(Op::SumSlices { n: c.w_len(), slices: runs, accumulate: true }, &[&part, &dwacc]).unwrap();
    [&dw, &dwacc].map(|b| be.read_f32(b).unwrap())
}

/// The split-K weight gradient (runs of 1 and 2 samples, so the last run is shorter for odd
/// batches, and runs spanning more than one tile row) equals the unsplit one, on the CPU and
/// on the GPU; the graph picks it for long reductions (`conv_weight_split_samples`).
#[test]
fn split_k_weight_gradient_matches_unsplit() {
    let be = cpu();
    let g = gpu();
    let mut shapes = geometries();
    shapes.push(geom(3, (12, 12), 8, 70, 3, 1, Padding::Same));
    for (i, c) in shapes.into_iter().enumerate().filter(|(_, c)| c.batch > 1) {
        let k = case(c, 300 + i as u64);
        let [_, _, _, dw, dwacc] = run_conv(&be, &c, &k.x, &k.w, &k.bias, &k.dy, &k.dw0);
        for samples in [1, 2] {
            let tag = format!("{c:?} in runs of {samples}");
            let [a, b] = run_split(&be, &c, samples, &k.x, &k.dy, &k.dw0);
            assert_close(&format!("cpu split {tag}"), &a, &dw, 1e-4, 1e-4);
            assert_close(&format!("cpu split accumulate {tag}"), &b, &dwacc, 1e-4, 1e-4);
            if let Some(g) = g {
                let [a, b] = run_split(g, &c, samples, &k.x, &k.dy, &k.dw0);
                assert_close(&format!("gpu split {tag}"), &a, &dw, 1e-4, 1e-4);
                assert_close(&format!("gpu split accumulate {tag}"), &b, &dwacc, 1e-4, 1e-4);
            }
        }
    }
    // the paper's first layer at batch 128: 13 runs of 10 images
    let c = geom(128, (28, 28), 1, 64, 3, 1, Padding::Same);
    assert_eq!(ssvae::backend::ops::conv_weight_split_samples(&c), 10);
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn conv_backward_matches_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("conv2d");
    for (i, c) in geometries().into_iter().enumerate().filter(|(_, c)| c.in_len() <= 600) {
        let k = case(c, 200 + i as u64);
        // L = sum(R * conv(x, w) + R * bias); dL/dx = backward_input(R), dL/dw = backward_weight(x, R)
        let [_, dx, _, dw, _] = run_conv(&be, &c, &k.x, &k.w, &k.bias, &k.dy, &k.dw0);
        let loss = |x: &[f32], w: &[f32]| dot(&run_conv(&be, &c, x, w, &k.bias, &k.dy, &k.dw0)[0], &k.dy);
        rep.check(&format!("dx {c:?}"), &k.x, &dx, TOL, &|x| loss(x, &k.w));
        rep.check(&format!("dw {c:?}"), &k.w, &dw, TOL, &|w| loss(&k.x, w));
    }
    rep.finish();
}

// ---------------------------------------------------------------------------------------------
// Batch normalisation
// ---------------------------------------------------------------------------------------------

struct BnOut {
    y: Vec<f32>,
    stats: Vec<f32>,
    running: [Vec<f32>; 2],
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    infer: Vec<f32>,
}

/// Training forward (stats + normalise), backward, and the inference-mode forward from the
/// updated running statistics.
#[allow(clippy::too_many_arguments)]
fn run_bn<B: Backend>(
    be: &B,
    rows: usize,
    cols: usize,
    act: Act,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    dy: &[f32],
    running: &[Vec<f32>; 2],
) -> BnOut {
    let up = |v: &[f32]| be.upload_f32(v).unwrap();
    let z = |n: usize| be.alloc(n, DType::F32).unwrap();
    let (xb, gb, bb, dyb, rm, rv) = (up(x), up(gamma), up(beta), up(dy), up(&running[0]), up(&running[1]));
    let (stats, y, dx, dg, db, stats2, infer) =
        (z(2 * cols), z(rows * cols), z(rows * cols), z(cols), z(cols), z(2 * cols), z(rows * cols));
    let chunks = ssvae::backend::ops::bn_chunks(rows);
    let (part, gpart) = (z(chunks * 2 * cols), z(chunks * 2 * cols));
    let (momentum, eps) = (0.1, 1e-5);
    be.launch(Op::BatchNormPartial { rows, cols, chunks }, &[&xb, &part]).unwrap();
    be.launch(Op::BatchNormStats { rows, cols, chunks, momentum, eps }, &[&part, &rm, &rv, &stats]).unwrap();
    be.launch(Op::BatchNormForward { rows, cols, act }, &[&xb, &stats, &gb, &bb, &y]).unwrap();
    be.launch(Op::BatchNormBackwardPartial { rows, cols, chunks, act }, &[&xb, &stats, &y, &dyb, &gpart]).unwrap();
    be.launch(Op::BatchNormBackwardReduce { cols, chunks }, &[&gpart, &dg, &db]).unwrap();
    be.launch(Op::BatchNormBackward { rows, cols, act }, &[&xb, &stats, &gb, &y, &dyb, &dg, &db, &dx]).unwrap();
    be.launch(Op::BatchNormRunning { cols, eps }, &[&rm, &rv, &stats2]).unwrap();
    be.launch(Op::BatchNormForward { rows, cols, act }, &[&xb, &stats2, &gb, &bb, &infer]).unwrap();
    let rd = |b| be.read_f32(b).unwrap();
    BnOut { y: rd(&y), stats: rd(&stats), running: [rd(&rm), rd(&rv)], dx: rd(&dx), dgamma: rd(&dg), dbeta: rd(&db), infer: rd(&infer) }
}

// 300, 1000 and 5000 rows: 2, 4 and 20 chunks of rows (bn_chunk_rows), the last one shorter
const BN_SHAPES: [(usize, usize); 8] = [(1, 1), (2, 3), (7, 5), (33, 1), (50, 37), (300, 70), (1000, 3), (5000, 33)];

fn bn_inputs(rows: usize, cols: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, [Vec<f32>; 2]) {
    let mut r = rng(seed);
    // columns with different offsets and scales, as real activations have
    let x: Vec<f32> =
        (0..rows * cols).map(|i| r.random_range(-1.0f32..1.0) * (1.0 + (i % cols) as f32 * 0.3) + (i % cols) as f32 * 0.5).collect();
    (
        x,
        uniform(&mut r, cols, 0.5, 1.5),
        uniform(&mut r, cols, -0.5, 0.5),
        uniform(&mut r, rows * cols, -1.0, 1.0),
        [uniform(&mut r, cols, -0.2, 0.2), uniform(&mut r, cols, 0.5, 1.5)],
    )
}

#[test]
fn cpu_batch_norm_matches_definition() {
    let be = cpu();
    // one chunk of rows, and 4 chunks combined (bn_chunk_rows)
    for (rows, cols) in [(7, 5), (1000, 3)] {
        check_bn_definition(&be, rows, cols);
    }
}

fn check_bn_definition(be: &ssvae::backend::cpu::CpuBackend, rows: usize, cols: usize) {
    let (x, gamma, beta, dy, running) = bn_inputs(rows, cols, 1);
    let o = run_bn(be, rows, cols, Act::Identity, &x, &gamma, &beta, &dy, &running);
    for c in 0..cols {
        let col: Vec<f64> = (0..rows).map(|r| x[r * cols + c] as f64).collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
        assert!((o.stats[c] as f64 - mean).abs() < 1e-5);
        assert!((o.stats[cols + c] as f64 - 1.0 / (var + 1e-5).sqrt()).abs() < 1e-4);
        assert!((o.running[0][c] as f64 - (0.9 * running[0][c] as f64 + 0.1 * mean)).abs() < 1e-5);
        let unbiased = var * rows as f64 / (rows - 1) as f64;
        assert!((o.running[1][c] as f64 - (0.9 * running[1][c] as f64 + 0.1 * unbiased)).abs() < 1e-4);
        // the normalised column has mean beta and standard deviation ~gamma
        let ys: Vec<f64> = (0..rows).map(|r| o.y[r * cols + c] as f64).collect();
        let ym = ys.iter().sum::<f64>() / rows as f64;
        let ysd = (ys.iter().map(|v| (v - ym).powi(2)).sum::<f64>() / rows as f64).sqrt();
        assert!((ym - beta[c] as f64).abs() < 1e-4 && (ysd - gamma[c] as f64).abs() < 1e-3, "column {c}: mean {ym} sd {ysd}");
        // inference mode uses the running statistics
        let want = gamma[c] * (x[c] - o.running[0][c]) / (o.running[1][c] + 1e-5).sqrt() + beta[c];
        assert!((o.infer[c] - want).abs() < 1e-4);
    }
}

#[test]
fn gpu_batch_norm_matches_cpu() {
    let Some(g) = gpu() else { return };
    let be = cpu();
    for (i, &(rows, cols)) in BN_SHAPES.iter().enumerate() {
        for act in [Act::Identity, Act::Relu, Act::Tanh] {
            let (x, gamma, beta, dy, running) = bn_inputs(rows, cols, 10 + i as u64);
            let a = run_bn(&be, rows, cols, act, &x, &gamma, &beta, &dy, &running);
            let b = run_bn(g, rows, cols, act, &x, &gamma, &beta, &dy, &running);
            let tag = format!("{rows}x{cols} {act:?}");
            assert_close(&format!("stats {tag}"), &b.stats, &a.stats, 1e-4, 1e-4);
            assert_close(&format!("running mean {tag}"), &b.running[0], &a.running[0], 1e-5, 1e-4);
            assert_close(&format!("running var {tag}"), &b.running[1], &a.running[1], 1e-5, 1e-4);
            assert_close(&format!("y {tag}"), &b.y, &a.y, 1e-4, 1e-4);
            assert_close(&format!("dx {tag}"), &b.dx, &a.dx, 1e-3, 1e-3);
            assert_close(&format!("dgamma {tag}"), &b.dgamma, &a.dgamma, 1e-3, 1e-3);
            assert_close(&format!("dbeta {tag}"), &b.dbeta, &a.dbeta, 1e-3, 1e-3);
            assert_close(&format!("inference {tag}"), &b.infer, &a.infer, 1e-4, 1e-4);
        }
    }
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let be = cpu();
    let mut rep = Report::new("batch_norm");
    // the normalisation couples all rows of a column, so the loss below sees the whole batch;
    // smooth activations only (ReLU's kink is exercised by the GPU/CPU comparison)
    for (i, &(rows, cols)) in BN_SHAPES[1..4].iter().chain([&(600, 2)]).enumerate() {
        for act in [Act::Identity, Act::Tanh, Act::Sigmoid] {
            let (x, gamma, beta, dy, running) = bn_inputs(rows, cols, 20 + i as u64);
            let o = run_bn(&be, rows, cols, act, &x, &gamma, &beta, &dy, &running);
            let loss = |x: &[f32], g: &[f32], b: &[f32]| dot(&run_bn(&be, rows, cols, act, x, g, b, &dy, &running).y, &dy);
            let tag = format!("{rows}x{cols} {act:?}");
            // x is normalised by its own spread: a smaller step keeps the truncation error down
            let tol = Tol { h: 1e-3, atol: 5e-4, ..TOL };
            // 600 rows (3 chunks): the f32 forward summed over 1200 outputs is noisier, so a
            // larger step (the normalisation is smooth at this scale)
            let tol = if rows > 100 { Tol { h: 1e-2, atol: 1e-3, ..tol } } else { tol };
            rep.check(&format!("dx {tag}"), &x, &o.dx, tol, &|x| loss(x, &gamma, &beta));
            rep.check(&format!("dgamma {tag}"), &gamma, &o.dgamma, TOL, &|g| loss(&x, g, &beta));
            rep.check(&format!("dbeta {tag}"), &beta, &o.dbeta, TOL, &|b| loss(&x, &gamma, b));
        }
    }
    rep.finish();
}

// ---------------------------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------------------------

fn run_dropout<B: Backend>(be: &B, n: usize, rate: f32, stream: u32, ctr: &[u32; COUNTER_LEN], x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (c, xb) = (be.upload_u32(ctr).unwrap(), be.upload_f32(x).unwrap());
    let (y, m) = (be.alloc(n, DType::F32).unwrap(), be.alloc(n, DType::F32).unwrap());
    be.launch(Op::Dropout { n, rate, stream }, &[&c, &xb, &y, &m]).unwrap();
    (be.read_f32(&y).unwrap(), be.read_f32(&m).unwrap())
}

#[test]
fn dropout_masks_are_identical_on_both_backends_and_drop_the_rate() {
    let be = cpu();
    let g = gpu();
    for (n, rate) in [(1usize, 0.5f32), (7, 0.0), (1000, 0.5), (100_003, 0.3)] {
        let x = uniform(&mut rng(n as u64), n, -1.0, 1.0);
        let ctr = ssvae::rng::counter(42, 7);
        let (y, m) = run_dropout(&be, n, rate, 3, &ctr, &x);
        let keep = 1.0 / (1.0 - rate);
        assert!(m.iter().all(|&v| v == 0.0 || v == keep), "mask values are 0 or 1/(1-rate)");
        for i in 0..n {
            assert_eq!(y[i], x[i] * m[i]);
        }
        if n >= 1000 {
            let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
            let sd = (rate as f64 * (1.0 - rate as f64) / n as f64).sqrt();
            assert!((dropped - rate as f64).abs() < 5.0 * sd, "dropped {dropped} of the units, rate {rate}");
            // another step or stream draws another mask
            let (_, m2) = run_dropout(&be, n, rate, 3, &ssvae::rng::counter(42, 8), &x);
            let (_, m3) = run_dropout(&be, n, rate, 4, &ctr, &x);
            assert!(m2 != m && m3 != m);
        }
        if rate == 0.0 {
            assert_eq!(y, x);
        }
        if let Some(g) = g {
            let (gy, gm) = run_dropout(g, n, rate, 3, &ctr, &x);
            assert_eq!(gm, m, "GPU mask differs (n = {n})");
            assert_eq!(gy, y);
        }
    }
}

#[test]
fn dropout_gradient_matches_finite_differences() {
    // y = x * mask, so dL/dx = dL/dy * mask: the backward is Op::Mul with the kept mask
    let be = cpu();
    let n = 40;
    let mut r = rng(5);
    let (x, dy) = (uniform(&mut r, n, -1.0, 1.0), uniform(&mut r, n, -1.0, 1.0));
    let ctr = ssvae::rng::counter(1, 2);
    let (_, mask) = run_dropout(&be, n, 0.5, 0, &ctr, &x);
    let grad: Vec<f32> = dy.iter().zip(&mask).map(|(a, b)| a * b).collect();
    let mut rep = Report::new("dropout");
    rep.check("dx", &x, &grad, TOL, &|x| dot(&run_dropout(&be, n, 0.5, 0, &ctr, x).0, &dy));
    rep.finish();
}

#[test]
fn unsupported_convolutions_are_rejected_with_the_reason() {
    let err = |r: ssvae::Result<Conv2d>| r.unwrap_err().to_string();
    assert!(err(Conv2d::new("enc0", 1, (28, 28, 1), 8, 13, 1, Padding::Same)).contains("kernel size 13"));
    assert!(err(Conv2d::new("enc0", 1, (28, 28, 1), 8, 3, 5, Padding::Same)).contains("stride 5"));
    assert!(err(Conv2d::new("enc0", 1, (2, 2, 1), 8, 3, 1, Padding::Valid)).contains("does not fit"));
    // a hand-built geometry whose output does not match its input is refused by the kernel
    let mut c = geom(1, (5, 5), 1, 1, 3, 1, Padding::Same);
    c.out_h = 9;
    let be = cpu();
    let z = |n| be.alloc(n, DType::F32).unwrap();
    let e = be
        .launch(Op::Conv2dForward { conv: c, bias: false }, &[&z(c.in_len()), &z(c.w_len()), be.placeholder(), &z(c.out_len())])
        .unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    // same padding keeps the size at stride 1 and halves it (rounding up) at stride 2
    assert_eq!((geom(1, (28, 28), 1, 1, 3, 1, Padding::Same).out_h, geom(1, (28, 28), 1, 1, 3, 2, Padding::Same).out_h), (28, 14));
    assert_eq!(geom(1, (7, 7), 1, 1, 3, 2, Padding::Same).out_h, 4);
}
