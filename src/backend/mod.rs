//! The `Backend` trait: allocate, upload, download, and run kernels.
//!
//! A kernel call is an [`Op`] (plain data) plus its buffers. `prepare` turns that into a
//! backend-specific launch once (on the GPU: pipeline, parameter block and bind group), and
//! `run` executes a list of prepared launches (on the GPU: one command buffer, one submission).
//! The graph executor prepares a whole training step once and replays it; tests and one-off
//! calls use the [`Kernels`] methods, which prepare and run a single op.

pub mod cpu;
pub mod gpu;
pub mod ops;
pub mod timing;

pub use ops::{
    Access, Act, Conv2d, DType, Gemm, GemmTiles, KernelFamily, KernelSpec, Op, Padding, Params, Slot, ADAM_HYPER_LEN, COUNTER_LEN,
    LSTM_MAX_HIDDEN, MAX_KERNEL, MAX_STRIDE, RMSPROP_HYPER_LEN, UNLABELED,
};

use crate::error::Result;

/// What the kernels need to know of a buffer.
pub trait BufferLike {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn dtype(&self) -> DType;
    /// Identity of the underlying storage (views of one buffer share it); unique for the
    /// life of the process. Used to reject aliasing.
    fn id(&self) -> u64;
    /// First element of this view within its storage (0 for a whole buffer).
    fn offset(&self) -> usize {
        0
    }
}

pub trait Backend {
    type Buf: BufferLike + Clone;
    type Launch;

    /// Human-readable description: "cpu" or the adapter's name and API.
    fn describe(&self) -> String;

    /// A zero-filled buffer of `len` elements.
    fn alloc(&self, len: usize, dtype: DType) -> Result<Self::Buf>;
    fn write_f32(&self, buf: &Self::Buf, data: &[f32]) -> Result<()>;
    fn write_u32(&self, buf: &Self::Buf, data: &[u32]) -> Result<()>;
    fn read_f32(&self, buf: &Self::Buf) -> Result<Vec<f32>>;
    fn read_u32(&self, buf: &Self::Buf) -> Result<Vec<u32>>;

    /// A view of `len` elements of `buf` starting at element `offset` (a multiple of
    /// [`Backend::view_alignment`]). Views let all parameters live in one flat buffer that a
    /// single optimizer dispatch updates, while each layer binds its own weights.
    fn view(&self, buf: &Self::Buf, offset: usize, len: usize) -> Result<Self::Buf>;
    /// Alignment, in elements, of view offsets (the GPU's storage offset alignment).
    fn view_alignment(&self) -> usize;

    /// A one-element buffer to bind in optional slots (e.g. GEMM without bias).
    fn placeholder(&self) -> &Self::Buf;

    /// Validates shapes and builds everything the launch needs, once.
    fn prepare(&self, op: &Op, bufs: &[&Self::Buf]) -> Result<Self::Launch>;
    /// Runs launches in order; on the GPU as one submission (returns without waiting).
    fn run(&self, launches: &[&Self::Launch]) -> Result<()>;
    /// Waits until all submitted work is finished.
    fn sync(&self) -> Result<()>;

    fn upload_f32(&self, data: &[f32]) -> Result<Self::Buf> {
        let b = self.alloc(data.len(), DType::F32)?;
        self.write_f32(&b, data)?;
        Ok(b)
    }
    fn upload_u32(&self, data: &[u32]) -> Result<Self::Buf> {
        let b = self.alloc(data.len(), DType::U32)?;
        self.write_u32(&b, data)?;
        Ok(b)
    }
    /// Prepares and runs one op.
    fn launch(&self, op: Op, bufs: &[&Self::Buf]) -> Result<()> {
        let l = self.prepare(&op, bufs)?;
        self.run(&[&l])
    }
}

/// One method per kernel, for direct use (tests, benchmarks, small programs). Each validates
/// its shapes and runs immediately.
pub trait Kernels: Backend {
    fn gemm(&self, g: Gemm, a: &Self::Buf, b: &Self::Buf, bias: Option<&Self::Buf>, c: &Self::Buf) -> Result<()> {
        let g = Gemm { bias: bias.is_some(), ..g };
        self.launch(Op::Gemm(g), &[a, b, bias.unwrap_or(self.placeholder()), c])
    }
    fn act_forward(&self, act: Act, x: &Self::Buf, y: &Self::Buf) -> Result<()> {
        self.launch(Op::ActForward { n: x.len(), act }, &[x, y])
    }
    fn act_backward(&self, act: Act, y: &Self::Buf, dy: &Self::Buf, dx: &Self::Buf) -> Result<()> {
        self.launch(Op::ActBackward { n: y.len(), act }, &[y, dy, dx])
    }
    fn add(&self, a: &Self::Buf, b: &Self::Buf, c: &Self::Buf) -> Result<()> {
        self.launch(Op::Add { n: a.len() }, &[a, b, c])
    }
    fn mul(&self, a: &Self::Buf, b: &Self::Buf, c: &Self::Buf) -> Result<()> {
        self.launch(Op::Mul { n: a.len() }, &[a, b, c])
    }
    fn scale(&self, alpha: f32, x: &Self::Buf, y: &Self::Buf) -> Result<()> {
        self.launch(Op::Scale { n: x.len(), alpha }, &[x, y])
    }
    fn axpy(&self, alpha: f32, x: &Self::Buf, y: &Self::Buf) -> Result<()> {
        self.launch(Op::Axpy { n: x.len(), alpha }, &[x, y])
    }
    fn fill(&self, value: f32, y: &Self::Buf) -> Result<()> {
        self.launch(Op::Fill { n: y.len(), value }, &[y])
    }
    fn concat_cols(&self, rows: usize, a: &Self::Buf, b: &Self::Buf, c: &Self::Buf) -> Result<()> {
        let (cols_a, cols_b) = (a.len() / rows.max(1), b.len() / rows.max(1));
        self.launch(Op::ConcatCols { rows, cols_a, cols_b }, &[a, b, c])
    }
    fn split_cols(&self, rows: usize, c: &Self::Buf, a: &Self::Buf, b: &Self::Buf) -> Result<()> {
        let (cols_a, cols_b) = (a.len() / rows.max(1), b.len() / rows.max(1));
        self.launch(Op::SplitCols { rows, cols_a, cols_b }, &[c, a, b])
    }
    /// y[r] = one_hot(argmax x[r]) over `classes` columns.
    fn one_hot_argmax(&self, rows: usize, classes: usize, x: &Self::Buf, y: &Self::Buf) -> Result<()> {
        self.launch(Op::OneHotArgmax { rows, classes }, &[x, y])
    }
    fn col_sum(&self, rows: usize, cols: usize, accumulate: bool, x: &Self::Buf, out: &Self::Buf) -> Result<()> {
        self.launch(Op::ColSum { rows, cols, accumulate }, &[x, out])
    }
    fn softmax_rows(&self, rows: usize, cols: usize, x: &Self::Buf, y: &Self::Buf) -> Result<()> {
        self.launch(Op::SoftmaxRows { rows, cols }, &[x, y])
    }
    fn softmax_backward(&self, rows: usize, cols: usize, y: &Self::Buf, dy: &Self::Buf, dx: &Self::Buf) -> Result<()> {
        self.launch(Op::SoftmaxBackward { rows, cols }, &[y, dy, dx])
    }
    fn mean_var(&self, rows: usize, cols: usize, x: &Self::Buf, mean: &Self::Buf, var: &Self::Buf) -> Result<()> {
        self.launch(Op::MeanVar { rows, cols }, &[x, mean, var])
    }
    fn random_bits(&self, stream: u32, counter: &Self::Buf, out: &Self::Buf) -> Result<()> {
        self.launch(Op::RandomBits { n: out.len(), stream }, &[counter, out])
    }
    fn random_normal(&self, stream: u32, counter: &Self::Buf, out: &Self::Buf) -> Result<()> {
        self.launch(Op::RandomNormal { n: out.len(), stream }, &[counter, out])
    }
    #[allow(clippy::too_many_arguments)]
    fn reparam(&self, stream: u32, counter: &Self::Buf, mu: &Self::Buf, logvar: &Self::Buf, z: &Self::Buf, eps: &Self::Buf) -> Result<()> {
        self.launch(Op::Reparam { n: mu.len(), stream }, &[counter, mu, logvar, z, eps])
    }
    fn gumbel(&self, stream: u32, tau: f32, counter: &Self::Buf, x: &Self::Buf, y: &Self::Buf) -> Result<()> {
        self.launch(Op::Gumbel { n: x.len(), tau, stream }, &[counter, x, y])
    }
    fn reparam_backward(&self, dz: &Self::Buf, logvar: &Self::Buf, eps: &Self::Buf, dmu: &Self::Buf, dlogvar: &Self::Buf) -> Result<()> {
        self.launch(Op::ReparamBackward { n: dz.len() }, &[dz, logvar, eps, dmu, dlogvar])
    }
    #[allow(clippy::too_many_arguments)]
    fn bce_logits(
        &self,
        rows: usize,
        cols: usize,
        scale: f32,
        logits: &Self::Buf,
        target: &Self::Buf,
        loss: &Self::Buf,
        dlogits: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::BceLogits { rows, cols, scale }, &[logits, target, loss, dlogits])
    }
    #[allow(clippy::too_many_arguments)]
    fn gaussian_nll(
        &self,
        rows: usize,
        cols: usize,
        scale: f32,
        floor: f32,
        mean: &Self::Buf,
        var_raw: &Self::Buf,
        target: &Self::Buf,
        loss: &Self::Buf,
        dmean: &Self::Buf,
        dvar_raw: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::GaussianNll { rows, cols, scale, floor }, &[mean, var_raw, target, loss, dmean, dvar_raw])
    }
    #[allow(clippy::too_many_arguments)]
    fn kl_normal(
        &self,
        rows: usize,
        cols: usize,
        scale: f32,
        mu: &Self::Buf,
        logvar: &Self::Buf,
        loss: &Self::Buf,
        dmu: &Self::Buf,
        dlogvar: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::Kl { rows, cols, scale }, &[mu, logvar, loss, dmu, dlogvar])
    }
    #[allow(clippy::too_many_arguments)]
    fn softmax_ce(
        &self,
        rows: usize,
        classes: usize,
        scale: f32,
        smoothing: f32,
        logits: &Self::Buf,
        labels: &Self::Buf,
        loss: &Self::Buf,
        dlogits: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::SoftmaxCe { rows, classes, scale, smoothing }, &[logits, labels, loss, dlogits])
    }
    fn repeat_rows(&self, rows: usize, cols: usize, copies: usize, x: &Self::Buf, out: &Self::Buf) -> Result<()> {
        self.launch(Op::RepeatRows { rows, cols, copies }, &[x, out])
    }
    fn repeat_rows_backward(&self, rows: usize, cols: usize, copies: usize, dout: &Self::Buf, dx: &Self::Buf) -> Result<()> {
        self.launch(Op::RepeatRowsBackward { rows, cols, copies }, &[dout, dx])
    }
    fn row_scale(&self, rows: usize, cols: usize, alpha: f32, x: &Self::Buf, w: &Self::Buf, y: &Self::Buf) -> Result<()> {
        self.launch(Op::RowScale { rows, cols, alpha }, &[x, w, y])
    }
    #[allow(clippy::too_many_arguments)]
    fn weighted_row_sum(
        &self,
        rows: usize,
        classes: usize,
        scale: f32,
        loss: &Self::Buf,
        w: &Self::Buf,
        out: &Self::Buf,
        dw: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::WeightedRowSum { rows, classes, scale }, &[loss, w, out, dw])
    }
    #[allow(clippy::too_many_arguments)]
    fn categorical_kl(
        &self,
        rows: usize,
        classes: usize,
        scale: f32,
        logits: &Self::Buf,
        log_prior: &Self::Buf,
        labels: &Self::Buf,
        loss: &Self::Buf,
        dlogits: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::CategoricalKl { rows, classes, scale }, &[logits, log_prior, labels, loss, dlogits])
    }
    /// KL(softmax(target) || softmax(logits)) per row, gradient w.r.t. `logits` (see
    /// [`Op::ConsistencyKl`]).
    #[allow(clippy::too_many_arguments)]
    fn consistency_kl(
        &self,
        rows: usize,
        classes: usize,
        scale: f32,
        logits: &Self::Buf,
        target: &Self::Buf,
        loss: &Self::Buf,
        dlogits: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::ConsistencyKl { rows, classes, scale }, &[logits, target, loss, dlogits])
    }
    /// KL between diagonal Gaussians (see [`Op::KlGaussians`]).
    #[allow(clippy::too_many_arguments)]
    fn kl_gaussians(
        &self,
        rows: usize,
        cols: usize,
        scale: f32,
        mu_q: &Self::Buf,
        logvar_q: &Self::Buf,
        mu_p: &Self::Buf,
        logvar_p: &Self::Buf,
        loss: &Self::Buf,
        dmu_q: &Self::Buf,
        dlogvar_q: &Self::Buf,
        dlogvar_p: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::KlGaussians { rows, cols, scale }, &[mu_q, logvar_q, mu_p, logvar_p, loss, dmu_q, dlogvar_q, dlogvar_p])
    }
    fn rmsprop(
        &self,
        hyper: &Self::Buf,
        grad: &Self::Buf,
        param: &Self::Buf,
        square_avg: &Self::Buf,
        momentum_buf: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::RmsProp { n: param.len() }, &[hyper, grad, param, square_avg, momentum_buf])
    }
    fn adam(&self, hyper: &Self::Buf, grad: &Self::Buf, param: &Self::Buf, m: &Self::Buf, v: &Self::Buf) -> Result<()> {
        self.launch(Op::Adam { n: param.len() }, &[hyper, grad, param, m, v])
    }
    /// The LSTM recurrence over [batch, steps] (see [`Op::LstmForward`]); `xproj` = x W_ih + b.
    #[allow(clippy::too_many_arguments)]
    fn lstm_forward(
        &self,
        batch: usize,
        steps: usize,
        hidden: usize,
        xproj: &Self::Buf,
        w_hh: &Self::Buf,
        h0: &Self::Buf,
        c0: &Self::Buf,
        h_seq: &Self::Buf,
        c_seq: &Self::Buf,
        gates: &Self::Buf,
        hprev: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::LstmForward { batch, steps, hidden }, &[xproj, w_hh, h0, c0, h_seq, c_seq, gates, hprev])
    }
    /// Backprop through time (see [`Op::LstmBackward`]).
    #[allow(clippy::too_many_arguments)]
    fn lstm_backward(
        &self,
        batch: usize,
        steps: usize,
        hidden: usize,
        gates: &Self::Buf,
        c_seq: &Self::Buf,
        c0: &Self::Buf,
        w_hh: &Self::Buf,
        dh_seq: &Self::Buf,
        dgates: &Self::Buf,
        dh0: &Self::Buf,
        dc0: &Self::Buf,
    ) -> Result<()> {
        self.launch(Op::LstmBackward { batch, steps, hidden }, &[gates, c_seq, c0, w_hh, dh_seq, dgates, dh0, dc0])
    }
}

impl<B: Backend + ?Sized> Kernels for B {}

/// Next unique buffer id (shared by both backends).
pub(crate) fn next_buffer_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
