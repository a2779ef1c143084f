//! The object readers over random headers (tag, `m_other`, `m_size`,
//! `m_capacity`) and contents: each object lives in a buffer sized for its
//! header and `m_capacity` bytes, and the readers must return exactly the
//! status the contract gives, reading nothing beyond (a read past the
//! buffer would be caught by the allocator's guard pages at best and go
//! unnoticed at worst, so the expected results are computed independently
//! and compared whole).

use std::ffi::c_void;

use proptest::prelude::*;
use ringworker_lean_abi::Status;
use ringworker_lean_abi::object::{
    LEAN_LINEAR_MARK_MASK, LEAN_SCALAR_ARRAY, LEAN_STRING, byte_array_bytes, string_str,
};

/// A hand-built object: 8-byte aligned words holding the header, the
/// fields of its tag's layout, then `capacity` data bytes.
struct Object {
    words: Vec<u64>,
}

/// Data starts after the header and two (scalar array) or three (string)
/// `size_t` fields; any other tag gets the string layout (only its header
/// is ever read).
fn data_offset(tag: u8) -> usize {
    if tag == LEAN_SCALAR_ARRAY { 24 } else { 32 }
}

impl Object {
    fn new(rc: i32, tag: u8, other: u8, size: usize, capacity: usize, data: &[u8]) -> Object {
        let offset = data_offset(tag);
        let mut bytes = vec![0u8; offset + capacity];
        bytes[..4].copy_from_slice(&rc.to_le_bytes());
        bytes[6] = other;
        bytes[7] = tag;
        bytes[8..16].copy_from_slice(&size.to_le_bytes());
        bytes[16..24].copy_from_slice(&capacity.to_le_bytes());
        let n = data.len().min(capacity);
        bytes[offset..offset + n].copy_from_slice(&data[..n]);
        let words = bytes
            .chunks(8)
            .map(|chunk| {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                u64::from_le_bytes(word)
            })
            .collect();
        Object { words }
    }

    fn ptr(&self) -> *const c_void {
        self.words.as_ptr().cast()
    }
}

fn tags() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => Just(LEAN_SCALAR_ARRAY),
        3 => Just(LEAN_STRING),
        1 => any::<u8>(),
    ]
}

fn others() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => Just(1u8),
        1 => Just(1 | LEAN_LINEAR_MARK_MASK),
        1 => any::<u8>(),
    ]
}

/// Sizes around the capacity, and some no allocation could have.
fn sizes(capacity: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0..=capacity,
        1 => capacity..=capacity + 8,
        1 => Just(usize::MAX),
        1 => Just(1usize << 40),
    ]
}

/// Contents: mostly short ASCII (often NUL-terminated where the size ends),
/// sometimes arbitrary bytes.
fn contents(capacity: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(0x20u8..0x7f, capacity..=capacity),
        proptest::collection::vec(any::<u8>(), capacity..=capacity),
    ]
}

fn objects() -> impl Strategy<Value = (i32, u8, u8, usize, usize, Vec<u8>, bool)> {
    (0usize..64).prop_flat_map(|capacity| {
        (
            prop_oneof![Just(1i32), Just(0), Just(-3), any::<i32>()],
            tags(),
            others(),
            sizes(capacity),
            Just(capacity),
            contents(capacity),
            any::<bool>(),
        )
    })
}

fn expected_bytes(
    tag: u8,
    other: u8,
    size: usize,
    capacity: usize,
    data: &[u8],
) -> Result<Vec<u8>, Status> {
    if tag != LEAN_SCALAR_ARRAY || other & 0x7f != 1 || size > capacity {
        return Err(Status::BadObject);
    }
    Ok(data[..size].to_vec())
}

fn expected_str(tag: u8, size: usize, capacity: usize, data: &[u8]) -> Result<String, Status> {
    if tag != LEAN_STRING || size == 0 || size > capacity || data[size - 1] != 0 {
        return Err(Status::BadObject);
    }
    String::from_utf8(data[..size - 1].to_vec()).map_err(|_| Status::BadUtf8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn readers_return_the_contracts_status(
        (rc, tag, other, size, capacity, mut data, terminate) in objects()
    ) {
        // Often put the NUL where a string of this size needs it.
        if terminate && size >= 1 && size <= capacity {
            data[size - 1] = 0;
        }
        let object = Object::new(rc, tag, other, size, capacity, &data);
        // SAFETY: `object` is a live, 8-aligned allocation holding the
        // header, the fields of its tag's layout and `capacity` data bytes,
        // unchanged while the borrows live.
        let bytes = unsafe { byte_array_bytes(object.ptr()) }.map(<[u8]>::to_vec);
        prop_assert_eq!(bytes, expected_bytes(tag, other, size, capacity, &data));
        // SAFETY: as above.
        let text = unsafe { string_str(object.ptr()) }.map(str::to_owned);
        prop_assert_eq!(text, expected_str(tag, size, capacity, &data));
        // The readers never write: the header (m_rc included) is unchanged.
        let fresh = Object::new(rc, tag, other, size, capacity, &data);
        prop_assert_eq!(&object.words, &fresh.words);
    }
}
