//! The LSTM recurrence (shaders/lstm.wgsl; CPU twin: cpu/lstm.rs). Sequences are row-major
//! [batch, steps, features]; gate order i, f, g, o. The input projection and all weight
//! gradients are plain GEMMs; only the recurrence itself needs these kernels.

use super::gemm::GemmTiles;
use super::{f, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};
use crate::error::{Error, Result};

/// Largest LSTM hidden size. The forward kernel keeps h_{t-1} (H) and the step's activated
/// gates (4H) of its batch row in workgroup memory, 5H floats; 768 units use 15 KiB, inside the
/// 16 KiB every WebGPU adapter guarantees (`max_compute_workgroup_storage_size`). The
/// backward kernel needs 4H floats.
pub const LSTM_MAX_HIDDEN: usize = 768;

params! {
    /// The parameter block of lstm.wgsl (`hidden` = the HIDDEN pipeline constant).
    pub struct LstmParams { batch: u32, steps: u32, hidden: u32 }
}

pub(super) struct Lstm;

fn shape(op: &Op) -> (usize, usize, usize) {
    let (Op::LstmForward { batch, steps, hidden } | Op::LstmBackward { batch, steps, hidden }) = *op else {
        unreachable!("not an LSTM op")
    };
    (batch, steps, hidden)
}

impl KernelFamily for Lstm {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::LstmForward { .. } => "lstm_forward",
            _ => "lstm_backward",
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        let (batch, steps, hidden) = shape(op);
        let (bt, bh) = (batch * steps, batch * hidden);
        match op {
            Op::LstmForward { .. } => vec![
                f("xproj", bt * 4 * hidden, Read),
                f("w_hh", hidden * 4 * hidden, Read),
                f("h0", bh, Read),
                f("c0", bh, Read),
                f("h_seq", bt * hidden, Write),
                f("c_seq", bt * hidden, Write),
                f("gates", bt * 4 * hidden, Write),
                f("hprev", bt * hidden, Write),
            ],
            _ => vec![
                f("gates", bt * 4 * hidden, Read),
                f("c_seq", bt * hidden, Read),
                f("c0", bh, Read),
                f("w_hh", hidden * 4 * hidden, Read),
                f("dh_seq", bt * hidden, Read),
                f("dgates", bt * 4 * hidden, Write),
                f("dh0", bh, Write),
                f("dc0", bh, Write),
            ],
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        let (batch, steps, hidden) = shape(op);
        vec![("batch", batch), ("steps", steps), ("hidden", hidden), ("batch * steps * 4 * hidden", batch * steps * 4 * hidden)]
    }

    fn check(&self, op: &Op) -> Result<()> {
        let (_, _, hidden) = shape(op);
        if hidden > LSTM_MAX_HIDDEN {
            return Err(Error::shape(
                self.entry(op),
                format!("hidden size {hidden} exceeds {LSTM_MAX_HIDDEN}: the kernel keeps one batch row's state and gates in 16 KiB of workgroup memory"),
            ));
        }
        Ok(())
    }

    // One workgroup per batch row; HIDDEN sizes the workgroup memory (a pipeline per size).
    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let (batch, steps, hidden) = shape(op);
        let params = LstmParams { batch: batch as u32, steps: steps as u32, hidden: hidden as u32 };
        KernelSpec::new("lstm.wgsl", self.entry(op), params, Grid::Flat(batch)).constants(vec![("HIDDEN", hidden as f64)])
    }
}
