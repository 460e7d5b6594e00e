// Activations shared by the kernels with a fused activation (gemm, elementwise, batchnorm):
// the loader prepends this file to theirs (see src/backend/gpu/kernels.rs), so the numbering
// and formulas live in one place, next to backend::Act.
// 0 identity, 1 relu, 2 sigmoid, 3 tanh, 4 softplus (as backend::Act).
override ACT: u32 = 0u;

// exp of a non-positive argument only: no overflow to inf, portable at any |x|.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

fn activate(x: f32) -> f32 {
    switch ACT {
        case 1u: { return max(x, 0.0); }
        case 2u: { return sigmoid(x); }
        case 3u: { return tanh(clamp(x, -15.0, 15.0)); }
        case 4u: { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
        default: { return x; }
    }
}

// f'(x) written in terms of the output y = f(x) (as Act::grad_from_output).
fn activate_grad(y: f32) -> f32 {
    switch ACT {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return y * (1.0 - y); }
        case 3u: { return 1.0 - y * y; }
        case 4u: { return 1.0 - exp(-y); }
        default: { return 1.0; }
    }
}
