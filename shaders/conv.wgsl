// 2-D convolution over NHWC tensors and its adjoints, as implicit GEMMs: the unfolded
// ("im2col") matrix is never written; each tile load computes which input pixel a
// (row, k) element of it is, or zero in the padding. CPU twins: src/backend/cpu/conv.rs;
// slots, parameter block and grid: src/backend/ops/conv.rs.
//
//   conv2d_forward:         y  [B*OH*OW, OC]     = unfold(x) [.., KH*KW*IC] * w [KH*KW*IC, OC] (+ bias)
//   conv2d_backward_input:  dx [B*IH*IW, IC]     = gather(dy) [.., KH*KW*OC] * w^T        (+ bias)
//   conv2d_backward_weight: dw [KH*KW*IC, OC]    = unfold(x)^T [.., B*OH*OW] * dy [B*OH*OW, OC]
//   conv2d_backward_weight_split: the same product with its K = B*OH*OW axis cut into runs of
//     `k_run` (= samples per run x OH*OW) values; run s (grid rows s * m_tiles ..) writes its
//     partial dw to part[s] (sum_slices in elementwise.wgsl adds them). The long reduction then
//     runs on runs x tiles workgroups instead of a few dozen.
// The backward-input kernel is also a transposed convolution's forward pass.
//
// Tiling as in gemm.wgsl: a workgroup computes a TILE_M x TILE_N block, staging TILE_K-deep
// slabs of both operands through workgroup memory; each thread keeps 4 x 4 accumulators.
// Loads are laid out so that consecutive threads read consecutive addresses of the operand
// whose contiguous axis is k (channels) or the row/column, whichever it is for that kernel.

struct ConvParams {
    batch: u32, in_h: u32, in_w: u32, in_c: u32,
    out_h: u32, out_w: u32, out_c: u32, kh: u32,
    kw: u32, stride: u32, pad_h: u32, pad_w: u32,
    m: u32, n: u32, k: u32, k_run: u32,
}

// The one file whose bindings are named for their role in the implicit GEMM rather than for
// the slot: the four entry points share one body (conv), and WGSL cannot pass a storage
// array to a function. tests/shaders_validate.rs holds the role -> slot table.
@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> src_a: array<f32>; // x (forward, weight), dy (input)
@group(0) @binding(2) var<storage, read> src_b: array<f32>; // w (forward, input), dy (weight)
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override THREADS_M: u32 = 16u;
override THREADS_N: u32 = 16u;
override TILE_K: u32 = 16u;
const REG: u32 = 4u;
override TILE_M: u32 = THREADS_M * REG;
override TILE_N: u32 = THREADS_N * REG;

const FORWARD: u32 = 0u;
const BACKWARD_INPUT: u32 = 1u;
const BACKWARD_WEIGHT: u32 = 2u;
const BACKWARD_WEIGHT_SPLIT: u32 = 3u;

var<workgroup> tile_a: array<f32, TILE_K * TILE_M>; // [kk][row]
var<workgroup> tile_b: array<f32, TILE_K * TILE_N>; // [kk][col]

// x[b, iy, ix, ci], zero outside the image.
fn x_at(b: u32, iy: i32, ix: i32, ci: u32) -> f32 {
    if (iy < 0 || ix < 0 || iy >= i32(p.in_h) || ix >= i32(p.in_w)) { return 0.0; }
    return src_a[((b * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_c + ci];
}

// Element (row, kk) of the left operand (row < m, kk < k checked by the caller).
fn load_a(mode: u32, row: u32, kk: u32) -> f32 {
    switch mode {
        case 0u: { // row = (b, oy, ox), kk = (ky, kx, ci)
            let ci = kk % p.in_c; let tap = kk / p.in_c;
            let ox = row % p.out_w; let t = row / p.out_w;
            let iy = i32((t % p.out_h) * p.stride + tap / p.kw) - i32(p.pad_h);
            let ix = i32(ox * p.stride + tap % p.kw) - i32(p.pad_w);
            return x_at(t / p.out_h, iy, ix, ci);
        }
        case 1u: { // row = (b, iy, ix), kk = (ky, kx, co): dy at the output pixel whose window puts tap (ky, kx) on (iy, ix)
            let co = kk % p.out_c; let tap = kk / p.out_c;
            let ix = row % p.in_w; let t = row / p.in_w;
            let ty = i32(t % p.in_h + p.pad_h) - i32(tap / p.kw);
            let tx = i32(ix + p.pad_w) - i32(tap % p.kw);
            if (ty < 0 || tx < 0) { return 0.0; }
            let oy = u32(ty) / p.stride; let ox = u32(tx) / p.stride;
            if (u32(ty) % p.stride != 0u || u32(tx) % p.stride != 0u || oy >= p.out_h || ox >= p.out_w) { return 0.0; }
            return src_a[((t / p.in_h * p.out_h + oy) * p.out_w + ox) * p.out_c + co];
        }
        default: { // row = (ky, kx, ci), kk = (b, oy, ox)
            let ci = row % p.in_c; let tap = row / p.in_c;
            let ox = kk % p.out_w; let t = kk / p.out_w;
            let iy = i32((t % p.out_h) * p.stride + tap / p.kw) - i32(p.pad_h);
            let ix = i32(ox * p.stride + tap % p.kw) - i32(p.pad_w);
            return x_at(t / p.out_h, iy, ix, ci);
        }
    }
}

// Element (kk, col) of the right operand.
fn load_b(mode: u32, kk: u32, col: u32) -> f32 {
    switch mode {
        case 1u: { // kk = (ky, kx, co), col = ci: w[ky, kx, ci, co]
            return src_b[((kk / p.out_c) * p.in_c + col) * p.out_c + kk % p.out_c];
        }
        default: { return src_b[kk * p.n + col]; } // w (forward) or dy (weight), both k x n
    }
}

fn run(mode: u32, wid: vec3<u32>, lid: vec3<u32>, li: u32) {
    var row_tile = wid.y;
    var k_begin = 0u;
    var k_end = p.k;
    var out_base = 0u;
    if (mode == BACKWARD_WEIGHT_SPLIT) {
        let m_tiles = (p.m + TILE_M - 1u) / TILE_M;
        let s = wid.y / m_tiles;
        row_tile = wid.y % m_tiles;
        k_begin = s * p.k_run;
        k_end = min(p.k, k_begin + p.k_run);
        out_base = s * p.m * p.n;
    }
    let row0 = row_tile * TILE_M;
    let col0 = wid.x * TILE_N;
    let nthreads = THREADS_M * THREADS_N;
    // which index runs fastest across threads in each operand's tile load
    let a_k_fast = mode != BACKWARD_WEIGHT && mode != BACKWARD_WEIGHT_SPLIT;
    let b_k_fast = mode == BACKWARD_INPUT;
    var acc: array<f32, 16>;
    var ar: array<f32, 4>;
    var br: array<f32, 4>;
    for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        for (var e = li; e < TILE_M * TILE_K; e += nthreads) {
            var r: u32;
            var kk: u32;
            if (a_k_fast) { kk = e % TILE_K; r = e / TILE_K; } else { r = e % TILE_M; kk = e / TILE_M; }
            var v = 0.0;
            if (row0 + r < p.m && k0 + kk < k_end) { v = load_a(mode, row0 + r, k0 + kk); }
            tile_a[kk * TILE_M + r] = v;
        }
        for (var e = li; e < TILE_N * TILE_K; e += nthreads) {
            var cc: u32;
            var kk: u32;
            if (b_k_fast) { kk = e % TILE_K; cc = e / TILE_K; } else { cc = e % TILE_N; kk = e / TILE_N; }
            var v = 0.0;
            if (col0 + cc < p.n && k0 + kk < k_end) { v = load_b(mode, k0 + kk, col0 + cc); }
            tile_b[kk * TILE_N + cc] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            for (var i = 0u; i < REG; i++) { ar[i] = tile_a[kk * TILE_M + lid.y + i * THREADS_M]; }
            for (var j = 0u; j < REG; j++) { br[j] = tile_b[kk * TILE_N + lid.x + j * THREADS_N]; }
            for (var i = 0u; i < REG; i++) {
                for (var j = 0u; j < REG; j++) {
                    acc[i * REG + j] = fma(ar[i], br[j], acc[i * REG + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < REG; i++) {
        let r = row0 + lid.y + i * THREADS_M;
        if (r >= p.m) { continue; }
        for (var j = 0u; j < REG; j++) {
            let col = col0 + lid.x + j * THREADS_N;
            if (col >= p.n) { continue; }
            var v = acc[i * REG + j];
            if (HAS_BIAS) { v += bias[col]; }
            if (ACCUMULATE) { v += out[out_base + r * p.n + col]; }
            out[out_base + r * p.n + col] = v;
        }
    }
}

@compute @workgroup_size(THREADS_N, THREADS_M, 1)
fn conv2d_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    run(FORWARD, wid, lid, li);
}

@compute @workgroup_size(THREADS_N, THREADS_M, 1)
fn conv2d_backward_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    run(BACKWARD_INPUT, wid, lid, li);
}

@compute @workgroup_size(THREADS_N, THREADS_M, 1)
fn conv2d_backward_weight(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    run(BACKWARD_WEIGHT, wid, lid, li);
}

@compute @workgroup_size(THREADS_N, THREADS_M, 1)
fn conv2d_backward_weight_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    run(BACKWARD_WEIGHT_SPLIT, wid, lid, li);
}
