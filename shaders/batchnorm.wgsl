// Batch normalisation over the columns of a rows x cols matrix (a conv feature map is
// (batch*h*w) x channels), with a fused activation. stats = [mean; invstd] (2 x cols).
// CPU twins: src/backend/cpu/batchnorm.rs (the maths is written out there).
// Column reductions run in chunks of rows (chunk_rows rows each, the last one shorter; see
// bn_chunk_rows in src/backend/ops/batchnorm.rs) so that a feature map of 10^5 rows and a few dozen
// channels gives hundreds of workgroups: *_partial kernels reduce one chunk x 32 columns per
// workgroup (8 lanes stride the chunk's rows, a warp reads 32 consecutive floats, lanes combine
// through workgroup memory), then one thread per column combines the chunks in chunk order.
// Statistics: each chunk's mean and sum of squared deviations (two passes over the chunk),
// combined with Chan et al.'s formula, for accuracy at any batch size.

struct BatchNormParams {
    rows: u32,
    cols: u32,
    momentum: f32,
    eps: f32,
    chunks: u32,
    chunk_rows: u32,
}

// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots); a slot that
// two entry points bind differently is qualified by its entry point (batch_norm_forward_y).
@group(0) @binding(0) var<uniform> p: BatchNormParams;
// batch_norm_partial
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> batch_norm_partial_part: array<f32>;
// batch_norm_stats
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> batch_norm_stats_stats: array<f32>;
// batch_norm_running
@group(0) @binding(1) var<storage, read> batch_norm_running_running_mean: array<f32>;
@group(0) @binding(2) var<storage, read> batch_norm_running_running_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> batch_norm_running_stats: array<f32>;
// batch_norm_forward (and x, stats, gamma, beta above and below)
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> batch_norm_forward_y: array<f32>;
// batch_norm_backward_partial
@group(0) @binding(3) var<storage, read> batch_norm_backward_partial_y: array<f32>;
@group(0) @binding(4) var<storage, read> batch_norm_backward_partial_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> batch_norm_backward_partial_part: array<f32>;
// batch_norm_backward_reduce
@group(0) @binding(2) var<storage, read_write> batch_norm_backward_reduce_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> batch_norm_backward_reduce_dbeta: array<f32>;
// batch_norm_backward
@group(0) @binding(4) var<storage, read> y: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;

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
    if (ok) { for (var r = r0 + lid.y; r < r1; r += LANES) { s += x[r * p.cols + c]; } }
    part1[lid.y * COLS_PER_WG + lid.x] = s;
    part2[lid.y * COLS_PER_WG + lid.x] = 0.0;
    let mean = combine(lid).x / f32(r1 - r0);
    var q = 0.0;
    if (ok) { for (var r = r0 + lid.y; r < r1; r += LANES) { let d = x[r * p.cols + c] - mean; q += d * d; } }
    part1[lid.y * COLS_PER_WG + lid.x] = q;
    let sq = combine(lid).x;
    if (ok && lid.y == 0u) {
        batch_norm_partial_part[ch * 2u * p.cols + c] = mean;
        batch_norm_partial_part[(ch * 2u + 1u) * p.cols + c] = sq;
    }
}

@compute @workgroup_size(256)
fn batch_norm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (c >= p.cols) { return; }
    var m = 0.0;
    for (var ch = 0u; ch < p.chunks; ch++) {
        m += f32(chunk_end(ch) - ch * p.chunk_rows) * part[ch * 2u * p.cols + c];
    }
    m /= f32(p.rows);
    var sq = 0.0;
    for (var ch = 0u; ch < p.chunks; ch++) {
        let d = part[ch * 2u * p.cols + c] - m;
        sq += part[(ch * 2u + 1u) * p.cols + c] + f32(chunk_end(ch) - ch * p.chunk_rows) * d * d;
    }
    let var_b = sq / f32(p.rows);
    let var_u = select(var_b, sq / f32(p.rows - 1u), p.rows > 1u);
    batch_norm_stats_stats[c] = m;
    batch_norm_stats_stats[p.cols + c] = 1.0 / sqrt(var_b + p.eps);
    running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * m;
    running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * var_u;
}

@compute @workgroup_size(256)
fn batch_norm_running(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (c >= p.cols) { return; }
    batch_norm_running_stats[c] = batch_norm_running_running_mean[c];
    batch_norm_running_stats[p.cols + c] = 1.0 / sqrt(batch_norm_running_running_var[c] + p.eps);
}

@compute @workgroup_size(256)
fn batch_norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= p.rows * p.cols) { return; }
    let c = i % p.cols;
    batch_norm_forward_y[i] = activate(gamma[c] * (x[i] - stats[c]) * stats[p.cols + c] + beta[c]);
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
        let mean = stats[c];
        let invstd = stats[p.cols + c];
        for (var r = ch * p.chunk_rows + lid.y; r < chunk_end(ch); r += LANES) {
            let i = r * p.cols + c;
            let dz = batch_norm_backward_partial_dy[i] * activate_grad(batch_norm_backward_partial_y[i]);
            sdz += dz;
            sdzx += dz * (x[i] - mean) * invstd;
        }
    }
    part1[lid.y * COLS_PER_WG + lid.x] = sdz;
    part2[lid.y * COLS_PER_WG + lid.x] = sdzx;
    let t = combine(lid);
    if (ok && lid.y == 0u) {
        batch_norm_backward_partial_part[ch * 2u * p.cols + c] = t.x;
        batch_norm_backward_partial_part[(ch * 2u + 1u) * p.cols + c] = t.y;
    }
}

@compute @workgroup_size(256)
fn batch_norm_backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (c >= p.cols) { return; }
    var a = 0.0;
    var b = 0.0;
    for (var ch = 0u; ch < p.chunks; ch++) {
        a += part[ch * 2u * p.cols + c];
        b += part[(ch * 2u + 1u) * p.cols + c];
    }
    batch_norm_backward_reduce_dbeta[c] = a;
    batch_norm_backward_reduce_dgamma[c] = b;
}

@compute @workgroup_size(256)
fn batch_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid.x;
    if (i >= p.rows * p.cols) { return; }
    let c = i % p.cols;
    let n = f32(p.rows);
    let mean = stats[c];
    let invstd = stats[p.cols + c];
    let dz = dy[i] * activate_grad(y[i]);
    let xhat = (x[i] - mean) * invstd;
    dx[i] = gamma[c] * invstd * (dz - dbeta[c] / n - xhat * dgamma[c] / n);
}
