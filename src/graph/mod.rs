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
mod builder;
mod cnn;
pub mod exec;
mod lower;
mod mixture;
mod recurrent;

pub use cnn::{Hwc, BN_EPS, BN_MOMENTUM};
pub use mixture::CLASS_WEIGHT;

use crate::backend::{Act, Conv2d, DType, Op};

pub type TensorId = usize;

/// What a tensor is to the compiler: which buffer it gets. Every special binding is a variant
/// (never a reserved name), so the compiler parses no strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Written by the host before each step (data indices, labels, RNG counter, dataset), or a
    /// constant uploaded at compile time.
    Input,
    /// A trainable parameter (a view into the flat parameter buffer).
    Param,
    /// The gradient of the parameter tensor `param` (a view into the flat gradient buffer).
    ParamGrad { param: TensorId },
    /// A whole buffer of the parameter store, bound by the optimizer update.
    Store(StoreBinding),
    /// The running sum of loss term `k` (an aligned one-value view into the program's metrics
    /// buffer, one slot per [`LossTerm`] in graph order).
    Metric(usize),
    /// Everything else: planned by liveness, reused within a step.
    Temp,
}

/// The parameter store's flat buffers an optimizer update reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreBinding {
    /// The optimizer's hyper-parameters (see `exec::Optimizer::hyper`).
    Hyper,
    Params,
    Grads,
    State1,
    State2,
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
    /// [p] -> [one_hot(argmax p)] over the last axis; gradient passed to p unchanged (the
    /// straight-through estimator, Bengio et al. 2013)
    StraightThrough,
    /// [counter, logits] -> [y = (logits + g) / tau], g standard Gumbel noise per element when
    /// `noise` (training), none otherwise (inference: the tempered logits); softmax(y) is the
    /// Gumbel-softmax relaxation of a one-hot sample (Jang et al. 2017). dlogits = dy / tau.
    Gumbel {
        tau: f32,
        noise: bool,
        stream: u32,
    },
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
        /// Label smoothing E: the target is (1 - E) one-hot + E / K.
        smoothing: f32,
    },
    /// [mean, var_raw, target] -> [loss per row, dmean, dvar_raw]; variance softplus(raw) + floor
    GaussianNll {
        scale: f32,
        floor: f32,
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
    /// [counter, x] -> [y]: a random translation and amplitude scaling per sample laid out
    /// `shape` = [height, width, channels] (see `Op::ShiftScale`); no gradient.
    ShiftScale {
        shape: [usize; 3],
        max_shift: u32,
        scale: f32,
        stream: u32,
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
    /// [x [R, in], one-hots [R * K, K], w [in, out], w_class [K, out], b [out]] ->
    /// [y [R * K, out] = act(x_r w + w_class[k] + b) at row r * K + k, x w [R, out]]: a dense
    /// layer on concat(repeat_rows(x, K), one-hots) with its weight split at row `in`, the
    /// product with x computed once per row instead of once per (row, class) pair.
    ClassLinear {
        act: Act,
    },
    /// [loss per (row, class) [R * K], weights [R, K]] -> [loss per row, dweights]
    WeightedSum {
        scale: f32,
    },
    /// [logits, log_prior [K], labels] -> [loss per row, dlogits]
    CategoricalKl {
        scale: f32,
    },
    /// [logits, target logits] -> [loss per row, dlogits] (the target gets no gradient)
    ConsistencyKl {
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

/// What a loss term of the objective measures. Trainers report terms by kind and evaluators find
/// a term's per-row values by kind ([`Graph::loss`]); a graph holds each kind at most once, so a
/// kind names one term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// The reconstruction negative log-likelihood (Bernoulli or Gaussian; for M2 / GM-DGM the
    /// sum over classes weighted by q(y|x)).
    Rec,
    /// KL(q(z|x) || p(z)) (for M2 / GM-DGM weighted by q(y|x) as `Rec`).
    Kl,
    /// KL(q(y|x) || p(y)) on unlabeled rows, -log p(y) on labeled ones (M2 / GM-DGM).
    KlY,
    /// The softmax cross-entropy of classification head `head` (0 for single-head models).
    Ce { head: usize },
    /// Entropy minimisation: the entropy of pi on unlabeled rows (see `ModelSpec::entropy_weight`;
    /// built from the categorical KL to a uniform prior, with a negative weight).
    Entropy,
    /// Consistency of pi under a perturbation of the input: KL(pi(x) || pi(x + noise)), the
    /// clean side held fixed (see `ModelSpec::consistency_weight`).
    Consistency,
}

impl std::fmt::Display for LossKind {
    /// The term's name in messages and in its tensors' names: rec, kl, kl_y, ce (head 0), ce1, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LossKind::Rec => f.write_str("rec"),
            LossKind::Kl => f.write_str("kl"),
            LossKind::KlY => f.write_str("kl_y"),
            LossKind::Entropy => f.write_str("entropy"),
            LossKind::Consistency => f.write_str("consistency"),
            LossKind::Ce { head: 0 } => f.write_str("ce"),
            LossKind::Ce { head } => write!(f, "ce{head}"),
        }
    }
}

/// A loss term: its kind, its per-row loss tensor and the factor it was scaled by (to report the
/// unscaled value).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossTerm {
    pub kind: LossKind,
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
    /// Inside [`Graph::with_shared_params`]: the scope that prefixes new temporaries' names
    /// (parameters are then looked up, not created).
    shared_scope: Option<String>,
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

    /// Builds with `f` a second application of layers already in the graph: every parameter
    /// `f` asks for is the existing one of that name (same shape; gradients from both uses
    /// add up), and the temporaries it creates are named `{scope}/...`. Used for the
    /// consistency pass of the encoder on a perturbed input.
    pub fn with_shared_params<T>(&mut self, scope: &str, f: impl FnOnce(&mut Graph) -> T) -> T {
        let outer = self.shared_scope.replace(scope.to_string());
        let out = f(self);
        self.shared_scope = outer;
        out
    }

    /// Whether layers are being built inside [`Graph::with_shared_params`].
    pub fn in_shared_scope(&self) -> bool {
        self.shared_scope.is_some()
    }

    pub fn param(&mut self, name: &str, shape: &[usize], init: Init) -> TensorId {
        if let Some(scope) = &self.shared_scope {
            let t = self.params.iter().map(|p| p.tensor).find(|&t| self.tensors[t].name == name);
            let t = t.unwrap_or_else(|| panic!("{scope}: no parameter '{name}' to share"));
            assert_eq!(self.tensors[t].shape, shape, "{scope}: parameter '{name}' asked for with another shape");
            return t;
        }
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
        let name = match &self.shared_scope {
            Some(scope) => format!("{scope}/{name}"),
            None => name,
        };
        self.tensor(name, shape, dtype, Role::Temp)
    }

    fn push(&mut self, op: GOp, inputs: Vec<TensorId>, outputs: Vec<TensorId>) {
        self.nodes.push(Node { op, inputs, outputs });
    }

    /// The term of kind `kind`, if the graph has one.
    pub fn loss(&self, kind: LossKind) -> Option<&LossTerm> {
        self.losses.iter().find(|l| l.kind == kind)
    }

    /// Adds a term to the objective (each kind once: see [`LossKind`]).
    fn add_loss_term(&mut self, kind: LossKind, per_row: TensorId, scale: f32) {
        assert!(self.loss(kind).is_none(), "the graph already has a '{kind}' loss term");
        self.losses.push(LossTerm { kind, per_row, scale });
    }
}
