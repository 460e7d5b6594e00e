// Reductions: column sums (bias gradients), row-wise softmax and its backward, and per-column
// batch mean and variance. CPU twins: src/backend/cpu/reduce.rs; slots, parameter block and
// grid: src/backend/ops/reduce.rs.
// Column reductions: a workgroup owns 32 adjacent columns; 8 lanes stride the rows (so a warp
// reads 32 consecutive floats) and combine through workgroup memory.
// Row kernels: one invocation per row (rows are short: classes).

struct ReduceParams {
    rows: u32,
    cols: u32,
}

// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots); a slot that
// two entry points bind differently, or whose name is a WGSL keyword, is qualified by its
// entry point (softmax_backward_y, mean_var_var).
@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> mean_var_var: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> softmax_backward_y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

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
        for (var r = lid.y; r < p.rows; r += LANES) { s += x[r * p.cols + c]; }
    }
    partial[lid.y * COLS_PER_WG + lid.x] = s;
    workgroupBarrier();
    if (lid.y == 0u && c < p.cols) {
        let t = lanes_total(lid.x);
        if (ACCUMULATE) { out[c] = out[c] + t; } else { out[c] = t; }
    }
}

// Biased batch variance, two passes (mean first) for accuracy.
@compute @workgroup_size(32, 8)
fn mean_var(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = column(wid, nwg, lid);
    var s = 0.0;
    if (c < p.cols) {
        for (var r = lid.y; r < p.rows; r += LANES) { s += x[r * p.cols + c]; }
    }
    partial[lid.y * COLS_PER_WG + lid.x] = s;
    workgroupBarrier();
    let m = lanes_total(lid.x) / f32(p.rows);
    workgroupBarrier();
    var q = 0.0;
    if (c < p.cols) {
        for (var r = lid.y; r < p.rows; r += LANES) {
            let d = x[r * p.cols + c] - m;
            q += d * d;
        }
    }
    partial[lid.y * COLS_PER_WG + lid.x] = q;
    workgroupBarrier();
    if (lid.y == 0u && c < p.cols) {
        mean[c] = m;
        mean_var_var[c] = lanes_total(lid.x) / f32(p.rows);
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
    var mx = x[o];
    for (var j = 1u; j < p.cols; j++) { mx = max(mx, x[o + j]); }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let e = exp(x[o + j] - mx);
        y[o + j] = e;
        sum += e;
    }
    for (var j = 0u; j < p.cols; j++) { y[o + j] = y[o + j] / sum; }
}

// dx = y * (dy - sum_j dy_j y_j)
@compute @workgroup_size(64)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_index(wid, nwg, lid);
    if (r >= p.rows) { return; }
    let o = r * p.cols;
    var dot = 0.0;
    for (var j = 0u; j < p.cols; j++) { dot += softmax_backward_y[o + j] * dy[o + j]; }
    for (var j = 0u; j < p.cols; j++) { dx[o + j] = softmax_backward_y[o + j] * (dy[o + j] - dot); }
}
