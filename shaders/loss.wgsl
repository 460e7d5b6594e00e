// Fused losses: each writes one value per row (times `scale`) and the gradient of the sum of
// those values, in one pass. CPU twins: src/backend/cpu/loss.rs; slots, parameter block and
// grid: src/backend/ops/loss.rs.
// Per-row losses over many features (BCE, Gaussian NLL, KL) use one 64-wide workgroup per
// row, striding the features and reducing the row sum in workgroup memory.

struct LossParams {
    rows: u32,
    cols: u32, // softmax_ce: classes
    scale: f32,
    aux: f32, // softmax_ce: label smoothing E (0: one-hot targets); gaussian_nll: the variance floor; 0 elsewhere
}

// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots); a slot that
// two entry points bind differently, or whose name is a WGSL keyword, is qualified by its entry
// point (gaussian_nll_loss, bce_logits_target).
@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> bce_logits_target: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> var_raw: array<f32>;
@group(0) @binding(3) var<storage, read> gaussian_nll_target: array<f32>;
@group(0) @binding(4) var<storage, read_write> gaussian_nll_loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dmean: array<f32>;
@group(0) @binding(6) var<storage, read_write> dvar_raw: array<f32>;
@group(0) @binding(1) var<storage, read> mu: array<f32>;
@group(0) @binding(2) var<storage, read> logvar: array<f32>;
@group(0) @binding(4) var<storage, read_write> dmu: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogvar: array<f32>;

const LN_2PI: f32 = 1.8378770664093453;

var<workgroup> partial: array<f32, 64>;
var<workgroup> labeled_count: array<u32, 64>;

fn softplus(x: f32) -> f32 { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
// exp of a non-positive argument only: no overflow to inf, portable at any |x|.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }

// Tree-sums partial[] (64 entries); the result is in partial[0] for every invocation.
fn reduce64(lx: u32) {
    for (var s = 32u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lx < s) { partial[lx] += partial[lx + s]; }
    }
    workgroupBarrier();
}

// logits, target -> loss[rows], dlogits. Bernoulli NLL summed over features.
@compute @workgroup_size(64)
fn bce_logits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_of(wid, nwg);
    let valid = r < p.rows;
    var s = 0.0;
    if (valid) {
        for (var j = lid.x; j < p.cols; j += 64u) {
            let i = r * p.cols + j;
            let l = logits[i];
            let t = bce_logits_target[i];
            s += softplus(l) - t * l;
            dlogits[i] = p.scale * (sigmoid(l) - t);
        }
    }
    partial[lid.x] = s;
    reduce64(lid.x);
    if (valid && lid.x == 0u) { loss[r] = p.scale * partial[0]; }
}

// mean, var_raw, target -> loss[rows], dmean, dvar_raw; var = softplus(var_raw) + floor (p.aux).
@compute @workgroup_size(64)
fn gaussian_nll(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_of(wid, nwg);
    let valid = r < p.rows;
    var s = 0.0;
    if (valid) {
        for (var j = lid.x; j < p.cols; j += 64u) {
            let i = r * p.cols + j;
            let raw = var_raw[i];
            let v = softplus(raw) + p.aux;
            let d = gaussian_nll_target[i] - mean[i];
            s += 0.5 * (LN_2PI + log(v) + d * d / v);
            dmean[i] = p.scale * (-d / v);
            let dv = 0.5 * (1.0 / v - d * d / (v * v));
            dvar_raw[i] = p.scale * dv * sigmoid(raw);
        }
    }
    partial[lid.x] = s;
    reduce64(lid.x);
    if (valid && lid.x == 0u) { gaussian_nll_loss[r] = p.scale * partial[0]; }
}

// mu, logvar -> loss[rows], dmu, dlogvar. KL(N(mu, exp(logvar)) || N(0, I)) per row.
@compute @workgroup_size(64)
fn kl_normal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = row_of(wid, nwg);
    let valid = r < p.rows;
    var s = 0.0;
    if (valid) {
        for (var j = lid.x; j < p.cols; j += 64u) {
            let i = r * p.cols + j;
            let m = mu[i];
            let lv = logvar[i];
            let e = exp(lv);
            s += -0.5 * (1.0 + lv - m * m - e);
            dmu[i] = p.scale * m;
            dlogvar[i] = p.scale * 0.5 * (e - 1.0);
        }
    }
    partial[lid.x] = s;
    reduce64(lid.x);
    if (valid && lid.x == 0u) { loss[r] = p.scale * partial[0]; }
}

// logits, labels -> loss[rows], dlogits. Cross-entropy on labeled rows divided by their
// count; a label >= cols (classes) marks the row unlabeled: zero loss, zero gradient.
// One invocation per row; every workgroup first counts the labeled rows of the batch.
// Label smoothing E > 0: target t = (1 - E) one-hot(y) + E / K, loss lse - (1 - E) l_y -
// (E / K) sum_j l_j, gradient p - t; E = 0 runs the one-hot expressions unchanged.
@compute @workgroup_size(64)
fn softmax_ce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    var cnt = 0u;
    for (var i = lid.x; i < p.rows; i += 64u) {
        if (labels[i] < p.cols) { cnt += 1u; }
    }
    labeled_count[lid.x] = cnt;
    for (var s = 32u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid.x < s) { labeled_count[lid.x] += labeled_count[lid.x + s]; }
    }
    workgroupBarrier();
    let labeled = labeled_count[0];
    let r = row_of(wid, nwg) * 64u + lid.x;
    if (r >= p.rows) { return; }
    let o = r * p.cols;
    let y = labels[r];
    if (y >= p.cols) {
        loss[r] = 0.0;
        for (var j = 0u; j < p.cols; j++) { dlogits[o + j] = 0.0; }
        return;
    }
    let w = p.scale / f32(labeled);
    var mx = logits[o];
    for (var j = 1u; j < p.cols; j++) { mx = max(mx, logits[o + j]); }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) { sum += exp(logits[o + j] - mx); }
    let lse = mx + log(sum);
    if (p.aux > 0.0) {
        let on = 1.0 - p.aux;
        let off = p.aux / f32(p.cols);
        var total = 0.0;
        for (var j = 0u; j < p.cols; j++) { total += logits[o + j]; }
        loss[r] = w * (lse - on * logits[o + y] - off * total);
        for (var j = 0u; j < p.cols; j++) {
            let pj = exp(logits[o + j] - lse);
            dlogits[o + j] = w * (pj - (select(0.0, on, j == y) + off));
        }
        return;
    }
    loss[r] = w * (lse - logits[o + y]);
    for (var j = 0u; j < p.cols; j++) {
        let pj = exp(logits[o + j] - lse);
        dlogits[o + j] = w * (pj - select(0.0, 1.0, j == y));
    }
}
