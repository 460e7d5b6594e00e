//! The command line: one file per subcommand, each mapping its flags to the library's specs
//! (`ssvae::run`) and printing the result. What they share lives here: the device flags, the
//! closed sets of values as clap `ValueEnum`s (so `--help` lists them and a wrong value exits
//! 2), and the progress bar, which is a `run::Observer`.

pub mod bench;
pub mod devices;
pub mod eval;
pub mod export;
pub mod feedback;
pub mod generate;
pub mod plot;
pub mod predict;
pub mod reproduce;
pub mod sample;
pub mod score;
pub mod table12;
pub mod train;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use ssvae::backend::gpu::{GpuBackend, GpuOptions};
use ssvae::run::{EpochReport, Observer, RunStart, StepProgress};

/// Runs `$body` with `$be` bound to the backend `$dev` opens: a GPU, or the CPU reference.
macro_rules! on_backend {
    ($dev:expr, $be:ident => $body:expr) => {
        match $dev.open()? {
            Some(gpu) => {
                let $be = &gpu;
                $body
            }
            None => {
                let $be = &ssvae::backend::cpu::CpuBackend::new();
                $body
            }
        }
    };
}
pub(crate) use on_backend;

/// Where to compute.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendArg {
    /// A hardware GPU if there is one, else the CPU backend.
    Auto,
    /// The best adapter, software rasterizers included.
    Gpu,
    /// The CPU reference backend.
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

impl BackendArg {
    /// The wgpu API this value names, if it names one.
    pub fn api(self) -> Option<&'static str> {
        match self {
            BackendArg::Vulkan => Some("vulkan"),
            BackendArg::Metal => Some("metal"),
            BackendArg::Dx12 => Some("dx12"),
            BackendArg::Gl => Some("gl"),
            _ => None,
        }
    }
}

#[derive(clap::Args, Clone)]
#[command(next_help_heading = "GPU")]
pub struct DeviceArgs {
    /// Where to compute: a GPU API selects that API's best adapter (WGPU_BACKEND also works).
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Substring of the adapter name to use (default: WGPU_ADAPTER_NAME, else the best one).
    #[arg(long)]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    pub fn gpu_options(&self) -> GpuOptions {
        GpuOptions { backends: self.backend.api().map(String::from), adapter_name: self.adapter.clone(), ..Default::default() }
    }

    /// The GPU to use, or `None` for the CPU backend. `auto` falls back to the CPU backend, with
    /// a note, when there is no adapter or only a software one (lavapipe and the like are far
    /// slower than the CPU backend).
    pub fn open(&self) -> Result<Option<GpuBackend>> {
        if self.backend == BackendArg::Cpu {
            return Ok(None);
        }
        let opened = GpuBackend::new(&self.gpu_options());
        if self.backend != BackendArg::Auto {
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
            // a wrong setting (WGPU_BACKEND naming no API) is the user's to fix, not a fallback
            Err(e @ ssvae::Error::Invalid(_)) => Err(e.into()),
            Err(e) => {
                eprintln!("note: {e}; using the CPU backend");
                Ok(None)
            }
        }
    }
}

/// Prints a run's summary as the last line of standard output; an interrupted run also says how
/// to continue it and exits with 130 (the shell's code for Ctrl-C).
pub fn finish(summary: &ssvae::run::RunSummary) -> Result<()> {
    println!("{}", serde_json::to_string(summary)?);
    if summary.interrupted {
        // the epochs the run was to reach are in its checkpoint
        let target = ssvae::run::RunConfig::load(&summary.out).map_or(summary.epochs + 1, |c| c.spec.epochs);
        let left = target.saturating_sub(summary.epochs).max(1);
        eprintln!(
            "stopped at step {} ({} epochs done, a checkpoint written); continue with: ssvae train --resume {} --epochs {left}",
            summary.steps,
            summary.epochs,
            summary.out.display()
        );
        std::process::exit(130);
    }
    Ok(())
}

pub fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// The terminal view of a run: a start line, a progress bar (when stdout is a terminal), one
/// line per epoch and the run's notes; nothing at all when quiet.
pub struct Progress {
    quiet: bool,
    bar: ProgressBar,
    /// Set by Ctrl-C (see [`Progress::stop_on_ctrl_c`]).
    stop: Option<Arc<AtomicBool>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress { quiet, bar: ProgressBar::hidden(), stop: None }
    }

    /// The first Ctrl-C asks the run to stop after its current step, with a checkpoint; a
    /// second one exits at once (the folder still holds its last complete checkpoint).
    pub fn stop_on_ctrl_c(mut self) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let installed = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: exiting now (the run folder keeps its last complete checkpoint)");
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: stopping after this step and writing a checkpoint (Ctrl-C again to quit now)");
        });
        if installed.is_ok() {
            self.stop = Some(stop);
        }
        self
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{line}"));
        }
    }
}

impl Observer for Progress {
    fn started(&mut self, s: &RunStart) {
        if s.software_adapter {
            self.say(&format!(
                "note: {} is a software rasterizer; the CPU backend (--backend cpu or auto) is much faster on this machine",
                s.adapter
            ));
        }
        self.say(&format!(
            "training {} on {} ({} train / {} test, {} labeled) with {} on {}; output {}",
            s.model,
            s.dataset,
            s.n_train,
            s.n_test,
            s.labeled,
            s.optimizer,
            s.adapter,
            s.out.display()
        ));
        if !self.quiet && std::io::stdout().is_terminal() {
            let b = ProgressBar::new((s.steps_per_epoch * s.epochs) as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]")
                    .expect("valid template"),
            );
            self.bar = b;
        }
    }

    fn step(&mut self, p: &StepProgress<'_>) {
        if let Some(l) = p.losses {
            self.bar.set_message(format!(
                "epoch {} rec {} kl {} ce {}  {:.0} samples/s",
                p.epoch,
                fmt_opt(l.rec),
                fmt_opt(l.kl),
                fmt_opt(l.ce),
                p.samples_per_s
            ));
        }
        self.bar.inc(1);
    }

    fn epoch(&mut self, e: &EpochReport) {
        let val = e.validation_accuracy.map_or(String::new(), |v| format!(" | validation accuracy {v:.4}"));
        self.say(&format!(
            "epoch {:>3}: train rec {} kl {} ce {} | test accuracy {} log loss {} rec {}{val} | {:.1}s",
            e.epoch,
            fmt_opt(e.train_rec),
            fmt_opt(e.train_kl),
            fmt_opt(e.train_ce),
            fmt_opt(e.test_accuracy),
            fmt_opt(e.test_log_loss),
            fmt_opt(e.test_rec),
            e.epoch_seconds
        ));
    }

    fn note(&mut self, msg: &str) {
        self.say(msg);
    }

    fn finished(&mut self) {
        self.bar.finish_and_clear();
        self.bar = ProgressBar::hidden();
    }

    fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}
