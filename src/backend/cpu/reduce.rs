//! CPU twins of shaders/reduce.wgsl. Sums accumulate in f64 here; the GPU sums in f32 in a
//! different order, which the comparison tests allow for.

/// out[c] (+)= sum_r x[r, c] (the bias gradient). Chunks of `COL_SUM_ROWS` rows are summed in
/// parallel (each walking its rows in memory order, a block of columns at a time, in f64 on
/// the stack), then the chunks' sums are added in chunk order: the same result whatever the
/// number of threads.
pub fn col_sum(rows: usize, cols: usize, accumulate: bool, x: &[f32], out: &mut [f32]) {
    use rayon::prelude::*;
    const COL_SUM_ROWS: usize = 1024;
    let simd = super::simd();
    let parts: Vec<Vec<f64>> = (0..rows.div_ceil(COL_SUM_ROWS))
        .into_par_iter()
        .map(|ch| {
            let (r0, r1) = (ch * COL_SUM_ROWS, ((ch + 1) * COL_SUM_ROWS).min(rows));
            let x = &x[r0 * cols..r1 * cols];
            match simd {
                // SAFETY: `simd()` reports a build only where the CPU has its instruction sets
                #[cfg(target_arch = "x86_64")]
                super::Simd::Avx512 => unsafe { chunk_sum_avx512(cols, x) },
                #[cfg(target_arch = "x86_64")]
                super::Simd::Avx2Fma => unsafe { chunk_sum_avx2(cols, x) },
                _ => chunk_sum::<8>(cols, x),
            }
        })
        .collect();
    for (c, o) in out[..cols].iter_mut().enumerate() {
        let a: f64 = parts.iter().map(|p| p[c]).sum();
        *o = if accumulate { *o + a as f32 } else { a as f32 };
    }
}

/// Column sums (f64) of a chunk of rows `cols` wide, each column's running total in row order
/// (the same bits whatever the blocking). Blocks of `W` columns whose totals stay in registers
/// for the whole chunk (a fixed-size array, never sliced at a run-time length), then the last
/// columns one narrower block at a time: with one wide block in memory, every row loaded and
/// stored every total (~0.4 ms for the RNN's 16384 x 160 gate gradients).
#[inline(always)]
fn chunk_sum<const W: usize>(cols: usize, x: &[f32]) -> Vec<f64> {
    let mut sums = vec![0f64; cols];
    if cols == 0 {
        return sums;
    }
    let mut c0 = 0;
    while c0 + W <= cols {
        sums[c0..c0 + W].copy_from_slice(&block_sum::<W>(cols, c0, x));
        c0 += W;
    }
    narrower::<W, 32>(cols, &mut c0, x, &mut sums);
    narrower::<W, 16>(cols, &mut c0, x, &mut sums);
    narrower::<W, 8>(cols, &mut c0, x, &mut sums);
    narrower::<W, 4>(cols, &mut c0, x, &mut sums);
    while c0 < cols {
        sums[c0] = block_sum::<1>(cols, c0, x)[0];
        c0 += 1;
    }
    sums
}

/// One block of `B` < `W` columns at c0 (once: the rest of a row is narrower than W), if they
/// fit; advances c0.
#[inline(always)]
fn narrower<const W: usize, const B: usize>(cols: usize, c0: &mut usize, x: &[f32], sums: &mut [f64]) {
    if W > B && *c0 + B <= cols {
        sums[*c0..*c0 + B].copy_from_slice(&block_sum::<B>(cols, *c0, x));
        *c0 += B;
    }
}

/// The totals of columns c0..c0 + W over the chunk's rows, in row order.
#[inline(always)]
fn block_sum<const W: usize>(cols: usize, c0: usize, x: &[f32]) -> [f64; W] {
    let mut acc = [0f64; W];
    for row in x.chunks_exact(cols) {
        let v: &[f32; W] = row[c0..c0 + W].try_into().unwrap();
        for l in 0..W {
            acc[l] += v[l] as f64;
        }
    }
    acc
}

/// [`chunk_sum`] compiled for AVX2: four f64 lanes per instruction instead of baseline
/// x86-64's two, blocks of 32 columns (8 registers of totals).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn chunk_sum_avx2(cols: usize, x: &[f32]) -> Vec<f64> {
    chunk_sum::<32>(cols, x)
}

/// [`chunk_sum`] compiled for AVX-512: eight f64 lanes, blocks of 64 columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn chunk_sum_avx512(cols: usize, x: &[f32]) -> Vec<f64> {
    chunk_sum::<64>(cols, x)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every build of the chunk sums (the plain 8-column blocks, the AVX2 32-column and the
    /// AVX-512 64-column ones, as far as this CPU runs them) gives exactly each column's f64
    /// total in row order, on widths that leave every kind of narrower block and single
    /// columns at the end, and `col_sum` adds the chunks' totals in order.
    #[test]
    fn column_sum_blocks_give_each_columns_row_order_total() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 3.0
        };
        for &(rows, cols) in &[(1, 1), (3, 5), (37, 7), (100, 30), (64, 33), (50, 40), (9, 65), (17, 97), (300, 160), (5, 301), (2500, 41)]
        {
            let x: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
            let want: Vec<f64> = (0..cols).map(|c| (0..rows).fold(0f64, |a, r| a + x[r * cols + c] as f64)).collect();
            let mut builds = vec![("plain", chunk_sum::<8>(cols, &x))];
            #[cfg(target_arch = "x86_64")]
            if super::super::simd() >= super::super::Simd::Avx2Fma {
                // SAFETY: the CPU has AVX2 and FMA (simd())
                builds.push(("avx2", unsafe { chunk_sum_avx2(cols, &x) }));
            }
            #[cfg(target_arch = "x86_64")]
            if super::super::simd() >= super::super::Simd::Avx512 {
                // SAFETY: the CPU has AVX-512F (simd())
                builds.push(("avx512", unsafe { chunk_sum_avx512(cols, &x) }));
            }
            for (name, got) in &builds {
                for c in 0..cols {
                    assert_eq!(got[c].to_bits(), want[c].to_bits(), "{name} {rows}x{cols}, column {c}");
                }
            }
            // the whole reduction: chunks of 1024 rows, their totals added in chunk order
            let mut out = vec![0f32; cols];
            col_sum(rows, cols, false, &x, &mut out);
            for c in 0..cols {
                let parts = (0..rows.div_ceil(1024))
                    .map(|ch| (ch * 1024..((ch + 1) * 1024).min(rows)).fold(0f64, |a, r| a + x[r * cols + c] as f64));
                assert_eq!(out[c], parts.sum::<f64>() as f32, "col_sum {rows}x{cols}, column {c}");
            }
        }
    }
}
