//! A run through the library alone, end to end: train the paper's SS_D (or any image model),
//! open the saved run folder, predict class probabilities, encode, score and draw a sample grid.
//! The folder is the same as `ssvae train` writes: `ssvae eval --run runs/example-ss-dense`
//! and `ssvae sample` open it too.
//!
//!     cargo run --release --example train_ss_dense            # built-in synthetic glyphs
//!     cargo run --release --example train_ss_dense -- mnist   # $SSVAE_DATA/mnist
//!     cargo run --release --example train_ss_dense -- fashion-mnist ss-cnn   # the paper's CNN
//!
//! Uses a hardware GPU when one opens, else the CPU reference backend.

use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::GpuBackend;
use ssvae::model::ModelSpec;
use ssvae::run::{self, DatasetName, EpochReport, Observer, Run, RunSpec};
use ssvae::train::LabelSpec;
use ssvae::Backend;

/// Prints one line per epoch (the CLI's observer draws a progress bar instead).
struct EpochLines;

impl Observer for EpochLines {
    fn epoch(&mut self, e: &EpochReport) {
        println!(
            "epoch {}: rec {:.2} kl {:.2} | test accuracy {:.4} log loss {:.4}",
            e.epoch,
            e.train_rec.unwrap_or(f64::NAN),
            e.train_kl.unwrap_or(f64::NAN),
            e.test_accuracy.unwrap_or(f64::NAN),
            e.test_log_loss.unwrap_or(f64::NAN)
        );
    }
}

fn main_on<B: Backend>(be: &B, dataset: DatasetName, model: &str) -> ssvae::Result<()> {
    // The paper's architecture of this family and kind; 100 class-balanced labels, 3 epochs.
    let (family, kind) = ModelSpec::parse_name(model)?;
    let mut spec = RunSpec::new(family, kind, dataset);
    spec.labels = Some(LabelSpec::Count(100));
    spec.epochs = 3;
    spec.data.synthetic = (5000, 1000);
    let out = std::path::PathBuf::from(format!("runs/example-{model}"));
    let _ = std::fs::remove_dir_all(&out); // a fresh run each time
    spec.out = Some(out.clone());
    let summary = run::train(be, &spec, &mut EpochLines)?;
    println!("trained on {} in {:.1} s; summary: {}", summary.adapter, summary.train_seconds, out.join(run::SUMMARY_FILE).display());

    // Open the folder as any later program would, and use the model.
    let saved = Run::open(be, &out)?;
    let data = saved.load_data(None, None)?;
    let test = data.test();
    let probs = saved.predict_proba(be, test)?;
    let classes = saved.model().classes;
    let correct = (0..test.n())
        .filter(|&i| {
            let row = &probs[i * classes..(i + 1) * classes];
            let arg = (0..classes).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            test.label(i) == Some(arg as u8)
        })
        .count();
    println!(
        "predict_proba: accuracy {:.4} on {} test samples (the run reported {:.4})",
        correct as f64 / test.n() as f64,
        test.n(),
        summary.accuracy.unwrap_or(f64::NAN)
    );
    if saved.model().has_decoder() {
        let z = saved.encode(be, test)?;
        let (scores, _) = saved.score(be, test, 5, 0)?;
        println!(
            "encode: {} latent means of {} dims; score: mean anomaly score {:.2}",
            test.n(),
            z.len() / test.n(),
            scores.iter().sum::<f64>() / scores.len() as f64
        );
        let grid = saved.sample(be, 10, 0, false, 1, false)?;
        let png = out.join("grid.png");
        ssvae::eval::grid::save_png(&grid, &png)?;
        println!("sample: {}x{} grid in {}", grid.width(), grid.height(), png.display());
    }
    Ok(())
}

fn main() -> ssvae::Result<()> {
    let dataset = DatasetName::parse(&std::env::args().nth(1).unwrap_or_else(|| "synthetic".into()))?;
    let model = std::env::args().nth(2).unwrap_or_else(|| "ss-dense".into());
    match GpuBackend::from_env() {
        // a software rasterizer (lavapipe, llvmpipe) is far slower than the CPU backend
        Ok(gpu) if gpu.adapter().device_type != "Cpu" => main_on(&gpu, dataset, &model),
        Ok(_) => main_on(&CpuBackend::new(), dataset, &model),
        Err(e) => {
            eprintln!("{e}\nfalling back to the CPU backend");
            main_on(&CpuBackend::new(), dataset, &model)
        }
    }
}
