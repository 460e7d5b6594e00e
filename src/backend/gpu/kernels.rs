//! One thin wrapper per WGSL entry point: which file and entry point an [`Op`] runs, its
//! pipeline constants, its parameter block and its grid. The buffers are bound in the order of
//! [`Op::slots`] (binding i + 1 = slot i).

use crate::backend::{Act, Op};

/// Shared activation functions, prepended to the files of the kernels with a fused activation.
pub const ACTIVATION: &str = include_str!("../../../shaders/activation.wgsl");
pub const GEMM: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/gemm.wgsl"));
pub const GEMM_VEC4: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/gemm_vec4.wgsl"));
pub const ELEMENTWISE: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/elementwise.wgsl"));
pub const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
pub const SAMPLE: &str = include_str!("../../../shaders/sample.wgsl");
pub const LOSS: &str = include_str!("../../../shaders/loss.wgsl");
pub const OPTIM: &str = include_str!("../../../shaders/optim.wgsl");
pub const CONV: &str = include_str!("../../../shaders/conv.wgsl");
pub const BATCHNORM: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/batchnorm.wgsl"));
pub const LSTM: &str = include_str!("../../../shaders/lstm.wgsl");
pub const MIXTURE: &str = include_str!("../../../shaders/mixture.wgsl");

/// Every shader module, by file name, as compiled (with its prelude), for validation and the
/// pipeline cache.
pub const SHADERS: [(&str, &str); 11] = [
    ("conv.wgsl", CONV),
    ("batchnorm.wgsl", BATCHNORM),
    ("gemm.wgsl", GEMM),
    ("gemm_vec4.wgsl", GEMM_VEC4),
    ("elementwise.wgsl", ELEMENTWISE),
    ("reduce.wgsl", REDUCE),
    ("sample.wgsl", SAMPLE),
    ("loss.wgsl", LOSS),
    ("optim.wgsl", OPTIM),
    ("lstm.wgsl", LSTM),
    ("mixture.wgsl", MIXTURE),
];

/// GEMM tiling: threads per workgroup along M and N (each thread computes 4 x 4 outputs), the
/// depth of the K slab staged through workgroup memory, and whether the vec4 kernel
/// (gemm_vec4.wgsl) may be used when the shape allows it (see [`vec4_fits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GemmTiles {
    pub threads_m: u32,
    pub threads_n: u32,
    pub tile_k: u32,
    #[serde(default)]
    pub vec4: bool,
    /// With the vec4 kernel: 8 x 8 outputs per thread instead of 4 x 4 (tiles twice as large
    /// along M and N, twice the FMAs per workgroup-memory read).
    #[serde(default)]
    pub wide: bool,
}

impl GemmTiles {
    pub const LARGE: GemmTiles = GemmTiles { threads_m: 16, threads_n: 16, tile_k: 16, vec4: true, wide: false };
    pub const SMALL: GemmTiles = GemmTiles { threads_m: 8, threads_n: 8, tile_k: 16, vec4: true, wide: false };

    /// Large tiles unless the output is too small to fill a few dozen workgroups with them.
    /// Used when no tuning of the adapter ([`crate::backend::gpu::tune`]) covers the shape.
    pub fn choose(m: usize, n: usize) -> GemmTiles {
        let large_blocks = m.div_ceil(64) * n.div_ceil(64);
        if large_blocks >= 32 {
            Self::LARGE
        } else {
            Self::SMALL
        }
    }

    /// The configurations the tuner tries: every one fits WebGPU's default limits (256
    /// invocations, 16 KiB of workgroup memory).
    pub fn candidates() -> Vec<GemmTiles> {
        let mut v = Vec::new();
        for (threads_m, threads_n) in [(16, 16), (8, 8), (8, 16), (16, 8), (4, 16)] {
            for tile_k in [8, 16, 32] {
                for vec4 in [false, true] {
                    v.push(GemmTiles { threads_m, threads_n, tile_k, vec4, wide: false });
                }
                if (threads_m, threads_n) != (4, 16) {
                    v.push(GemmTiles { threads_m, threads_n, tile_k, vec4: true, wide: true });
                }
            }
        }
        v
    }

    /// Workgroup memory the kernel stages (tiles of A and B), bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        4 * self.tile_k * 4 * (self.threads_m + self.threads_n) * self.rb()
    }

    /// Register blocks per thread and dimension of the vec4 kernel (1: 4x4 outputs, 2: 8x8).
    pub fn rb(&self) -> u32 {
        if self.vec4 && self.wide {
            2
        } else {
            1
        }
    }
}

/// Whether a GEMM of this shape can run the vec4 kernel: every contiguous dimension a multiple
/// of 4 (C and a non-transposed B along N; A along K, or along M when transposed; a
/// transposed B along K).
pub fn vec4_fits(g: &crate::backend::Gemm) -> bool {
    g.n % 4 == 0 && if g.trans_a { g.m % 4 == 0 } else { g.k % 4 == 0 } && (!g.trans_b || g.k % 4 == 0)
}

pub struct KernelSpec {
    pub file: &'static str,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, f64)>,
    pub params: [u32; PARAM_WORDS],
    /// Number of workgroups needed (laid out as a 2-D grid by the caller) or an explicit grid.
    pub grid: Grid,
}

pub enum Grid {
    /// A flat count of workgroups; the shader recovers the index from a 2-D grid.
    Flat(usize),
    /// An explicit (x, y) grid.
    Xy(u32, u32),
}

/// Words of the uniform parameter block every kernel gets at binding 0.
pub const PARAM_WORDS: usize = 16;

fn params(words: &[u32]) -> [u32; PARAM_WORDS] {
    let mut p = [0u32; PARAM_WORDS];
    p[..words.len()].copy_from_slice(words);
    p
}

fn act_const(act: Act) -> Vec<(&'static str, f64)> {
    vec![("ACT", act as u32 as f64)]
}

fn bool_c(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

pub fn spec(op: &Op, tiles_override: Option<GemmTiles>) -> KernelSpec {
    let flat256 = |n: usize| Grid::Flat(n.div_ceil(256));
    let u = |x: usize| x as u32;
    let fl = |x: f32| x.to_bits();
    let ew = |entry: &'static str, n: usize, alpha: f32, constants: Vec<(&'static str, f64)>| KernelSpec {
        file: "elementwise.wgsl",
        entry,
        constants,
        params: params(&[u(n), 0, 0, 0, fl(alpha)]),
        grid: flat256(n),
    };
    match *op {
        Op::Gemm(g) => {
            let t = tiles_override.unwrap_or_else(|| GemmTiles::choose(g.m, g.n));
            let vec4 = t.vec4 && t.tile_k % 4 == 0 && vec4_fits(&g);
            let rb = if vec4 { t.rb() } else { 1 };
            let (tm, tn) = ((t.threads_m * 4 * rb) as usize, (t.threads_n * 4 * rb) as usize);
            let mut constants = vec![
                ("TRANS_A", bool_c(g.trans_a)),
                ("TRANS_B", bool_c(g.trans_b)),
                ("HAS_BIAS", bool_c(g.bias)),
                ("ACCUMULATE", bool_c(g.beta != 0.0)),
                ("ACT", g.act as u32 as f64),
                ("THREADS_M", t.threads_m as f64),
                ("THREADS_N", t.threads_n as f64),
                ("TILE_K", t.tile_k as f64),
            ];
            if vec4 {
                constants.push(("RB", rb as f64));
            }
            KernelSpec {
                file: if vec4 { "gemm_vec4.wgsl" } else { "gemm.wgsl" },
                entry: "gemm",
                constants,
                params: params(&[u(g.m), u(g.n), u(g.k), fl(g.alpha), fl(g.beta)]),
                grid: Grid::Xy(g.n.div_ceil(tn) as u32, g.m.div_ceil(tm) as u32),
            }
        }
        Op::ActForward { n, act } => ew("act_forward", n, 0.0, act_const(act)),
        Op::ActBackward { n, act } => ew("act_backward", n, 0.0, act_const(act)),
        Op::Add { n } => ew("add", n, 0.0, vec![]),
        Op::Mul { n } => ew("mul", n, 0.0, vec![]),
        Op::Scale { n, alpha } => ew("scale", n, alpha, vec![]),
        Op::Axpy { n, alpha } => ew("axpy", n, alpha, vec![]),
        Op::Fill { n, value } => ew("fill", n, value, vec![]),
        Op::ConcatCols { rows, cols_a, cols_b } | Op::SplitCols { rows, cols_a, cols_b } => KernelSpec {
            file: "elementwise.wgsl",
            entry: if matches!(op, Op::ConcatCols { .. }) { "concat_cols" } else { "split_cols" },
            constants: vec![],
            params: params(&[0, u(rows), u(cols_a), u(cols_b), 0]),
            grid: flat256(rows * (cols_a + cols_b)),
        },
        Op::GatherRowsU8 { rows, cols, src_rows }
        | Op::GatherRowsF32 { rows, cols, src_rows }
        | Op::GatherRowsF16 { rows, cols, src_rows } => KernelSpec {
            file: "elementwise.wgsl",
            entry: match op {
                Op::GatherRowsU8 { .. } => "gather_rows_u8",
                Op::GatherRowsF32 { .. } => "gather_rows_f32",
                _ => "gather_rows_f16",
            },
            constants: vec![],
            params: params(&[u(rows * cols), u(rows), u(cols), u(src_rows), 0]),
            grid: flat256(rows * cols),
        },
        Op::LabelMix { rows, classes } | Op::LabelMixBackward { rows, classes } => KernelSpec {
            file: "elementwise.wgsl",
            entry: if matches!(op, Op::LabelMix { .. }) { "label_mix" } else { "label_mix_backward" },
            constants: vec![],
            params: params(&[u(rows * classes), u(rows), u(classes), 0, 0]),
            grid: flat256(rows * classes),
        },
        Op::SumSlices { n, slices, accumulate } => KernelSpec {
            file: "elementwise.wgsl",
            entry: "sum_slices",
            constants: vec![],
            params: params(&[u(n), 0, u(slices), accumulate as u32, 0]),
            grid: flat256(n),
        },
        Op::ColSum { rows, cols, accumulate } => KernelSpec {
            file: "reduce.wgsl",
            entry: "col_sum",
            constants: vec![("ACCUMULATE", bool_c(accumulate))],
            params: params(&[u(rows), u(cols)]),
            grid: Grid::Flat(cols.div_ceil(32)),
        },
        Op::MeanVar { rows, cols } => KernelSpec {
            file: "reduce.wgsl",
            entry: "mean_var",
            constants: vec![],
            params: params(&[u(rows), u(cols)]),
            grid: Grid::Flat(cols.div_ceil(32)),
        },
        Op::SoftmaxRows { rows, cols } | Op::SoftmaxBackward { rows, cols } => KernelSpec {
            file: "reduce.wgsl",
            entry: if matches!(op, Op::SoftmaxRows { .. }) { "softmax_rows" } else { "softmax_backward" },
            constants: vec![],
            params: params(&[u(rows), u(cols)]),
            grid: Grid::Flat(rows.div_ceil(64)),
        },
        Op::RandomBits { n, stream } | Op::RandomNormal { n, stream } | Op::Reparam { n, stream } => KernelSpec {
            file: "sample.wgsl",
            entry: match op {
                Op::RandomBits { .. } => "random_bits",
                Op::RandomNormal { .. } => "random_normal",
                _ => "reparam",
            },
            constants: vec![],
            params: params(&[u(n), stream]),
            grid: flat256(n),
        },
        Op::ReparamBackward { n } => {
            KernelSpec { file: "sample.wgsl", entry: "reparam_backward", constants: vec![], params: params(&[u(n), 0]), grid: flat256(n) }
        }
        Op::BceLogits { rows, cols, scale } | Op::GaussianNll { rows, cols, scale } | Op::Kl { rows, cols, scale } => KernelSpec {
            file: "loss.wgsl",
            entry: match op {
                Op::BceLogits { .. } => "bce_logits",
                Op::GaussianNll { .. } => "gaussian_nll",
                _ => "kl_normal",
            },
            constants: vec![],
            params: params(&[u(rows), u(cols), fl(scale)]),
            grid: Grid::Flat(rows),
        },
        Op::SoftmaxCe { rows, classes, scale } => KernelSpec {
            file: "loss.wgsl",
            entry: "softmax_ce",
            constants: vec![],
            params: params(&[u(rows), u(classes), fl(scale)]),
            grid: Grid::Flat(rows.div_ceil(64)),
        },
        Op::RepeatRows { rows, cols, copies } | Op::RepeatRowsBackward { rows, cols, copies } => KernelSpec {
            file: "mixture.wgsl",
            entry: if matches!(op, Op::RepeatRows { .. }) { "repeat_rows" } else { "repeat_rows_backward" },
            constants: vec![],
            params: params(&[u(rows), u(cols), u(copies), 0]),
            grid: flat256(if matches!(op, Op::RepeatRows { .. }) { rows * copies * cols } else { rows * cols }),
        },
        Op::RowScale { rows, cols, alpha } => KernelSpec {
            file: "mixture.wgsl",
            entry: "row_scale",
            constants: vec![],
            params: params(&[u(rows), u(cols), 0, fl(alpha)]),
            grid: flat256(rows * cols),
        },
        Op::WeightedRowSum { rows, classes, scale } | Op::CategoricalKl { rows, classes, scale } => KernelSpec {
            file: "mixture.wgsl",
            entry: if matches!(op, Op::WeightedRowSum { .. }) { "weighted_row_sum" } else { "categorical_kl" },
            constants: vec![],
            params: params(&[u(rows), u(classes), 0, fl(scale)]),
            grid: Grid::Flat(rows.div_ceil(64)),
        },
        Op::KlGaussians { rows, cols, scale } => KernelSpec {
            file: "mixture.wgsl",
            entry: "kl_gaussians",
            constants: vec![],
            params: params(&[u(rows), u(cols), 0, fl(scale)]),
            grid: Grid::Flat(rows),
        },
        Op::Conv2dForward { conv: c, .. }
        | Op::Conv2dBackwardInput { conv: c, .. }
        | Op::Conv2dBackwardWeight { conv: c, .. }
        | Op::Conv2dBackwardWeightSplit { conv: c, .. } => {
            // the implicit GEMM's m x n x k (split: k values per run in the last word, one row
            // of tiles per run)
            let taps = c.kh * c.kw;
            let (mut runs, mut k_run) = (1, 0);
            let (entry, m, n, k, has_bias, acc) = match *op {
                Op::Conv2dForward { bias, .. } => ("conv2d_forward", c.batch * c.out_h * c.out_w, c.out_c, taps * c.in_c, bias, false),
                Op::Conv2dBackwardInput { bias, .. } => {
                    ("conv2d_backward_input", c.batch * c.in_h * c.in_w, c.in_c, taps * c.out_c, bias, false)
                }
                Op::Conv2dBackwardWeightSplit { samples, .. } => {
                    (runs, k_run) = (c.batch.div_ceil(samples), samples * c.out_h * c.out_w);
                    ("conv2d_backward_weight_split", taps * c.in_c, c.out_c, c.batch * c.out_h * c.out_w, false, false)
                }
                Op::Conv2dBackwardWeight { accumulate, .. } => {
                    ("conv2d_backward_weight", taps * c.in_c, c.out_c, c.batch * c.out_h * c.out_w, false, accumulate)
                }
                _ => unreachable!(),
            };
            let t = tiles_override.unwrap_or_else(|| GemmTiles::choose(m, n));
            let (tm, tn) = (t.threads_m as usize * 4, t.threads_n as usize * 4);
            KernelSpec {
                file: "conv.wgsl",
                entry,
                constants: vec![
                    ("HAS_BIAS", bool_c(has_bias)),
                    ("ACCUMULATE", bool_c(acc)),
                    ("THREADS_M", t.threads_m as f64),
                    ("THREADS_N", t.threads_n as f64),
                    ("TILE_K", t.tile_k as f64),
                ],
                params: params(&[
                    u(c.batch),
                    u(c.in_h),
                    u(c.in_w),
                    u(c.in_c),
                    u(c.out_h),
                    u(c.out_w),
                    u(c.out_c),
                    u(c.kh),
                    u(c.kw),
                    u(c.stride),
                    u(c.pad_h),
                    u(c.pad_w),
                    u(m),
                    u(n),
                    u(k),
                    u(k_run),
                ]),
                grid: Grid::Xy(n.div_ceil(tn) as u32, (m.div_ceil(tm) * runs) as u32),
            }
        }
        Op::BatchNormPartial { rows, cols, chunks } => KernelSpec {
            file: "batchnorm.wgsl",
            entry: "batch_norm_partial",
            constants: vec![],
            params: params(&[u(rows), u(cols), 0, 0, u(chunks), u(crate::backend::ops::bn_chunk_rows(rows))]),
            grid: Grid::Xy(cols.div_ceil(32) as u32, chunks as u32),
        },
        Op::BatchNormStats { rows, cols, chunks, momentum, eps } => KernelSpec {
            file: "batchnorm.wgsl",
            entry: "batch_norm_stats",
            constants: vec![],
            params: params(&[u(rows), u(cols), fl(momentum), fl(eps), u(chunks), u(crate::backend::ops::bn_chunk_rows(rows))]),
            grid: flat256(cols),
        },
        Op::BatchNormBackwardPartial { rows, cols, chunks, act } => KernelSpec {
            file: "batchnorm.wgsl",
            entry: "batch_norm_backward_partial",
            constants: act_const(act),
            params: params(&[u(rows), u(cols), 0, 0, u(chunks), u(crate::backend::ops::bn_chunk_rows(rows))]),
            grid: Grid::Xy(cols.div_ceil(32) as u32, chunks as u32),
        },
        Op::BatchNormBackwardReduce { cols, chunks } => KernelSpec {
            file: "batchnorm.wgsl",
            entry: "batch_norm_backward_reduce",
            constants: vec![],
            params: params(&[0, u(cols), 0, 0, u(chunks), 0]),
            grid: flat256(cols),
        },
        Op::BatchNormRunning { cols, eps } => KernelSpec {
            file: "batchnorm.wgsl",
            entry: "batch_norm_running",
            constants: vec![],
            params: params(&[0, u(cols), 0, fl(eps)]),
            grid: flat256(cols),
        },
        Op::BatchNormForward { rows, cols, act } => KernelSpec {
            file: "batchnorm.wgsl",
            entry: "batch_norm_forward",
            constants: act_const(act),
            params: params(&[u(rows), u(cols)]),
            grid: flat256(rows * cols),
        },
        Op::BatchNormBackward { rows, cols, act } => KernelSpec {
            file: "batchnorm.wgsl",
            entry: "batch_norm_backward",
            constants: act_const(act),
            params: params(&[u(rows), u(cols)]),
            grid: flat256(rows * cols),
        },
        Op::Dropout { n, rate, stream } => KernelSpec {
            file: "sample.wgsl",
            entry: "dropout",
            constants: vec![],
            params: params(&[u(n), stream, fl(rate)]),
            grid: flat256(n),
        },
        Op::RmsProp { n } | Op::Adam { n } => KernelSpec {
            file: "optim.wgsl",
            entry: if matches!(op, Op::RmsProp { .. }) { "rmsprop" } else { "adam" },
            constants: vec![],
            params: params(&[u(n)]),
            grid: flat256(n),
        },
        // One workgroup per batch row; HIDDEN sizes the workgroup memory (a pipeline per size).
        Op::LstmForward { batch, steps, hidden } | Op::LstmBackward { batch, steps, hidden } => KernelSpec {
            file: "lstm.wgsl",
            entry: if matches!(op, Op::LstmForward { .. }) { "lstm_forward" } else { "lstm_backward" },
            constants: vec![("HIDDEN", hidden as f64)],
            params: params(&[u(batch), u(steps), u(hidden)]),
            grid: Grid::Flat(batch),
        },
    }
}
