//! The rows both transports carry: JSON string literals of a chosen size.
//!
//! Every payload is `"` + printable filler + `"`, so the very same bytes are
//! a valid raw JSON value for the pipe baseline and an opaque payload for the
//! ring. A run cycles through a small set of pre-built templates (different
//! content and, for the mixed case, different sizes), generated
//! deterministically from a seed so that producer and consumer could both
//! rebuild them; the consumer does not need to: it checksums what arrives and
//! compares with what the producer reports.

use std::fmt;
use std::str::FromStr;

use crate::checksum::checksum;

/// Smallest payload: an empty JSON string `""`.
pub const MIN_ROW_BYTES: usize = 2;
/// Clip bounds of the mixed size distribution.
pub const MIXED_MIN: usize = 16;
/// Upper clip bound of the mixed size distribution.
pub const MIXED_MAX: usize = 4096;
/// Median of the mixed (log-normal) size distribution.
pub const MIXED_MEDIAN: f64 = 256.0;
/// Sigma of the underlying normal of the mixed size distribution.
pub const MIXED_SIGMA: f64 = 1.0;

/// Payload sizes of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeSpec {
    /// Every row has exactly this many bytes.
    Fixed(usize),
    /// Log-normal sizes (median [`MIXED_MEDIAN`], sigma [`MIXED_SIGMA`])
    /// clipped to `[MIXED_MIN, MIXED_MAX]`.
    Mixed,
}

impl SizeSpec {
    /// Largest row this spec produces.
    pub fn max_bytes(&self) -> usize {
        match *self {
            SizeSpec::Fixed(n) => n,
            SizeSpec::Mixed => MIXED_MAX,
        }
    }

    /// Checks the spec can be expressed as JSON string payloads of at most
    /// `max_payload` bytes.
    pub fn validate(&self, max_payload: usize) -> anyhow::Result<()> {
        if let SizeSpec::Fixed(n) = *self {
            anyhow::ensure!(
                n >= MIN_ROW_BYTES,
                "row size {n} B is too small: payloads are JSON string literals, at least {MIN_ROW_BYTES} bytes (\"\")"
            );
        }
        anyhow::ensure!(
            self.max_bytes() <= max_payload,
            "rows of up to {} B do not fit the ring: its maximum record payload is {max_payload} B (raise --capacity; the limit is capacity / 8 - 16)",
            self.max_bytes()
        );
        Ok(())
    }
}

impl fmt::Display for SizeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSpec::Fixed(n) => write!(f, "{n}"),
            SizeSpec::Mixed => f.write_str("mixed"),
        }
    }
}

impl FromStr for SizeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "mixed" {
            return Ok(SizeSpec::Mixed);
        }
        s.parse::<usize>()
            .map(SizeSpec::Fixed)
            .map_err(|e| format!("size must be a byte count or `mixed`: {e}"))
    }
}

/// The deterministic generator of the templates: the test kit's.
pub use ringworker_testkit::rng::SplitMix;

/// Pre-built payloads that a run cycles through, with their checksums.
#[derive(Debug, Clone)]
pub struct RowTemplates {
    bytes: Vec<u8>,
    /// `(start, len, checksum)` of each template in `bytes`.
    rows: Vec<(usize, usize, u64)>,
    mask: usize,
}

/// Budget for the concatenated templates (keeps them cache-resident).
const TEMPLATE_BUDGET: usize = 1 << 20;

impl RowTemplates {
    /// Builds the templates for `spec` from `seed`. `spec` must have passed
    /// [`SizeSpec::validate`].
    pub fn new(spec: SizeSpec, seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let count = (TEMPLATE_BUDGET / spec.max_bytes().max(1))
            .clamp(16, 1024)
            .next_power_of_two();
        const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:";
        let mut bytes = Vec::new();
        let mut rows = Vec::with_capacity(count);
        for _ in 0..count {
            let len = match spec {
                SizeSpec::Fixed(n) => n,
                SizeSpec::Mixed => mixed_size(&mut rng),
            };
            let start = bytes.len();
            bytes.push(b'"');
            for _ in 0..len.saturating_sub(2) {
                bytes.push(FILLER[(rng.next_u64() % FILLER.len() as u64) as usize]);
            }
            if len >= 2 {
                bytes.push(b'"');
            }
            rows.push((start, len, checksum(&bytes[start..start + len])));
        }
        RowTemplates {
            bytes,
            mask: count - 1,
            rows,
        }
    }

    /// Payload and checksum of row number `i`.
    #[inline]
    pub fn row(&self, i: u64) -> (&[u8], u64) {
        let (start, len, sum) = self.rows[i as usize & self.mask];
        (&self.bytes[start..start + len], sum)
    }

    /// Number of distinct templates.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Always false (there is at least one template).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Mean payload size over the templates (= over a long run).
    pub fn mean_bytes(&self) -> f64 {
        self.rows.iter().map(|r| r.1 as f64).sum::<f64>() / self.rows.len() as f64
    }
}

/// One draw from the mixed distribution.
fn mixed_size(rng: &mut SplitMix) -> usize {
    rng.log_normal_size(MIXED_MEDIAN, MIXED_SIGMA, MIXED_MIN, MIXED_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_json_strings_of_the_right_size() {
        for spec in [SizeSpec::Fixed(2), SizeSpec::Fixed(100), SizeSpec::Mixed] {
            let t = RowTemplates::new(spec, 7);
            for i in 0..t.len() as u64 {
                let (p, sum) = t.row(i);
                let v: serde_json::Value = serde_json::from_slice(p).unwrap();
                assert!(v.is_string());
                assert_eq!(sum, checksum(p));
                match spec {
                    SizeSpec::Fixed(n) => assert_eq!(p.len(), n),
                    SizeSpec::Mixed => assert!((MIXED_MIN..=MIXED_MAX).contains(&p.len())),
                }
            }
        }
    }

    #[test]
    fn bad_sizes_are_rejected() {
        assert!(SizeSpec::Fixed(0).validate(1000).is_err());
        assert!(SizeSpec::Fixed(1).validate(1000).is_err());
        assert!(SizeSpec::Fixed(1001).validate(1000).is_err());
        assert!(SizeSpec::Mixed.validate(1000).is_err());
        assert!(SizeSpec::Fixed(1000).validate(1000).is_ok());
        assert_eq!("mixed".parse::<SizeSpec>(), Ok(SizeSpec::Mixed));
        assert!("x".parse::<SizeSpec>().is_err());
    }
}
