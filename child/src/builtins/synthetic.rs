//! `synthetic`: N rows whose sizes and bytes are a pure function of
//! `(seed, sequence)`, so a receiver can verify every byte.

use serde::{Deserialize, Serialize};

use crate::{CommandError, RowWriter};

/// How row payload sizes are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sizes {
    /// Every row has `bytes` bytes.
    Fixed {
        /// Payload bytes.
        bytes: u32,
    },
    /// Uniform in `min ..= max`.
    Uniform {
        /// Smallest payload.
        min: u32,
        /// Largest payload.
        max: u32,
    },
    /// Log-normal around `median` with shape `sigma`, clipped to `min ..= max`.
    LogNormal {
        /// Median payload size.
        median: u32,
        /// Shape parameter.
        sigma: f64,
        /// Smallest payload.
        min: u32,
        /// Largest payload.
        max: u32,
    },
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes::Fixed { bytes: 100 }
    }
}

impl Sizes {
    /// The largest size this distribution yields.
    pub fn max(&self) -> u32 {
        match *self {
            Sizes::Fixed { bytes } => bytes,
            Sizes::Uniform { max, .. } | Sizes::LogNormal { max, .. } => max,
        }
    }

    /// The payload size of row `sequence`.
    #[inline]
    pub fn size_of(&self, seed: u64, sequence: u64) -> usize {
        match *self {
            Sizes::Fixed { bytes } => bytes as usize,
            Sizes::Uniform { min, max } => {
                let span = u64::from(max.saturating_sub(min)) + 1;
                (u64::from(min) + mix(seed ^ sequence.wrapping_mul(0x9E37_79B9)) % span) as usize
            }
            Sizes::LogNormal {
                median,
                sigma,
                min,
                max,
            } => {
                let r = mix(seed ^ sequence.wrapping_mul(0x9E37_79B9));
                let u1 = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                let u2 = (mix(r) >> 11) as f64 / (1u64 << 53) as f64;
                let size = log_normal(f64::from(median), sigma, u1, u2);
                (size.round() as u64).clamp(u64::from(min), u64::from(max)) as usize
            }
        }
    }
}

/// Arguments of `synthetic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyntheticRequest {
    /// Rows to produce.
    pub rows: u64,
    /// Payload size distribution.
    #[serde(default)]
    pub sizes: Sizes,
    /// Rows go round-robin to streams `0 .. streams`.
    #[serde(default = "one")]
    pub streams: u16,
    /// Seed of sizes and contents.
    #[serde(default)]
    pub seed: u64,
    /// Rows per second, if limited.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Iterations of dummy CPU work per row.
    #[serde(default)]
    pub work_iters: u32,
    /// Send a progress record every this many rows (0: never).
    #[serde(default)]
    pub progress_every: u64,
}

fn one() -> u16 {
    1
}

impl SyntheticRequest {
    /// `rows` rows sized by `sizes` on one stream, seed 0, unpaced, no CPU
    /// work, no progress.
    pub fn new(rows: u64, sizes: Sizes) -> Self {
        SyntheticRequest {
            rows,
            sizes,
            streams: 1,
            seed: 0,
            rate: None,
            work_iters: 0,
            progress_every: 0,
        }
    }

    /// `rows` rows of `bytes` bytes on one stream, seed 0.
    pub fn fixed(rows: u64, bytes: u32) -> Self {
        Self::new(rows, Sizes::Fixed { bytes })
    }

    /// Spreads the rows round-robin over `streams` streams.
    pub fn with_streams(mut self, streams: u16) -> Self {
        self.streams = streams;
        self
    }

    /// Sets the seed of sizes and contents.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Paces the rows at `rate` per second.
    pub fn with_rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }
}

/// Summary of `synthetic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticSummary {
    /// Rows written.
    pub rows: u64,
    /// Payload bytes written.
    pub bytes: u64,
    /// [`Checksum`] over all payloads, in order.
    pub checksum: u64,
}

/// Order-sensitive checksum over a sequence of payloads; the same function
/// on both sides verifies delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum(u64);

impl Checksum {
    /// Folds one payload in.
    #[inline]
    pub fn add(&mut self, payload: &[u8]) {
        self.fold((payload.len() as u64).wrapping_add(word_sum(payload)));
    }

    /// Folds in the payload `prefix ++ rest` without materializing it (same
    /// result as [`Checksum::add`] on the concatenation: `rest`'s words start
    /// right after the 8-byte prefix).
    #[inline]
    pub fn add_prefixed(&mut self, prefix: [u8; 8], rest: &[u8]) {
        let len = (8 + rest.len()) as u64;
        self.fold(
            len.wrapping_add(u64::from_le_bytes(prefix))
                .wrapping_add(word_sum(rest)),
        );
    }

    #[inline]
    fn fold(&mut self, row_sum: u64) {
        self.0 = self
            .0
            .wrapping_mul(0x0000_0100_0000_01B3)
            .wrapping_add(row_sum);
    }

    /// The value so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// Wrapping sum of the little-endian words of `bytes`, the zero-padded tail
/// word rotated so that trailing zero bytes still count: the per-payload part
/// of [`Checksum`], order-insensitive on its own.
#[inline]
pub fn word_sum(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut sum = 0u64;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        sum = sum.wrapping_add(u64::from_le_bytes(word));
    }
    sum.wrapping_add(tail_word(chunks.remainder()).rotate_left(17))
}

/// The zero-padded little-endian word of the last `< 8` bytes, assembled in
/// a register: copying them into a stack array and loading that as a `u64`
/// stalls on store forwarding, once per row.
#[inline]
fn tail_word(tail: &[u8]) -> u64 {
    tail.iter()
        .enumerate()
        .fold(0, |word, (i, &b)| word | (u64::from(b) << (8 * i)))
}

/// 64 KiB of pseudo-random filler shared by all rows.
fn pattern() -> &'static [u8] {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state = 0x5EED_u64;
        (0..PATTERN_BYTES)
            .map(|_| {
                state = mix(state);
                state as u8
            })
            .collect()
    })
}

const PATTERN_BYTES: usize = 64 << 10;

/// Where the filler of row `sequence` starts in the pattern.
#[inline]
fn filler_offset(seed: u64, sequence: u64) -> usize {
    (seed.wrapping_add(sequence.wrapping_mul(61)) % (PATTERN_BYTES as u64 / 2)) as usize
}

/// The filler of a row of `len >= 8` bytes as one slice of `pattern` (the
/// [`pattern`]), when it is one (rows up to 32 KiB always are).
#[inline]
fn filler_in(
    pattern: &'static [u8],
    seed: u64,
    sequence: u64,
    len: usize,
) -> Option<&'static [u8]> {
    let offset = filler_offset(seed, sequence);
    let rest = len.checked_sub(8)?;
    pattern.get(offset..offset + rest)
}

/// Fills `buf` with the content of row `sequence`: the sequence number
/// (little-endian, truncated to the row) followed by filler that depends on
/// seed and sequence.
#[inline]
pub fn fill_row(seed: u64, sequence: u64, buf: &mut [u8]) {
    let head = buf.len().min(8);
    buf[..head].copy_from_slice(&sequence.to_le_bytes()[..head]);
    let rest = &mut buf[head..];
    let pattern = pattern();
    let mut offset = filler_offset(seed, sequence);
    let mut filled = 0;
    while filled < rest.len() {
        let n = (rest.len() - filled).min(PATTERN_BYTES - offset);
        rest[filled..filled + n].copy_from_slice(&pattern[offset..offset + n]);
        filled += n;
        offset = 0;
    }
}

/// The stream row `sequence` goes to.
pub fn stream_of(streams: u16, sequence: u64) -> u16 {
    (sequence % u64::from(streams.max(1))) as u16
}

/// Runs the command.
pub fn run(
    request: SyntheticRequest,
    writer: &mut RowWriter<'_>,
) -> Result<SyntheticSummary, CommandError> {
    if request.sizes.max() as usize > writer.max_row() {
        return Err(CommandError::bad_request(format!(
            "rows of up to {} bytes exceed the ring's maximum row of {} bytes",
            request.sizes.max(),
            writer.max_row()
        )));
    }
    if request.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(CommandError::bad_request("rate must be a positive number"));
    }
    let started = std::time::Instant::now();
    let mut checksum = Checksum::default();
    let mut bytes = 0u64;
    // Hoisted out of the row loop: the per-row cost of this command is what
    // the end-to-end benchmark compares with the raw ring's producer.
    let pattern = pattern();
    let fixed_len = match request.sizes {
        Sizes::Fixed { bytes } => Some(bytes as usize),
        _ => None,
    };
    let single_stream = request.streams <= 1;
    for sequence in 0..request.rows {
        if sequence % 1024 == 0 && writer.is_cancelled() {
            return Err(CommandError::cancelled());
        }
        let len = match fixed_len {
            Some(len) => len,
            None => request.sizes.size_of(request.seed, sequence),
        };
        let stream = if single_stream {
            0
        } else {
            stream_of(request.streams, sequence)
        };
        let mut slot = writer.reserve(stream, len)?;
        // Checksummed from the source bytes: reading back the slot just
        // written would stall on store forwarding and measure the checksum,
        // not the ring.
        match filler_in(pattern, request.seed, sequence, len) {
            Some(filler) => {
                slot.payload_mut()[..8].copy_from_slice(&sequence.to_le_bytes());
                slot.copy_at(8, filler);
                checksum.add_prefixed(sequence.to_le_bytes(), filler);
            }
            None => {
                let payload = slot.payload_mut();
                fill_row(request.seed, sequence, payload);
                checksum.add(payload);
            }
        }
        slot.commit();
        bytes += len as u64;
        for i in 0..request.work_iters {
            std::hint::black_box(i);
        }
        if request.progress_every > 0 && (sequence + 1) % request.progress_every == 0 {
            writer.progress(sequence + 1, Some(request.rows), None)?;
        }
        if let Some(rate) = request.rate {
            let due = started + std::time::Duration::from_secs_f64((sequence + 1) as f64 / rate);
            let now = std::time::Instant::now();
            if due > now {
                writer.flush();
                std::thread::sleep(due - now);
            }
        }
    }
    Ok(SyntheticSummary {
        rows: request.rows,
        bytes,
        checksum: checksum.value(),
    })
}

/// A log-normal draw with median `median` and shape `sigma` from two
/// uniforms `u1` in `(0, 1]` and `u2` in `[0, 1)` (Box-Muller).
#[inline]
pub fn log_normal(median: f64, sigma: f64, u1: f64, u2: f64) -> f64 {
    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * normal).exp()
}

/// One SplitMix64 step from state `z`: the output for the state
/// `z + 0x9E37_79B9_7F4A_7C15`. The hash behind sizes and filler.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_in_bounds_and_are_deterministic() {
        let dist = Sizes::LogNormal {
            median: 200,
            sigma: 1.0,
            min: 16,
            max: 4096,
        };
        let sizes: Vec<usize> = (0..10_000).map(|s| dist.size_of(7, s)).collect();
        assert!(sizes.iter().all(|&s| (16..=4096).contains(&s)));
        assert_eq!(
            sizes,
            (0..10_000).map(|s| dist.size_of(7, s)).collect::<Vec<_>>()
        );
        let distinct: std::collections::HashSet<_> = sizes.iter().collect();
        assert!(distinct.len() > 100);
        let uniform = Sizes::Uniform { min: 3, max: 9 };
        assert!((0..1000).all(|s| (3..=9).contains(&uniform.size_of(1, s))));
    }

    #[test]
    fn prefixed_checksum_equals_checksum_of_the_concatenation() {
        for len in [8usize, 9, 15, 16, 17, 100, 4096] {
            let mut row = vec![0u8; len];
            fill_row(3, 77, &mut row);
            let (mut whole, mut split) = (Checksum::default(), Checksum::default());
            whole.add(&row);
            split.add_prefixed(
                row[..8].try_into().unwrap(),
                filler_in(pattern(), 3, 77, len).unwrap(),
            );
            assert_eq!(whole, split, "len {len}");
            assert_eq!(&row[8..], filler_in(pattern(), 3, 77, len).unwrap());
        }
        assert_eq!(filler_in(pattern(), 3, 77, 7), None);
    }

    #[test]
    fn rows_carry_their_sequence_and_checksum_is_order_sensitive() {
        let mut a = vec![0u8; 300];
        fill_row(1, 42, &mut a);
        assert_eq!(u64::from_le_bytes(a[..8].try_into().unwrap()), 42);
        let mut b = vec![0u8; 300];
        fill_row(1, 43, &mut b);
        assert_ne!(a[8..], b[8..]);
        let (mut x, mut y) = (Checksum::default(), Checksum::default());
        x.add(&a);
        x.add(&b);
        y.add(&b);
        y.add(&a);
        assert_ne!(x, y);
    }
}
