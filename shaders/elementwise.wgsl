// Elementwise kernels: activations and their backward, add, mul, scale, axpy, fill,
// concat / split along the feature axis, the mixture models' label mix and the split-K slice
// sum. CPU twins: src/backend/cpu/elementwise.rs; slots, parameter block and grid:
// src/backend/ops/elementwise.rs.
// One invocation per element; the grid is 2-D so more than 65535 workgroups fit. ACT,
// activate() and activate_grad() come from activation.wgsl, prepended by the loader.
// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots); a slot that
// two entry points bind differently is qualified by its entry point (split_cols_a).

struct ElementwiseParams {
    n: u32,
    rows: u32,
    cols_a: u32, // label_mix*, one_hot_argmax: classes; sum_slices: slices
    cols_b: u32, // sum_slices: 1 = add to out
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> act_backward_y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(1) var<storage, read_write> fill_y: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(1) var<storage, read> split_cols_c: array<f32>;
@group(0) @binding(2) var<storage, read_write> split_cols_a: array<f32>;
@group(0) @binding(3) var<storage, read_write> split_cols_b: array<f32>;
@group(0) @binding(1) var<storage, read> pi: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> dpi: array<f32>;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum_slices_out: array<f32>;

const WG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(256)
fn act_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { y[i] = activate(x[i]); }
}

@compute @workgroup_size(256)
fn act_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { dx[i] = dy[i] * activate_grad(act_backward_y[i]); }
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { c[i] = a[i] + b[i]; }
}

@compute @workgroup_size(256)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { c[i] = a[i] * b[i]; }
}

@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { y[i] = p.alpha * x[i]; }
}

@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { y[i] = y[i] + p.alpha * x[i]; }
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { fill_y[i] = p.alpha; }
}

// One invocation per element of the wide matrix c (rows x (cols_a + cols_b)).
@compute @workgroup_size(256)
fn concat_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    let w = p.cols_a + p.cols_b;
    if (i >= p.rows * w) { return; }
    let r = i / w;
    let j = i % w;
    if (j < p.cols_a) { c[i] = a[r * p.cols_a + j]; } else { c[i] = b[r * p.cols_b + (j - p.cols_a)]; }
}

@compute @workgroup_size(256)
fn split_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    let w = p.cols_a + p.cols_b;
    if (i >= p.rows * w) { return; }
    let r = i / w;
    let j = i % w;
    if (j < p.cols_a) { split_cols_a[r * p.cols_a + j] = split_cols_c[i]; } else { split_cols_b[r * p.cols_b + (j - p.cols_a)] = split_cols_c[i]; }
}

// out[i] (+)= sum over cols_a slices s of part[s * n + i], in slice order (cols_b = 1: add to
// out). Reduces split-K partial products (conv2d_backward_weight_split).
@compute @workgroup_size(256)
fn sum_slices(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    var v = 0.0;
    if (p.cols_b == 1u) { v = sum_slices_out[i]; }
    for (var s = 0u; s < p.cols_a; s++) { v += part[s * p.n + i]; }
    sum_slices_out[i] = v;
}

// out[r] = one_hot(labels[r]) for labeled rows (label < classes = cols_a), else pi[r].
@compute @workgroup_size(256)
fn label_mix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let label = labels[i / p.cols_a];
    if (label < p.cols_a) { out[i] = select(0.0, 1.0, i % p.cols_a == label); } else { out[i] = pi[i]; }
}

// y[r] = one_hot(argmax x[r]) over cols_a classes, the first of equal maxima (the forward of
// the straight-through estimator; its backward is the identity). Each invocation scans its row.
@compute @workgroup_size(256)
fn one_hot_argmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let o = (i / p.cols_a) * p.cols_a;
    var best = 0u;
    for (var j = 1u; j < p.cols_a; j++) {
        if (x[o + j] > x[o + best]) { best = j; }
    }
    y[i] = select(0.0, 1.0, i - o == best);
}

// dpi[r] = 0 for labeled rows, else dout[r].
@compute @workgroup_size(256)
fn label_mix_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let label = labels[i / p.cols_a];
    dpi[i] = select(dout[i], 0.0, label < p.cols_a);
}
