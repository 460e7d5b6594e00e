//! Elementwise maths without libm calls, so that loops over slices compile to vector code:
//! e^x, ln x, ln(1 + x), the logistic function and tanh, each a polynomial with the exponent
//! handled in the float's bits, within a few ulp of f64 (tests below). `FMA`: the same
//! polynomials as fused multiply-adds, for the AVX2 + FMA builds of the hot loops (see
//! `super::madd`).

use super::madd;

/// e^x without a libm call, so loops over gates compile to vector code (libm's expf and tanhf,
/// called per element, were most of the recurrence's time: 200 per batch row and step).
/// Cephes' expf: x = n ln2 + r, |r| <= ln2 / 2, a degree-6 polynomial for e^r (about 1 ulp),
/// 2^n from the exponent bits; rounding by the 1.5 * 2^23 trick (no `round`, which is a libm
/// call on baseline x86-64), which also leaves n in the low bits of the rounded value.
/// `FMA`: the range reduction and the polynomial as fused multiply-adds (the AVX2 + FMA build;
/// as separate multiplies and adds the polynomial was one long chain of dependent operations,
/// twice the latency, and the gate activations took more time than the recurrence's product).
#[inline(always)]
pub(crate) fn exp_v<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    const MAGIC: f32 = 12582912.0; // 1.5 * 2^23
    let t = madd::<FMA>(x, std::f32::consts::LOG2_E, MAGIC);
    let n = t - MAGIC;
    // n as an integer from t's mantissa bits (t = 1.5 * 2^23 + n exactly), not `n as i32`:
    // Rust's saturating float-to-int cast does not vectorise, and one scalar conversion and
    // lane insert per element was the hottest part of the gate activations
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = madd::<FMA>(n, 2.121_944_4e-4, madd::<FMA>(n, -0.693_359_4, x));
    let mut p = 1.987_569_1e-4f32;
    p = madd::<FMA>(p, r, 1.398_199_9e-3);
    p = madd::<FMA>(p, r, 8.333_452e-3);
    p = madd::<FMA>(p, r, 4.166_579_6e-2);
    p = madd::<FMA>(p, r, 1.666_666_5e-1);
    p = madd::<FMA>(p, r, 5.000_000_1e-1);
    let y = madd::<FMA>(p * r, r, r) + 1.0;
    y * f32::from_bits((ni.wrapping_add(127) << 23) as u32)
}

/// The logistic function as the WGSL side writes it: e^{-|x|} only, so nothing overflows.
#[inline(always)]
pub(crate) fn sigmoid_v<const FMA: bool>(x: f32) -> f32 {
    let e = exp_v::<FMA>(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 {
        s
    } else {
        e * s
    }
}

/// tanh as the WGSL side computes it (argument clamped to +/-15, where tanh is +/-1 in f32):
/// Cephes' odd polynomial below 0.625 (where 1 - e^{-2|x|} would cancel), else
/// (1 - e^{-2|x|}) / (1 + e^{-2|x|}) with the sign of x.
#[inline(always)]
pub(crate) fn tanh_c<const FMA: bool>(x: f32) -> f32 {
    let x = x.clamp(-15.0, 15.0);
    let z = x * x;
    let mut p = -5.704_988_7e-3f32;
    p = madd::<FMA>(p, z, 2.063_908_9e-2);
    p = madd::<FMA>(p, z, -5.373_971_6e-2);
    p = madd::<FMA>(p, z, 1.333_144_2e-1);
    p = madd::<FMA>(p, z, -3.333_328_2e-1);
    let small = madd::<FMA>(x * z, p, x);
    let e = exp_v::<FMA>(-2.0 * x.abs());
    let big = ((1.0 - e) / (1.0 + e)).copysign(x);
    if x.abs() < 0.625 {
        small
    } else {
        big
    }
}

/// ln x (Cephes' logf): x = 2^e m with m in [sqrt(1/2), sqrt(2)), a degree-8 polynomial in
/// m - 1. Subnormal x are scaled by 2^23 first; ln 0 = -inf, ln inf = inf, NaN or x < 0 -> NaN.
#[inline(always)]
pub(crate) fn ln_v<const FMA: bool>(x: f32) -> f32 {
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 8_388_608.0 } else { x };
    let bits = xs.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000); // [0.5, 1)
    if m < std::f32::consts::FRAC_1_SQRT_2 {
        e -= 1;
        m = m + m - 1.0;
    } else {
        m -= 1.0;
    }
    let ef = e as f32 - if sub { 23.0 } else { 0.0 };
    let z = m * m;
    let mut p = 7.037_683_6e-2f32;
    p = madd::<FMA>(p, m, -1.151_461e-1);
    p = madd::<FMA>(p, m, 1.167_699_9e-1);
    p = madd::<FMA>(p, m, -1.242_014_1e-1);
    p = madd::<FMA>(p, m, 1.424_932_3e-1);
    p = madd::<FMA>(p, m, -1.666_805_8e-1);
    p = madd::<FMA>(p, m, 2.000_071_5e-1);
    p = madd::<FMA>(p, m, -2.499_999_4e-1);
    p = madd::<FMA>(p, m, 3.333_333_1e-1);
    let mut y = p * m * z;
    y = madd::<FMA>(ef, -2.121_944_4e-4, y);
    y = madd::<FMA>(-0.5, z, y);
    let r = madd::<FMA>(ef, 0.693_359_4, m + y);
    if x > 0.0 && x < f32::INFINITY {
        r
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        f32::NAN
    }
}

/// ln(1 + x) for x >= 0 (the softplus of a likelihood's variance: x = e^{-|raw|} in (0, 1]),
/// exact where 1 + x rounds to 1: u = 1 + x, ln u * x / (u - 1), which cancels the rounding
/// of u (Goldberg, "What every computer scientist should know about floating-point", thm 4).
#[inline(always)]
pub(crate) fn ln1p_v<const FMA: bool>(x: f32) -> f32 {
    let u = 1.0 + x;
    let l = ln_v::<FMA>(u) * (x / (u - 1.0));
    if u == 1.0 {
        x
    } else {
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorisable exp, sigmoid and tanh against f64 over [-20, 20] in steps of 1e-3
    /// (and the clamped tails): within 2 ulp relative, 1e-7 absolute; the plain build and the
    /// fused multiply-add one (here through `mul_add`, exact wherever it runs).
    fn activations_match_f64<const FMA: bool>() {
        let (mut worst_exp, mut worst_sig, mut worst_tanh) = (0f64, 0f64, 0f64);
        for i in -20_000..=20_000 {
            let x = i as f32 * 1e-3;
            let xd = x as f64;
            worst_exp = worst_exp.max(((exp_v::<FMA>(x) as f64) - xd.exp()).abs() / xd.exp());
            worst_sig = worst_sig.max(((sigmoid_v::<FMA>(x) as f64) - 1.0 / (1.0 + (-xd).exp())).abs());
            worst_tanh = worst_tanh.max(((tanh_c::<FMA>(x) as f64) - xd.tanh()).abs() / xd.tanh().abs().max(1e-3));
        }
        assert!(worst_exp < 2.5e-7, "exp (FMA {FMA}): worst relative error {worst_exp}");
        assert!(worst_sig < 1.2e-7, "sigmoid (FMA {FMA}): worst absolute error {worst_sig}");
        assert!(worst_tanh < 2.5e-7, "tanh (FMA {FMA}): worst relative error {worst_tanh}");
        assert_eq!(tanh_c::<FMA>(40.0), 1.0);
        assert!(sigmoid_v::<FMA>(-200.0) < 1e-37);
    }

    /// ln and ln(1 + x) against f64: x from 1e-44 (subnormal) to 1e38 in geometric steps and
    /// [0.5, 2] in steps of 1e-5, within 2 ulp relative; the special values.
    fn logs_match_f64<const FMA: bool>() {
        let (mut worst_ln, mut worst_ln1p) = (0f64, 0f64);
        let mut xs: Vec<f32> = (0..100_000).map(|i| 0.5 + i as f32 * 1.5e-5).collect();
        let mut x = 1e-44f32;
        while x < 1e38 {
            xs.push(x);
            x = (x * 1.001).max(f32::from_bits(x.to_bits() + 1));
        }
        for &x in &xs {
            let xd = x as f64;
            let want = xd.ln();
            worst_ln = worst_ln.max(((ln_v::<FMA>(x) as f64) - want).abs() / want.abs().max(1.0));
            let want1p = xd.ln_1p();
            if x <= 1.0 {
                worst_ln1p = worst_ln1p.max(((ln1p_v::<FMA>(x) as f64) - want1p).abs() / want1p);
            }
        }
        assert!(worst_ln < 2.5e-7, "ln (FMA {FMA}): worst error {worst_ln}");
        assert!(worst_ln1p < 2.5e-7, "ln1p (FMA {FMA}): worst relative error {worst_ln1p}");
        assert_eq!(ln_v::<FMA>(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_v::<FMA>(f32::INFINITY), f32::INFINITY);
        assert!(ln_v::<FMA>(-1.0).is_nan() && ln_v::<FMA>(f32::NAN).is_nan());
        assert_eq!(ln_v::<FMA>(1.0), 0.0);
        assert_eq!(ln1p_v::<FMA>(1e-30), 1e-30);
    }

    #[test]
    fn fast_logs_match_f64() {
        logs_match_f64::<false>();
        logs_match_f64::<true>();
    }

    #[test]
    fn fast_activations_match_f64() {
        activations_match_f64::<false>();
        activations_match_f64::<true>();
    }
}
