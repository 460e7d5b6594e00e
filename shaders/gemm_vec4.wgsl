// GEMM with a fused epilogue and 16-byte (vec4) global loads and stores:
// C = act(alpha * op(A) op(B) + bias + beta * C), the same contract as gemm.wgsl.
// CPU twin: src/backend/cpu/gemm.rs.
//
// Used only when every contiguous dimension is a multiple of 4 (N always; K for A when A is
// not transposed and for B when B is transposed; M when A is transposed): then a vec4 never
// straddles a row end or the matrix end, and every binding starts 16-byte aligned (binding
// offsets are multiples of the adapter's storage offset alignment, at least 32 bytes).
// src/backend/gpu/kernels.rs picks this file or gemm.wgsl.
//
// Each workgroup computes a TILE_M x TILE_N block of C. Each thread owns RB x RB quads of 4
// consecutive rows by 4 consecutive columns (row quads lid.y + i * THREADS_M, column quads
// lid.x + j * THREADS_N), i.e. a 4x4 (RB = 1) or 8x8 (RB = 2) register block: its stores are
// vec4 and each k step reads RB vec4 of A and RB vec4 of B from the staged tiles for RB * RB * 4
// vec4 FMAs. Staged tiles are [kk][quad] arrays of vec4: neighbouring threads read
// neighbouring 16-byte words.

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
// ACT (the epilogue's activation) and activate() come from activation.wgsl, prepended.
override THREADS_M: u32 = 16u;
override THREADS_N: u32 = 16u;
// A multiple of 4.
override TILE_K: u32 = 16u;
// Register blocks per thread and dimension: 1 (4x4 outputs) or 2 (8x8).
override RB: u32 = 1u;
override QM: u32 = THREADS_M * RB; // row quads per tile
override QN: u32 = THREADS_N * RB; // column quads per tile
override TILE_M: u32 = QM * 4u;
override TILE_N: u32 = QN * 4u;

var<workgroup> tile_a: array<vec4<f32>, TILE_K * QM>; // [kk][row quad]
var<workgroup> tile_b: array<vec4<f32>, TILE_K * QN>; // [kk][column quad]

@compute @workgroup_size(THREADS_N, THREADS_M, 1)
fn gemm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wid.y * TILE_M;
    let col0 = wid.x * TILE_N;
    let nthreads = THREADS_M * THREADS_N;
    let m4 = p.m / 4u;
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    // acc[(bi * RB + bj) * 4 + r]: row 4 (lid.y + bi THREADS_M) + r, column quad lid.x + bj THREADS_N
    var acc: array<vec4<f32>, 16>;
    let zero = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        if (TRANS_A) {
            // A stored K x M: a vec4 holds 4 consecutive rows of one k.
            for (var e = li; e < TILE_K * QM; e += nthreads) {
                let q = e % QM;
                let kk = e / QM;
                let gk = k0 + kk;
                let gq = row0 / 4u + q;
                var v = zero;
                if (gk < p.k && gq < m4) { v = a[gk * m4 + gq]; }
                tile_a[kk * QM + q] = v;
            }
        } else {
            // A stored M x K: a vec4 holds 4 consecutive k of one row.
            for (var e = li; e < TILE_M * (TILE_K / 4u); e += nthreads) {
                let kq = e % (TILE_K / 4u);
                let r = e / (TILE_K / 4u);
                let gr = row0 + r;
                let gkq = k0 / 4u + kq;
                var v = zero;
                if (gr < p.m && gkq < k4) { v = a[gr * k4 + gkq]; }
                let base = kq * 4u * QM + r / 4u;
                tile_a[base][r % 4u] = v.x;
                tile_a[base + QM][r % 4u] = v.y;
                tile_a[base + 2u * QM][r % 4u] = v.z;
                tile_a[base + 3u * QM][r % 4u] = v.w;
            }
        }
        if (TRANS_B) {
            // B stored N x K: a vec4 holds 4 consecutive k of one column.
            for (var e = li; e < TILE_N * (TILE_K / 4u); e += nthreads) {
                let kq = e % (TILE_K / 4u);
                let cc = e / (TILE_K / 4u);
                let gc = col0 + cc;
                let gkq = k0 / 4u + kq;
                var v = zero;
                if (gc < p.n && gkq < k4) { v = b[gc * k4 + gkq]; }
                let base = kq * 4u * QN + cc / 4u;
                tile_b[base][cc % 4u] = v.x;
                tile_b[base + QN][cc % 4u] = v.y;
                tile_b[base + 2u * QN][cc % 4u] = v.z;
                tile_b[base + 3u * QN][cc % 4u] = v.w;
            }
        } else {
            // B stored K x N: a vec4 holds 4 consecutive columns of one k.
            for (var e = li; e < TILE_K * QN; e += nthreads) {
                let q = e % QN;
                let kk = e / QN;
                let gk = k0 + kk;
                let gq = col0 / 4u + q;
                var v = zero;
                if (gk < p.k && gq < n4) { v = b[gk * n4 + gq]; }
                tile_b[kk * QN + q] = v;
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var br: array<vec4<f32>, 2>;
            for (var bj = 0u; bj < RB; bj++) { br[bj] = tile_b[kk * QN + lid.x + bj * THREADS_N]; }
            for (var bi = 0u; bi < RB; bi++) {
                let ar = tile_a[kk * QM + lid.y + bi * THREADS_M];
                for (var bj = 0u; bj < RB; bj++) {
                    let o = (bi * RB + bj) * 4u;
                    acc[o] = fma(vec4<f32>(ar.x), br[bj], acc[o]);
                    acc[o + 1u] = fma(vec4<f32>(ar.y), br[bj], acc[o + 1u]);
                    acc[o + 2u] = fma(vec4<f32>(ar.z), br[bj], acc[o + 2u]);
                    acc[o + 3u] = fma(vec4<f32>(ar.w), br[bj], acc[o + 3u]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var bj = 0u; bj < RB; bj++) {
        let cq = col0 / 4u + lid.x + bj * THREADS_N;
        if (cq >= n4) { continue; }
        var bv = vec4<f32>(0.0);
        if (HAS_BIAS) { bv = bias[cq]; }
        for (var bi = 0u; bi < RB; bi++) {
            for (var i = 0u; i < 4u; i++) {
                let r = row0 + (lid.y + bi * THREADS_M) * 4u + i;
                if (r >= p.m) { break; }
                var v = p.alpha * acc[(bi * RB + bj) * 4u + i] + bv;
                if (ACCUMULATE) { v += p.beta * c[r * n4 + cq]; }
                c[r * n4 + cq] = vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
            }
        }
    }
}
