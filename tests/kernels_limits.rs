//! Devices with fewer resources than WebGPU's defaults (GLES 3.1 drivers behind `--backend gl`):
//! a kernel the device cannot run must fail with `Error::Unsupported`, naming the device, the
//! kernel and the limit, never with a panic or a raw validation message; kernels within the
//! limits still match their CPU twins.
//!
//! The device is opened on this machine's adapter with `wgpu::Limits::downlevel_defaults()`
//! (4 storage buffers per shader stage, 256 invocations, 16 KiB of workgroup memory), so the
//! test runs wherever a GPU test runs, Vulkan or GL.
mod common;

use common::*;
use ssvae::backend::gpu::{GpuBackend, GpuOptions};
use ssvae::backend::{Gemm, Op};
use ssvae::{Backend, Error, Kernels};

fn downlevel() -> Option<GpuBackend> {
    gpu()?; // the adapter exists (or the skip is printed)
    let opts = GpuOptions { limits: Some(wgpu::Limits::downlevel_defaults()), ..Default::default() };
    Some(GpuBackend::new(&opts).expect("any adapter grants the downlevel limits"))
}

#[test]
fn a_kernel_over_the_storage_buffer_limit_is_a_clear_error() {
    let Some(g) = downlevel() else { return };
    assert_eq!(g.adapter().max_storage_buffers_per_shader_stage, 4);
    // the LSTM forward binds 8 storage buffers
    let (b, t, h) = (2, 3, 4);
    let bufs: Vec<_> = [b * t * 4 * h, h * 4 * h, b * h, b * h, b * t * h, b * t * h, b * t * 4 * h, b * t * h]
        .iter()
        .map(|&n| g.upload_f32(&vec![0.0; n]).unwrap())
        .collect();
    let refs: Vec<_> = bufs.iter().collect();
    match g.prepare(&Op::LstmForward { batch: b, steps: t, hidden: h }, &refs) {
        Err(e @ Error::Unsupported { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("lstm_forward") && msg.contains("8 storage buffers") && msg.contains("allows 4"), "{msg}");
        }
        Err(e) => panic!("expected Error::Unsupported, got {e}"),
        Ok(_) => panic!("an 8-buffer kernel was prepared on a device allowing 4"),
    }
}

#[test]
fn kernels_within_the_limits_still_match_the_cpu() {
    let Some(g) = downlevel() else { return };
    let cpu = cpu();
    // a GEMM with bias binds a, b, bias, c: exactly 4
    let (m, n, k) = (37, 29, 53);
    let mut r = rng(7);
    let (a, bm, bias) = (uniform(&mut r, m * k, -1.0, 1.0), uniform(&mut r, k * n, -1.0, 1.0), uniform(&mut r, n, -1.0, 1.0));
    fn gemm_bias<B: Kernels>(be: &B, (m, n, k): (usize, usize, usize), a: &[f32], b: &[f32], bias: &[f32]) -> Vec<f32> {
        let c = be.upload_f32(&vec![f32::NAN; m * n]).unwrap();
        let up = |x: &[f32]| be.upload_f32(x).unwrap();
        be.gemm(Gemm::new(m, n, k), &up(a), &up(b), Some(&up(bias)), &c).unwrap();
        be.read_f32(&c).unwrap()
    }
    let want = gemm_bias(&cpu, (m, n, k), &a, &bm, &bias);
    assert_close("gemm + bias on a downlevel device", &gemm_bias(&g, (m, n, k), &a, &bm, &bias), &want, 1e-4, 1e-4);
}
