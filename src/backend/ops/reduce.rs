//! Reductions over rows or columns (shaders/reduce.wgsl; CPU twin: cpu/reduce.rs): column
//! sums (bias gradients), row softmax and its backward, column mean / variance.

use super::gemm::{bool_const, GemmTiles};
use super::{f, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};

params! {
    /// The parameter block of reduce.wgsl.
    pub struct ReduceParams { rows: u32, cols: u32 }
}

pub(super) struct Reduce;

fn shape(op: &Op) -> (usize, usize) {
    match *op {
        Op::ColSum { rows, cols, .. }
        | Op::SoftmaxRows { rows, cols }
        | Op::SoftmaxBackward { rows, cols }
        | Op::MeanVar { rows, cols } => (rows, cols),
        _ => unreachable!("not a reduction"),
    }
}

impl KernelFamily for Reduce {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::ColSum { .. } => "col_sum",
            Op::SoftmaxRows { .. } => "softmax_rows",
            Op::SoftmaxBackward { .. } => "softmax_backward",
            Op::MeanVar { .. } => "mean_var",
            _ => unreachable!("not a reduction"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        match *op {
            Op::ColSum { rows, cols, accumulate } => {
                vec![f("x", rows * cols, Read), f("out", cols, if accumulate { ReadWrite } else { Write })]
            }
            Op::SoftmaxRows { rows, cols } => vec![f("x", rows * cols, Read), f("y", rows * cols, Write)],
            Op::SoftmaxBackward { rows, cols } => vec![f("y", rows * cols, Read), f("dy", rows * cols, Read), f("dx", rows * cols, Write)],
            Op::MeanVar { rows, cols } => vec![f("x", rows * cols, Read), f("mean", cols, Write), f("var", cols, Write)],
            _ => unreachable!("not a reduction"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        let (rows, cols) = shape(op);
        vec![("rows", rows), ("cols", cols)]
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let (rows, cols) = shape(op);
        let params = ReduceParams { rows: rows as u32, cols: cols as u32 };
        // column kernels: 32 columns per workgroup; row kernels: 64 rows per workgroup
        let grid = match op {
            Op::ColSum { .. } | Op::MeanVar { .. } => Grid::Flat(cols.div_ceil(32)),
            _ => Grid::Flat(rows.div_ceil(64)),
        };
        let spec = KernelSpec::new("reduce.wgsl", self.entry(op), params, grid);
        match *op {
            Op::ColSum { accumulate, .. } => spec.constants(vec![("ACCUMULATE", bool_const(accumulate))]),
            _ => spec,
        }
    }
}
