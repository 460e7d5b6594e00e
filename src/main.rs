//! The `ssvae` command line. Library errors are typed; `anyhow` adds context here only.

mod cli_data;
mod cli_eval;
mod cli_feedback;
mod cli_train;
mod reproduce;
mod table12;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::{list_adapters, GpuBackend, GpuOptions};

#[derive(Parser)]
#[command(name = "ssvae", version, about = "Semi-supervised variational autoencoders on any desktop GPU")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
pub struct DeviceArgs {
    /// Where to compute: `auto` (a hardware GPU if there is one, else the CPU backend), `gpu`
    /// (the best adapter, software rasterizers included), `cpu` (the reference backend), or a
    /// GPU API list such as `vulkan`, `metal`, `dx12`, `gl` (WGPU_BACKEND also works).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Substring of the adapter name to use (default: WGPU_ADAPTER_NAME, else the best one).
    #[arg(long)]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    pub fn gpu_options(&self) -> Result<GpuOptions> {
        let b = self.backend.to_lowercase();
        let backends = match b.as_str() {
            "auto" | "gpu" | "cpu" | "both" => None,
            list => {
                for api in list.split(',') {
                    if !["vulkan", "vk", "metal", "mtl", "dx12", "d3d12", "gl", "gles", "opengl"].contains(&api.trim()) {
                        bail!("--backend: unknown value '{api}'; use gpu, cpu, or a GPU API: vulkan, metal, dx12, gl");
                    }
                }
                Some(list.to_string())
            }
        };
        Ok(GpuOptions { backends, adapter_name: self.adapter.clone(), ..Default::default() })
    }
    pub fn wants_cpu_only(&self) -> bool {
        self.backend.eq_ignore_ascii_case("cpu")
    }

    /// The GPU to use, or `None` for the CPU backend. `auto` falls back to the CPU backend, with
    /// a note, when there is no adapter or only a software one (lavapipe and the like are far
    /// slower than the CPU backend).
    pub fn open(&self) -> Result<Option<GpuBackend>> {
        if self.wants_cpu_only() {
            return Ok(None);
        }
        let opened = GpuBackend::new(&self.gpu_options()?);
        if !self.backend.eq_ignore_ascii_case("auto") {
            return Ok(Some(opened?));
        }
        match opened {
            Ok(g) if g.adapter().device_type != "Cpu" => Ok(Some(g)),
            Ok(g) => {
                eprintln!(
                    "note: the only GPU adapter is a software one ({}); using the faster CPU backend (--backend gpu forces the adapter)",
                    ssvae::Backend::describe(&g)
                );
                Ok(None)
            }
            Err(e) => {
                eprintln!("note: {e}; using the CPU backend");
                Ok(None)
            }
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a model (no arguments: SS_D on the built-in synthetic dataset). The last line
    /// printed is one JSON object with the results.
    Train(Box<cli_train::TrainArgs>),
    /// Evaluate a saved run on the test split of its dataset (or another one).
    Eval(cli_eval::EvalArgs),
    /// Anomaly protocol (paper 3.1.3): train without --anomaly-class K, score the test set
    /// (negative log reconstruction probability), report the ROC AUC of detecting class K.
    Anomaly(Box<cli_train::TrainArgs>),
    /// Score new samples with a saved run (CSV of anomaly scores).
    Score(cli_eval::ScoreArgs),
    /// Correct an anomaly run: marked false positives / negatives become two extra classes,
    /// the model is extended and retrained, scores are adjusted (the paper's equation 6).
    Feedback(cli_feedback::FeedbackArgs),
    /// Generate a PNG grid: one row per class, one column per style.
    Sample(cli_eval::SampleArgs),
    /// PNG plots of a saved run: training curves, ROC curve (anomaly runs), latent scatter.
    Plot(cli_eval::PlotArgs),
    /// Run the paper's protocol for a table over several seeds; writes mean ± std next to the
    /// paper's figures as markdown.
    Reproduce(reproduce::ReproduceArgs),
    /// List the GPU adapters found, with the limits that matter to ssvae.
    Devices {
        #[command(flatten)]
        dev: DeviceArgs,
        /// Print one JSON object per adapter instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks (one JSON line per case, then a markdown table).
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Training throughput of SS_D or SS_CNN (samples/s, ms per step, device memory) over
    /// batch sizes (and hidden widths for the dense model), on the GPU and/or the CPU backend.
    Train {
        /// ss-dense, ss-cnn or ss-rnn (the paper's architectures on random data of MNIST's or
        /// UCI-HAR's size; any model name of `train` works).
        #[arg(long, default_value = "ss-dense")]
        model: String,
        /// `gpu`, `cpu`, `both` (default), or a GPU API list.
        #[arg(long, default_value = "both")]
        backend: String,
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
        /// Also print where a CPU step's time goes, kernel by kernel.
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
    },
    /// Tune the GPU's GEMM tiles for this adapter: times every candidate tiling on each GEMM
    /// shape of the given model steps (and square sizes) and saves the fastest per shape in the
    /// tuning file, which later runs on this adapter read (BENCHMARKS.md, "Tuning").
    Tune {
        /// Models whose training-step GEMMs are tuned (any `train` model name).
        #[arg(long, value_delimiter = ',', default_values_t = vec!["ss-dense".to_string()])]
        models: Vec<String>,
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
        /// Tuning file (default: SSVAE_TUNING_FILE, else ~/.cache/ssvae/gemm-tuning.json).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// `gpu` (default) or a GPU API list.
        #[arg(long, default_value = "gpu")]
        backend: String,
        #[arg(long)]
        adapter: Option<String>,
    },
    /// GEMM GFLOP/s of the GPU kernel and the CPU path: square sizes and the dense model's shapes.
    Gemm {
        /// `gpu`, `cpu`, `both` (default), or a GPU API list.
        #[arg(long, default_value = "both")]
        backend: String,
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
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Train(a) => cli_train::train(*a),
        Cmd::Eval(a) => cli_eval::eval(a),
        Cmd::Anomaly(a) => {
            if a.anomaly_class.is_none() {
                bail!("ssvae anomaly needs --anomaly-class K (the class left out of training)");
            }
            cli_train::train(*a)
        }
        Cmd::Score(a) => cli_eval::score(a),
        Cmd::Feedback(a) => cli_feedback::feedback(a),
        Cmd::Sample(a) => cli_eval::sample(a),
        Cmd::Reproduce(a) => reproduce::reproduce(a),
        Cmd::Plot(a) => cli_eval::plot(a),
        Cmd::Devices { dev, json } => {
            let adapters = list_adapters(&dev.gpu_options()?);
            if adapters.is_empty() {
                bail!("{}", ssvae::Error::NoAdapter { detail: format!(" for --backend {}", dev.backend) });
            }
            for a in &adapters {
                if json {
                    println!("{}", serde_json::to_string(a)?);
                } else {
                    println!("{} [{} / {}] driver: {}", a.name, a.backend, a.device_type, a.driver);
                    println!(
                        "    max storage binding {} MiB, max buffer {} MiB, workgroup <= {} invocations (x <= {}), {} KiB workgroup memory, {} workgroups/dim, shader-f16: {}",
                        a.max_storage_buffer_binding_size >> 20,
                        a.max_buffer_size >> 20,
                        a.max_compute_invocations_per_workgroup,
                        a.max_compute_workgroup_size_x,
                        a.max_compute_workgroup_storage_size >> 10,
                        a.max_compute_workgroups_per_dimension,
                        if a.shader_f16 { "yes" } else { "no" }
                    );
                    if let Some(path) = ssvae::backend::gpu::tune::default_path() {
                        match ssvae::backend::gpu::tune::load_for(&path, a) {
                            Ok(t) if !t.is_empty() => println!("    GEMM tuning: {} shapes in {}", t.len(), path.display()),
                            Ok(_) => println!("    GEMM tuning: none (built-in tiles; `ssvae bench tune` measures this adapter's)"),
                            Err(e) => println!("    GEMM tuning: unreadable ({e})"),
                        }
                    }
                }
            }
            Ok(())
        }
        Cmd::Bench {
            what:
                BenchCmd::Train {
                    model,
                    backend,
                    adapter,
                    batch_sizes,
                    hidden_sizes,
                    min_seconds,
                    warmup,
                    profile,
                    no_tuning,
                    no_vec4,
                    data_f16,
                },
        } => {
            let (family, kind) = ssvae::model::ModelSpec::parse_name(&model)?;
            let dev = DeviceArgs { backend: backend.clone(), adapter };
            let gpu = if dev.wants_cpu_only() {
                None
            } else {
                Some(GpuBackend::new(&GpuOptions { no_tuning, no_vec4, ..dev.gpu_options()? }).context("opening the GPU")?)
            };
            let cpu = if backend == "both" || backend == "cpu" {
                Some(if profile { CpuBackend::profiled() } else { CpuBackend::new() })
            } else {
                None
            };
            // MNIST-sized random images, or UCI-HAR-sized random windows (7352 x 128 steps x 6)
            let images = ssvae::bench::random_dataset(60000, 784, 10, 1);
            let series = if family == ssvae::model::Family::Rnn { Some(ssvae::bench::random_series(7352, 128, 6, 6, 1)?) } else { None };
            let data = match &series {
                Some(s) => ssvae::train::TrainData::Series(s),
                None => ssvae::train::TrainData::Images(&images),
            };
            let paper = match family {
                ssvae::model::Family::Dense => ssvae::model::ModelSpec::dense(kind, 784, 10),
                ssvae::model::Family::Cnn => ssvae::model::ModelSpec::cnn(kind, [28, 28, 1], 10),
                ssvae::model::Family::Rnn => {
                    ssvae::model::ModelSpec { series_f16: data_f16, ..ssvae::model::ModelSpec::rnn(kind, 128, 6, 6) }
                }
            };
            if data_f16 && family != ssvae::model::Family::Rnn {
                anyhow::bail!("--data-f16 applies to the recurrent models");
            }
            let mut cases: Vec<(usize, ssvae::model::ModelSpec)> = batch_sizes.iter().map(|&b| (b, paper.clone())).collect();
            // width scaling: the dense model only (the CNN's cost is in its convolutions)
            if family == ssvae::model::Family::Dense {
                cases.extend(
                    hidden_sizes
                        .iter()
                        .filter(|&&h| !(h == 1024 && batch_sizes.contains(&128)))
                        .map(|&h| (128, ssvae::model::ModelSpec { hidden: vec![h, h], ..paper.clone() })),
                );
            }
            let mut rows = Vec::new();
            for (batch, spec) in cases {
                if let Some(g) = &gpu {
                    let r = ssvae::bench::train_bench(g, data, &spec, batch, min_seconds, warmup)?;
                    println!("{}", serde_json::to_string(&r)?);
                    rows.push(r);
                }
                if let Some(c) = &cpu {
                    let r = ssvae::bench::train_bench(c, data, &spec, batch, min_seconds, warmup)?;
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
            if let Some(c) = cpu.as_ref().filter(|_| profile) {
                let report = c.profile_report();
                let total: f64 = report.iter().map(|r| r.2.as_secs_f64()).sum();
                println!("\nCPU time by kernel, all cases together (total {total:.2} s):\n| kernel | launches | ms | share |\n|---|---:|---:|---:|");
                for (k, n, t) in report.iter().take(30) {
                    println!("| {k} | {n} | {:.1} | {:.1}% |", t.as_secs_f64() * 1e3, 100.0 * t.as_secs_f64() / total);
                }
            }
            Ok(())
        }
        Cmd::Bench { what: BenchCmd::Tune { models, batch_sizes, hidden_sizes, sizes, min_seconds, out, backend, adapter } } => {
            if backend == "cpu" || backend == "both" {
                anyhow::bail!("--backend {backend}: tuning is for the GPU backend (give `gpu` or a GPU API list)");
            }
            if !(min_seconds > 0.0 && min_seconds.is_finite()) {
                anyhow::bail!("--min-seconds must be a positive number (got {min_seconds})");
            }
            let dev = DeviceArgs { backend, adapter };
            let gpu = GpuBackend::new(&GpuOptions { no_tuning: true, ..dev.gpu_options()? }).context("opening the GPU")?;
            let path = out.or_else(ssvae::backend::gpu::tune::default_path).context("no tuning file: give --out (HOME is not set)")?;
            eprintln!("GPU adapter: {}; tuning file {}", ssvae::Backend::describe(&gpu), path.display());
            // compile each model step once: the GEMMs it prepares are the shapes to tune
            let images = ssvae::bench::random_dataset(2048, 784, 10, 1);
            let series = ssvae::bench::random_series(512, 128, 6, 6, 1)?;
            for name in &models {
                let (family, kind) = ssvae::model::ModelSpec::parse_name(name)?;
                let (data, paper) = match family {
                    ssvae::model::Family::Dense => {
                        (ssvae::train::TrainData::Images(&images), ssvae::model::ModelSpec::dense(kind, 784, 10))
                    }
                    ssvae::model::Family::Cnn => {
                        (ssvae::train::TrainData::Images(&images), ssvae::model::ModelSpec::cnn(kind, [28, 28, 1], 10))
                    }
                    ssvae::model::Family::Rnn => (ssvae::train::TrainData::Series(&series), ssvae::model::ModelSpec::rnn(kind, 128, 6, 6)),
                };
                let widths: Vec<Option<usize>> =
                    if family == ssvae::model::Family::Dense { hidden_sizes.iter().map(|&h| Some(h)).collect() } else { vec![None] };
                for &b in &batch_sizes {
                    for w in &widths {
                        let spec = match w {
                            Some(h) => ssvae::model::ModelSpec { hidden: vec![*h, *h], ..paper.clone() },
                            None => paper.clone(),
                        };
                        ssvae::bench::bench_trainer(&gpu, data, &spec, b)?;
                    }
                }
            }
            let mut shapes = gpu.gemms_prepared();
            shapes.extend(sizes.iter().map(|&s| ssvae::backend::Gemm::new(s, s, s)));
            eprintln!("{} GEMM shapes, {} candidate tilings each", shapes.len(), ssvae::backend::gpu::GemmTiles::candidates().len());
            let entries = ssvae::backend::gpu::tune::tune(&gpu, &shapes, min_seconds, |e| {
                println!("{}", serde_json::to_string(e).unwrap_or_default());
            })?;
            println!("\n| M x N x K | op(A) op(B) | tiles (threads m x n, k, kernel) | GFLOP/s | untuned GFLOP/s | speed-up |\n|---|---|---|---:|---:|---:|");
            for e in &entries {
                let t = e.tiles;
                println!(
                    "| {}x{}x{} | {}{} | {}x{}, {}, {} | {:.2} | {:.2} | {:.2}x |",
                    e.m,
                    e.n,
                    e.k,
                    if e.trans_a { "T" } else { "N" },
                    if e.trans_b { "T" } else { "N" },
                    t.threads_m,
                    t.threads_n,
                    t.tile_k,
                    if t.vec4 && t.wide {
                        "vec4 8x8"
                    } else if t.vec4 {
                        "vec4"
                    } else {
                        "scalar"
                    },
                    e.gflops,
                    e.default_gflops,
                    e.gflops / e.default_gflops
                );
            }
            ssvae::backend::gpu::tune::save(&path, gpu.adapter(), &entries)?;
            eprintln!("saved {} shapes for {} in {}", entries.len(), gpu.adapter().name, path.display());
            Ok(())
        }
        Cmd::Bench { what: BenchCmd::Gemm { backend, adapter, sizes, min_seconds, no_tuning, no_vec4 } } => {
            let dev = DeviceArgs { backend: backend.clone(), adapter };
            let gpu = if dev.wants_cpu_only() {
                None
            } else {
                Some(GpuBackend::new(&GpuOptions { no_tuning, no_vec4, ..dev.gpu_options()? }).context("opening the GPU")?)
            };
            let cpu = if backend == "both" || backend == "cpu" { Some(CpuBackend::new()) } else { None };
            if let Some(g) = &gpu {
                eprintln!("GPU adapter: {}", ssvae::Backend::describe(g));
            }
            let results = ssvae::bench::gemm_bench(gpu.as_ref(), cpu.as_ref(), &sizes, min_seconds)?;
            println!("\n{}", ssvae::bench::gemm_table(&results));
            Ok(())
        }
    }
}
