//! The multi-factor model (paper section 4): one CE head per labeled factor, beside the
//! decoder. Checked here:
//! - the whole objective's gradient against central finite differences on a tiny model (CPU),
//!   with rows where only some heads are labeled and a KL weight != 1; criterion per tensor as in
//!   `model_gradcheck`: ||num - ana|| <= 0.02 ||ana|| + the f32 noise floor;
//! - the heads do not feed the decoder: changing only the labels leaves every decoder
//!   gradient bit-identical (and does change the heads' and the encoder's);
//! - GPU and CPU agree on the first step's gradients to 1e-3 relative L2 per tensor (a dense
//!   model: only summation order differs; a wrong rule on one backend gives O(1));
//! - a short run on sprites teaches the x-position head far above chance on held-out sprites;
//! - old configs (no factor_heads / kl_weight) still load, and bad settings name their field.
mod common;

use common::model_fd::{gradients, tensor_errors, Setup};
use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::UNLABELED;
use ssvae::data::sprites::{sprites, POS_X, SCALE, SHAPE, SPRITE_FACTORS};
use ssvae::eval::factors::factor_head_accuracy;
use ssvae::graph::exec::{compile, CompileOptions, Optimizer, ParamStore};
use ssvae::model::{build, ModelSpec};
use ssvae::train::factors::sprite_factor_labels;
use ssvae::train::{pack_u8, LabelSpec, TrainConfig, TrainData, Trainer};
use ssvae::Backend;

const U: u32 = UNLABELED;

fn tiny() -> ModelSpec {
    let mut s = ModelSpec::multi_factor(6, &[3, 2, 4]);
    s.hidden = vec![5, 4];
    s.latent = 2;
    s.alpha = 3.0;
    s.kl_weight = 0.25;
    s
}

/// Head k's labels for the 4 rows: row 0 all labeled, rows 1-2 some heads, row 3 none.
const LABELS: [[u32; 4]; 3] = [[1, U, 0, U], [0, 1, U, U], [3, 2, U, U]];

fn setup(spec: &ModelSpec, seed: u64) -> Setup {
    let be = CpuBackend::new();
    let (src_rows, batch) = (7, 4);
    let mut r = common::rng(seed);
    let pixels: Vec<u8> = (0..src_rows * spec.input_dim).map(|_| rand::Rng::random(&mut r)).collect();
    let (g, _) = build(spec, batch, src_rows).unwrap();
    let store = ParamStore::new(&be, &g, seed).unwrap();
    for (name, shape, _) in store.read(&be).unwrap() {
        if name.ends_with(".bias") {
            store.write(&be, &name, &common::uniform(&mut r, shape.iter().product(), -0.3, 0.3)).unwrap();
        }
    }
    let data = be.upload_u32(&pack_u8(&pixels)).unwrap();
    let (_, handles) = build(spec, batch, src_rows).unwrap();
    let mk = |opt: Option<Optimizer>| {
        let (g, h) = build(spec, batch, src_rows).unwrap();
        let mut o = CompileOptions::default();
        o.optimizer = opt;
        o.bind.insert(h.data, data.clone());
        let p = compile(&be, g, &store, o).unwrap();
        be.write_u32(p.input(h.idx).unwrap(), &[3, 0, 6, 2]).unwrap();
        for (&input, l) in h.head_labels.iter().zip(&LABELS) {
            be.write_u32(p.input(input).unwrap(), l).unwrap();
        }
        be.write_u32(p.input(h.counter).unwrap(), &ssvae::rng::counter(9, 1)).unwrap();
        p
    };
    let fwd = mk(None);
    let step = mk(Some(Optimizer::RmsProp { lr: 0.0, alpha: 0.9, momentum: 0.9, eps: 1e-7 }));
    be.write_f32(&store.hyper, &[0.0, 0.9, 0.9, 1e-7, 0.0]).unwrap();
    Setup { be, store, fwd, step, handles }
}

#[test]
fn multi_factor_objective_gradient_matches_finite_differences() {
    let spec = tiny();
    let s = setup(&spec, 4);
    assert!(s.store.names.iter().any(|n| n == "head2.weight"), "params: {:?}", s.store.names);
    for (name, d, a, noise) in tensor_errors(&s, 1e-3, None) {
        eprintln!("{name}: |num-ana| {d:.3e}, |ana| {a:.3e}, noise floor {noise:.1e}");
        assert!(a > 0.0, "{name}: zero gradient (every tensor should get one here)");
        assert!(d <= 0.02 * a + noise, "gradient of {name} is wrong: ||num - ana|| = {d:.3e}, ||ana|| = {a:.3e}, noise {noise:.1e}");
    }
}

#[test]
fn heads_do_not_feed_the_decoder() {
    let spec = tiny();
    let s = setup(&spec, 5);
    let g1 = gradients(&s);
    // other labels (same rows labeled or not, different classes and one more labeled row)
    for (&input, l) in s.handles.head_labels.iter().zip(&[[2, 0, 1, 1], [1, 0, U, 0], [0, 1, 3, U]]) {
        s.be.write_u32(s.step.input(input).unwrap(), l).unwrap();
    }
    let g2 = gradients(&s);
    for (i, name) in s.store.names.iter().enumerate() {
        let n: usize = s.store.shapes[i].iter().product();
        let (a, b) = (&g1[s.store.offsets[i]..s.store.offsets[i] + n], &g2[s.store.offsets[i]..s.store.offsets[i] + n]);
        if name.starts_with("dec") || name.starts_with("out.") {
            assert_eq!(a, b, "{name}: a decoder gradient changed with the labels alone");
        } else if name.starts_with("head") || name.starts_with("enc") {
            assert_ne!(a, b, "{name}: labels should change this gradient");
        }
    }
    let (g, _) = build(&spec, 4, 7).unwrap();
    let dec0 = g.find("dec0.weight").unwrap();
    assert_eq!(g.shape(dec0)[0], spec.latent, "the decoder's first layer reads z alone");
}

fn sprite_setup(
    n: usize,
    heads: &[usize],
    hidden: usize,
    latent: usize,
    seed: u64,
) -> (ssvae::data::sprites::SpriteDataset, TrainConfig, Vec<Vec<u8>>) {
    let ds = sprites(n, heads[0], seed).unwrap();
    let mut spec = ModelSpec::multi_factor(64 * 64, &heads.iter().map(|&k| SPRITE_FACTORS[k].1).collect::<Vec<_>>());
    spec.hidden = vec![hidden];
    spec.latent = latent;
    let mut cfg = TrainConfig::new(spec, "sprites");
    cfg.labels = LabelSpec::Count(n / 2);
    cfg.seed = seed;
    let tables = sprite_factor_labels(&ds.factors, heads).unwrap();
    (ds, cfg, tables)
}

#[test]
fn multi_factor_gpu_and_cpu_agree_on_first_step_gradients() {
    let Some(gpu) = common::gpu() else { return };
    let (ds, mut cfg, tables) = sprite_setup(64, &[SHAPE, SCALE, POS_X], 16, 4, 3);
    cfg.batch_size = 16;
    let cpu = CpuBackend::new();
    let labeled: Vec<usize> = (0..20).collect();
    let run_cpu = || {
        let mut t =
            Trainer::with_factor_labels(&cpu, cfg.clone(), TrainData::Images(&ds.data), None, labeled.clone(), tables.clone()).unwrap();
        t.step(&cpu).unwrap();
        t.store.names.iter().map(|n| cpu.read_f32(&t.store.grad_view(&cpu, n).unwrap()).unwrap()).collect::<Vec<_>>()
    };
    let run_gpu = || {
        let mut t =
            Trainer::with_factor_labels(gpu, cfg.clone(), TrainData::Images(&ds.data), None, labeled.clone(), tables.clone()).unwrap();
        t.step(gpu).unwrap();
        t.store.names.iter().map(|n| gpu.read_f32(&t.store.grad_view(gpu, n).unwrap()).unwrap()).collect::<Vec<_>>()
    };
    let (c, g) = (run_cpu(), run_gpu());
    let t = Trainer::with_factor_labels(&cpu, cfg.clone(), TrainData::Images(&ds.data), None, labeled.clone(), tables.clone()).unwrap();
    for ((name, a), b) in t.store.names.iter().zip(&c).zip(&g) {
        let err: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
        let norm: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        eprintln!("{name}: first-step gradient |CPU-GPU| {err:.3e} of {norm:.3e}");
        assert!(norm > 0.0, "{name}: zero gradient");
        assert!(err <= 1e-3 * norm, "{name}: GPU and CPU gradients differ: {err:.3e} of {norm:.3e}");
    }
}

#[test]
fn a_short_run_teaches_the_position_head() {
    let cpu = CpuBackend::new();
    let heads = [POS_X, SHAPE];
    let (ds, mut cfg, tables) = sprite_setup(3000, &heads, 128, 6, 11);
    cfg.batch_size = 64;
    let labeled: Vec<usize> = (0..1000).collect();
    let spec = cfg.model.clone();
    let mut t = Trainer::with_factor_labels(&cpu, cfg, TrainData::Images(&ds.data), None, labeled, tables).unwrap();
    for _ in 0..300 {
        t.step(&cpu).unwrap();
    }
    let l = t.take_losses(&cpu).unwrap();
    let test = sprites(500, POS_X, 99).unwrap();
    let acc =
        factor_head_accuracy(&cpu, &spec, &t.store, &test.data.pixels, &sprite_factor_labels(&test.factors, &heads).unwrap(), 250).unwrap();
    eprintln!("losses {l:?}; held-out accuracy x {:.3} (chance 0.0625), shape {:.3} (chance 0.333)", acc[0], acc[1]);
    assert!(acc[0] > 0.5, "the x head reached only {:.3} on held-out sprites (chance 1/16)", acc[0]);
}

#[test]
fn old_configs_load_and_bad_settings_name_their_field() {
    let mut old = serde_json::to_value(ModelSpec::dense(ssvae::model::Kind::Ss, 784, 10)).unwrap();
    let obj = old.as_object_mut().unwrap();
    obj.remove("factor_heads");
    obj.remove("kl_weight");
    let spec: ModelSpec = serde_json::from_value(old).unwrap();
    assert!(spec.factor_heads.is_empty());
    assert_eq!(spec.kl_weight, 1.0);
    let mut s = tiny();
    s.kl_weight = -1.0;
    assert!(s.validate().unwrap_err().to_string().contains("--kl-weight"));
    let mut s = tiny();
    s.factor_heads[1] = 1;
    assert!(s.validate().unwrap_err().to_string().contains("--factor-heads"));
    let mut s = tiny();
    s.kind = ssvae::model::Kind::Eu;
    assert!(s.validate().unwrap_err().to_string().contains("--factor-heads"));
    // a multi-factor model needs its label tables
    let (ds, cfg, _) = sprite_setup(16, &[SHAPE], 8, 2, 1);
    let err = Trainer::with_data(&CpuBackend::new(), cfg, TrainData::Images(&ds.data), None, vec![0]).err().unwrap();
    assert!(err.to_string().contains("with_factor_labels"), "{err}");
}
