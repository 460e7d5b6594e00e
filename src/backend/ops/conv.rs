//! 2-D convolutions as implicit GEMMs (shaders/conv.wgsl; CPU twin: cpu/conv.rs). A
//! transposed convolution runs these kernels with the roles of input and output swapped.

use super::gemm::{bool_const, GemmTiles};
use super::{f, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};
use crate::error::{Error, Result};

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

params! {
    /// The parameter block of conv.wgsl: the geometry, then the implicit GEMM's m x n x k
    /// (`k_run`: the reduction length per run of the split-K weight gradient, else 0).
    pub struct ConvParams {
        batch: u32, in_h: u32, in_w: u32, in_c: u32,
        out_h: u32, out_w: u32, out_c: u32, kh: u32,
        kw: u32, stride: u32, pad_h: u32, pad_w: u32,
        m: u32, n: u32, k: u32, k_run: u32,
    }
}

pub(super) struct ConvFamily;

fn conv_of(op: &Op) -> Conv2d {
    match *op {
        Op::Conv2dForward { conv, .. }
        | Op::Conv2dBackwardInput { conv, .. }
        | Op::Conv2dBackwardWeight { conv, .. }
        | Op::Conv2dBackwardWeightSplit { conv, .. } => conv,
        _ => unreachable!("not a convolution"),
    }
}

impl KernelFamily for ConvFamily {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::Conv2dForward { .. } => "conv2d_forward",
            Op::Conv2dBackwardInput { .. } => "conv2d_backward_input",
            Op::Conv2dBackwardWeight { .. } => "conv2d_backward_weight",
            Op::Conv2dBackwardWeightSplit { .. } => "conv2d_backward_weight_split",
            _ => unreachable!("not a convolution"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        match *op {
            Op::Conv2dForward { conv: c, bias } => {
                vec![
                    f("x", c.in_len(), Read),
                    f("w", c.w_len(), Read),
                    f("bias", if bias { c.out_c } else { 0 }, Read),
                    f("y", c.out_len(), Write),
                ]
            }
            Op::Conv2dBackwardInput { conv: c, bias } => vec![
                f("dy", c.out_len(), Read),
                f("w", c.w_len(), Read),
                f("bias", if bias { c.in_c } else { 0 }, Read),
                f("dx", c.in_len(), Write),
            ],
            Op::Conv2dBackwardWeight { conv: c, accumulate } => vec![
                f("x", c.in_len(), Read),
                f("dy", c.out_len(), Read),
                f("unused", 0, Read),
                f("dw", c.w_len(), if accumulate { ReadWrite } else { Write }),
            ],
            Op::Conv2dBackwardWeightSplit { conv: c, samples } => vec![
                f("x", c.in_len(), Read),
                f("dy", c.out_len(), Read),
                f("unused", 0, Read),
                f("part", c.batch.div_ceil(samples) * c.w_len(), Write),
            ],
            _ => unreachable!("not a convolution"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        let c = conv_of(op);
        if let Op::Conv2dBackwardWeightSplit { samples, .. } = *op {
            return vec![
                ("batch", c.batch),
                ("samples", samples),
                ("kernel taps x channels", c.w_len()),
                ("input elements", c.in_len()),
                ("output elements", c.out_len()),
            ];
        }
        vec![
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
        ]
    }

    fn check(&self, op: &Op) -> Result<()> {
        conv_of(op).check(self.entry(op))
    }

    fn spec(&self, op: &Op, tiles: Option<GemmTiles>) -> KernelSpec {
        let c = conv_of(op);
        // the implicit GEMM's m x n x k (split: k values per run in k_run, one row of tiles
        // per run)
        let taps = c.kh * c.kw;
        let (mut runs, mut k_run) = (1, 0);
        let (m, n, k, has_bias, acc) = match *op {
            Op::Conv2dForward { bias, .. } => (c.batch * c.out_h * c.out_w, c.out_c, taps * c.in_c, bias, false),
            Op::Conv2dBackwardInput { bias, .. } => (c.batch * c.in_h * c.in_w, c.in_c, taps * c.out_c, bias, false),
            Op::Conv2dBackwardWeightSplit { samples, .. } => {
                (runs, k_run) = (c.batch.div_ceil(samples), samples * c.out_h * c.out_w);
                (taps * c.in_c, c.out_c, c.batch * c.out_h * c.out_w, false, false)
            }
            Op::Conv2dBackwardWeight { accumulate, .. } => (taps * c.in_c, c.out_c, c.batch * c.out_h * c.out_w, false, accumulate),
            _ => unreachable!("not a convolution"),
        };
        let t = tiles.unwrap_or_else(|| GemmTiles::choose(m, n));
        let (tm, tn) = (t.threads_m as usize * 4, t.threads_n as usize * 4);
        let u = |x: usize| x as u32;
        let params = ConvParams {
            batch: u(c.batch),
            in_h: u(c.in_h),
            in_w: u(c.in_w),
            in_c: u(c.in_c),
            out_h: u(c.out_h),
            out_w: u(c.out_w),
            out_c: u(c.out_c),
            kh: u(c.kh),
            kw: u(c.kw),
            stride: u(c.stride),
            pad_h: u(c.pad_h),
            pad_w: u(c.pad_w),
            m: u(m),
            n: u(n),
            k: u(k),
            k_run: u(k_run),
        };
        let grid = Grid::Xy(n.div_ceil(tn) as u32, (m.div_ceil(tm) * runs) as u32);
        KernelSpec::new("conv.wgsl", self.entry(op), params, grid).constants(vec![
            ("HAS_BIAS", bool_const(has_bias)),
            ("ACCUMULATE", bool_const(acc)),
            ("THREADS_M", t.threads_m as f64),
            ("THREADS_N", t.threads_n as f64),
            ("TILE_K", t.tile_k as f64),
        ])
    }
}
