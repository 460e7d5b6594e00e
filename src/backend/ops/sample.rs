//! Random draws from the shared counter-based generator (shaders/sample.wgsl; CPU twin:
//! cpu/sample.rs, over crate::rng): both backends draw the same bits for the same (seed, step,
//! stream, element), so whole training steps can be compared between them.

use super::gemm::GemmTiles;
use super::{f, u, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};

/// Length of the RNG counter buffer: `[seed_lo, seed_hi, step]`.
pub const COUNTER_LEN: usize = 3;

params! {
    /// The parameter block of sample.wgsl (`rate`: dropout's rate, shift_scale's scale, gumbel's 1 / tau;
    /// `height` .. `max_shift`: shift_scale only).
    pub struct SampleParams { n: u32, stream: u32, rate: f32, height: u32, width: u32, channels: u32, max_shift: u32, pad: u32 }
}

pub(super) struct Sample;

impl KernelFamily for Sample {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::RandomBits { .. } => "random_bits",
            Op::RandomNormal { .. } => "random_normal",
            Op::Reparam { .. } => "reparam",
            Op::ReparamBackward { .. } => "reparam_backward",
            Op::Dropout { .. } => "dropout",
            Op::Gumbel { .. } => "gumbel",
            Op::ShiftScale { .. } => "shift_scale",
            _ => unreachable!("not a sampling op"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        match *op {
            Op::RandomBits { n, .. } => vec![u("counter", COUNTER_LEN, Read), u("out", n, Write)],
            Op::RandomNormal { n, .. } => vec![u("counter", COUNTER_LEN, Read), f("out", n, Write)],
            Op::Reparam { n, .. } => {
                vec![u("counter", COUNTER_LEN, Read), f("mu", n, Read), f("logvar", n, Read), f("z", n, Write), f("eps", n, Write)]
            }
            Op::ReparamBackward { n } => {
                vec![f("dz", n, Read), f("logvar", n, Read), f("eps", n, Read), f("dmu", n, Write), f("dlogvar", n, Write)]
            }
            Op::Dropout { n, .. } => vec![u("counter", COUNTER_LEN, Read), f("x", n, Read), f("y", n, Write), f("mask", n, Write)],
            Op::Gumbel { n, .. } => vec![u("counter", COUNTER_LEN, Read), f("x", n, Read), f("y", n, Write)],
            Op::ShiftScale { rows, height, width, channels, .. } => {
                let n = rows * height * width * channels;
                vec![u("counter", COUNTER_LEN, Read), f("x", n, Read), f("y", n, Write)]
            }
            _ => unreachable!("not a sampling op"),
        }
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        match *op {
            Op::RandomBits { n, .. }
            | Op::RandomNormal { n, .. }
            | Op::Reparam { n, .. }
            | Op::ReparamBackward { n }
            | Op::Dropout { n, .. }
            | Op::Gumbel { n, .. } => {
                vec![("n", n)]
            }
            Op::ShiftScale { rows, height, width, channels, .. } => {
                vec![("rows", rows), ("height", height), ("width", width), ("channels", channels)]
            }
            _ => unreachable!("not a sampling op"),
        }
    }

    fn check(&self, op: &Op) -> crate::error::Result<()> {
        if let Op::ShiftScale { rows, height, width, channels, .. } = *op {
            if rows * height * width * channels > u32::MAX as usize {
                return Err(crate::error::Error::shape("shift_scale", "more than 2^32 values".to_string()));
            }
        }
        if let Op::Gumbel { tau, .. } = *op {
            if !(tau.is_finite() && tau > 0.0) {
                return Err(crate::error::Error::shape("gumbel", format!("temperature {tau} must be finite and > 0")));
            }
        }
        if let Op::Dropout { rate, .. } = *op {
            if !(0.0..1.0).contains(&rate) {
                return Err(crate::error::Error::shape("dropout", format!("dropout rate {rate} must be in [0, 1)")));
            }
        }
        Ok(())
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let params = match *op {
            Op::RandomBits { n, stream } | Op::RandomNormal { n, stream } | Op::Reparam { n, stream } => {
                SampleParams { n: n as u32, stream, ..Default::default() }
            }
            Op::ReparamBackward { n } => SampleParams { n: n as u32, ..Default::default() },
            Op::Dropout { n, rate, stream } => SampleParams { n: n as u32, stream, rate, ..Default::default() },
            Op::Gumbel { n, tau, stream } => SampleParams { n: n as u32, stream, rate: 1.0 / tau, ..Default::default() },
            Op::ShiftScale { rows, height, width, channels, max_shift, scale, stream } => SampleParams {
                n: (rows * height * width * channels) as u32,
                stream,
                rate: scale,
                height: height as u32,
                width: width as u32,
                channels: channels as u32,
                max_shift,
                pad: 0,
            },
            _ => unreachable!("not a sampling op"),
        };
        KernelSpec::new("sample.wgsl", self.entry(op), params, Grid::Flat((params.n as usize).div_ceil(256)))
    }
}
