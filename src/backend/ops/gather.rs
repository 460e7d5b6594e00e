//! Row gathers from resident datasets (shaders/gather.wgsl; CPU twin: cpu/gather.rs): a batch
//! is gathered by index on the device, so datasets stay on the GPU at 1 byte (u8) or 2 bytes
//! (f16) per value and no batch crosses the bus.

use super::gemm::GemmTiles;
use super::{f, u, Access::*, Grid, KernelFamily, KernelSpec, Op, Slot};

params! {
    /// The parameter block of gather.wgsl: `n` = rows * cols outputs.
    pub struct GatherParams { n: u32, rows: u32, cols: u32, src_rows: u32 }
}

pub(super) struct Gather;

fn shape(op: &Op) -> (usize, usize, usize) {
    match *op {
        Op::GatherRowsU8 { rows, cols, src_rows }
        | Op::GatherRowsF32 { rows, cols, src_rows }
        | Op::GatherRowsF16 { rows, cols, src_rows } => (rows, cols, src_rows),
        _ => unreachable!("not a gather"),
    }
}

impl KernelFamily for Gather {
    fn entry(&self, op: &Op) -> &'static str {
        match op {
            Op::GatherRowsU8 { .. } => "gather_rows_u8",
            Op::GatherRowsF32 { .. } => "gather_rows_f32",
            Op::GatherRowsF16 { .. } => "gather_rows_f16",
            _ => unreachable!("not a gather"),
        }
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        let (rows, cols, src_rows) = shape(op);
        let data = match op {
            Op::GatherRowsU8 { .. } => u("data", (src_rows * cols).div_ceil(4), Read),
            Op::GatherRowsF32 { .. } => f("data", src_rows * cols, Read),
            _ => u("data", (src_rows * cols).div_ceil(2), Read),
        };
        vec![data, u("idx", rows, Read), f("out", rows * cols, Write)]
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        let (rows, cols, src_rows) = shape(op);
        vec![("rows", rows), ("cols", cols), ("src_rows", src_rows)]
    }

    fn spec(&self, op: &Op, _tiles: Option<GemmTiles>) -> KernelSpec {
        let (rows, cols, src_rows) = shape(op);
        let params = GatherParams { n: (rows * cols) as u32, rows: rows as u32, cols: cols as u32, src_rows: src_rows as u32 };
        KernelSpec::new("gather.wgsl", self.entry(op), params, Grid::Flat((rows * cols).div_ceil(256)))
    }
}
