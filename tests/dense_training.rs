//! The dense models end to end on real MNIST: GPU and CPU run the same compiled training
//! step (same batches, same RNG draws) and end with the same parameters; SS_D learns.
//!
//! Parity tolerance: after 5 RMSprop steps the parameter CHANGES agree to 2% in relative L2
//! norm per tensor, and no element differs by more than 5 steps x 3.2 x lr (RMSprop's first
//! steps are nearly sign updates, so an element whose gradient is ~0 may legitimately move in
//! opposite directions on the two backends; that bounds it). The summed losses agree to 1e-3.
mod common;

use ssvae::backend::cpu::CpuBackend;
use ssvae::data::Dataset;
use ssvae::model::{Kind, ModelSpec};
use ssvae::train::{LabelSpec, TrainConfig, Trainer};
use ssvae::Backend;

fn small_cfg(kind: Kind, train: &Dataset) -> TrainConfig {
    let mut spec = ModelSpec::dense(kind, train.dim(), train.classes);
    spec.hidden = vec![256, 128];
    let mut cfg = TrainConfig::new(spec, "mnist");
    cfg.batch_size = 32;
    cfg.labels = LabelSpec::Count(50);
    cfg.seed = 3;
    cfg
}

fn run_steps<B: Backend>(
    be: &B,
    cfg: &TrainConfig,
    train: &Dataset,
    labeled: &[usize],
    steps: usize,
) -> (Vec<(String, Vec<usize>, Vec<f32>)>, Vec<(String, Vec<usize>, Vec<f32>)>, ssvae::train::Losses) {
    let mut t = Trainer::new(be, cfg.clone(), train, None, labeled.to_vec()).unwrap();
    let before = t.store.read(be).unwrap();
    for _ in 0..steps {
        t.step(be).unwrap();
    }
    let losses = t.take_losses(be).unwrap();
    (before, t.store.read(be).unwrap(), losses)
}

#[test]
fn dense_variants_gpu_and_cpu_agree_after_five_steps() {
    let Some(gpu) = common::gpu() else { return };
    let Some(split) = common::mnist() else { return };
    let train = split.train.subset(&(0..300).collect::<Vec<_>>());
    let cpu = CpuBackend::new();
    // the SS model once more with the training levers: entropy minimisation (the categorical-KL
    // kernel with a negative weight), the cosine learning rate, the KL warm-up, label smoothing,
    // a quarter of the batch labeled, straight-through pi into the decoder and the consistency
    // term (a second encoder pass on noisy input sharing the weights); and with a Gumbel-softmax
    // pi into the decoder (noise drawn on each backend from the shared generator)
    for (kind, levers, gumbel) in
        [(Kind::Ss, false, false), (Kind::Ss, true, false), (Kind::Ss, false, true), (Kind::Es, false, false), (Kind::Eu, false, false)]
    {
        let mut cfg = small_cfg(kind, &train);
        if gumbel {
            cfg.model.pi_to_decoder = ssvae::model::PiToDecoder::Gumbel;
            cfg.model.gumbel_temperature = 0.5;
        }
        if levers {
            cfg.model.entropy_weight = 10.0;
            cfg.lr_schedule = ssvae::train::LrSchedule::Cosine;
            cfg.epochs = 1;
            // the weights rise over the 5 steps (the launches are re-prepared as they do)
            cfg.entropy_warmup = 0.25;
            cfg.kl_warmup = 0.5;
            cfg.model.label_smoothing = 0.1;
            cfg.labeled_share = 0.25;
            cfg.model.pi_to_decoder = ssvae::model::PiToDecoder::StraightThrough;
            cfg.model.consistency_weight = 10.0;
            cfg.model.consistency_noise = 0.3;
            cfg.model.consistency_shift = 2;
            cfg.model.consistency_scale = 0.1;
            cfg.model.consistency_shape = Some([28, 28, 1]);
        }
        let labeled = if kind == Kind::Eu { vec![] } else { ssvae::data::label_subset(&train.labels, 10, 50, 3).unwrap() };
        let (b_cpu, a_cpu, l_cpu) = run_steps(&cpu, &cfg, &train, &labeled, 5);
        let (b_gpu, a_gpu, l_gpu) = run_steps(gpu, &cfg, &train, &labeled, 5);
        let lr = 5e-4f32;
        for i in 0..a_cpu.len() {
            assert_eq!(b_cpu[i].2, b_gpu[i].2, "{kind:?} {}: initial parameters differ", b_cpu[i].0);
            let d_cpu: Vec<f32> = a_cpu[i].2.iter().zip(&b_cpu[i].2).map(|(a, b)| a - b).collect();
            let d_gpu: Vec<f32> = a_gpu[i].2.iter().zip(&b_gpu[i].2).map(|(a, b)| a - b).collect();
            let err: f64 = d_cpu.iter().zip(&d_gpu).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
            let norm: f64 = d_cpu.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            let max = d_cpu.iter().zip(&d_gpu).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            eprintln!("{kind:?} {}: |dCPU-dGPU| {err:.3e} of |dCPU| {norm:.3e}, max element {max:.2e}", a_cpu[i].0);
            assert!(norm > 0.0, "{kind:?} {}: parameters did not move", a_cpu[i].0);
            assert!(err <= 1e-3 * norm, "{kind:?} {}: GPU and CPU updates differ: relative L2 {:.3e}", a_cpu[i].0, err / norm);
            assert!(max <= 5.0 * 3.2 * lr, "{kind:?} {}: an element differs by {max}", a_cpu[i].0);
        }
        let (c, g) = (l_cpu.objective, l_gpu.objective);
        assert!((c - g).abs() <= 1e-3 * c.abs().max(1.0), "{kind:?} objective: CPU {c} vs GPU {g}");
        for (name, c, g) in [("rec", l_cpu.rec, l_gpu.rec), ("kl", l_cpu.kl, l_gpu.kl), ("ce", l_cpu.ce, l_gpu.ce)] {
            if let (Some(c), Some(g)) = (c, g) {
                assert!((c - g).abs() <= 1e-3 * c.abs().max(1.0), "{kind:?} {name}: CPU {c} vs GPU {g}");
            }
        }
    }
}

#[test]
fn ss_dense_learns_mnist_with_100_labels() {
    let Some(split) = common::mnist() else { return };
    let cpu = CpuBackend::new();
    let test = split.test.subset(&(0..1000).collect::<Vec<_>>());
    let mut cfg = TrainConfig::new(ModelSpec::dense(Kind::Ss, 784, 10), "mnist");
    cfg.labels = LabelSpec::Count(100);
    let labeled = ssvae::data::label_subset(&split.train.labels, 10, 100, 0).unwrap();
    let mut t = Trainer::new(&cpu, cfg, &split.train, Some(&test), labeled).unwrap();
    let before = t.evaluate(&cpu).unwrap().unwrap();
    let (first, last, after) = common::train_and_evaluate(&cpu, &mut t, 300, 10);
    let acc = after.accuracy.unwrap();
    assert!(acc > 0.5, "SS_D with 100 labels after 300 steps: test accuracy {acc} (chance 0.1)");
    assert!(last.rec.unwrap() < first.rec.unwrap() * 0.8, "reconstruction loss did not fall");
    assert!(after.log_loss.unwrap() < before.log_loss.unwrap());
}

#[test]
fn checkpoints_restore_parameters_and_optimizer_state_on_any_backend() {
    use ssvae::graph::exec::{ParamStore, StoreBuffer};
    let split = ssvae::data::synthetic(300, 10, 4);
    let cpu = CpuBackend::new();
    let cfg = small_cfg(Kind::Ss, &split.train);
    let labeled = ssvae::data::label_subset(&split.train.labels, 10, 50, 3).unwrap();
    let mut t = Trainer::new(&cpu, cfg.clone(), &split.train, None, labeled).unwrap();
    for _ in 0..3 {
        t.step(&cpu).unwrap();
    }
    let dir = common::TempDir::unmade("ckpt", "save-load");
    t.save(&cpu, &dir).unwrap();
    let (graph, _) = ssvae::model::build(&cfg.model, 8, 1).unwrap();
    let check = |be_name: &str, got: Vec<Vec<(String, Vec<usize>, Vec<f32>)>>| {
        for (k, which) in [StoreBuffer::Params, StoreBuffer::State1, StoreBuffer::State2].into_iter().enumerate() {
            let want = t.store.read_buffer(&cpu, which).unwrap();
            assert!(want.iter().any(|(_, _, v)| v.iter().any(|&x| x != 0.0)), "{which:?} is all zero: nothing checked");
            assert_eq!(got[k], want, "{be_name}: {which:?} differs after loading the checkpoint");
        }
    };
    let read_all = |s: &dyn Fn(StoreBuffer) -> Vec<(String, Vec<usize>, Vec<f32>)>| {
        vec![s(StoreBuffer::Params), s(StoreBuffer::State1), s(StoreBuffer::State2)]
    };
    let store = ParamStore::new(&cpu, &graph, 99).unwrap();
    ssvae::train::load_into(&cpu, &store, &dir).unwrap();
    check("cpu", read_all(&|w| store.read_buffer(&cpu, w).unwrap()));
    if let Some(gpu) = common::gpu() {
        // a different buffer alignment, so a different flat layout
        let store = ParamStore::new(gpu, &graph, 99).unwrap();
        ssvae::train::load_into(gpu, &store, &dir).unwrap();
        check("gpu", read_all(&|w| store.read_buffer(gpu, w).unwrap()));
    }
    // a checkpoint of another model is refused by name
    let mut small = cfg.model.clone();
    small.hidden = vec![64, 32];
    let (g3, _) = ssvae::model::build(&small, 8, 1).unwrap();
    let s3 = ParamStore::new(&cpu, &g3, 0).unwrap();
    let e = ssvae::train::load_into(&cpu, &s3, &dir).unwrap_err().to_string();
    assert!(e.contains("model.safetensors") && e.contains("checkpoint shape"), "{e}");
    // an older checkpoint layout (optimizer state as one flat tensor) still loads its weights
    use ssvae::train::checkpoint::{load_weights, save_weights, Weights};
    let path = dir.join(ssvae::train::checkpoint::MODEL_FILE);
    let w = load_weights(&path).unwrap();
    let mut params = w.params.clone();
    params.push(("__optimizer.flat_params".into(), vec![3], vec![1.0, 2.0, 3.0]));
    save_weights(&path, &Weights { params, state1: vec![], state2: vec![] }).unwrap();
    let store = ParamStore::new(&cpu, &graph, 99).unwrap();
    ssvae::train::load_into(&cpu, &store, &dir).unwrap();
    assert_eq!(store.read_buffer(&cpu, StoreBuffer::Params).unwrap(), t.store.read_buffer(&cpu, StoreBuffer::Params).unwrap());
}
