//! `#[repr(C)]` mirrors of the Lean object layouts this ABI reads, and the
//! checked readers that turn a borrowed Lean object (or a pointer and a
//! length) into Rust bytes.
//!
//! The mirrors follow `lean.h` (Lean 4's `src/include/lean/lean.h`) field by
//! field; the crate docs quote the C definitions. The C driver of the tests
//! builds objects with its own copy of those C definitions (bit-fields
//! included) and the tests check that these readers see them as the C
//! compiler laid them out (`c-facts` in `tests/c_driver.rs`).
//!
//! # What the readers read
//!
//! Only what the object's tag promises, in this order: the 8-byte header
//! (`m_other` and `m_tag` bytes only), then, for the right tag,
//! `m_size` and `m_capacity`, then `m_size` bytes of `m_data`, which
//! `m_size <= m_capacity` puts inside the object's allocation. The header is
//! never read as a whole and no reference to it is formed: `m_rc` may be
//! updated atomically by other threads (multi-threaded objects, negative
//! counts), may be 0 (persistent and compacted objects), and is never read
//! or written here. `m_length` of a string (its code points) is not read.

use std::ffi::c_void;

use crate::status::Status;

/// `LeanScalarArray`: the tag of scalar arrays (`ByteArray` among them).
pub const LEAN_SCALAR_ARRAY: u8 = 248;
/// `LeanString`: the tag of strings.
pub const LEAN_STRING: u8 = 249;
/// `LEAN_LINEAR_MARK_MASK`: recent `lean.h` keeps a linearity marker in the
/// top bit of `m_other` of arrays, scalar arrays and strings
/// (`lean_sarray_elem_size` masks it out); the element size is the rest.
pub const LEAN_LINEAR_MARK_MASK: u8 = 0x80;

/// `lean_object`, the header of every heap object.
///
/// In C the last three fields are bit-fields of one `unsigned`
/// (`m_cs_sz:16`, `m_other:8`, `m_tag:8`). The System V ABIs allocate
/// bit-fields from the low-order bits of the storage unit, which on the
/// little-endian 64-bit targets Lean supports puts `m_cs_sz` in bytes 4-5,
/// `m_other` in byte 6 and `m_tag` in byte 7: exactly these three plain
/// fields. The tests compare the bytes a C compiler produces for the
/// bit-field struct with this mirror.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeanObject {
    /// `int m_rc`: > 0 single-threaded, < 0 multi-threaded, 0 persistent.
    /// Never read by this crate.
    pub m_rc: i32,
    /// `unsigned m_cs_sz:16`: size in a compact region, or allocator use.
    pub m_cs_sz: u16,
    /// `unsigned m_other:8`: element size of a scalar array (plus the
    /// linearity marker bit), field count of a constructor.
    pub m_other: u8,
    /// `unsigned m_tag:8`: constructor index, or one of the `Lean*` kinds.
    pub m_tag: u8,
}

/// `lean_sarray_object`: a scalar array, such as a `ByteArray` (element
/// size 1).
#[repr(C)]
#[derive(Debug)]
pub struct LeanSArrayObject {
    /// `lean_object m_header`.
    pub m_header: LeanObject,
    /// `size_t m_size`: elements in use.
    pub m_size: usize,
    /// `size_t m_capacity`: elements allocated.
    pub m_capacity: usize,
    /// `uint8_t m_data[]`: the elements (a flexible array member).
    pub m_data: [u8; 0],
}

/// `lean_string_object`: a string, UTF-8 with a trailing NUL.
#[repr(C)]
#[derive(Debug)]
pub struct LeanStringObject {
    /// `lean_object m_header`.
    pub m_header: LeanObject,
    /// `size_t m_size`: bytes in use, the trailing NUL included.
    pub m_size: usize,
    /// `size_t m_capacity`: bytes allocated.
    pub m_capacity: usize,
    /// `size_t m_length`: UTF-8 code points (not read here).
    pub m_length: usize,
    /// `char m_data[]`: the bytes (a flexible array member).
    pub m_data: [u8; 0],
}

// The layouts `lean.h` gives on 64-bit targets (it asserts
// `sizeof(size_t) == sizeof(void*)`).
const _: () = {
    assert!(size_of::<LeanObject>() == 8);
    assert!(std::mem::offset_of!(LeanObject, m_other) == 6);
    assert!(std::mem::offset_of!(LeanObject, m_tag) == 7);
    assert!(std::mem::offset_of!(LeanSArrayObject, m_size) == 8);
    assert!(std::mem::offset_of!(LeanSArrayObject, m_capacity) == 8 + size_of::<usize>());
    assert!(std::mem::offset_of!(LeanSArrayObject, m_data) == 8 + 2 * size_of::<usize>());
    assert!(std::mem::offset_of!(LeanStringObject, m_length) == 8 + 2 * size_of::<usize>());
    assert!(std::mem::offset_of!(LeanStringObject, m_data) == 8 + 3 * size_of::<usize>());
};

/// `lean_is_scalar`: a boxed scalar, not a pointer (low bit set).
#[inline]
pub fn is_scalar(obj: *const c_void) -> bool {
    (obj as usize) & 1 == 1
}

/// Reads the `m_other` and `m_tag` bytes of a heap object's header after
/// checking the pointer: null is [`Status::NullPointer`]; a scalar or a
/// pointer that is not aligned like `size_t` (every Lean heap object is)
/// is [`Status::BadObject`].
///
/// # Safety
/// `obj` is null, or has its low bit set, or is misaligned, or points to the
/// header of a live Lean heap object (8 readable bytes).
#[inline]
pub unsafe fn header_kind(obj: *const c_void) -> Result<(u8, u8), Status> {
    if obj.is_null() {
        return Err(Status::NullPointer);
    }
    if is_scalar(obj) || !obj.cast::<LeanSArrayObject>().is_aligned() {
        return Err(Status::BadObject);
    }
    let header = obj.cast::<LeanObject>();
    // Only the two bytes are read, through raw place projections, so no
    // reference to `m_rc` (which other threads may update atomically) is formed.
    // SAFETY: `header` is non-null, aligned and (caller) a live object header.
    let (other, tag) = unsafe {
        (
            (&raw const (*header).m_other).read(),
            (&raw const (*header).m_tag).read(),
        )
    };
    Ok((other, tag))
}

/// The bytes of a Lean `ByteArray` (a scalar array of element size 1),
/// borrowed for `'a`.
///
/// Null is [`Status::NullPointer`]; a scalar, a misaligned pointer, another
/// tag, an element size other than 1 (the linearity marker bit is ignored,
/// as `lean_sarray_elem_size` does) or `m_size > m_capacity` is
/// [`Status::BadObject`].
///
/// # Safety
/// `obj` is null, a scalar, misaligned, or points to a live Lean heap
/// object; if its tag is `LeanScalarArray`, the object is a
/// `lean_sarray_object` with `m_capacity` elements allocated after its
/// header, which nobody writes during `'a` (a borrowed Lean argument: the
/// calling Lean code holds a reference, and Lean changes only objects it
/// holds the only reference to, which it cannot do while it waits for this
/// call).
pub unsafe fn byte_array_bytes<'a>(obj: *const c_void) -> Result<&'a [u8], Status> {
    // SAFETY: the caller's contract is `header_kind`'s.
    let (other, tag) = unsafe { header_kind(obj) }?;
    if tag != LEAN_SCALAR_ARRAY || other & !LEAN_LINEAR_MARK_MASK != 1 {
        return Err(Status::BadObject);
    }
    let array = obj.cast::<LeanSArrayObject>();
    // `array` is aligned (checked by `header_kind`); the fields are read by
    // value through raw place projections.
    // SAFETY: the tag says (caller) this is a live `lean_sarray_object`.
    let (size, capacity) = unsafe {
        (
            (&raw const (*array).m_size).read(),
            (&raw const (*array).m_capacity).read(),
        )
    };
    if size > capacity || size > isize::MAX as usize {
        return Err(Status::BadObject);
    }
    // SAFETY: a raw projection of the flexible array `m_data` forms no reference.
    let data = unsafe { (&raw const (*array).m_data).cast::<u8>() };
    // `size <= isize::MAX` was checked above.
    // SAFETY: `size <= capacity`; (caller) `capacity` bytes at `data` stay unchanged for `'a`.
    Ok(unsafe { std::slice::from_raw_parts(data, size) })
}

/// The text of a Lean `String` without its trailing NUL, borrowed for `'a`.
///
/// Null is [`Status::NullPointer`]; a scalar, a misaligned pointer, another
/// tag, `m_size == 0`, `m_size > m_capacity` or a last byte that is not NUL
/// is [`Status::BadObject`]; bytes that are not UTF-8 are
/// [`Status::BadUtf8`] (a Lean `String` always is; the check guards against
/// C code that built one by hand). `m_other` is not checked (it holds only
/// the linearity marker for strings).
///
/// # Safety
/// As for [`byte_array_bytes`], with `LeanString` and `lean_string_object`
/// (`m_capacity` bytes allocated after its header).
pub unsafe fn string_str<'a>(obj: *const c_void) -> Result<&'a str, Status> {
    // SAFETY: the caller's contract is `header_kind`'s.
    let (_, tag) = unsafe { header_kind(obj) }?;
    if tag != LEAN_STRING {
        return Err(Status::BadObject);
    }
    let string = obj.cast::<LeanStringObject>();
    // Aligned (checked by `header_kind`); fields read by value through raw
    // place projections.
    // SAFETY: the tag says (caller) this is a live `lean_string_object`.
    let (size, capacity) = unsafe {
        (
            (&raw const (*string).m_size).read(),
            (&raw const (*string).m_capacity).read(),
        )
    };
    if size == 0 || size > capacity || size > isize::MAX as usize {
        return Err(Status::BadObject);
    }
    // SAFETY: the flexible array right after the fields; no reference formed.
    let data = unsafe { (&raw const (*string).m_data).cast::<u8>() };
    // SAFETY: `0 < size <= capacity`; (caller) `capacity` bytes at `data` stay unchanged for `'a`.
    let bytes = unsafe { std::slice::from_raw_parts(data, size) };
    let Some((&0, text)) = bytes.split_last() else {
        return Err(Status::BadObject);
    };
    std::str::from_utf8(text).map_err(|_| Status::BadUtf8)
}

/// `len` bytes at `data` (a pointer and a length from C): null with
/// `len == 0` is the empty slice; null with `len > 0` is
/// [`Status::NullPointer`]; `len > isize::MAX` (no such buffer exists) is
/// [`Status::RowTooLarge`].
///
/// # Safety
/// If `data` is not null, it points to `len` readable bytes that nobody
/// writes during `'a`.
pub unsafe fn bytes_at<'a>(data: *const u8, len: usize) -> Result<&'a [u8], Status> {
    if data.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Status::NullPointer)
        };
    }
    if len > isize::MAX as usize {
        return Err(Status::RowTooLarge);
    }
    // Non-null and `len <= isize::MAX` were checked; `u8` needs no alignment.
    // SAFETY: (caller) `len` readable bytes at `data` stay unchanged for `'a`.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Like [`bytes_at`], then UTF-8 ([`Status::BadUtf8`] if not).
///
/// # Safety
/// As for [`bytes_at`].
pub unsafe fn text_at<'a>(data: *const u8, len: usize) -> Result<&'a str, Status> {
    // SAFETY: the caller's contract is `bytes_at`'s.
    let bytes = unsafe { bytes_at(data, len) }?;
    std::str::from_utf8(bytes).map_err(|_| Status::BadUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap object built by hand: 8-byte aligned words, the header, the
    /// fields, then `capacity` data bytes.
    struct Built {
        words: Vec<u64>,
    }

    impl Built {
        fn sarray(other: u8, size: usize, capacity: usize, data: &[u8]) -> Built {
            Built::new(LEAN_SCALAR_ARRAY, other, &[size, capacity], capacity, data)
        }

        fn string(size: usize, capacity: usize, data: &[u8]) -> Built {
            Built::new(LEAN_STRING, 0, &[size, capacity, 0], capacity, data)
        }

        fn new(tag: u8, other: u8, fields: &[usize], capacity: usize, data: &[u8]) -> Built {
            assert!(data.len() <= capacity);
            let head = 8 + 8 * fields.len();
            let mut bytes = vec![0u8; head + capacity];
            bytes[..8].copy_from_slice(
                &[1, 0, 0, 0, 0, 0, other, tag], // m_rc = 1 (little-endian)
            );
            for (i, field) in fields.iter().enumerate() {
                bytes[8 + 8 * i..16 + 8 * i].copy_from_slice(&field.to_le_bytes());
            }
            bytes[head..head + data.len()].copy_from_slice(data);
            let words = bytes
                .chunks(8)
                .map(|c| {
                    let mut w = [0u8; 8];
                    w[..c.len()].copy_from_slice(c);
                    u64::from_le_bytes(w)
                })
                .collect();
            Built { words }
        }

        fn ptr(&self) -> *const c_void {
            self.words.as_ptr().cast()
        }
    }

    #[test]
    fn a_byte_array_reads_its_bytes_and_ignores_the_linear_mark() {
        for other in [1, 1 | LEAN_LINEAR_MARK_MASK] {
            let obj = Built::sarray(other, 3, 8, b"abc");
            // SAFETY: `obj` is a well-formed scalar array of capacity 8.
            assert_eq!(unsafe { byte_array_bytes(obj.ptr()) }, Ok(&b"abc"[..]));
        }
        let empty = Built::sarray(1, 0, 0, b"");
        // SAFETY: a well-formed empty scalar array.
        assert_eq!(unsafe { byte_array_bytes(empty.ptr()) }, Ok(&b""[..]));
    }

    #[test]
    fn bad_byte_arrays_are_refused() {
        let cases = [
            (Built::sarray(8, 1, 1, b""), "FloatArray"),
            (Built::sarray(0, 1, 1, b""), "element size 0"),
            (Built::sarray(1, 9, 8, b""), "size > capacity"),
            (Built::string(1, 1, b"\0"), "a string"),
            (Built::new(0, 0, &[], 0, b""), "a constructor"),
        ];
        for (obj, what) in cases {
            // SAFETY: each object's allocation matches what its tag promises.
            let got = unsafe { byte_array_bytes(obj.ptr()) };
            assert_eq!(got, Err(Status::BadObject), "{what}");
        }
    }

    #[test]
    fn pointers_that_are_not_objects_are_refused_without_a_read() {
        let obj = Built::sarray(1, 0, 8, b"");
        for reader in [
            // SAFETY: each pointer below is null, a scalar or misaligned:
            // the readers return before reading anything.
            |p| unsafe { byte_array_bytes(p) }.map(|_| ()),
            // SAFETY: as above.
            |p| unsafe { string_str(p) }.map(|_| ()),
        ] {
            assert_eq!(reader(std::ptr::null()), Err(Status::NullPointer));
            assert_eq!(
                reader(std::ptr::without_provenance(1)),
                Err(Status::BadObject)
            );
            assert_eq!(
                reader(std::ptr::without_provenance(0x2b)),
                Err(Status::BadObject)
            );
            let misaligned = obj.ptr().wrapping_byte_add(4);
            assert_eq!(reader(misaligned), Err(Status::BadObject));
        }
    }

    #[test]
    fn strings_need_their_nul_and_utf8() {
        let cases: [(Built, Result<&str, Status>); 7] = [
            (Built::string(6, 8, b"hello\0"), Ok("hello")),
            (Built::string(1, 1, b"\0"), Ok("")),
            (Built::string(4, 4, "λ\0\0".as_bytes()), Ok("λ\0")),
            (Built::string(5, 8, b"hello"), Err(Status::BadObject)),
            (Built::string(0, 8, b""), Err(Status::BadObject)),
            (Built::string(9, 8, b""), Err(Status::BadObject)),
            (Built::string(3, 3, b"\xff\xfe\0"), Err(Status::BadUtf8)),
        ];
        for (obj, want) in cases {
            // SAFETY: each object's allocation matches its tag and capacity.
            assert_eq!(unsafe { string_str(obj.ptr()) }, want);
        }
        let bytes = Built::sarray(1, 1, 1, b"\0");
        // SAFETY: a well-formed scalar array, read as a string.
        assert_eq!(unsafe { string_str(bytes.ptr()) }, Err(Status::BadObject));
    }

    #[test]
    fn pointer_and_length_readers() {
        // SAFETY: null, or a pointer to a live buffer of `len` bytes,
        // or a length no buffer has (refused before the slice is formed).
        unsafe {
            assert_eq!(bytes_at(std::ptr::null(), 0), Ok(&b""[..]));
            assert_eq!(bytes_at(std::ptr::null(), 1), Err(Status::NullPointer));
            assert_eq!(bytes_at(b"ab".as_ptr(), 2), Ok(&b"ab"[..]));
            assert_eq!(
                bytes_at(b"ab".as_ptr(), usize::MAX),
                Err(Status::RowTooLarge)
            );
            assert_eq!(text_at("λ".as_ptr(), 2), Ok("λ"));
            assert_eq!(text_at("λ".as_ptr(), 1), Err(Status::BadUtf8));
            assert_eq!(text_at(std::ptr::null(), 0), Ok(""));
        }
    }
}
