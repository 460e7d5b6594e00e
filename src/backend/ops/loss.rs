//! Fused losses (shaders/loss.wgsl; CPU twin: cpu/loss.rs): each writes one value per row
//! (times `scale`) and the gradient of their sum in one pass, so no loss needs a separate
//! backward kernel.

use super::gemm::GemmTiles;
use super::{f, u, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};

params! {
    /// The parameter block of loss.wgsl (`cols`: the class count for softmax_ce; `aux`:
    /// softmax_ce's label smoothing, gaussian_nll's variance floor, 0 for the other entry points).
    pub struct LossParams { rows: u32, cols: u32, scale: f32, aux: f32 }
}

pub(super) struct Loss;

fn shape(op: &Op) -> (usize, usize, f32) {
    match *op {
        Op::BceLogits { rows, cols, scale } | Op::GaussianNll { rows, cols, scale, .. } | Op::Kl { rows, cols, scale } => {
            (rows, cols, scale)
        }
        Op::SoftmaxCe { rows, classes, scale, .. } => (rows, classes, scale),
        _ => unreachable!("not a loss"),
    }
}

impl KernelFamily for Loss {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::BceLogits { .. } => "bce_logits",
            Op::GaussianNll { .. } => "gaussian_nll",
            Op::Kl { .. } => "kl_normal",
            Op::SoftmaxCe { .. } => "softmax_ce",
            _ => unreachable!("not a loss"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        let (rows, cols, _) = shape(op);
        let n = rows * cols;
        match op {
            Op::BceLogits { .. } => vec![f("logits", n, Read), f("target", n, Read), f("loss", rows, Write), f("dlogits", n, Write)],
            Op::GaussianNll { .. } => vec![
                f("mean", n, Read),
                f("var_raw", n, Read),
                f("target", n, Read),
                f("loss", rows, Write),
                f("dmean", n, Write),
                f("dvar_raw", n, Write),
            ],
            Op::Kl { .. } => {
                vec![f("mu", n, Read), f("logvar", n, Read), f("loss", rows, Write), f("dmu", n, Write), f("dlogvar", n, Write)]
            }
            Op::SoftmaxCe { .. } => vec![f("logits", n, Read), u("labels", rows, Read), f("loss", rows, Write), f("dlogits", n, Write)],
            _ => unreachable!("not a loss"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        let (rows, cols, _) = shape(op);
        match op {
            Op::SoftmaxCe { .. } => vec![("rows", rows), ("classes", cols)],
            _ => vec![("rows", rows), ("cols", cols)],
        }
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let (rows, cols, scale) = shape(op);
        // one 64-wide workgroup per row, except softmax_ce: one invocation per row
        let grid = match op {
            Op::SoftmaxCe { .. } => Grid::Flat(rows.div_ceil(64)),
            _ => Grid::Flat(rows),
        };
        let aux = match *op {
            Op::SoftmaxCe { smoothing, .. } => smoothing,
            Op::GaussianNll { floor, .. } => floor,
            _ => 0.0,
        };
        KernelSpec::new("loss.wgsl", self.entry(op), LossParams { rows: rows as u32, cols: cols as u32, scale, aux }, grid)
    }
}
