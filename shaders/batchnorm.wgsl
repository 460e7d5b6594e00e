// Batch normalisation over the columns of a rows x cols matrix (a conv feature map is
// (batch*h*w) x channels), with a fused activation. stats = [mean; invstd] (2 x cols).
// CPU twins: src/backend/cpu/batchnorm.rs (the maths is written out there).
// Column reductions: a workgroup owns 32 adjacent columns and 8 lanes stride the rows (a warp
// reads 32 consecutive floats), combining through workgroup memory; two passes over the rows
// (mean first, then squared deviations) for accuracy.

struct Params {
    rows: u32,
    cols: u32,
    momentum: f32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
// batch_norm_stats
@group(0) @binding(1) var<storage, read> s_x: array<f32>;
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
// batch_norm_backward
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_stats: array<f32>;
@group(0) @binding(3) var<storage, read> b_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> b_y: array<f32>;
@group(0) @binding(5) var<storage, read> b_dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_dx: array<f32>;
@group(0) @binding(7) var<storage, read_write> b_dgamma: array<f32>;
@group(0) @binding(8) var<storage, read_write> b_dbeta: array<f32>;

// ACT, activate() and activate_grad() come from activation.wgsl, prepended.
const COLS_PER_WG: u32 = 32u;
const LANES: u32 = 8u;

var<workgroup> part1: array<f32, 256>; // LANES x COLS_PER_WG
var<workgroup> part2: array<f32, 256>;

fn column(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * COLS_PER_WG + lid.x;
}

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

@compute @workgroup_size(32, 8)
fn batch_norm_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = column(wid, nwg, lid);
    let ok = c < p.cols;
    var s = 0.0;
    if (ok) { for (var r = lid.y; r < p.rows; r += LANES) { s += s_x[r * p.cols + c]; } }
    part1[lid.y * COLS_PER_WG + lid.x] = s;
    part2[lid.y * COLS_PER_WG + lid.x] = 0.0;
    let mean = combine(lid).x / f32(p.rows);
    var q = 0.0;
    if (ok) { for (var r = lid.y; r < p.rows; r += LANES) { let d = s_x[r * p.cols + c] - mean; q += d * d; } }
    part1[lid.y * COLS_PER_WG + lid.x] = q;
    let sq = combine(lid).x;
    if (ok && lid.y == 0u) {
        let var_b = sq / f32(p.rows);
        let var_u = select(var_b, sq / f32(p.rows - 1u), p.rows > 1u);
        s_stats[c] = mean;
        s_stats[p.cols + c] = 1.0 / sqrt(var_b + p.eps);
        s_rmean[c] = (1.0 - p.momentum) * s_rmean[c] + p.momentum * mean;
        s_rvar[c] = (1.0 - p.momentum) * s_rvar[c] + p.momentum * var_u;
    }
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

@compute @workgroup_size(32, 8)
fn batch_norm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = column(wid, nwg, lid);
    let ok = c < p.cols;
    var mean = 0.0;
    var invstd = 0.0;
    if (ok) { mean = b_stats[c]; invstd = b_stats[p.cols + c]; }
    var sdz = 0.0;
    var sdzx = 0.0;
    if (ok) {
        for (var r = lid.y; r < p.rows; r += LANES) {
            let i = r * p.cols + c;
            let dz = b_dy[i] * activate_grad(b_y[i]);
            sdz += dz;
            sdzx += dz * (b_x[i] - mean) * invstd;
        }
    }
    part1[lid.y * COLS_PER_WG + lid.x] = sdz;
    part2[lid.y * COLS_PER_WG + lid.x] = sdzx;
    let t = combine(lid);
    if (!ok) { return; }
    let n = f32(p.rows);
    let mdz = t.x / n;
    let mdzx = t.y / n;
    let g = b_gamma[c] * invstd;
    for (var r = lid.y; r < p.rows; r += LANES) {
        let i = r * p.cols + c;
        let dz = b_dy[i] * activate_grad(b_y[i]);
        b_dx[i] = g * (dz - mdz - (b_x[i] - mean) * invstd * mdzx);
    }
    if (lid.y == 0u) {
        b_dgamma[c] = t.y;
        b_dbeta[c] = t.x;
    }
}
