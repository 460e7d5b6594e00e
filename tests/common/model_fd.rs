//! Whole-objective finite differences of a compiled model (CPU backend), per parameter tensor:
//! shared by tests/model_gradcheck.rs (every family and kind) and tests/multi_factor.rs.
//! The criterion and its noise floor are explained in tests/model_gradcheck.rs.

use ssvae::backend::cpu::CpuBackend;
use ssvae::graph::exec::{ParamStore, Program};
use ssvae::Backend;

/// A model's parameters, its forward program (the objective) and a training step with lr 0
/// (the analytic gradients), both with their inputs already written.
pub struct Setup {
    pub be: CpuBackend,
    pub store: ParamStore<CpuBackend>,
    pub fwd: Program<CpuBackend>,
    pub step: Program<CpuBackend>,
    /// The model's inputs (the same tensor ids in both programs: built from one spec).
    pub handles: ssvae::model::Handles,
}

/// The summed loss terms of one forward run.
pub fn objective(s: &Setup) -> f64 {
    s.fwd.run(&s.be).unwrap();
    s.fwd.take_metrics(&s.be).unwrap().iter().map(|&v| v as f64).sum()
}

/// The analytic gradient of every parameter (the flat gradient buffer after one step).
pub fn gradients(s: &Setup) -> Vec<f32> {
    s.step.run(&s.be).unwrap();
    s.step.take_metrics(&s.be).unwrap();
    s.be.read_f32(&s.store.grads).unwrap()
}

/// Per parameter tensor: (name, ||num - ana||, ||ana||, noise floor) with central differences
/// of step `h`; `corrupt` scales one tensor's analytic gradient by 1.25 (to show a wrong rule is
/// caught).
pub fn tensor_errors(s: &Setup, h: f32, corrupt: Option<&str>) -> Vec<(String, f64, f64, f64)> {
    let base = objective(s).abs();
    let grads = gradients(s);
    let mut out = Vec::new();
    for (i, name) in s.store.names.iter().enumerate() {
        let n: usize = s.store.shapes[i].iter().product();
        let off = s.store.offsets[i];
        let mut values = s.be.read_f32(&s.store.view(&s.be, name).unwrap()).unwrap();
        let (mut diff2, mut ana2) = (0f64, 0f64);
        for j in 0..n {
            let orig = values[j];
            values[j] = orig + h;
            s.store.write(&s.be, name, &values).unwrap();
            let up = objective(s);
            values[j] = orig - h;
            s.store.write(&s.be, name, &values).unwrap();
            let down = objective(s);
            values[j] = orig;
            s.store.write(&s.be, name, &values).unwrap();
            let num = (up - down) / (2.0 * h as f64);
            let mut ana = grads[off + j] as f64;
            if corrupt == Some(name.as_str()) {
                ana *= 1.25;
            }
            diff2 += (num - ana).powi(2);
            ana2 += ana * ana;
        }
        let noise = (n as f64).sqrt() * 2.0 * f32::EPSILON as f64 * base / (2.0 * h as f64);
        out.push((name.clone(), diff2.sqrt(), ana2.sqrt(), noise));
    }
    out
}
