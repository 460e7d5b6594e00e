// Kernels for objectives summed over a discrete latent y (M2, GM-DGM). CPU twins:
// src/backend/cpu/mixture.rs (the maths is written out there). The batch is expanded to one
// row per (sample, class), per-row losses on it are weighted by q(y|x): repeat_rows and its
// adjoint, row_scale (a loss gradient weighted per row), weighted_row_sum (the weighted sum
// and its gradient w.r.t. the weights), categorical_kl (the discrete KL term),
// consistency_kl (KL between two rows' softmaxes, gradient for one side) and
// kl_gaussians (KL between two diagonal Gaussians, gradients for both sides).
// Slots, parameter block and grid: src/backend/ops/mixture.rs. Binding i is the op's slot
// i - 1, named as the slot (see backend::Op::slots); a slot that two entry points bind
// differently is qualified by its entry point (weighted_row_sum_out).

struct MixtureParams {
    rows: u32,
    cols: u32, // weighted_row_sum, categorical_kl: classes
    copies: u32,
    scale: f32, // row_scale: alpha
}

@group(0) @binding(0) var<uniform> p: MixtureParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> weighted_row_sum_loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> weighted_row_sum_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> log_prior: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> categorical_kl_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(2) var<storage, read> target_logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> consistency_kl_loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> consistency_kl_dlogits: array<f32>;
@group(0) @binding(1) var<storage, read> mu_q: array<f32>;
@group(0) @binding(2) var<storage, read> logvar_q: array<f32>;
@group(0) @binding(3) var<storage, read> mu_p: array<f32>;
@group(0) @binding(4) var<storage, read> logvar_p: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> dmu_q: array<f32>;
@group(0) @binding(7) var<storage, read_write> dlogvar_q: array<f32>;
@group(0) @binding(8) var<storage, read_write> dlogvar_p: array<f32>;

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
    out[i] = x[(out_row / p.copies) * p.cols + j];
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
        s += dout[(r * p.copies + k) * p.cols + j];
    }
    dx[i] = s;
}

// x, w -> y = scale * w[row] * x.
@compute @workgroup_size(256)
fn row_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid, WG);
    if (i >= p.rows * p.cols) { return; }
    y[i] = p.scale * w[i / p.cols] * x[i];
}

// loss, w -> out[rows], dw: one invocation per row (cols = classes).
@compute @workgroup_size(64)
fn weighted_row_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = flat(wid, nwg, lid, 64u);
    if (r >= p.rows) { return; }
    var s = 0.0;
    for (var k = 0u; k < p.cols; k++) {
        let i = r * p.cols + k;
        s += w[i] * weighted_row_sum_loss[i];
        dw[i] = p.scale * weighted_row_sum_loss[i];
    }
    weighted_row_sum_out[r] = p.scale * s;
}

// logits, log_prior, labels -> loss[rows], dlogits: one invocation per row.
@compute @workgroup_size(64)
fn categorical_kl(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = flat(wid, nwg, lid, 64u);
    if (r >= p.rows) { return; }
    let o = r * p.cols;
    let label = labels[r];
    if (label < p.cols) {
        categorical_kl_loss[r] = -p.scale * log_prior[label];
        for (var j = 0u; j < p.cols; j++) { dlogits[o + j] = 0.0; }
        return;
    }
    var mx = logits[o];
    for (var j = 1u; j < p.cols; j++) { mx = max(mx, logits[o + j]); }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) { sum += exp(logits[o + j] - mx); }
    let lse = mx + log(sum);
    var kl = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let lq = logits[o + j] - lse;
        kl += exp(lq) * (lq - log_prior[j]);
    }
    categorical_kl_loss[r] = p.scale * kl;
    for (var j = 0u; j < p.cols; j++) {
        let lq = logits[o + j] - lse;
        dlogits[o + j] = p.scale * exp(lq) * ((lq - log_prior[j]) - kl);
    }
}

// logits, target -> loss[rows] = scale KL(softmax(target) || softmax(logits)), dlogits =
// scale (softmax(logits) - softmax(target)): one invocation per row.
@compute @workgroup_size(64)
fn consistency_kl(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = flat(wid, nwg, lid, 64u);
    if (r >= p.rows) { return; }
    let o = r * p.cols;
    var mq = logits[o];
    var mp = target_logits[o];
    for (var j = 1u; j < p.cols; j++) {
        mq = max(mq, logits[o + j]);
        mp = max(mp, target_logits[o + j]);
    }
    var sq = 0.0;
    var sp = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        sq += exp(logits[o + j] - mq);
        sp += exp(target_logits[o + j] - mp);
    }
    let lse_q = mq + log(sq);
    let lse_p = mp + log(sp);
    var kl = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let lq = logits[o + j] - lse_q;
        let lp = target_logits[o + j] - lse_p;
        kl += exp(lp) * (lp - lq);
        consistency_kl_dlogits[o + j] = p.scale * (exp(lq) - exp(lp));
    }
    consistency_kl_loss[r] = p.scale * kl;
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
            let inv_vp = exp(-logvar_p[i]);
            let ratio = exp(logvar_q[i] - logvar_p[i]);
            let d = mu_q[i] - mu_p[i];
            s += 0.5 * (logvar_p[i] - logvar_q[i] + ratio + d * d * inv_vp - 1.0);
            dmu_q[i] = p.scale * d * inv_vp;
            dlogvar_q[i] = p.scale * 0.5 * (ratio - 1.0);
            dlogvar_p[i] = p.scale * 0.5 * (1.0 - ratio - d * d * inv_vp);
        }
    }
    partial[lid.x] = s;
    for (var st = 32u; st > 0u; st >>= 1u) {
        workgroupBarrier();
        if (lid.x < st) { partial[lid.x] += partial[lid.x + st]; }
    }
    workgroupBarrier();
    if (valid && lid.x == 0u) { loss[r] = p.scale * partial[0]; }
}
