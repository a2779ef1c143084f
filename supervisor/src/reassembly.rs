//! Reassembly of rows larger than the ring's maximum record from their
//! fragment records, with every framing rule the supervisor enforces.

use shm_proto::Record;
use shm_proto::record::fragment;

/// Reassembly buffers above this capacity are freed after their row is
/// delivered, so a one-off huge row does not pin its memory for the rest of
/// the request; up to it, the buffer is reused by the next large row (a
/// fresh allocation costs a page fault per 4 KiB, as much as the copy).
/// Whatever is kept is freed when the request ends.
const KEEP_ASSEMBLY_CAPACITY: usize = 32 << 20;

/// A row larger than the ring's maximum record being put back together from
/// its [`RecordKind::Fragment`] records (framing in `shm_proto::record`).
/// Every fragment is copied into private memory and released at once, so the
/// producer keeps streaming; a row is never held in the ring.
#[derive(Default)]
pub(crate) struct Reassembly {
    /// The row in progress: its stream and announced total length.
    pub(crate) partial: Option<(u16, usize)>,
    /// The bytes so far (private memory, bounded by the per-row limit).
    pub(crate) buf: Vec<u8>,
}

impl Reassembly {
    /// Takes in one fragment; `Ok(true)` once the row is complete in `buf`.
    /// Every violation of the framing is a protocol error.
    #[cold]
    #[inline(never)]
    pub(crate) fn push(
        &mut self,
        record: &Record<'_>,
        max_row_bytes: u64,
    ) -> Result<bool, &'static str> {
        let flags = record.header().flags;
        if flags & !(fragment::FIRST | fragment::LAST) != 0 {
            return Err("fragment with unknown flags");
        }
        let from = match (self.partial, flags & fragment::FIRST != 0) {
            (Some(_), true) => return Err("a fragmented row began inside another one"),
            (None, false) => return Err("continuation fragment without a first fragment"),
            (None, true) => {
                let Some(prefix) = record.copy_prefix::<{ fragment::TOTAL_PREFIX_BYTES }>() else {
                    return Err("first fragment shorter than its length prefix");
                };
                let total = u64::from_le_bytes(prefix);
                // Checked before anything is allocated or accumulated.
                if total > max_row_bytes {
                    return Err("fragmented row announced above the per-row limit");
                }
                let total = usize::try_from(total).map_err(|_| "row length overflows usize")?;
                self.buf.clear();
                self.buf.reserve_exact(total);
                self.partial = Some((record.stream(), total));
                fragment::TOTAL_PREFIX_BYTES
            }
            (Some((stream, _)), false) => {
                if record.stream() != stream {
                    return Err("fragment on another stream than the first of its row");
                }
                0
            }
        };
        let Some((_, total)) = self.partial else {
            unreachable!("set above")
        };
        let len = (record.header().len as usize).saturating_sub(from);
        if self.buf.len() + len > total {
            return Err("fragments exceed the announced row length");
        }
        record.append_payload_into(from, &mut self.buf);
        if flags & fragment::LAST == 0 {
            return Ok(false);
        }
        if self.buf.len() != total {
            return Err("last fragment does not complete the announced row length");
        }
        Ok(true)
    }

    /// Forgets the row in progress (delivered or abandoned), freeing a buffer
    /// grown past [`KEEP_ASSEMBLY_CAPACITY`]. True if a row was in progress.
    pub(crate) fn reset(&mut self) -> bool {
        self.buf.clear();
        if self.buf.capacity() > KEEP_ASSEMBLY_CAPACITY {
            self.buf = Vec::new();
        }
        self.partial.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shm_proto::{Consumer, Producer, RecordKind, RecordMeta, RingConfig};

    const MAX: usize = 1024;

    fn ring() -> (Producer, Consumer) {
        shm_proto::ring(&RingConfig::with_capacity(64 << 10).with_max_payload(MAX)).unwrap()
    }

    fn piece(flags: u8, stream: u16) -> RecordMeta {
        RecordMeta {
            kind: RecordKind::Fragment,
            stream,
            request: 1,
            flags,
        }
    }

    fn first(total: u64, body: &[u8]) -> Vec<u8> {
        let mut out = total.to_le_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// Feeds every record in the ring to a reassembly; the first error, or
    /// the completed rows.
    fn feed(consumer: &mut Consumer, limit: u64) -> Result<Vec<Vec<u8>>, &'static str> {
        let mut reassembly = Reassembly::default();
        let mut rows = Vec::new();
        while let Some(record) = consumer.try_recv().unwrap() {
            if reassembly.push(&record, limit)? {
                rows.push(reassembly.buf.clone());
                reassembly.reset();
            }
        }
        Ok(rows)
    }

    #[test]
    fn producer_fragments_reassemble_exactly() {
        let (mut tx, mut rx) = ring();
        let row: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        tx.push_fragmented(RecordMeta::data(1, 3), &row).unwrap();
        tx.push_fragmented(RecordMeta::data(1, 3), &row[..100])
            .unwrap();
        tx.flush();
        assert_eq!(
            feed(&mut rx, 1 << 20).unwrap(),
            vec![row.clone(), row[..100].to_vec()]
        );
    }

    #[test]
    fn producer_refuses_rows_over_its_limit_and_writes_nothing() {
        let (mut tx, mut rx) = ring();
        tx.set_max_row_bytes(5000);
        let err = tx
            .push_fragmented(RecordMeta::data(1, 0), &[0u8; 5001])
            .unwrap_err();
        assert!(matches!(
            err,
            shm_proto::RingError::RowTooLarge {
                len: 5001,
                max: 5000
            }
        ));
        tx.flush();
        assert!(rx.try_recv().unwrap().is_none());
    }

    #[test]
    fn framing_violations_are_errors() {
        type Case = (&'static str, Vec<(u8, u16, Vec<u8>)>, u64);
        use fragment::{FIRST, LAST};
        let cases: Vec<Case> = vec![
            ("continuation first", vec![(LAST, 0, vec![1; 8])], 1 << 20),
            (
                "first inside a row",
                vec![
                    (FIRST, 0, first(100, &[1; 8])),
                    (FIRST, 0, first(100, &[1; 8])),
                ],
                1 << 20,
            ),
            ("short prefix", vec![(FIRST, 0, vec![1; 7])], 1 << 20),
            (
                "over the limit",
                vec![(FIRST, 0, first(2000, &[1; 8]))],
                1999,
            ),
            (
                "more than announced",
                vec![(FIRST, 0, first(10, &[1; 8])), (LAST, 0, vec![1; 3])],
                1 << 20,
            ),
            (
                "last short of the total",
                vec![(FIRST, 0, first(10, &[1; 8])), (LAST, 0, vec![1; 1])],
                1 << 20,
            ),
            (
                "other stream",
                vec![(FIRST, 0, first(10, &[1; 8])), (LAST, 1, vec![1; 2])],
                1 << 20,
            ),
            (
                "unknown flag",
                vec![(FIRST | 4, 0, first(1, &[1]))],
                1 << 20,
            ),
        ];
        for (name, records, limit) in cases {
            let (mut tx, mut rx) = ring();
            for (flags, stream, payload) in records {
                tx.push(piece(flags, stream), &payload).unwrap();
            }
            tx.flush();
            assert!(feed(&mut rx, limit).is_err(), "{name}");
        }
    }

    #[test]
    fn a_big_buffer_is_freed_after_its_row() {
        let (mut tx, mut rx) = ring();
        let row = vec![9u8; KEEP_ASSEMBLY_CAPACITY + 1];
        let mut reassembly = Reassembly::default();
        let mut done = false;
        let mut offset = 0;
        // Stream it through the small ring: produce a few fragments, consume.
        let pieces: Vec<Vec<u8>> = {
            let mut v = vec![first(row.len() as u64, &row[..MAX - 8])];
            offset += MAX - 8;
            while offset < row.len() {
                let end = (offset + MAX).min(row.len());
                v.push(row[offset..end].to_vec());
                offset = end;
            }
            v
        };
        let last = pieces.len() - 1;
        for (i, p) in pieces.into_iter().enumerate() {
            let flags = match i {
                0 => fragment::FIRST,
                i if i == last => fragment::LAST,
                _ => 0,
            };
            tx.push(piece(flags, 0), &p).unwrap();
            tx.flush();
            let record = rx.try_recv().unwrap().unwrap();
            done = reassembly.push(&record, 1 << 30).unwrap();
        }
        assert!(done);
        assert_eq!(reassembly.buf, row);
        assert!(reassembly.reset());
        assert_eq!(reassembly.buf.capacity(), 0);
    }
}
