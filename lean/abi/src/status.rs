//! The status codes every exported function returns, and how the row
//! writer's failures map onto them.

use ringworker_child::{CommandError, FailureCode, RuntimeCode};

/// What an exported function did, as the `uint32_t` the C header defines
/// (`RINGWORKER_*` in `include/ringworker_lean.h`; the numbers are the ABI
/// and never change meaning).
///
/// This is the error type of the crate's boundary: C and Lean see only the
/// number, so the variants carry no fields; the reason behind
/// [`Status::Internal`] and [`Status::RingClosed`] goes to the child's
/// stderr tail at most (a panic message), never across the ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Status {
    /// `RINGWORKER_OK`: done.
    Ok = 0,
    /// `RINGWORKER_NO_REQUEST`: no request is installed on the calling
    /// thread (outside [`with_row_context`](crate::with_row_context), or on
    /// another thread than the command's). Takes precedence over every
    /// other status: outside a request no argument is looked at.
    NoRequest = 1,
    /// `RINGWORKER_NULL_POINTER`: a null pointer where data was required
    /// (`len > 0`, or an object argument).
    NullPointer = 2,
    /// `RINGWORKER_ROW_TOO_LARGE`: the row is longer than the per-row limit
    /// agreed with the supervisor (or, for a diagnostic, the record would
    /// exceed the ring's largest record). Nothing was written; the request
    /// goes on and may emit smaller rows.
    RowTooLarge = 3,
    /// `RINGWORKER_UNKNOWN_STREAM`: the stream id is above the command's
    /// largest stream (the `max_stream` given to
    /// [`with_row_context`](crate::with_row_context)).
    UnknownStream = 4,
    /// `RINGWORKER_CANCELLED`: the supervisor cancelled the request; stop
    /// emitting and return (the host then ends the request as cancelled).
    Cancelled = 5,
    /// `RINGWORKER_BAD_OBJECT`: not a `ByteArray`/`String` object: a scalar
    /// (boxed) value, a misaligned pointer, another tag, a scalar array whose
    /// elements are not bytes, `m_size > m_capacity`, or a string without
    /// its trailing NUL.
    BadObject = 6,
    /// `RINGWORKER_RING_CLOSED`: the ring or the control channel failed
    /// under the write (the supervisor is gone or poisoned the ring); stop.
    RingClosed = 7,
    /// `RINGWORKER_BAD_UTF8`: a text argument is not UTF-8.
    BadUtf8 = 8,
    /// `RINGWORKER_INTERNAL`: a bug in ringworker, caught at the boundary
    /// (a Rust panic, which never unwinds into C; after one the request's
    /// context answers `Internal` to every call), or a re-entrant call.
    Internal = 9,
    /// `RINGWORKER_BAD_LEVEL`: a diagnostic level other than 0, 1 or 2.
    BadLevel = 10,
}

impl Status {
    /// Every status, in code order (`ALL[i].code() == i`).
    pub const ALL: [Status; 11] = [
        Status::Ok,
        Status::NoRequest,
        Status::NullPointer,
        Status::RowTooLarge,
        Status::UnknownStream,
        Status::Cancelled,
        Status::BadObject,
        Status::RingClosed,
        Status::BadUtf8,
        Status::Internal,
        Status::BadLevel,
    ];

    /// The code C and Lean see.
    #[inline]
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The status of a code, if it is one.
    pub const fn from_code(code: u32) -> Option<Status> {
        if (code as usize) < Status::ALL.len() {
            Some(Status::ALL[code as usize])
        } else {
            None
        }
    }

    /// The name of its `#define` in `ringworker_lean.h`.
    pub const fn c_name(self) -> &'static str {
        match self {
            Status::Ok => "RINGWORKER_OK",
            Status::NoRequest => "RINGWORKER_NO_REQUEST",
            Status::NullPointer => "RINGWORKER_NULL_POINTER",
            Status::RowTooLarge => "RINGWORKER_ROW_TOO_LARGE",
            Status::UnknownStream => "RINGWORKER_UNKNOWN_STREAM",
            Status::Cancelled => "RINGWORKER_CANCELLED",
            Status::BadObject => "RINGWORKER_BAD_OBJECT",
            Status::RingClosed => "RINGWORKER_RING_CLOSED",
            Status::BadUtf8 => "RINGWORKER_BAD_UTF8",
            Status::Internal => "RINGWORKER_INTERNAL",
            Status::BadLevel => "RINGWORKER_BAD_LEVEL",
        }
    }

    /// Whether the Lean code must stop emitting and return: the request is
    /// over for it (cancelled, ring gone, no request, a bug). The other
    /// failures reject one call's arguments and the request goes on.
    pub const fn must_stop(self) -> bool {
        matches!(
            self,
            Status::NoRequest | Status::Cancelled | Status::RingClosed | Status::Internal
        )
    }

    /// The status of a [`RowWriter`](ringworker_child::RowWriter) failure.
    ///
    /// The writer reports every failure as a runtime code (see
    /// `ringworker_child::CommandError`'s `From<RingError>`):
    ///
    /// | runtime code | status | why |
    /// | --- | --- | --- |
    /// | `cancelled` | [`Status::Cancelled`] | the cancel flag was set while the write waited for room |
    /// | `row_too_large` | [`Status::RowTooLarge`] | above the per-row limit; checked before anything is written |
    /// | `record_too_large` | [`Status::RowTooLarge`] | a diagnostic or progress record (or a row on a ring too small to fragment) above the largest record; checked before anything is written |
    /// | `ring` | [`Status::RingClosed`] | closed, poisoned or corrupt ring, a failed futex or serialization: the ring is unusable for this request |
    /// | anything else | [`Status::Internal`] | the writer never produces `panic`, `bad_request`, `unknown_command`, `bad_summary` or a command's own code; seeing one is a bug here |
    pub fn from_command_error(err: &CommandError) -> Status {
        match err.code() {
            FailureCode::Runtime(RuntimeCode::Cancelled) => Status::Cancelled,
            FailureCode::Runtime(RuntimeCode::RowTooLarge | RuntimeCode::RecordTooLarge) => {
                Status::RowTooLarge
            }
            FailureCode::Runtime(RuntimeCode::Ring) => Status::RingClosed,
            _ => Status::Internal,
        }
    }

    /// `Ok(())` for [`Status::Ok`], else `Err(self)`: for `?` in Rust code
    /// that calls the ABI.
    pub fn into_result(self) -> Result<(), Status> {
        match self {
            Status::Ok => Ok(()),
            other => Err(other),
        }
    }
}

impl From<Status> for u32 {
    fn from(status: Status) -> u32 {
        status.code()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            Status::Ok => "done",
            Status::NoRequest => "no request is running on this thread",
            Status::NullPointer => "a null pointer where data was required",
            Status::RowTooLarge => "the row exceeds the ring's largest row",
            Status::UnknownStream => "stream id not declared by the command",
            Status::Cancelled => "the supervisor cancelled the request",
            Status::BadObject => "not a ByteArray/String object",
            Status::RingClosed => "the ring or the control channel failed",
            Status::BadUtf8 => "text argument is not UTF-8",
            Status::Internal => "internal error in ringworker",
            Status::BadLevel => "diagnostic level not 0, 1 or 2",
        };
        write!(f, "{} ({what})", self.c_name())
    }
}

#[cfg(test)]
mod tests {
    use shm_proto::{ClosedBy, RingError};

    use super::*;

    #[test]
    fn codes_are_dense_and_round_trip() {
        for (i, status) in Status::ALL.into_iter().enumerate() {
            assert_eq!(status.code() as usize, i);
            assert_eq!(Status::from_code(status.code()), Some(status));
            assert_eq!(u32::from(status), status.code());
        }
        assert_eq!(Status::from_code(11), None);
        assert_eq!(Status::from_code(u32::MAX), None);
    }

    #[test]
    fn writer_failures_map_to_their_status() {
        let status = |err: RingError| Status::from_command_error(&CommandError::from(err));
        assert_eq!(
            status(RingError::Cancelled { request: 1 }),
            Status::Cancelled
        );
        assert_eq!(
            status(RingError::RowTooLarge { len: 9, max: 8 }),
            Status::RowTooLarge
        );
        assert_eq!(
            status(RingError::RecordTooLarge { len: 9, max: 8 }),
            Status::RowTooLarge
        );
        for by in [ClosedBy::Consumer, ClosedBy::Poison] {
            assert_eq!(status(RingError::Closed { by }), Status::RingClosed);
        }
        assert_eq!(status(RingError::TimedOut), Status::RingClosed);
        // A command's own code can never come out of the writer.
        assert_eq!(
            Status::from_command_error(&CommandError::new("cancelled", "m")),
            Status::Internal
        );
        assert_eq!(
            Status::from_command_error(&CommandError::bad_request("m")),
            Status::Internal
        );
    }

    #[test]
    fn only_request_ending_statuses_stop_the_caller() {
        let stopping: Vec<_> = Status::ALL.into_iter().filter(|s| s.must_stop()).collect();
        assert_eq!(
            stopping,
            [
                Status::NoRequest,
                Status::Cancelled,
                Status::RingClosed,
                Status::Internal
            ]
        );
        assert_eq!(Status::Ok.into_result(), Ok(()));
        assert_eq!(
            Status::BadUtf8.into_result(),
            Err(Status::BadUtf8),
            "{}",
            Status::BadUtf8
        );
    }

    /// The header's `#define RINGWORKER_*` lines, as (name, value).
    fn header_constants() -> Vec<(String, u32)> {
        include_str!("../include/ringworker_lean.h")
            .lines()
            .filter_map(|line| {
                let mut words = line.strip_prefix("#define ")?.split_whitespace();
                let name = words.next()?;
                let value = words.next()?.strip_suffix('u')?.parse().ok()?;
                name.starts_with("RINGWORKER_")
                    .then(|| (name.to_owned(), value))
            })
            .collect()
    }

    #[test]
    fn the_header_defines_exactly_these_statuses() {
        let mut defined = header_constants();
        defined.sort_by_key(|(_, value)| *value);
        let want: Vec<_> = Status::ALL
            .into_iter()
            .map(|s| (s.c_name().to_owned(), s.code()))
            .collect();
        assert_eq!(defined, want);
    }

    #[test]
    fn the_header_declares_every_export() {
        let header = include_str!("../include/ringworker_lean.h");
        for prototype in [
            "uint32_t ringworker_emit_row(uint32_t stream, const uint8_t *data, size_t len);",
            "uint32_t ringworker_emit_row_bytes(uint32_t stream, const void *byte_array);",
            "uint32_t ringworker_emit_row_string(uint32_t stream, const void *string);",
            "uint32_t ringworker_emit_progress(uint64_t done, uint64_t total);",
            "uint32_t ringworker_emit_diagnostic(uint32_t level, const uint8_t *text, size_t len);",
            "uint32_t ringworker_check_cancelled(void);",
        ] {
            assert!(header.contains(prototype), "{prototype}");
        }
        for guard in [
            "#ifndef RINGWORKER_LEAN_H",
            "extern \"C\" {",
            "#include <stdint.h>",
            "#include <stddef.h>",
        ] {
            assert!(header.contains(guard), "{guard}");
        }
    }
}
