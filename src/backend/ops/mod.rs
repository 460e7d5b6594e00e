//! The kernel set, as plain data. An [`Op`] names a kernel and its static shape and
//! parameters; [`Op::slots`] lists the buffers it takes, in binding order, with their element
//! type, length and access. That list is the single contract between the CPU twin, the WGSL
//! entry point (binding `i + 1` is slot `i`, binding 0 is the parameter block) and the shape
//! checks, so a kernel call is validated the same way on both backends.
//!
//! Each kernel family lives in one file of this folder, named as its WGSL file and CPU twin
//! (`gemm`, `conv`, `elementwise`, `gather`, `reduce`, `sample`, `loss`, `mixture`,
//! `batchnorm`, `optim`, `lstm`): its slots, its `#[repr(C)]` parameter block (uploaded as is
//! by the GPU backend and checked against the WGSL struct of the same name by
//! tests/shaders_validate.rs) and its grid. WGSL bindings are named as the slots (qualified by
//! the entry point, `split_cols_a`, where two entry points of a file bind a slot differently),
//! which the same test checks together with binding order and access.
//!
//! Adding a kernel to a family: the `Op` variant and its arm in [`Op::family`]; the family
//! file's `entry`, `slots`, `dims` (and `check`) arms and its parameter block and grid in
//! `spec`; the WGSL entry point; the CPU twin and its arm in `cpu::execute`; the op in
//! tests/shaders_validate.rs's `every_op` and a GPU-vs-CPU test in tests/kernels_<family>.rs.

use crate::error::{Error, Result};

/// Declares a kernel family's parameter block: `#[repr(C)]`, `Pod`, with its [`ParamsLayout`]
/// (field names and offsets) for the contract test.
macro_rules! params {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $(pub $field: $ty),*
        }

        impl $crate::backend::ops::Params for $name {
            const LAYOUT: $crate::backend::ops::ParamsLayout = $crate::backend::ops::ParamsLayout {
                name: stringify!($name),
                fields: &[$((stringify!($field), std::mem::offset_of!($name, $field))),*],
                size: std::mem::size_of::<$name>(),
            };
        }
    };
}

mod act;
pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod gather;
pub mod gemm;
pub mod loss;
pub mod lstm;
pub mod mixture;
pub mod optim;
pub mod reduce;
pub mod sample;

pub use act::Act;
pub use batchnorm::{bn_chunk_rows, bn_chunks};
pub use conv::{conv_weight_split_samples, Conv2d, Padding, MAX_KERNEL, MAX_STRIDE};
pub use gemm::{vec4_fits, Gemm, GemmTiles};
pub use lstm::LSTM_MAX_HIDDEN;
pub use optim::{ADAM_HYPER_LEN, RMSPROP_HYPER_LEN};
pub use sample::COUNTER_LEN;

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
    // gather.wgsl
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
    /// y[r] = one_hot(argmax x[r]) (the first of equal maxima): the forward of the
    /// straight-through estimator, whose backward is the identity (no kernel).
    OneHotArgmax {
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
    /// Variance softplus(raw) + `floor`.
    GaussianNll {
        rows: usize,
        cols: usize,
        scale: f32,
        floor: f32,
    },
    Kl {
        rows: usize,
        cols: usize,
        scale: f32,
    },
    /// Label smoothing `smoothing` (E): the target is (1 - E) one-hot(y) + E / classes.
    SoftmaxCe {
        rows: usize,
        classes: usize,
        scale: f32,
        smoothing: f32,
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
    /// KL(softmax(target) || softmax(logits)) per row, times `scale`, and its gradient w.r.t.
    /// `logits` only, scale (softmax(logits) - softmax(target)): the target is held fixed (a
    /// stop-gradient). Consistency of pi under a perturbation of the input: `logits` from the
    /// perturbed pass, `target` from the clean one.
    ConsistencyKl {
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
    /// y = (x + g) / tau with g = -ln(-ln u) standard Gumbel noise, u = (top 23 bits of word 0
    /// of draw i + 1/2) / 2^23 in (0, 1): logits perturbed for a Gumbel-softmax sample
    /// (Jang et al. 2017; softmax(y) is a relaxed one-hot). The backward is a [`Op::Scale`]
    /// by 1 / tau (the noise does not depend on x).
    Gumbel {
        n: usize,
        tau: f32,
        stream: u32,
    },
    /// A random translation and amplitude scaling of each of `rows` samples laid out
    /// [height, width, channels] (images; series windows as [steps, 1, channels]):
    /// y[r, i, j, c] = s_r x[r, i + dy_r, j + dx_r, c] (0 outside the sample), with dy_r, dx_r
    /// uniform integers in [-max_shift, max_shift] (words 0 and 1 of the shared RNG's draw r;
    /// dx_r = 0 when width is 1) and s_r = 1 + scale N(0, 1) (words 2 and 3). The perturbation
    /// of the consistency term; no gradient (its input is data).
    ShiftScale {
        rows: usize,
        height: usize,
        width: usize,
        channels: usize,
        max_shift: u32,
        scale: f32,
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

fn f(name: &'static str, len: usize, access: Access) -> Slot {
    Slot { name, dtype: DType::F32, len, access }
}
fn u(name: &'static str, len: usize, access: Access) -> Slot {
    Slot { name, dtype: DType::U32, len, access }
}

/// What one kernel family (one file of this folder, one WGSL file) knows about each of its
/// kernels. `Op` dispatches to it through [`Op::family`], so adding a kernel to a family
/// touches the `Op` enum, `Op::family` and that family's file.
pub trait KernelFamily: Sync {
    /// The WGSL entry point, which is also the op's name (gemm, softmax_ce, ...), so kernel,
    /// CPU twin and test share it.
    fn entry(&self, op: &Op) -> &'static str;
    /// The buffers the kernel takes, in binding order (binding `i + 1` is slot `i`).
    fn slots(&self, op: &Op) -> Vec<Slot>;
    /// Dimensions that must be at least 1 (and fit 32-bit indexing).
    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)>;
    /// Checks beyond the dimensions and buffers (supported geometry, parameter ranges).
    fn check(&self, _op: &Op) -> Result<()> {
        Ok(())
    }
    /// The GPU launch: file, entry point, pipeline constants, parameter block and grid.
    /// `tiles` overrides the GEMM / convolution tiling.
    fn spec(&self, op: &Op, tiles: Option<GemmTiles>) -> KernelSpec;
}

/// Name, field offsets and size of a parameter block, for the check against the WGSL struct
/// of the same name (tests/shaders_validate.rs).
#[derive(Clone, Copy, Debug)]
pub struct ParamsLayout {
    pub name: &'static str,
    pub fields: &'static [(&'static str, usize)],
    pub size: usize,
}

/// A `#[repr(C)]` parameter block, uploaded as is to binding 0 (declare one with `params!`).
pub trait Params: bytemuck::Pod {
    const LAYOUT: ParamsLayout;
}

/// One GPU launch of an op.
pub struct KernelSpec {
    pub file: &'static str,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, f64)>,
    /// The bytes of the family's parameter block (exactly its `size_of`).
    pub params: Vec<u8>,
    pub params_layout: ParamsLayout,
    pub grid: Grid,
}

impl KernelSpec {
    pub fn new<P: Params>(file: &'static str, entry: &'static str, params: P, grid: Grid) -> Self {
        KernelSpec { file, entry, constants: Vec::new(), params: bytemuck::bytes_of(&params).to_vec(), params_layout: P::LAYOUT, grid }
    }
    pub fn constants(mut self, constants: Vec<(&'static str, f64)>) -> Self {
        self.constants = constants;
        self
    }
}

pub enum Grid {
    /// A flat count of workgroups; the shader recovers the index from a 2-D grid.
    Flat(usize),
    /// An explicit (x, y) grid.
    Xy(u32, u32),
}

impl Op {
    /// The family that holds this op's slots, parameter block and grid.
    pub fn family(&self) -> &'static dyn KernelFamily {
        match self {
            Op::Gemm(_) => &gemm::GemmFamily,
            Op::ActForward { .. }
            | Op::ActBackward { .. }
            | Op::Add { .. }
            | Op::Mul { .. }
            | Op::Scale { .. }
            | Op::Axpy { .. }
            | Op::Fill { .. }
            | Op::ConcatCols { .. }
            | Op::SplitCols { .. }
            | Op::LabelMix { .. }
            | Op::LabelMixBackward { .. }
            | Op::OneHotArgmax { .. }
            | Op::SumSlices { .. } => &elementwise::Elementwise,
            Op::GatherRowsU8 { .. } | Op::GatherRowsF32 { .. } | Op::GatherRowsF16 { .. } => &gather::Gather,
            Op::ColSum { .. } | Op::SoftmaxRows { .. } | Op::SoftmaxBackward { .. } | Op::MeanVar { .. } => &reduce::Reduce,
            Op::RandomBits { .. }
            | Op::RandomNormal { .. }
            | Op::Reparam { .. }
            | Op::ReparamBackward { .. }
            | Op::Dropout { .. }
            | Op::Gumbel { .. }
            | Op::ShiftScale { .. } => &sample::Sample,
            Op::BceLogits { .. } | Op::GaussianNll { .. } | Op::Kl { .. } | Op::SoftmaxCe { .. } => &loss::Loss,
            Op::RepeatRows { .. }
            | Op::RepeatRowsBackward { .. }
            | Op::RowScale { .. }
            | Op::WeightedRowSum { .. }
            | Op::CategoricalKl { .. }
            | Op::ConsistencyKl { .. }
            | Op::KlGaussians { .. } => &mixture::Mixture,
            Op::Conv2dForward { .. }
            | Op::Conv2dBackwardInput { .. }
            | Op::Conv2dBackwardWeight { .. }
            | Op::Conv2dBackwardWeightSplit { .. } => &conv::ConvFamily,
            Op::BatchNormPartial { .. }
            | Op::BatchNormStats { .. }
            | Op::BatchNormRunning { .. }
            | Op::BatchNormForward { .. }
            | Op::BatchNormBackwardPartial { .. }
            | Op::BatchNormBackwardReduce { .. }
            | Op::BatchNormBackward { .. } => &batchnorm::BatchNorm,
            Op::RmsProp { .. } | Op::Adam { .. } => &optim::Optim,
            Op::LstmForward { .. } | Op::LstmBackward { .. } => &lstm::Lstm,
        }
    }

    /// The row of a `--profile` report this launch counts in: the kernel's name, GEMMs by
    /// shape (M x N x K, transposes, bias).
    pub fn profile_key(&self) -> String {
        match self {
            Op::Gemm(g) => format!(
                "gemm {}x{}x{}{}{}",
                g.m,
                g.n,
                g.k,
                if g.trans_a {
                    " TN"
                } else if g.trans_b {
                    " NT"
                } else {
                    ""
                },
                if g.bias { " +bias" } else { "" }
            ),
            op => op.name().to_string(),
        }
    }

    /// The kernel's name: its WGSL entry point.
    pub fn name(&self) -> &'static str {
        self.family().entry(self)
    }

    /// The buffers this kernel takes, in binding order.
    pub fn slots(&self) -> Vec<Slot> {
        self.family().slots(self)
    }

    /// The GPU launch (`tiles`: GEMM / convolution tiling override).
    pub fn spec(&self, tiles: Option<GemmTiles>) -> KernelSpec {
        self.family().spec(self, tiles)
    }

    /// Checks the buffers against [`Op::slots`]: count, element type, length, and that no
    /// buffer is bound twice (both backends forbid aliasing a written buffer).
    pub fn check<B: super::BufferLike>(&self, bufs: &[&B]) -> Result<()> {
        let op = self.name();
        for (dim, v) in self.family().dims(self) {
            if v == 0 {
                return Err(Error::shape(op, format!("dimension {dim} is 0; every dimension must be at least 1")));
            }
            if v > u32::MAX as usize / 2 {
                return Err(Error::shape(op, format!("dimension {dim} = {v} is too large for 32-bit indexing")));
            }
        }
        self.family().check(self)?;
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
