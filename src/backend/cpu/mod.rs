//! The CPU reference backend. Every kernel is a plain function over slices in the submodules
//! (`gemm`, `conv`, `elementwise`, `gather`, `reduce`, `sample`, `loss`, `mixture`, `batchnorm`,
//! `optim`, `lstm`, named as the WGSL files and the kernel families of `backend::ops`), written
//! so a reader can check it against the maths; GEMM uses `matrixmultiply` or the `gemm` crate
//! (well-kept, fast; chosen by shape, see `gemm::sgemm_strided`) for the product and a plain
//! loop for the epilogue.

/// Runs `body` with the activation (or its derivative from the output) as a concrete closure,
/// so the per-element loops compile to vector code for each activation instead of a `match`
/// per element (relu batch norms over 10^7 values are most of the CNN's non-GEMM time; a GEMM's bias +
/// activation epilogue over a 16384 x 160 output took longer than the product). Defined
/// before the submodules so that they can all use them.
macro_rules! with_act {
    ($act:expr, $f:ident => $body:expr) => {
        match $act {
            Act::Identity => {
                let $f = |x: f32| x;
                $body
            }
            Act::Relu => {
                let $f = |x: f32| x.max(0.0);
                $body
            }
            a => {
                let $f = |x: f32| a.apply(x);
                $body
            }
        }
    };
}

/// The derivative from the output (see [`Act::grad_from_output`]), as `with_act`.
macro_rules! with_act_grad {
    ($act:expr, $f:ident => $body:expr) => {
        match $act {
            Act::Identity => {
                let $f = |_: f32| 1.0f32;
                $body
            }
            Act::Relu => {
                let $f = |y: f32| if y > 0.0 { 1.0f32 } else { 0.0 };
                $body
            }
            a => {
                let $f = |y: f32| a.grad_from_output(y);
                $body
            }
        }
    };
}

/// a * b + c: one fused multiply-add where the CPU has FMA (the AVX2 + FMA builds of the
/// LSTM's row blocks and the long-k GEMM's tiles), a multiply and an add otherwise (baseline x86-64 has no FMA instruction, and
/// `mul_add` there would be a libm call per element).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Whether the AVX2 + FMA builds of the hot loops (the LSTM's row blocks, the long-k GEMM's
/// tiles, the losses' and column sums' loops) run here: the CPU has them and `SSVAE_CPU_SIMD`
/// does not say `plain` (see [`simd`]).
pub(crate) fn fma_available() -> bool {
    simd() != Simd::Plain
}

/// The instruction sets the hot loops are built for (the LSTM's row blocks, the long-k GEMM's
/// tiles), best first. Every build with fused multiply-adds computes the same operations per
/// element in the same order, so `Avx512` and `Avx2Fma` give the same bits; `Plain` (a
/// multiply and an add) agrees to rounding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Simd {
    Plain,
    Avx2Fma,
    Avx512,
}

impl Simd {
    /// The name `SSVAE_CPU_SIMD` takes and the backend's description shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Simd::Avx512 => "avx512",
            Simd::Avx2Fma => "avx2",
            Simd::Plain => "plain",
        }
    }
}

/// The best build this CPU runs.
fn detected_simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if fma {
            return Simd::Avx2Fma;
        }
    }
    Simd::Plain
}

/// The build the hot loops use: the best this CPU runs, capped by the environment variable
/// `SSVAE_CPU_SIMD` = `avx512`, `avx2` or `plain` where it is set (to compare the builds, or to
/// time on an AVX-512 CPU what a CPU without it runs; a level the CPU lacks is not taken).
/// Read once per process. The `gemm` crate's kernels are not capped: the crate detects the
/// CPU's instruction sets itself.
pub(crate) fn simd() -> Simd {
    static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = detected_simd();
        capped_simd(best, std::env::var("SSVAE_CPU_SIMD").ok().as_deref()).unwrap_or_else(|v| {
            eprintln!("warning: SSVAE_CPU_SIMD={v:?} is not one of avx512, avx2, plain; using {}", best.name());
            best
        })
    })
}

/// `best` capped by a `SSVAE_CPU_SIMD` value (none: `best`); an unknown value is returned as
/// the error.
fn capped_simd(best: Simd, var: Option<&str>) -> Result<Simd, String> {
    let Some(v) = var else { return Ok(best) };
    let want = v.trim().to_ascii_lowercase();
    match [Simd::Avx512, Simd::Avx2Fma, Simd::Plain].into_iter().find(|s| s.name() == want) {
        Some(cap) => Ok(best.min(cap)),
        None => Err(v.to_string()),
    }
}

#[cfg(test)]
mod simd_tests {
    use super::*;

    #[test]
    fn the_environment_caps_the_build_and_never_raises_it() {
        assert_eq!(capped_simd(Simd::Avx512, None), Ok(Simd::Avx512));
        assert_eq!(capped_simd(Simd::Avx512, Some("avx2")), Ok(Simd::Avx2Fma));
        assert_eq!(capped_simd(Simd::Avx512, Some(" AVX2 ")), Ok(Simd::Avx2Fma));
        assert_eq!(capped_simd(Simd::Avx512, Some("plain")), Ok(Simd::Plain));
        assert_eq!(capped_simd(Simd::Avx2Fma, Some("avx512")), Ok(Simd::Avx2Fma));
        assert_eq!(capped_simd(Simd::Plain, Some("avx2")), Ok(Simd::Plain));
        assert_eq!(capped_simd(Simd::Avx2Fma, Some("sse")), Err("sse".to_string()));
    }
}

pub mod batchnorm;
pub mod conv;
mod denormal;
pub mod elementwise;
pub mod fastmath;
pub mod gather;
pub mod gemm;
pub mod loss;
pub mod lstm;
pub mod mixture;
pub mod optim;
pub mod reduce;
pub mod sample;

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{next_buffer_id, Access, Backend, BufferLike, DType, Op};
use crate::error::{Error, Result};

/// A host buffer of 4-byte words (f32 or u32 bits), or a view of one.
#[derive(Clone, Debug)]
pub struct CpuBuf {
    inner: Arc<CpuBufInner>,
    offset: usize,
    len: usize,
}

#[derive(Debug)]
struct CpuBufInner {
    id: u64,
    dtype: DType,
    data: RwLock<Vec<u32>>,
}

impl BufferLike for CpuBuf {
    fn len(&self) -> usize {
        self.len
    }
    fn dtype(&self) -> DType {
        self.inner.dtype
    }
    fn id(&self) -> u64 {
        self.inner.id
    }
    fn offset(&self) -> usize {
        self.offset
    }
}

impl CpuBuf {
    fn new(len: usize, dtype: DType) -> Self {
        CpuBuf { inner: Arc::new(CpuBufInner { id: next_buffer_id(), dtype, data: RwLock::new(vec![0; len]) }), offset: 0, len }
    }
    fn read(&self) -> RwLockReadGuard<'_, Vec<u32>> {
        self.inner.data.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Vec<u32>> {
        self.inner.data.write().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct CpuBackend {
    placeholder: CpuBuf,
    /// Per-kernel wall time, when profiling is on (see [`CpuBackend::profiled`]).
    profile: Option<std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Duration)>>>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    pub fn new() -> Self {
        CpuBackend { placeholder: CpuBuf::new(1, DType::F32), profile: None }
    }

    /// A backend that records the wall time of every kernel launch (for `ssvae bench train
    /// --profile`); costs one clock read per launch.
    pub fn profiled() -> Self {
        CpuBackend { profile: Some(Default::default()), ..Self::new() }
    }

    /// (kernel, launches, total time), most expensive first; empty unless profiling.
    pub fn profile_report(&self) -> Vec<(String, u64, std::time::Duration)> {
        let Some(p) = &self.profile else { return Vec::new() };
        let mut v: Vec<_> = p.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, (n, t))| (k.clone(), *n, *t)).collect();
        v.sort_by(|a, b| b.2.cmp(&a.2));
        v
    }
}

/// A prepared CPU launch: the op and the buffers it binds.
pub struct CpuLaunch {
    op: Op,
    bufs: Vec<CpuBuf>,
    access: Vec<Access>,
}

impl Backend for CpuBackend {
    type Buf = CpuBuf;
    type Launch = CpuLaunch;

    fn describe(&self) -> String {
        format!("cpu ({} threads, {})", rayon::current_num_threads(), simd().name())
    }

    fn alloc(&self, len: usize, dtype: DType) -> Result<CpuBuf> {
        Ok(CpuBuf::new(len, dtype))
    }

    fn write_f32(&self, buf: &CpuBuf, data: &[f32]) -> Result<()> {
        check_io(buf, data.len(), DType::F32)?;
        buf.write()[buf.offset..buf.offset + data.len()].copy_from_slice(bytemuck::cast_slice(data));
        Ok(())
    }
    fn write_u32(&self, buf: &CpuBuf, data: &[u32]) -> Result<()> {
        check_io(buf, data.len(), DType::U32)?;
        buf.write()[buf.offset..buf.offset + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn read_f32(&self, buf: &CpuBuf) -> Result<Vec<f32>> {
        Ok(bytemuck::cast_slice(&buf.read()[buf.offset..buf.offset + buf.len]).to_vec())
    }
    fn read_u32(&self, buf: &CpuBuf) -> Result<Vec<u32>> {
        Ok(buf.read()[buf.offset..buf.offset + buf.len].to_vec())
    }
    fn view(&self, buf: &CpuBuf, offset: usize, len: usize) -> Result<CpuBuf> {
        if offset + len > buf.len {
            return Err(Error::Invalid(format!("view [{offset}, {}) outside a buffer of {} elements", offset + len, buf.len)));
        }
        Ok(CpuBuf { inner: buf.inner.clone(), offset: buf.offset + offset, len })
    }
    fn view_alignment(&self) -> usize {
        1
    }
    fn placeholder(&self) -> &CpuBuf {
        &self.placeholder
    }

    fn prepare(&self, op: &Op, bufs: &[&CpuBuf]) -> Result<CpuLaunch> {
        op.check(bufs)?;
        let access = op.slots().iter().map(|s| if s.len == 0 { Access::Read } else { s.access }).collect();
        Ok(CpuLaunch { op: op.clone(), bufs: bufs.iter().map(|b| (*b).clone()).collect(), access })
    }

    fn run(&self, launches: &[&CpuLaunch]) -> Result<()> {
        for l in launches {
            // One lock per distinct storage: a write lock if any slot writes it. `prepare`
            // checked that views of one storage are either all read, or all written and
            // disjoint, so the slices below never overlap a mutable one.
            enum Guard<'a> {
                R(RwLockReadGuard<'a, Vec<u32>>),
                W(RwLockWriteGuard<'a, Vec<u32>>),
            }
            let mut guards: Vec<(u64, Guard)> = Vec::new();
            for (b, a) in l.bufs.iter().zip(&l.access) {
                if guards.iter().any(|(id, _)| *id == b.id()) {
                    continue;
                }
                let writes = l.bufs.iter().zip(&l.access).any(|(o, oa)| o.id() == b.id() && *oa != Access::Read);
                let _ = a;
                guards.push((b.id(), if writes { Guard::W(b.write()) } else { Guard::R(b.read()) }));
            }
            let mut ins: Vec<&[u32]> = Vec::new();
            let mut outs: Vec<&mut [u32]> = Vec::new();
            for (b, a) in l.bufs.iter().zip(&l.access) {
                let g = &mut guards.iter_mut().find(|(id, _)| *id == b.id()).expect("locked above").1;
                let (ptr, total) = match g {
                    Guard::R(g) => (g.as_ptr() as *mut u32, g.len()),
                    Guard::W(g) => (g.as_mut_ptr(), g.len()),
                };
                assert!(b.offset + b.len <= total, "view outside its storage");
                // SAFETY: in bounds (asserted); the lock is held until the end of this
                // iteration; mutable slices are disjoint from every other slice (see above).
                unsafe {
                    if *a == Access::Read {
                        ins.push(std::slice::from_raw_parts(ptr.add(b.offset), b.len));
                    } else {
                        outs.push(std::slice::from_raw_parts_mut(ptr.add(b.offset), b.len));
                    }
                }
            }
            let t0 = self.profile.as_ref().map(|_| std::time::Instant::now());
            execute(&l.op, &ins, &mut outs);
            if let (Some(p), Some(t0)) = (&self.profile, t0) {
                let key = l.op.profile_key();
                let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
                let e = p.entry(key).or_default();
                e.0 += 1;
                e.1 += t0.elapsed();
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

fn check_io(buf: &CpuBuf, n: usize, dtype: DType) -> Result<()> {
    if buf.dtype() != dtype || n > buf.len() {
        return Err(Error::Invalid(format!("write of {n} {dtype:?} values into a buffer of {} {:?} values", buf.len(), buf.dtype())));
    }
    Ok(())
}

fn fs(x: &[u32]) -> &[f32] {
    bytemuck::cast_slice(x)
}

/// Splits the output list into f32 views; the caller knows how many outputs the op has.
macro_rules! outs {
    ($outs:expr; $($name:ident),+) => {
        let [$($name),+] = &mut $outs[..] else { unreachable!("output count fixed by Op::slots") };
        $(let $name: &mut [f32] = bytemuck::cast_slice_mut(&mut **$name);)+
    };
}

/// Runs one op on host slices: inputs (`Read` slots) and outputs (`Write`/`ReadWrite` slots),
/// each in slot order.
fn execute(op: &Op, ins: &[&[u32]], outs: &mut [&mut [u32]]) {
    let _flush = denormal::FlushGuard::new();
    match *op {
        Op::Gemm(g) => {
            outs!(outs; c);
            gemm::gemm(&g, fs(ins[0]), fs(ins[1]), if g.bias { Some(fs(ins[2])) } else { None }, c);
        }
        Op::ActForward { n, act } => {
            outs!(outs; y);
            elementwise::act_forward(act, &fs(ins[0])[..n], &mut y[..n]);
        }
        Op::ActBackward { n, act } => {
            outs!(outs; dx);
            elementwise::act_backward(act, &fs(ins[0])[..n], &fs(ins[1])[..n], &mut dx[..n]);
        }
        Op::Add { n } => {
            outs!(outs; c);
            elementwise::add(&fs(ins[0])[..n], &fs(ins[1])[..n], &mut c[..n]);
        }
        Op::Mul { n } => {
            outs!(outs; c);
            elementwise::mul(&fs(ins[0])[..n], &fs(ins[1])[..n], &mut c[..n]);
        }
        Op::Scale { n, alpha } => {
            outs!(outs; y);
            elementwise::scale(alpha, &fs(ins[0])[..n], &mut y[..n]);
        }
        Op::Axpy { n, alpha } => {
            outs!(outs; y);
            elementwise::axpy(alpha, &fs(ins[0])[..n], &mut y[..n]);
        }
        Op::Fill { n, value } => {
            outs!(outs; y);
            y[..n].fill(value);
        }
        Op::ConcatCols { rows, cols_a, cols_b } => {
            outs!(outs; c);
            elementwise::concat_cols(rows, cols_a, cols_b, fs(ins[0]), fs(ins[1]), c);
        }
        Op::SplitCols { rows, cols_a, cols_b } => {
            outs!(outs; a, b);
            elementwise::split_cols(rows, cols_a, cols_b, fs(ins[0]), a, b);
        }
        Op::GatherRowsU8 { rows, cols, src_rows } => {
            outs!(outs; out);
            gather::gather_rows_u8(rows, cols, src_rows, ins[0], ins[1], out);
        }
        Op::GatherRowsF32 { rows, cols, src_rows } => {
            outs!(outs; out);
            gather::gather_rows_f32(rows, cols, src_rows, fs(ins[0]), ins[1], out);
        }
        Op::GatherRowsF16 { rows, cols, src_rows } => {
            outs!(outs; out);
            gather::gather_rows_f16(rows, cols, src_rows, ins[0], ins[1], out);
        }
        Op::LabelMix { rows, classes } => {
            outs!(outs; out);
            elementwise::label_mix(rows, classes, fs(ins[0]), ins[1], out);
        }
        Op::OneHotArgmax { rows, classes } => {
            outs!(outs; y);
            elementwise::one_hot_argmax(rows, classes, fs(ins[0]), y);
        }
        Op::LabelMixBackward { rows, classes } => {
            outs!(outs; out);
            elementwise::label_mix_backward(rows, classes, fs(ins[0]), ins[1], out);
        }
        Op::ColSum { rows, cols, accumulate } => {
            outs!(outs; out);
            reduce::col_sum(rows, cols, accumulate, fs(ins[0]), out);
        }
        Op::SoftmaxRows { rows, cols } => {
            outs!(outs; y);
            reduce::softmax_rows(rows, cols, fs(ins[0]), y);
        }
        Op::SoftmaxBackward { rows, cols } => {
            outs!(outs; dx);
            reduce::softmax_backward(rows, cols, fs(ins[0]), fs(ins[1]), dx);
        }
        Op::MeanVar { rows, cols } => {
            outs!(outs; mean, var);
            reduce::mean_var(rows, cols, fs(ins[0]), mean, var);
        }
        Op::RandomBits { n, stream } => sample::random_bits(ins[0], stream, &mut outs[0][..n]),
        Op::RandomNormal { n, stream } => {
            outs!(outs; out);
            sample::random_normal(ins[0], stream, &mut out[..n]);
        }
        Op::Reparam { n, stream } => {
            outs!(outs; z, eps);
            sample::reparam(ins[0], stream, &fs(ins[1])[..n], &fs(ins[2])[..n], &mut z[..n], &mut eps[..n]);
        }
        Op::ReparamBackward { n } => {
            outs!(outs; dmu, dlogvar);
            sample::reparam_backward(&fs(ins[0])[..n], &fs(ins[1])[..n], &fs(ins[2])[..n], &mut dmu[..n], &mut dlogvar[..n]);
        }
        Op::BceLogits { rows, cols, scale } => {
            outs!(outs; l, d);
            loss::bce_logits(rows, cols, scale, fs(ins[0]), fs(ins[1]), l, d);
        }
        Op::GaussianNll { rows, cols, scale, floor } => {
            outs!(outs; l, dm, dv);
            loss::gaussian_nll(rows, cols, scale, floor, fs(ins[0]), fs(ins[1]), fs(ins[2]), l, dm, dv);
        }
        Op::Kl { rows, cols, scale } => {
            outs!(outs; l, dmu, dlv);
            loss::kl_normal(rows, cols, scale, fs(ins[0]), fs(ins[1]), l, dmu, dlv);
        }
        Op::SoftmaxCe { rows, classes, scale, smoothing } => {
            outs!(outs; l, d);
            loss::softmax_ce(rows, classes, scale, smoothing, fs(ins[0]), ins[1], l, d);
        }
        Op::RepeatRows { rows, cols, copies } => {
            outs!(outs; out);
            mixture::repeat_rows(rows, cols, copies, fs(ins[0]), out);
        }
        Op::RepeatRowsBackward { rows, cols, copies } => {
            outs!(outs; dx);
            mixture::repeat_rows_backward(rows, cols, copies, fs(ins[0]), dx);
        }
        Op::RowScale { rows, cols, alpha } => {
            outs!(outs; y);
            mixture::row_scale(rows, cols, alpha, fs(ins[0]), fs(ins[1]), y);
        }
        Op::WeightedRowSum { rows, classes, scale } => {
            outs!(outs; out, dw);
            mixture::weighted_row_sum(rows, classes, scale, fs(ins[0]), fs(ins[1]), out, dw);
        }
        Op::CategoricalKl { rows, classes, scale } => {
            outs!(outs; l, d);
            mixture::categorical_kl(rows, classes, scale, fs(ins[0]), fs(ins[1]), ins[2], l, d);
        }
        Op::ConsistencyKl { rows, classes, scale } => {
            outs!(outs; l, d);
            mixture::consistency_kl(rows, classes, scale, fs(ins[0]), fs(ins[1]), l, d);
        }
        Op::KlGaussians { rows, cols, scale } => {
            outs!(outs; l, dmq, dlq, dlp);
            mixture::kl_gaussians(rows, cols, scale, fs(ins[0]), fs(ins[1]), fs(ins[2]), fs(ins[3]), l, dmq, dlq, dlp);
        }
        Op::Conv2dForward { conv: c, bias } => {
            outs!(outs; y);
            conv::conv2d_forward(&c, fs(ins[0]), fs(ins[1]), if bias { Some(fs(ins[2])) } else { None }, y);
        }
        Op::Conv2dBackwardInput { conv: c, bias } => {
            outs!(outs; dx);
            conv::conv2d_backward_input(&c, fs(ins[0]), fs(ins[1]), if bias { Some(fs(ins[2])) } else { None }, dx);
        }
        Op::Conv2dBackwardWeight { conv: c, accumulate } => {
            outs!(outs; dw);
            conv::conv2d_backward_weight(&c, fs(ins[0]), fs(ins[1]), accumulate, dw);
        }
        Op::Conv2dBackwardWeightSplit { conv: c, samples } => {
            outs!(outs; part);
            conv::conv2d_backward_weight_split(&c, samples, fs(ins[0]), fs(ins[1]), part);
        }
        Op::SumSlices { n, slices, accumulate } => {
            outs!(outs; out);
            elementwise::sum_slices(n, slices, accumulate, fs(ins[0]), out);
        }
        Op::BatchNormPartial { rows, cols, chunks } => {
            outs!(outs; part);
            batchnorm::batch_norm_partial(rows, cols, chunks, fs(ins[0]), part);
        }
        Op::BatchNormStats { rows, cols, chunks, momentum, eps } => {
            outs!(outs; rm, rv, stats);
            batchnorm::batch_norm_stats(rows, cols, chunks, momentum, eps, fs(ins[0]), rm, rv, stats);
        }
        Op::BatchNormBackwardPartial { rows, cols, chunks, act } => {
            outs!(outs; part);
            batchnorm::batch_norm_backward_partial(rows, cols, chunks, act, fs(ins[0]), fs(ins[1]), fs(ins[2]), fs(ins[3]), part);
        }
        Op::BatchNormBackwardReduce { cols, chunks } => {
            outs!(outs; dgamma, dbeta);
            batchnorm::batch_norm_backward_reduce(cols, chunks, fs(ins[0]), dgamma, dbeta);
        }
        Op::BatchNormRunning { cols, eps } => {
            outs!(outs; stats);
            batchnorm::batch_norm_running(cols, eps, fs(ins[0]), fs(ins[1]), stats);
        }
        Op::BatchNormForward { rows, cols, act } => {
            outs!(outs; y);
            batchnorm::batch_norm_forward(rows, cols, act, fs(ins[0]), fs(ins[1]), fs(ins[2]), fs(ins[3]), y);
        }
        Op::BatchNormBackward { rows, cols, act } => {
            outs!(outs; dx);
            batchnorm::batch_norm_backward(
                rows,
                cols,
                act,
                fs(ins[0]),
                fs(ins[1]),
                fs(ins[2]),
                fs(ins[3]),
                fs(ins[4]),
                fs(ins[5]),
                fs(ins[6]),
                dx,
            );
        }
        Op::Dropout { n, rate, stream } => {
            outs!(outs; y, mask);
            sample::dropout(ins[0], stream, rate, &fs(ins[1])[..n], &mut y[..n], &mut mask[..n]);
        }
        Op::Gumbel { n, tau, stream } => {
            outs!(outs; y);
            sample::gumbel(ins[0], stream, tau, &fs(ins[1])[..n], &mut y[..n]);
        }
        Op::ShiftScale { rows, height, width, channels, max_shift, scale, stream } => {
            outs!(outs; y);
            sample::shift_scale(ins[0], stream, [rows, height, width, channels], max_shift, scale, fs(ins[1]), y);
        }
        Op::RmsProp { n } => {
            outs!(outs; p, sq, mom);
            optim::rmsprop(fs(ins[0]), &fs(ins[1])[..n], &mut p[..n], &mut sq[..n], &mut mom[..n]);
        }
        Op::Adam { n } => {
            outs!(outs; p, m, v);
            optim::adam(fs(ins[0]), &fs(ins[1])[..n], &mut p[..n], &mut m[..n], &mut v[..n]);
        }
        Op::LstmForward { batch, steps, hidden } => {
            outs!(outs; h_seq, c_seq, gates, hprev);
            lstm::lstm_forward(batch, steps, hidden, fs(ins[0]), fs(ins[1]), fs(ins[2]), fs(ins[3]), h_seq, c_seq, gates, hprev);
        }
        Op::LstmBackward { batch, steps, hidden } => {
            outs!(outs; dgates, dh0, dc0);
            lstm::lstm_backward(batch, steps, hidden, fs(ins[0]), fs(ins[1]), fs(ins[2]), fs(ins[3]), fs(ins[4]), dgates, dh0, dc0);
        }
    }
}
