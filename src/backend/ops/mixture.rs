//! Sums over a discrete latent y (M2, GM-DGM; shaders/mixture.wgsl; CPU twin:
//! cpu/mixture.rs). A batch is expanded to one row per (sample, class) and the per-row losses
//! are weighted by q(y|x) (see graph::mixture).

use super::gemm::GemmTiles;
use super::{f, u, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};

params! {
    /// The parameter block of mixture.wgsl (`cols`: the class count for the per-class
    /// kernels; `scale`: also row_scale's alpha).
    pub struct MixtureParams { rows: u32, cols: u32, copies: u32, scale: f32 }
}

pub(super) struct Mixture;

impl KernelFamily for Mixture {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::RepeatRows { .. } => "repeat_rows",
            Op::RepeatRowsBackward { .. } => "repeat_rows_backward",
            Op::RowScale { .. } => "row_scale",
            Op::WeightedRowSum { .. } => "weighted_row_sum",
            Op::CategoricalKl { .. } => "categorical_kl",
            Op::ConsistencyKl { .. } => "consistency_kl",
            Op::KlGaussians { .. } => "kl_gaussians",
            _ => unreachable!("not a mixture op"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        match *op {
            Op::RepeatRows { rows, cols, copies } => vec![f("x", rows * cols, Read), f("out", rows * copies * cols, Write)],
            Op::RepeatRowsBackward { rows, cols, copies } => vec![f("dout", rows * copies * cols, Read), f("dx", rows * cols, Write)],
            Op::RowScale { rows, cols, .. } => vec![f("x", rows * cols, Read), f("w", rows, Read), f("y", rows * cols, Write)],
            Op::WeightedRowSum { rows, classes, .. } => {
                vec![f("loss", rows * classes, Read), f("w", rows * classes, Read), f("out", rows, Write), f("dw", rows * classes, Write)]
            }
            Op::CategoricalKl { rows, classes, .. } => vec![
                f("logits", rows * classes, Read),
                f("log_prior", classes, Read),
                u("labels", rows, Read),
                f("loss", rows, Write),
                f("dlogits", rows * classes, Write),
            ],
            Op::ConsistencyKl { rows, classes, .. } => vec![
                f("logits", rows * classes, Read),
                f("target_logits", rows * classes, Read),
                f("loss", rows, Write),
                f("dlogits", rows * classes, Write),
            ],
            Op::KlGaussians { rows, cols, .. } => vec![
                f("mu_q", rows * cols, Read),
                f("logvar_q", rows * cols, Read),
                f("mu_p", rows * cols, Read),
                f("logvar_p", rows * cols, Read),
                f("loss", rows, Write),
                f("dmu_q", rows * cols, Write),
                f("dlogvar_q", rows * cols, Write),
                f("dlogvar_p", rows * cols, Write),
            ],
            _ => unreachable!("not a mixture op"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        match *op {
            Op::RepeatRows { rows, cols, copies } | Op::RepeatRowsBackward { rows, cols, copies } => {
                vec![("rows", rows), ("cols", cols), ("copies", copies), ("rows * copies * cols", rows * copies * cols)]
            }
            Op::RowScale { rows, cols, .. } | Op::KlGaussians { rows, cols, .. } => vec![("rows", rows), ("cols", cols)],
            Op::WeightedRowSum { rows, classes, .. }
            | Op::CategoricalKl { rows, classes, .. }
            | Op::ConsistencyKl { rows, classes, .. } => {
                vec![("rows", rows), ("classes", classes)]
            }
            _ => unreachable!("not a mixture op"),
        }
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let u = |x: usize| x as u32;
        let flat = |n: usize| Grid::Flat(n.div_ceil(256));
        let (params, grid) = match *op {
            Op::RepeatRows { rows, cols, copies } => {
                (MixtureParams { rows: u(rows), cols: u(cols), copies: u(copies), scale: 0.0 }, flat(rows * copies * cols))
            }
            Op::RepeatRowsBackward { rows, cols, copies } => {
                (MixtureParams { rows: u(rows), cols: u(cols), copies: u(copies), scale: 0.0 }, flat(rows * cols))
            }
            Op::RowScale { rows, cols, alpha } => {
                (MixtureParams { rows: u(rows), cols: u(cols), copies: 0, scale: alpha }, flat(rows * cols))
            }
            // one invocation per row
            Op::WeightedRowSum { rows, classes, scale }
            | Op::CategoricalKl { rows, classes, scale }
            | Op::ConsistencyKl { rows, classes, scale } => {
                (MixtureParams { rows: u(rows), cols: u(classes), copies: 0, scale }, Grid::Flat(rows.div_ceil(64)))
            }
            // one workgroup per row
            Op::KlGaussians { rows, cols, scale } => (MixtureParams { rows: u(rows), cols: u(cols), copies: 0, scale }, Grid::Flat(rows)),
            _ => unreachable!("not a mixture op"),
        };
        KernelSpec::new("mixture.wgsl", self.entry(op), params, grid)
    }
}
