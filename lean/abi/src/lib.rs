//! `ringworker-lean-abi`: the C ABI that Lean code calls to emit rows,
//! progress and diagnostics into a ringworker ring (the "Lean FFI layer").
//!
//! A worker command that runs Lean code installs its
//! [`RowWriter`](ringworker_child::RowWriter) with [`with_row_context`];
//! while the Lean code runs, on that thread, the plain C functions declared
//! in `include/ringworker_lean.h` write into it. The Lean side (a C shim in
//! the Lake package, compiled against `lean.h`) wraps each one as an
//! `@[extern]` `BaseIO UInt32`, boxing the status with
//! `lean_io_result_mk_ok(lean_box_uint32(status))`.
//!
//! | module | what |
//! | --- | --- |
//! | `status` | [`Status`]: the `RINGWORKER_*` codes, and the mapping from the row writer's failures |
//! | [`object`] | `#[repr(C)]` mirrors of `lean.h`'s object layouts and the checked readers (`ByteArray`, `String`, pointer + length) |
//! | `context` | the thread-local per-request context: [`with_row_context`], [`in_request`] |
//! | [`exports`] | the `#[unsafe(no_mangle)] extern "C"` functions `ringworker_*` |
//!
//! Layering: `exports` checks arguments with `object`, reaches the writer
//! only through `context`, and reports through `status`. The crate depends
//! on `ringworker-child` (the writer) only; it never links Lean, and
//! nothing here needs `lean.h`: the layouts are mirrored. The C driver and
//! the `abi-probe` worker under `tests/` (built by `build.rs` and linked
//! into that binary only) call the ABI exactly as Lean-generated code would.
//!
//! # The contract
//!
//! ```c
//! uint32_t ringworker_emit_row(uint32_t stream, const uint8_t *data, size_t len);
//! uint32_t ringworker_emit_row_bytes(uint32_t stream, const void *byte_array);  /* b_lean_obj_arg ByteArray */
//! uint32_t ringworker_emit_row_string(uint32_t stream, const void *string);     /* b_lean_obj_arg String */
//! uint32_t ringworker_emit_progress(uint64_t done, uint64_t total);             /* total 0: unknown */
//! uint32_t ringworker_emit_diagnostic(uint32_t level, const uint8_t *text, size_t len); /* 0 info, 1 warning, 2 error */
//! uint32_t ringworker_check_cancelled(void);
//! ```
//!
//! - **Where.** Only on the thread running [`with_row_context`]'s closure,
//!   only while it runs. Anywhere else (another thread, such as a Lean
//!   `Task`'s, before or after the command) every function returns
//!   `RINGWORKER_NO_REQUEST` and looks at none of its arguments.
//! - **Never undefined behaviour on bad arguments that can be detected.**
//!   Null pointers, boxed scalars, misaligned pointers, objects of another
//!   kind, `m_size > m_capacity`, strings without their NUL, text that is
//!   not UTF-8, unknown streams and levels, rows above the per-row limit:
//!   each gets its status and writes nothing. What cannot be detected (a
//!   dangling pointer, a `len` longer than the buffer, an object whose
//!   `m_capacity` lies) is the caller's contract, as in `lean.h` itself.
//! - **Never unwinds into C.** Every function catches panics and returns
//!   `RINGWORKER_INTERNAL`; a panic inside the writer also poisons the
//!   context (every later call of the request: `INTERNAL`). Built with
//!   `panic = "abort"` a panic aborts instead; the workspace does not.
//! - **Rejected calls leave the request usable.** `ROW_TOO_LARGE` and the
//!   argument statuses write nothing, and the next row goes through:
//!   `RowWriter::row` checks the per-row limit before it writes (the
//!   exports also check it before reading `data`). `CANCELLED`,
//!   `RING_CLOSED`, `NO_REQUEST` and `INTERNAL` mean stop
//!   ([`Status::must_stop`]).
//! - **Cancellation.** `ringworker_check_cancelled` is one load from shared
//!   memory (plus a heartbeat); a row write returns `CANCELLED` only when it
//!   had to wait for room in a cancelled request. After the Lean code
//!   returns, the command ends with `ringworker_child::check_cancelled(out)?`
//!   so that the request ends as cancelled.
//!
//! ## Statuses
//!
//! | code | `#define` | meaning |
//! | ---: | --- | --- |
//! | 0 | `RINGWORKER_OK` | done |
//! | 1 | `RINGWORKER_NO_REQUEST` | no request on this thread |
//! | 2 | `RINGWORKER_NULL_POINTER` | null where data was required (`len > 0`, an object) |
//! | 3 | `RINGWORKER_ROW_TOO_LARGE` | above the per-row limit (a diagnostic: above the largest record); the request goes on |
//! | 4 | `RINGWORKER_UNKNOWN_STREAM` | stream above the command's `max_stream` |
//! | 5 | `RINGWORKER_CANCELLED` | the supervisor cancelled: stop and return |
//! | 6 | `RINGWORKER_BAD_OBJECT` | not a `ByteArray`/`String` (scalar, misaligned, wrong tag or element size, size > capacity, no NUL) |
//! | 7 | `RINGWORKER_RING_CLOSED` | the ring failed (supervisor gone, ring poisoned): stop |
//! | 8 | `RINGWORKER_BAD_UTF8` | text not UTF-8 |
//! | 9 | `RINGWORKER_INTERNAL` | a bug caught at the boundary, or a re-entrant call |
//! | 10 | `RINGWORKER_BAD_LEVEL` | diagnostic level not 0, 1 or 2 |
//!
//! How the writer's failures map onto them: [`Status::from_command_error`].
//!
//! # The Lean object layouts mirrored
//!
//! From `lean.h` (`src/include/lean/lean.h` of Lean 4), checked against the
//! C definitions by the tests' C driver, which declares them the same way:
//!
//! ```c
//! typedef struct {
//!     int      m_rc;         // > 0 single-threaded, < 0 multi-threaded, 0 persistent
//!     unsigned m_cs_sz:16;
//!     unsigned m_other:8;    // scalar arrays: element size (| LEAN_LINEAR_MARK_MASK 0x80)
//!     unsigned m_tag:8;
//! } lean_object;
//!
//! typedef struct {
//!     lean_object   m_header;
//!     size_t        m_size;
//!     size_t        m_capacity;
//!     uint8_t       m_data[];
//! } lean_sarray_object;
//!
//! typedef struct {
//!     lean_object m_header;
//!     size_t      m_size;     /* byte length including '\0' terminator */
//!     size_t      m_capacity;
//!     size_t      m_length;   /* UTF8 length */
//!     char        m_data[];
//! } lean_string_object;
//!
//! #define LeanScalarArray 248
//! #define LeanString      249
//! static inline uint8_t lean_is_scalar(lean_object * o) { return ((size_t)(o) & 1) == 1; }
//! ```
//!
//! Mirrored as [`object::LeanObject`], [`object::LeanSArrayObject`] and
//! [`object::LeanStringObject`] (the bit-fields as plain `u16`, `u8`,
//! `u8`: their System V placement on little-endian targets). A `ByteArray`
//! is a scalar array with element size 1 (`m_other & 0x7f`, as
//! `lean_sarray_elem_size` reads it since the linearity marker).
//!
//! `m_rc` is never read or written: it is 0 for persistent and compacted
//! objects and negative for multi-threaded ones, which other threads update
//! atomically; the readers project the fields they need through raw
//! pointers and never form a reference to the header. Borrowed arguments
//! (`b_lean_obj_arg`) keep their reference count; nothing is retained
//! after the call.
//!
//! # Safety argument
//!
//! `unsafe` is confined to three places, each block with a `// SAFETY:`
//! fact: `object` (reading a header, then `m_size` bytes that
//! `m_size <= m_capacity` keeps inside the object the caller vouched for),
//! `context` (the lifetime-erased writer pointer, see its module docs for
//! why no two `&mut` to the writer ever exist and why the pointer never
//! outlives the borrow it came from), and `exports` (forwarding the C
//! caller's contract to the readers). Every `unsafe fn` states its contract
//! in a `# Safety` section. Outside the library, only the `abi-probe` test
//! worker uses `unsafe` (calls into the C driver), under the same rule.
//!
//! # Example
//!
//! A command handler that runs Lean code; here the "Lean code" is a Rust
//! function calling the ABI as the generated C would:
//!
//! ```
//! use ringworker_child::{CommandError, RowWriter, check_cancelled};
//! use ringworker_lean_abi::{Status, exports, with_row_context};
//!
//! fn lean_rows(n: u64) -> u32 {
//!     for i in 0..n {
//!         let row = i.to_le_bytes();
//!         // SAFETY: `row` is a live buffer of `row.len()` bytes.
//!         let status = unsafe { exports::ringworker_emit_row(0, row.as_ptr(), row.len()) };
//!         if status != 0 {
//!             return status;
//!         }
//!     }
//!     0
//! }
//!
//! fn handler(n: u64, out: &mut RowWriter<'_>) -> Result<u64, CommandError> {
//!     let status = with_row_context(out, 0, || lean_rows(n));
//!     check_cancelled(out)?; // a CANCELLED status ends the request as cancelled
//!     match Status::from_code(status) {
//!         Some(Status::Ok) => Ok(out.rows()),
//!         other => Err(CommandError::new("lean_abi", format!("{other:?}"))),
//!     }
//! }
//!
//! // Outside a request the ABI refuses to write.
//! assert_eq!(lean_rows(1), Status::NoRequest.code());
//! # let _ = handler;
//! ```

mod context;
pub mod exports;
pub mod object;
mod status;

pub use context::{in_request, with_row_context};
pub use status::Status;
