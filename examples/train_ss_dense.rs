//! Train and evaluate the paper's SS_D (or any other image model) through the library API.
//!
//!     cargo run --release --example train_ss_dense            # built-in synthetic glyphs
//!     cargo run --release --example train_ss_dense -- mnist   # $SSVAE_DATA/mnist
//!     cargo run --release --example train_ss_dense -- fashion-mnist ss-cnn   # the paper's CNN
//!
//! Uses a hardware GPU when one opens, else the CPU reference backend.

use ssvae::backend::cpu::CpuBackend;
use ssvae::backend::gpu::GpuBackend;
use ssvae::data::{self, IdxDataset, Split};
use ssvae::model::{Family, ModelSpec};
use ssvae::train::{LabelSpec, TrainConfig, Trainer};
use ssvae::Backend;

fn run<B: Backend>(be: &B, split: &Split, model: &str, epochs: usize) -> ssvae::Result<()> {
    let (train, test) = (&split.train, &split.test);
    // The paper's architecture of this family and kind for this data; 100 labels,
    // class-balanced.
    let (family, kind) = ModelSpec::parse_name(model)?;
    let spec = match family {
        Family::Dense => ModelSpec::dense(kind, train.dim(), train.classes),
        Family::Cnn => ModelSpec::cnn(kind, [train.height, train.width, train.channels], train.classes),
        Family::Rnn => return Err(ssvae::Error::Invalid(format!("{model} trains on time series; this example trains image models"))),
    };
    let mut cfg = TrainConfig::new(spec, &train.name);
    cfg.labels = LabelSpec::Count(100);
    let labeled = data::label_subset(&train.labels, train.classes, 100, cfg.seed)?;
    let mut trainer = Trainer::new(be, cfg, train, Some(test), labeled)?;
    println!("{} steps per epoch on {}", trainer.steps_per_epoch(), be.describe());
    for epoch in 1..=epochs {
        for _ in 0..trainer.steps_per_epoch() {
            trainer.step(be)?;
        }
        let losses = trainer.take_losses(be)?; // also detects divergence
        let report = trainer.evaluate(be)?.expect("a test split was given");
        println!(
            "epoch {epoch}: rec {:.2} kl {:.2} | test accuracy {:.4} log loss {:.4}",
            losses.rec.unwrap_or(f64::NAN),
            losses.kl.unwrap_or(f64::NAN),
            report.accuracy.unwrap_or(f64::NAN),
            report.log_loss.unwrap_or(f64::NAN)
        );
    }
    let out = std::path::PathBuf::from(format!("runs/example-{model}"));
    trainer.save(be, &out)?;
    println!("saved {}", out.join("model.safetensors").display());
    Ok(())
}

fn main() -> ssvae::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "synthetic".into());
    let model = std::env::args().nth(2).unwrap_or_else(|| "ss-dense".into());
    let split = match IdxDataset::from_name(&which) {
        Some(ds) => {
            let root =
                data::default_data_dir().ok_or_else(|| ssvae::Error::Invalid("set SSVAE_DATA to the folder holding mnist/".into()))?;
            data::load_idx_dataset(&root.join(ds.name()), ds)?
        }
        None => data::synthetic(5000, 1000, 0),
    };
    match GpuBackend::from_env() {
        // a software rasterizer (lavapipe, llvmpipe) is far slower than the CPU backend
        Ok(gpu) if gpu.adapter().device_type != "Cpu" => run(&gpu, &split, &model, 3),
        Ok(_) => run(&CpuBackend::new(), &split, &model, 3),
        Err(e) => {
            eprintln!("{e}\nfalling back to the CPU backend");
            run(&CpuBackend::new(), &split, &model, 3)
        }
    }
}
