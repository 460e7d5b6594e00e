// GEMM with a fused epilogue: C = act(alpha * op(A) op(B) + bias + beta * C).
// Row-major; op(A) is M x K (A stored K x M when TRANS_A), op(B) is K x N (B stored N x K
// when TRANS_B). CPU twin: src/backend/cpu/gemm.rs.
//
// Each workgroup computes a TILE_M x TILE_N block of C. Tiles of A and B are staged through
// workgroup memory TILE_K columns at a time, and each thread keeps a REG_M x REG_N block of
// accumulators in registers (rows lid.y + i * THREADS_M, columns lid.x + j * THREADS_N, so
// neighbouring threads read neighbouring workgroup-memory words and write neighbouring
// columns of C). Tile sizes are pipeline-overridable constants chosen per adapter.

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    beta: f32,
}

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
// ACT (the epilogue's activation) and activate() come from activation.wgsl, prepended.
override THREADS_M: u32 = 16u;
override THREADS_N: u32 = 16u;
override TILE_K: u32 = 16u;
const REG_M: u32 = 4u;
const REG_N: u32 = 4u;
override TILE_M: u32 = THREADS_M * REG_M;
override TILE_N: u32 = THREADS_N * REG_N;

var<workgroup> tile_a: array<f32, TILE_K * TILE_M>; // [kk][row]
var<workgroup> tile_b: array<f32, TILE_K * TILE_N>; // [kk][col]

@compute @workgroup_size(THREADS_N, THREADS_M, 1)
fn gemm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wid.y * TILE_M;
    let col0 = wid.x * TILE_N;
    let nthreads = THREADS_M * THREADS_N;
    var acc: array<f32, 16>; // REG_M * REG_N, zero-initialised
    var ar: array<f32, 4>;
    var br: array<f32, 4>;

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        // Stage A: consecutive threads read consecutive addresses of the stored layout.
        for (var e = li; e < TILE_M * TILE_K; e += nthreads) {
            var r: u32;
            var kk: u32;
            if (TRANS_A) { r = e % TILE_M; kk = e / TILE_M; } else { kk = e % TILE_K; r = e / TILE_K; }
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.m && gk < p.k) {
                if (TRANS_A) { v = a[gk * p.m + gr]; } else { v = a[gr * p.k + gk]; }
            }
            tile_a[kk * TILE_M + r] = v;
        }
        // Stage B.
        for (var e = li; e < TILE_N * TILE_K; e += nthreads) {
            var cc: u32;
            var kk: u32;
            if (TRANS_B) { kk = e % TILE_K; cc = e / TILE_K; } else { cc = e % TILE_N; kk = e / TILE_N; }
            let gc = col0 + cc;
            let gk = k0 + kk;
            var v = 0.0;
            if (gc < p.n && gk < p.k) {
                if (TRANS_B) { v = b[gc * p.k + gk]; } else { v = b[gk * p.n + gc]; }
            }
            tile_b[kk * TILE_N + cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            for (var i = 0u; i < REG_M; i++) { ar[i] = tile_a[kk * TILE_M + lid.y + i * THREADS_M]; }
            for (var j = 0u; j < REG_N; j++) { br[j] = tile_b[kk * TILE_N + lid.x + j * THREADS_N]; }
            for (var i = 0u; i < REG_M; i++) {
                for (var j = 0u; j < REG_N; j++) {
                    acc[i * REG_N + j] = fma(ar[i], br[j], acc[i * REG_N + j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < REG_M; i++) {
        let r = row0 + lid.y + i * THREADS_M;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < REG_N; j++) {
            let col = col0 + lid.x + j * THREADS_N;
            if (col >= p.n) { continue; }
            var v = p.alpha * acc[i * REG_N + j];
            if (HAS_BIAS) { v += bias[col]; }
            if (ACCUMULATE) { v += p.beta * c[r * p.n + col]; }
            c[r * p.n + col] = activate(v);
        }
    }
}
