//! Views: several tensors inside one flat buffer (how parameters are stored, so one optimizer
//! dispatch updates them all), bound at aligned offsets; aliasing rules between views.
mod common;

use common::*;
use ssvae::backend::{Act, Gemm};
use ssvae::{Backend, BufferLike, DType, Kernels};

/// y = relu(x W + b) with W and b views into one flat buffer, then an axpy over the flat
/// buffer; the same on both backends and against a direct computation.
fn run<B: Backend>(be: &B, x: &[f32], flat: &[f32], w_off: usize, b_off: usize) -> (Vec<f32>, Vec<f32>) {
    let fb = be.upload_f32(flat).unwrap();
    let w = be.view(&fb, w_off, 5 * 3).unwrap();
    let b = be.view(&fb, b_off, 3).unwrap();
    assert_eq!(w.offset(), w_off);
    let xb = be.upload_f32(x).unwrap();
    let y = be.alloc(4 * 3, DType::F32).unwrap();
    be.gemm(Gemm::new(4, 3, 5).bias(Act::Relu), &xb, &w, Some(&b), &y).unwrap();
    // update only the bias view, in place
    let ones = be.upload_f32(&[1.0; 3]).unwrap();
    be.axpy(0.5, &ones, &b).unwrap();
    (be.read_f32(&y).unwrap(), be.read_f32(&fb).unwrap())
}

#[test]
fn gemm_on_views_of_one_flat_buffer() {
    let cpu = cpu();
    let gpu = gpu();
    let align = gpu.map_or(1, |g| g.view_alignment()).max(cpu.view_alignment());
    let (w_off, b_off) = (align, 2 * align * (15usize.div_ceil(align)).max(1) + align);
    let total = b_off + 3 + 7;
    let mut r = rng(5);
    let flat = uniform(&mut r, total, -1.0, 1.0);
    let x = uniform(&mut r, 4 * 5, -1.0, 1.0);
    let (y_cpu, flat_cpu) = run(&cpu, &x, &flat, w_off, b_off);
    // direct computation
    for i in 0..4 {
        for j in 0..3 {
            let mut s = flat[b_off + j];
            for k in 0..5 {
                s += x[i * 5 + k] * flat[w_off + k * 3 + j];
            }
            assert!((y_cpu[i * 3 + j] - s.max(0.0)).abs() < 1e-5);
        }
    }
    for (i, (&a, &b)) in flat_cpu.iter().zip(&flat).enumerate() {
        let want = if (b_off..b_off + 3).contains(&i) { b + 0.5 } else { b };
        assert_eq!(a, want, "element {i}: only the bias view may change");
    }
    if let Some(gpu) = gpu {
        let (y_gpu, flat_gpu) = run(gpu, &x, &flat, w_off, b_off);
        assert_close("y", &y_gpu, &y_cpu, 1e-5, 1e-5);
        assert_close("flat", &flat_gpu, &flat_cpu, 0.0, 0.0);
    }
}

#[test]
fn views_of_one_storage_read_and_written_together_are_rejected() {
    let cpu = cpu();
    let flat = cpu.alloc(64, DType::F32).unwrap();
    let a = cpu.view(&flat, 0, 8).unwrap();
    let b = cpu.view(&flat, 8, 8).unwrap();
    let e = cpu.add(&a, &a.clone(), &b).unwrap_err().to_string();
    assert!(e.contains("same storage"), "{e}");
    // two written, overlapping views
    let c = cpu.view(&flat, 4, 8).unwrap();
    let src = cpu.alloc(16, DType::F32).unwrap();
    let e = cpu.split_cols(2, &src, &a, &c).unwrap_err().to_string();
    assert!(e.contains("overlap"), "{e}");
    // two written, disjoint views are fine
    cpu.split_cols(2, &src, &a, &b).unwrap();
    assert!(cpu.view(&flat, 60, 8).is_err());
    // an optional slot's buffer counts as read: binding the output there is aliasing too
    let (a2, b2, c2) = (cpu.alloc(4, DType::F32).unwrap(), cpu.alloc(4, DType::F32).unwrap(), cpu.alloc(4, DType::F32).unwrap());
    let e = cpu.prepare(&ssvae::Op::Gemm(Gemm::new(2, 2, 2)), &[&a2, &b2, &c2, &c2]).err().expect("aliased optional slot").to_string();
    assert!(e.contains("'bias' and 'c'"), "{e}");
    if let Some(gpu) = gpu() {
        let flat = gpu.alloc(1024, DType::F32).unwrap();
        assert!(gpu.view(&flat, 1, 4).is_err() || gpu.view_alignment() == 1);
    }
}
