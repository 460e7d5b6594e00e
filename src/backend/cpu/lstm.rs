//! CPU twins of shaders/lstm.wgsl: the LSTM recurrence and its backprop through time, a block
//! of four batch rows per task (rows are independent; rayon spreads the blocks over the cores),
//! each row's sums in the order the GPU kernels use.
//!
//! Layout: sequences are row-major [batch, steps, features]; gates are packed [i | f | g | o]
//! (PyTorch's order) along the last axis, 4H wide. With z = xproj_t + h_{t-1} W_hh:
//!   i, f, o = sigmoid(z_i, z_f, z_o), g = tanh(z_g), c_t = f c_{t-1} + i g, h_t = o tanh(c_t).
//! The input projection x W_ih + b is NOT done here: it is one GEMM over all batch * steps
//! rows, and likewise the weight gradients are GEMMs over the `dgates` this backward writes.

use super::fastmath::{sigmoid_v, tanh_c};
use super::Simd;

/// Rows of the batch advanced together through the recurrence: each step's product
/// h_{t-1} W_hh is computed for R rows at once, so every row of W_hh loaded from L1 serves R
/// rows, and R x 2 independent accumulator vectors hide the multiply-add latency (one row at a
/// time, the 6400 multiply-adds of a 40-unit step were latency-bound at ~2.5 per cycle).
const ROWS: usize = 4;
/// Gate columns per register block of the forward product (two 8-wide vectors).
const GB: usize = 16;
/// Hidden units per register block of the backward product dz W_hh^T.
const JB: usize = 16;

/// W_hh (hidden x 4H) in column blocks of `GB`: block b holds, for j = 0..hidden, the
/// columns b GB..(b + 1) GB of row j (zero past 4H), so that a block's product walks one
/// contiguous stretch of memory with no bounds checks (returns the padded width 4H -> gp).
fn pad_w_hh(hidden: usize, w_hh: &[f32]) -> (usize, Vec<f32>) {
    let g4 = 4 * hidden;
    let gp = g4.div_ceil(GB) * GB;
    let mut wp = vec![0f32; hidden * gp];
    for b in 0..gp / GB {
        for j in 0..hidden {
            for l in 0..GB.min(g4 - b * GB) {
                wp[(b * hidden + j) * GB + l] = w_hh[j * g4 + b * GB + l];
            }
        }
    }
    (gp, wp)
}

/// W_hh^T (4H x hidden) in column blocks of `JB`: block b holds, for k = 0..4H, the hidden
/// units b JB..(b + 1) JB of W_hh's column k (zero past hidden); returns the padded width.
fn pad_w_hh_t(hidden: usize, w_hh: &[f32]) -> (usize, Vec<f32>) {
    let g4 = 4 * hidden;
    let hp = hidden.div_ceil(JB) * JB;
    let mut wt = vec![0f32; g4 * hp];
    for b in 0..hp / JB {
        for k in 0..g4 {
            for l in 0..JB.min(hidden - b * JB) {
                wt[(b * g4 + k) * JB + l] = w_hh[(b * JB + l) * g4 + k];
            }
        }
    }
    (hp, wt)
}

/// i, f, o = sigmoid, g = tanh over one row's pre-activations [i | f | g | o] (4H wide).
#[inline(always)]
fn activate_gates<const FMA: bool>(hidden: usize, z: &mut [f32]) {
    let (ifg, o) = z[..4 * hidden].split_at_mut(3 * hidden);
    let (i_f, g) = ifg.split_at_mut(2 * hidden);
    // plain loops: an iterator adapter such as `chain` was compiled as a separate function
    // outside the AVX2 path and was ~15% of the forward (perf, one thread)
    for z in i_f.iter_mut() {
        *z = sigmoid_v::<FMA>(*z);
    }
    for z in o.iter_mut() {
        *z = sigmoid_v::<FMA>(*z);
    }
    for z in g.iter_mut() {
        *z = tanh_c::<FMA>(*z);
    }
}

/// Forward over the whole sequence. Outputs h_seq, c_seq, the activated gates and hprev
/// (h_{t-1} per step, h0 at t = 0, so dW_hh = hprev^T dgates is one GEMM).
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward(
    batch: usize,
    steps: usize,
    hidden: usize,
    xproj: &[f32],
    w_hh: &[f32],
    h0: &[f32],
    c0: &[f32],
    h_seq: &mut [f32],
    c_seq: &mut [f32],
    gates: &mut [f32],
    hprev: &mut [f32],
) {
    lstm_forward_with(super::simd(), batch, steps, hidden, xproj, w_hh, h0, c0, h_seq, c_seq, gates, hprev)
}

/// [`lstm_forward`] through the `simd` build of the row blocks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_forward_with(
    simd: Simd,
    batch: usize,
    steps: usize,
    hidden: usize,
    xproj: &[f32],
    w_hh: &[f32],
    h0: &[f32],
    c0: &[f32],
    h_seq: &mut [f32],
    c_seq: &mut [f32],
    gates: &mut [f32],
    hprev: &mut [f32],
) {
    use rayon::prelude::*;
    let (h4, g4) = (hidden, 4 * hidden);
    let (gp, wp) = pad_w_hh(hidden, w_hh);
    // batch rows are independent: a task owns ROWS consecutive rows' blocks of every output
    let blocks = h_seq[..batch * steps * h4]
        .par_chunks_mut(ROWS * steps * h4)
        .zip(c_seq[..batch * steps * h4].par_chunks_mut(ROWS * steps * h4))
        .zip(gates[..batch * steps * g4].par_chunks_mut(ROWS * steps * g4))
        .zip(hprev[..batch * steps * h4].par_chunks_mut(ROWS * steps * h4));
    blocks.enumerate().for_each(|(blk, (((h_seq, c_seq), gates), hprev))| {
        let b0 = blk * ROWS;
        let rows = (batch - b0).min(ROWS);
        let x = &xproj[b0 * steps * g4..(b0 + rows) * steps * g4];
        let (h0, c0) = (&h0[b0 * h4..(b0 + rows) * h4], &c0[b0 * h4..(b0 + rows) * h4]);
        let f = Fwd { steps, hidden, gp, xproj: x, wp: &wp, h0, c0 };
        if rows == ROWS {
            forward_dispatch::<ROWS>(simd, &f, h_seq, c_seq, gates, hprev);
        } else {
            // the last block's remaining rows one at a time (same arithmetic per row)
            for r in 0..rows {
                let (so, go) = (r * steps * h4..(r + 1) * steps * h4, r * steps * g4..(r + 1) * steps * g4);
                let one = Fwd { xproj: &x[go.clone()], h0: &h0[r * h4..(r + 1) * h4], c0: &c0[r * h4..(r + 1) * h4], ..f };
                forward_dispatch::<1>(simd, &one, &mut h_seq[so.clone()], &mut c_seq[so.clone()], &mut gates[go], &mut hprev[so]);
            }
        }
    });
}

/// The inputs of one block of R rows' forward: its rows of xproj (R x steps x 4H), h0 and c0
/// (R x H), and the padded W_hh.
#[derive(Clone, Copy)]
struct Fwd<'a> {
    steps: usize,
    hidden: usize,
    gp: usize,
    xproj: &'a [f32],
    wp: &'a [f32],
    h0: &'a [f32],
    c0: &'a [f32],
}

fn forward_dispatch<const R: usize>(simd: Simd, f: &Fwd, h_seq: &mut [f32], c_seq: &mut [f32], gates: &mut [f32], hprev: &mut [f32]) {
    match simd {
        // SAFETY: `simd()` reports a build only where the CPU has its instruction sets
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { forward_rows_avx512::<R>(f, h_seq, c_seq, gates, hprev) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2Fma => unsafe { forward_rows_avx2_fma::<R>(f, h_seq, c_seq, gates, hprev) },
        _ => forward_rows::<R, false>(f, h_seq, c_seq, gates, hprev),
    }
}

/// [`forward_rows`] compiled for AVX-512 with fused multiply-adds: the same operations per
/// element as the AVX2 build (the same bits), 16-wide (on Zen 4, 7% less time a launch than the
/// AVX2 build: half the instructions in flight for the gate activations' dependent chains).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_rows_avx512<const R: usize>(f: &Fwd, h_seq: &mut [f32], c_seq: &mut [f32], gates: &mut [f32], hprev: &mut [f32]) {
    forward_rows::<R, true>(f, h_seq, c_seq, gates, hprev)
}

/// [`forward_rows`] compiled for AVX2 with fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_rows_avx2_fma<const R: usize>(f: &Fwd, h_seq: &mut [f32], c_seq: &mut [f32], gates: &mut [f32], hprev: &mut [f32]) {
    forward_rows::<R, true>(f, h_seq, c_seq, gates, hprev)
}

/// R rows' recurrence, step by step: z = xproj_t + h_{t-1} W_hh for the R rows in register
/// blocks of R x `GB` gates (each z_k adds its terms in j order, as the GPU kernel), written
/// straight into the step's rows of `gates`; then the gate activations there and the cell
/// update row by row, writing hprev, c_seq and h_seq in the same pass (no staging buffer: the
/// run-time-length copies of one were ~4% of the forward as `memmove` calls).
///
/// h_{t-1} is kept transposed (`ht[j R + r]`) and W_hh in column blocks (`pad_w_hh`), so the
/// product's inner loop reads two contiguous streams through one pointer each: with the R rows
/// of h as separate slices their base pointers were spilled to the stack and reloaded, with a
/// bounds check, for every multiply-add group (perf: ~15% of the forward).
#[inline(always)]
fn forward_rows<const R: usize, const FMA: bool>(f: &Fwd, h_seq: &mut [f32], c_seq: &mut [f32], gates: &mut [f32], hprev: &mut [f32]) {
    let Fwd { steps, hidden, gp, xproj, wp, h0, c0 } = *f;
    let (h4, g4) = (hidden, 4 * hidden);
    let mut ht = vec![0f32; R * h4];
    for r in 0..R {
        for j in 0..h4 {
            ht[j * R + r] = h0[r * h4 + j];
        }
    }
    let mut c = c0[..R * h4].to_vec();
    for t in 0..steps {
        for (blk, wb) in wp[..hidden * gp].chunks_exact(hidden * GB).enumerate() {
            // the gates kb..kb + GB of each row (fewer in a last, partial block: the padded
            // columns of W_hh are zero and their sums are dropped)
            let kb = blk * GB;
            let width = GB.min(g4 - kb);
            let mut acc = [[0f32; GB]; R];
            for r in 0..R {
                let at = (r * steps + t) * g4 + kb;
                // (never a run-time-length slice of `acc` itself: that would take its address
                // and keep the accumulators in memory instead of registers)
                if width == GB {
                    acc[r] = xproj[at..at + GB].try_into().unwrap();
                } else {
                    let mut part = [0f32; GB];
                    part[..width].copy_from_slice(&xproj[at..at + width]);
                    acc[r] = part;
                }
            }
            for (w, hj) in wb.chunks_exact(GB).zip(ht.chunks_exact(R)) {
                let w: &[f32; GB] = w.try_into().unwrap();
                let hj: &[f32; R] = hj.try_into().unwrap();
                for r in 0..R {
                    for l in 0..GB {
                        acc[r][l] = super::madd::<FMA>(hj[r], w[l], acc[r][l]);
                    }
                }
            }
            for r in 0..R {
                let at = (r * steps + t) * g4 + kb;
                if width == GB {
                    let dst: &mut [f32; GB] = (&mut gates[at..at + GB]).try_into().unwrap();
                    *dst = acc[r];
                } else {
                    let part = acc[r];
                    gates[at..at + width].copy_from_slice(&part[..width]);
                }
            }
        }
        for r in 0..R {
            let (st, gt) = ((r * steps + t) * h4, (r * steps + t) * g4);
            // h_{t-1} of this row: the previous step's output, or h0
            if t == 0 {
                hprev[st..st + h4].copy_from_slice(&h0[r * h4..(r + 1) * h4]);
            } else {
                hprev[st..st + h4].copy_from_slice(&h_seq[st - h4..st]);
            }
            let zr = &mut gates[gt..gt + g4];
            activate_gates::<FMA>(hidden, zr);
            let (i, rest) = zr.split_at(h4);
            let (fg, rest) = rest.split_at(h4);
            let (g, o) = rest.split_at(h4);
            let h_out = &mut h_seq[st..st + h4];
            cell_update::<FMA>(i, fg, g, o, &mut c[r * h4..(r + 1) * h4], &mut c_seq[st..st + h4], h_out);
            for (j, &hj) in h_out.iter().enumerate() {
                ht[j * R + r] = hj;
            }
        }
    }
}

/// One row's cell update at one step: c = f c + i g; h = o tanh(c), c also written to c_seq.
/// A function of its own so that its slices are known not to overlap (the loop vectorises).
#[inline(always)]
fn cell_update<const FMA: bool>(i: &[f32], f: &[f32], g: &[f32], o: &[f32], c: &mut [f32], c_out: &mut [f32], h_out: &mut [f32]) {
    let n = c.len();
    let (i, f, g, o, c_out, h_out) = (&i[..n], &f[..n], &g[..n], &o[..n], &mut c_out[..n], &mut h_out[..n]);
    for u in 0..n {
        let cu = f[u] * c[u] + i[u] * g[u];
        c[u] = cu;
        c_out[u] = cu;
        h_out[u] = o[u] * tanh_c::<FMA>(cu);
    }
}

/// Asks the CPU to bring `x` into cache (a hint: no effect on results, never faults).
#[inline(always)]
fn prefetch(x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in x.chunks(16) {
        // SAFETY: a prefetch is a hint that never faults; the pointer is in bounds anyway
        #[allow(unused_unsafe)]
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr() as *const i8)
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// One row's gate gradients at one step (see [`lstm_backward`]) from its gates, c_{t-1}, c_t
/// and dL/dh_t (from above and recurrent); `dc_next` is updated in place. A function of its own so that its slices are known not to
/// overlap: written inline over slices of the packed rows, the loop stayed scalar (LLVM would
/// have needed dozens of run-time overlap checks) and was ~40% of the backward.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gate_grads<const FMA: bool>(
    gi: &[f32],
    gf: &[f32],
    gg: &[f32],
    go: &[f32],
    c_prev: &[f32],
    c_t: &[f32],
    dh_t: &[f32],
    dh_rec: &[f32],
    dzi: &mut [f32],
    dzf: &mut [f32],
    dzg: &mut [f32],
    dzo: &mut [f32],
    dc_next: &mut [f32],
) {
    let n = dc_next.len();
    let (gi, gf, gg, go) = (&gi[..n], &gf[..n], &gg[..n], &go[..n]);
    let (c_prev, c_t, dh_t, dh_rec) = (&c_prev[..n], &c_t[..n], &dh_t[..n], &dh_rec[..n]);
    let (dzi, dzf, dzg, dzo) = (&mut dzi[..n], &mut dzf[..n], &mut dzg[..n], &mut dzo[..n]);
    for u in 0..n {
        let (i, f, g, o) = (gi[u], gf[u], gg[u], go[u]);
        let tc = tanh_c::<FMA>(c_t[u]);
        let dh = dh_t[u] + dh_rec[u];
        let dc = dc_next[u] + dh * o * (1.0 - tc * tc);
        dzi[u] = dc * g * (i * (1.0 - i));
        dzf[u] = dc * c_prev[u] * (f * (1.0 - f));
        dzg[u] = dc * i * (1.0 - g * g);
        dzo[u] = dh * tc * (o * (1.0 - o));
        dc_next[u] = dc * f;
    }
}

/// Backprop through time. `dh_seq` is dL/dh_t for every step (from the layers above); the
/// recurrent part dL/dh_{t-1} = dz_t W_hh^T and dL/dc_{t-1} = dc_t f_t are carried backwards
/// and end up as dh0, dc0. Writes the pre-activation gate gradients `dgates`:
///   dc = dc_next + dh o (1 - tanh^2 c_t)
///   dz_i = dc g i (1 - i), dz_f = dc c_{t-1} f (1 - f), dz_g = dc i (1 - g^2),
///   dz_o = dh tanh(c_t) o (1 - o).
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    batch: usize,
    steps: usize,
    hidden: usize,
    gates: &[f32],
    c_seq: &[f32],
    c0: &[f32],
    w_hh: &[f32],
    dh_seq: &[f32],
    dgates: &mut [f32],
    dh0: &mut [f32],
    dc0: &mut [f32],
) {
    lstm_backward_with(super::simd(), batch, steps, hidden, gates, c_seq, c0, w_hh, dh_seq, dgates, dh0, dc0)
}

/// [`lstm_backward`] through the `simd` build of the row blocks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_backward_with(
    simd: Simd,
    batch: usize,
    steps: usize,
    hidden: usize,
    gates: &[f32],
    c_seq: &[f32],
    c0: &[f32],
    w_hh: &[f32],
    dh_seq: &[f32],
    dgates: &mut [f32],
    dh0: &mut [f32],
    dc0: &mut [f32],
) {
    use rayon::prelude::*;
    let (h4, g4) = (hidden, 4 * hidden);
    let (hp, wt) = pad_w_hh_t(hidden, w_hh);
    // batch rows are independent: a task owns ROWS consecutive rows' blocks of dgates, dh0, dc0
    let blocks = dgates[..batch * steps * g4]
        .par_chunks_mut(ROWS * steps * g4)
        .zip(dh0[..batch * h4].par_chunks_mut(ROWS * h4))
        .zip(dc0[..batch * h4].par_chunks_mut(ROWS * h4));
    blocks.enumerate().for_each(|(blk, ((dgates, dh0), dc0))| {
        let b0 = blk * ROWS;
        let rows = (batch - b0).min(ROWS);
        let (so, go) = (b0 * steps * h4..(b0 + rows) * steps * h4, b0 * steps * g4..(b0 + rows) * steps * g4);
        let bw = Bwd {
            steps,
            hidden,
            hp,
            gates: &gates[go],
            c_seq: &c_seq[so.clone()],
            c0: &c0[b0 * h4..(b0 + rows) * h4],
            wt: &wt,
            dh_seq: &dh_seq[so],
        };
        if rows == ROWS {
            backward_dispatch::<ROWS>(simd, &bw, dgates, dh0, dc0);
        } else {
            for r in 0..rows {
                let (so, go, ho) = (r * steps * h4..(r + 1) * steps * h4, r * steps * g4..(r + 1) * steps * g4, r * h4..(r + 1) * h4);
                let one = Bwd {
                    gates: &bw.gates[go.clone()],
                    c_seq: &bw.c_seq[so.clone()],
                    c0: &bw.c0[ho.clone()],
                    dh_seq: &bw.dh_seq[so],
                    ..bw
                };
                backward_dispatch::<1>(simd, &one, &mut dgates[go], &mut dh0[ho.clone()], &mut dc0[ho]);
            }
        }
    });
}

/// The inputs of one block of R rows' backward (their rows of gates, c_seq, c0, dh_seq) and
/// the padded W_hh^T.
#[derive(Clone, Copy)]
struct Bwd<'a> {
    steps: usize,
    hidden: usize,
    hp: usize,
    gates: &'a [f32],
    c_seq: &'a [f32],
    c0: &'a [f32],
    wt: &'a [f32],
    dh_seq: &'a [f32],
}

fn backward_dispatch<const R: usize>(simd: Simd, b: &Bwd, dgates: &mut [f32], dh0: &mut [f32], dc0: &mut [f32]) {
    match simd {
        // SAFETY: `simd()` reports a build only where the CPU has its instruction sets
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { backward_rows_avx512::<R>(b, dgates, dh0, dc0) },
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2Fma => unsafe { backward_rows_avx2_fma::<R>(b, dgates, dh0, dc0) },
        _ => backward_rows::<R, false>(b, dgates, dh0, dc0),
    }
}

/// [`backward_rows`] compiled for AVX-512 with fused multiply-adds (as the forward's).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn backward_rows_avx512<const R: usize>(b: &Bwd, dgates: &mut [f32], dh0: &mut [f32], dc0: &mut [f32]) {
    backward_rows::<R, true>(b, dgates, dh0, dc0)
}

/// [`backward_rows`] compiled for AVX2 with fused multiply-adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_rows_avx2_fma<const R: usize>(b: &Bwd, dgates: &mut [f32], dh0: &mut [f32], dc0: &mut [f32]) {
    backward_rows::<R, true>(b, dgates, dh0, dc0)
}

/// R rows' backprop through time: per step the gate gradients row by row, then
/// dh_rec = dz W_hh^T for the R rows in register blocks of R x `JB` hidden units (each
/// dh_rec_j adds its 4H terms in k order).
#[inline(always)]
fn backward_rows<const R: usize, const FMA: bool>(b: &Bwd, dgates: &mut [f32], dh0: &mut [f32], dc0: &mut [f32]) {
    let Bwd { steps, hidden, hp, gates, c_seq, c0, wt, dh_seq } = *b;
    let (h4, g4) = (hidden, 4 * hidden);
    // running dL/dh_t (recurrent part, padded to hp) and dL/dc_t, as the kernel's dh0 / dc0
    let mut dh_rec = vec![0f32; R * hp];
    let mut dc_next = vec![0f32; R * h4];
    for t in (0..steps).rev() {
        // the R rows' blocks lie far apart and are walked backwards in time, which the hardware
        // prefetchers followed poorly (a quarter of the backward's time was spent waiting for
        // the first load of a step's gates): ask for the step two ahead now
        if t >= 2 {
            for r in 0..R {
                let (st, gt) = ((r * steps + t - 2) * h4, (r * steps + t - 2) * g4);
                prefetch(&gates[gt..gt + g4]);
                prefetch(&c_seq[st..st + h4]);
                prefetch(&dh_seq[st..st + h4]);
            }
        }
        for r in 0..R {
            let (st, gt) = ((r * steps + t) * h4, (r * steps + t) * g4);
            let g_t = &gates[gt..gt + g4];
            let dz = &mut dgates[gt..gt + g4];
            let c_prev = if t == 0 { &c0[r * h4..(r + 1) * h4] } else { &c_seq[st - h4..st] };
            let (c_t, dh_t) = (&c_seq[st..st + h4], &dh_seq[st..st + h4]);
            let (dhr, dcn) = (&dh_rec[r * hp..r * hp + h4], &mut dc_next[r * h4..(r + 1) * h4]);
            let (gi, rest) = g_t.split_at(h4);
            let (gf, rest) = rest.split_at(h4);
            let (gg, go) = rest.split_at(h4);
            let (dzi, rest) = dz.split_at_mut(h4);
            let (dzf, rest) = rest.split_at_mut(h4);
            let (dzg, dzo) = rest.split_at_mut(h4);
            gate_grads::<FMA>(gi, gf, gg, go, c_prev, c_t, dh_t, dhr, dzi, dzf, dzg, dzo, dcn);
        }
        // dh_rec = dz W_hh^T: the R rows' gate gradients at this step, each a slice of
        // exactly 4H (so the loop below indexes them without bounds checks), against the
        // column blocks of W_hh^T read through one pointer
        let dz: [&[f32]; R] = std::array::from_fn(|r| &dgates[(r * steps + t) * g4..(r * steps + t + 1) * g4]);
        for (blk, wb) in wt[..g4 * hp].chunks_exact(g4 * JB).enumerate() {
            let jb = blk * JB;
            let mut acc = [[0f32; JB]; R];
            for (k, w) in wb.chunks_exact(JB).enumerate() {
                let w: &[f32; JB] = w.try_into().unwrap();
                for r in 0..R {
                    let d = dz[r][k];
                    for l in 0..JB {
                        acc[r][l] = super::madd::<FMA>(d, w[l], acc[r][l]);
                    }
                }
            }
            for r in 0..R {
                dh_rec[r * hp + jb..r * hp + jb + JB].copy_from_slice(&acc[r]);
            }
        }
    }
    for r in 0..R {
        dh0[r * h4..(r + 1) * h4].copy_from_slice(&dh_rec[r * hp..r * hp + h4]);
    }
    dc0[..R * h4].copy_from_slice(&dc_next);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator in [-1, 1) (the unit tests here take no crate).
    fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    struct Out {
        h_seq: Vec<f32>,
        c_seq: Vec<f32>,
        gates: Vec<f32>,
        hprev: Vec<f32>,
        dgates: Vec<f32>,
        dh0: Vec<f32>,
        dc0: Vec<f32>,
    }

    /// Forward and backward of `batch` rows through the row blocks of width R (R = 1: row by
    /// row), with or without FMA, the rows split as `lstm_forward` splits them.
    fn run<const R: usize, const FMA: bool>(batch: usize, steps: usize, hidden: usize, seed: u64) -> Out {
        let (h4, g4) = (hidden, 4 * hidden);
        let xproj = values(batch * steps * g4, seed, 1.5);
        let w_hh = values(hidden * g4, seed + 1, 1.5 / (hidden as f32).sqrt());
        let (h0, c0) = (values(batch * h4, seed + 2, 1.0), values(batch * h4, seed + 3, 2.0));
        let dh_seq = values(batch * steps * h4, seed + 4, 1.0);
        let (gp, wp) = pad_w_hh(hidden, &w_hh);
        let (hp, wt) = pad_w_hh_t(hidden, &w_hh);
        let mut o = Out {
            h_seq: vec![0.0; batch * steps * h4],
            c_seq: vec![0.0; batch * steps * h4],
            gates: vec![0.0; batch * steps * g4],
            hprev: vec![0.0; batch * steps * h4],
            dgates: vec![0.0; batch * steps * g4],
            dh0: vec![0.0; batch * h4],
            dc0: vec![0.0; batch * h4],
        };
        assert_eq!(batch % R, 0);
        for b0 in (0..batch).step_by(R) {
            let (so, go, ho) = (b0 * steps * h4..(b0 + R) * steps * h4, b0 * steps * g4..(b0 + R) * steps * g4, b0 * h4..(b0 + R) * h4);
            let f = Fwd { steps, hidden, gp, xproj: &xproj[go.clone()], wp: &wp, h0: &h0[ho.clone()], c0: &c0[ho.clone()] };
            let run_f = |o: &mut Out| {
                forward_rows::<R, FMA>(
                    &f,
                    &mut o.h_seq[so.clone()],
                    &mut o.c_seq[so.clone()],
                    &mut o.gates[go.clone()],
                    &mut o.hprev[so.clone()],
                )
            };
            #[cfg(target_arch = "x86_64")]
            if FMA {
                assert!(super::super::fma_available(), "the FMA path needs AVX2 + FMA");
                // SAFETY: checked just above
                unsafe {
                    forward_rows_avx2_fma::<R>(
                        &f,
                        &mut o.h_seq[so.clone()],
                        &mut o.c_seq[so.clone()],
                        &mut o.gates[go.clone()],
                        &mut o.hprev[so.clone()],
                    )
                };
            } else {
                run_f(&mut o);
            }
            #[cfg(not(target_arch = "x86_64"))]
            run_f(&mut o);
        }
        for b0 in (0..batch).step_by(R) {
            let (so, go, ho) = (b0 * steps * h4..(b0 + R) * steps * h4, b0 * steps * g4..(b0 + R) * steps * g4, b0 * h4..(b0 + R) * h4);
            let bw = Bwd {
                steps,
                hidden,
                hp,
                gates: &o.gates[go.clone()],
                c_seq: &o.c_seq[so.clone()],
                c0: &c0[ho.clone()],
                wt: &wt,
                dh_seq: &dh_seq[so],
            };
            let (mut dg, mut dh0, mut dc0) = (vec![0f32; go.len()], vec![0f32; ho.len()], vec![0f32; ho.len()]);
            #[cfg(target_arch = "x86_64")]
            if FMA {
                // SAFETY: checked in the forward loop
                unsafe { backward_rows_avx2_fma::<R>(&bw, &mut dg, &mut dh0, &mut dc0) };
            } else {
                backward_rows::<R, false>(&bw, &mut dg, &mut dh0, &mut dc0);
            }
            #[cfg(not(target_arch = "x86_64"))]
            backward_rows::<R, false>(&bw, &mut dg, &mut dh0, &mut dc0);
            o.dgates[go].copy_from_slice(&dg);
            o.dh0[ho.clone()].copy_from_slice(&dh0);
            o.dc0[ho].copy_from_slice(&dc0);
        }
        o
    }

    fn fields(o: &Out) -> [(&'static str, &Vec<f32>); 7] {
        [
            ("h_seq", &o.h_seq),
            ("c_seq", &o.c_seq),
            ("gates", &o.gates),
            ("hprev", &o.hprev),
            ("dgates", &o.dgates),
            ("dh0", &o.dh0),
            ("dc0", &o.dc0),
        ]
    }

    /// Awkward (batch, steps, hidden): hidden not a multiple of the 16-wide register blocks
    /// (4H = 4, 28, 132, 160, 172), batch a multiple of 4 so the same rows go through blocks of
    /// 4 and of 1.
    const SHAPES: [(usize, usize, usize); 5] = [(4, 3, 1), (8, 5, 7), (4, 9, 33), (8, 6, 40), (4, 2, 43)];

    /// Blocking rows changes which rows share a task, not any row's arithmetic: blocks of 4
    /// and of 1 give the same bits, with and without FMA.
    #[test]
    fn row_blocks_do_not_change_a_rows_results() {
        for (k, &(b, t, h)) in SHAPES.iter().enumerate() {
            let (one, four) = (run::<1, false>(b, t, h, 10 + k as u64), run::<4, false>(b, t, h, 10 + k as u64));
            for ((name, x), (_, y)) in fields(&one).into_iter().zip(fields(&four)) {
                assert!(x == y, "b{b} t{t} h{h} {name}: blocks of 4 differ from rows one at a time");
            }
            if super::super::fma_available() {
                let (one, four) = (run::<1, true>(b, t, h, 10 + k as u64), run::<4, true>(b, t, h, 10 + k as u64));
                for ((name, x), (_, y)) in fields(&one).into_iter().zip(fields(&four)) {
                    assert!(x == y, "b{b} t{t} h{h} {name} (FMA): blocks of 4 differ from rows one at a time");
                }
            }
        }
    }

    /// The AVX-512 build gives the same bits as the AVX2 one (the same operations per element),
    /// through the whole entry points (blocks of 4 rows and the rows left over).
    #[test]
    fn avx512_build_is_the_avx2_build() {
        if super::super::simd() != Simd::Avx512 {
            eprintln!("no AVX-512 on this CPU: its build is not compared");
            return;
        }
        for (k, &(b, t, h)) in SHAPES.iter().chain(&[(7usize, 4usize, 40usize), (5, 3, 17)]).enumerate() {
            let seed = 40 + k as u64;
            let (h4, g4) = (h, 4 * h);
            let xproj = values(b * t * g4, seed, 1.5);
            let w_hh = values(h * g4, seed + 1, 1.5 / (h as f32).sqrt());
            let (h0, c0) = (values(b * h4, seed + 2, 1.0), values(b * h4, seed + 3, 2.0));
            let dh_seq = values(b * t * h4, seed + 4, 1.0);
            let outs = [Simd::Avx512, Simd::Avx2Fma].map(|simd| {
                let (mut hs, mut cs, mut gs, mut hp) =
                    (vec![0f32; b * t * h4], vec![0f32; b * t * h4], vec![0f32; b * t * g4], vec![0f32; b * t * h4]);
                lstm_forward_with(simd, b, t, h, &xproj, &w_hh, &h0, &c0, &mut hs, &mut cs, &mut gs, &mut hp);
                let (mut dg, mut dh0, mut dc0) = (vec![0f32; b * t * g4], vec![0f32; b * h4], vec![0f32; b * h4]);
                lstm_backward_with(simd, b, t, h, &gs, &cs, &c0, &w_hh, &dh_seq, &mut dg, &mut dh0, &mut dc0);
                [hs, cs, gs, hp, dg, dh0, dc0]
            });
            for (name, (x, y)) in ["h_seq", "c_seq", "gates", "hprev", "dgates", "dh0", "dc0"].iter().zip(outs[0].iter().zip(&outs[1])) {
                assert!(x == y, "b{b} t{t} h{h} {name}: the AVX-512 build differs from the AVX2 one");
            }
        }
    }

    /// The FMA build agrees with the plain one to rounding (it is what runs on AVX2 CPUs; the
    /// plain one is what the GPU parity tests were written against and what other CPUs run).
    #[test]
    fn fma_build_matches_the_plain_one() {
        if !super::super::fma_available() {
            eprintln!("no AVX2 + FMA on this CPU: the FMA build is not compared");
            return;
        }
        for (k, &(b, t, h)) in SHAPES.iter().enumerate() {
            let (plain, fused) = (run::<4, false>(b, t, h, 20 + k as u64), run::<4, true>(b, t, h, 20 + k as u64));
            for ((name, x), (_, y)) in fields(&plain).into_iter().zip(fields(&fused)) {
                let worst = x.iter().zip(y.iter()).map(|(p, q)| (p - q).abs() / (1.0 + p.abs())).fold(0f32, f32::max);
                assert!(worst < 2e-5, "b{b} t{t} h{h} {name}: FMA vs plain differ by {worst:e}");
            }
        }
    }
}
