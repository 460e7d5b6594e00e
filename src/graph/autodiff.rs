//! Gradient bookkeeping of the reverse pass: which tensor holds each gradient, whether this
//! step's kernels have written it yet (the first contribution writes, later ones add), and the
//! launches appended so far. Kept apart from the gradient rules in `lower`.

use super::{Graph, Launch, TensorId};
use crate::backend::{DType, Op};

#[derive(Clone, Copy, Debug)]
pub(super) struct Grad {
    pub(super) t: TensorId,
    /// Whether this step's kernels have written it yet (else the next write overwrites).
    pub(super) written: bool,
}

pub(super) struct Autodiff {
    pub(super) grad: Vec<Option<Grad>>,
    pub(super) launches: Vec<Launch>,
}

impl Autodiff {
    pub(super) fn grad_of(&self, t: TensorId) -> Option<TensorId> {
        self.grad[t].filter(|g| g.written).map(|g| g.t)
    }

    /// Where a kernel should write the gradient of `t`, and whether it must accumulate.
    pub(super) fn target(&mut self, g: &mut Graph, t: TensorId) -> (TensorId, bool) {
        self.grad.resize(g.tensors.len(), None);
        match self.grad[t] {
            Some(gr) => {
                self.grad[t] = Some(Grad { t: gr.t, written: true });
                (gr.t, gr.written)
            }
            None => {
                let shape = g.tensors[t].shape.clone();
                let name = format!("{}.grad", g.tensors[t].name);
                let gt = g.temp(name, &shape, DType::F32);
                self.grad.resize(g.tensors.len(), None);
                self.grad[t] = Some(Grad { t: gt, written: true });
                (gt, false)
            }
        }
    }

    /// Adds the tensor `c` (already computed) to the gradient of `t`: the first contribution
    /// to a non-parameter simply becomes its gradient (no copy); later ones are added.
    pub(super) fn contribute(&mut self, g: &mut Graph, t: TensorId, c: TensorId) {
        self.grad.resize(g.tensors.len(), None);
        let n = g.tensors[t].len();
        match self.grad[t] {
            None => self.grad[t] = Some(Grad { t: c, written: true }),
            Some(gr) if !gr.written => {
                // a parameter's gradient buffer, not yet written this step
                self.launches.push(Launch { op: Op::Scale { n, alpha: 1.0 }, args: vec![Some(c), Some(gr.t)] });
                self.grad[t] = Some(Grad { t: gr.t, written: true });
            }
            Some(gr) => self.launches.push(Launch { op: Op::Axpy { n, alpha: 1.0 }, args: vec![Some(c), Some(gr.t)] }),
        }
    }
}
