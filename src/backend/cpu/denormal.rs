//! Flush-to-zero on the CPU backend's threads.
//!
//! Values below 2^-126 in magnitude (subnormals) take a slow path through microcode on x86
//! CPUs, tens to hundreds of cycles an operation. Training makes millions of them: RMSprop's
//! running mean of squared gradients decays geometrically wherever a gradient is near zero
//! (MNIST's border pixels, idle units), and after a few epochs of SS_D on MNIST 60% of the
//! optimizer's state was subnormal and an epoch took 4-8x as long as the first (BENCHMARKS.md,
//! "Subnormal numbers"). GPUs flush them to zero in f32 arithmetic; this does the same on the
//! CPU: the FTZ and DAZ bits of MXCSR on the calling thread while a kernel runs (restored after
//! it) and on every thread of rayon's global pool (set once: the kernels' parallel loops and
//! the gemm crate's threads run there, so a program that shares that pool sees flush-to-zero
//! in its own rayon tasks too). A subnormal result becomes zero and a subnormal input reads as
//! zero; nothing else changes. `SSVAE_CPU_DENORMALS=keep` turns it off (`flush`, the default,
//! keeps it on; read once a process).
//!
//! x86-64 only: the ARM cores this runs on handle subnormals in hardware at full speed.
//! Changing the floating-point environment is outside what the compiler models, so constant
//! folding may still produce a subnormal where the same arithmetic at run time gives zero: a
//! difference of less than 2^-126 in a value, never a different code path.

use std::sync::OnceLock;

/// Whether the backend flushes subnormals (not when `SSVAE_CPU_DENORMALS=keep`; another value
/// than `keep` or `flush` is named in a warning and flushes).
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        flush_setting(std::env::var("SSVAE_CPU_DENORMALS").ok().as_deref()).unwrap_or_else(|v| {
            eprintln!("warning: SSVAE_CPU_DENORMALS={v:?} is not one of keep, flush; flushing subnormals to zero");
            true
        })
    })
}

/// `SSVAE_CPU_DENORMALS`'s value (none: flush) as whether to flush, or the unknown value.
fn flush_setting(v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("flush") => Ok(true),
        Some("keep") => Ok(false),
        Some(other) => Err(other.to_string()),
    }
}

/// Flush-to-zero for the lifetime of the guard on the calling thread (whose setting is
/// restored afterwards: the thread belongs to the caller, e.g. Python's, and numpy on it must
/// keep its subnormals), and for good on rayon's pool (set once per process: its threads run
/// the kernels' parallel loops and the gemm crate's).
pub(crate) struct FlushGuard(Option<u32>);

impl FlushGuard {
    pub(crate) fn new() -> Self {
        if !enabled() {
            return FlushGuard(None);
        }
        static POOL: OnceLock<()> = OnceLock::new();
        POOL.get_or_init(|| {
            rayon::broadcast(|_| write_csr(read_csr() | FTZ_DAZ));
        });
        let old = read_csr();
        if old & FTZ_DAZ == FTZ_DAZ {
            return FlushGuard(None);
        }
        write_csr(old | FTZ_DAZ);
        FlushGuard(Some(old))
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            write_csr(old);
        }
    }
}

/// MXCSR bits: flush-to-zero (results) and denormals-are-zero (inputs).
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// This thread's MXCSR (0 off x86-64).
fn read_csr() -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr = 0u32;
        // SAFETY: stores this thread's MXCSR into a local (SSE is part of x86-64)
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
        csr
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Loads `csr` into this thread's MXCSR (nothing off x86-64).
fn write_csr(csr: u32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: loads a value read from MXCSR with only the FTZ and DAZ bits changed (valid bits)
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = csr;
}

/// Whether this thread flushes subnormals (both bits set); always false off x86-64.
#[cfg(test)]
fn flushing_here() -> bool {
    cfg!(target_arch = "x86_64") && read_csr() & FTZ_DAZ == FTZ_DAZ
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    #[test]
    fn the_setting_takes_keep_and_flush_and_names_anything_else() {
        assert_eq!(flush_setting(None), Ok(true));
        assert_eq!(flush_setting(Some("flush")), Ok(true));
        assert_eq!(flush_setting(Some("keep")), Ok(false));
        assert_eq!(flush_setting(Some("kep")), Err("kep".to_string()));
    }

    fn tiny_here() -> (bool, f32, f32) {
        (flushing_here(), black_box(1e-30f32) * black_box(1e-10f32), black_box(f32::from_bits(1)) * black_box(2.0f32))
    }

    /// Under the guard, this thread and every thread of rayon's pool flush: a product below
    /// 2^-126 is zero and a subnormal input reads as zero; after it, the calling thread's
    /// setting is the one it had (unless turned off: then nothing changes).
    #[test]
    fn kernel_threads_flush_subnormals_and_the_callers_thread_is_restored() {
        if !enabled() || !cfg!(target_arch = "x86_64") {
            eprintln!("skipped: SSVAE_CPU_DENORMALS=keep or not x86-64");
            return;
        }
        let before = read_csr();
        assert!(!flushing_here(), "a test thread starts without flush-to-zero");
        assert_ne!(tiny_here().1, 0.0, "without it 1e-40 is a subnormal");
        {
            let _guard = FlushGuard::new();
            let mut seen = rayon::broadcast(|_| tiny_here());
            seen.push(tiny_here());
            for (i, (flushing, product, sub)) in seen.into_iter().enumerate() {
                assert!(flushing, "thread {i}: MXCSR without FTZ and DAZ");
                assert_eq!(product, 0.0, "thread {i}: 1e-40 kept as a subnormal");
                assert_eq!(sub, 0.0, "thread {i}: a subnormal input was not read as zero");
            }
        }
        assert_eq!(read_csr() & FTZ_DAZ, before & FTZ_DAZ, "the calling thread's setting is restored");
        assert_ne!(tiny_here().1, 0.0, "the caller's arithmetic keeps its subnormals");
    }
}
