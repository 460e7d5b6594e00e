// Kernels for objectives summed over a discrete latent y (M2, GM-DGM). CPU twins:
// src/backend/cpu/mixture.rs (the maths is written out there). The batch is expanded to one
// row per (sample, class), per-row losses on it are weighted by q(y|x): repeat_rows and its
// adjoint, row_scale (a loss gradient weighted per row), weighted_row_sum (the weighted sum
// and its gradient w.r.t. the weights), categorical_kl (the discrete KL term) and
// kl_gaussians (KL between two diagonal Gaussians, gradients for both sides).
// Binding i is the op's slot i - 1 (see backend::Op::slots).

struct Params {
    rows: u32,
    cols: u32,
    copies: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> r1: array<f32>;
@group(0) @binding(2) var<storage, read> r2: array<f32>;
@group(0) @binding(3) var<storage, read> r3: array<f32>;
@group(0) @binding(4) var<storage, read> r4: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> w2: array<f32>;
@group(0) @binding(3) var<storage, read_write> w3: array<f32>;
@group(0) @binding(4) var<storage, read_write> w4: array<f32>;
@group(0) @binding(5) var<storage, read_write> w5: array<f32>;
@group(0) @binding(6) var<storage, read_write> w6: array<f32>;
@group(0) @binding(7) var<storage, read_write> w7: array<f32>;
@group(0) @binding(8) var<storage, read_write> w8: array<f32>;

const WG: u32 = 256u;

var<workgroup> partial: array<f32, 64>;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>, wg: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * wg + lid.x;
}

// x -> out: one invocation per output element.
@compute @workgroup_size(256)
fn repeat_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid, WG);
    if (i >= p.rows * p.copies * p.cols) { return; }
    let out_row = i / p.cols;
    let j = i - out_row * p.cols;
    w2[i] = r1[(out_row / p.copies) * p.cols + j];
}

// dout -> dx: one invocation per input element, summing its copies in order.
@compute @workgroup_size(256)
fn repeat_rows_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid, WG);
    if (i >= p.rows * p.cols) { return; }
    let r = i / p.cols;
    let j = i - r * p.cols;
    var s = 0.0;
    for (var k = 0u; k < p.copies; k++) {
        s += r1[(r * p.copies + k) * p.cols + j];
    }
    w2[i] = s;
}

// x, w -> y = scale * w[row] * x.
@compute @workgroup_size(256)
fn row_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid, WG);
    if (i >= p.rows * p.cols) { return; }
    w3[i] = p.scale * r2[i / p.cols] * r1[i];
}

// loss, w -> out[rows], dw: one invocation per row (cols = classes).
@compute @workgroup_size(64)
fn weighted_row_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = flat(wid, nwg, lid, 64u);
    if (r >= p.rows) { return; }
    var s = 0.0;
    for (var k = 0u; k < p.cols; k++) {
        let i = r * p.cols + k;
        s += r2[i] * r1[i];
        w4[i] = p.scale * r1[i];
    }
    w3[r] = p.scale * s;
}

// logits, log_prior, labels -> loss[rows], dlogits: one invocation per row.
@compute @workgroup_size(64)
fn categorical_kl(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = flat(wid, nwg, lid, 64u);
    if (r >= p.rows) { return; }
    let o = r * p.cols;
    let y = labels[r];
    if (y < p.cols) {
        w4[r] = -p.scale * r2[y];
        for (var j = 0u; j < p.cols; j++) { w5[o + j] = 0.0; }
        return;
    }
    var mx = r1[o];
    for (var j = 1u; j < p.cols; j++) { mx = max(mx, r1[o + j]); }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) { sum += exp(r1[o + j] - mx); }
    let lse = mx + log(sum);
    var kl = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let lq = r1[o + j] - lse;
        kl += exp(lq) * (lq - r2[j]);
    }
    w4[r] = p.scale * kl;
    for (var j = 0u; j < p.cols; j++) {
        let lq = r1[o + j] - lse;
        w5[o + j] = p.scale * exp(lq) * ((lq - r2[j]) - kl);
    }
}

// mu_q, logvar_q, mu_p, logvar_p -> loss[rows], dmu_q, dlogvar_q, dlogvar_p: one 64-wide
// workgroup per row, striding the features, tree-summing the row.
@compute @workgroup_size(64)
fn kl_gaussians(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wid.y * nwg.x + wid.x;
    let valid = r < p.rows;
    var s = 0.0;
    if (valid) {
        for (var j = lid.x; j < p.cols; j += 64u) {
            let i = r * p.cols + j;
            let inv_vp = exp(-r4[i]);
            let ratio = exp(r2[i] - r4[i]);
            let d = r1[i] - r3[i];
            s += 0.5 * (r4[i] - r2[i] + ratio + d * d * inv_vp - 1.0);
            w6[i] = p.scale * d * inv_vp;
            w7[i] = p.scale * 0.5 * (ratio - 1.0);
            w8[i] = p.scale * 0.5 * (1.0 - ratio - d * d * inv_vp);
        }
    }
    partial[lid.x] = s;
    for (var st = 32u; st > 0u; st >>= 1u) {
        workgroupBarrier();
        if (lid.x < st) { partial[lid.x] += partial[lid.x + st]; }
    }
    workgroupBarrier();
    if (valid && lid.x == 0u) { w5[r] = p.scale * partial[0]; }
}
