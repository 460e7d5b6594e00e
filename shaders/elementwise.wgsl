// Elementwise kernels: activations and their backward, add, mul, scale, axpy, fill, and
// concat / split along the feature axis. CPU twins: src/backend/cpu/elementwise.rs.
// One invocation per element; the grid is 2-D so more than 65535 workgroups fit. ACT,
// activate() and activate_grad() come from activation.wgsl, prepended by the loader.
// Binding i is the op's slot i - 1 (see backend::Op::slots): rN read-only, wN read-write.

struct Params {
    n: u32,
    rows: u32,
    cols_a: u32,
    cols_b: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> r1: array<f32>;
@group(0) @binding(2) var<storage, read> r2: array<f32>;
@group(0) @binding(1) var<storage, read_write> w1: array<f32>;
@group(0) @binding(2) var<storage, read_write> w2: array<f32>;
@group(0) @binding(3) var<storage, read_write> w3: array<f32>;
@group(0) @binding(1) var<storage, read> r1_u32: array<u32>;
@group(0) @binding(2) var<storage, read> r2_u32: array<u32>;

const WG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(256)
fn act_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { w2[i] = activate(r1[i]); }
}

@compute @workgroup_size(256)
fn act_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { w3[i] = r2[i] * activate_grad(r1[i]); }
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { w3[i] = r1[i] + r2[i]; }
}

@compute @workgroup_size(256)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { w3[i] = r1[i] * r2[i]; }
}

@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { w2[i] = p.alpha * r1[i]; }
}

@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { w2[i] = w2[i] + p.alpha * r1[i]; }
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { w1[i] = p.alpha; }
}

// One invocation per element of the wide matrix c (rows x (cols_a + cols_b)).
@compute @workgroup_size(256)
fn concat_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    let w = p.cols_a + p.cols_b;
    if (i >= p.rows * w) { return; }
    let r = i / w;
    let j = i % w;
    if (j < p.cols_a) { w3[i] = r1[r * p.cols_a + j]; } else { w3[i] = r2[r * p.cols_b + (j - p.cols_a)]; }
}

@compute @workgroup_size(256)
fn split_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    let w = p.cols_a + p.cols_b;
    if (i >= p.rows * w) { return; }
    let r = i / w;
    let j = i % w;
    if (j < p.cols_a) { w2[r * p.cols_a + j] = r1[i]; } else { w3[r * p.cols_b + (j - p.cols_a)] = r1[i]; }
}

// The flat source index of output element i of a row gather (cols_a values per row, cols_b
// source rows, the row's index in r2_u32), or NO_ROW when that index is past the source.
const NO_ROW: u32 = 0xFFFFFFFFu;
fn gather_source(i: u32) -> u32 {
    let src = r2_u32[i / p.cols_a];
    if (src >= p.cols_b) { return NO_ROW; }
    return src * p.cols_a + i % p.cols_a;
}

// out[r, :] = data[idx[r], :] / 255; data is a u8 matrix (cols_b = source rows, cols_a =
// cols) packed little-endian 4 bytes per word. Keeps datasets resident on the GPU at 1 byte
// per pixel; batches are gathered by index.
@compute @workgroup_size(256)
fn gather_rows_u8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let byte = gather_source(i);
    if (byte == NO_ROW) { w3[i] = 0.0; return; }
    let word = r1_u32[byte / 4u];
    w3[i] = f32((word >> ((byte % 4u) * 8u)) & 0xFFu) / 255.0;
}

// out[r, :] = data[idx[r], :] from a resident f32 dataset of cols_b rows of cols_a values
// (e.g. standardised sensor windows, steps x channels per row); an index past it gives zeros.
@compute @workgroup_size(256)
fn gather_rows_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let k = gather_source(i);
    if (k == NO_ROW) { w3[i] = 0.0; return; }
    w3[i] = r1[k];
}

// out[i] (+)= sum over cols_a slices s of part[s * n + i], in slice order (cols_b = 1: add to
// out). Reduces split-K partial products (conv2d_backward_weight_split).
@compute @workgroup_size(256)
fn sum_slices(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    var v = 0.0;
    if (p.cols_b == 1u) { v = w2[i]; }
    for (var s = 0u; s < p.cols_a; s++) { v += r1[s * p.n + i]; }
    w2[i] = v;
}

// An IEEE half (low 16 bits of h) as f32, exactly, with integer operations only
// (unpack2x16float needs a capability some downlevel adapters lack).
fn half_to_f32(h: u32) -> f32 {
    let e = (h >> 10u) & 0x1Fu;
    let m = h & 0x3FFu;
    var v: f32;
    if (e == 0u) {
        v = f32(m) * exp2(-24.0); // zero and subnormals
    } else if (e == 31u) {
        v = bitcast<f32>(0x7F800000u | (m << 13u)); // inf, nan
    } else {
        v = bitcast<f32>(((e + 112u) << 23u) | (m << 13u));
    }
    return select(v, -v, (h & 0x8000u) != 0u);
}

// As gather_rows_f32 from a resident f16 dataset: value k of the flat matrix is half k % 2 (low
// half first) of word k / 2.
@compute @workgroup_size(256)
fn gather_rows_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let k = gather_source(i);
    if (k == NO_ROW) { w3[i] = 0.0; return; }
    w3[i] = half_to_f32(r1_u32[k / 2u] >> ((k % 2u) * 16u));
}

// out[r] = one_hot(labels[r]) for labeled rows (label < classes = cols_a), else pi[r].
@compute @workgroup_size(256)
fn label_mix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let y = r2_u32[i / p.cols_a];
    if (y < p.cols_a) { w3[i] = select(0.0, 1.0, i % p.cols_a == y); } else { w3[i] = r1[i]; }
}

// dpi[r] = 0 for labeled rows, else dout[r].
@compute @workgroup_size(256)
fn label_mix_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let y = r2_u32[i / p.cols_a];
    w3[i] = select(r1[i], 0.0, y < p.cols_a);
}
