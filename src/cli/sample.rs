//! `ssvae sample`: a PNG grid of generated images, one row per class, one column per style.

use std::path::PathBuf;

use anyhow::Result;
use ssvae::eval::grid::save_png;
use ssvae::run::Run;
use ssvae::Backend;

use super::{on_backend, DeviceArgs};

#[derive(clap::Args)]
pub struct SampleArgs {
    /// A folder written by `ssvae train` (SS or EU model).
    #[arg(long)]
    run: PathBuf,
    /// The PNG to write.
    #[arg(long, default_value = "grid.png")]
    out: PathBuf,
    /// Columns (styles); with --traverse, the side of each class's latent walk.
    #[arg(long, default_value_t = 10)]
    styles: usize,
    /// Seed of the styles (z ~ N(0, I)).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Walk the first two latent dimensions at quantiles of N(0, 1), one block per class.
    #[arg(long)]
    traverse: bool,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn sample(a: SampleArgs) -> Result<()> {
    on_backend!(a.dev, be => run_sample(be, a))
}

fn run_sample<B: Backend>(be: &B, a: SampleArgs) -> Result<()> {
    let run = Run::open(be, &a.run)?;
    let img = run.sample(be, a.styles, a.seed, a.traverse)?;
    save_png(&img, &a.out)?;
    println!("{}", serde_json::json!({"out": a.out, "width": img.width(), "height": img.height(), "traverse": a.traverse}));
    Ok(())
}
