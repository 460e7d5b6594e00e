//! Optimizer updates (shaders/optim.wgsl; CPU twin: cpu/optim.rs): one dispatch updates every
//! parameter of a model (they live in one flat buffer). Hyper-parameters live in a small
//! buffer, not in the parameter block, so a learning-rate schedule needs no recompile.

use super::gemm::GemmTiles;
use super::{f, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};

/// RMSprop hyper-parameter buffer: `[lr, alpha (decay), momentum, eps]` (PyTorch semantics).
pub const RMSPROP_HYPER_LEN: usize = 4;
/// Adam hyper-parameter buffer: `[lr, beta1, beta2, eps, t]` (t = 1-based step, as f32).
pub const ADAM_HYPER_LEN: usize = 5;

params! {
    /// The parameter block of optim.wgsl.
    pub struct OptimParams { n: u32 }
}

pub(super) struct Optim;

impl KernelFamily for Optim {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::RmsProp { .. } => "rmsprop",
            Op::Adam { .. } => "adam",
            _ => unreachable!("not an optimizer"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        match *op {
            Op::RmsProp { n } => vec![
                f("hyper", RMSPROP_HYPER_LEN, Read),
                f("grad", n, Read),
                f("param", n, ReadWrite),
                f("square_avg", n, ReadWrite),
                f("momentum_buf", n, ReadWrite),
            ],
            Op::Adam { n } => vec![
                f("hyper", ADAM_HYPER_LEN, Read),
                f("grad", n, Read),
                f("param", n, ReadWrite),
                f("m", n, ReadWrite),
                f("v", n, ReadWrite),
            ],
            _ => unreachable!("not an optimizer"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        let (Op::RmsProp { n } | Op::Adam { n }) = *op else { unreachable!("not an optimizer") };
        vec![("n", n)]
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let (Op::RmsProp { n } | Op::Adam { n }) = *op else { unreachable!("not an optimizer") };
        KernelSpec::new("optim.wgsl", self.entry(op), OptimParams { n: n as u32 }, Grid::Flat(n.div_ceil(256)))
    }
}
