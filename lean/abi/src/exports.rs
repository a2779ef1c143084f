//! The exported C functions of `include/ringworker_lean.h`.
//!
//! Each one: catches every panic and returns `RINGWORKER_INTERNAL` instead
//! (a panic never unwinds into C); returns `RINGWORKER_NO_REQUEST` outside a
//! request without looking at its arguments; then checks its arguments in
//! a fixed order (level or stream, then pointers and objects, then sizes)
//! and writes only when all pass, so a rejected call writes nothing and the
//! request goes on.
//!
//! The functions that take pointers are `unsafe` to call from Rust (their
//! `# Safety` sections are the C caller's contract); from C and Lean they are
//! ordinary functions.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use ringworker_child::Level;

use crate::context::{Emit, with_emitter};
use crate::object;
use crate::status::Status;

/// Runs an exported function's body, turning a panic that escaped the
/// context's own guard (none is known) into [`Status::Internal`].
#[inline]
fn boundary(body: impl FnOnce() -> Status) -> u32 {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or(Status::Internal)
        .code()
}

/// The stream id as the writer takes it, if the command declared it.
#[inline]
fn stream_id(stream: u32, max_stream: u16) -> Result<u16, Status> {
    match u16::try_from(stream) {
        Ok(id) if id <= max_stream => Ok(id),
        _ => Err(Status::UnknownStream),
    }
}

/// Writes one row, mapping the writer's failure.
#[inline]
fn write_row(out: &mut dyn Emit, stream: u16, row: &[u8]) -> Result<(), Status> {
    if row.len() > out.max_row() {
        return Err(Status::RowTooLarge);
    }
    out.row(stream, row)
        .map_err(|err| Status::from_command_error(&err))
}

/// `uint32_t ringworker_emit_row(uint32_t stream, const uint8_t *data, size_t len)`:
/// copies `len` bytes at `data` into a row on `stream`. `data` may be null
/// when `len` is 0 (an empty row).
///
/// Statuses, in the order they are checked: `NO_REQUEST`, `UNKNOWN_STREAM`,
/// `NULL_POINTER` (null with `len > 0`), `ROW_TOO_LARGE` (`len` above the
/// per-row limit: checked before `data` is read), then the write's:
/// `OK`, `CANCELLED`, `RING_CLOSED`.
///
/// # Safety
/// `data` is null or points to `len` readable bytes that do not change
/// during the call (unless `len` exceeds the per-row limit, in which case
/// `data` is not read).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringworker_emit_row(stream: u32, data: *const u8, len: usize) -> u32 {
    boundary(|| {
        with_emitter(|out, max_stream| {
            let stream = stream_id(stream, max_stream)?;
            if data.is_null() && len > 0 {
                return Err(Status::NullPointer);
            }
            if len > out.max_row() {
                return Err(Status::RowTooLarge);
            }
            // The caller's contract: `data` is null (then `len` is 0) or
            // points to `len` bytes unchanged during this call.
            // SAFETY: `data`/`len` as the caller's contract states (above).
            let row = unsafe { object::bytes_at(data, len) }?;
            write_row(out, stream, row)
        })
    })
}

/// `uint32_t ringworker_emit_row_bytes(uint32_t stream, const void *byte_array)`:
/// copies the bytes of a borrowed Lean `ByteArray` into a row on `stream`.
///
/// Statuses: `NO_REQUEST`, `UNKNOWN_STREAM`, `NULL_POINTER`, `BAD_OBJECT`
/// (see [`object::byte_array_bytes`]), `ROW_TOO_LARGE`, then the write's.
///
/// # Safety
/// `byte_array` is null, a boxed scalar, or a live Lean object the caller
/// holds a reference to (a `b_lean_obj_arg`); see
/// [`object::byte_array_bytes`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringworker_emit_row_bytes(stream: u32, byte_array: *const c_void) -> u32 {
    boundary(|| {
        with_emitter(|out, max_stream| {
            let stream = stream_id(stream, max_stream)?;
            // SAFETY: the caller's contract is the reader's.
            let row = unsafe { object::byte_array_bytes(byte_array) }?;
            write_row(out, stream, row)
        })
    })
}

/// `uint32_t ringworker_emit_row_string(uint32_t stream, const void *string)`:
/// copies the UTF-8 bytes of a borrowed Lean `String`, without its trailing
/// NUL, into a row on `stream`.
///
/// Statuses: `NO_REQUEST`, `UNKNOWN_STREAM`, `NULL_POINTER`, `BAD_OBJECT`,
/// `BAD_UTF8` (see [`object::string_str`]), `ROW_TOO_LARGE`, then the
/// write's.
///
/// # Safety
/// `string` is null, a boxed scalar, or a live Lean object the caller holds
/// a reference to (a `b_lean_obj_arg`); see [`object::string_str`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringworker_emit_row_string(stream: u32, string: *const c_void) -> u32 {
    boundary(|| {
        with_emitter(|out, max_stream| {
            let stream = stream_id(stream, max_stream)?;
            // SAFETY: the caller's contract is the reader's.
            let text = unsafe { object::string_str(string) }?;
            write_row(out, stream, text.as_bytes())
        })
    })
}

/// `uint32_t ringworker_emit_progress(uint64_t done, uint64_t total)`:
/// reports progress (`total` 0: unknown), ordered after the rows so far;
/// it also counts as a heartbeat.
///
/// Statuses: `NO_REQUEST`, then the write's (`OK`, `RING_CLOSED`, ...).
#[unsafe(no_mangle)]
pub extern "C" fn ringworker_emit_progress(done: u64, total: u64) -> u32 {
    boundary(|| {
        with_emitter(|out, _| {
            out.progress(done, (total != 0).then_some(total))
                .map_err(|err| Status::from_command_error(&err))
        })
    })
}

/// The child crate's level of an ABI level.
fn parse_level(level: u32) -> Result<Level, Status> {
    match level {
        0 => Ok(Level::Info),
        1 => Ok(Level::Warn),
        2 => Ok(Level::Error),
        _ => Err(Status::BadLevel),
    }
}

/// `uint32_t ringworker_emit_diagnostic(uint32_t level, const uint8_t *text, size_t len)`:
/// sends a diagnostic (level 0 info, 1 warning, 2 error) with the UTF-8
/// text of `len` bytes at `text` (null when `len` is 0), ordered after the
/// rows so far.
///
/// Statuses: `NO_REQUEST`, `BAD_LEVEL`, `NULL_POINTER`, `BAD_UTF8`,
/// `ROW_TOO_LARGE` (the diagnostic does not fit one ring record), then the
/// write's.
///
/// # Safety
/// `text` is null or points to `len` readable bytes that do not change
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ringworker_emit_diagnostic(
    level: u32,
    text: *const u8,
    len: usize,
) -> u32 {
    boundary(|| {
        with_emitter(|out, _| {
            let level = parse_level(level)?;
            // The caller's contract: `text` is null (then `len` is 0) or
            // points to `len` bytes unchanged during this call.
            // SAFETY: `text`/`len` as the caller's contract states (above).
            let message = unsafe { object::text_at(text, len) }?;
            out.diagnostic(level, message)
                .map_err(|err| Status::from_command_error(&err))
        })
    })
}

/// `uint32_t ringworker_check_cancelled(void)`: `OK`, or `CANCELLED` once
/// the supervisor asked to cancel the request (or `NO_REQUEST`). One load
/// from shared memory; also a heartbeat, and the next row is published at
/// its commit (see `RowWriter::is_cancelled`): check every few hundred rows,
/// not before each.
#[unsafe(no_mangle)]
pub extern "C" fn ringworker_check_cancelled() -> u32 {
    boundary(|| {
        with_emitter(|out, _| {
            if out.is_cancelled() {
                Err(Status::Cancelled)
            } else {
                Ok(())
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::install;
    use crate::context::tests::Recorder;

    const ALL_OUTSIDE: usize = 6;

    /// Every exported function once, with arguments that would be refused
    /// inside a request (null pointers, bad level, unknown stream).
    fn call_all_with_bad_arguments() -> [u32; ALL_OUTSIDE] {
        // Null pointers with non-zero lengths and a scalar object are what
        // the functions reject before reading.
        // SAFETY: outside a request the functions read none of the arguments.
        unsafe {
            [
                ringworker_emit_row(u32::MAX, std::ptr::null(), 5),
                ringworker_emit_row_bytes(0, std::ptr::null()),
                ringworker_emit_row_string(0, std::ptr::without_provenance(1)),
                ringworker_emit_progress(1, 2),
                ringworker_emit_diagnostic(7, std::ptr::null(), 3),
                ringworker_check_cancelled(),
            ]
        }
    }

    #[test]
    fn outside_a_request_every_function_says_no_request_and_reads_nothing() {
        assert_eq!(
            call_all_with_bad_arguments(),
            [Status::NoRequest.code(); ALL_OUTSIDE]
        );
    }

    #[test]
    fn inside_a_request_arguments_are_checked_in_order() {
        let mut rec = Recorder::new(4);
        let got = install(&mut rec, 1, || {
            let row = b"abcdef";
            // Null appears only with the length the case is about.
            // SAFETY: each pointer is null or a live buffer of at least its length.
            unsafe {
                [
                    ringworker_emit_row(0, row.as_ptr(), 3),
                    ringworker_emit_row(1, std::ptr::null(), 0),
                    ringworker_emit_row(2, row.as_ptr(), 1),
                    ringworker_emit_row(65_536, row.as_ptr(), 1),
                    ringworker_emit_row(0, std::ptr::null(), 1),
                    ringworker_emit_row(0, row.as_ptr(), 5),
                    ringworker_emit_row(0, row.as_ptr(), 4),
                    ringworker_emit_progress(3, 0),
                    ringworker_emit_progress(4, 9),
                    ringworker_emit_diagnostic(3, "λ".as_ptr(), 2),
                    ringworker_emit_diagnostic(2, std::ptr::null(), 1),
                    ringworker_emit_diagnostic(1, "λ".as_ptr(), 1),
                    ringworker_emit_diagnostic(1, "λ".as_ptr(), 2),
                    ringworker_check_cancelled(),
                ]
            }
        });
        use Status::*;
        let want = [
            Ok,
            Ok,
            UnknownStream,
            UnknownStream,
            NullPointer,
            RowTooLarge,
            Ok,
            Ok,
            Ok,
            BadLevel,
            NullPointer,
            BadUtf8,
            Ok,
            Ok,
        ];
        assert_eq!(got, want.map(Status::code));
        assert_eq!(
            rec.rows,
            [(0, b"abc".to_vec()), (1, vec![]), (0, b"abcd".to_vec())]
        );
        assert_eq!(rec.progress, [(3, None), (4, Some(9))]);
        assert_eq!(rec.diagnostics, [(Level::Warn, "λ".to_owned())]);
    }

    #[test]
    fn a_cancelled_request_says_so() {
        let mut rec = Recorder::new(4);
        rec.cancelled = true;
        let got = install(&mut rec, 0, || ringworker_check_cancelled());
        assert_eq!(got, Status::Cancelled.code());
    }

    #[test]
    fn a_panic_never_crosses_the_boundary() {
        assert_eq!(boundary(|| panic!("a bug")), Status::Internal.code());
        assert_eq!(boundary(|| Status::BadUtf8), Status::BadUtf8.code());
    }
}
