// Reductions: column sums (bias gradients), row-wise softmax and its backward, and per-column
// batch mean and variance. CPU twins: src/backend/cpu/reduce.rs.
// Column reductions: a workgroup owns 32 adjacent columns; 8 lanes stride the rows (so a warp
// reads 32 consecutive floats) and combine through workgroup memory.
// Row kernels: one invocation per row (rows are short: classes).

struct Params {
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> r1: array<f32>;
@group(0) @binding(2) var<storage, read> r2: array<f32>;
@group(0) @binding(2) var<storage, read_write> w2: array<f32>;
@group(0) @binding(3) var<storage, read_write> w3: array<f32>;

override ACCUMULATE: bool = false;
const COLS_PER_WG: u32 = 32u;
const LANES: u32 = 8u;

var<workgroup> partial: array<f32, 256>; // LANES x COLS_PER_WG

fn column(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * COLS_PER_WG + lid.x;
}

// Sum of partial[lane][lid.x] over lanes, for lane 0.
fn lanes_total(lx: u32) -> f32 {
    var t = 0.0;
    for (var l = 0u; l < LANES; l++) { t += partial[l * COLS_PER_WG + lx]; }
    return t;
}

@compute @workgroup_size(32, 8)
fn col_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = column(wid, nwg, lid);
    var s = 0.0;
    if (c < p.cols) {
        for (var r = lid.y; r < p.rows; r += LANES) { s += r1[r * p.cols + c]; }
    }
    partial[lid.y * COLS_PER_WG + lid.x] = s;
    workgroupBarrier();
    if (lid.y == 0u && c < p.cols) {
        let t = lanes_total(lid.x);
        if (ACCUMULATE) { w2[c] = w2[c] + t; } else { w2[c] = t; }
    }
}

// Biased batch variance, two passes (mean first) for accuracy.
@compute @workgroup_size(32, 8)
fn mean_var(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = column(wid, nwg, lid);
    var s = 0.0;
    if (c < p.cols) {
        for (var r = lid.y; r < p.rows; r += LANES) { s += r1[r * p.cols + c]; }
    }
    partial[lid.y * COLS_PER_WG + lid.x] = s;
    workgroupBarrier();
    let mean = lanes_total(lid.x) / f32(p.rows);
    workgroupBarrier();
    var q = 0.0;
    if (c < p.cols) {
        for (var r = lid.y; r < p.rows; r += LANES) {
            let d = r1[r * p.cols + c] - mean;
            q += d * d;
        }
    }
    partial[lid.y * COLS_PER_WG + lid.x] = q;
    workgroupBarrier();
    if (lid.y == 0u && c < p.cols) {
        w2[c] = mean;
        w3[c] = lanes_total(lid.x) / f32(p.rows);
    }
}

fn row_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid.x;
}

@compute @workgroup_size(64)
fn softmax_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_index(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let o = r * p.cols;
    var mx = r1[o];
    for (var j = 1u; j < p.cols; j++) { mx = max(mx, r1[o + j]); }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let e = exp(r1[o + j] - mx);
        w2[o + j] = e;
        sum += e;
    }
    for (var j = 0u; j < p.cols; j++) { w2[o + j] = w2[o + j] / sum; }
}

// dx = y * (dy - sum_j dy_j y_j)
@compute @workgroup_size(64)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_index(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let o = r * p.cols;
    var dot = 0.0;
    for (var j = 0u; j < p.cols; j++) { dot += r1[o + j] * r2[o + j]; }
    for (var j = 0u; j < p.cols; j++) { w3[o + j] = r1[o + j] * (r2[o + j] - dot); }
}
