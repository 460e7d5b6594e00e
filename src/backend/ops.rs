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

/// Geometry of a 2-D convolution over NHWC tensors: input `batch x in_h x in_w x in_c`,
/// weights `kh x kw x in_c x out_c` (row-major, i.e. a `(kh*kw*in_c) x out_c` matrix), output
/// `batch x out_h x out_w x out_c`. Output pixel (oy, ox) reads input rows
/// `oy * stride - pad_h + ky` (ky < kh), zero outside the image. A transposed convolution is
/// the adjoint of one of these (its input is this output and vice versa).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2d {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad_h: usize,
    pub pad_w: usize,
}

/// How a layer pads: `Same` gives `ceil(in / stride)` outputs (TensorFlow's convention: the
/// total padding `max((out - 1) * stride + k - in, 0)` is split with the odd pixel after),
/// `Valid` uses no padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    Same,
    Valid,
}

/// The convolutions this crate supports: kernels 1..=MAX_KERNEL on each axis, strides
/// 1..=MAX_STRIDE (the same on both axes), `Same` or `Valid` padding.
pub const MAX_KERNEL: usize = 11;
pub const MAX_STRIDE: usize = 4;

impl Conv2d {
    /// The convolution of a `batch x in_h x in_w x in_c` input with `out_c` filters of
    /// `k x k`; errors (naming the layer) on unsupported parameters or an empty output.
    pub fn new(
        layer: &str,
        batch: usize,
        (in_h, in_w, in_c): (usize, usize, usize),
        out_c: usize,
        k: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<Conv2d> {
        if !(1..=MAX_KERNEL).contains(&k) {
            return Err(Error::Invalid(format!("layer '{layer}': kernel size {k} is not supported (1..={MAX_KERNEL})")));
        }
        if !(1..=MAX_STRIDE).contains(&stride) {
            return Err(Error::Invalid(format!("layer '{layer}': stride {stride} is not supported (1..={MAX_STRIDE})")));
        }
        if in_h == 0 || in_w == 0 || in_c == 0 || out_c == 0 || batch == 0 {
            return Err(Error::Invalid(format!("layer '{layer}': empty input {in_h}x{in_w}x{in_c} or no filters ({out_c})")));
        }
        let axis = |n: usize| -> Option<(usize, usize)> {
            match padding {
                Padding::Same => {
                    let out = n.div_ceil(stride);
                    let total = ((out - 1) * stride + k).saturating_sub(n);
                    Some((out, total / 2))
                }
                Padding::Valid => (n >= k).then(|| ((n - k) / stride + 1, 0)),
            }
        };
        let (Some((out_h, pad_h)), Some((out_w, pad_w))) = (axis(in_h), axis(in_w)) else {
            return Err(Error::Invalid(format!("layer '{layer}': a {k}x{k} kernel does not fit a {in_h}x{in_w} input without padding")));
        };
        Ok(Conv2d { batch, in_h, in_w, in_c, out_h, out_w, out_c, kh: k, kw: k, stride, pad_h, pad_w })
    }
    pub fn in_len(&self) -> usize {
        self.batch * self.in_h * self.in_w * self.in_c
    }
    pub fn out_len(&self) -> usize {
        self.batch * self.out_h * self.out_w * self.out_c
    }
    pub fn w_len(&self) -> usize {
        self.kh * self.kw * self.in_c * self.out_c
    }

    /// The geometry is one this crate supports and consistent (every output pixel's window
    /// starts inside the padded input).
    pub fn check(&self, op: &'static str) -> Result<()> {
        if self.kh > MAX_KERNEL || self.kw > MAX_KERNEL || self.stride > MAX_STRIDE {
            return Err(Error::shape(
                op,
                format!(
                    "kernel {}x{} / stride {} outside the supported set (kernels up to {MAX_KERNEL}, strides up to {MAX_STRIDE})",
                    self.kh, self.kw, self.stride
                ),
            ));
        }
        if self.pad_h >= self.kh || self.pad_w >= self.kw {
            return Err(Error::shape(
                op,
                format!("padding {}x{} must be smaller than the kernel {}x{}", self.pad_h, self.pad_w, self.kh, self.kw),
            ));
        }
        let last = |out: usize, pad: usize, inp: usize| (out - 1) * self.stride < inp + pad;
        if self.out_h == 0 || self.out_w == 0 || !last(self.out_h, self.pad_h, self.in_h) || !last(self.out_w, self.pad_w, self.in_w) {
            return Err(Error::shape(
                op,
                format!(
                    "output {}x{} does not fit input {}x{} with stride {} and padding {}x{}",
                    self.out_h, self.out_w, self.in_h, self.in_w, self.stride, self.pad_h, self.pad_w
                ),
            ));
        }
        let k = self.kh * self.kw * self.in_c.max(self.out_c);
        if k > u32::MAX as usize / 2 {
            return Err(Error::shape(op, "reduction too large for 32-bit indexing"));
        }
        Ok(())
    }
}

/// Samples per run of a split-K convolution weight gradient ([`Op::Conv2dBackwardWeightSplit`]):
/// about 8192 reduction terms (samples x output pixels) per run, at most 64 runs.
pub fn conv_weight_split_samples(c: &Conv2d) -> usize {
    (8192 / (c.out_h * c.out_w).max(1)).max(1).max(c.batch.div_ceil(64))
}

/// Rows per chunk of the batch-norm reductions ([`Op::BatchNormPartial`]): at least 256, and
/// at most 256 chunks.
pub fn bn_chunk_rows(rows: usize) -> usize {
    rows.div_ceil(256).max(256)
}

/// Number of chunks of a batch-norm reduction over `rows` rows.
pub fn bn_chunks(rows: usize) -> usize {
    rows.div_ceil(bn_chunk_rows(rows)).max(1)
}

/// Every kernel of the compute core. Field names: `n` element count, `rows` x `cols` a
/// row-major matrix, `scale` a factor applied to a loss and its gradient alike.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    // gemm.wgsl
    Gemm(Gemm),
    // elementwise.wgsl
    ActForward {
        n: usize,
        act: Act,
    },
    ActBackward {
        n: usize,
        act: Act,
    },
    Add {
        n: usize,
    },
    Mul {
        n: usize,
    },
    Scale {
        n: usize,
        alpha: f32,
    },
    Axpy {
        n: usize,
        alpha: f32,
    },
    Fill {
        n: usize,
        value: f32,
    },
    ConcatCols {
        rows: usize,
        cols_a: usize,
        cols_b: usize,
    },
    SplitCols {
        rows: usize,
        cols_a: usize,
        cols_b: usize,
    },
    /// out[r, :] = data[idx[r], :] / 255 from a u8 matrix packed 4 bytes per u32 word
    /// (`src_rows` x `cols` bytes); an index >= src_rows gives a zero row.
    GatherRowsU8 {
        rows: usize,
        cols: usize,
        src_rows: usize,
    },
    /// out[r, :] = data[idx[r], :] from a resident f32 dataset (`src_rows` x `cols`); an index
    /// `>= src_rows` gives a row of zeros (as `GatherRowsU8`).
    GatherRowsF32 {
        rows: usize,
        cols: usize,
        src_rows: usize,
    },
    /// As `GatherRowsF32` from a resident f16 dataset: value k of the flat `src_rows` x `cols`
    /// matrix is half k % 2 (low half first) of u32 word k / 2 (half the device memory).
    GatherRowsF16 {
        rows: usize,
        cols: usize,
        src_rows: usize,
    },
    /// out[r] = one_hot(labels[r]) where the row is labeled (label < classes), else pi[r].
    LabelMix {
        rows: usize,
        classes: usize,
    },
    /// dpi[r] = 0 where the row is labeled, else dout[r] (the adjoint of `LabelMix`).
    LabelMixBackward {
        rows: usize,
        classes: usize,
    },
    // reduce.wgsl
    ColSum {
        rows: usize,
        cols: usize,
        accumulate: bool,
    },
    SoftmaxRows {
        rows: usize,
        cols: usize,
    },
    SoftmaxBackward {
        rows: usize,
        cols: usize,
    },
    MeanVar {
        rows: usize,
        cols: usize,
    },
    // sample.wgsl (the counter buffer holds [seed_lo, seed_hi, step])
    RandomBits {
        n: usize,
        stream: u32,
    },
    RandomNormal {
        n: usize,
        stream: u32,
    },
    Reparam {
        n: usize,
        stream: u32,
    },
    ReparamBackward {
        n: usize,
    },
    // loss.wgsl
    BceLogits {
        rows: usize,
        cols: usize,
        scale: f32,
    },
    GaussianNll {
        rows: usize,
        cols: usize,
        scale: f32,
    },
    Kl {
        rows: usize,
        cols: usize,
        scale: f32,
    },
    SoftmaxCe {
        rows: usize,
        classes: usize,
        scale: f32,
    },
    // mixture.wgsl: sums over a discrete latent y (M2, GM-DGM). A batch is expanded to one row
    // per (sample, class) and the per-row losses are weighted by q(y|x) (see graph::mixture).
    /// out[r * copies + k, :] = x[r, :] for k < copies.
    RepeatRows {
        rows: usize,
        cols: usize,
        copies: usize,
    },
    /// dx[r, :] = sum_k dout[r * copies + k, :] (the adjoint of `RepeatRows`).
    RepeatRowsBackward {
        rows: usize,
        cols: usize,
        copies: usize,
    },
    /// y[r, :] = alpha * w[r] * x[r, :]: a per-row loss's gradient weighted per row.
    RowScale {
        rows: usize,
        cols: usize,
        alpha: f32,
    },
    /// out[r] = scale * sum_k w[r, k] loss[r * classes + k] and dw = scale * loss: a weighted
    /// sum of per-(row, class) losses with a data-dependent, differentiable weight.
    WeightedRowSum {
        rows: usize,
        classes: usize,
        scale: f32,
    },
    /// KL(softmax(logits) || p) per row on unlabeled rows (label >= classes) and -log p(y) on
    /// labeled ones (a constant: zero gradient), times `scale`; `log_prior` has one entry per
    /// class. The unlabeled value is -H(q) - E_q log p(y), the discrete part of the M2 ELBO.
    CategoricalKl {
        rows: usize,
        classes: usize,
        scale: f32,
    },
    /// KL(N(mu_q, e^lv_q) || N(mu_p, e^lv_p)) summed over the row, with the gradients for
    /// both sides (d/dmu_p = -d/dmu_q is left to the caller: 8 buffers is WebGPU's minimum
    /// guarantee of storage bindings per stage).
    KlGaussians {
        rows: usize,
        cols: usize,
        scale: f32,
    },
    // conv.wgsl (implicit GEMM; a transposed convolution runs these with roles swapped)
    /// y = conv(x, w) + bias (bias optional, per output channel).
    Conv2dForward {
        conv: Conv2d,
        bias: bool,
    },
    /// dx = the adjoint of the convolution applied to dy (+ bias per input channel, optional:
    /// this is also the forward pass of a transposed convolution).
    Conv2dBackwardInput {
        conv: Conv2d,
        bias: bool,
    },
    /// dw = sum over the batch of x (x) dy (written, or added to dw when `accumulate`).
    Conv2dBackwardWeight {
        conv: Conv2d,
        accumulate: bool,
    },
    /// Split-K weight gradient: the batch is cut into runs of `samples` samples (the last one
    /// shorter), and `part[s]` (w_len values each) is the weight gradient of run s alone, so
    /// the long batch x pixels reduction runs on many workgroups; [`Op::SumSlices`] adds them.
    Conv2dBackwardWeightSplit {
        conv: Conv2d,
        samples: usize,
    },
    /// out = sum of `slices` consecutive slices of `n` values of part, in slice order (added to
    /// out when `accumulate`).
    SumSlices {
        n: usize,
        slices: usize,
        accumulate: bool,
    },
    // batchnorm.wgsl (over the columns of a rows x cols matrix: a conv feature map is
    // (batch*h*w) x channels)
    /// Per-chunk column statistics of x: the rows are cut into `chunks` runs of
    /// [`bn_chunk_rows`] rows (the last one shorter); `part[ch][0][c]` = the chunk's mean,
    /// `part[ch][1][c]` = its sum of squared deviations from that mean. Chunks run in parallel,
    /// so a feature map of 10^5 rows and a few dozen channels fills a GPU.
    BatchNormPartial {
        rows: usize,
        cols: usize,
        chunks: usize,
    },
    /// Batch statistics `stats = [mean; 1/sqrt(var + eps)]` (2 x cols, biased var) from the
    /// chunks' statistics (Chan et al.'s pairwise combination), and the running averages
    /// updated with weight `momentum` on the batch (unbiased var, as PyTorch).
    BatchNormStats {
        rows: usize,
        cols: usize,
        chunks: usize,
        momentum: f32,
        eps: f32,
    },
    /// `stats = [mean; 1/sqrt(var + eps)]` from the running averages (inference mode).
    BatchNormRunning {
        cols: usize,
        eps: f32,
    },
    /// y = act(gamma * (x - mean) * invstd + beta).
    BatchNormForward {
        rows: usize,
        cols: usize,
        act: Act,
    },
    /// Per-chunk sums (chunks as [`Op::BatchNormPartial`]) for the backward pass:
    /// `part[ch][0][c]` = sum of dz, `part[ch][1][c]` = sum of dz * xhat over the chunk's rows,
    /// with dz = dy * act'(y) and xhat = (x - mean) * invstd.
    BatchNormBackwardPartial {
        rows: usize,
        cols: usize,
        chunks: usize,
        act: Act,
    },
    /// dbeta = sum of dz, dgamma = sum of dz * xhat: the chunks' sums added in chunk order.
    BatchNormBackwardReduce {
        cols: usize,
        chunks: usize,
    },
    /// dx from dy (through the fused activation, from its output y) and the column sums
    /// dgamma, dbeta: dx = gamma invstd (dz - dbeta / rows - xhat dgamma / rows).
    BatchNormBackward {
        rows: usize,
        cols: usize,
        act: Act,
    },
    // sample.wgsl
    /// y = x * mask, mask = (u >= rate) / (1 - rate) with u uniform from the shared RNG (word
    /// i % 4 of draw i / 4); the mask is kept for the backward pass (dx = dy * mask).
    Dropout {
        n: usize,
        rate: f32,
        stream: u32,
    },
    // optim.wgsl (hyper-parameters live in a small buffer so a schedule needs no recompile)
    RmsProp {
        n: usize,
    },
    Adam {
        n: usize,
    },
    // lstm.wgsl (sequences are row-major [batch, steps, features]; gate order i, f, g, o)
    /// The whole recurrence in one dispatch, one workgroup per batch row. `xproj` = x W_ih + b
    /// (one GEMM over batch * steps rows, done beforehand); also writes the activated gates and
    /// h_{t-1} per step (`hprev`, h0 at t = 0) for the backward pass and the W_hh gradient GEMM.
    LstmForward {
        batch: usize,
        steps: usize,
        hidden: usize,
    },
    /// Backprop through time (t = steps-1 .. 0) from the gradient of every h_t: pre-activation
    /// gate gradients (so dW_ih, db, dx and dW_hh are plain GEMMs / column sums) and the
    /// gradients of the initial state.
    LstmBackward {
        batch: usize,
        steps: usize,
        hidden: usize,
    },
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
            Op::GatherRowsF32 { .. } => "gather_rows_f32",
            Op::GatherRowsF16 { .. } => "gather_rows_f16",
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
            Op::RepeatRows { .. } => "repeat_rows",
            Op::RepeatRowsBackward { .. } => "repeat_rows_backward",
            Op::RowScale { .. } => "row_scale",
            Op::WeightedRowSum { .. } => "weighted_row_sum",
            Op::CategoricalKl { .. } => "categorical_kl",
            Op::KlGaussians { .. } => "kl_gaussians",
            Op::Conv2dForward { .. } => "conv2d_forward",
            Op::Conv2dBackwardInput { .. } => "conv2d_backward_input",
            Op::Conv2dBackwardWeight { .. } => "conv2d_backward_weight",
            Op::Conv2dBackwardWeightSplit { .. } => "conv2d_backward_weight_split",
            Op::SumSlices { .. } => "sum_slices",
            Op::BatchNormPartial { .. } => "batch_norm_partial",
            Op::BatchNormStats { .. } => "batch_norm_stats",
            Op::BatchNormBackwardPartial { .. } => "batch_norm_backward_partial",
            Op::BatchNormBackwardReduce { .. } => "batch_norm_backward_reduce",
            Op::BatchNormRunning { .. } => "batch_norm_running",
            Op::BatchNormForward { .. } => "batch_norm_forward",
            Op::BatchNormBackward { .. } => "batch_norm_backward",
            Op::Dropout { .. } => "dropout",
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
            Op::ConcatCols { rows, cols_a, cols_b } => {
                vec![f("a", rows * cols_a, R), f("b", rows * cols_b, R), f("c", rows * (cols_a + cols_b), W)]
            }
            Op::SplitCols { rows, cols_a, cols_b } => {
                vec![f("c", rows * (cols_a + cols_b), R), f("a", rows * cols_a, W), f("b", rows * cols_b, W)]
            }
            Op::GatherRowsU8 { rows, cols, src_rows } => {
                vec![u("data", (src_rows * cols).div_ceil(4), R), u("idx", rows, R), f("out", rows * cols, W)]
            }
            Op::GatherRowsF32 { rows, cols, src_rows } => {
                vec![f("data", src_rows * cols, R), u("idx", rows, R), f("out", rows * cols, W)]
            }
            Op::GatherRowsF16 { rows, cols, src_rows } => {
                vec![u("data", (src_rows * cols).div_ceil(2), R), u("idx", rows, R), f("out", rows * cols, W)]
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
            Op::Reparam { n, .. } => vec![u("counter", COUNTER_LEN, R), f("mu", n, R), f("logvar", n, R), f("z", n, W), f("eps", n, W)],
            Op::ReparamBackward { n } => vec![f("dz", n, R), f("logvar", n, R), f("eps", n, R), f("dmu", n, W), f("dlogvar", n, W)],
            Op::BceLogits { rows, cols, .. } => {
                vec![f("logits", rows * cols, R), f("target", rows * cols, R), f("loss", rows, W), f("dlogits", rows * cols, W)]
            }
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
            Op::SoftmaxCe { rows, classes, .. } => {
                vec![f("logits", rows * classes, R), u("labels", rows, R), f("loss", rows, W), f("dlogits", rows * classes, W)]
            }
            Op::RepeatRows { rows, cols, copies } => vec![f("x", rows * cols, R), f("out", rows * copies * cols, W)],
            Op::RepeatRowsBackward { rows, cols, copies } => vec![f("dout", rows * copies * cols, R), f("dx", rows * cols, W)],
            Op::RowScale { rows, cols, .. } => vec![f("x", rows * cols, R), f("w", rows, R), f("y", rows * cols, W)],
            Op::WeightedRowSum { rows, classes, .. } => {
                vec![f("loss", rows * classes, R), f("w", rows * classes, R), f("out", rows, W), f("dw", rows * classes, W)]
            }
            Op::CategoricalKl { rows, classes, .. } => vec![
                f("logits", rows * classes, R),
                f("log_prior", classes, R),
                u("labels", rows, R),
                f("loss", rows, W),
                f("dlogits", rows * classes, W),
            ],
            Op::KlGaussians { rows, cols, .. } => vec![
                f("mu_q", rows * cols, R),
                f("logvar_q", rows * cols, R),
                f("mu_p", rows * cols, R),
                f("logvar_p", rows * cols, R),
                f("loss", rows, W),
                f("dmu_q", rows * cols, W),
                f("dlogvar_q", rows * cols, W),
                f("dlogvar_p", rows * cols, W),
            ],
            Op::Conv2dForward { conv: c, bias } => {
                vec![f("x", c.in_len(), R), f("w", c.w_len(), R), f("bias", if bias { c.out_c } else { 0 }, R), f("y", c.out_len(), W)]
            }
            Op::Conv2dBackwardInput { conv: c, bias } => {
                vec![f("dy", c.out_len(), R), f("w", c.w_len(), R), f("bias", if bias { c.in_c } else { 0 }, R), f("dx", c.in_len(), W)]
            }
            Op::Conv2dBackwardWeight { conv: c, accumulate } => {
                vec![f("x", c.in_len(), R), f("dy", c.out_len(), R), f("unused", 0, R), f("dw", c.w_len(), if accumulate { RW } else { W })]
            }
            Op::Conv2dBackwardWeightSplit { conv: c, samples } => {
                vec![f("x", c.in_len(), R), f("dy", c.out_len(), R), f("unused", 0, R), f("part", c.batch.div_ceil(samples) * c.w_len(), W)]
            }
            Op::SumSlices { n, slices, accumulate } => vec![f("part", slices * n, R), f("out", n, if accumulate { RW } else { W })],
            Op::BatchNormPartial { rows, cols, chunks } => vec![f("x", rows * cols, R), f("part", chunks * 2 * cols, W)],
            Op::BatchNormStats { cols, chunks, .. } => {
                vec![f("part", chunks * 2 * cols, R), f("running_mean", cols, RW), f("running_var", cols, RW), f("stats", 2 * cols, W)]
            }
            Op::BatchNormRunning { cols, .. } => vec![f("running_mean", cols, R), f("running_var", cols, R), f("stats", 2 * cols, W)],
            Op::BatchNormForward { rows, cols, .. } => {
                vec![f("x", rows * cols, R), f("stats", 2 * cols, R), f("gamma", cols, R), f("beta", cols, R), f("y", rows * cols, W)]
            }
            Op::BatchNormBackwardPartial { rows, cols, chunks, .. } => vec![
                f("x", rows * cols, R),
                f("stats", 2 * cols, R),
                f("y", rows * cols, R),
                f("dy", rows * cols, R),
                f("part", chunks * 2 * cols, W),
            ],
            Op::BatchNormBackwardReduce { cols, chunks } => {
                vec![f("part", chunks * 2 * cols, R), f("dgamma", cols, W), f("dbeta", cols, W)]
            }
            Op::BatchNormBackward { rows, cols, .. } => vec![
                f("x", rows * cols, R),
                f("stats", 2 * cols, R),
                f("gamma", cols, R),
                f("y", rows * cols, R),
                f("dy", rows * cols, R),
                f("dgamma", cols, R),
                f("dbeta", cols, R),
                f("dx", rows * cols, W),
            ],
            Op::Dropout { n, .. } => vec![u("counter", COUNTER_LEN, R), f("x", n, R), f("y", n, W), f("mask", n, W)],
            Op::RmsProp { n } => {
                vec![f("hyper", RMSPROP_HYPER_LEN, R), f("grad", n, R), f("param", n, RW), f("square_avg", n, RW), f("momentum_buf", n, RW)]
            }
            Op::Adam { n } => vec![f("hyper", ADAM_HYPER_LEN, R), f("grad", n, R), f("param", n, RW), f("m", n, RW), f("v", n, RW)],
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
            | Op::Adam { n }
            | Op::Dropout { n, .. } => vec![("n", n)],
            Op::SumSlices { n, slices, .. } => vec![("n", n), ("slices", slices)],
            Op::Conv2dBackwardWeightSplit { conv: c, samples } => vec![
                ("batch", c.batch),
                ("samples", samples),
                ("kernel taps x channels", c.w_len()),
                ("input elements", c.in_len()),
                ("output elements", c.out_len()),
            ],
            Op::Conv2dForward { conv: c, .. } | Op::Conv2dBackwardInput { conv: c, .. } | Op::Conv2dBackwardWeight { conv: c, .. } => vec![
                ("batch", c.batch),
                ("in_h", c.in_h),
                ("in_w", c.in_w),
                ("in_c", c.in_c),
                ("out_h", c.out_h),
                ("out_w", c.out_w),
                ("out_c", c.out_c),
                ("kh", c.kh),
                ("kw", c.kw),
                ("stride", c.stride),
                ("input elements", c.in_len()),
                ("output elements", c.out_len()),
            ],
            Op::BatchNormForward { rows, cols, .. } | Op::BatchNormBackward { rows, cols, .. } => vec![("rows", rows), ("cols", cols)],
            Op::BatchNormPartial { rows, cols, chunks }
            | Op::BatchNormStats { rows, cols, chunks, .. }
            | Op::BatchNormBackwardPartial { rows, cols, chunks, .. } => {
                vec![("rows", rows), ("cols", cols), ("chunks", chunks)]
            }
            Op::BatchNormBackwardReduce { cols, chunks } => vec![("cols", cols), ("chunks", chunks)],
            Op::BatchNormRunning { cols, .. } => vec![("cols", cols)],
            Op::ConcatCols { rows, cols_a, cols_b } | Op::SplitCols { rows, cols_a, cols_b } => {
                vec![("rows", rows), ("cols_a", cols_a), ("cols_b", cols_b)]
            }
            Op::GatherRowsU8 { rows, cols, src_rows }
            | Op::GatherRowsF32 { rows, cols, src_rows }
            | Op::GatherRowsF16 { rows, cols, src_rows } => {
                vec![("rows", rows), ("cols", cols), ("src_rows", src_rows)]
            }
            Op::LabelMix { rows, classes } | Op::LabelMixBackward { rows, classes } => vec![("rows", rows), ("classes", classes)],
            Op::ColSum { rows, cols, .. }
            | Op::SoftmaxRows { rows, cols }
            | Op::SoftmaxBackward { rows, cols }
            | Op::MeanVar { rows, cols }
            | Op::BceLogits { rows, cols, .. }
            | Op::GaussianNll { rows, cols, .. }
            | Op::Kl { rows, cols, .. } => vec![("rows", rows), ("cols", cols)],
            Op::SoftmaxCe { rows, classes, .. } | Op::WeightedRowSum { rows, classes, .. } | Op::CategoricalKl { rows, classes, .. } => {
                vec![("rows", rows), ("classes", classes)]
            }
            Op::RepeatRows { rows, cols, copies } | Op::RepeatRowsBackward { rows, cols, copies } => {
                vec![("rows", rows), ("cols", cols), ("copies", copies), ("rows * copies * cols", rows * copies * cols)]
            }
            Op::RowScale { rows, cols, .. } | Op::KlGaussians { rows, cols, .. } => vec![("rows", rows), ("cols", cols)],
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
        if let Op::Conv2dForward { conv: c, .. }
        | Op::Conv2dBackwardInput { conv: c, .. }
        | Op::Conv2dBackwardWeight { conv: c, .. }
        | Op::Conv2dBackwardWeightSplit { conv: c, .. } = self
        {
            c.check(op)?;
        }
        if let Op::BatchNormPartial { rows, chunks, .. }
        | Op::BatchNormStats { rows, chunks, .. }
        | Op::BatchNormBackwardPartial { rows, chunks, .. } = *self
        {
            if chunks != bn_chunks(rows) {
                return Err(Error::shape(
                    op,
                    format!("{rows} rows make {} chunks of {} rows (bn_chunks), not {chunks}", bn_chunks(rows), bn_chunk_rows(rows)),
                ));
            }
        }
        if let Op::Dropout { rate, .. } = self {
            if !(0.0..1.0).contains(rate) {
                return Err(Error::shape(op, format!("dropout rate {rate} must be in [0, 1)")));
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
                        format!(
                            "buffers '{}' and '{}' are views of the same storage{}; aliasing is not allowed",
                            slot.name,
                            slots[j].name,
                            if overlap { " and overlap" } else { "" }
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
