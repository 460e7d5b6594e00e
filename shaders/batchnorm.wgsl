// Batch normalisation over the columns of a rows x cols matrix (a conv feature map is
// (batch*h*w) x channels), with a fused activation. stats = [mean; invstd] (2 x cols).
// CPU twins: src/backend/cpu/batchnorm.rs (the maths is written out there).
// Column reductions run in chunks of rows (chunk_rows rows each, the last one shorter; see
// bn_chunk_rows in src/backend/ops.rs) so that a feature map of 10^5 rows and a few dozen
// channels gives hundreds of workgroups: *_partial kernels reduce one chunk x 32 columns per
// workgroup (8 lanes stride the chunk's rows, a warp reads 32 consecutive floats, lanes combine
// through workgroup memory), then one thread per column combines the chunks in chunk order.
// Statistics: each chunk's mean and sum of squared deviations (two passes over the chunk),
// combined with Chan et al.'s formula, for accuracy at any batch size.

struct Params {
    rows: u32,
    cols: u32,
    momentum: f32,
    eps: f32,
    chunks: u32,
    chunk_rows: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// batch_norm_partial
@group(0) @binding(1) var<storage, read> p_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> p_part: array<f32>;
// batch_norm_stats
@group(0) @binding(1) var<storage, read> s_part: array<f32>;
@group(0) @binding(2) var<storage, read_write> s_rmean: array<f32>;
@group(0) @binding(3) var<storage, read_write> s_rvar: array<f32>;
@group(0) @binding(4) var<storage, read_write> s_stats: array<f32>;
// batch_norm_running
@group(0) @binding(1) var<storage, read> r_rmean: array<f32>;
@group(0) @binding(2) var<storage, read> r_rvar: array<f32>;
@group(0) @binding(3) var<storage, read_write> r_stats: array<f32>;
// batch_norm_forward
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_stats: array<f32>;
@group(0) @binding(3) var<storage, read> f_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> f_beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_y: array<f32>;
// batch_norm_backward_partial
@group(0) @binding(1) var<storage, read> q_x: array<f32>;
@group(0) @binding(2) var<storage, read> q_stats: array<f32>;
@group(0) @binding(3) var<storage, read> q_y: array<f32>;
@group(0) @binding(4) var<storage, read> q_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> q_part: array<f32>;
// batch_norm_backward_reduce
@group(0) @binding(1) var<storage, read> u_part: array<f32>;
@group(0) @binding(2) var<storage, read_write> u_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> u_dbeta: array<f32>;
// batch_norm_backward
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_stats: array<f32>;
@group(0) @binding(3) var<storage, read> b_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> b_y: array<f32>;
@group(0) @binding(5) var<storage, read> b_dy: array<f32>;
@group(0) @binding(6) var<storage, read> b_dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> b_dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> b_dx: array<f32>;

// ACT, activate() and activate_grad() come from activation.wgsl, prepended.
const COLS_PER_WG: u32 = 32u;
const LANES: u32 = 8u;

var<workgroup> part1: array<f32, 256>; // LANES x COLS_PER_WG
var<workgroup> part2: array<f32, 256>;

// Sums part1 and part2 over lanes for every column of the workgroup; all threads see them.
fn combine(lid: vec3<u32>) -> vec2<f32> {
    workgroupBarrier();
    var t = vec2<f32>(0.0, 0.0);
    for (var l = 0u; l < LANES; l++) {
        t += vec2<f32>(part1[l * COLS_PER_WG + lid.x], part2[l * COLS_PER_WG + lid.x]);
    }
    workgroupBarrier();
    return t;
}

fn chunk_end(ch: u32) -> u32 {
    return min(p.rows, (ch + 1u) * p.chunk_rows);
}

// Grid: (column groups of 32, chunks).
@compute @workgroup_size(32, 8)
fn batch_norm_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.x * COLS_PER_WG + lid.x;
    let ch = wid.y;
    let ok = c < p.cols;
    let r0 = ch * p.chunk_rows;
    let r1 = chunk_end(ch);
    var s = 0.0;
    if (ok) { for (var r = r0 + lid.y; r < r1; r += LANES) { s += p_x[r * p.cols + c]; } }
    part1[lid.y * COLS_PER_WG + lid.x] = s;
    part2[lid.y * COLS_PER_WG + lid.x] = 0.0;
    let mean = combine(lid).x / f32(r1 - r0);
    var q = 0.0;
    if (ok) { for (var r = r0 + lid.y; r < r1; r += LANES) { let d = p_x[r * p.cols + c] - mean; q += d * d; } }
    part1[lid.y * COLS_PER_WG + lid.x] = q;
    let sq = combine(lid).x;
    if (ok && lid.y == 0u) {
        p_part[ch * 2u * p.cols + c] = mean;
        p_part[(ch * 2u + 1u) * p.cols + c] = sq;
    }
}

@compute @workgroup_size(256)
fn batch_norm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (c >= p.cols) { return; }
    var m = 0.0;
    for (var ch = 0u; ch < p.chunks; ch++) {
        m += f32(chunk_end(ch) - ch * p.chunk_rows) * s_part[ch * 2u * p.cols + c];
    }
    m /= f32(p.rows);
    var sq = 0.0;
    for (var ch = 0u; ch < p.chunks; ch++) {
        let d = s_part[ch * 2u * p.cols + c] - m;
        sq += s_part[(ch * 2u + 1u) * p.cols + c] + f32(chunk_end(ch) - ch * p.chunk_rows) * d * d;
    }
    let var_b = sq / f32(p.rows);
    let var_u = select(var_b, sq / f32(p.rows - 1u), p.rows > 1u);
    s_stats[c] = m;
    s_stats[p.cols + c] = 1.0 / sqrt(var_b + p.eps);
    s_rmean[c] = (1.0 - p.momentum) * s_rmean[c] + p.momentum * m;
    s_rvar[c] = (1.0 - p.momentum) * s_rvar[c] + p.momentum * var_u;
}

@compute @workgroup_size(256)
fn batch_norm_running(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (c >= p.cols) { return; }
    r_stats[c] = r_rmean[c];
    r_stats[p.cols + c] = 1.0 / sqrt(r_rvar[c] + p.eps);
}

@compute @workgroup_size(256)
fn batch_norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= p.rows * p.cols) { return; }
    let c = i % p.cols;
    f_y[i] = activate(f_gamma[c] * (f_x[i] - f_stats[c]) * f_stats[p.cols + c] + f_beta[c]);
}

// Grid: (column groups of 32, chunks).
@compute @workgroup_size(32, 8)
fn batch_norm_backward_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.x * COLS_PER_WG + lid.x;
    let ch = wid.y;
    let ok = c < p.cols;
    var sdz = 0.0;
    var sdzx = 0.0;
    if (ok) {
        let mean = q_stats[c];
        let invstd = q_stats[p.cols + c];
        for (var r = ch * p.chunk_rows + lid.y; r < chunk_end(ch); r += LANES) {
            let i = r * p.cols + c;
            let dz = q_dy[i] * activate_grad(q_y[i]);
            sdz += dz;
            sdzx += dz * (q_x[i] - mean) * invstd;
        }
    }
    part1[lid.y * COLS_PER_WG + lid.x] = sdz;
    part2[lid.y * COLS_PER_WG + lid.x] = sdzx;
    let t = combine(lid);
    if (ok && lid.y == 0u) {
        q_part[ch * 2u * p.cols + c] = t.x;
        q_part[(ch * 2u + 1u) * p.cols + c] = t.y;
    }
}

@compute @workgroup_size(256)
fn batch_norm_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (c >= p.cols) { return; }
    var a = 0.0;
    var b = 0.0;
    for (var ch = 0u; ch < p.chunks; ch++) {
        a += u_part[ch * 2u * p.cols + c];
        b += u_part[(ch * 2u + 1u) * p.cols + c];
    }
    u_dbeta[c] = a;
    u_dgamma[c] = b;
}

@compute @workgroup_size(256)
fn batch_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= p.rows * p.cols) { return; }
    let c = i % p.cols;
    let n = f32(p.rows);
    let mean = b_stats[c];
    let invstd = b_stats[p.cols + c];
    let dz = b_dy[i] * activate_grad(b_y[i]);
    let xhat = (b_x[i] - mean) * invstd;
    b_dx[i] = b_gamma[c] * invstd * (dz - b_dbeta[c] / n - xhat * b_dgamma[c] / n);
}
