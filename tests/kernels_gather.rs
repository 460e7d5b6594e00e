//! gather_rows_u8, gather_rows_f32, label_mix and label_mix_backward: GPU vs CPU twin (exact: no arithmetic
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
        let labels: Vec<u32> = (0..rows).map(|_| if r.random_bool(0.5) { UNLABELED } else { r.random_range(0..classes as u32 + 2) }).collect();
        for backward in [false, true] {
            let want = mix(&cpu, backward, rows, classes, &pi, &labels);
            let got = mix(gpu, backward, rows, classes, &pi, &labels);
            assert_close(&format!("label_mix backward={backward} {rows}x{classes}"), &got, &want, 0.0, 0.0);
        }
    }
}
