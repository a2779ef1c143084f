/*
 * The C side of RingWorker.Emit: each function is the implementation of one
 * `@[extern "ringworker_lean_..."]` declaration. It unpacks its Lean
 * arguments, calls the plain-C ABI of ringworker_lean.h (defined by the
 * worker executable, which exports the symbols), and returns the status as
 * `BaseIO UInt32`: an ok IO result holding the boxed UInt32.
 *
 * Calling convention (Lean 4.23, `BaseIO`): scalar arguments arrive unboxed
 * (UInt32 as uint32_t, UInt64 as uint64_t, USize as size_t); `@&` object
 * arguments are borrowed (b_lean_obj_arg: not consumed, so not released
 * here); the last argument is the IO world token, which is unused.
 */
#include <lean/lean.h>
#include <stdint.h>
#include <stddef.h>

#include "ringworker_lean.h"

static inline lean_obj_res ringworker_status(uint32_t status) {
    return lean_io_result_mk_ok(lean_box_uint32(status));
}

/* emitRowBytes (stream : UInt32) (row : @& ByteArray) : BaseIO UInt32 */
LEAN_EXPORT lean_obj_res ringworker_lean_emit_row_bytes(uint32_t stream, b_lean_obj_arg row,
                                                        lean_obj_arg world) {
    (void)world;
    return ringworker_status(ringworker_emit_row_bytes(stream, row));
}

/* emitRowString (stream : UInt32) (row : @& String) : BaseIO UInt32 */
LEAN_EXPORT lean_obj_res ringworker_lean_emit_row_string(uint32_t stream, b_lean_obj_arg row,
                                                         lean_obj_arg world) {
    (void)world;
    return ringworker_status(ringworker_emit_row_string(stream, row));
}

/*
 * emitRowSlice (stream : UInt32) (bytes : @& ByteArray) (offset length : USize) : BaseIO UInt32
 * The ABI's pointer-and-length form over a slice of a ByteArray; a slice
 * outside the array is RINGWORKER_BAD_OBJECT (checked here: the ABI cannot
 * know the array's size).
 */
LEAN_EXPORT lean_obj_res ringworker_lean_emit_row_slice(uint32_t stream, b_lean_obj_arg bytes,
                                                        size_t offset, size_t length,
                                                        lean_obj_arg world) {
    (void)world;
    if (lean_is_scalar(bytes) || !lean_is_sarray(bytes)) {
        return ringworker_status(RINGWORKER_BAD_OBJECT);
    }
    size_t size = lean_sarray_size(bytes);
    if (offset > size || length > size - offset) {
        return ringworker_status(RINGWORKER_BAD_OBJECT);
    }
    return ringworker_status(
        ringworker_emit_row(stream, lean_sarray_cptr(bytes) + offset, length));
}

/* emitProgress (done total : UInt64) : BaseIO UInt32 */
LEAN_EXPORT lean_obj_res ringworker_lean_emit_progress(uint64_t done, uint64_t total,
                                                       lean_obj_arg world) {
    (void)world;
    return ringworker_status(ringworker_emit_progress(done, total));
}

/* emitDiagnostic (level : UInt32) (text : @& String) : BaseIO UInt32 */
LEAN_EXPORT lean_obj_res ringworker_lean_emit_diagnostic(uint32_t level, b_lean_obj_arg text,
                                                         lean_obj_arg world) {
    (void)world;
    if (lean_is_scalar(text) || !lean_is_string(text)) {
        return ringworker_status(RINGWORKER_BAD_OBJECT);
    }
    /* lean_string_size counts the terminating NUL. */
    size_t len = lean_string_size(text) - 1;
    return ringworker_status(
        ringworker_emit_diagnostic(level, (const uint8_t *)lean_string_cstr(text), len));
}

/* checkCancelled : BaseIO UInt32 */
LEAN_EXPORT lean_obj_res ringworker_lean_check_cancelled(lean_obj_arg world) {
    (void)world;
    return ringworker_status(ringworker_check_cancelled());
}
