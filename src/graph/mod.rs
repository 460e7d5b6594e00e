//! The graph models are written in: symbolic tensors with static shapes, graph-level ops that
//! each lower to kernels ([`crate::backend::Op`]) and state their backward in kernels, and a
//! reverse-mode autodiff that appends the backward pass to the launch list.
//!
//! Losses are fused kernels that write their gradient in the forward pass (scaled by the
//! loss's weight), so the backward pass starts from those gradients; the total objective is
//! the sum of all loss nodes. Gradients of parameters go to a flat gradient buffer (one view
//! per parameter) that one optimizer dispatch consumes. See `exec` for buffer planning.
//!
//! Sequences are row-major [batch, steps, features]. A dense layer ([`Graph::linear`]) acts on
//! the LAST axis of its input and treats every leading index as a row, so a time-distributed
//! dense layer is the same single GEMM over batch * steps rows, with no reshape op and no
//! aliased buffers (which the liveness planner would have to know about). [`Graph::dense`] keeps
//! Keras' flatten semantics (its weight takes all trailing features of a row);
//! [`Graph::time_distributed_dense`] and [`Graph::lstm`] use the last axis only. Per-row losses
//! on a [batch, steps, features] tensor sum over steps and features (one value per sequence).
//! [`Graph::softmax`] and [`Graph::concat`] also act on the last axis (for 2-D tensors that is
//! the row-wise behaviour), so per-step class probabilities and the per-step decoder input
//! concat(z_t, pi_t) need no reshape either.

mod autodiff;
mod cnn;
pub mod exec;
mod mixture;
mod recurrent;

pub use cnn::{Hwc, BN_EPS, BN_MOMENTUM};

use crate::backend::{Act, Conv2d, DType, Gemm, Op};
use autodiff::{Autodiff, Grad};

pub type TensorId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Written by the host before each step (data indices, labels, RNG counter, dataset).
    Input,
    /// A trainable parameter (a view into the flat parameter buffer).
    Param,
    /// The gradient of a parameter (a view into the flat gradient buffer).
    ParamGrad,
    /// Everything else: planned by liveness, reused within a step.
    Temp,
}

#[derive(Clone, Debug)]
pub struct TensorDesc {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub role: Role,
}

impl TensorDesc {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a parameter is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// Glorot/Xavier uniform (Keras' default for dense kernels): U(-l, l),
    /// l = sqrt(6 / (fan_in + fan_out)).
    GlorotUniform {
        fan_in: usize,
        fan_out: usize,
    },
    /// A random matrix with orthonormal rows (or columns, whichever are fewer): Keras' default
    /// for recurrent kernels, so repeated multiplication by W_hh neither explodes nor vanishes
    /// at the start of training.
    Orthogonal,
    /// An LSTM bias [4H] in gate order i, f, g, o: zeros except the forget gate, which starts at
    /// 1 (Keras' `unit_forget_bias`, Jozefowicz et al. 2015): the cell remembers by default, so
    /// gradients reach early steps from the first update on.
    LstmBias {
        hidden: usize,
    },
}

#[derive(Clone, Debug)]
pub struct ParamDesc {
    pub tensor: TensorId,
    pub init: Init,
}

/// Graph-level ops. Inputs and outputs are tensor ids; the comments give their order.
#[derive(Clone, Debug, PartialEq)]
pub enum GOp {
    /// [x (rows x in), w (in x out), b (out)] -> [y = act(x w + b)]; without b when the
    /// layer has no bias
    Linear {
        act: Act,
    },
    /// [a, b] -> [c = [a, b]] along the last axis
    Concat,
    /// [x] -> [softmax(x)] over the last axis
    Softmax,
    /// [counter, mu, logvar] -> [z, eps]
    Reparam {
        stream: u32,
    },
    /// [pi, labels] -> [one-hot where labeled, else pi]
    LabelMix,
    /// [data (u8 packed), idx] -> [x / 255]
    GatherU8 {
        src_rows: usize,
    },
    /// [data (f32), idx] -> [x]: rows of a resident f32 dataset, e.g. sensor windows
    GatherF32 {
        src_rows: usize,
    },
    GatherF16 {
        src_rows: usize,
    },
    /// [x] -> [y = limit * tanh(x / limit), u = x / limit, t = tanh(u)]: a smooth bound on a
    /// value that enters exp(), e.g. a log-variance (identity near 0, |y| < limit).
    SoftClamp {
        limit: f32,
    },
    /// [logits, target] -> [loss per row, dlogits]
    Bce {
        scale: f32,
    },
    /// [mu, logvar] -> [loss per row, dmu, dlogvar]
    Kl {
        scale: f32,
    },
    /// [logits, labels] -> [loss per row, dlogits]
    Ce {
        scale: f32,
    },
    /// [mean, var_raw, target] -> [loss per row, dmean, dvar_raw]
    GaussianNll {
        scale: f32,
    },
    // The convolutional family (see `cnn`).
    /// [x, w, b] -> [y]
    Conv2d {
        conv: Conv2d,
    },
    /// [x, w, b] -> [y]; `conv` is the convolution from y back to x (this op's adjoint)
    ConvTranspose2d {
        conv: Conv2d,
    },
    /// [x, gamma, beta, running_mean, running_var] -> [y, stats]
    BatchNorm {
        channels: usize,
        act: Act,
        momentum: f32,
        eps: f32,
        training: bool,
    },
    /// [counter, x] -> [y, mask]
    Dropout {
        rate: f32,
        stream: u32,
    },
    /// [] -> [y filled with `value`] (e.g. an LSTM's zero initial state; no gradient)
    Fill {
        value: f32,
    },
    /// [xproj [B,T,4H] = x W_ih + b, w_hh [H,4H], h0 [B,H], c0 [B,H]] ->
    /// [h_seq [B,T,H], c_seq [B,T,H], gates [B,T,4H], hprev [B,T,H]]
    Lstm,
    // Sums over a discrete latent (see `mixture`).
    /// [x [R, C]] -> [y [R * copies, C]]
    RepeatRows {
        copies: usize,
    },
    /// [loss per (row, class) [R * K], weights [R, K]] -> [loss per row, dweights]
    WeightedSum {
        scale: f32,
    },
    /// [logits, log_prior [K], labels] -> [loss per row, dlogits]
    CategoricalKl {
        scale: f32,
    },
    /// [mu_q, logvar_q, mu_p, logvar_p] -> [loss per row, dmu_q, dlogvar_q, dlogvar_p]
    KlGaussians {
        scale: f32,
    },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub op: GOp,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

/// A loss term: its per-row loss tensor and the factor it was scaled by (to report the
/// unscaled value).
#[derive(Clone, Debug)]
pub struct LossTerm {
    pub name: String,
    pub per_row: TensorId,
    pub scale: f32,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub tensors: Vec<TensorDesc>,
    pub nodes: Vec<Node>,
    pub params: Vec<ParamDesc>,
    pub losses: Vec<LossTerm>,
    /// Values of constant input tensors (uploaded at compile time, see [`Graph::constant`]).
    pub constants: Vec<(TensorId, Vec<f32>)>,
}

/// A kernel call over tensors: `None` binds the backend's placeholder.
#[derive(Clone, Debug)]
pub struct Launch {
    pub op: Op,
    pub args: Vec<Option<TensorId>>,
}

/// (rows, last axis): the view of ops that act on the last axis (softmax, concat).
pub(crate) fn last_axis(shape: &[usize]) -> (usize, usize) {
    let cols = shape.last().copied().unwrap_or(1).max(1);
    (shape.iter().product::<usize>() / cols, cols)
}

pub(crate) fn rows_cols(shape: &[usize]) -> (usize, usize) {
    match shape {
        [r, c] => (*r, *c),
        [n] => (1, *n),
        _ => (shape[0], shape[1..].iter().product()),
    }
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn tensor(&mut self, name: impl Into<String>, shape: &[usize], dtype: DType, role: Role) -> TensorId {
        self.tensors.push(TensorDesc { name: name.into(), shape: shape.to_vec(), dtype, role });
        self.tensors.len() - 1
    }

    pub fn input(&mut self, name: &str, shape: &[usize], dtype: DType) -> TensorId {
        self.tensor(name, shape, dtype, Role::Input)
    }

    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> TensorId {
        let t = self.tensor(name, shape, DType::F32, Role::Param);
        self.params.push(ParamDesc { tensor: t, init });
        t
    }

    pub fn shape(&self, t: TensorId) -> &[usize] {
        &self.tensors[t].shape
    }

    pub fn find(&self, name: &str) -> Option<TensorId> {
        self.tensors.iter().position(|t| t.name == name)
    }

    fn temp(&mut self, name: String, shape: &[usize], dtype: DType) -> TensorId {
        self.tensor(name, shape, dtype, Role::Temp)
    }

    fn push(&mut self, op: GOp, inputs: Vec<TensorId>, outputs: Vec<TensorId>) {
        self.nodes.push(Node { op, inputs, outputs });
    }

    /// y = act(x w + b), w: in x out, over every run of `in` consecutive features of x as a
    /// row (see the module comment). A 3-D or higher x whose last axis is `in` gives
    /// [leading..., out]; otherwise y is [rows, out].
    pub fn linear(&mut self, name: &str, x: TensorId, w: TensorId, b: TensorId, act: Act) -> TensorId {
        let (rows, inp) = self.linear_rows(x, w);
        let out = self.shape(w)[1];
        let xs = self.shape(x);
        let shape = if xs.len() >= 3 && xs[xs.len() - 1] == inp { [&xs[..xs.len() - 1], &[out]].concat() } else { vec![rows, out] };
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::Linear { act }, vec![x, w, b], vec![y]);
        y
    }

    /// A dense layer without a bias (`{name}.weight` only), e.g. before a batch norm, whose
    /// shift would cancel it.
    pub fn dense_no_bias(&mut self, name: &str, x: TensorId, out: usize) -> TensorId {
        let (rows, inp) = rows_cols(self.shape(x));
        let w = self.param(&format!("{name}.weight"), &[inp, out], Init::GlorotUniform { fan_in: inp, fan_out: out });
        let y = self.temp(name.into(), &[rows, out], DType::F32);
        self.push(GOp::Linear { act: Act::Identity }, vec![x, w], vec![y]);
        y
    }

    /// (rows, in) of a `Linear` on x with weight w: rows = len(x) / in.
    fn linear_rows(&self, x: TensorId, w: TensorId) -> (usize, usize) {
        let (n, inp) = (self.tensors[x].len(), self.tensors[w].shape[0]);
        assert!(
            inp > 0 && n % inp == 0,
            "linear '{}': input of shape {:?} is not a whole number of rows of {inp} features",
            self.tensors[x].name,
            self.tensors[x].shape
        );
        (n / inp, inp)
    }

    /// A dense layer with fresh parameters `{name}.weight` (Glorot) and `{name}.bias` (zeros).
    pub fn dense(&mut self, name: &str, x: TensorId, out: usize, act: Act) -> TensorId {
        let (_, inp) = rows_cols(self.shape(x));
        let w = self.param(&format!("{name}.weight"), &[inp, out], Init::GlorotUniform { fan_in: inp, fan_out: out });
        let b = self.param(&format!("{name}.bias"), &[out], Init::Zeros);
        self.linear(name, x, w, b, act)
    }

    /// [a, b] along the last axis; both must have the same number of rows (product of the
    /// leading axes), the result takes a's leading axes.
    pub fn concat(&mut self, name: &str, a: TensorId, b: TensorId) -> TensorId {
        let (rows, ca) = last_axis(self.shape(a));
        let (rows_b, cb) = last_axis(self.shape(b));
        assert_eq!(rows, rows_b, "concat '{name}': {:?} and {:?} have different numbers of rows", self.shape(a), self.shape(b));
        let sa = self.shape(a);
        let shape = [&sa[..sa.len() - 1], &[ca + cb]].concat();
        let c = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::Concat, vec![a, b], vec![c]);
        c
    }

    pub fn softmax(&mut self, name: &str, x: TensorId) -> TensorId {
        let shape = self.shape(x).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::Softmax, vec![x], vec![y]);
        y
    }

    /// z = mu + exp(logvar / 2) eps with eps from the shared RNG (stream distinguishes draws).
    pub fn reparam(&mut self, name: &str, counter: TensorId, mu: TensorId, logvar: TensorId, stream: u32) -> TensorId {
        let shape = self.shape(mu).to_vec();
        let z = self.temp(name.into(), &shape, DType::F32);
        let eps = self.temp(format!("{name}.eps"), &shape, DType::F32);
        self.push(GOp::Reparam { stream }, vec![counter, mu, logvar], vec![z, eps]);
        z
    }

    pub fn label_mix(&mut self, name: &str, pi: TensorId, labels: TensorId) -> TensorId {
        let shape = self.shape(pi).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        self.push(GOp::LabelMix, vec![pi, labels], vec![y]);
        y
    }

    /// limit * tanh(x / limit), elementwise.
    pub fn soft_clamp(&mut self, name: &str, x: TensorId, limit: f32) -> TensorId {
        let shape = self.shape(x).to_vec();
        let y = self.temp(name.into(), &shape, DType::F32);
        let u = self.temp(format!("{name}.scaled"), &shape, DType::F32);
        let t = self.temp(format!("{name}.tanh"), &shape, DType::F32);
        self.push(GOp::SoftClamp { limit }, vec![x], vec![y, u, t]);
        y
    }

    /// Rows of a resident f32 dataset (`src_rows` rows of `row_shape` values) picked by
    /// `idx`: [idx.len(), row_shape...], e.g. [batch, steps, channels] for sensor windows.
    pub fn gather_f32(&mut self, name: &str, data: TensorId, idx: TensorId, src_rows: usize, row_shape: &[usize]) -> TensorId {
        let rows = self.shape(idx)[0];
        let x = self.temp(name.into(), &[&[rows], row_shape].concat(), DType::F32);
        self.push(GOp::GatherF32 { src_rows }, vec![data, idx], vec![x]);
        x
    }

    /// As [`Graph::gather_f32`] from a resident f16 dataset (two values per u32 word).
    pub fn gather_f16(&mut self, name: &str, data: TensorId, idx: TensorId, src_rows: usize, row_shape: &[usize]) -> TensorId {
        let rows = self.shape(idx)[0];
        let x = self.temp(name.into(), &[&[rows], row_shape].concat(), DType::F32);
        self.push(GOp::GatherF16 { src_rows }, vec![data, idx], vec![x]);
        x
    }

    /// Rows of a resident u8 dataset (`src_rows` x `cols`) picked by `idx`, scaled to [0, 1].
    pub fn gather_u8(&mut self, name: &str, data: TensorId, idx: TensorId, src_rows: usize, cols: usize) -> TensorId {
        let rows = self.shape(idx)[0];
        let x = self.temp(name.into(), &[rows, cols], DType::F32);
        self.push(GOp::GatherU8 { src_rows }, vec![data, idx], vec![x]);
        x
    }

    fn loss(&mut self, name: &str, op: GOp, inputs: Vec<TensorId>, n_grads: usize, scale: f32) -> TensorId {
        let rows = rows_cols(self.shape(inputs[0])).0;
        let per_row = self.temp(format!("{name}.per_row"), &[rows], DType::F32);
        let mut outputs = vec![per_row];
        for i in 0..n_grads {
            let shape = self.shape(inputs[i]).to_vec();
            let g = self.temp(format!("{name}.grad{i}"), &shape, DType::F32);
            outputs.push(g);
        }
        self.push(op, inputs, outputs);
        self.losses.push(LossTerm { name: name.into(), per_row, scale });
        per_row
    }

    /// Bernoulli NLL of `target` under sigmoid(`logits`), summed over features, times `scale`.
    pub fn bce_loss(&mut self, name: &str, logits: TensorId, target: TensorId, scale: f32) -> TensorId {
        self.loss(name, GOp::Bce { scale }, vec![logits, target], 1, scale)
    }
    pub fn kl_loss(&mut self, name: &str, mu: TensorId, logvar: TensorId, scale: f32) -> TensorId {
        self.loss(name, GOp::Kl { scale }, vec![mu, logvar], 2, scale)
    }
    /// Softmax cross-entropy over labeled rows, divided by their count, times `scale`.
    pub fn ce_loss(&mut self, name: &str, logits: TensorId, labels: TensorId, scale: f32) -> TensorId {
        self.loss(name, GOp::Ce { scale }, vec![logits, labels], 1, scale)
    }
    pub fn gaussian_nll_loss(&mut self, name: &str, mean: TensorId, var_raw: TensorId, target: TensorId, scale: f32) -> TensorId {
        self.loss(name, GOp::GaussianNll { scale }, vec![mean, var_raw, target], 2, scale)
    }

    /// Kernels of the forward pass, in order.
    pub fn forward_launches(&self) -> Vec<Launch> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let (i, o) = (&n.inputs, &n.outputs);
            let s = |t: TensorId| rows_cols(&self.tensors[t].shape);
            let op = match n.op {
                GOp::Linear { act } => {
                    let (rows, inp) = self.linear_rows(i[0], i[1]);
                    let outc = self.tensors[i[1]].shape[1];
                    if i.len() == 2 {
                        out.push(Launch {
                            op: Op::Gemm(Gemm::new(rows, outc, inp).act(act)),
                            args: vec![Some(i[0]), Some(i[1]), None, Some(o[0])],
                        });
                        continue;
                    }
                    Op::Gemm(Gemm::new(rows, outc, inp).bias(act))
                }
                GOp::Fill { value } => Op::Fill { n: self.tensors[o[0]].len(), value },
                GOp::Lstm => {
                    let sh = &self.tensors[o[0]].shape;
                    Op::LstmForward { batch: sh[0], steps: sh[1], hidden: sh[2] }
                }
                GOp::Concat => {
                    let (la, lb) = (last_axis(&self.tensors[i[0]].shape), last_axis(&self.tensors[i[1]].shape));
                    Op::ConcatCols { rows: la.0, cols_a: la.1, cols_b: lb.1 }
                }
                GOp::Softmax => {
                    let (rows, cols) = last_axis(&self.tensors[i[0]].shape);
                    Op::SoftmaxRows { rows, cols }
                }
                GOp::Reparam { stream } => Op::Reparam { n: self.tensors[i[1]].len(), stream },
                GOp::LabelMix => Op::LabelMix { rows: s(i[0]).0, classes: s(i[0]).1 },
                GOp::GatherU8 { src_rows } => Op::GatherRowsU8 { rows: s(o[0]).0, cols: s(o[0]).1, src_rows },
                GOp::GatherF32 { src_rows } => Op::GatherRowsF32 { rows: s(o[0]).0, cols: s(o[0]).1, src_rows },
                GOp::GatherF16 { src_rows } => Op::GatherRowsF16 { rows: s(o[0]).0, cols: s(o[0]).1, src_rows },
                GOp::Bce { scale } => Op::BceLogits { rows: s(i[0]).0, cols: s(i[0]).1, scale },
                GOp::Kl { scale } => Op::Kl { rows: s(i[0]).0, cols: s(i[0]).1, scale },
                GOp::Ce { scale } => Op::SoftmaxCe { rows: s(i[0]).0, classes: s(i[0]).1, scale },
                GOp::GaussianNll { scale } => Op::GaussianNll { rows: s(i[0]).0, cols: s(i[0]).1, scale },
                GOp::SoftClamp { limit } => {
                    let n = self.tensors[i[0]].len();
                    out.push(Launch { op: Op::Scale { n, alpha: 1.0 / limit }, args: vec![Some(i[0]), Some(o[1])] });
                    out.push(Launch { op: Op::ActForward { n, act: Act::Tanh }, args: vec![Some(o[1]), Some(o[2])] });
                    out.push(Launch { op: Op::Scale { n, alpha: limit }, args: vec![Some(o[2]), Some(o[0])] });
                    continue;
                }
                GOp::Conv2d { .. } | GOp::ConvTranspose2d { .. } | GOp::BatchNorm { .. } | GOp::Dropout { .. } => {
                    cnn::forward(self, n, &mut out);
                    continue;
                }
                GOp::RepeatRows { .. } | GOp::WeightedSum { .. } | GOp::CategoricalKl { .. } | GOp::KlGaussians { .. } => {
                    mixture::forward_op(self, n)
                }
            };
            out.push(Launch { op, args: i.iter().chain(o.iter()).map(|&t| Some(t)).collect() });
        }
        out
    }

    /// Which tensors depend on a parameter (and so need a gradient).
    fn needs_grad(&self) -> Vec<bool> {
        let mut need: Vec<bool> = self.tensors.iter().map(|t| t.role == Role::Param).collect();
        for n in &self.nodes {
            let differentiable_inputs: &[usize] = match n.op {
                GOp::Linear { .. } => &[0, 1, 2],
                GOp::Concat => &[0, 1],
                GOp::Softmax => &[0],
                GOp::Reparam { .. } => &[1, 2],
                GOp::LabelMix => &[0],
                GOp::SoftClamp { .. } => &[0],
                ref op @ (GOp::Conv2d { .. } | GOp::ConvTranspose2d { .. } | GOp::BatchNorm { .. } | GOp::Dropout { .. }) => {
                    cnn::differentiable(op)
                }
                GOp::Lstm | GOp::KlGaussians { .. } => &[0, 1, 2, 3],
                // a loss's per-row output depends on its inputs (weighted sums consume it)
                GOp::RepeatRows { .. } | GOp::Bce { .. } | GOp::Ce { .. } | GOp::CategoricalKl { .. } => &[0],
                GOp::Kl { .. } | GOp::GaussianNll { .. } | GOp::WeightedSum { .. } => &[0, 1],
                _ => &[],
            };
            if differentiable_inputs.iter().any(|&k| n.inputs.get(k).is_some_and(|&t| need[t])) {
                for &o in &n.outputs {
                    need[o] = true;
                }
            }
        }
        need
    }

    /// Appends the backward pass: returns its kernels and, for each parameter (in
    /// `self.params` order), the tensor holding its gradient (role `ParamGrad`).
    pub fn backward_launches(&mut self) -> (Vec<Launch>, Vec<TensorId>) {
        let need = self.needs_grad();
        let mut ad = Autodiff { grad: vec![None; self.tensors.len()], launches: Vec::new() };
        // Parameter gradients: dedicated tensors, written (not accumulated) by their first
        // contribution in each step.
        let mut param_grads = Vec::new();
        for p in self.params.clone() {
            let shape = self.tensors[p.tensor].shape.clone();
            let name = format!("{}.grad", self.tensors[p.tensor].name);
            let g = self.tensor(name, &shape, DType::F32, Role::ParamGrad);
            ad.grad.resize(self.tensors.len(), None);
            ad.grad[p.tensor] = Some(Grad { t: g, written: false });
            param_grads.push(g);
        }
        ad.grad.resize(self.tensors.len(), None);

        for n in self.nodes.clone().iter().rev() {
            let (i, o) = (&n.inputs, &n.outputs);
            match n.op {
                // Losses seed the gradients they computed in the forward pass (weighted by a
                // per-row gradient when they feed a weighted sum, see `mixture`).
                GOp::Bce { .. }
                | GOp::Ce { .. }
                | GOp::Kl { .. }
                | GOp::GaussianNll { .. }
                | GOp::CategoricalKl { .. }
                | GOp::KlGaussians { .. } => mixture::loss_backward(self, &mut ad, &need, n),
                GOp::RepeatRows { .. } | GOp::WeightedSum { .. } => mixture::backward(self, &mut ad, &need, n),
                GOp::Linear { act } => {
                    let Some(dy) = ad.grad_of(o[0]) else { continue };
                    let (rows, inp) = self.linear_rows(i[0], i[1]);
                    let out = self.tensors[i[1]].shape[1];
                    // dz = dy * act'(y)
                    let dz = if act == Act::Identity {
                        dy
                    } else {
                        let dz = self.temp(format!("{}.dz", self.tensors[o[0]].name), &[rows, out], DType::F32);
                        ad.launches.push(Launch { op: Op::ActBackward { n: rows * out, act }, args: vec![Some(o[0]), Some(dy), Some(dz)] });
                        dz
                    };
                    // dW = x^T dz, db = colsum(dz): written or accumulated
                    if need[i[1]] {
                        let (gw, acc) = ad.target(self, i[1]);
                        let beta = if acc { 1.0 } else { 0.0 };
                        ad.launches.push(Launch {
                            op: Op::Gemm(Gemm::new(inp, out, rows).trans(true, false).scaled(1.0, beta)),
                            args: vec![Some(i[0]), Some(dz), None, Some(gw)],
                        });
                    }
                    if i.len() > 2 && need[i[2]] {
                        let (gb, acc) = ad.target(self, i[2]);
                        ad.launches.push(Launch { op: Op::ColSum { rows, cols: out, accumulate: acc }, args: vec![Some(dz), Some(gb)] });
                    }
                    // dx = dz W^T
                    if need[i[0]] {
                        let (gx, acc) = ad.target(self, i[0]);
                        let beta = if acc { 1.0 } else { 0.0 };
                        ad.launches.push(Launch {
                            op: Op::Gemm(Gemm::new(rows, inp, out).trans(false, true).scaled(1.0, beta)),
                            args: vec![Some(dz), Some(i[1]), None, Some(gx)],
                        });
                    }
                }
                GOp::Concat => {
                    let Some(dc) = ad.grad_of(o[0]) else { continue };
                    let (rows, ca) = last_axis(&self.tensors[i[0]].shape);
                    let cb = last_axis(&self.tensors[i[1]].shape).1;
                    let (sa, sb) = (self.tensors[i[0]].shape.clone(), self.tensors[i[1]].shape.clone());
                    let da = self.temp(format!("{}.grad_a", self.tensors[o[0]].name), &sa, DType::F32);
                    let db = self.temp(format!("{}.grad_b", self.tensors[o[0]].name), &sb, DType::F32);
                    ad.grad.resize(self.tensors.len(), None);
                    ad.launches
                        .push(Launch { op: Op::SplitCols { rows, cols_a: ca, cols_b: cb }, args: vec![Some(dc), Some(da), Some(db)] });
                    if need[i[0]] {
                        ad.contribute(self, i[0], da);
                    }
                    if need[i[1]] {
                        ad.contribute(self, i[1], db);
                    }
                }
                GOp::Softmax => {
                    let Some(dy) = ad.grad_of(o[0]) else { continue };
                    if !need[i[0]] {
                        continue;
                    }
                    let (rows, cols) = last_axis(&self.tensors[i[0]].shape);
                    let shape = self.tensors[i[0]].shape.clone();
                    let dx = self.temp(format!("{}.grad_in", self.tensors[o[0]].name), &shape, DType::F32);
                    ad.grad.resize(self.tensors.len(), None);
                    ad.launches.push(Launch { op: Op::SoftmaxBackward { rows, cols }, args: vec![Some(o[0]), Some(dy), Some(dx)] });
                    ad.contribute(self, i[0], dx);
                }
                GOp::Reparam { .. } => {
                    let Some(dz) = ad.grad_of(o[0]) else { continue };
                    let shape = self.tensors[i[1]].shape.clone();
                    let n = self.tensors[i[1]].len();
                    let dmu = self.temp(format!("{}.grad_mu", self.tensors[o[0]].name), &shape, DType::F32);
                    let dlv = self.temp(format!("{}.grad_logvar", self.tensors[o[0]].name), &shape, DType::F32);
                    ad.grad.resize(self.tensors.len(), None);
                    ad.launches
                        .push(Launch { op: Op::ReparamBackward { n }, args: vec![Some(dz), Some(i[2]), Some(o[1]), Some(dmu), Some(dlv)] });
                    if need[i[1]] {
                        ad.contribute(self, i[1], dmu);
                    }
                    if need[i[2]] {
                        ad.contribute(self, i[2], dlv);
                    }
                }
                GOp::LabelMix => {
                    let Some(dy) = ad.grad_of(o[0]) else { continue };
                    if !need[i[0]] {
                        continue;
                    }
                    let (rows, classes) = rows_cols(&self.tensors[i[0]].shape);
                    let dpi = self.temp(format!("{}.grad_pi", self.tensors[o[0]].name), &[rows, classes], DType::F32);
                    ad.grad.resize(self.tensors.len(), None);
                    ad.launches.push(Launch { op: Op::LabelMixBackward { rows, classes }, args: vec![Some(dy), Some(i[1]), Some(dpi)] });
                    ad.contribute(self, i[0], dpi);
                }
                GOp::SoftClamp { .. } => {
                    // d/dx [L tanh(x / L)] = 1 - tanh^2(x / L): one act_backward on t
                    let Some(dy) = ad.grad_of(o[0]) else { continue };
                    if !need[i[0]] {
                        continue;
                    }
                    let shape = self.tensors[i[0]].shape.clone();
                    let n = self.tensors[i[0]].len();
                    let dx = self.temp(format!("{}.grad_in", self.tensors[o[0]].name), &shape, DType::F32);
                    ad.grad.resize(self.tensors.len(), None);
                    ad.launches.push(Launch { op: Op::ActBackward { n, act: Act::Tanh }, args: vec![Some(o[2]), Some(dy), Some(dx)] });
                    ad.contribute(self, i[0], dx);
                }
                GOp::Conv2d { .. } | GOp::ConvTranspose2d { .. } | GOp::BatchNorm { .. } | GOp::Dropout { .. } => {
                    cnn::backward(self, &mut ad, &need, n)
                }
                GOp::Lstm => {
                    // BPTT gives the pre-activation gate gradients (= d xproj, which the Linear
                    // before this node turns into dW_ih, db and dx); dW_hh = hprev^T dgates.
                    let Some(dh_seq) = ad.grad_of(o[0]) else { continue };
                    let sh = self.tensors[o[0]].shape.clone();
                    let (b, t, hid) = (sh[0], sh[1], sh[2]);
                    let name = self.tensors[o[0]].name.clone();
                    let dgates = self.temp(format!("{name}.dgates"), &[b, t, 4 * hid], DType::F32);
                    let dh0 = self.temp(format!("{name}.grad_h0"), &[b, hid], DType::F32);
                    let dc0 = self.temp(format!("{name}.grad_c0"), &[b, hid], DType::F32);
                    ad.grad.resize(self.tensors.len(), None);
                    ad.launches.push(Launch {
                        op: Op::LstmBackward { batch: b, steps: t, hidden: hid },
                        args: vec![Some(o[2]), Some(o[1]), Some(i[3]), Some(i[1]), Some(dh_seq), Some(dgates), Some(dh0), Some(dc0)],
                    });
                    if need[i[1]] {
                        let (gw, acc) = ad.target(self, i[1]);
                        let beta = if acc { 1.0 } else { 0.0 };
                        ad.launches.push(Launch {
                            op: Op::Gemm(Gemm::new(hid, 4 * hid, b * t).trans(true, false).scaled(1.0, beta)),
                            args: vec![Some(o[3]), Some(dgates), None, Some(gw)],
                        });
                    }
                    for (k, d) in [(0, dgates), (2, dh0), (3, dc0)] {
                        if need[i[k]] {
                            ad.contribute(self, i[k], d);
                        }
                    }
                }
                GOp::GatherU8 { .. } | GOp::GatherF32 { .. } | GOp::GatherF16 { .. } | GOp::Fill { .. } => {}
            }
        }
        (ad.launches, param_grads)
    }
}
