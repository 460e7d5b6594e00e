//! M2 and GM-DGM end to end: GPU and CPU run the same compiled training step (same batches,
//! same RNG draws) and agree, and M2 learns MNIST from 100 labels.
//!
//! Parity: the first step's gradients agree per parameter tensor to 1e-3 in relative L2 norm
//! (f32 reductions in a different order on each backend; the objective sums over rows x
//! classes); after 5 RMSprop steps the parameter CHANGES agree to 1e-3 in relative L2 per
//! tensor and no element differs by more than 5 steps x 3.2 x lr (RMSprop's first steps are
//! nearly sign updates, so an element whose gradient is ~0 may move in opposite directions on
//! the two backends; that bounds it), and the summed losses agree to 1e-3.
mod common;

use ssvae::backend::cpu::CpuBackend;
use ssvae::data::Dataset;
use ssvae::model::{ConvLayer, Family, Kind, ModelSpec};
use ssvae::train::{LabelSpec, TrainConfig, Trainer};
use ssvae::Backend;

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn small_cfg(kind: Kind, train: &Dataset) -> (TrainConfig, Vec<usize>) {
    let mut spec = ModelSpec::dense(kind, train.dim(), train.classes);
    spec.hidden = vec![64, 32];
    spec.latent = 4;
    with_classes(spec, train)
}

/// A narrow CNN of the paper's shape (strides 1 and 2, a dense block with batch norm and
/// dropout, the mirrored decoder) as the M2 / GM-DGM trunk and decoder.
fn small_cnn_cfg(kind: Kind, train: &Dataset) -> (TrainConfig, Vec<usize>) {
    let mut spec = ModelSpec::cnn(kind, [28, 28, 1], train.classes);
    spec.conv = vec![ConvLayer { channels: 4, kernel: 3, stride: 1 }, ConvLayer { channels: 4, kernel: 3, stride: 2 }];
    spec.hidden = vec![16];
    spec.latent = 4;
    with_classes(spec, train)
}

/// GM-DGM: the semi-unsupervised split (labels on 0, 1, 2, 8, 9; 3 extra slots); M2: every class.
fn with_classes(mut spec: ModelSpec, train: &Dataset) -> (TrainConfig, Vec<usize>) {
    let kind = spec.kind;
    let mut lc = None;
    if kind == Kind::Gmdgm {
        let labeled = vec![0, 1, 2, 8, 9];
        spec.class_prior = ssvae::model::semi_unsupervised_prior(train.classes, &labeled, 3).unwrap();
        spec.classes = train.classes + 3;
        lc = Some(labeled);
    }
    let mut cfg = TrainConfig::new(spec, "mnist");
    cfg.batch_size = 16;
    cfg.labels = LabelSpec::Count(50);
    cfg.seed = 3;
    let labeled = match &lc {
        Some(l) => ssvae::train::semi::labeled_subset_in_classes(&train.labels, train.classes, l, 50, 3).unwrap(),
        None => ssvae::data::label_subset(&train.labels, train.classes, 50, 3).unwrap(),
    };
    cfg.labeled_classes = lc;
    (cfg, labeled)
}

fn run_steps<B: Backend>(
    be: &B,
    cfg: &TrainConfig,
    train: &Dataset,
    labeled: &[usize],
    steps: usize,
) -> (Tensors, Tensors, Tensors, ssvae::train::Losses) {
    let mut t = Trainer::new(be, cfg.clone(), train, None, labeled.to_vec()).unwrap();
    let before = t.store.read(be).unwrap();
    t.step(be).unwrap();
    let grads: Tensors = t
        .store
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), t.store.shapes[i].clone(), be.read_f32(&t.store.grad_view(be, n).unwrap()).unwrap()))
        .collect();
    for _ in 1..steps {
        t.step(be).unwrap();
    }
    let losses = t.take_losses(be).unwrap();
    (before, grads, t.store.read(be).unwrap(), losses)
}

fn rel_l2(a: &[f32], b: &[f32]) -> (f64, f64) {
    let err: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
    (err, a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt())
}

#[test]
fn m2_and_gmdgm_gpu_and_cpu_agree_after_five_steps() {
    let Some(gpu) = common::gpu() else { return };
    let Some(split) = common::mnist() else { return };
    let train = split.train.subset(&(0..300).collect::<Vec<_>>());
    let cpu = CpuBackend::new();
    for kind in [Kind::M2, Kind::Gmdgm] {
        let (cfg, labeled) = small_cfg(kind, &train);
        let (b_cpu, g_cpu, a_cpu, l_cpu) = run_steps(&cpu, &cfg, &train, &labeled, 5);
        let (b_gpu, g_gpu, a_gpu, l_gpu) = run_steps(gpu, &cfg, &train, &labeled, 5);
        let lr = 5e-4f32;
        for i in 0..a_cpu.len() {
            let name = &a_cpu[i].0;
            assert_eq!(b_cpu[i].2, b_gpu[i].2, "{kind:?} {name}: initial parameters differ");
            let (gerr, gnorm) = rel_l2(&g_cpu[i].2, &g_gpu[i].2);
            let d_cpu: Vec<f32> = a_cpu[i].2.iter().zip(&b_cpu[i].2).map(|(a, b)| a - b).collect();
            let d_gpu: Vec<f32> = a_gpu[i].2.iter().zip(&b_gpu[i].2).map(|(a, b)| a - b).collect();
            let (err, norm) = rel_l2(&d_cpu, &d_gpu);
            let max = d_cpu.iter().zip(&d_gpu).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            eprintln!(
                "{kind:?} {name}: first gradient rel. L2 {:.2e} (|g| {gnorm:.2e}); update rel. L2 {:.2e}, max element {max:.2e}",
                gerr / gnorm.max(1e-30),
                err / norm.max(1e-30)
            );
            assert!(gnorm > 0.0 && norm > 0.0, "{kind:?} {name}: no gradient / parameters did not move");
            assert!(gerr <= 1e-3 * gnorm, "{kind:?} {name}: first-step gradients differ: relative L2 {:.3e}", gerr / gnorm);
            assert!(err <= 1e-3 * norm, "{kind:?} {name}: GPU and CPU updates differ: relative L2 {:.3e}", err / norm);
            assert!(max <= 5.0 * 3.2 * lr, "{kind:?} {name}: an element differs by {max}");
        }
        assert!(
            (l_cpu.objective - l_gpu.objective).abs() <= 1e-3 * l_cpu.objective.abs().max(1.0),
            "{kind:?}: objective CPU {} vs GPU {}",
            l_cpu.objective,
            l_gpu.objective
        );
    }
}

/// The convolutional M2 and GM-DGM: the tolerances of tests/cnn_training.rs (batch norm sums
/// over many rows in another order on each backend, and a value within round-off of 0 may
/// fall on either side of a relu): first-step gradients to 2e-2 relative L2 per tensor, no
/// element further apart after 3 RMSprop steps than twice the distance RMSprop can move one,
/// running statistics after the first step to 1e-4.
#[test]
fn m2_and_gmdgm_cnn_gpu_and_cpu_agree_after_three_steps() {
    let Some(gpu) = common::gpu() else { return };
    let Some(split) = common::mnist() else { return };
    let train = split.train.subset(&(0..300).collect::<Vec<_>>());
    let cpu = CpuBackend::new();
    let (steps, lr) = (3, 5e-4f32);
    for kind in [Kind::M2, Kind::Gmdgm] {
        let (mut cfg, labeled) = small_cnn_cfg(kind, &train);
        cfg.batch_size = 8;
        let mut tc = Trainer::new(&cpu, cfg.clone(), &train, None, labeled.clone()).unwrap();
        let mut tg = Trainer::new(gpu, cfg.clone(), &train, None, labeled.clone()).unwrap();
        let (b_cpu, b_gpu) = (tc.store.read(&cpu).unwrap(), tg.store.read(gpu).unwrap());
        tc.step(&cpu).unwrap();
        tg.step(gpu).unwrap();
        let g_cpu: Vec<Vec<f32>> = tc.store.names.iter().map(|n| cpu.read_f32(&tc.store.grad_view(&cpu, n).unwrap()).unwrap()).collect();
        let g_gpu: Vec<Vec<f32>> = tg.store.names.iter().map(|n| gpu.read_f32(&tg.store.grad_view(gpu, n).unwrap()).unwrap()).collect();
        let (f_cpu, f_gpu) = (tc.store.read(&cpu).unwrap(), tg.store.read(gpu).unwrap());
        for _ in 1..steps {
            tc.step(&cpu).unwrap();
            tg.step(gpu).unwrap();
        }
        let (a_cpu, a_gpu) = (tc.store.read(&cpu).unwrap(), tg.store.read(gpu).unwrap());
        let (l_cpu, l_gpu) = (tc.take_losses(&cpu).unwrap(), tg.take_losses(gpu).unwrap());
        let mut convs = 0;
        for i in 0..a_cpu.len() {
            let name = &a_cpu[i].0;
            assert_eq!(b_cpu[i].2, b_gpu[i].2, "{kind:?} {name}: initial parameters differ");
            convs += name.starts_with("conv") as usize + name.starts_with("deconv") as usize;
            if name.contains(".running_") {
                assert!(f_cpu[i].2 != b_cpu[i].2, "{kind:?} {name}: running statistics were not updated");
                common::assert_close(&format!("{kind:?} {name}"), &f_gpu[i].2, &f_cpu[i].2, 1e-5, 1e-4);
                continue;
            }
            let (gerr, gnorm) = rel_l2(&g_cpu[i], &g_gpu[i]);
            let max = a_cpu[i].2.iter().zip(&a_gpu[i].2).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            eprintln!(
                "{kind:?} CNN {name}: first gradient rel. L2 {:.2e} (|g| {gnorm:.2e}); after {steps} steps max |CPU-GPU| {max:.2e}",
                gerr / gnorm.max(1e-30)
            );
            assert!(gnorm > 0.0, "{kind:?} {name}: no gradient");
            assert!(gerr <= 2e-2 * gnorm, "{kind:?} {name}: first-step gradients differ: relative L2 {:.3e}", gerr / gnorm);
            assert!(max <= 2.0 * (3.16 + 5.13 + 6.54) * lr, "{kind:?} {name}: an element differs by {max} after {steps} steps");
        }
        assert!(convs >= 4, "{kind:?}: the CNN trunk and decoder were not built ({convs} conv tensors)");
        assert!(
            (l_cpu.objective - l_gpu.objective).abs() <= 1e-3 * l_cpu.objective.abs().max(1.0),
            "{kind:?} CNN: objective CPU {} vs GPU {}",
            l_cpu.objective,
            l_gpu.objective
        );
    }
}

#[test]
fn m2_cnn_learns_mnist_with_100_labels() {
    let Some(split) = common::mnist() else { return };
    let cpu = CpuBackend::new();
    let train = split.train.subset(&(0..6000).collect::<Vec<_>>());
    let test = split.test.subset(&(0..500).collect::<Vec<_>>());
    let mut spec = ModelSpec::cnn(Kind::M2, [28, 28, 1], 10);
    spec.conv = vec![ConvLayer { channels: 8, kernel: 3, stride: 1 }, ConvLayer { channels: 8, kernel: 3, stride: 2 }];
    spec.hidden = vec![64];
    spec.latent = 8;
    let mut cfg = TrainConfig::new(spec, "mnist");
    cfg.batch_size = 32;
    cfg.labels = LabelSpec::Count(100);
    let labeled = ssvae::data::label_subset(&train.labels, 10, 100, 0).unwrap();
    let mut t = Trainer::new(&cpu, cfg, &train, Some(&test), labeled).unwrap();
    let (first, last, after) = common::train_and_evaluate(&cpu, &mut t, 150, 10);
    let acc = after.accuracy.unwrap();
    assert!(acc > 0.5, "M2 CNN with 100 labels after 150 steps: test accuracy {acc} (chance 0.1)");
    assert!(last.rec.unwrap() < first.rec.unwrap() * 0.8, "reconstruction loss did not fall");
}

#[test]
fn m2_learns_mnist_with_100_labels() {
    let Some(split) = common::mnist() else { return };
    let cpu = CpuBackend::new();
    let test = split.test.subset(&(0..1000).collect::<Vec<_>>());
    let mut spec = ModelSpec::dense(Kind::M2, 784, 10);
    spec.hidden = vec![256, 256];
    spec.latent = 16;
    let mut cfg = TrainConfig::new(spec, "mnist");
    cfg.batch_size = 64;
    cfg.labels = LabelSpec::Count(100);
    let labeled = ssvae::data::label_subset(&split.train.labels, 10, 100, 0).unwrap();
    let mut t = Trainer::new(&cpu, cfg, &split.train, Some(&test), labeled).unwrap();
    let (first, last, after) = common::train_and_evaluate(&cpu, &mut t, 300, 10);
    let acc = after.accuracy.unwrap();
    assert!(acc > 0.5, "M2 with 100 labels after 300 steps: test accuracy {acc} (chance 0.1)");
    assert!(last.rec.unwrap() < first.rec.unwrap() * 0.8, "reconstruction loss did not fall");
}

#[test]
fn configs_saved_before_m2_still_load() {
    // a ModelSpec and TrainConfig as written before class_prior / labeled_classes existed
    let old = r#"{"family":"dense","kind":"ss","input_dim":784,"hidden":[1024,1024],"latent":2,"classes":10,
        "decoder_input":"pi","alpha":100.0,"loss_norm":"sum"}"#;
    let spec: ModelSpec = serde_json::from_str(old).unwrap();
    assert!(spec.class_prior.is_empty() && spec.prior() == vec![0.1; 10]);
    let cfg = TrainConfig::new(spec, "mnist");
    let mut v = serde_json::to_value(&cfg).unwrap();
    assert!(v.get("labeled_classes").is_none(), "written only when set");
    v.as_object_mut().unwrap().remove("labeled_classes");
    let back: TrainConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back.labeled_classes, None);
    // the new kinds round-trip by name
    let (_, kind) = ModelSpec::parse_name("gmdgm-dense").unwrap();
    assert_eq!(serde_json::to_string(&kind).unwrap(), "\"gmdgm\"");
    assert!(ModelSpec::parse_name("m2-cnn").is_ok() && ModelSpec::dense(Kind::M2, 4, 3).validate().is_ok());
    assert!(
        ModelSpec::cnn(Kind::M2, [28, 28, 1], 10).validate().is_ok()
            && ModelSpec::parse_name("gmdgm-cnn").unwrap() == (Family::Cnn, Kind::Gmdgm)
    );
    let rnn = ModelSpec::rnn(Kind::Gmdgm, 128, 6, 6);
    let err = rnn.validate().unwrap_err().to_string();
    assert!(err.contains("gmdgm-rnn") && err.contains("not series"), "{err}");
}
