//! `GpuOptions::profile` (`ssvae bench train --profile` on a GPU): every launch runs between two
//! timestamp queries and is counted under its kernel's row (GEMMs by shape and shader file);
//! the results are those of the unprofiled backend. An adapter without timestamp queries
//! (e.g. GL) refuses with an error that says so.
mod common;

use ssvae::backend::gpu::{GpuBackend, GpuOptions};
use ssvae::backend::Gemm;
use ssvae::{Backend, Error, Kernels};

#[test]
fn a_profiled_gpu_counts_and_times_every_kernel() {
    let Some(gpu) = common::gpu() else { return };
    let prof = match GpuBackend::new(&GpuOptions { profile: true, ..Default::default() }) {
        Ok(p) => p,
        Err(e @ Error::Unsupported { .. }) => {
            assert!(e.to_string().contains("timestamp"), "{e}");
            common::notice(&format!("SKIPPED: {} cannot time kernels: {e}", gpu.describe()));
            return;
        }
        Err(e) => panic!("opening a profiled backend: {e}"),
    };
    assert!(gpu.profile_report().is_empty(), "an unprofiled backend keeps no profile");
    let g = Gemm::new(64, 48, 96);
    let mut r = common::rng(5);
    let (a, b) = (common::uniform(&mut r, 64 * 96, -1.0, 1.0), common::uniform(&mut r, 96 * 48, -1.0, 1.0));
    // three products, each scaled into y: 3 gemm launches and 3 scale launches
    let run = |be: &GpuBackend| -> Vec<f32> {
        let (ab, bb) = (be.upload_f32(&a).unwrap(), be.upload_f32(&b).unwrap());
        let (c, y) = (be.upload_f32(&vec![0.0; 64 * 48]).unwrap(), be.upload_f32(&vec![0.0; 64 * 48]).unwrap());
        for _ in 0..3 {
            be.gemm(g, &ab, &bb, None, &c).unwrap();
            be.scale(0.5, &c, &y).unwrap();
        }
        be.read_f32(&y).unwrap()
    };
    assert_eq!(run(&prof), run(gpu), "profiling must not change the results");
    let report = prof.profile_report();
    let row = |prefix: &str| report.iter().find(|r| r.0.starts_with(prefix)).unwrap_or_else(|| panic!("no row '{prefix}' in {report:?}"));
    let gemm = row("gemm 64x48x96 (");
    assert!(gemm.0.ends_with(".wgsl)"), "a GEMM's row names its shader file: {}", gemm.0);
    assert_eq!((gemm.1, row("scale").1), (3, 3), "{report:?}");
    assert_eq!(report.iter().map(|r| r.1).sum::<u64>(), 6, "only the launches made: {report:?}");
    assert!(gemm.2 > std::time::Duration::ZERO, "a 64 x 48 x 96 product takes some device time: {report:?}");
}
