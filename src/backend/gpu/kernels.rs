//! The WGSL sources as compiled (with their prelude). Which file and entry point an [`Op`]
//! runs, its pipeline constants, its parameter block and its grid are its kernel family's
//! (`backend::ops::*`, see [`Op::spec`]). The buffers are bound in the order of [`Op::slots`]
//! (binding i + 1 = slot i).

pub use crate::backend::ops::{vec4_fits, GemmTiles, Grid, KernelSpec};
use crate::backend::Op;

/// Shared activation functions, prepended to the files of the kernels with a fused activation.
pub const ACTIVATION: &str = include_str!("../../../shaders/activation.wgsl");
pub const GEMM: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/gemm.wgsl"));
pub const GEMM_VEC4: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/gemm_vec4.wgsl"));
pub const GEMM_DIRECT: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/gemm_direct.wgsl"));
pub const ELEMENTWISE: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/elementwise.wgsl"));
pub const REDUCE: &str = include_str!("../../../shaders/reduce.wgsl");
pub const SAMPLE: &str = include_str!("../../../shaders/sample.wgsl");
pub const GATHER: &str = include_str!("../../../shaders/gather.wgsl");
pub const LOSS: &str = include_str!("../../../shaders/loss.wgsl");
pub const OPTIM: &str = include_str!("../../../shaders/optim.wgsl");
pub const CONV: &str = include_str!("../../../shaders/conv.wgsl");
pub const BATCHNORM: &str = concat!(include_str!("../../../shaders/activation.wgsl"), include_str!("../../../shaders/batchnorm.wgsl"));
pub const LSTM: &str = include_str!("../../../shaders/lstm.wgsl");
pub const MIXTURE: &str = include_str!("../../../shaders/mixture.wgsl");

/// Every shader module, by file name, as compiled (with its prelude), for validation and the
/// pipeline cache.
pub const SHADERS: [(&str, &str); 13] = [
    ("conv.wgsl", CONV),
    ("batchnorm.wgsl", BATCHNORM),
    ("gemm.wgsl", GEMM),
    ("gemm_vec4.wgsl", GEMM_VEC4),
    ("gemm_direct.wgsl", GEMM_DIRECT),
    ("elementwise.wgsl", ELEMENTWISE),
    ("gather.wgsl", GATHER),
    ("reduce.wgsl", REDUCE),
    ("sample.wgsl", SAMPLE),
    ("loss.wgsl", LOSS),
    ("optim.wgsl", OPTIM),
    ("lstm.wgsl", LSTM),
    ("mixture.wgsl", MIXTURE),
];

/// The launch of an op (see [`Op::spec`]); kept here as the GPU backend's entry point.
pub fn spec(op: &Op, tiles_override: Option<GemmTiles>) -> KernelSpec {
    op.spec(tiles_override)
}
