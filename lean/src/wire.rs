//! A declaration row on the wire between a worker and its supervisor: the
//! bytes of one ring row of the `export-decls` worker command.
//!
//! Layout: the row's part (u64, little-endian), its ordinal (u64, LE: the
//! constant's position among all the export's constants), then the
//! [`DeclRow`] in postcard (varint integers, length-prefixed strings):
//! about a third of its JSON size and several times faster to encode and
//! decode. [`decode`] treats its input as untrusted (a worker may be
//! hostile or corrupt): any byte string gives a row or a [`WireError`],
//! never a panic, and strings are checked UTF-8.

use crate::decl::DeclRow;

/// Bytes before the postcard body: part and ordinal.
pub const HEADER_BYTES: usize = 16;

/// A declaration row with where it belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRow {
    /// The output part the row belongs to (see the CLI's `export-decls`).
    pub part: u64,
    /// The constant's position among all the export's constants, from 0.
    pub ordinal: u64,
    /// The row.
    pub row: DeclRow,
}

/// A wire row that does not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the 16-byte header.
    #[error("declaration row of {len} bytes is shorter than its {HEADER_BYTES}-byte header")]
    Truncated {
        /// The row's length.
        len: usize,
    },
    /// The body is not a postcard [`DeclRow`].
    #[error("declaration row body does not decode: {source}")]
    Body {
        /// What postcard reported.
        #[source]
        source: postcard::Error,
    },
    /// The body decoded but bytes were left over.
    #[error("declaration row has {extra} bytes after its body")]
    Trailing {
        /// Bytes left.
        extra: usize,
    },
}

/// Appends the wire form of `row` to `out`.
pub fn encode(part: u64, ordinal: u64, row: &DeclRow, out: &mut Vec<u8>) {
    out.extend_from_slice(&part.to_le_bytes());
    out.extend_from_slice(&ordinal.to_le_bytes());
    // Writing into a Vec cannot fail, and every field of DeclRow serializes.
    let _ = postcard::to_io(row, &mut *out);
}

/// Decodes one wire row.
pub fn decode(bytes: &[u8]) -> Result<WireRow, WireError> {
    let (part, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or(WireError::Truncated { len: bytes.len() })?;
    let (ordinal, body) = rest
        .split_first_chunk::<8>()
        .ok_or(WireError::Truncated { len: bytes.len() })?;
    let (row, left) =
        postcard::take_from_bytes::<DeclRow>(body).map_err(|source| WireError::Body { source })?;
    if !left.is_empty() {
        return Err(WireError::Trailing { extra: left.len() });
    }
    Ok(WireRow {
        part: u64::from_le_bytes(*part),
        ordinal: u64::from_le_bytes(*ordinal),
        row,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExportReader, SyntheticConfig, write_export};

    fn rows() -> Vec<DeclRow> {
        let mut export = Vec::new();
        write_export(&SyntheticConfig::new(3, 2_000), &mut export).unwrap();
        ExportReader::new(export.as_slice())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn every_row_round_trips() {
        let mut buf = Vec::new();
        for (i, row) in rows().into_iter().enumerate() {
            buf.clear();
            encode(i as u64 / 7, i as u64, &row, &mut buf);
            let back = decode(&buf).unwrap();
            assert_eq!((back.part, back.ordinal), (i as u64 / 7, i as u64));
            assert_eq!(back.row, row);
        }
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let row = rows()
            .into_iter()
            .find(|r| !r.value_consts.is_empty())
            .unwrap();
        let mut buf = Vec::new();
        encode(1, 2, &row, &mut buf);
        assert!(matches!(
            decode(&buf[..10]),
            Err(WireError::Truncated { len: 10 })
        ));
        for cut in HEADER_BYTES..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut} decoded");
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(matches!(
            decode(&longer),
            Err(WireError::Trailing { extra: 1 })
        ));
        // Every single-byte change decodes to something or fails cleanly.
        for i in HEADER_BYTES..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0xa5;
            let _ = decode(&bad);
        }
        // Invalid UTF-8 in the name is refused.
        let mut bad = buf.clone();
        let name_at = HEADER_BYTES + 1;
        bad[name_at] = 0xff;
        assert!(decode(&bad).is_err());
    }
}
