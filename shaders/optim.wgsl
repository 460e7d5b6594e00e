// Optimizer updates over a flat parameter buffer, one dispatch for all parameters.
// hyper (binding 1) holds the hyper-parameters so a learning-rate schedule or Adam's step
// counter needs no recompilation. CPU twins: src/backend/cpu/optim.rs; slots, parameter block
// and grid: src/backend/ops/optim.rs.

struct OptimParams {
    n: u32,
}

// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots).
@group(0) @binding(0) var<uniform> p: OptimParams;
@group(0) @binding(1) var<storage, read> hyper: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> square_avg: array<f32>;
@group(0) @binding(5) var<storage, read_write> momentum_buf: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

const WG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

// PyTorch RMSprop (centered = false): s = a s + (1 - a) g^2; b = mu b + g / (sqrt(s) + eps);
// p -= lr b. hyper = [lr, alpha, momentum, eps]; square_avg = s, momentum_buf = b.
@compute @workgroup_size(256)
fn rmsprop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let lr = hyper[0];
    let alpha = hyper[1];
    let mu = hyper[2];
    let eps = hyper[3];
    let g = grad[i];
    let s = alpha * square_avg[i] + (1.0 - alpha) * g * g;
    let b = mu * momentum_buf[i] + g / (sqrt(s) + eps);
    square_avg[i] = s;
    momentum_buf[i] = b;
    param[i] = param[i] - lr * b;
}

// Adam with bias correction. hyper = [lr, beta1, beta2, eps, t].
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
    let m_t = b1 * m[i] + (1.0 - b1) * g;
    let v_t = b2 * v[i] + (1.0 - b2) * g * g;
    m[i] = m_t;
    v[i] = v_t;
    let mhat = m_t / (1.0 - pow(b1, t));
    let vhat = v_t / (1.0 - pow(b2, t));
    param[i] = param[i] - lr * mhat / (sqrt(vhat) + eps);
}
