// Random numbers and reparameterised sampling from ONE counter-based generator,
// Philox4x32-10, written line for line as src/rng.rs so both backends draw the same bits.
// counter buffer = [seed_lo, seed_hi, step]; element i of stream s draws
// philox(counter = (i, step, s, 0), key = (seed_lo, seed_hi)).
// CPU twins: src/backend/cpu/sample.rs; slots, parameter block and grid:
// src/backend/ops/sample.rs.

struct SampleParams {
    n: u32,
    stream: u32,
    rate: f32, // dropout's rate, shift_scale's scale, gumbel's 1 / tau
    height: u32, // height .. max_shift: shift_scale only
    width: u32,
    channels: u32,
    max_shift: u32,
    pad: u32,
}

// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots); a slot that
// two entry points bind differently is qualified by its entry point (reparam_backward_eps).
@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(1) var<storage, read> counter: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read_write> random_normal_out: array<f32>;
// reparam: mu, logvar -> z, eps
@group(0) @binding(2) var<storage, read> mu: array<f32>;
@group(0) @binding(3) var<storage, read> logvar: array<f32>;
@group(0) @binding(4) var<storage, read_write> z: array<f32>;
@group(0) @binding(5) var<storage, read_write> eps: array<f32>;
// reparam_backward: dz, logvar, eps -> dmu, dlogvar
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> reparam_backward_logvar: array<f32>;
@group(0) @binding(3) var<storage, read> reparam_backward_eps: array<f32>;
@group(0) @binding(4) var<storage, read_write> dmu: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogvar: array<f32>;
// dropout: counter, x -> y, mask; gumbel: counter, x -> y
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mask: array<f32>;

const WG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let lolo = a_lo * b_lo;
    let lohi = a_lo * b_hi;
    let hilo = a_hi * b_lo;
    let hihi = a_hi * b_hi;
    let cross = (lolo >> 16u) + (lohi & 0xFFFFu) + (hilo & 0xFFFFu);
    let hi = hihi + (lohi >> 16u) + (hilo >> 16u) + (cross >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox(block: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = block;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let r0 = mulhilo(0xD2511F53u, c.x);
        let r1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(r1.x ^ c.y ^ k.x, r1.y, r0.x ^ c.w ^ k.y, r0.y);
    }
    return c;
}

fn draw(i: u32) -> vec4<u32> {
    return philox(vec4<u32>(i, counter[2], p.stream, 0u), vec2<u32>(counter[0], counter[1]));
}

fn uniform01(bits: u32) -> f32 {
    return f32(bits >> 8u) * (1.0 / 16777216.0);
}

fn normal_at(i: u32) -> f32 {
    let w = draw(i);
    let u1 = f32((w.x >> 8u) + 1u) * (1.0 / 16777216.0);
    let u2 = uniform01(w.y);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

@compute @workgroup_size(256)
fn random_bits(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { out[i] = draw(i).x; }
}

@compute @workgroup_size(256)
fn random_normal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i < p.n) { random_normal_out[i] = normal_at(i); }
}

// z = mu + exp(logvar / 2) * eps; eps is kept for the backward pass.
@compute @workgroup_size(256)
fn reparam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let e = normal_at(i);
    eps[i] = e;
    z[i] = mu[i] + exp(0.5 * logvar[i]) * e;
}

// dmu = dz; dlogvar = dz * eps * exp(logvar / 2) / 2.
@compute @workgroup_size(256)
fn reparam_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    dmu[i] = dz[i];
    dlogvar[i] = dz[i] * reparam_backward_eps[i] * 0.5 * exp(0.5 * reparam_backward_logvar[i]);
}

// dropout: counter, x -> y, mask. mask = (u >= rate) / (1 - rate) with u from word i % 4 of
// Philox draw i / 4 (as the CPU twin, which uses each draw for four elements).

@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let u = uniform01(draw(i / 4u)[i % 4u]);
    let m = select(0.0, 1.0 / (1.0 - p.rate), u >= p.rate);
    mask[i] = m;
    y[i] = x[i] * m;
}

// gumbel: y = (x + g) / tau, g = -ln(-ln u) with u = ((w >> 9) + 1/2) / 2^23 in (0, 1) (exact in
// f32, so never 1) from word 0 of draw i (p.rate holds 1 / tau).
@compute @workgroup_size(256)
fn gumbel(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let u = (f32(draw(i).x >> 9u) + 0.5) * (1.0 / 8388608.0);
    y[i] = (x[i] - log(-log(u))) * p.rate;
}

// shift_scale: counter, x -> y, one invocation per element: row r's draw r gives the
// translation (words 0, 1: uniform in [-max_shift, max_shift], none across a width of 1) and the
// amplitude factor 1 + scale N(0, 1) (words 2, 3); zero where the source falls outside.
@compute @workgroup_size(256)
fn shift_scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = flat(wid, nwg, lid);
    if (i >= p.n) { return; }
    let per = p.height * p.width * p.channels;
    let r = i / per;
    let k = i - r * per;
    let pix = k / p.channels;
    let ch = k - pix * p.channels;
    let row = pix / p.width;
    let col = pix - row * p.width;
    let w = draw(r);
    let span = 2u * p.max_shift + 1u;
    let dy = i32(w.x % span) - i32(p.max_shift);
    var dx = 0;
    if (p.width > 1u) { dx = i32(w.y % span) - i32(p.max_shift); }
    let u1 = f32((w.z >> 8u) + 1u) * (1.0 / 16777216.0);
    let u2 = uniform01(w.w);
    let s = 1.0 + p.rate * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    let si = i32(row) + dy;
    let sj = i32(col) + dx;
    if (si < 0 || si >= i32(p.height) || sj < 0 || sj >= i32(p.width)) {
        y[i] = 0.0;
    } else {
        y[i] = s * x[r * per + (u32(si) * p.width + u32(sj)) * p.channels + ch];
    }
}
