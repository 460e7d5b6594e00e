//! The one random number generator of ssvae: Philox4x32-10 (Salmon et al., SC 2011), a
//! counter-based generator. Every draw is a pure function of (seed, step, stream, element
//! index), so the GPU (shaders/sample.wgsl, the same code line for line) and the CPU draw the
//! same bits in any order, and a whole training step can be compared between backends.
//!
//! Counter = (index, step, stream, 0), key = (seed_lo, seed_hi). WGSL has no 32x32->64
//! multiply, so the shader's `mulhilo` is written with 16-bit halves; the CPU multiplies in 64
//! bits, which gives the same words (`mulhilo_halves`, the shader's form, is checked against it).

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// High and low 32 bits of a*b: one 64-bit multiply (the 16-bit halves of
/// [`mulhilo_halves`], four multiplies and a dozen adds and shifts, were most of the cost of a
/// draw: 20 of them per element).
#[inline]
pub fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// High and low 32 bits of a*b, computed the way the shader does (WGSL has no 64-bit
/// integers): the reference [`mulhilo`] is checked against.
#[inline]
pub fn mulhilo_halves(a: u32, b: u32) -> (u32, u32) {
    let (a_lo, a_hi) = (a & 0xFFFF, a >> 16);
    let (b_lo, b_hi) = (b & 0xFFFF, b >> 16);
    let lolo = a_lo * b_lo;
    let lohi = a_lo * b_hi;
    let hilo = a_hi * b_lo;
    let hihi = a_hi * b_hi;
    let cross = (lolo >> 16) + (lohi & 0xFFFF) + (hilo & 0xFFFF);
    let hi = hihi.wrapping_add(lohi >> 16).wrapping_add(hilo >> 16).wrapping_add(cross >> 16);
    (hi, a.wrapping_mul(b))
}

/// Philox4x32 with 10 rounds.
#[inline]
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The counter-buffer contents for a seed and step: `[seed_lo, seed_hi, step]`.
pub fn counter(seed: u64, step: u32) -> [u32; 3] {
    [seed as u32, (seed >> 32) as u32, step]
}

/// The four words drawn for one element.
#[inline]
pub fn draw(ctr: &[u32], stream: u32, index: u32) -> [u32; 4] {
    philox4x32([index, ctr[2], stream, 0], [ctr[0], ctr[1]])
}

/// Uniform in [0, 1) from the top 24 bits (exact in f32, identical on both backends).
#[inline]
pub fn uniform(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Standard normal by Box-Muller from two words (u1 in (0, 1] so the log is finite).
#[inline]
pub fn normal(w0: u32, w1: u32) -> f32 {
    let u1 = ((w0 >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let u2 = uniform(w1);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Standard Gumbel noise -ln(-ln u) from one word, u = (top 23 bits + 1/2) / 2^23 in
/// [2^-24, 1 - 2^-24], exact in f32 (with 24 bits the largest value, 1 - 2^-25, would round to
/// 1 and give +inf), so both logs are finite: g in [-2.8, 16.6].
#[inline]
pub fn gumbel(bits: u32) -> f32 {
    let u = ((bits >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0);
    -(-u.ln()).ln()
}

/// The Gaussian draw for one element, as both backends compute it.
#[inline]
pub fn normal_at(ctr: &[u32], stream: u32, index: u32) -> f32 {
    let w = draw(ctr, stream, index);
    normal(w[0], w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulhilo_matches_the_shaders_halves() {
        let vals = [0u32, 1, 2, 0xFFFF, 0x10000, 0xFFFF_FFFF, 0xD251_1F53, 0x1234_5678, 0x8000_0000];
        for &a in &vals {
            for &b in &vals {
                let p = a as u64 * b as u64;
                assert_eq!(mulhilo_halves(a, b), ((p >> 32) as u32, p as u32), "{a:#x} * {b:#x}");
                assert_eq!(mulhilo(a, b), mulhilo_halves(a, b), "{a:#x} * {b:#x}");
            }
        }
        // and a million pseudo-random pairs
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1_000_000 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let (a, b) = ((s >> 32) as u32, s as u32 ^ (s >> 17) as u32);
            assert_eq!(mulhilo(a, b), mulhilo_halves(a, b), "{a:#x} * {b:#x}");
        }
    }

    #[test]
    fn philox_known_answer() {
        // Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
        assert_eq!(philox4x32([0, 0, 0, 0], [0, 0]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox4x32([0xffff_ffff; 4], [0xffff_ffff; 2]), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        assert_eq!(
            philox4x32([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }
}
