//! CPU twins of shaders/reduce.wgsl. Sums accumulate in f64 here; the GPU sums in f32 in a
//! different order, which the comparison tests allow for.

/// out[c] (+)= sum_r x[r, c] (the bias gradient). Chunks of `COL_SUM_ROWS` rows are summed in
/// parallel (each walking its rows in memory order, a block of columns at a time, in f64 on
/// the stack), then the chunks' sums are added in chunk order: the same result whatever the
/// number of threads.
pub fn col_sum(rows: usize, cols: usize, accumulate: bool, x: &[f32], out: &mut [f32]) {
    use rayon::prelude::*;
    const COL_SUM_ROWS: usize = 1024;
    let avx2 = super::fma_available();
    let parts: Vec<Vec<f64>> = (0..rows.div_ceil(COL_SUM_ROWS))
        .into_par_iter()
        .map(|ch| {
            let (r0, r1) = (ch * COL_SUM_ROWS, ((ch + 1) * COL_SUM_ROWS).min(rows));
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: `avx2` is true only where the CPU has AVX2 (`fma_available`)
                return unsafe { chunk_sum_avx2(cols, &x[r0 * cols..r1 * cols]) };
            }
            let _ = avx2;
            chunk_sum(cols, &x[r0 * cols..r1 * cols])
        })
        .collect();
    for (c, o) in out[..cols].iter_mut().enumerate() {
        let a: f64 = parts.iter().map(|p| p[c]).sum();
        *o = if accumulate { *o + a as f32 } else { a as f32 };
    }
}

/// Column sums (f64) of a chunk of rows `cols` wide, in row order per column, in blocks of
/// columns that stay in registers and L1.
#[inline(always)]
fn chunk_sum(cols: usize, x: &[f32]) -> Vec<f64> {
    const BLOCK: usize = 256;
    let mut sums = vec![0f64; cols];
    if cols == 0 {
        return sums;
    }
    for c0 in (0..cols).step_by(BLOCK) {
        let w = BLOCK.min(cols - c0);
        let mut acc = [0f64; BLOCK];
        for row in x.chunks_exact(cols) {
            for (a, &v) in acc[..w].iter_mut().zip(&row[c0..c0 + w]) {
                *a += v as f64;
            }
        }
        sums[c0..c0 + w].copy_from_slice(&acc[..w]);
    }
    sums
}

/// [`chunk_sum`] compiled for AVX2: the same sums in the same order (each column's own
/// running f64 total), four f64 lanes per instruction instead of baseline x86-64's two; the
/// bias gradients of the RNN's 16384-row layers were ~3% of its training step.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chunk_sum_avx2(cols: usize, x: &[f32]) -> Vec<f64> {
    chunk_sum(cols, x)
}

pub fn softmax_rows(rows: usize, cols: usize, x: &[f32], y: &mut [f32]) {
    use rayon::prelude::*;
    if cols == 0 {
        return;
    }
    // blocks of rows over the threads (a task per row cost more than the row for the RNN's
    // 16384 rows of 6), e^x without a libm call (`fastmath`)
    let exp = super::fastmath::exp_v::<false>;
    const BLOCK: usize = 1024;
    y[..rows * cols].par_chunks_mut(BLOCK * cols).zip(x[..rows * cols].par_chunks(BLOCK * cols)).for_each(|(yb, xb)| {
        for (yr, xr) in yb.chunks_exact_mut(cols).zip(xb.chunks_exact(cols)) {
            let max = xr.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for (y, &x) in yr.iter_mut().zip(xr) {
                *y = exp(x - max);
                sum += *y;
            }
            for y in yr.iter_mut() {
                *y /= sum;
            }
        }
    });
}

/// dx = y * (dy - sum_j dy_j y_j), row by row.
pub fn softmax_backward(rows: usize, cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for r in 0..rows {
        let s = r * cols..(r + 1) * cols;
        let dot: f32 = y[s.clone()].iter().zip(&dy[s.clone()]).map(|(a, b)| a * b).sum();
        for i in s {
            dx[i] = y[i] * (dy[i] - dot);
        }
    }
}

/// Per-column mean and biased variance over the rows (batch statistics).
pub fn mean_var(rows: usize, cols: usize, x: &[f32], mean: &mut [f32], var: &mut [f32]) {
    for c in 0..cols {
        let m: f64 = (0..rows).map(|r| x[r * cols + c] as f64).sum::<f64>() / rows as f64;
        let v: f64 = (0..rows).map(|r| (x[r * cols + c] as f64 - m).powi(2)).sum::<f64>() / rows as f64;
        mean[c] = m as f32;
        var[c] = v as f32;
    }
}
