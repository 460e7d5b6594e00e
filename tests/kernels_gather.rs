//! gather_rows_u8, gather_rows_f32, gather_rows_f16, label_mix and label_mix_backward: GPU vs CPU twin (exact: no arithmetic
//! beyond /255), and hand-computed cases on the CPU.
mod common;

use common::*;
use rand::Rng;
use ssvae::backend::{Op, UNLABELED};
use ssvae::{Backend, DType};

fn pack(bytes: &[u8]) -> Vec<u32> {
    let mut b = bytes.to_vec();
    b.resize(bytes.len().div_ceil(4) * 4, 0);
    bytemuck::cast_slice(&b).to_vec()
}

fn gather<B: Backend>(be: &B, src_rows: usize, cols: usize, bytes: &[u8], idx: &[u32]) -> Vec<f32> {
    let data = be.upload_u32(&pack(bytes)).unwrap();
    let ib = be.upload_u32(idx).unwrap();
    let out = be.alloc(idx.len() * cols, DType::F32).unwrap();
    be.launch(Op::GatherRowsU8 { rows: idx.len(), cols, src_rows }, &[&data, &ib, &out]).unwrap();
    be.read_f32(&out).unwrap()
}

fn gather_f32<B: Backend>(be: &B, src_rows: usize, cols: usize, values: &[f32], idx: &[u32]) -> Vec<f32> {
    let data = be.upload_f32(values).unwrap();
    let ib = be.upload_u32(idx).unwrap();
    let out = be.alloc(idx.len() * cols, DType::F32).unwrap();
    be.launch(Op::GatherRowsF32 { rows: idx.len(), cols, src_rows }, &[&data, &ib, &out]).unwrap();
    be.read_f32(&out).unwrap()
}

#[test]
fn gather_rows_f32_hand_computed() {
    let cpu = cpu();
    let values = [0.5f32, -1.0, 2.0, 3.0, -4.5, 6.25];
    let out = gather_f32(&cpu, 3, 2, &values, &[2, 0, 3, 2]);
    assert_close("gather f32", &out, &[-4.5, 6.25, 0.5, -1.0, 0.0, 0.0, -4.5, 6.25], 0.0, 0.0);
}

#[test]
fn gather_rows_f32_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    let mut r = rng(4);
    // (src_rows, cols, rows): UCI-HAR's 128 x 6 windows among them
    for &(src_rows, cols, rows) in &[(1, 1, 1), (5, 3, 7), (37, 29, 64), (300, 768, 129)] {
        let values = uniform(&mut r, src_rows * cols, -5.0, 5.0);
        let idx: Vec<u32> = (0..rows).map(|_| r.random_range(0..src_rows as u32 + 1)).collect();
        let want = gather_f32(&cpu, src_rows, cols, &values, &idx);
        let got = gather_f32(gpu, src_rows, cols, &values, &idx);
        assert_close(&format!("gather f32 {src_rows}x{cols} -> {rows}"), &got, &want, 0.0, 0.0);
    }
}

fn gather_f16<B: Backend>(be: &B, src_rows: usize, cols: usize, values: &[f32], idx: &[u32]) -> Vec<f32> {
    let words = ssvae::train::pack_f16(values, "test", cols).unwrap();
    let data = be.upload_u32(&words).unwrap();
    let ib = be.upload_u32(idx).unwrap();
    let out = be.alloc(idx.len() * cols, DType::F32).unwrap();
    be.launch(Op::GatherRowsF16 { rows: idx.len(), cols, src_rows }, &[&data, &ib, &out]).unwrap();
    be.read_f32(&out).unwrap()
}

/// f16 storage: exactly representable values come back exactly (odd row length, so rows
/// straddle words), an index past the data gives zeros.
#[test]
fn gather_rows_f16_hand_computed() {
    let cpu = cpu();
    let values = [0.5f32, -1.0, 2.0, 3.0, -4.5, 6.25, 1024.0, -0.125, 7.0];
    let out = gather_f16(&cpu, 3, 3, &values, &[2, 0, 3, 1]);
    assert_close("gather f16", &out, &[1024.0, -0.125, 7.0, 0.5, -1.0, 2.0, 0.0, 0.0, 0.0, 3.0, -4.5, 6.25], 0.0, 0.0);
}

/// GPU (unpack2x16float) vs CPU (half crate), exact; and both within f16 rounding (2^-11
/// relative) of the f32 values.
#[test]
fn gather_rows_f16_matches_cpu_and_rounds_to_half_precision() {
    let cpu = cpu();
    let gpu = gpu();
    let mut r = rng(5);
    for &(src_rows, cols, rows) in &[(1, 1, 1), (5, 3, 7), (37, 29, 64), (300, 768, 129)] {
        let values = uniform(&mut r, src_rows * cols, -5.0, 5.0);
        let idx: Vec<u32> = (0..rows).map(|_| r.random_range(0..src_rows as u32 + 1)).collect();
        let want = gather_f16(&cpu, src_rows, cols, &values, &idx);
        let exact = gather_f32(&cpu, src_rows, cols, &values, &idx);
        assert_close(&format!("f16 rounding {src_rows}x{cols}"), &want, &exact, 1e-7, 1.0 / 2048.0);
        assert!(want.iter().zip(&exact).any(|(a, b)| a != b), "f16 storage should round some values");
        if let Some(gpu) = gpu {
            let got = gather_f16(gpu, src_rows, cols, &values, &idx);
            assert_close(&format!("gather f16 {src_rows}x{cols} -> {rows}"), &got, &want, 0.0, 0.0);
        }
    }
}

#[test]
fn f16_packing_rejects_values_beyond_its_range() {
    let e = ssvae::train::pack_f16(&[1.0, 2.0, 3.0, 70000.0], "sensors.csv", 2).unwrap_err().to_string();
    assert!(e.contains("sensors.csv") && e.contains("70000") && e.contains("window 1, value 1") && e.contains("--data-f16"), "{e}");
}

/// The shader's integer f16 decoder on every special case: zeros of both signs, the smallest
/// and largest subnormals, the smallest normal, 1, the largest finite, infinities (NaN checked
/// as NaN), GPU vs the half crate.
#[test]
fn gather_rows_f16_decodes_special_values_exactly() {
    let Some(gpu) = gpu() else { return };
    let bits: [u16; 12] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00];
    let words: Vec<u32> = bits.chunks(2).map(|c| c[0] as u32 | ((c[1] as u32) << 16)).collect();
    let data = gpu.upload_u32(&words).unwrap();
    let ib = gpu.upload_u32(&[0]).unwrap();
    let out = gpu.alloc(bits.len(), DType::F32).unwrap();
    gpu.launch(Op::GatherRowsF16 { rows: 1, cols: bits.len(), src_rows: 1 }, &[&data, &ib, &out]).unwrap();
    let got = gpu.read_f32(&out).unwrap();
    for (b, g) in bits.iter().zip(&got) {
        let want = half::f16::from_bits(*b).to_f32();
        assert!(
            want.to_bits() == g.to_bits() || (want.is_nan() && g.is_nan()),
            "half {b:#06x}: got {g:e} ({:#010x}) want {want:e}",
            g.to_bits()
        );
    }
}

fn mix<B: Backend>(be: &B, backward: bool, rows: usize, classes: usize, pi: &[f32], labels: &[u32]) -> Vec<f32> {
    let pb = be.upload_f32(pi).unwrap();
    let lb = be.upload_u32(labels).unwrap();
    let out = be.alloc(rows * classes, DType::F32).unwrap();
    let op = if backward { Op::LabelMixBackward { rows, classes } } else { Op::LabelMix { rows, classes } };
    be.launch(op, &[&pb, &lb, &out]).unwrap();
    be.read_f32(&out).unwrap()
}

#[test]
fn gather_rows_u8_hand_computed() {
    let cpu = cpu();
    // 3 source rows of 3 bytes (odd, so rows straddle words)
    let bytes = [0u8, 255, 51, 1, 2, 3, 10, 20, 30];
    let out = gather(&cpu, 3, 3, &bytes, &[2, 0, 7]);
    let want = [10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0, 0.0, 1.0, 0.2, 0.0, 0.0, 0.0];
    assert_close("gather", &out, &want, 1e-7, 0.0);
}

#[test]
fn gather_rows_u8_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let cpu = cpu();
    let mut r = rng(3);
    for &(src_rows, cols, rows) in &[(1, 1, 1), (5, 3, 7), (37, 29, 64), (300, 784, 129)] {
        let bytes: Vec<u8> = (0..src_rows * cols).map(|_| r.random()).collect();
        let idx: Vec<u32> = (0..rows).map(|_| r.random_range(0..src_rows as u32 + 1)).collect();
        let want = gather(&cpu, src_rows, cols, &bytes, &idx);
        let got = gather(gpu, src_rows, cols, &bytes, &idx);
        assert_close(&format!("gather {src_rows}x{cols} -> {rows}"), &got, &want, 0.0, 0.0);
    }
}

#[test]
fn label_mix_hand_computed_and_matches_cpu() {
    let cpu = cpu();
    let pi = [0.2, 0.3, 0.5, 0.6, 0.3, 0.1];
    let out = mix(&cpu, false, 2, 3, &pi, &[1, UNLABELED]);
    assert_eq!(out, vec![0.0, 1.0, 0.0, 0.6, 0.3, 0.1]);
    let d = mix(&cpu, true, 2, 3, &pi, &[1, UNLABELED]);
    assert_eq!(d, vec![0.0, 0.0, 0.0, 0.6, 0.3, 0.1]);
    let Some(gpu) = gpu() else { return };
    let mut r = rng(4);
    for &(rows, classes) in &[(1, 1), (7, 3), (130, 10), (65, 17)] {
        let pi = uniform(&mut r, rows * classes, 0.0, 1.0);
        let labels: Vec<u32> =
            (0..rows).map(|_| if r.random_bool(0.5) { UNLABELED } else { r.random_range(0..classes as u32 + 2) }).collect();
        for backward in [false, true] {
            let want = mix(&cpu, backward, rows, classes, &pi, &labels);
            let got = mix(gpu, backward, rows, classes, &pi, &labels);
            assert_close(&format!("label_mix backward={backward} {rows}x{classes}"), &got, &want, 0.0, 0.0);
        }
    }
}
