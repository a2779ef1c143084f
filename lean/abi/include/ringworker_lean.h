/*
 * ringworker_lean.h: the C ABI that Lean code calls to emit rows, progress
 * and diagnostics into a ringworker ring (crate `ringworker-lean-abi`).
 *
 * Every function returns a status (uint32_t, a Lean UInt32) and never
 * unwinds, aborts or reads memory it was not given. The functions write into
 * the request that the Rust side installed on the calling thread
 * (`ringworker_lean_abi::with_row_context`); on any other thread, or outside
 * a request, they return RINGWORKER_NO_REQUEST and look at no argument.
 *
 * Object arguments are borrowed Lean objects (b_lean_obj_arg): the callee
 * neither reads nor changes their reference count.
 */
#ifndef RINGWORKER_LEAN_H
#define RINGWORKER_LEAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: uint32_t so that Lean code sees them as UInt32. */
#define RINGWORKER_OK              0u  /* done */
#define RINGWORKER_NO_REQUEST      1u  /* called on a thread with no request running (outside a command) */
#define RINGWORKER_NULL_POINTER    2u  /* a null pointer where data was required (len > 0, or an object) */
#define RINGWORKER_ROW_TOO_LARGE   3u  /* the row exceeds the ring's largest row (the request goes on) */
#define RINGWORKER_UNKNOWN_STREAM  4u  /* stream id not declared by the command (> the command's max stream) */
#define RINGWORKER_CANCELLED       5u  /* the supervisor cancelled the request: stop emitting and return */
#define RINGWORKER_BAD_OBJECT      6u  /* not a ByteArray/String object (scalar, wrong tag, size > capacity) */
#define RINGWORKER_RING_CLOSED     7u  /* the ring or the control channel failed (supervisor gone): stop */
#define RINGWORKER_BAD_UTF8        8u  /* text argument is not UTF-8 */
#define RINGWORKER_INTERNAL        9u  /* a bug in ringworker caught at the boundary (a Rust panic never unwinds into C) */

uint32_t ringworker_emit_row(uint32_t stream, const uint8_t *data, size_t len);
uint32_t ringworker_emit_row_bytes(uint32_t stream, const void *byte_array);  /* b_lean_obj_arg: a Lean ByteArray (lean_sarray_object, elem size 1) */
uint32_t ringworker_emit_row_string(uint32_t stream, const void *string);     /* b_lean_obj_arg: a Lean String (lean_string_object), bytes without the trailing NUL */
uint32_t ringworker_emit_progress(uint64_t done, uint64_t total);             /* total 0: unknown */
uint32_t ringworker_emit_diagnostic(uint32_t level, const uint8_t *text, size_t len); /* level 0 info, 1 warning, 2 error, else RINGWORKER_BAD_LEVEL */
#define RINGWORKER_BAD_LEVEL      10u  /* diagnostic level not 0, 1 or 2 */
uint32_t ringworker_check_cancelled(void);  /* RINGWORKER_OK or RINGWORKER_CANCELLED (or NO_REQUEST) */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RINGWORKER_LEAN_H */
