//! Elementwise kernels (shaders/elementwise.wgsl; CPU twin: cpu/elementwise.rs): activations
//! and their backward, add, mul, scale, axpy, fill, concat / split along the feature axis, the
//! label mix of the mixture models, the one-hot of a row's argmax (straight-through pi) and the
//! split-K slice sum. One invocation per element.

use super::gemm::GemmTiles;
use super::{f, u, Access::*, Act, Grid, KernelFamily, KernelSpec, Op, Slot};

params! {
    /// The parameter block of elementwise.wgsl. `label_mix*` and `one_hot_argmax` read the class count from
    /// `cols_a`; `sum_slices` reads the slice count from `cols_a` and `accumulate` (0 or 1)
    /// from `cols_b`.
    pub struct ElementwiseParams { n: u32, rows: u32, cols_a: u32, cols_b: u32, alpha: f32 }
}

pub(super) struct Elementwise;

impl KernelFamily for Elementwise {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::ActForward { .. } => "act_forward",
            Op::ActBackward { .. } => "act_backward",
            Op::Add { .. } => "add",
            Op::Mul { .. } => "mul",
            Op::Scale { .. } => "scale",
            Op::Axpy { .. } => "axpy",
            Op::Fill { .. } => "fill",
            Op::ConcatCols { .. } => "concat_cols",
            Op::SplitCols { .. } => "split_cols",
            Op::LabelMix { .. } => "label_mix",
            Op::LabelMixBackward { .. } => "label_mix_backward",
            Op::OneHotArgmax { .. } => "one_hot_argmax",
            Op::SumSlices { .. } => "sum_slices",
            _ => unreachable!("not an elementwise op"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        match *op {
            Op::ActForward { n, .. } => vec![f("x", n, Read), f("y", n, Write)],
            Op::ActBackward { n, .. } => vec![f("y", n, Read), f("dy", n, Read), f("dx", n, Write)],
            Op::Add { n } | Op::Mul { n } => vec![f("a", n, Read), f("b", n, Read), f("c", n, Write)],
            Op::Scale { n, .. } => vec![f("x", n, Read), f("y", n, Write)],
            Op::Axpy { n, .. } => vec![f("x", n, Read), f("y", n, ReadWrite)],
            Op::Fill { n, .. } => vec![f("y", n, Write)],
            Op::ConcatCols { rows, cols_a, cols_b } => {
                vec![f("a", rows * cols_a, Read), f("b", rows * cols_b, Read), f("c", rows * (cols_a + cols_b), Write)]
            }
            Op::SplitCols { rows, cols_a, cols_b } => {
                vec![f("c", rows * (cols_a + cols_b), Read), f("a", rows * cols_a, Write), f("b", rows * cols_b, Write)]
            }
            Op::LabelMix { rows, classes } => vec![f("pi", rows * classes, Read), u("labels", rows, Read), f("out", rows * classes, Write)],
            Op::LabelMixBackward { rows, classes } => {
                vec![f("dout", rows * classes, Read), u("labels", rows, Read), f("dpi", rows * classes, Write)]
            }
            Op::OneHotArgmax { rows, classes } => vec![f("x", rows * classes, Read), f("y", rows * classes, Write)],
            Op::SumSlices { n, slices, accumulate } => {
                vec![f("part", slices * n, Read), f("out", n, if accumulate { ReadWrite } else { Write })]
            }
            _ => unreachable!("not an elementwise op"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        match *op {
            Op::ActForward { n, .. }
            | Op::ActBackward { n, .. }
            | Op::Add { n }
            | Op::Mul { n }
            | Op::Scale { n, .. }
            | Op::Axpy { n, .. }
            | Op::Fill { n, .. } => vec![("n", n)],
            Op::ConcatCols { rows, cols_a, cols_b } | Op::SplitCols { rows, cols_a, cols_b } => {
                vec![("rows", rows), ("cols_a", cols_a), ("cols_b", cols_b)]
            }
            Op::LabelMix { rows, classes } | Op::LabelMixBackward { rows, classes } | Op::OneHotArgmax { rows, classes } => {
                vec![("rows", rows), ("classes", classes)]
            }
            Op::SumSlices { n, slices, .. } => vec![("n", n), ("slices", slices)],
            _ => unreachable!("not an elementwise op"),
        }
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let u = |x: usize| x as u32;
        let flat = |n: usize| Grid::Flat(n.div_ceil(256));
        let entry = self.entry(op);
        let (params, grid) = match *op {
            Op::ActForward { n, .. } | Op::ActBackward { n, .. } | Op::Add { n } | Op::Mul { n } => {
                (ElementwiseParams { n: u(n), ..Default::default() }, flat(n))
            }
            Op::Scale { n, alpha } | Op::Axpy { n, alpha } | Op::Fill { n, value: alpha } => {
                (ElementwiseParams { n: u(n), alpha, ..Default::default() }, flat(n))
            }
            Op::ConcatCols { rows, cols_a, cols_b } | Op::SplitCols { rows, cols_a, cols_b } => (
                ElementwiseParams { rows: u(rows), cols_a: u(cols_a), cols_b: u(cols_b), ..Default::default() },
                flat(rows * (cols_a + cols_b)),
            ),
            Op::LabelMix { rows, classes } | Op::LabelMixBackward { rows, classes } | Op::OneHotArgmax { rows, classes } => {
                (ElementwiseParams { n: u(rows * classes), rows: u(rows), cols_a: u(classes), ..Default::default() }, flat(rows * classes))
            }
            Op::SumSlices { n, slices, accumulate } => {
                (ElementwiseParams { n: u(n), cols_a: u(slices), cols_b: accumulate as u32, ..Default::default() }, flat(n))
            }
            _ => unreachable!("not an elementwise op"),
        };
        let spec = KernelSpec::new("elementwise.wgsl", entry, params, grid);
        match *op {
            Op::ActForward { act, .. } | Op::ActBackward { act, .. } => spec.constants(act_const(act)),
            _ => spec,
        }
    }
}

pub(super) fn act_const(act: Act) -> Vec<(&'static str, f64)> {
    vec![("ACT", act as u32 as f64)]
}
