//! Checksums over payloads.
//!
//! [`Checksum`] is `synthetic`'s own (its summary carries one): order
//! sensitive, so a receiver that folds in every payload in the order it
//! arrives matches the child's value only if every row arrived exactly once,
//! in order, byte for byte. [`checksum`] is its per-payload part, and
//! [`Tally`] sums those where order cannot be kept (the benches' producers
//! report a tally of pre-built templates).

pub use ringworker_child::builtins::synthetic::Checksum;

/// Checksum of one payload: the wrapping sum of its little-endian words, the
/// zero-padded tail word rotated (so trailing zero bytes still count). A
/// loop the compiler vectorizes: reading every byte costs about as much as
/// the memory traffic.
#[inline]
pub fn checksum(bytes: &[u8]) -> u64 {
    ringworker_child::builtins::synthetic::word_sum(bytes)
}

/// Running totals of a stream of rows: count, payload bytes and the wrapping
/// sum of every row's [`checksum`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Rows seen.
    pub rows: u64,
    /// Payload bytes seen.
    pub bytes: u64,
    /// Wrapping sum of the rows' checksums.
    pub sum: u64,
}

impl Tally {
    /// Adds a row given its payload (reads every byte).
    #[inline]
    pub fn add(&mut self, payload: &[u8]) {
        self.add_known(payload.len(), checksum(payload));
    }

    /// Adds a row whose checksum is already known.
    #[inline]
    pub fn add_known(&mut self, len: usize, sum: u64) {
        self.rows += 1;
        self.bytes += len as u64;
        self.sum = self.sum.wrapping_add(sum);
    }

    /// Encodes as 24 little-endian bytes (rows, bytes, sum).
    pub fn to_bytes(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.rows.to_le_bytes());
        out[8..16].copy_from_slice(&self.bytes.to_le_bytes());
        out[16..].copy_from_slice(&self.sum.to_le_bytes());
        out
    }

    /// Decodes [`Tally::to_bytes`]; `None` if `bytes` is not 24 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 24 {
            return None;
        }
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Some(Tally {
            rows: word(0),
            bytes: word(1),
            sum: word(2),
        })
    }

    /// Fails unless `self` (what the consumer saw) equals `sent` (what the
    /// producer reports it sent).
    pub fn verify(&self, sent: &Tally) -> anyhow::Result<()> {
        anyhow::ensure!(
            self == sent,
            "checksum mismatch: consumer saw {} rows / {} bytes / sum {:#x}, producer sent {} rows / {} bytes / sum {:#x}",
            self.rows,
            self.bytes,
            self.sum,
            sent.rows,
            sent.bytes,
            sent.sum
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_bytes_count() {
        assert_eq!(checksum(&[]), 0);
        assert_eq!(checksum(&[1]), 1u64.rotate_left(17));
        assert_eq!(checksum(&[0, 0, 0, 0, 0, 0, 0, 0, 2]), 2u64.rotate_left(17));
        assert_eq!(checksum(&7u64.to_le_bytes()), 7);
        assert_ne!(checksum(b"\"abc\""), checksum(b"\"abd\""));
        // A trailing zero byte changes nothing in the sum, but the length
        // goes into `Checksum`.
        let (mut a, mut b) = (Checksum::default(), Checksum::default());
        a.add(&[1]);
        b.add(&[1, 0]);
        assert_ne!(a, b);
    }

    #[test]
    fn tally_round_trips() {
        let mut t = Tally::default();
        t.add(b"\"hello\"");
        assert_eq!(Tally::from_bytes(&t.to_bytes()), Some(t));
        assert!(Tally::from_bytes(&[0; 23]).is_none());
        assert!(t.verify(&Tally::default()).is_err());
        assert!(t.verify(&t).is_ok());
    }
}
