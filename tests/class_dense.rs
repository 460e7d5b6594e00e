//! `Graph::class_dense` (M2's and GM-DGM's q(z|x,y) layer): a dense layer on every (row, class)
//! pair computed as x W once per row plus the class's row of W, against the layer it replaces,
//! a dense layer on concat(repeat_rows(x, K), one-hots) with the one [in + K, out] weight.
//!
//! Both graphs: x0 [R, 4] -> dense 5 (tanh) -> the pair layer (K = 4 classes, 6 wide, relu) ->
//! Bernoulli NLL against a target [R * K, 6]. With the same seed they must start from the
//! same values (the split weight drawn as the one matrix), give the same objective and the
//! same gradients, the one matrix's split at row 5 included; an old checkpoint with the one
//! matrix loads into the new layout (`checkpoint::split_class_weights`).
mod common;

use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::Act;
use ssvae::graph::exec::{compile, CompileOptions, Optimizer, ParamStore};
use ssvae::graph::{Graph, LossKind, TensorId};
use ssvae::train::checkpoint::{split_class_weights, Weights};
use ssvae::{Backend, DType};

const R: usize = 3;
const K: usize = 4;
const W: usize = 6;

fn build(split: bool) -> (Graph, TensorId, TensorId) {
    let mut g = Graph::new();
    let x0 = g.input("x0", &[R, 4], DType::F32);
    let target = g.input("target", &[R * K, W], DType::F32);
    let h = g.dense("h", x0, 5, Act::Tanh);
    let y = if split {
        g.class_dense("z", h, K, W, Act::Relu).0
    } else {
        let rep = g.repeat_rows("z.rows", h, K);
        let onehot = g.class_onehots("z.onehot", R, K);
        let cat = g.concat("z.in", rep, onehot);
        g.dense("z", cat, W, Act::Relu)
    };
    assert_eq!(g.shape(y), &[R * K, W]);
    g.bce_loss(LossKind::Rec, y, target, 1.0);
    (g, x0, target)
}

/// (objective, every parameter's gradient by name, the parameters) after one step at lr 0.
fn run(split: bool) -> (f32, Vec<(String, Vec<usize>, Vec<f32>)>, Vec<(String, Vec<usize>, Vec<f32>)>) {
    let be = CpuBackend::new();
    let (g, x0, target) = build(split);
    let store = ParamStore::new(&be, &g, 21).unwrap();
    // biases start at zero: move them to a generic point (the same in both graphs), some of the
    // pair layer's outputs below zero so that relu's gradient mask matters
    let mut r = common::rng(3);
    for (name, shape, v) in store.read(&be).unwrap() {
        if name.ends_with(".bias") {
            let noise = common::uniform(&mut r, shape.iter().product(), -0.8, 0.8);
            store.write(&be, &name, &v.iter().zip(&noise).map(|(a, b)| a + b).collect::<Vec<_>>()).unwrap();
        }
    }
    let mut o = CompileOptions::default();
    let opt = Optimizer::RmsProp { lr: 0.0, alpha: 0.9, momentum: 0.9, eps: 1e-7 };
    o.optimizer = Some(opt);
    let p = compile(&be, g, &store, o).unwrap();
    let mut r = common::rng(4);
    be.write_f32(p.input(x0).unwrap(), &common::uniform(&mut r, R * 4, -2.0, 2.0)).unwrap();
    be.write_f32(p.input(target).unwrap(), &common::uniform(&mut r, R * K * W, 0.0, 1.0)).unwrap();
    be.write_f32(&store.hyper, &opt.hyper(1)).unwrap();
    p.run(&be).unwrap();
    let objective = p.take_metrics(&be).unwrap().iter().sum();
    let grads = store
        .names
        .iter()
        .zip(&store.shapes)
        .map(|(n, s)| (n.clone(), s.clone(), be.read_f32(&store.grad_view(&be, n).unwrap()).unwrap()))
        .collect();
    (objective, grads, store.read(&be).unwrap())
}

fn get<'a>(t: &'a [(String, Vec<usize>, Vec<f32>)], name: &str) -> &'a (String, Vec<usize>, Vec<f32>) {
    t.iter().find(|x| x.0 == name).unwrap_or_else(|| panic!("no tensor '{name}'"))
}

/// `a` and `b` are equal to float rounding.
fn close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-5 * scale, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn the_pair_layer_is_the_dense_layer_on_concatenated_one_hots() {
    let (obj_s, grads_s, params_s) = run(true);
    let (obj_c, grads_c, params_c) = run(false);
    // the same start: the split weight is the one matrix drawn in the same order
    let joined = |t: &[(String, Vec<usize>, Vec<f32>)]| [get(t, "z.weight").2.clone(), get(t, "z.class_weight").2.clone()].concat();
    assert_eq!(get(&params_s, "z.weight").1, [5, W]);
    assert_eq!(get(&params_s, "z.class_weight").1, [K, W]);
    assert_eq!(joined(&params_s), get(&params_c, "z.weight").2, "initial values differ from the one matrix's");
    assert!((obj_s - obj_c).abs() <= 1e-5 * obj_c.abs(), "objective {obj_s} vs {obj_c}");
    for name in ["h.weight", "h.bias", "z.bias"] {
        close(name, &get(&grads_s, name).2, &get(&grads_c, name).2);
    }
    let gw = joined(&grads_s);
    assert!(gw.iter().any(|v| v.abs() > 1e-3), "no gradient reaches the pair layer's weight");
    close("z.weight ++ z.class_weight", &gw, &get(&grads_c, "z.weight").2);
}

#[test]
fn a_checkpoint_with_the_one_matrix_loads_split() {
    let (_, grads_c, params_c) = run(false);
    let (_, _, params_s) = run(true);
    // the old layout: the one matrix, and optimizer state under the same names
    let old = Weights { params: params_c.clone(), state1: grads_c.clone(), state2: Vec::new() };
    let names: Vec<String> = params_s.iter().map(|p| p.0.clone()).collect();
    let shapes: Vec<Vec<usize>> = params_s.iter().map(|p| p.1.clone()).collect();
    let split = split_class_weights(&old, &names, &shapes).expect("the one matrix is the old layout");
    // in the store's order (weight averaging pairs tensors by position)
    assert_eq!(split.params.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), names);
    for (name, shape, v) in &params_s {
        let (_, s, got) = get(&split.params, name);
        assert_eq!((s, got), (shape, v), "{name}");
    }
    let (_, s, v) = get(&split.state1, "z.class_weight");
    assert_eq!((s.as_slice(), v.as_slice()), ([K, W].as_slice(), &get(&grads_c, "z.weight").2[5 * W..]));
    assert_eq!(get(&split.state1, "z.weight").2, get(&grads_c, "z.weight").2[..5 * W]);
    // loading it through the usual path gives the split model the one matrix's values
    let be = CpuBackend::new();
    let store = ParamStore::new(&be, &build(true).0, 99).unwrap();
    ssvae::train::load_weights_into(&be, &store, &old, std::path::Path::new("old.safetensors")).unwrap();
    assert_eq!(store.read(&be).unwrap(), params_s);
    // a checkpoint already split is left alone
    assert!(split_class_weights(&split, &names, &shapes).is_none());
}
