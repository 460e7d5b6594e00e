//! `ssvae sample`: a PNG grid of generated images, one row per class (named on the left), one
//! column per style; RGB for RGB runs.

use std::path::PathBuf;

use anyhow::Result;
use ssvae::eval::grid::save_png;
use ssvae::run::Run;
use ssvae::Backend;

use super::{on_backend, DeviceArgs};

#[derive(clap::Args)]
pub struct SampleArgs {
    /// A folder written by `ssvae train` (an SS or EU image model).
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
    /// Scale every cell by this factor (nearest neighbour) [default: 2 for images under 32
    /// pixels, else 1].
    #[arg(long)]
    scale: Option<usize>,
    /// Number the columns (styles) above the grid.
    #[arg(long)]
    style_labels: bool,
    #[command(flatten)]
    dev: DeviceArgs,
}

pub fn sample(a: SampleArgs) -> Result<()> {
    on_backend!(a.dev, be => run_sample(be, a))
}

fn run_sample<B: Backend>(be: &B, a: SampleArgs) -> Result<()> {
    let run = Run::open(be, &a.run)?;
    let scale = a.scale.unwrap_or(if run.image_shape().is_some_and(|s| s[0] < 32) { 2 } else { 1 });
    if scale == 0 || scale > 16 {
        anyhow::bail!("--scale must be between 1 and 16 (got {scale})");
    }
    let img = run.sample(be, a.styles, a.seed, a.traverse, scale, a.style_labels)?;
    save_png(&img, &a.out)?;
    println!("{}", serde_json::json!({"out": a.out, "width": img.width(), "height": img.height(), "traverse": a.traverse}));
    Ok(())
}
