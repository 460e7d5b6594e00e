// Optimizer updates over a flat parameter buffer, one dispatch for all parameters.
// hyper (binding 1) holds the hyper-parameters so a learning-rate schedule or Adam's step
// counter needs no recompilation. CPU twins: src/backend/cpu/optim.rs.

struct Params {
    n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> state1: array<f32>;
@group(0) @binding(5) var<storage, read_write> state2: array<f32>;

const WG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// PyTorch RMSprop (centered = false): s = a s + (1 - a) g^2; b = mu b + g / (sqrt(s) + eps);
// p -= lr b. hyper = [lr, alpha, momentum, eps]; state1 = s, state2 = b.
@compute @workgroup_size(256)
fn rmsprop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let lr = hyper[0];
    let alpha = hyper[1];
    let mu = hyper[2];
    let eps = hyper[3];
    let g = grad[i];
    let s = alpha * state1[i] + (1.0 - alpha) * g * g;
    let b = mu * state2[i] + g / (sqrt(s) + eps);
    state1[i] = s;
    state2[i] = b;
    param[i] = param[i] - lr * b;
}

// Adam with bias correction. hyper = [lr, beta1, beta2, eps, t]; state1 = m, state2 = v.
@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let lr = hyper[0];
    let b1 = hyper[1];
    let b2 = hyper[2];
    let eps = hyper[3];
    let t = hyper[4];
    let g = grad[i];
    let m = b1 * state1[i] + (1.0 - b1) * g;
    let v = b2 * state2[i] + (1.0 - b2) * g * g;
    state1[i] = m;
    state2[i] = v;
    let mhat = m / (1.0 - pow(b1, t));
    let vhat = v / (1.0 - pow(b2, t));
    param[i] = param[i] - lr * mhat / (sqrt(vhat) + eps);
}
