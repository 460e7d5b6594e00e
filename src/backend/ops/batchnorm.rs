//! Batch normalisation over the columns of a rows x cols matrix (a conv feature map is
//! (batch*h*w) x channels), with a fused activation (shaders/batchnorm.wgsl; CPU twin:
//! cpu/batchnorm.rs). Column reductions run in chunks of rows so that a feature map of 10^5
//! rows and a few dozen channels fills a GPU; the chunks are combined in chunk order, so both
//! backends add in the same order.

use super::elementwise::act_const;
use super::gemm::GemmTiles;
use super::{f, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};
use crate::error::{Error, Result};

/// Rows per chunk of the batch-norm reductions ([`Op::BatchNormPartial`]): at least 256, and
/// at most 256 chunks.
pub fn bn_chunk_rows(rows: usize) -> usize {
    rows.div_ceil(256).max(256)
}

/// Number of chunks of a batch-norm reduction over `rows` rows.
pub fn bn_chunks(rows: usize) -> usize {
    rows.div_ceil(bn_chunk_rows(rows)).max(1)
}

params! {
    /// The parameter block of batchnorm.wgsl (`chunk_rows` = [`bn_chunk_rows`] of `rows`).
    pub struct BatchNormParams { rows: u32, cols: u32, momentum: f32, eps: f32, chunks: u32, chunk_rows: u32 }
}

pub(super) struct BatchNorm;

impl KernelFamily for BatchNorm {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::BatchNormPartial { .. } => "batch_norm_partial",
            Op::BatchNormStats { .. } => "batch_norm_stats",
            Op::BatchNormBackwardPartial { .. } => "batch_norm_backward_partial",
            Op::BatchNormBackwardReduce { .. } => "batch_norm_backward_reduce",
            Op::BatchNormRunning { .. } => "batch_norm_running",
            Op::BatchNormForward { .. } => "batch_norm_forward",
            Op::BatchNormBackward { .. } => "batch_norm_backward",
            _ => unreachable!("not a batch-norm op"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        match *op {
            Op::BatchNormPartial { rows, cols, chunks } => vec![f("x", rows * cols, Read), f("part", chunks * 2 * cols, Write)],
            Op::BatchNormStats { cols, chunks, .. } => vec![
                f("part", chunks * 2 * cols, Read),
                f("running_mean", cols, ReadWrite),
                f("running_var", cols, ReadWrite),
                f("stats", 2 * cols, Write),
            ],
            Op::BatchNormRunning { cols, .. } => {
                vec![f("running_mean", cols, Read), f("running_var", cols, Read), f("stats", 2 * cols, Write)]
            }
            Op::BatchNormForward { rows, cols, .. } => vec![
                f("x", rows * cols, Read),
                f("stats", 2 * cols, Read),
                f("gamma", cols, Read),
                f("beta", cols, Read),
                f("y", rows * cols, Write),
            ],
            Op::BatchNormBackwardPartial { rows, cols, chunks, .. } => vec![
                f("x", rows * cols, Read),
                f("stats", 2 * cols, Read),
                f("y", rows * cols, Read),
                f("dy", rows * cols, Read),
                f("part", chunks * 2 * cols, Write),
            ],
            Op::BatchNormBackwardReduce { cols, chunks } => {
                vec![f("part", chunks * 2 * cols, Read), f("dgamma", cols, Write), f("dbeta", cols, Write)]
            }
            Op::BatchNormBackward { rows, cols, .. } => vec![
                f("x", rows * cols, Read),
                f("stats", 2 * cols, Read),
                f("gamma", cols, Read),
                f("y", rows * cols, Read),
                f("dy", rows * cols, Read),
                f("dgamma", cols, Read),
                f("dbeta", cols, Read),
                f("dx", rows * cols, Write),
            ],
            _ => unreachable!("not a batch-norm op"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        match *op {
            Op::BatchNormForward { rows, cols, .. } | Op::BatchNormBackward { rows, cols, .. } => vec![("rows", rows), ("cols", cols)],
            Op::BatchNormPartial { rows, cols, chunks }
            | Op::BatchNormStats { rows, cols, chunks, .. }
            | Op::BatchNormBackwardPartial { rows, cols, chunks, .. } => {
                vec![("rows", rows), ("cols", cols), ("chunks", chunks)]
            }
            Op::BatchNormBackwardReduce { cols, chunks } => vec![("cols", cols), ("chunks", chunks)],
            Op::BatchNormRunning { cols, .. } => vec![("cols", cols)],
            _ => unreachable!("not a batch-norm op"),
        }
    }

    fn check(&self, op: &Op) -> Result<()> {
        if let Op::BatchNormPartial { rows, chunks, .. }
        | Op::BatchNormStats { rows, chunks, .. }
        | Op::BatchNormBackwardPartial { rows, chunks, .. } = *op
        {
            if chunks != bn_chunks(rows) {
                return Err(Error::shape(
                    self.entry(op),
                    format!("{rows} rows make {} chunks of {} rows (bn_chunks), not {chunks}", bn_chunks(rows), bn_chunk_rows(rows)),
                ));
            }
        }
        Ok(())
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let u = |x: usize| x as u32;
        let flat = |n: usize| Grid::Flat(n.div_ceil(256));
        let chunked = |rows: usize, cols: usize, chunks: usize| BatchNormParams {
            rows: u(rows),
            cols: u(cols),
            chunks: u(chunks),
            chunk_rows: u(bn_chunk_rows(rows)),
            ..Default::default()
        };
        // the *_partial kernels: one workgroup per chunk x 32 columns
        let (params, grid) = match *op {
            Op::BatchNormPartial { rows, cols, chunks } | Op::BatchNormBackwardPartial { rows, cols, chunks, .. } => {
                (chunked(rows, cols, chunks), Grid::Xy(cols.div_ceil(32) as u32, chunks as u32))
            }
            Op::BatchNormStats { rows, cols, chunks, momentum, eps } => {
                (BatchNormParams { momentum, eps, ..chunked(rows, cols, chunks) }, flat(cols))
            }
            Op::BatchNormBackwardReduce { cols, chunks } => {
                (BatchNormParams { cols: u(cols), chunks: u(chunks), ..Default::default() }, flat(cols))
            }
            Op::BatchNormRunning { cols, eps } => (BatchNormParams { cols: u(cols), eps, ..Default::default() }, flat(cols)),
            Op::BatchNormForward { rows, cols, .. } | Op::BatchNormBackward { rows, cols, .. } => {
                (BatchNormParams { rows: u(rows), cols: u(cols), ..Default::default() }, flat(rows * cols))
            }
            _ => unreachable!("not a batch-norm op"),
        };
        let spec = KernelSpec::new("batchnorm.wgsl", self.entry(op), params, grid);
        match *op {
            Op::BatchNormBackwardPartial { act, .. } | Op::BatchNormForward { act, .. } | Op::BatchNormBackward { act, .. } => {
                spec.constants(act_const(act))
            }
            _ => spec,
        }
    }
}
