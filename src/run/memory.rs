//! Sizes checked before anything is allocated: a model or a built-in dataset too large for this
//! machine is refused with an estimate, instead of aborting on a failed allocation (a
//! `--hidden 100000000` or a config.json with a 4e9-wide layer used to do that).
//!
//! The estimate is deliberately simple: 4 bytes for every element of every tensor of the
//! training graph (parameters, gradients, activations, without the planner's reuse), plus the
//! optimizer's two states per parameter, plus the data. It is an upper bound of what a step
//! allocates on the host (CPU backend) and is compared with the memory the OS reports available
//! (Linux: MemAvailable); where that is unknown the check passes.

use crate::error::{Error, Result};
use crate::model::{build, ModelSpec};

const GIB: f64 = (1u64 << 30) as f64;

/// Bytes of memory available to this process, when the OS says (Linux: MemAvailable).
pub fn available_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Parameters and estimated bytes of training `spec` with batches of `batch` rows.
pub fn model_bytes(spec: &ModelSpec, batch: usize) -> Result<(f64, f64)> {
    let (g, _) = build(spec, batch.max(1), 1)?;
    let elems = |shape: &[usize]| shape.iter().map(|&d| d as f64).product::<f64>();
    let params: f64 = g.params.iter().map(|p| elems(&g.tensors[p.tensor].shape)).sum();
    let all: f64 = g.tensors.iter().map(|t| elems(&t.shape)).sum();
    Ok((params, 4.0 * (all + 2.0 * params)))
}

/// Refuses `bytes` (described by `what` and `advice`) when they exceed the memory available.
pub fn check_fits(bytes: f64, what: &str, advice: &str) -> Result<()> {
    match available_bytes() {
        Some(avail) if bytes > avail => Err(Error::Invalid(format!(
            "{what} needs about {:.1} GiB, more than the {:.1} GiB of memory available; {advice}",
            bytes / GIB,
            avail / GIB
        ))),
        _ => Ok(()),
    }
}

/// The model of `spec` trained with batches of `batch` rows, plus `data_bytes` of data, fits.
pub fn check_model(spec: &ModelSpec, batch: usize, data_bytes: f64) -> Result<()> {
    let (params, bytes) = model_bytes(spec, batch)?;
    check_fits(
        bytes + data_bytes,
        &format!("{} with {:.3e} parameters at batch {batch}", spec.name(), params),
        "use smaller --hidden, --latent, --conv channels or --batch-size",
    )
}
