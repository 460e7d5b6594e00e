//! Benchmarks printed by `ssvae bench`. Each case prints one JSON line; a readable table
//! follows. Timing: one warm-up launch, then repeated launches recorded into single
//! submissions until at least `min_seconds` have elapsed, ending with a full device sync, so
//! the figure is sustained throughput rather than one cold dispatch.

use std::time::Instant;

use rand::{Rng, SeedableRng};

use crate::backend::cpu::CpuBackend;
use crate::backend::gpu::GpuBackend;
use crate::backend::{Backend, Gemm, Op};
use crate::error::Result;

pub use crate::backend::timing::time_launch;

#[derive(Clone, Debug, serde::Serialize)]
pub struct GemmResult {
    pub bench: &'static str,
    pub case: String,
    pub backend: String,
    pub adapter: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub iterations: usize,
    pub ms_per_gemm: f64,
    pub gflops: f64,
}

/// The GEMM cases: square sizes, then the dense model's shapes at batch 128
/// (forward: batch x in -> out; backward: dX = dY W^T is NT, dW = X^T dY is TN).
pub fn gemm_cases(squares: &[usize]) -> Vec<(String, Gemm)> {
    let mut v: Vec<(String, Gemm)> = squares.iter().map(|&s| (format!("square {s}"), Gemm::new(s, s, s))).collect();
    for (name, m, n, k, ta, tb) in [
        ("dense fwd 128x784 . 784x1024", 128, 1024, 784, false, false),
        ("dense fwd 128x1024 . 1024x1024", 128, 1024, 1024, false, false),
        ("dense fwd 128x1024 . 1024x784", 128, 784, 1024, false, false),
        ("dense bwd dX 128x1024 . (784x1024)^T", 128, 784, 1024, false, true),
        ("dense bwd dX 128x1024 . (1024x1024)^T", 128, 1024, 1024, false, true),
        ("dense bwd dW (128x784)^T . 128x1024", 784, 1024, 128, true, false),
        ("dense bwd dW (128x1024)^T . 128x1024", 1024, 1024, 128, true, false),
    ] {
        v.push((name.to_string(), Gemm::new(m, n, k).trans(ta, tb)));
    }
    v
}

fn time_gemm<B: Backend>(be: &B, g: Gemm, min_seconds: f64) -> Result<(usize, f64)> {
    let mut r = rand::rngs::StdRng::seed_from_u64(1);
    let a: Vec<f32> = (0..g.m * g.k).map(|_| r.random_range(-1.0..1.0)).collect();
    let b: Vec<f32> = (0..g.k * g.n).map(|_| r.random_range(-1.0..1.0)).collect();
    let (ab, bb) = (be.upload_f32(&a)?, be.upload_f32(&b)?);
    let cb = be.alloc(g.m * g.n, crate::DType::F32)?;
    let launch = be.prepare(&Op::Gemm(g), &[&ab, &bb, be.placeholder(), &cb])?;
    time_launch(be, &launch, min_seconds)
}

/// Runs the GEMM benchmark on the given backends and returns the results (also printed).
pub fn gemm_bench(gpu: Option<&GpuBackend>, cpu: Option<&CpuBackend>, squares: &[usize], min_seconds: f64) -> Result<Vec<GemmResult>> {
    let mut out = Vec::new();
    for (case, g) in gemm_cases(squares) {
        let flops = 2.0 * g.m as f64 * g.n as f64 * g.k as f64;
        let mut record = |backend: &str, adapter: String, iters: usize, secs: f64| {
            let r = GemmResult {
                bench: "gemm",
                case: case.clone(),
                backend: backend.into(),
                adapter,
                m: g.m,
                n: g.n,
                k: g.k,
                trans_a: g.trans_a,
                trans_b: g.trans_b,
                iterations: iters,
                ms_per_gemm: secs * 1e3,
                gflops: flops / secs / 1e9,
            };
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
            out.push(r);
        };
        if let Some(gpu) = gpu {
            let (iters, secs) = time_gemm(gpu, g, min_seconds)?;
            record("gpu", gpu.describe(), iters, secs);
        }
        if let Some(cpu) = cpu {
            let (iters, secs) = time_gemm(cpu, g, min_seconds)?;
            record("cpu", cpu.describe(), iters, secs);
        }
    }
    Ok(out)
}

/// A markdown table of GEMM results, one row per case, GPU and CPU side by side.
pub fn gemm_table(results: &[GemmResult]) -> String {
    let mut s = String::from("| case | M x N x K | GPU GFLOP/s | GPU ms | CPU GFLOP/s | CPU ms |\n|---|---|---:|---:|---:|---:|\n");
    let mut cases: Vec<&str> = Vec::new();
    for r in results {
        if !cases.contains(&r.case.as_str()) {
            cases.push(&r.case);
        }
    }
    for c in cases {
        let find = |b: &str| results.iter().find(|r| r.case == c && r.backend == b);
        let (g, cp) = (find("gpu"), find("cpu"));
        let any = g.or(cp).expect("case has a result");
        let f = |r: Option<&GemmResult>, ms: bool| {
            r.map_or("-".to_string(), |r| if ms { format!("{:.3}", r.ms_per_gemm) } else { format!("{:.2}", r.gflops) })
        };
        s += &format!("| {c} | {}x{}x{} | {} | {} | {} | {} |\n", any.m, any.n, any.k, f(g, false), f(g, true), f(cp, false), f(cp, true));
    }
    s
}

/// One training-throughput measurement.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainResult {
    pub bench: &'static str,
    pub implementation: &'static str,
    pub model: String,
    pub backend: String,
    pub adapter: String,
    pub batch: usize,
    pub hidden: usize,
    pub steps: usize,
    pub ms_per_step: f64,
    pub samples_per_s: f64,
    pub device_bytes: usize,
    pub launches_per_step: usize,
}

/// Random windows of `steps` x `channels` (standard normal values, as standardised sensor data)
/// with random labels: the RNN benchmark's data (the content does not change the cost).
pub fn random_series(n: usize, steps: usize, channels: usize, classes: usize, seed: u64) -> Result<crate::data::SeriesDataset> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let values = (0..n * steps * channels).map(|_| r.random_range(-1.7f32..1.7)).collect();
    let labels = (0..n).map(|_| Some(r.random_range(0..classes as u8))).collect();
    crate::data::SeriesDataset::new(
        "random",
        values,
        labels,
        steps,
        (0..classes).map(|c| c.to_string()).collect(),
        (0..channels).map(|c| format!("ch{c}")).collect(),
    )
}

/// A resident dataset of random pixels (the content does not change the cost).
pub fn random_dataset(n: usize, dim: usize, classes: usize, seed: u64) -> crate::data::Dataset {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let side = (dim as f64).sqrt() as usize;
    crate::data::Dataset {
        name: "random".into(),
        pixels: (0..n * dim).map(|_| r.random()).collect(),
        labels: (0..n).map(|_| r.random_range(0..classes as u8)).collect(),
        n,
        height: side,
        width: dim / side.max(1),
        channels: 1,
        classes,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        unlabeled: Vec::new(),
        ids: Vec::new(),
    }
}

/// The benchmark's trainer: `spec` on `data` with up to 1000 labeled samples (class-balanced),
/// compiled for `batch` (also what `ssvae bench tune` compiles to find a step's GEMM shapes).
pub fn bench_trainer<'a, B: Backend>(
    be: &B,
    data: crate::train::TrainData<'a>,
    spec: &crate::model::ModelSpec,
    batch: usize,
) -> Result<crate::train::Trainer<B>> {
    use crate::train::{LabelSpec, TrainConfig, Trainer};
    let mut cfg = TrainConfig::new(spec.clone(), "random");
    cfg.batch_size = batch;
    let n_labels = 1000.min(data.n());
    cfg.labels = LabelSpec::Count(n_labels);
    cfg.metrics_every = 100;
    let labels: Vec<u8> = (0..data.n()).map(|i| data.label(i).unwrap_or(0)).collect();
    let labeled = crate::data::label_subset(&labels, data.classes(), n_labels, 0)?;
    Trainer::with_data(be, cfg, data, None, labeled)
}

/// Training throughput of a model: the whole training loop as `ssvae train` runs it (host
/// batch sampling, index/label/counter uploads, one submission per step), after `warmup`
/// steps, timed until `min_seconds` have passed, ending with a device sync.
pub fn train_bench<B: Backend>(
    be: &B,
    data: crate::train::TrainData<'_>,
    spec: &crate::model::ModelSpec,
    batch: usize,
    min_seconds: f64,
    warmup: usize,
) -> Result<TrainResult> {
    let (model, hidden) = (spec.name(), spec.hidden.first().copied().unwrap_or(0));
    let mut t = bench_trainer(be, data, spec, batch)?;
    for _ in 0..warmup {
        t.step(be)?;
    }
    be.sync()?;
    t.take_losses(be)?;
    let start = Instant::now();
    let mut steps = 0usize;
    while steps == 0 || start.elapsed().as_secs_f64() < min_seconds {
        t.step(be)?;
        steps += 1;
        if steps % 100 == 0 {
            t.take_losses(be)?; // as the training loop reads losses back
        }
    }
    be.sync()?;
    let secs = start.elapsed().as_secs_f64();
    t.take_losses(be)?;
    Ok(TrainResult {
        bench: "train",
        implementation: "ssvae",
        model,
        backend: if be.describe().starts_with("cpu") { "cpu".into() } else { "gpu".into() },
        adapter: be.describe(),
        batch,
        hidden,
        steps,
        ms_per_step: secs * 1e3 / steps as f64,
        samples_per_s: (steps * batch) as f64 / secs,
        device_bytes: t.device_bytes(),
        launches_per_step: t.launches_per_step(),
    })
}
