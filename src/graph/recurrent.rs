//! Sequence layers as graph builders: the time-distributed dense layer and the LSTM.
//!
//! Why no reshape op: [`Graph::linear`] treats every `in` consecutive features of its input as a
//! row, so a dense layer over [batch, steps, in] is already the single GEMM over batch * steps
//! rows a time-distributed layer needs, and no buffer is ever aliased under two shapes (the
//! liveness planner in `exec` needs no special case). The LSTM is that GEMM for the input
//! projection plus one `LstmForward` dispatch for the recurrence; its backward (in
//! `backward_launches`) is one `LstmBackward` dispatch plus GEMMs and a column sum.

use super::{GOp, Graph, Init, TensorId};
use crate::backend::{Act, DType};

impl Graph {
    /// A dense layer applied to every step of x [batch, steps, in] (the same weights each step):
    /// `{name}.weight` [in, out] (Glorot) and `{name}.bias` (zeros); one GEMM over batch * steps
    /// rows giving [batch, steps, out].
    pub fn time_distributed_dense(&mut self, name: &str, x: TensorId, out: usize, act: Act) -> TensorId {
        let inp = *self.shape(x).last().expect("a tensor has at least one axis");
        let w = self.param(&format!("{name}.weight"), &[inp, out], Init::GlorotUniform { fan_in: inp, fan_out: out });
        let b = self.param(&format!("{name}.bias"), &[out], Init::Zeros);
        self.linear(name, x, w, b, act)
    }

    /// As [`Graph::time_distributed_dense`], with the result viewed as [batch * steps, out]:
    /// one row per (window, step), the shape per-step heads need to feed row-wise kernels
    /// (softmax cross-entropy with one label per step, label mixing) without a reshape op.
    pub fn per_step_dense(&mut self, name: &str, x: TensorId, out: usize, act: Act) -> TensorId {
        let inp = *self.shape(x).last().expect("a tensor has at least one axis");
        let rows = self.tensors[x].len() / inp;
        let w = self.param(&format!("{name}.weight"), &[inp, out], Init::GlorotUniform { fan_in: inp, fan_out: out });
        let b = self.param(&format!("{name}.bias"), &[out], Init::Zeros);
        let y = self.temp(name.into(), &[rows, out], DType::F32);
        self.push(GOp::Linear { act }, vec![x, w, b], vec![y]);
        y
    }

    /// An LSTM over x [batch, steps, in] from a zero state, returning h for every step
    /// [batch, steps, hidden]. Parameters: `{name}.w_ih` [in, 4H] (Glorot), `{name}.w_hh`
    /// [H, 4H] (orthogonal), `{name}.bias` [4H] (forget gate 1, others 0), gate order i, f, g, o.
    /// Lowers to one GEMM (x W_ih + b over batch * steps rows) and one `LstmForward` dispatch;
    /// h0 = c0 = 0 are temporaries filled each step (not trainable).
    pub fn lstm(&mut self, name: &str, x: TensorId, hidden: usize) -> TensorId {
        let xs = self.shape(x).to_vec();
        assert!(xs.len() == 3, "lstm '{name}': input must be [batch, steps, features], got {xs:?}");
        let (batch, inp, g4) = (xs[0], xs[2], 4 * hidden);
        let w_ih = self.param(&format!("{name}.w_ih"), &[inp, g4], Init::GlorotUniform { fan_in: inp, fan_out: g4 });
        let w_hh = self.param(&format!("{name}.w_hh"), &[hidden, g4], Init::Orthogonal);
        let b = self.param(&format!("{name}.bias"), &[g4], Init::LstmBias { hidden });
        let xproj = self.linear(&format!("{name}.xproj"), x, w_ih, b, Act::Identity);
        let h0 = self.fill(&format!("{name}.h0"), &[batch, hidden], 0.0);
        let c0 = self.fill(&format!("{name}.c0"), &[batch, hidden], 0.0);
        self.lstm_with_state(name, xproj, w_hh, h0, c0)
    }

    /// The recurrence alone, from a precomputed projection xproj [B,T,4H] and a given initial
    /// state (h0, c0 [B,H], which get gradients if they depend on parameters).
    pub fn lstm_with_state(&mut self, name: &str, xproj: TensorId, w_hh: TensorId, h0: TensorId, c0: TensorId) -> TensorId {
        let xs = self.shape(xproj).to_vec();
        let hidden = self.shape(w_hh)[0];
        assert!(xs.len() == 3 && xs[2] == 4 * hidden, "lstm '{name}': xproj must be [batch, steps, 4 * {hidden}], got {xs:?}");
        let (b, t) = (xs[0], xs[1]);
        let h_seq = self.temp(name.into(), &[b, t, hidden], DType::F32);
        let c_seq = self.temp(format!("{name}.c_seq"), &[b, t, hidden], DType::F32);
        let gates = self.temp(format!("{name}.gates"), &[b, t, 4 * hidden], DType::F32);
        let hprev = self.temp(format!("{name}.hprev"), &[b, t, hidden], DType::F32);
        self.push(GOp::Lstm, vec![xproj, w_hh, h0, c0], vec![h_seq, c_seq, gates, hprev]);
        h_seq
    }

    /// A tensor filled with a constant each step.
    pub fn fill(&mut self, name: &str, shape: &[usize], value: f32) -> TensorId {
        let y = self.temp(name.into(), shape, DType::F32);
        self.push(GOp::Fill { value }, vec![], vec![y]);
        y
    }
}
