//! Flush-to-zero on the CPU backend's threads.
//!
//! Values below 2^-126 in magnitude (subnormals) take a slow path through microcode on x86
//! CPUs, tens to hundreds of cycles an operation. Training makes millions of them: RMSprop's
//! running mean of squared gradients decays geometrically wherever a gradient is near zero
//! (MNIST's border pixels, idle units), and after a few epochs of SS_D on MNIST 60% of the
//! optimizer's state was subnormal and an epoch took 8x as long as the first (BENCHMARKS.md,
//! "Subnormal numbers"). GPUs flush them to zero in f32 arithmetic; this does the same on the
//! CPU: the FTZ and DAZ bits of MXCSR on the calling thread and on every thread of rayon's pool
//! (which runs the kernels and the gemm crate's threads). A subnormal result becomes zero and a
//! subnormal input reads as zero; nothing else changes. `SSVAE_CPU_DENORMALS=keep` turns it off
//! (read once per process).
//!
//! x86-64 only: the ARM cores this runs on handle subnormals in hardware at full speed.
//! Changing the floating-point environment is outside what the compiler models, so constant
//! folding may still produce a subnormal where the same arithmetic at run time gives zero: a
//! difference of less than 2^-126 in a value, never a different code path.

use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    static SET: Cell<bool> = const { Cell::new(false) };
}

/// Whether the backend flushes subnormals (not when `SSVAE_CPU_DENORMALS=keep`).
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("SSVAE_CPU_DENORMALS").map_or(true, |v| v != "keep"))
}

/// Sets flush-to-zero on this thread (once) and on rayon's pool (once per process).
pub(crate) fn flush_to_zero() {
    if !enabled() {
        return;
    }
    set_once_here();
    static POOL: OnceLock<()> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::broadcast(|_| set_once_here());
    });
}

fn set_once_here() {
    if !SET.with(|s| s.replace(true)) {
        set_this_thread();
    }
}

/// MXCSR bits: flush-to-zero (results) and denormals-are-zero (inputs).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

#[cfg(target_arch = "x86_64")]
fn set_this_thread() {
    // SAFETY: reads and writes this thread's MXCSR through a local; only the FTZ and DAZ bits
    // change (SSE2 is part of x86-64).
    unsafe {
        let mut csr = 0u32;
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
        csr |= FTZ_DAZ;
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly));
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn set_this_thread() {}

/// Whether this thread flushes subnormals (both bits set); always false off x86-64.
#[cfg(test)]
fn flushing_here() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr = 0u32;
        // SAFETY: stores this thread's MXCSR into a local
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
        csr & FTZ_DAZ == FTZ_DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    /// After `flush_to_zero`, this thread and every thread of rayon's pool flush: a product
    /// below 2^-126 is zero and a subnormal input reads as zero (unless turned off).
    #[test]
    fn every_kernel_thread_flushes_subnormals() {
        if !enabled() || !cfg!(target_arch = "x86_64") {
            eprintln!("skipped: SSVAE_CPU_DENORMALS=keep or not x86-64");
            return;
        }
        flush_to_zero();
        let tiny = |_: rayon::BroadcastContext| {
            let product = black_box(1e-30f32) * black_box(1e-10f32);
            let sub = black_box(f32::from_bits(1)) * black_box(2.0f32);
            (flushing_here(), product, sub)
        };
        let mut seen = rayon::broadcast(tiny);
        seen.push(tiny_here());
        for (i, (flushing, product, sub)) in seen.into_iter().enumerate() {
            assert!(flushing, "thread {i}: MXCSR without FTZ and DAZ");
            assert_eq!(product, 0.0, "thread {i}: 1e-40 kept as a subnormal");
            assert_eq!(sub, 0.0, "thread {i}: a subnormal input was not read as zero");
        }
    }

    fn tiny_here() -> (bool, f32, f32) {
        (flushing_here(), black_box(1e-30f32) * black_box(1e-10f32), black_box(f32::from_bits(1)) * black_box(2.0f32))
    }
}
