//! Sustained timing of a prepared launch, shared by `ssvae bench` and the GEMM tuner
//! ([`crate::backend::gpu::tune`]). It lives in the backend so the tuner needs nothing from
//! the layers above it.

use std::time::Instant;

use super::Backend;
use crate::error::Result;

/// Sustained time of one prepared launch: a warm-up launch (pipeline compilation, first
/// touch), then repeated launches recorded into single submissions until `min_seconds` have
/// passed, each ending with a device sync. Returns (launches, seconds per launch).
pub fn time_launch<B: Backend>(be: &B, launch: &B::Launch, min_seconds: f64) -> Result<(usize, f64)> {
    be.run(&[launch])?;
    be.sync()?;
    let mut batch = 1usize;
    let mut total_iters = 0usize;
    let start = Instant::now();
    loop {
        let list: Vec<_> = std::iter::repeat_n(launch, batch).collect();
        be.run(&list)?;
        be.sync()?;
        total_iters += batch;
        let el = start.elapsed().as_secs_f64();
        if el >= min_seconds {
            return Ok((total_iters, el / total_iters as f64));
        }
        // grow the batch so later submissions amortise launch overhead
        let per = el / total_iters as f64;
        batch = (((min_seconds - el) / per.max(1e-9)).ceil() as usize).clamp(1, 256);
    }
}
