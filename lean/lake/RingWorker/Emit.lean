/-!
# Emitting rows into the ring

Lean bindings of the plain-C ABI in `lean/abi/include/ringworker_lean.h`,
through the C shim `c/ringworker_shim.c`. Each call writes into the ring of
the request the worker is running (stream ids are the command's; `decls` and
`attempt-proofs` use stream 0) and returns a status code; `Status.ofUInt32`
turns it into something to match on. Outside a request every call answers
`Status.noRequest`.
-/

namespace RingWorker

/-- A status of the C ABI (`RINGWORKER_*` in `ringworker_lean.h`). -/
inductive Status where
  /-- `RINGWORKER_OK`: done. -/
  | ok
  /-- `RINGWORKER_NO_REQUEST`: no request is running on this thread. -/
  | noRequest
  /-- `RINGWORKER_NULL_POINTER`: a null pointer where data was required. -/
  | nullPointer
  /-- `RINGWORKER_ROW_TOO_LARGE`: the row exceeds the largest row; the request goes on. -/
  | rowTooLarge
  /-- `RINGWORKER_UNKNOWN_STREAM`: a stream the command did not declare. -/
  | unknownStream
  /-- `RINGWORKER_CANCELLED`: the supervisor cancelled the request: stop and return. -/
  | cancelled
  /-- `RINGWORKER_BAD_OBJECT`: not a ByteArray/String object (or a slice outside it). -/
  | badObject
  /-- `RINGWORKER_RING_CLOSED`: the ring or control channel failed (supervisor gone): stop. -/
  | ringClosed
  /-- `RINGWORKER_BAD_UTF8`: text that is not UTF-8. -/
  | badUtf8
  /-- `RINGWORKER_INTERNAL`: a bug in ringworker caught at the boundary. -/
  | internal
  /-- `RINGWORKER_BAD_LEVEL`: a diagnostic level other than 0, 1, 2. -/
  | badLevel
  /-- A code this build does not know. -/
  | unknown (code : UInt32)
  deriving Repr, BEq, Inhabited

/-- The status a C ABI call returned. -/
def Status.ofUInt32 (code : UInt32) : Status :=
  match code.toNat with
  | 0 => .ok
  | 1 => .noRequest
  | 2 => .nullPointer
  | 3 => .rowTooLarge
  | 4 => .unknownStream
  | 5 => .cancelled
  | 6 => .badObject
  | 7 => .ringClosed
  | 8 => .badUtf8
  | 9 => .internal
  | 10 => .badLevel
  | _ => .unknown code

/-- Whether the command must stop emitting and return (cancelled, or the
supervisor is gone). -/
def Status.isStop : Status → Bool
  | .cancelled | .ringClosed => true
  | _ => false

instance : ToString Status where
  toString s := match s with
    | .unknown code => s!"unknown status {code}"
    | s => (repr s).pretty

/-- Writes `row`'s bytes as one row of `stream`. -/
@[extern "ringworker_lean_emit_row_bytes"]
opaque emitRowBytes (stream : UInt32) (row : @& ByteArray) : BaseIO UInt32

/-- Writes `row`'s UTF-8 bytes (without a terminator) as one row of `stream`. -/
@[extern "ringworker_lean_emit_row_string"]
opaque emitRowString (stream : UInt32) (row : @& String) : BaseIO UInt32

/-- Writes `length` bytes of `bytes` from `offset` as one row of `stream`
(`ringworker_emit_row`); a slice outside the array is `Status.badObject`. -/
@[extern "ringworker_lean_emit_row_slice"]
opaque emitRowSlice (stream : UInt32) (bytes : @& ByteArray) (offset length : USize) : BaseIO UInt32

/-- Reports progress: `done` of `total` (0: unknown). -/
@[extern "ringworker_lean_emit_progress"]
opaque emitProgress (done total : UInt64) : BaseIO UInt32

/-- Writes a diagnostic: level 0 info, 1 warning, 2 error. -/
@[extern "ringworker_lean_emit_diagnostic"]
opaque emitDiagnostic (level : UInt32) (text : @& String) : BaseIO UInt32

/-- `Status.cancelled` once the supervisor cancelled the request, else
`Status.ok` (or `Status.noRequest` outside one). -/
@[extern "ringworker_lean_check_cancelled"]
opaque checkCancelled : BaseIO UInt32

end RingWorker
