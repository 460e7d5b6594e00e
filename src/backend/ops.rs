//! The kernel set, as plain data. An [`Op`] names a kernel and its static shape and
//! parameters; [`Op::slots`] lists the buffers it takes, in binding order, with their element
//! type, length and access. That list is the single contract between the CPU twin, the WGSL
//! entry point (binding `i + 1` is slot `i`, binding 0 is the parameter block) and the shape
//! checks, so a kernel call is validated the same way on both backends.

use crate::error::{Error, Result};

/// Element type of a buffer. Both are 4 bytes wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    /// Written without being read first.
    Write,
    /// Read and updated in place.
    ReadWrite,
}

/// One buffer argument of a kernel.
#[derive(Clone, Debug)]
pub struct Slot {
    pub name: &'static str,
    pub dtype: DType,
    /// Elements the kernel touches. `0` marks an optional slot that is not read (any buffer,
    /// e.g. the backend's placeholder, may be bound).
    pub len: usize,
    pub access: Access,
}

/// Activation applied elementwise (also as the GEMM epilogue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Identity = 0,
    Relu = 1,
    Sigmoid = 2,
    Tanh = 3,
    Softplus = 4,
}

impl Act {
    pub const ALL: [Act; 5] = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh, Act::Softplus];

    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::Identity => x,
            Act::Relu => x.max(0.0),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Tanh => x.tanh(),
            Act::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// Derivative written in terms of the OUTPUT y = f(x), so a backward pass needs only
    /// the activations the forward pass kept (and the GEMM epilogue can fuse the forward).
    pub fn grad_from_output(self, y: f32) -> f32 {
        match self {
            Act::Identity => 1.0,
            Act::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::Sigmoid => y * (1.0 - y),
            Act::Tanh => 1.0 - y * y,
            // y = ln(1 + e^x)  =>  dy/dx = sigmoid(x) = 1 - e^{-y}
            Act::Softplus => -(-y).exp_m1(),
        }
    }
}

/// `C = act(alpha * op(A) op(B) + bias + beta * C)`, row-major, with `op(A)` M x K and `op(B)`
/// K x N. `trans_a`: A is stored K x M; `trans_b`: B is stored N x K. `bias` (length N) is
/// broadcast over rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub bias: bool,
    pub act: Act,
    pub alpha: f32,
    pub beta: f32,
}

impl Gemm {
    /// Plain `C = A B` (no transpose, no bias, identity epilogue).
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Gemm { m, n, k, trans_a: false, trans_b: false, bias: false, act: Act::Identity, alpha: 1.0, beta: 0.0 }
    }
    pub fn trans(mut self, a: bool, b: bool) -> Self {
        self.trans_a = a;
        self.trans_b = b;
        self
    }
    pub fn bias(mut self, act: Act) -> Self {
        self.bias = true;
        self.act = act;
        self
    }
    pub fn act(mut self, act: Act) -> Self {
        self.act = act;
        self
    }
    pub fn scaled(mut self, alpha: f32, beta: f32) -> Self {
        self.alpha = alpha;
        self.beta = beta;
        self
    }
}

/// Every kernel of the compute core. Field names: `n` element count, `rows` x `cols` a
/// row-major matrix, `scale` a factor applied to a loss and its gradient alike.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    // gemm.wgsl
    Gemm(Gemm),
    // elementwise.wgsl
    ActForward { n: usize, act: Act },
    ActBackward { n: usize, act: Act },
    Add { n: usize },
    Mul { n: usize },
    Scale { n: usize, alpha: f32 },
    Axpy { n: usize, alpha: f32 },
    Fill { n: usize, value: f32 },
    ConcatCols { rows: usize, cols_a: usize, cols_b: usize },
    SplitCols { rows: usize, cols_a: usize, cols_b: usize },
    /// out[r, :] = data[idx[r], :] / 255 from a u8 matrix packed 4 bytes per u32 word
    /// (`src_rows` x `cols` bytes); an index >= src_rows gives a zero row.
    GatherRowsU8 { rows: usize, cols: usize, src_rows: usize },
    /// out[r] = one_hot(labels[r]) where the row is labeled (label < classes), else pi[r].
    LabelMix { rows: usize, classes: usize },
    /// dpi[r] = 0 where the row is labeled, else dout[r] (the adjoint of `LabelMix`).
    LabelMixBackward { rows: usize, classes: usize },
    // reduce.wgsl
    ColSum { rows: usize, cols: usize, accumulate: bool },
    SoftmaxRows { rows: usize, cols: usize },
    SoftmaxBackward { rows: usize, cols: usize },
    MeanVar { rows: usize, cols: usize },
    // sample.wgsl (the counter buffer holds [seed_lo, seed_hi, step])
    RandomBits { n: usize, stream: u32 },
    RandomNormal { n: usize, stream: u32 },
    Reparam { n: usize, stream: u32 },
    ReparamBackward { n: usize },
    // loss.wgsl
    BceLogits { rows: usize, cols: usize, scale: f32 },
    GaussianNll { rows: usize, cols: usize, scale: f32 },
    Kl { rows: usize, cols: usize, scale: f32 },
    SoftmaxCe { rows: usize, classes: usize, scale: f32 },
    // optim.wgsl (hyper-parameters live in a small buffer so a schedule needs no recompile)
    RmsProp { n: usize },
    Adam { n: usize },
    // lstm.wgsl (sequences are row-major [batch, steps, features]; gate order i, f, g, o)
    /// The whole recurrence in one dispatch, one workgroup per batch row. `xproj` = x W_ih + b
    /// (one GEMM over batch * steps rows, done beforehand); also writes the activated gates and
    /// h_{t-1} per step (`hprev`, h0 at t = 0) for the backward pass and the W_hh gradient GEMM.
    LstmForward { batch: usize, steps: usize, hidden: usize },
    /// Backprop through time (t = steps-1 .. 0) from the gradient of every h_t: pre-activation
    /// gate gradients (so dW_ih, db, dx and dW_hh are plain GEMMs / column sums) and the
    /// gradients of the initial state.
    LstmBackward { batch: usize, steps: usize, hidden: usize },
}

/// Label value that marks a row as unlabeled (any value >= the class count is treated so).
pub const UNLABELED: u32 = u32::MAX;
/// Length of the RNG counter buffer: `[seed_lo, seed_hi, step]`.
pub const COUNTER_LEN: usize = 3;
/// RMSprop hyper-parameter buffer: `[lr, alpha (decay), momentum, eps]` (PyTorch semantics).
pub const RMSPROP_HYPER_LEN: usize = 4;
/// Adam hyper-parameter buffer: `[lr, beta1, beta2, eps, t]` (t = 1-based step, as f32).
pub const ADAM_HYPER_LEN: usize = 5;
/// Largest LSTM hidden size. The forward kernel keeps h_{t-1} (H) and the step's activated
/// gates (4H) of its batch row in workgroup memory, 5H floats; 768 units use 15 KiB, inside the
/// 16 KiB every WebGPU adapter guarantees (`max_compute_workgroup_storage_size`). The
/// backward kernel needs 4H floats.
pub const LSTM_MAX_HIDDEN: usize = 768;

fn f(name: &'static str, len: usize, access: Access) -> Slot {
    Slot { name, dtype: DType::F32, len, access }
}
fn u(name: &'static str, len: usize, access: Access) -> Slot {
    Slot { name, dtype: DType::U32, len, access }
}
use Access::{Read as R, ReadWrite as RW, Write as W};

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Gemm(_) => "gemm",
            Op::ActForward { .. } => "act_forward",
            Op::ActBackward { .. } => "act_backward",
            Op::Add { .. } => "add",
            Op::Mul { .. } => "mul",
            Op::Scale { .. } => "scale",
            Op::Axpy { .. } => "axpy",
            Op::Fill { .. } => "fill",
            Op::ConcatCols { .. } => "concat_cols",
            Op::SplitCols { .. } => "split_cols",
            Op::GatherRowsU8 { .. } => "gather_rows_u8",
            Op::LabelMix { .. } => "label_mix",
            Op::LabelMixBackward { .. } => "label_mix_backward",
            Op::ColSum { .. } => "col_sum",
            Op::SoftmaxRows { .. } => "softmax_rows",
            Op::SoftmaxBackward { .. } => "softmax_backward",
            Op::MeanVar { .. } => "mean_var",
            Op::RandomBits { .. } => "random_bits",
            Op::RandomNormal { .. } => "random_normal",
            Op::Reparam { .. } => "reparam",
            Op::ReparamBackward { .. } => "reparam_backward",
            Op::BceLogits { .. } => "bce_logits",
            Op::GaussianNll { .. } => "gaussian_nll",
            Op::Kl { .. } => "kl_normal",
            Op::SoftmaxCe { .. } => "softmax_ce",
            Op::RmsProp { .. } => "rmsprop",
            Op::Adam { .. } => "adam",
            Op::LstmForward { .. } => "lstm_forward",
            Op::LstmBackward { .. } => "lstm_backward",
        }
    }

    /// The buffers this kernel takes, in binding order.
    pub fn slots(&self) -> Vec<Slot> {
        match *self {
            Op::Gemm(g) => vec![
                f("a", g.m * g.k, R),
                f("b", g.k * g.n, R),
                f("bias", if g.bias { g.n } else { 0 }, R),
                f("c", g.m * g.n, if g.beta != 0.0 { RW } else { W }),
            ],
            Op::ActForward { n, .. } => vec![f("x", n, R), f("y", n, W)],
            Op::ActBackward { n, .. } => vec![f("y", n, R), f("dy", n, R), f("dx", n, W)],
            Op::Add { n } | Op::Mul { n } => vec![f("a", n, R), f("b", n, R), f("c", n, W)],
            Op::Scale { n, .. } => vec![f("x", n, R), f("y", n, W)],
            Op::Axpy { n, .. } => vec![f("x", n, R), f("y", n, RW)],
            Op::Fill { n, .. } => vec![f("y", n, W)],
            Op::ConcatCols { rows, cols_a, cols_b } => vec![
                f("a", rows * cols_a, R),
                f("b", rows * cols_b, R),
                f("c", rows * (cols_a + cols_b), W),
            ],
            Op::SplitCols { rows, cols_a, cols_b } => vec![
                f("c", rows * (cols_a + cols_b), R),
                f("a", rows * cols_a, W),
                f("b", rows * cols_b, W),
            ],
            Op::GatherRowsU8 { rows, cols, src_rows } => {
                vec![u("data", (src_rows * cols).div_ceil(4), R), u("idx", rows, R), f("out", rows * cols, W)]
            }
            Op::LabelMix { rows, classes } => {
                vec![f("pi", rows * classes, R), u("labels", rows, R), f("out", rows * classes, W)]
            }
            Op::LabelMixBackward { rows, classes } => {
                vec![f("dout", rows * classes, R), u("labels", rows, R), f("dpi", rows * classes, W)]
            }
            Op::ColSum { rows, cols, accumulate } => {
                vec![f("x", rows * cols, R), f("out", cols, if accumulate { RW } else { W })]
            }
            Op::SoftmaxRows { rows, cols } => vec![f("x", rows * cols, R), f("y", rows * cols, W)],
            Op::SoftmaxBackward { rows, cols } => {
                vec![f("y", rows * cols, R), f("dy", rows * cols, R), f("dx", rows * cols, W)]
            }
            Op::MeanVar { rows, cols } => vec![f("x", rows * cols, R), f("mean", cols, W), f("var", cols, W)],
            Op::RandomBits { n, .. } => vec![u("counter", COUNTER_LEN, R), u("out", n, W)],
            Op::RandomNormal { n, .. } => vec![u("counter", COUNTER_LEN, R), f("out", n, W)],
            Op::Reparam { n, .. } => vec![
                u("counter", COUNTER_LEN, R),
                f("mu", n, R),
                f("logvar", n, R),
                f("z", n, W),
                f("eps", n, W),
            ],
            Op::ReparamBackward { n } => vec![
                f("dz", n, R),
                f("logvar", n, R),
                f("eps", n, R),
                f("dmu", n, W),
                f("dlogvar", n, W),
            ],
            Op::BceLogits { rows, cols, .. } => vec![
                f("logits", rows * cols, R),
                f("target", rows * cols, R),
                f("loss", rows, W),
                f("dlogits", rows * cols, W),
            ],
            Op::GaussianNll { rows, cols, .. } => vec![
                f("mean", rows * cols, R),
                f("var_raw", rows * cols, R),
                f("target", rows * cols, R),
                f("loss", rows, W),
                f("dmean", rows * cols, W),
                f("dvar_raw", rows * cols, W),
            ],
            Op::Kl { rows, cols, .. } => vec![
                f("mu", rows * cols, R),
                f("logvar", rows * cols, R),
                f("loss", rows, W),
                f("dmu", rows * cols, W),
                f("dlogvar", rows * cols, W),
            ],
            Op::SoftmaxCe { rows, classes, .. } => vec![
                f("logits", rows * classes, R),
                u("labels", rows, R),
                f("loss", rows, W),
                f("dlogits", rows * classes, W),
            ],
            Op::RmsProp { n } => vec![
                f("hyper", RMSPROP_HYPER_LEN, R),
                f("grad", n, R),
                f("param", n, RW),
                f("square_avg", n, RW),
                f("momentum_buf", n, RW),
            ],
            Op::Adam { n } => vec![
                f("hyper", ADAM_HYPER_LEN, R),
                f("grad", n, R),
                f("param", n, RW),
                f("m", n, RW),
                f("v", n, RW),
            ],
            Op::LstmForward { batch, steps, hidden } => {
                let (bt, bh) = (batch * steps, batch * hidden);
                vec![
                    f("xproj", bt * 4 * hidden, R),
                    f("w_hh", hidden * 4 * hidden, R),
                    f("h0", bh, R),
                    f("c0", bh, R),
                    f("h_seq", bt * hidden, W),
                    f("c_seq", bt * hidden, W),
                    f("gates", bt * 4 * hidden, W),
                    f("hprev", bt * hidden, W),
                ]
            }
            Op::LstmBackward { batch, steps, hidden } => {
                let (bt, bh) = (batch * steps, batch * hidden);
                vec![
                    f("gates", bt * 4 * hidden, R),
                    f("c_seq", bt * hidden, R),
                    f("c0", bh, R),
                    f("w_hh", hidden * 4 * hidden, R),
                    f("dh_seq", bt * hidden, R),
                    f("dgates", bt * 4 * hidden, W),
                    f("dh0", bh, W),
                    f("dc0", bh, W),
                ]
            }
        }
    }

    /// Dimensions that must be at least 1.
    fn dims(&self) -> Vec<(&'static str, usize)> {
        match *self {
            Op::Gemm(g) => vec![("m", g.m), ("n", g.n), ("k", g.k)],
            Op::ActForward { n, .. }
            | Op::ActBackward { n, .. }
            | Op::Add { n }
            | Op::Mul { n }
            | Op::Scale { n, .. }
            | Op::Axpy { n, .. }
            | Op::Fill { n, .. }
            | Op::RandomBits { n, .. }
            | Op::RandomNormal { n, .. }
            | Op::Reparam { n, .. }
            | Op::ReparamBackward { n }
            | Op::RmsProp { n }
            | Op::Adam { n } => vec![("n", n)],
            Op::ConcatCols { rows, cols_a, cols_b } | Op::SplitCols { rows, cols_a, cols_b } => {
                vec![("rows", rows), ("cols_a", cols_a), ("cols_b", cols_b)]
            }
            Op::GatherRowsU8 { rows, cols, src_rows } => vec![("rows", rows), ("cols", cols), ("src_rows", src_rows)],
            Op::LabelMix { rows, classes } | Op::LabelMixBackward { rows, classes } => vec![("rows", rows), ("classes", classes)],
            Op::ColSum { rows, cols, .. }
            | Op::SoftmaxRows { rows, cols }
            | Op::SoftmaxBackward { rows, cols }
            | Op::MeanVar { rows, cols }
            | Op::BceLogits { rows, cols, .. }
            | Op::GaussianNll { rows, cols, .. }
            | Op::Kl { rows, cols, .. } => vec![("rows", rows), ("cols", cols)],
            Op::SoftmaxCe { rows, classes, .. } => vec![("rows", rows), ("classes", classes)],
            Op::LstmForward { batch, steps, hidden } | Op::LstmBackward { batch, steps, hidden } => {
                vec![("batch", batch), ("steps", steps), ("hidden", hidden), ("batch * steps * 4 * hidden", batch * steps * 4 * hidden)]
            }
        }
    }

    /// Checks the buffers against [`Op::slots`]: count, element type, length, and that no
    /// buffer is bound twice (both backends forbid aliasing a written buffer).
    pub fn check<B: super::BufferLike>(&self, bufs: &[&B]) -> Result<()> {
        let op = self.name();
        for (dim, v) in self.dims() {
            if v == 0 {
                return Err(Error::shape(op, format!("dimension {dim} is 0; every dimension must be at least 1")));
            }
            if v > u32::MAX as usize / 2 {
                return Err(Error::shape(op, format!("dimension {dim} = {v} is too large for 32-bit indexing")));
            }
        }
        if let Op::LstmForward { hidden, .. } | Op::LstmBackward { hidden, .. } = *self {
            if hidden > LSTM_MAX_HIDDEN {
                return Err(Error::shape(
                    op,
                    format!("hidden size {hidden} exceeds {LSTM_MAX_HIDDEN}: the kernel keeps one batch row's state and gates in 16 KiB of workgroup memory"),
                ));
            }
        }
        let slots = self.slots();
        if bufs.len() != slots.len() {
            let names: Vec<_> = slots.iter().map(|s| s.name).collect();
            return Err(Error::shape(op, format!("expected {} buffers ({}), got {}", slots.len(), names.join(", "), bufs.len())));
        }
        // An optional slot (len 0) is not read, but its buffer is still bound: it counts as a
        // read for the aliasing rules.
        let access = |s: &Slot| if s.len == 0 { Access::Read } else { s.access };
        for (i, (slot, buf)) in slots.iter().zip(bufs).enumerate() {
            if slot.len != 0 {
                if buf.dtype() != slot.dtype {
                    return Err(Error::shape(op, format!("buffer '{}' must be {:?}, got {:?}", slot.name, slot.dtype, buf.dtype())));
                }
                if buf.len() < slot.len {
                    return Err(Error::shape(
                        op,
                        format!("buffer '{}' has {} elements, the kernel needs {} ({:?})", slot.name, buf.len(), slot.len, self),
                    ));
                }
            }
            for (j, other) in bufs.iter().enumerate().skip(i + 1) {
                if other.id() != buf.id() {
                    continue;
                }
                // Views of one storage may be bound together only if all are read, or all are
                // written and disjoint (a GPU cannot bind one buffer read-only and writable
                // in the same dispatch).
                let (wi, wj) = (access(slot) != Access::Read, access(&slots[j]) != Access::Read);
                let overlap = buf.offset() < other.offset() + other.len() && other.offset() < buf.offset() + buf.len();
                if wi != wj || (wi && overlap) {
                    return Err(Error::shape(
                        op,
                        format!("buffers '{}' and '{}' are views of the same storage{}; aliasing is not allowed", slot.name, slots[j].name, if overlap { " and overlap" } else { "" }),
                    ));
                }
            }
        }
        Ok(())
    }
}
