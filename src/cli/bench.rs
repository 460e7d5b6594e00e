//! `ssvae bench`: training throughput, GEMM GFLOP/s and GEMM tile tuning (one JSON line per
//! case, then a markdown table). The measuring code is `ssvae::bench`; this maps flags.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::{tune, GemmTiles, GpuBackend, GpuOptions};
use ssvae::model::{Family, Kind, ModelSpec};
use ssvae::train::TrainData;

use super::train::model_parser;
use super::BackendArg;

/// Where a benchmark runs: both backends side by side, one of them, or a GPU API.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchBackend {
    /// The GPU and the CPU backend, side by side.
    Both,
    /// The best GPU adapter, software rasterizers included.
    Gpu,
    /// The CPU reference backend alone.
    Cpu,
    /// The best Vulkan adapter.
    #[value(alias = "vk")]
    Vulkan,
    /// The best Metal adapter (macOS).
    #[value(alias = "mtl")]
    Metal,
    /// The best DirectX 12 adapter (Windows).
    #[value(alias = "d3d12")]
    Dx12,
    /// The best OpenGL / GLES adapter.
    #[value(alias = "gles", alias = "opengl")]
    Gl,
}

impl BenchBackend {
    fn api(self) -> Option<BackendArg> {
        match self {
            BenchBackend::Vulkan => Some(BackendArg::Vulkan),
            BenchBackend::Metal => Some(BackendArg::Metal),
            BenchBackend::Dx12 => Some(BackendArg::Dx12),
            BenchBackend::Gl => Some(BackendArg::Gl),
            _ => None,
        }
    }

    fn gpu_options(self, adapter: &Option<String>) -> GpuOptions {
        GpuOptions { backends: self.api().and_then(BackendArg::api).map(String::from), adapter_name: adapter.clone(), ..Default::default() }
    }

    fn wants_gpu(self) -> bool {
        self != BenchBackend::Cpu
    }

    fn wants_cpu(self) -> bool {
        matches!(self, BenchBackend::Both | BenchBackend::Cpu)
    }
}

#[derive(clap::Subcommand)]
pub enum BenchCmd {
    /// Training throughput of a model (samples/s, ms per step, device memory) over batch sizes
    /// (and hidden widths for the dense model), on the GPU and/or the CPU backend.
    Train(TrainBench),
    /// Tune the GPU's GEMM tiles for this adapter: times every candidate tiling on each GEMM
    /// shape of the given model steps (and square sizes) and saves the fastest per shape in the
    /// tuning file, which later runs on this adapter read (BENCHMARKS.md, "Tuning").
    Tune(TuneBench),
    /// GEMM GFLOP/s of the GPU kernel and the CPU path: square sizes and the dense model's shapes.
    Gemm(GemmBench),
}

#[derive(clap::Args)]
pub struct TrainBench {
    /// The model, at the paper's architecture on random data of MNIST's or UCI-HAR's size.
    #[arg(long, value_parser = model_parser(), default_value = "ss-dense")]
    model: (Family, Kind),
    /// Where to run the cases.
    #[arg(long, value_enum, default_value_t = BenchBackend::Both)]
    backend: BenchBackend,
    /// Substring of the adapter name to use.
    #[arg(long)]
    adapter: Option<String>,
    /// Batch sizes at the paper's width (hidden 1024).
    #[arg(long, value_delimiter = ',', default_values_t = vec![32usize, 128, 512, 2048])]
    batch_sizes: Vec<usize>,
    /// Hidden widths at batch 128 (scaling from overhead to arithmetic).
    #[arg(long, value_delimiter = ',', default_values_t = vec![256usize, 512, 1024, 2048, 4096])]
    hidden_sizes: Vec<usize>,
    /// Minimum seconds of timed steps per case.
    #[arg(long, default_value_t = 3.0)]
    min_seconds: f64,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Also print where a step's time goes, kernel by kernel: wall time on the CPU backend,
    /// device time on the GPU (each kernel between two timestamp queries; the adapter must
    /// support them, and the step waits for the device after its kernels, so the throughput
    /// of a profiled GPU run is lower than without the flag).
    #[arg(long)]
    profile: bool,
    /// RNN models: the resident windows in f16 (`train --data-f16`).
    #[arg(long)]
    data_f16: bool,
    /// GPU: ignore the adapter's GEMM tuning file (`bench tune`), use the built-in tile choice.
    #[arg(long)]
    no_tuning: bool,
    /// GPU: the scalar GEMM kernel only (no vec4 kernel), to measure what vec4 brings.
    #[arg(long)]
    no_vec4: bool,
}

#[derive(clap::Args)]
pub struct TuneBench {
    /// Models whose training-step GEMMs are tuned.
    #[arg(long, value_parser = model_parser(), value_delimiter = ',', default_value = "ss-dense")]
    models: Vec<(Family, Kind)>,
    /// Batch sizes of those steps.
    #[arg(long, value_delimiter = ',', default_values_t = vec![128usize])]
    batch_sizes: Vec<usize>,
    /// Hidden widths of the dense model (other families use the paper's sizes).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1024usize])]
    hidden_sizes: Vec<usize>,
    /// Square sizes to tune as well.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Minimum seconds of timed launches per candidate tiling.
    #[arg(long, default_value_t = 0.2)]
    min_seconds: f64,
    /// Tuning file [default: SSVAE_TUNING_FILE, else ~/.cache/ssvae/gemm-tuning.json].
    #[arg(long)]
    out: Option<PathBuf>,
    /// `gpu` or a GPU API (tuning is for the GPU backend).
    #[arg(long, value_enum, default_value_t = BenchBackend::Gpu)]
    backend: BenchBackend,
    /// Substring of the adapter name to use.
    #[arg(long)]
    adapter: Option<String>,
}

#[derive(clap::Args)]
pub struct GemmBench {
    /// Where to run the cases.
    #[arg(long, value_enum, default_value_t = BenchBackend::Both)]
    backend: BenchBackend,
    /// Substring of the adapter name to use.
    #[arg(long)]
    adapter: Option<String>,
    /// Square sizes to time.
    #[arg(long, value_delimiter = ',', default_values_t = vec![128usize, 256, 512, 1024, 2048])]
    sizes: Vec<usize>,
    /// Minimum seconds of timed work per case and backend.
    #[arg(long, default_value_t = 1.0)]
    min_seconds: f64,
    /// GPU: ignore the adapter's GEMM tuning file (`bench tune`), use the built-in tile choice.
    #[arg(long)]
    no_tuning: bool,
    /// GPU: the scalar GEMM kernel only (no vec4 kernel), to measure what vec4 brings.
    #[arg(long)]
    no_vec4: bool,
}

pub fn bench(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Train(a) => train(a),
        BenchCmd::Tune(a) => tune_gemm(a),
        BenchCmd::Gemm(a) => gemm(a),
    }
}

/// The paper's model of this family and kind on data of MNIST's (or UCI-HAR's) shape.
fn paper_model((family, kind): (Family, Kind), data_f16: bool) -> (Family, ModelSpec) {
    let spec = match family {
        Family::Dense => ModelSpec::dense(kind, 784, 10),
        Family::Cnn => ModelSpec::cnn(kind, [28, 28, 1], 10),
        Family::Rnn => ModelSpec { series_f16: data_f16, ..ModelSpec::rnn(kind, 128, 6, 6) },
    };
    (family, spec)
}

fn train(a: TrainBench) -> Result<()> {
    let (family, paper) = paper_model(a.model, a.data_f16);
    if a.data_f16 && family != Family::Rnn {
        bail!("--data-f16 applies to the recurrent models");
    }
    let gpu = if a.backend.wants_gpu() {
        let opts = GpuOptions { no_tuning: a.no_tuning, no_vec4: a.no_vec4, profile: a.profile, ..a.backend.gpu_options(&a.adapter) };
        Some(GpuBackend::new(&opts).context("opening the GPU")?)
    } else {
        None
    };
    let cpu = a.backend.wants_cpu().then(|| if a.profile { CpuBackend::profiled() } else { CpuBackend::new() });
    // MNIST-sized random images, or UCI-HAR-sized random windows (7352 x 128 steps x 6)
    let images = ssvae::bench::random_dataset(60000, 784, 10, 1);
    let series = if family == Family::Rnn { Some(ssvae::bench::random_series(7352, 128, 6, 6, 1)?) } else { None };
    let data = match &series {
        Some(s) => TrainData::Series(s),
        None => TrainData::Images(&images),
    };
    let mut cases: Vec<(usize, ModelSpec)> = a.batch_sizes.iter().map(|&b| (b, paper.clone())).collect();
    // width scaling: the dense model only (the CNN's cost is in its convolutions)
    if family == Family::Dense {
        cases.extend(
            a.hidden_sizes
                .iter()
                .filter(|&&h| !(h == 1024 && a.batch_sizes.contains(&128)))
                .map(|&h| (128, ModelSpec { hidden: vec![h, h], ..paper.clone() })),
        );
    }
    let mut rows = Vec::new();
    for (batch, spec) in cases {
        if let Some(g) = &gpu {
            let r = ssvae::bench::train_bench(g, data, &spec, batch, a.min_seconds, a.warmup)?;
            println!("{}", serde_json::to_string(&r)?);
            rows.push(r);
        }
        if let Some(c) = &cpu {
            let r = ssvae::bench::train_bench(c, data, &spec, batch, a.min_seconds, a.warmup)?;
            println!("{}", serde_json::to_string(&r)?);
            rows.push(r);
        }
    }
    println!("\n| model | backend | batch | hidden | samples/s | ms/step | device MiB | launches/step |\n|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.1} | {} |",
            r.model,
            r.adapter,
            r.batch,
            r.hidden,
            r.samples_per_s,
            r.ms_per_step,
            r.device_bytes as f64 / 1048576.0,
            r.launches_per_step
        );
    }
    if let Some(g) = gpu.as_ref().filter(|_| a.profile) {
        print_profile(&format!("GPU device time by kernel on {}", ssvae::Backend::describe(g)), &g.profile_report());
    }
    if let Some(c) = cpu.as_ref().filter(|_| a.profile) {
        print_profile("CPU time by kernel", &c.profile_report());
    }
    Ok(())
}

/// A `--profile` table: the 30 most expensive kernels of all cases together.
fn print_profile(what: &str, report: &[(String, u64, std::time::Duration)]) {
    let total: f64 = report.iter().map(|r| r.2.as_secs_f64()).sum();
    println!("\n{what}, all cases together (total {total:.2} s):\n| kernel | launches | ms | share |\n|---|---:|---:|---:|");
    for (k, n, t) in report.iter().take(30) {
        println!("| {k} | {n} | {:.1} | {:.1}% |", t.as_secs_f64() * 1e3, 100.0 * t.as_secs_f64() / total);
    }
}

fn tune_gemm(a: TuneBench) -> Result<()> {
    if a.backend.wants_cpu() {
        bail!("--backend {:?}: tuning is for the GPU backend (give `gpu` or a GPU API)", a.backend);
    }
    if !(a.min_seconds > 0.0 && a.min_seconds.is_finite()) {
        bail!("--min-seconds must be a positive number (got {})", a.min_seconds);
    }
    let gpu = GpuBackend::new(&GpuOptions { no_tuning: true, ..a.backend.gpu_options(&a.adapter) }).context("opening the GPU")?;
    let path = a.out.or_else(tune::default_path).context("no tuning file: give --out (HOME is not set)")?;
    eprintln!("GPU adapter: {}; tuning file {}", ssvae::Backend::describe(&gpu), path.display());
    // compile each model step once: the GEMMs it prepares are the shapes to tune
    let images = ssvae::bench::random_dataset(2048, 784, 10, 1);
    // 4096 windows: enough of each class for the 1000 class-balanced labels a bench step draws
    let series = ssvae::bench::random_series(4096, 128, 6, 6, 1)?;
    for &model in &a.models {
        let (family, paper) = paper_model(model, false);
        let data = if family == Family::Rnn { TrainData::Series(&series) } else { TrainData::Images(&images) };
        let widths: Vec<Option<usize>> =
            if family == Family::Dense { a.hidden_sizes.iter().map(|&h| Some(h)).collect() } else { vec![None] };
        for &b in &a.batch_sizes {
            for w in &widths {
                let spec = match w {
                    Some(h) => ModelSpec { hidden: vec![*h, *h], ..paper.clone() },
                    None => paper.clone(),
                };
                ssvae::bench::bench_trainer(&gpu, data, &spec, b)?;
            }
        }
    }
    let mut shapes = gpu.gemms_prepared();
    shapes.extend(a.sizes.iter().map(|&s| ssvae::backend::Gemm::new(s, s, s)));
    eprintln!("{} GEMM shapes, {} candidate tilings each", shapes.len(), GemmTiles::candidates().len());
    let entries = tune::tune(&gpu, &shapes, a.min_seconds, |e| {
        println!("{}", serde_json::to_string(e).unwrap_or_default());
    })?;
    println!("\n| M x N x K | op(A) op(B) | tiles (threads m x n, k, kernel) | GFLOP/s | untuned GFLOP/s | speed-up |\n|---|---|---|---:|---:|---:|");
    for e in &entries {
        let t = e.tiles;
        let kernel = match (t.vec4, t.wide, t.direct) {
            (true, wide, true) => format!("direct {}x{}", t.rows * if wide { 2 } else { 1 }, if wide { 8 } else { 4 }),
            (true, true, false) => "vec4 8x8".to_string(),
            (true, false, false) => "vec4".to_string(),
            _ => "scalar".to_string(),
        };
        println!(
            "| {}x{}x{} | {}{} | {}x{}, {}, {kernel} | {:.2} | {:.2} | {:.2}x |",
            e.m,
            e.n,
            e.k,
            if e.trans_a { "T" } else { "N" },
            if e.trans_b { "T" } else { "N" },
            t.threads_m,
            t.threads_n,
            t.tile_k,
            e.gflops,
            e.default_gflops,
            e.gflops / e.default_gflops
        );
    }
    tune::save(&path, gpu.adapter(), &entries)?;
    eprintln!("saved {} shapes for {} in {}", entries.len(), gpu.adapter().name, path.display());
    Ok(())
}

fn gemm(a: GemmBench) -> Result<()> {
    let gpu = if a.backend.wants_gpu() {
        let opts = GpuOptions { no_tuning: a.no_tuning, no_vec4: a.no_vec4, ..a.backend.gpu_options(&a.adapter) };
        Some(GpuBackend::new(&opts).context("opening the GPU")?)
    } else {
        None
    };
    let cpu = a.backend.wants_cpu().then(CpuBackend::new);
    if let Some(g) = &gpu {
        eprintln!("GPU adapter: {}", ssvae::Backend::describe(g));
    }
    let results = ssvae::bench::gemm_bench(gpu.as_ref(), cpu.as_ref(), &a.sizes, a.min_seconds)?;
    println!("\n{}", ssvae::bench::gemm_table(&results));
    Ok(())
}
