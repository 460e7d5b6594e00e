//! GEMM (shaders/gemm.wgsl, shaders/gemm_vec4.wgsl; CPU twin: cpu/gemm.rs): the op, its
//! tiling and its launch. Bias and activation are fused into the epilogue, so a dense layer is
//! one dispatch.

use super::{f, Access::*, Act, Grid, KernelFamily, KernelSpec, Op, Slot};

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
    /// With the vec4 kernel's preconditions: gemm_direct.wgsl, which reads A and B from
    /// storage without staging them in workgroup memory (no barriers); `threads_*` and `wide`
    /// keep their meaning, `tile_k` is unused. Only the tuner chooses it (software rasterisers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub direct: bool,
    /// With `direct`: rows of a thread's register block, 4 (the vec4 kernel's 4 x 4), 2 or 1.
    #[serde(default = "four", skip_serializing_if = "is_four")]
    pub rows: u32,
}

fn four() -> u32 {
    4
}

fn is_four(x: &u32) -> bool {
    *x == 4
}

impl GemmTiles {
    pub const LARGE: GemmTiles = GemmTiles { threads_m: 16, threads_n: 16, tile_k: 16, vec4: true, wide: false, direct: false, rows: 4 };
    pub const SMALL: GemmTiles = GemmTiles { threads_m: 8, threads_n: 8, tile_k: 16, vec4: true, wide: false, direct: false, rows: 4 };

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
                    v.push(GemmTiles { threads_m, threads_n, tile_k, vec4, wide: false, direct: false, rows: 4 });
                }
                if (threads_m, threads_n) != (4, 16) {
                    v.push(GemmTiles { threads_m, threads_n, tile_k, vec4: true, wide: true, direct: false, rows: 4 });
                }
            }
            // the unstaged kernel: tile_k does not apply
            for rows in [4, 2, 1] {
                for wide in [false, true] {
                    v.push(GemmTiles { threads_m, threads_n, tile_k: 16, vec4: true, wide, direct: true, rows });
                }
            }
        }
        v
    }

    /// Workgroup memory the kernel stages (tiles of A and B), bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        if self.direct {
            return 0;
        }
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
pub fn vec4_fits(g: &Gemm) -> bool {
    g.n % 4 == 0 && if g.trans_a { g.m % 4 == 0 } else { g.k % 4 == 0 } && (!g.trans_b || g.k % 4 == 0)
}

params! {
    /// The parameter block of gemm.wgsl and gemm_vec4.wgsl.
    pub struct GemmParams { m: u32, n: u32, k: u32, alpha: f32, beta: f32 }
}

pub(crate) fn bool_const(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

pub(super) struct GemmFamily;

impl KernelFamily for GemmFamily {
    fn entry(&self, _op: &Op) -> &'static str {
        "gemm"
    }

    fn slots(&self, op: &Op) -> Vec<Slot> {
        let Op::Gemm(g) = *op else { unreachable!("not a GEMM") };
        vec![
            f("a", g.m * g.k, Read),
            f("b", g.k * g.n, Read),
            f("bias", if g.bias { g.n } else { 0 }, Read),
            f("c", g.m * g.n, if g.beta != 0.0 { ReadWrite } else { Write }),
        ]
    }

    fn dims(&self, op: &Op) -> Vec<(&'static str, usize)> {
        let Op::Gemm(g) = *op else { unreachable!("not a GEMM") };
        vec![("m", g.m), ("n", g.n), ("k", g.k)]
    }

    fn spec(&self, op: &Op, tiles: Option<GemmTiles>) -> KernelSpec {
        let Op::Gemm(g) = *op else { unreachable!("not a GEMM") };
        let t = tiles.unwrap_or_else(|| GemmTiles::choose(g.m, g.n));
        let vec4 = t.vec4 && t.tile_k % 4 == 0 && vec4_fits(&g);
        let rb = if vec4 { t.rb() } else { 1 };
        let direct = t.direct && vec4;
        let rows = if direct && matches!(t.rows, 1 | 2) { t.rows } else { 4 };
        let (tm, tn) = ((t.threads_m * rows * rb) as usize, (t.threads_n * 4 * rb) as usize);
        let mut constants = vec![
            ("TRANS_A", bool_const(g.trans_a)),
            ("TRANS_B", bool_const(g.trans_b)),
            ("HAS_BIAS", bool_const(g.bias)),
            ("ACCUMULATE", bool_const(g.beta != 0.0)),
            ("ACT", g.act as u32 as f64),
            ("THREADS_M", t.threads_m as f64),
            ("THREADS_N", t.threads_n as f64),
        ];
        if !direct {
            constants.push(("TILE_K", t.tile_k as f64));
        }
        if vec4 || direct {
            constants.push(("RB", rb as f64));
        }
        if direct {
            constants.push(("ROWS", rows as f64));
        }
        let params = GemmParams { m: g.m as u32, n: g.n as u32, k: g.k as u32, alpha: g.alpha, beta: g.beta };
        let grid = Grid::Xy(g.n.div_ceil(tn) as u32, g.m.div_ceil(tm) as u32);
        let file = if direct {
            "gemm_direct.wgsl"
        } else if vec4 {
            "gemm_vec4.wgsl"
        } else {
            "gemm.wgsl"
        };
        KernelSpec::new(file, "gemm", params, grid).constants(constants)
    }
}
