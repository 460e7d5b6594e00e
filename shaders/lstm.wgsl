// LSTM recurrence and backprop through time. CPU twins: src/backend/cpu/lstm.rs; slots,
// parameter block and grid: src/backend/ops/lstm.rs.
//
// Sequences are row-major [batch, steps, features]; gates are packed [i | f | g | o] (PyTorch's
// order), 4H wide. The input projection x W_ih + b is one GEMM over all batch * steps rows done
// beforehand (`xproj`), and the weight gradients are GEMMs over `dgates`; these kernels do only
// the sequential part. Batch rows are independent, so one workgroup owns one batch row and walks
// the whole sequence in ONE dispatch, with workgroup barriers between the phases of a step:
// a launch per step would cost T dispatches and T round trips through global memory for h.
// Threads loop over gate columns (4H) and units (H), so any H up to LSTM_MAX_HIDDEN works.
//
// Workgroup memory is sized by the pipeline constant HIDDEN (the op's hidden size): the forward
// keeps h_{t-1} (H) and the step's activated gates (4H), the backward the step's gate gradients
// (4H). ops/lstm.rs caps H at LSTM_MAX_HIDDEN = 768 (5 * 768 floats = 15 KiB < the 16 KiB WebGPU
// guarantees).
//
// Per-unit running state (c_{t-1} in the forward; dL/dh_t and dL/dc_t in the backward) is only
// ever touched by the invocation that owns the unit (u = lid + n * WG in every phase), so it
// lives in global memory rows (c_seq, dh0, dc0) without barriers: an invocation sees its own
// writes.

struct LstmParams {
    batch: u32,
    steps: u32,
    hidden: u32, // = HIDDEN; kept so the block reads like Op::LstmForward's fields
}

// Binding i is the op's slot i - 1, named as the slot (see backend::Op::slots); a slot that
// two entry points bind differently is qualified by its entry point (lstm_backward_gates).
@group(0) @binding(0) var<uniform> p: LstmParams;

// lstm_forward
@group(0) @binding(1) var<storage, read> xproj: array<f32>;
@group(0) @binding(2) var<storage, read> w_hh: array<f32>;
@group(0) @binding(3) var<storage, read> h0: array<f32>;
@group(0) @binding(4) var<storage, read> c0: array<f32>;
@group(0) @binding(5) var<storage, read_write> h_seq: array<f32>;
@group(0) @binding(6) var<storage, read_write> c_seq: array<f32>;
@group(0) @binding(7) var<storage, read_write> gates: array<f32>;
@group(0) @binding(8) var<storage, read_write> hprev: array<f32>;

// lstm_backward
@group(0) @binding(1) var<storage, read> lstm_backward_gates: array<f32>;
@group(0) @binding(2) var<storage, read> lstm_backward_c_seq: array<f32>;
@group(0) @binding(3) var<storage, read> lstm_backward_c0: array<f32>;
@group(0) @binding(4) var<storage, read> lstm_backward_w_hh: array<f32>;
@group(0) @binding(5) var<storage, read> dh_seq: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgates: array<f32>;
@group(0) @binding(7) var<storage, read_write> dh0: array<f32>;
@group(0) @binding(8) var<storage, read_write> dc0: array<f32>;

const WG: u32 = 128u;
override HIDDEN: u32 = 768u;

var<workgroup> h_prev: array<f32, HIDDEN>;       // forward: h_{t-1} of this batch row
var<workgroup> gate_buf: array<f32, 4u * HIDDEN>; // forward: activated gates; backward: dz

// exp of a non-positive argument only: no overflow to inf, portable at any |x|.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

fn tanh_c(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

// One workgroup per batch row, from a 2-D grid when batch exceeds 65535.
fn batch_row(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}

@compute @workgroup_size(WG)
fn lstm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let b = batch_row(wid, nwg);
    if (b >= p.batch) { return; } // uniform: the whole workgroup leaves
    let H = HIDDEN;
    let G = 4u * H;
    for (var u = li; u < H; u += WG) { h_prev[u] = h0[b * H + u]; }
    workgroupBarrier();
    for (var t = 0u; t < p.steps; t++) {
        let row = b * p.steps + t;
        // Phase 1, per gate column k: z = xproj + h_{t-1} W_hh[:, k], activated.
        for (var k = li; k < G; k += WG) {
            var z = xproj[row * G + k];
            for (var j = 0u; j < H; j++) { z = fma(h_prev[j], w_hh[j * G + k], z); }
            var a: f32;
            if (k >= 2u * H && k < 3u * H) { a = tanh_c(z); } else { a = sigmoid(z); }
            gate_buf[k] = a;
            gates[row * G + k] = a;
        }
        workgroupBarrier();
        // Phase 2, per unit u: the cell update. Every read of h_prev in phase 1 is done, and
        // h_prev[u] is read here only by u's owner, so it is updated in place.
        for (var u = li; u < H; u += WG) {
            var c_prev: f32;
            if (t == 0u) { c_prev = c0[b * H + u]; } else { c_prev = c_seq[(row - 1u) * H + u]; }
            let i = gate_buf[u];
            let f = gate_buf[H + u];
            let g = gate_buf[2u * H + u];
            let o = gate_buf[3u * H + u];
            let c = f * c_prev + i * g;
            let h = o * tanh_c(c);
            hprev[row * H + u] = h_prev[u];
            c_seq[row * H + u] = c;
            h_seq[row * H + u] = h;
            h_prev[u] = h;
        }
        workgroupBarrier();
    }
}

// dc = dc_next + dh o (1 - tanh^2 c_t); dz_i = dc g i (1 - i); dz_f = dc c_{t-1} f (1 - f);
// dz_g = dc i (1 - g^2); dz_o = dh tanh(c_t) o (1 - o); dc_next = dc f; dh_rec = dz W_hh^T.
// dh0 and dc0 rows carry dh_rec and dc_next between steps and hold the answer after t = 0.
@compute @workgroup_size(WG)
fn lstm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let b = batch_row(wid, nwg);
    if (b >= p.batch) { return; }
    let H = HIDDEN;
    let G = 4u * H;
    for (var u = li; u < H; u += WG) {
        dh0[b * H + u] = 0.0;
        dc0[b * H + u] = 0.0;
    }
    for (var s = 0u; s < p.steps; s++) {
        let t = p.steps - 1u - s;
        let row = b * p.steps + t;
        // Phase 1, per unit u: the four pre-activation gate gradients.
        for (var u = li; u < H; u += WG) {
            let i = lstm_backward_gates[row * G + u];
            let f = lstm_backward_gates[row * G + H + u];
            let g = lstm_backward_gates[row * G + 2u * H + u];
            let o = lstm_backward_gates[row * G + 3u * H + u];
            let c = lstm_backward_c_seq[row * H + u];
            var c_prev: f32;
            if (t == 0u) { c_prev = lstm_backward_c0[b * H + u]; } else { c_prev = lstm_backward_c_seq[(row - 1u) * H + u]; }
            let tc = tanh_c(c);
            let dh = dh_seq[row * H + u] + dh0[b * H + u];
            let dc = dc0[b * H + u] + dh * o * (1.0 - tc * tc);
            let dzi = dc * g * (i * (1.0 - i));
            let dzf = dc * c_prev * (f * (1.0 - f));
            let dzg = dc * i * (1.0 - g * g);
            let dzo = dh * tc * (o * (1.0 - o));
            dc0[b * H + u] = dc * f;
            gate_buf[u] = dzi;
            gate_buf[H + u] = dzf;
            gate_buf[2u * H + u] = dzg;
            gate_buf[3u * H + u] = dzo;
            dgates[row * G + u] = dzi;
            dgates[row * G + H + u] = dzf;
            dgates[row * G + 2u * H + u] = dzg;
            dgates[row * G + 3u * H + u] = dzo;
        }
        workgroupBarrier();
        // Phase 2, per unit j: dL/dh_{t-1} through the recurrence, dz W_hh^T.
        for (var j = li; j < H; j += WG) {
            var acc = 0.0;
            for (var k = 0u; k < G; k++) { acc = fma(gate_buf[k], lstm_backward_w_hh[j * G + k], acc); }
            dh0[b * H + j] = acc;
        }
        workgroupBarrier();
    }
}
