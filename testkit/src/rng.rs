//! The deterministic generator and the size distributions.
//!
//! All of them are built on `synthetic`'s hash ([`mix`]), so a test that
//! draws sizes the way `synthetic` does gets the same sizes.

pub use ringworker_child::builtins::synthetic::{Sizes, log_normal, mix};

/// A deterministic 64-bit generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next value.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let out = mix(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        out
    }

    /// Uniform in `0..n` (`n > 0`; modulo bias is irrelevant for tests).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `(0, 1]`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A log-normal size with median `median` and shape `sigma`, rounded
    /// and clipped to `min ..= max`.
    pub fn log_normal_size(&mut self, median: f64, sigma: f64, min: usize, max: usize) -> usize {
        let (u1, u2) = (self.unit(), self.unit());
        (log_normal(median, sigma, u1, u2).round() as usize).clamp(min, max)
    }
}

/// A heavy-tailed size of row `sequence`, a pure function of
/// `(seed, sequence)`: uniform in `0 ..= small_max` for most rows, and for
/// one row in 128 uniform in `small_max + 1 ..= small_max + large_span`.
pub fn heavy_tail_size(seed: u64, sequence: u64, small_max: usize, large_span: usize) -> usize {
    let h = mix(seed ^ sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    if h & 127 == 0 {
        small_max + 1 + ((h >> 8) % large_span as u64) as usize
    } else {
        ((h >> 8) % (small_max as u64 + 1)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_the_reference_sequence() {
        // SplitMix64 with seed 0 (Vigna's reference outputs).
        let mut rng = SplitMix::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut again = SplitMix::new(0);
        again.next_u64();
        assert_eq!(again.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn draws_stay_in_their_bounds() {
        let mut rng = SplitMix::new(7);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!(u > 0.0 && u <= 1.0);
            assert!(rng.below(5) < 5);
            assert!((16..=4096).contains(&rng.log_normal_size(256.0, 1.0, 16, 4096)));
        }
        let sizes: Vec<usize> = (0..100_000)
            .map(|s| heavy_tail_size(3, s, 512, 16 << 10))
            .collect();
        assert!(sizes.iter().all(|&s| s <= 512 + (16 << 10)));
        let large = sizes.iter().filter(|&&s| s > 512).count();
        assert!((400..1200).contains(&large), "{large} large rows");
    }
}
