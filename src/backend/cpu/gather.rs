//! CPU twins of shaders/gather.wgsl.

/// out[r, :] = value(idx[r] * cols + j) for j < cols; zeros for an index past the source.
fn gather_rows_with(rows: usize, cols: usize, src_rows: usize, idx: &[u32], out: &mut [f32], value: impl Fn(usize) -> f32) {
    for r in 0..rows {
        let o = &mut out[r * cols..(r + 1) * cols];
        let s = idx[r] as usize;
        if s >= src_rows {
            o.fill(0.0);
            continue;
        }
        for (j, v) in o.iter_mut().enumerate() {
            *v = value(s * cols + j);
        }
    }
}

/// out[r, :] = bytes[idx[r], :] / 255, bytes packed little-endian 4 per word.
pub fn gather_rows_u8(rows: usize, cols: usize, src_rows: usize, data: &[u32], idx: &[u32], out: &mut [f32]) {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    gather_rows_with(rows, cols, src_rows, idx, out, |k| bytes[k] as f32 / 255.0);
}

/// out[r, :] = data[idx[r], :] (f32 rows, e.g. standardised sensor windows); an index past
/// the source gives zeros.
pub fn gather_rows_f32(rows: usize, cols: usize, src_rows: usize, data: &[f32], idx: &[u32], out: &mut [f32]) {
    for r in 0..rows {
        let o = &mut out[r * cols..(r + 1) * cols];
        let s = idx[r] as usize;
        if s >= src_rows {
            o.fill(0.0);
        } else {
            o.copy_from_slice(&data[s * cols..(s + 1) * cols]);
        }
    }
}

/// As [`gather_rows_f32`] from f16 values packed two per word, low half first.
pub fn gather_rows_f16(rows: usize, cols: usize, src_rows: usize, data: &[u32], idx: &[u32], out: &mut [f32]) {
    gather_rows_with(rows, cols, src_rows, idx, out, |k| half::f16::from_bits((data[k / 2] >> ((k % 2) * 16)) as u16).to_f32());
}
