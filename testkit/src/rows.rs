//! The row format the tests check, which is `synthetic`'s: row `sequence`
//! of a request is its per-request sequence number (little-endian, in the
//! first 8 bytes, truncated for shorter rows) followed by filler that
//! depends on seed and sequence ([`fill_row`]). The `fault` command writes
//! the same rows.
//!
//! The sequence number the supervisor puts in `Row::sequence` is its own
//! count of delivered rows, so checking it against a receiver's count cannot
//! fail. The one the child wrote into the payload can: [`RowCheck`] checks
//! order, exactly-once and every byte from what the child wrote.

pub use ringworker_child::builtins::synthetic::{
    Sizes, SyntheticRequest, SyntheticSummary, fill_row, stream_of,
};

use crate::checksum::Checksum;

/// Bytes of the embedded sequence number at the start of a row.
pub const SEQUENCE_BYTES: usize = 8;

/// The sequence number embedded in `payload`, if the row is long enough to
/// carry all of it.
pub fn embedded_sequence(payload: &[u8]) -> Option<u64> {
    let head = payload.get(..SEQUENCE_BYTES)?;
    Some(u64::from_le_bytes(head.try_into().ok()?))
}

/// Checks that `payload` starts with `sequence` as [`fill_row`] writes it
/// (the whole number, or as many of its low bytes as the row holds).
pub fn check_sequence(payload: &[u8], sequence: u64) -> Result<(), String> {
    let head = payload.len().min(SEQUENCE_BYTES);
    if payload[..head] == sequence.to_le_bytes()[..head] {
        return Ok(());
    }
    Err(match embedded_sequence(payload) {
        Some(found) => format!("expected row {sequence}, the child wrote row {found}"),
        None => format!(
            "expected row {sequence}, the child wrote a {}-byte row starting {:02x?}",
            payload.len(),
            &payload[..head]
        ),
    })
}

/// Checks that `payload` is row `sequence` of seed `seed`: its embedded
/// sequence number first (for a clear message), then every byte.
pub fn verify_row(seed: u64, sequence: u64, payload: &[u8]) -> Result<(), String> {
    verify_row_with(seed, sequence, payload, &mut Vec::new())
}

fn verify_row_with(
    seed: u64,
    sequence: u64,
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    check_sequence(payload, sequence)?;
    scratch.clear();
    scratch.resize(payload.len(), 0);
    fill_row(seed, sequence, scratch);
    if payload != &scratch[..] {
        let at = payload
            .iter()
            .zip(scratch.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(format!(
            "row {sequence} ({} bytes) differs from its content at byte {at}",
            payload.len()
        ));
    }
    Ok(())
}

/// Verifies the rows of one `synthetic`-style request as they arrive, in
/// order, from what the child wrote: row `n` must carry sequence number `n`
/// and exactly [`fill_row`]'s content; with known sizes and streams, also
/// its length and stream. Keeps the [`Checksum`] and byte count to compare
/// with the request's summary ([`RowCheck::finish`]).
#[derive(Debug, Clone)]
pub struct RowCheck {
    seed: u64,
    sizes: Option<Sizes>,
    streams: Option<u16>,
    next: u64,
    bytes: u64,
    checksum: Checksum,
    scratch: Vec<u8>,
}

impl RowCheck {
    /// Rows of seed `seed`, any length, any stream.
    pub fn new(seed: u64) -> Self {
        RowCheck {
            seed,
            sizes: None,
            streams: None,
            next: 0,
            bytes: 0,
            checksum: Checksum::default(),
            scratch: Vec::new(),
        }
    }

    /// The rows `request` asks `synthetic` for: its seed, sizes and streams.
    pub fn for_request(request: &SyntheticRequest) -> Self {
        RowCheck {
            sizes: Some(request.sizes),
            streams: Some(request.streams),
            ..RowCheck::new(request.seed)
        }
    }

    /// Rows of seed `seed` and `len` bytes each, all on stream 0 (what the
    /// `fault` command writes with seed 0 and 64 bytes).
    pub fn fixed(seed: u64, len: u32) -> Self {
        RowCheck {
            sizes: Some(Sizes::Fixed { bytes: len }),
            streams: Some(1),
            ..RowCheck::new(seed)
        }
    }

    /// Checks the next row; returns the sequence number it carried.
    pub fn check(&mut self, stream: u16, payload: &[u8]) -> Result<u64, String> {
        let sequence = self.next;
        if let Some(sizes) = self.sizes {
            let len = sizes.size_of(self.seed, sequence);
            if payload.len() != len {
                // A wrong length usually means a lost or repeated row: say
                // which row the child wrote, if it carries its number.
                let carried = embedded_sequence(payload)
                    .map(|s| format!(" (it carries sequence {s})"))
                    .unwrap_or_default();
                return Err(format!(
                    "row {sequence} has {} bytes, not {len}{carried}",
                    payload.len()
                ));
            }
        }
        if let Some(streams) = self.streams {
            let expected = stream_of(streams, sequence);
            if stream != expected {
                return Err(format!(
                    "row {sequence} arrived on stream {stream}, not {expected}"
                ));
            }
        }
        verify_row_with(self.seed, sequence, payload, &mut self.scratch)?;
        self.checksum.add(payload);
        self.bytes += payload.len() as u64;
        self.next += 1;
        Ok(sequence)
    }

    /// Rows verified so far.
    pub fn rows(&self) -> u64 {
        self.next
    }

    /// Payload bytes verified so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// [`Checksum`] of the rows verified so far.
    pub fn checksum(&self) -> u64 {
        self.checksum.value()
    }

    /// Checks that `summary` reports exactly the rows, bytes and checksum
    /// received.
    pub fn finish(&self, summary: &SyntheticSummary) -> Result<(), String> {
        let seen = SyntheticSummary {
            rows: self.next,
            bytes: self.bytes,
            checksum: self.checksum.value(),
        };
        if *summary == seen {
            Ok(())
        } else {
            Err(format!(
                "the child reports {summary:?}, the sink saw {seen:?}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_their_sequence() {
        let mut row = vec![0u8; 100];
        fill_row(5, 1234, &mut row);
        assert_eq!(embedded_sequence(&row), Some(1234));
        assert!(check_sequence(&row, 1234).is_ok());
        assert!(check_sequence(&row, 1235).is_err());
        assert!(verify_row(5, 1234, &row).is_ok());
        assert!(verify_row(6, 1234, &row).is_err(), "the seed shows");
        let mut short = [0u8; 3];
        fill_row(5, 0x0102_0304, &mut short);
        assert_eq!(embedded_sequence(&short), None);
        assert!(check_sequence(&short, 0x0102_0304).is_ok());
        assert!(check_sequence(&short, 0x0102_0305).is_err());
        assert!(check_sequence(&[], 99).is_ok());
    }

    #[test]
    fn row_check_catches_loss_duplication_and_corruption() {
        let request = SyntheticRequest::new(50, Sizes::Uniform { min: 0, max: 300 })
            .with_streams(3)
            .with_seed(9);
        let row = |seq: u64| {
            let mut r = vec![0u8; request.sizes.size_of(request.seed, seq)];
            fill_row(request.seed, seq, &mut r);
            (stream_of(3, seq), r)
        };
        let mut check = RowCheck::for_request(&request);
        let mut summary = Checksum::default();
        let mut bytes = 0;
        for seq in 0..50 {
            let (stream, payload) = row(seq);
            assert_eq!(check.check(stream, &payload), Ok(seq));
            summary.add(&payload);
            bytes += payload.len() as u64;
        }
        let good = SyntheticSummary {
            rows: 50,
            bytes,
            checksum: summary.value(),
        };
        assert!(check.finish(&good).is_ok());
        assert!(
            check
                .finish(&SyntheticSummary { rows: 49, ..good })
                .is_err()
        );

        let mut lost = RowCheck::for_request(&request);
        let (s0, p0) = row(0);
        lost.check(s0, &p0).unwrap();
        let (_, p2) = row(2);
        assert!(lost.check(stream_of(3, 1), &p2).is_err(), "row 1 lost");

        let mut duplicated = RowCheck::fixed(0, 64);
        let mut r = [0u8; 64];
        fill_row(0, 0, &mut r);
        duplicated.check(0, &r).unwrap();
        assert!(duplicated.check(0, &r).is_err(), "row 0 twice");

        let mut corrupt = RowCheck::fixed(0, 64);
        r[40] ^= 1;
        assert!(corrupt.check(0, &r).unwrap_err().contains("byte 40"));
        let mut wrong_stream = RowCheck::fixed(0, 64);
        r[40] ^= 1;
        assert!(wrong_stream.check(1, &r).is_err());
    }
}
