//! Optimizers (shaders/optim.wgsl): RMSprop (PyTorch semantics, with and without momentum)
//! and Adam (bias-corrected, t = 1, 2, ...) over several steps, GPU vs the CPU twin, on
//! awkward lengths (1, odd, prime, one and just over one 256-wide workgroup, many). The
//! hyper-parameter buffers follow src/backend/ops/optim.rs: [lr, alpha, momentum, eps]
//! (RMSPROP_HYPER_LEN) and [lr, beta1, beta2, eps, t] (ADAM_HYPER_LEN). Each step draws a new
//! gradient and rewrites the hyper buffer (Adam's t, a decaying learning rate); a second test
//! prepares the launch once and replays it, as the training graph does.
//!
//! Tolerances (|gpu - cpu| <= atol + rtol * |cpu|), compared after every step on the
//! parameters and both state buffers:
//! - RMSprop: per step one sqrt and one division (Vulkan: ~2.5 ulp each) on b; b is at most
//!   1 / sqrt(1 - alpha) = 10, p moves by lr * b <= 0.1 per step, so p differs by a few
//!   1e-7 per step: atol 2e-6 + rtol 1e-5 over 6 steps; square_avg and momentum_buf (no
//!   parameter scale) rtol 1e-5 with atol 1e-6.
//! - Adam: m and v are products and sums (<= 1 ulp apart with FMA contraction), but the bias
//!   corrections use pow(beta, t), which Vulkan computes as exp2(t log2 beta) with log2
//!   accurate to 2^-21 absolute near 1: for beta2 = 0.999 that is ~3e-4 relative on
//!   1 - beta2^t, ~1.7e-4 relative on the step lr * mhat / sqrt(vhat) <= ~lr. With lr = 1e-2
//!   that is <= 1.7e-6 per step: atol 1e-5 on the parameters after 6 steps; atol 1e-6 +
//!   rtol 1e-5 on m and v.
mod common;

use common::*;
use ssvae::backend::{Op, ADAM_HYPER_LEN, RMSPROP_HYPER_LEN};
use ssvae::Backend;
use ssvae::Kernels;

const LENS: [usize; 8] = [1, 2, 7, 255, 256, 257, 1021, 4099];
const STEPS: usize = 6;

/// Parameter and both state buffers after each step.
type History = Vec<[Vec<f32>; 3]>;
/// The hyper-parameter buffer for step t = 1, 2, ...
type Hyper<'a> = &'a dyn Fn(usize) -> Vec<f32>;

/// Runs `steps` updates with fresh gradients; `hyper(t)` gives the buffer for step t = 1...
/// Initial state: param random, states zero (as at the start of training) unless `state0`.
fn run_steps<B: Backend>(be: &B, adam: bool, n: usize, seed: u64, hyper: Hyper, state0: Option<(&[f32], &[f32])>) -> History {
    let mut r = rng(seed);
    let p = be.upload_f32(&uniform(&mut r, n, -1.0, 1.0)).unwrap();
    let (s1, s2) = match state0 {
        Some((a, b)) => (be.upload_f32(a).unwrap(), be.upload_f32(b).unwrap()),
        None => (be.upload_f32(&vec![0.0; n]).unwrap(), be.upload_f32(&vec![0.0; n]).unwrap()),
    };
    let len = if adam { ADAM_HYPER_LEN } else { RMSPROP_HYPER_LEN };
    let h = be.upload_f32(&vec![0.0; len]).unwrap();
    let g = be.upload_f32(&vec![0.0; n]).unwrap();
    let mut out = Vec::new();
    for t in 1..=STEPS {
        let hv = hyper(t);
        assert_eq!(hv.len(), len);
        be.write_f32(&h, &hv).unwrap();
        // Gradients of mixed magnitude, including exact zeros.
        let mut gv = uniform(&mut r, n, -1.0, 1.0);
        for (i, v) in gv.iter_mut().enumerate() {
            match i % 5 {
                0 => *v *= 100.0,
                1 => *v *= 1e-3,
                2 if t % 2 == 0 => *v = 0.0,
                _ => {}
            }
        }
        be.write_f32(&g, &gv).unwrap();
        if adam {
            be.adam(&h, &g, &p, &s1, &s2).unwrap();
        } else {
            be.rmsprop(&h, &g, &p, &s1, &s2).unwrap();
        }
        out.push([be.read_f32(&p).unwrap(), be.read_f32(&s1).unwrap(), be.read_f32(&s2).unwrap()]);
    }
    out
}

fn compare(what: &str, got: &History, want: &History, p_atol: f32) {
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        let step = t + 1;
        assert_close(&format!("{what} step {step} param"), &g[0], &w[0], p_atol, 1e-5);
        assert_close(&format!("{what} step {step} state1"), &g[1], &w[1], 1e-6, 1e-5);
        assert_close(&format!("{what} step {step} state2"), &g[2], &w[2], 1e-6, 1e-5);
    }
    // The optimizer moved the parameters at all (so equal outputs are not trivially equal).
    let moved = want[0][0].iter().zip(&want[STEPS - 1][0]).any(|(a, b)| a != b);
    assert!(moved, "{what}: parameters never changed");
}

#[test]
fn rmsprop_matches_cpu_over_steps() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    // [lr, alpha, momentum, eps]: PyTorch defaults with and without momentum, a fast decay,
    // and a learning-rate schedule changing every step.
    let configs: [(&str, Hyper); 4] = [
        ("defaults", &|_| vec![0.01, 0.99, 0.0, 1e-8]),
        ("momentum", &|_| vec![0.01, 0.99, 0.9, 1e-8]),
        ("alpha 0.5 eps 1e-3", &|_| vec![0.05, 0.5, 0.5, 1e-3]),
        ("lr schedule", &|t| vec![0.02 / t as f32, 0.9, 0.8, 1e-6]),
    ];
    for (c, (name, hyper)) in configs.iter().enumerate() {
        for (s, &n) in LENS.iter().enumerate() {
            let seed = 1000 + 10 * c as u64 + s as u64;
            let want = run_steps(&cpu, false, n, seed, *hyper, None);
            let got = run_steps(gpu, false, n, seed, *hyper, None);
            compare(&format!("rmsprop {name} n={n}"), &got, &want, 2e-6);
        }
    }
}

#[test]
fn adam_matches_cpu_over_steps() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    // [lr, beta1, beta2, eps, t] with t = the 1-based step.
    let configs: [(&str, Hyper); 3] = [
        ("defaults", &|t| vec![1e-3, 0.9, 0.999, 1e-8, t as f32]),
        ("lr 1e-2 beta 0.5/0.9", &|t| vec![1e-2, 0.5, 0.9, 1e-6, t as f32]),
        ("lr schedule", &|t| vec![1e-2 / t as f32, 0.9, 0.999, 1e-8, t as f32]),
    ];
    for (c, (name, hyper)) in configs.iter().enumerate() {
        for (s, &n) in LENS.iter().enumerate() {
            let seed = 2000 + 10 * c as u64 + s as u64;
            let want = run_steps(&cpu, true, n, seed, *hyper, None);
            let got = run_steps(gpu, true, n, seed, *hyper, None);
            compare(&format!("adam {name} n={n}"), &got, &want, 1e-5);
        }
    }
    // Mid-training: nonzero state and a large t (bias corrections near 1).
    let n = 1021;
    let mut r = rng(2100);
    let m0 = uniform(&mut r, n, -0.1, 0.1);
    let v0 = uniform(&mut r, n, 0.0, 0.01);
    let hyper = |t: usize| vec![1e-3, 0.9, 0.999, 1e-8, (5000 + t) as f32];
    let want = run_steps(&cpu, true, n, 2101, &hyper, Some((&m0, &v0)));
    let got = run_steps(gpu, true, n, 2101, &hyper, Some((&m0, &v0)));
    compare("adam t=5001.. with state", &got, &want, 1e-5);
}

/// Prepare each optimizer launch once and replay it, rewriting only the hyper and gradient
/// buffers between runs (what the training graph does): both backends must read the new
/// values on every replay.
#[test]
fn prepared_optimizer_launch_replays_with_new_hyper_parameters() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    fn replay<B: Backend>(be: &B, adam: bool, n: usize) -> Vec<f32> {
        let mut r = rng(3000);
        let p = be.upload_f32(&uniform(&mut r, n, -1.0, 1.0)).unwrap();
        let s1 = be.upload_f32(&vec![0.0; n]).unwrap();
        let s2 = be.upload_f32(&vec![0.0; n]).unwrap();
        let h = be.upload_f32(&vec![0.0; if adam { ADAM_HYPER_LEN } else { RMSPROP_HYPER_LEN }]).unwrap();
        let g = be.upload_f32(&vec![0.0; n]).unwrap();
        let op = if adam { Op::Adam { n } } else { Op::RmsProp { n } };
        let launch = be.prepare(&op, &[&h, &g, &p, &s1, &s2]).unwrap();
        let mut trace = Vec::new();
        for t in 1..=STEPS {
            let hv = if adam { vec![0.01 / t as f32, 0.9, 0.999, 1e-8, t as f32] } else { vec![0.01 / t as f32, 0.99, 0.9, 1e-8] };
            be.write_f32(&h, &hv).unwrap();
            be.write_f32(&g, &uniform(&mut r, n, -1.0, 1.0)).unwrap();
            be.run(&[&launch]).unwrap();
            be.sync().unwrap();
            trace.extend(be.read_f32(&p).unwrap());
        }
        trace
    }
    for adam in [false, true] {
        for n in [1, 257, 4099] {
            let want = replay(&cpu, adam, n);
            let got = replay(gpu, adam, n);
            let name = if adam { "adam" } else { "rmsprop" };
            assert_close(&format!("{name} replayed launch n={n}"), &got, &want, 1e-5, 1e-5);
        }
    }
}

/// The CPU twins against values computed by hand.
#[test]
fn cpu_optim_hand_computed_values() {
    let cpu = cpu();
    let step = |adam: bool, hyper: &[f32], g: &[f32], p: &[f32], s1: &[f32], s2: &[f32]| {
        let (hb, gb, pb) = (cpu.upload_f32(hyper).unwrap(), cpu.upload_f32(g).unwrap(), cpu.upload_f32(p).unwrap());
        let (ab, bb) = (cpu.upload_f32(s1).unwrap(), cpu.upload_f32(s2).unwrap());
        if adam {
            cpu.adam(&hb, &gb, &pb, &ab, &bb).unwrap();
        } else {
            cpu.rmsprop(&hb, &gb, &pb, &ab, &bb).unwrap();
        }
        (cpu.read_f32(&pb).unwrap(), cpu.read_f32(&ab).unwrap(), cpu.read_f32(&bb).unwrap())
    };
    // RMSprop, lr 0.1, alpha 0.5, no momentum, eps 0, g = 1 from zero state:
    // s = 0.5, b = 1 / sqrt(0.5) = sqrt 2, p = 1 - 0.1 sqrt 2.
    let sqrt2 = std::f32::consts::SQRT_2;
    let (p, s, b) = step(false, &[0.1, 0.5, 0.0, 0.0], &[1.0], &[1.0], &[0.0], &[0.0]);
    assert_close("cpu rmsprop p", &p, &[1.0 - 0.1 * sqrt2], 1e-7, 1e-6);
    assert_close("cpu rmsprop s", &s, &[0.5], 0.0, 0.0);
    assert_close("cpu rmsprop b", &b, &[sqrt2], 1e-7, 1e-6);
    // Second step, momentum 0.5, g = -2: s = 0.25 + 2 = 2.25, b = 0.5 sqrt 2 - 2 / 1.5,
    // p -= 0.1 b.
    let (p2, s2, b2) = step(false, &[0.1, 0.5, 0.5, 0.0], &[-2.0], &p, &s, &b);
    let bw = 0.5 * sqrt2 - 2.0 / 1.5;
    assert_close("cpu rmsprop s step 2", &s2, &[2.25], 1e-7, 1e-6);
    assert_close("cpu rmsprop b step 2", &b2, &[bw], 1e-7, 1e-6);
    assert_close("cpu rmsprop p step 2", &p2, &[p[0] - 0.1 * bw], 1e-7, 1e-6);
    // Adam, eps 0, t = 1: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected mhat = g,
    // vhat = g^2, so p moves by exactly lr * sign(g). With the same g at t = 2 the corrected
    // moments are g and g^2 again: another lr * sign(g).
    let h1 = [1e-3, 0.9, 0.999, 0.0, 1.0];
    let (p, m, v) = step(true, &h1, &[0.5, -4.0], &[1.0, 1.0], &[0.0, 0.0], &[0.0, 0.0]);
    assert_close("cpu adam p t=1", &p, &[1.0 - 1e-3, 1.0 + 1e-3], 1e-6, 0.0);
    assert_close("cpu adam m t=1", &m, &[0.05, -0.4], 1e-7, 1e-5);
    assert_close("cpu adam v t=1", &v, &[0.00025, 0.016], 1e-9, 1e-4);
    let h2 = [1e-3, 0.9, 0.999, 0.0, 2.0];
    let (p, m, v) = step(true, &h2, &[0.5, -4.0], &p, &m, &v);
    assert_close("cpu adam p t=2", &p, &[1.0 - 2e-3, 1.0 + 2e-3], 1e-6, 0.0);
    // m = 0.9 * 0.05 + 0.1 * 0.5 = 0.095; v = 0.999 * 0.00025 + 0.001 * 0.25 = 0.00049975.
    assert_close("cpu adam m t=2", &m[..1], &[0.095], 1e-7, 1e-5);
    assert_close("cpu adam v t=2", &v[..1], &[0.000_499_75], 1e-9, 1e-4);
}
