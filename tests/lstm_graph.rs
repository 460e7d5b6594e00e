//! The graph-level LSTM (`Graph::lstm`, `Graph::time_distributed_dense`) through the compiler:
//! autodiff, liveness planning and the optimizer step.
//!
//! The tiny graph: x [2, 4, 3] -> time-distributed dense 4 (tanh) -> LSTM 5 -> LSTM 3 ->
//! time-distributed dense 2 -> Bernoulli NLL against a target [2, 4, 2]; the first LSTM's h_seq
//! also feeds two flattening dense heads (mu, logvar) of a KL term, so its gradient sums three
//! consumers, and the stacked LSTM passes a gradient into the first one's output.
//!
//! 1. Every parameter tensor's gradient from the compiled step (CPU) against central finite
//!    differences of the compiled forward program. Criterion per tensor, as in
//!    tests/model_gradcheck.rs: ||num - ana|| <= 0.01 * ||ana|| + noise, noise =
//!    sqrt(n) * 2 eps_f32 |objective| / (2h), h = 1e-2 (every function here is smooth).
//!    A 25% error in one tensor's gradient is caught.
//! 2. GPU vs CPU (with and without a second pass sharing parameters), one RMSprop step of the same graph from the same parameters and inputs: the
//!    gradients agree to 1e-4 relative L2 per tensor, the parameter changes to 1e-3 (and no
//!    element by more than 2 x 3.2 x lr: a first RMSprop step is nearly a sign update, so a ~0
//!    gradient may move either way), the losses to 1e-5 relative.
mod common;

use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::Act;
use ssvae::graph::exec::{compile, CompileOptions, Optimizer, ParamStore, Program};
use ssvae::graph::{Graph, Init, LossKind, TensorId};
use ssvae::{Backend, DType};

const B: usize = 2;
const T: usize = 4;
const I: usize = 3;
const O: usize = 2;

/// The graph and its inputs, each with the range of its random values. `shared`: a second
/// pass of `embed` and `lstm1` over another input x2, sharing their parameters (as the
/// consistency term's perturbed pass does, `Graph::with_shared_params`), feeds a per-step head
/// whose consistency KL against a fixed target t2 joins the objective: the shared tensors'
/// gradients sum both passes (the LSTM's dW_hh GEMM accumulates, the linears' too).
fn build(shared: bool) -> (Graph, Vec<(TensorId, f32, f32)>) {
    let mut g = Graph::new();
    let x = g.input("x", &[B, T, I], DType::F32);
    let target = g.input("target", &[B, T, O], DType::F32);
    let e = g.time_distributed_dense("embed", x, 4, Act::Tanh);
    let h1 = g.lstm("lstm1", e, 5);
    let h2 = g.lstm("lstm2", h1, 3);
    let y = g.time_distributed_dense("out", h2, O, Act::Identity);
    assert_eq!(g.shape(y), &[B, T, O]);
    g.bce_loss(LossKind::Rec, y, target, 1.0);
    let mu = g.dense("mu", h1, 2, Act::Identity);
    let lv = g.dense("logvar", h1, 2, Act::Identity);
    g.kl_loss(LossKind::Kl, mu, lv, 0.5);
    let mut inputs = vec![(x, -1.5, 1.5), (target, 0.0, 1.0)];
    if shared {
        let x2 = g.input("x2", &[B, T, I], DType::F32);
        let t2 = g.input("t2", &[B * T, 3], DType::F32);
        let h = g.with_shared_params("second", |g| {
            let e = g.time_distributed_dense("embed", x2, 4, Act::Tanh);
            g.lstm("lstm1", e, 5)
        });
        let logits = g.per_step_dense("cls", h, 3, Act::Identity);
        g.consistency_kl_loss(LossKind::Consistency, logits, t2, 0.7);
        inputs.extend([(x2, -1.5, 1.5), (t2, -2.0, 2.0)]);
    }
    (g, inputs)
}

struct Setup<Be: Backend> {
    store: ParamStore<Be>,
    fwd: Program<Be>,
    step: Program<Be>,
}

fn setup<Be: Backend>(be: &Be, seed: u64, opt: Optimizer, shared: bool) -> Setup<Be> {
    let (g, inputs) = build(shared);
    let store = ParamStore::new(be, &g, seed).unwrap();
    // biases start at zero (and the forget gates at 1): move them to a generic point
    let mut r = common::rng(seed + 1);
    for (name, shape, v) in store.read(be).unwrap() {
        if name.ends_with(".bias") {
            let n: usize = shape.iter().product();
            let noise = common::uniform(&mut r, n, -0.3, 0.3);
            store.write(be, &name, &v.iter().zip(&noise).map(|(a, b)| a + b).collect::<Vec<_>>()).unwrap();
        }
    }
    let mut r = common::rng(seed + 2);
    let values: Vec<Vec<f32>> = inputs.iter().map(|&(t, lo, hi)| common::uniform(&mut r, g.tensors[t].len(), lo, hi)).collect();
    let mk = |opt: Option<Optimizer>| {
        let mut o = CompileOptions::default();
        o.optimizer = opt;
        let (g, inputs) = build(shared);
        let p = compile(be, g, &store, o).unwrap();
        for ((t, _, _), v) in inputs.iter().zip(&values) {
            be.write_f32(p.input(*t).unwrap(), v).unwrap();
        }
        p
    };
    let fwd = mk(None);
    let step = mk(Some(opt));
    be.write_f32(&store.hyper, &opt.hyper(1)).unwrap();
    Setup { store, fwd, step }
}

fn objective<Be: Backend>(be: &Be, s: &Setup<Be>) -> f64 {
    s.fwd.run(be).unwrap();
    s.fwd.take_metrics(be).unwrap().iter().map(|&v| v as f64).sum()
}

fn grads<Be: Backend>(be: &Be, s: &Setup<Be>) -> Vec<(String, Vec<f32>)> {
    s.store.names.iter().map(|n| (n.clone(), be.read_f32(&s.store.grad_view(be, n).unwrap()).unwrap())).collect()
}

/// Per parameter tensor: (name, ||num - ana||, ||ana||, noise floor).
fn check(corrupt: Option<&str>, shared: bool) -> Vec<(String, f64, f64, f64)> {
    let be = CpuBackend::new();
    let s = setup(&be, 11, Optimizer::RmsProp { lr: 0.0, alpha: 0.9, momentum: 0.9, eps: 1e-7 }, shared);
    let base = objective(&be, &s).abs();
    s.step.run(&be).unwrap();
    s.step.take_metrics(&be).unwrap();
    let h = 1e-2f32;
    let mut out = Vec::new();
    for (name, ana) in grads(&be, &s) {
        let mut values = be.read_f32(&s.store.view(&be, &name).unwrap()).unwrap();
        let (mut diff2, mut ana2) = (0f64, 0f64);
        for j in 0..values.len() {
            let orig = values[j];
            let (p, m) = (orig + h, orig - h);
            values[j] = p;
            s.store.write(&be, &name, &values).unwrap();
            let up = objective(&be, &s);
            values[j] = m;
            s.store.write(&be, &name, &values).unwrap();
            let down = objective(&be, &s);
            values[j] = orig;
            s.store.write(&be, &name, &values).unwrap();
            let num = (up - down) / (p as f64 - m as f64);
            let a = ana[j] as f64 * if corrupt == Some(name.as_str()) { 1.25 } else { 1.0 };
            diff2 += (num - a).powi(2);
            ana2 += a * a;
        }
        let noise = (values.len() as f64).sqrt() * 2.0 * f32::EPSILON as f64 * base / (2.0 * h as f64);
        out.push((name, diff2.sqrt(), ana2.sqrt(), noise));
    }
    out
}

fn accepted(d: f64, a: f64, noise: f64) -> bool {
    d <= 0.01 * a + noise
}

#[test]
fn lstm_graph_gradients_match_finite_differences() {
    let rows = check(None, false);
    assert!(rows.iter().any(|r| r.0 == "lstm1.w_hh") && rows.iter().any(|r| r.0 == "lstm2.bias"));
    for (name, d, a, noise) in &rows {
        eprintln!("{name}: |num-ana| {d:.3e}, |ana| {a:.3e} (ratio {:.1e}), noise floor {noise:.1e}", d / a);
        assert!(*a > 0.0, "{name}: zero gradient, nothing checked");
        assert!(accepted(*d, *a, *noise), "gradient of {name} is wrong: ||num - ana|| = {d:.3e}, ||ana|| = {a:.3e}");
    }
}

#[test]
fn a_wrong_lstm_gradient_is_caught() {
    for name in ["lstm1.w_hh", "lstm2.w_ih"] {
        let rows = check(Some(name), false);
        let bad = rows.iter().find(|r| r.0 == name).unwrap();
        assert!(!accepted(bad.1, bad.2, bad.3), "a 25% error in the gradient of {name} must be detected: {bad:?}");
    }
}

/// A second pass sharing `embed` and `lstm1` (`Graph::with_shared_params`): no new tensors for
/// them, and every gradient, the shared ones summing both passes, matches finite differences.
#[test]
fn shared_parameter_passes_sum_their_gradients() {
    let (plain, _) = build(false);
    let (shared, _) = build(true);
    let names = |g: &Graph| g.params.iter().map(|p| g.tensors[p.tensor].name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&shared), [names(&plain), vec!["cls.weight".into(), "cls.bias".into()]].concat());
    let rows = check(None, true);
    let without = check(None, false);
    for (name, d, a, noise) in &rows {
        eprintln!("shared {name}: |num-ana| {d:.3e}, |ana| {a:.3e}, noise floor {noise:.1e}");
        assert!(*a > 0.0, "{name}: zero gradient, nothing checked");
        assert!(accepted(*d, *a, *noise), "gradient of {name} is wrong: ||num - ana|| = {d:.3e}, ||ana|| = {a:.3e}");
    }
    for name in ["embed.weight", "lstm1.w_hh", "lstm1.w_ih"] {
        let norm = |r: &[(String, f64, f64, f64)]| r.iter().find(|x| x.0 == name).unwrap().2;
        assert!((norm(&rows) - norm(&without)).abs() > 1e-3 * norm(&without), "{name}: the second pass adds nothing to its gradient");
    }
}

#[test]
fn lstm_weights_start_orthogonal_with_forget_bias_one() {
    let be = CpuBackend::new();
    let (g, _) = build(false);
    assert!(g.params.iter().any(|p| p.init == Init::Orthogonal));
    let store = ParamStore::new(&be, &g, 5).unwrap();
    let params = store.read(&be).unwrap();
    let get = |n: &str| params.iter().find(|p| p.0 == n).unwrap().2.clone();
    let (h, w) = (5, get("lstm1.w_hh"));
    for a in 0..h {
        for b in 0..h {
            let d: f32 = (0..4 * h).map(|k| w[a * 4 * h + k] * w[b * 4 * h + k]).sum();
            assert!((d - if a == b { 1.0 } else { 0.0 }).abs() < 1e-5, "rows {a}, {b} of w_hh: dot {d}");
        }
    }
    let bias = get("lstm1.bias");
    assert!(bias[..h].iter().chain(&bias[2 * h..]).all(|&v| v == 0.0) && bias[h..2 * h].iter().all(|&v| v == 1.0), "{bias:?}");
}

#[test]
fn lstm_graph_step_gpu_matches_cpu() {
    let Some(gpu) = common::gpu() else { return };
    let cpu = CpuBackend::new();
    let lr = 1e-3f32;
    let opt = Optimizer::rmsprop(lr);
    // the plain graph and the one with a parameter-sharing second pass
    for shared in [false, true] {
        let sc = setup(&cpu, 21, opt, shared);
        let sg = setup(gpu, 21, opt, shared);
        let (before_c, before_g) = (sc.store.read(&cpu).unwrap(), sg.store.read(gpu).unwrap());
        assert_eq!(before_c, before_g, "initial parameters differ");
        sc.step.run(&cpu).unwrap();
        sg.step.run(gpu).unwrap();
        let (lc, lg) = (sc.step.take_metrics(&cpu).unwrap(), sg.step.take_metrics(gpu).unwrap());
        for (k, (c, g)) in lc.iter().zip(&lg).enumerate() {
            assert!((c - g).abs() <= 1e-5 * c.abs().max(1.0), "loss {}: CPU {c} vs GPU {g}", sc.step.losses[k].kind);
        }
        let l2 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
        let norm = |a: &[f32]| a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        for ((name, gc), (_, gg)) in grads(&cpu, &sc).iter().zip(grads(gpu, &sg)) {
            let (e, n) = (l2(gc, &gg), norm(gc));
            eprintln!("grad {name}: |cpu - gpu| {e:.2e} of {n:.2e}");
            assert!(n > 0.0 && e <= 1e-4 * n, "gradient of {name}: GPU and CPU differ, relative L2 {:.2e}", e / n);
        }
        let (after_c, after_g) = (sc.store.read(&cpu).unwrap(), sg.store.read(gpu).unwrap());
        for i in 0..after_c.len() {
            let dc: Vec<f32> = after_c[i].2.iter().zip(&before_c[i].2).map(|(a, b)| a - b).collect();
            let dg: Vec<f32> = after_g[i].2.iter().zip(&before_g[i].2).map(|(a, b)| a - b).collect();
            let (e, n) = (l2(&dc, &dg), norm(&dc));
            let max = dc.iter().zip(&dg).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(n > 0.0 && e <= 1e-3 * n, "{}: updates differ, relative L2 {:.2e}", after_c[i].0, e / n);
            assert!(max <= 2.0 * 3.2 * lr, "{}: an element's update differs by {max}", after_c[i].0);
        }
    }
}
