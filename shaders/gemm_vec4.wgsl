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
// Each workgroup computes a TILE_M x TILE_N block of C; each thread a 4 x 4 block made of 4
// consecutive rows and 4 consecutive columns, so its stores are vec4 and its reads of the
// staged tiles are one vec4 of A (rows) and one vec4 of B (columns) per k. Staged tiles are
// [kk][quad] arrays of vec4: neighbouring threads read neighbouring 16-byte words.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
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
override TILE_M: u32 = THREADS_M * 4u;
override TILE_N: u32 = THREADS_N * 4u;

var<workgroup> tile_a: array<vec4<f32>, TILE_K * THREADS_M>; // [kk][row quad]
var<workgroup> tile_b: array<vec4<f32>, TILE_K * THREADS_N>; // [kk][column quad]

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
    var acc: array<vec4<f32>, 4>; // acc[i] = row (4 lid.y + i), columns 4 lid.x .. 4 lid.x + 3
    let zero = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        if (TRANS_A) {
            // A stored K x M: a vec4 holds 4 consecutive rows of one k.
            for (var e = li; e < TILE_K * THREADS_M; e += nthreads) {
                let q = e % THREADS_M;
                let kk = e / THREADS_M;
                let gk = k0 + kk;
                let gq = row0 / 4u + q;
                var v = zero;
                if (gk < p.k && gq < m4) { v = a[gk * m4 + gq]; }
                tile_a[kk * THREADS_M + q] = v;
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
                let base = kq * 4u * THREADS_M + r / 4u;
                tile_a[base][r % 4u] = v.x;
                tile_a[base + THREADS_M][r % 4u] = v.y;
                tile_a[base + 2u * THREADS_M][r % 4u] = v.z;
                tile_a[base + 3u * THREADS_M][r % 4u] = v.w;
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
                let base = kq * 4u * THREADS_N + cc / 4u;
                tile_b[base][cc % 4u] = v.x;
                tile_b[base + THREADS_N][cc % 4u] = v.y;
                tile_b[base + 2u * THREADS_N][cc % 4u] = v.z;
                tile_b[base + 3u * THREADS_N][cc % 4u] = v.w;
            }
        } else {
            // B stored K x N: a vec4 holds 4 consecutive columns of one k.
            for (var e = li; e < TILE_K * THREADS_N; e += nthreads) {
                let q = e % THREADS_N;
                let kk = e / THREADS_N;
                let gk = k0 + kk;
                let gq = col0 / 4u + q;
                var v = zero;
                if (gk < p.k && gq < n4) { v = b[gk * n4 + gq]; }
                tile_b[kk * THREADS_N + q] = v;
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let ar = tile_a[kk * THREADS_M + lid.y];
            let br = tile_b[kk * THREADS_N + lid.x];
            acc[0] = fma(vec4<f32>(ar.x), br, acc[0]);
            acc[1] = fma(vec4<f32>(ar.y), br, acc[1]);
            acc[2] = fma(vec4<f32>(ar.z), br, acc[2]);
            acc[3] = fma(vec4<f32>(ar.w), br, acc[3]);
        }
        workgroupBarrier();
    }

    let cq = col0 / 4u + lid.x;
    if (cq >= n4) { return; }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y * 4u + i;
        if (r >= p.m) { break; }
        var v = p.alpha * acc[i];
        if (HAS_BIAS) { v += bias[cq]; }
        if (ACCUMULATE) { v += p.beta * c[r * n4 + cq]; }
        c[r * n4 + cq] = vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
    }
}
