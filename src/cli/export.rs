//! `ssvae export`: a saved run as ONNX graphs or a PyTorch module (see `ssvae::export`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use ssvae::export::{self, Format};

/// What to export to.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ToArg {
    /// encoder.onnx (raw input -> probs, mu, logvar) and decoder.onnx (z, pi -> mean, var), opset 17.
    Onnx,
    /// ssvae_model.py (torch only) and weights.safetensors: `load(dir)` gives an nn.Module.
    Torch,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A folder written by `ssvae train` (SS, ES or EU model; dense, cnn or rnn).
    #[arg(long)]
    run: PathBuf,
    /// The format.
    #[arg(long, value_enum)]
    to: ToArg,
    /// The folder to write into (created).
    #[arg(long)]
    out: PathBuf,
    /// Also write this data's samples as the exported model takes them (raw values, read as
    /// `ssvae predict --data` reads them) to OUT/inputs.npy, their ids to OUT/inputs_ids.txt:
    /// for checking the export against `ssvae predict`.
    #[arg(long)]
    inputs: Option<PathBuf>,
}

pub fn export(a: ExportArgs) -> Result<()> {
    let format = match a.to {
        ToArg::Onnx => Format::Onnx,
        ToArg::Torch => Format::Torch,
    };
    let done = export::export(&a.run, format, &a.out).with_context(|| format!("exporting {}", a.run.display()))?;
    if let Some(data) = &a.inputs {
        let (values, shape, ids) = export::raw_samples(&a.run, data).with_context(|| format!("reading {}", data.display()))?;
        let npy = a.out.join("inputs.npy");
        ssvae::fsutil::write_atomic(&npy, &export::npy_f32(&values, &shape))?;
        ssvae::fsutil::write_atomic(&a.out.join("inputs_ids.txt"), (ids.join("\n") + "\n").as_bytes())?;
        eprintln!("wrote {} samples of {:?} to {}", shape[0], &shape[1..], npy.display());
    }
    for f in &done.files {
        eprintln!("wrote {}", f.display());
    }
    println!("{}", serde_json::to_string(&done)?);
    Ok(())
}
