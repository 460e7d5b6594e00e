// GEMM reading A and B straight from storage, without workgroup memory or barriers:
// C = act(alpha * op(A) op(B) + bias + beta * C), the contract of gemm.wgsl and gemm_vec4.wgsl.
// CPU twin: src/backend/cpu/gemm.rs.
//
// Same preconditions as gemm_vec4.wgsl (every contiguous dimension a multiple of 4); each
// thread owns RB x RB blocks of ROWS consecutive rows by 4 consecutive columns (row groups
// wid.y * QM + lid.y + i * THREADS_M, column quads wid.x * QN + lid.x + j * THREADS_N; with
// ROWS = 4 the vec4 kernel's mapping). Per 4 values of k a thread reads ROWS vec4 of A per row
// group (4 when A is transposed) and 4 of B per column quad from storage for
// RB * RB * ROWS * 4 vec4 FMAs. On a GPU the staged kernel's reuse of workgroup memory
// wins; on a software rasteriser (lavapipe, llvmpipe) workgroup memory is ordinary memory and
// every barrier ends a SIMD section, so `ssvae bench tune` may prefer this one there. It is
// never the built-in choice: only a tuning file selects it.
//
// Indices are clamped into range (rows past M, column quads past N / 4): such threads compute
// on valid data and store nothing.

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
// Register blocks per thread and dimension: 1 (ROWS x 4 outputs) or 2 (2 ROWS x 8).
override RB: u32 = 1u;
// Rows of a register block: 4, 2 or 1. A software rasteriser runs invocations in the lanes of
// its SIMD registers, so every vec4 accumulator of a thread is four such registers: fewer rows
// per block can spill less there.
override ROWS: u32 = 4u;
override QM: u32 = THREADS_M * RB; // row groups (of ROWS rows) per workgroup
override QN: u32 = THREADS_N * RB; // column quads per workgroup

@compute @workgroup_size(THREADS_N, THREADS_M, 1)
fn gemm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let m4 = p.m / 4u;
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let groups_m = (p.m + ROWS - 1u) / ROWS;
    // row groups and column quads of this thread, clamped into range for reading
    var rq: array<u32, 2>;
    var cq: array<u32, 2>;
    for (var i = 0u; i < RB; i++) {
        rq[i] = min(wid.y * QM + lid.y + i * THREADS_M, groups_m - 1u);
        cq[i] = min(wid.x * QN + lid.x + i * THREADS_N, n4 - 1u);
    }
    // acc[(bi * RB + bj) * 4 + r]: row ROWS rq[bi] + r (r < ROWS), column quad cq[bj]
    var acc: array<vec4<f32>, 16>;

    for (var kq = 0u; kq < k4; kq++) {
        // bk[bj * 4 + j]: row k = 4 kq + j of op(B), columns 4 cq[bj] .. + 3
        var bk: array<vec4<f32>, 8>;
        for (var bj = 0u; bj < RB; bj++) {
            if (TRANS_B) {
                // B stored N x K: a vec4 holds 4 consecutive k of one column
                let c0 = b[(cq[bj] * 4u) * k4 + kq];
                let c1 = b[(cq[bj] * 4u + 1u) * k4 + kq];
                let c2 = b[(cq[bj] * 4u + 2u) * k4 + kq];
                let c3 = b[(cq[bj] * 4u + 3u) * k4 + kq];
                bk[bj * 4u] = vec4<f32>(c0.x, c1.x, c2.x, c3.x);
                bk[bj * 4u + 1u] = vec4<f32>(c0.y, c1.y, c2.y, c3.y);
                bk[bj * 4u + 2u] = vec4<f32>(c0.z, c1.z, c2.z, c3.z);
                bk[bj * 4u + 3u] = vec4<f32>(c0.w, c1.w, c2.w, c3.w);
            } else {
                for (var j = 0u; j < 4u; j++) { bk[bj * 4u + j] = b[(kq * 4u + j) * n4 + cq[bj]]; }
            }
        }
        for (var bi = 0u; bi < RB; bi++) {
            // ar[r]: row ROWS rq[bi] + r of op(A), k = 4 kq .. + 3
            var ar: array<vec4<f32>, 4>;
            if (TRANS_A) {
                // A stored K x M (M a multiple of 4): a vec4 holds 4 consecutive rows of one k;
                // a group's rows lie in one such quad (ROWS divides 4)
                let quad = rq[bi] * ROWS / 4u;
                let first = rq[bi] * ROWS % 4u;
                let t0 = a[(kq * 4u) * m4 + quad];
                let t1 = a[(kq * 4u + 1u) * m4 + quad];
                let t2 = a[(kq * 4u + 2u) * m4 + quad];
                let t3 = a[(kq * 4u + 3u) * m4 + quad];
                for (var r = 0u; r < ROWS; r++) {
                    ar[r] = vec4<f32>(t0[first + r], t1[first + r], t2[first + r], t3[first + r]);
                }
            } else {
                for (var r = 0u; r < ROWS; r++) { ar[r] = a[min(rq[bi] * ROWS + r, p.m - 1u) * k4 + kq]; }
            }
            for (var bj = 0u; bj < RB; bj++) {
                let o = (bi * RB + bj) * 4u;
                for (var r = 0u; r < ROWS; r++) {
                    var s = acc[o + r];
                    s = fma(vec4<f32>(ar[r].x), bk[bj * 4u], s);
                    s = fma(vec4<f32>(ar[r].y), bk[bj * 4u + 1u], s);
                    s = fma(vec4<f32>(ar[r].z), bk[bj * 4u + 2u], s);
                    s = fma(vec4<f32>(ar[r].w), bk[bj * 4u + 3u], s);
                    acc[o + r] = s;
                }
            }
        }
    }
    // the last K % 4 values of k: only A transposed with B not (the other cases need K % 4 == 0)
    for (var k = k4 * 4u; k < p.k; k++) {
        for (var bi = 0u; bi < RB; bi++) {
            let ak = a[k * m4 + rq[bi] * ROWS / 4u];
            let first = rq[bi] * ROWS % 4u;
            for (var bj = 0u; bj < RB; bj++) {
                let bv = b[k * n4 + cq[bj]];
                let o = (bi * RB + bj) * 4u;
                for (var r = 0u; r < ROWS; r++) { acc[o + r] = fma(vec4<f32>(ak[first + r]), bv, acc[o + r]); }
            }
        }
    }

    for (var bj = 0u; bj < RB; bj++) {
        let q = wid.x * QN + lid.x + bj * THREADS_N;
        if (q >= n4) { continue; }
        var bv = vec4<f32>(0.0);
        if (HAS_BIAS) { bv = bias[q]; }
        for (var bi = 0u; bi < RB; bi++) {
            for (var i = 0u; i < ROWS; i++) {
                let r = (wid.y * QM + lid.y + bi * THREADS_M) * ROWS + i;
                if (r >= p.m) { break; }
                var v = p.alpha * acc[(bi * RB + bj) * 4u + i] + bv;
                if (ACCUMULATE) { v += p.beta * c[r * n4 + q]; }
                c[r * n4 + q] = vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
            }
        }
    }
}
