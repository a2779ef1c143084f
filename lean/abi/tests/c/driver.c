/*
 * The C driver of ringworker-lean-abi's tests: calls the ABI of
 * include/ringworker_lean.h exactly as Lean-generated code (through its C
 * shim) would, with Lean objects built by hand in the layouts of lean.h.
 *
 * Compiled by build.rs (C11, -Wall -Wextra -Werror -pedantic) into a static
 * library that only the abi-probe worker links; the worker's commands call
 * these functions inside (or outside) a request and report the statuses,
 * which the Rust tests assert on.
 */
#define _POSIX_C_SOURCE 200809L

#include "ringworker_lean.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Mirrors of lean.h (src/include/lean/lean.h of Lean 4), declared as
 * lean.h declares them: no Lean toolchain exists where these tests run. ---- */

typedef struct {
    int      m_rc;
    unsigned m_cs_sz:16;
    unsigned m_other:8;
    unsigned m_tag:8;
} lean_object;

typedef struct {
    lean_object   m_header;
    size_t        m_size;
    size_t        m_capacity;
    uint8_t       m_data[];
} lean_sarray_object;

typedef struct {
    lean_object m_header;
    size_t      m_size;     /* byte length including '\0' terminator */
    size_t      m_capacity;
    size_t      m_length;   /* UTF8 length */
    char        m_data[];
} lean_string_object;

#define LeanScalarArray 248
#define LeanString      249
#define LEAN_LINEAR_MARK_MASK 0x80u

static lean_object *lean_box(size_t n) { return (lean_object *)(((size_t)(n) << 1) | 1); }

/* lean_set_st_header */
static void set_header(lean_object *o, unsigned tag, unsigned other) {
    o->m_rc = 1;
    o->m_tag = tag;
    o->m_other = other;
    o->m_cs_sz = 0;
}

/* lean_alloc_sarray (malloc instead of Lean's allocator) */
static lean_sarray_object *alloc_sarray(unsigned elem_size, size_t size, size_t capacity) {
    lean_sarray_object *o = malloc(sizeof(lean_sarray_object) + elem_size * capacity);
    if (o == NULL) abort();
    set_header(&o->m_header, LeanScalarArray, elem_size);
    o->m_size = size;
    o->m_capacity = capacity;
    return o;
}

/* lean_alloc_string, then the bytes and the NUL (m_size = len + 1) */
static lean_string_object *alloc_string(const char *bytes, size_t len, size_t capacity) {
    lean_string_object *o = malloc(sizeof(lean_string_object) + capacity);
    if (o == NULL) abort();
    set_header(&o->m_header, LeanString, 0);
    memcpy(o->m_data, bytes, len);
    o->m_data[len] = '\0';
    o->m_size = len + 1;
    o->m_capacity = capacity;
    o->m_length = len; /* code points: not read by the ABI */
    return o;
}

static lean_sarray_object *byte_array_of(const char *bytes, size_t len) {
    lean_sarray_object *o = alloc_sarray(1, len, len + 3); /* spare capacity, as Lean keeps */
    memcpy(o->m_data, bytes, len);
    return o;
}

/* ---- Rows with a checkable pattern (the Rust side recomputes it). ---- */

#define VIA_PTR    0u
#define VIA_BYTES  1u
#define VIA_STRING 2u

static uint8_t pattern(uint32_t via, uint32_t stream, uint32_t row, size_t byte) {
    uint32_t x = row * 251u + (uint32_t)byte * 7u + stream * 13u;
    return via == VIA_STRING ? (uint8_t)('a' + x % 26u) : (uint8_t)x;
}

/* Emits `count` rows of `row_len` bytes on `stream` through `via` (0 pointer
 * and length, 1 ByteArray, 2 String); a pointer row of length 0 is passed as
 * NULL. Stops at the first status that is not OK and returns it; *emitted
 * counts the rows that were OK. */
uint32_t driver_emit_rows(uint32_t via, uint32_t stream, uint32_t count, size_t row_len,
                          uint32_t *emitted) {
    uint8_t *buf = NULL;
    lean_sarray_object *bytes = NULL;
    lean_string_object *string = NULL;
    uint32_t status = RINGWORKER_OK;
    *emitted = 0;
    if (via == VIA_PTR && row_len > 0) {
        buf = malloc(row_len);
        if (buf == NULL) abort();
    } else if (via == VIA_BYTES) {
        bytes = alloc_sarray(1, row_len, row_len + 5);
    } else if (via == VIA_STRING) {
        string = alloc_string("", 0, row_len + 1 + 5);
        string->m_size = row_len + 1;
        string->m_length = row_len;
        string->m_data[row_len] = '\0';
    }
    for (uint32_t i = 0; i < count; i++) {
        for (size_t j = 0; j < row_len; j++) {
            uint8_t b = pattern(via, stream, i, j);
            if (buf) buf[j] = b;
            if (bytes) bytes->m_data[j] = b;
            if (string) string->m_data[j] = (char)b;
        }
        if (via == VIA_PTR) {
            status = ringworker_emit_row(stream, buf, row_len);
        } else if (via == VIA_BYTES) {
            status = ringworker_emit_row_bytes(stream, bytes);
        } else {
            status = ringworker_emit_row_string(stream, string);
        }
        if (status != RINGWORKER_OK) break;
        *emitted = i + 1;
    }
    free(buf);
    free(bytes);
    free(string);
    return status;
}

/* Emits pointer rows of `row_len` bytes on stream 0 until the request is
 * cancelled: checks every `check_every` rows (0: never; then only a write
 * that waits for room in a cancelled request reports it), sleeping `pause_us`
 * microseconds after each check. Returns the status that ended the loop;
 * *emitted counts the rows that were OK, *seen_by is 1 if the check saw
 * CANCELLED, 2 if a write did, 0 otherwise. */
uint32_t driver_until_cancelled(size_t row_len, uint32_t check_every, uint32_t pause_us,
                                uint64_t *emitted, uint32_t *seen_by) {
    uint8_t *buf = malloc(row_len > 0 ? row_len : 1);
    uint32_t status = RINGWORKER_OK;
    if (buf == NULL) abort();
    *emitted = 0;
    *seen_by = 0;
    for (uint64_t i = 0;; i++) {
        if (check_every != 0 && i % check_every == 0) {
            status = ringworker_check_cancelled();
            if (status == RINGWORKER_CANCELLED) {
                *seen_by = 1;
                break;
            }
            if (status != RINGWORKER_OK) break;
            if (pause_us > 0) {
                struct timespec pause = {0, (long)pause_us * 1000L};
                nanosleep(&pause, NULL);
            }
        }
        for (size_t j = 0; j < row_len; j++) buf[j] = pattern(VIA_PTR, 0, (uint32_t)i, j);
        status = ringworker_emit_row(0, buf, row_len);
        if (status == RINGWORKER_CANCELLED) {
            *seen_by = 2;
            break;
        }
        if (status != RINGWORKER_OK) break;
        *emitted = i + 1;
    }
    free(buf);
    return status;
}

/* For steps 1..=steps: a row holding the step (8 bytes, little-endian) on
 * stream 0, then progress (step, total). Returns the first status that is
 * not OK, or OK. */
uint32_t driver_progress(uint64_t steps, uint64_t total) {
    for (uint64_t step = 1; step <= steps; step++) {
        uint8_t row[8];
        for (int k = 0; k < 8; k++) row[k] = (uint8_t)(step >> (8 * k));
        uint32_t status = ringworker_emit_row(0, row, sizeof row);
        if (status != RINGWORKER_OK) return status;
        status = ringworker_emit_progress(step, total);
        if (status != RINGWORKER_OK) return status;
    }
    return RINGWORKER_OK;
}

/* One diagnostic per level, with non-ASCII text; the statuses go to out[3]. */
size_t driver_diagnostics(uint32_t *out) {
    static const char *texts[3] = {
        "info: \xce\xbb x, x",                    /* λ */
        "warning: \xe2\x88\x80 x, x = x",         /* ∀ */
        "error: \xe8\xa8\xbc\xe6\x98\x8e failed", /* 証明 */
    };
    for (uint32_t level = 0; level < 3; level++) {
        out[level] = ringworker_emit_diagnostic(level, (const uint8_t *)texts[level],
                                                strlen(texts[level]));
    }
    return 3;
}

/* ---- Bad arguments: each case returns its status. A case that succeeds
 * writes one row (or diagnostic) the test expects, on stream 0. ---- */

typedef struct {
    size_t max_row;    /* the writer's per-row limit */
    size_t max_record; /* the ring's largest record */
} limits;

static uint32_t ptr_null_with_len(limits l) { (void)l; return ringworker_emit_row(0, NULL, 5); }
static uint32_t ptr_null_empty(limits l) { (void)l; return ringworker_emit_row(0, NULL, 0); }
static uint32_t ptr_over_max_row(limits l) {
    uint8_t *buf = calloc(l.max_row + 1, 1);
    uint32_t status;
    if (buf == NULL) abort();
    status = ringworker_emit_row(0, buf, l.max_row + 1);
    free(buf);
    return status;
}
static uint32_t ptr_after_too_large(limits l) {
    (void)l;
    return ringworker_emit_row(0, (const uint8_t *)"after", 5);
}
/* A length no buffer has: refused before the pointer is read. */
static uint32_t ptr_huge_len(limits l) {
    (void)l;
    return ringworker_emit_row(0, (const uint8_t *)"x", SIZE_MAX);
}
static uint32_t stream_above_max(limits l) {
    (void)l;
    return ringworker_emit_row(2, (const uint8_t *)"x", 1);
}
/* 65536 would be stream 0 if truncated to 16 bits. */
static uint32_t stream_above_u16(limits l) {
    (void)l;
    return ringworker_emit_row(65536u, (const uint8_t *)"x", 1);
}
static uint32_t stream_max_u32(limits l) {
    (void)l;
    return ringworker_emit_row_bytes(UINT32_MAX, NULL);
}
static uint32_t bytes_null(limits l) { (void)l; return ringworker_emit_row_bytes(0, NULL); }
static uint32_t bytes_scalar(limits l) { (void)l; return ringworker_emit_row_bytes(0, lean_box(42)); }
static uint32_t bytes_misaligned(limits l) {
    lean_sarray_object *o = byte_array_of("abcd", 4);
    uint32_t status;
    (void)l;
    status = ringworker_emit_row_bytes(0, (const char *)o + 2);
    free(o);
    return status;
}
static uint32_t bytes_given_a_string(limits l) {
    lean_string_object *o = alloc_string("abc", 3, 8);
    uint32_t status;
    (void)l;
    status = ringworker_emit_row_bytes(0, o);
    free(o);
    return status;
}
static uint32_t bytes_float_array(limits l) {
    lean_sarray_object *o = alloc_sarray(8, 1, 1);
    uint32_t status;
    (void)l;
    memset(o->m_data, 0, 8);
    status = ringworker_emit_row_bytes(0, o);
    free(o);
    return status;
}
/* m_size far beyond the allocation: refused before a data byte is read. */
static uint32_t bytes_size_over_capacity(limits l) {
    lean_sarray_object *o = byte_array_of("abcd", 4);
    uint32_t status;
    (void)l;
    o->m_size = (size_t)1 << 40;
    status = ringworker_emit_row_bytes(0, o);
    free(o);
    return status;
}
static uint32_t bytes_over_max_row(limits l) {
    lean_sarray_object *o = alloc_sarray(1, l.max_row + 1, l.max_row + 1);
    uint32_t status;
    memset(o->m_data, 'z', l.max_row + 1);
    status = ringworker_emit_row_bytes(0, o);
    free(o);
    return status;
}
/* Emits "lin": the linearity marker bit does not change the element size. */
static uint32_t bytes_marked_linear(limits l) {
    lean_sarray_object *o = byte_array_of("lin", 3);
    uint32_t status;
    (void)l;
    o->m_header.m_other = 1u | LEAN_LINEAR_MARK_MASK;
    status = ringworker_emit_row_bytes(0, o);
    free(o);
    return status;
}
/* Emits `row` from an object with reference count `rc`; 1000 if the call
 * changed any header field (the ABI never touches the count). */
static uint32_t bytes_with_rc(const char *row, int rc) {
    lean_sarray_object *o = byte_array_of(row, strlen(row));
    lean_object before;
    uint32_t status;
    o->m_header.m_rc = rc;
    o->m_header.m_cs_sz = 0x1234;
    before = o->m_header;
    status = ringworker_emit_row_bytes(0, o);
    if (memcmp(&before, &o->m_header, sizeof before) != 0) status = 1000;
    free(o);
    return status;
}
static uint32_t bytes_persistent_rc0(limits l) { (void)l; return bytes_with_rc("rc0", 0); }
static uint32_t bytes_shared_mt(limits l) { (void)l; return bytes_with_rc("mt", -5); }
static uint32_t string_null(limits l) { (void)l; return ringworker_emit_row_string(0, NULL); }
static uint32_t string_scalar(limits l) { (void)l; return ringworker_emit_row_string(0, lean_box(0)); }
static uint32_t string_given_bytes(limits l) {
    lean_sarray_object *o = byte_array_of("abc", 4); /* with its NUL */
    uint32_t status;
    (void)l;
    status = ringworker_emit_row_string(0, o);
    free(o);
    return status;
}
static uint32_t string_without_nul(limits l) {
    lean_string_object *o = alloc_string("abc", 3, 8);
    uint32_t status;
    (void)l;
    o->m_data[3] = 'd';
    status = ringworker_emit_row_string(0, o);
    free(o);
    return status;
}
static uint32_t string_size_zero(limits l) {
    lean_string_object *o = alloc_string("abc", 3, 8);
    uint32_t status;
    (void)l;
    o->m_size = 0;
    status = ringworker_emit_row_string(0, o);
    free(o);
    return status;
}
static uint32_t string_size_over_capacity(limits l) {
    lean_string_object *o = alloc_string("abc", 3, 4);
    uint32_t status;
    (void)l;
    o->m_size = 100;
    status = ringworker_emit_row_string(0, o);
    free(o);
    return status;
}
static uint32_t string_bad_utf8(limits l) {
    lean_string_object *o = alloc_string("\xc3\x28", 2, 4);
    uint32_t status;
    (void)l;
    status = ringworker_emit_row_string(0, o);
    free(o);
    return status;
}
static uint32_t string_over_max_row(limits l) {
    char *text = malloc(l.max_row + 1);
    lean_string_object *o;
    uint32_t status;
    if (text == NULL) abort();
    memset(text, 's', l.max_row + 1);
    o = alloc_string(text, l.max_row + 1, l.max_row + 2);
    status = ringworker_emit_row_string(0, o);
    free(o);
    free(text);
    return status;
}
/* Emits "" */
static uint32_t string_empty(limits l) {
    lean_string_object *o = alloc_string("", 0, 1);
    uint32_t status;
    (void)l;
    status = ringworker_emit_row_string(0, o);
    free(o);
    return status;
}
/* Emits "λx → ∀\0y": multi-byte UTF-8 and an interior NUL (both valid). */
static uint32_t string_multibyte_and_nul(limits l) {
    static const char text[] = "\xce\xbbx \xe2\x86\x92 \xe2\x88\x80\0y";
    lean_string_object *o = alloc_string(text, sizeof text - 1, sizeof text + 4);
    uint32_t status;
    (void)l;
    status = ringworker_emit_row_string(0, o);
    free(o);
    return status;
}
static uint32_t diag_level_3(limits l) {
    (void)l;
    return ringworker_emit_diagnostic(3, (const uint8_t *)"x", 1);
}
/* The level is checked before the text. */
static uint32_t diag_level_max_null_text(limits l) {
    (void)l;
    return ringworker_emit_diagnostic(UINT32_MAX, NULL, 9);
}
static uint32_t diag_null_text(limits l) { (void)l; return ringworker_emit_diagnostic(1, NULL, 3); }
static uint32_t diag_bad_utf8(limits l) {
    (void)l;
    return ringworker_emit_diagnostic(2, (const uint8_t *)"\xff\xfe", 2);
}
static uint32_t diag_over_max_record(limits l) {
    uint8_t *text = malloc(l.max_record + 1);
    uint32_t status;
    if (text == NULL) abort();
    memset(text, 'd', l.max_record + 1);
    status = ringworker_emit_diagnostic(0, text, l.max_record + 1);
    free(text);
    return status;
}
/* Sends an empty info diagnostic. */
static uint32_t diag_null_empty(limits l) { (void)l; return ringworker_emit_diagnostic(0, NULL, 0); }
/* Emits "last": the request is still usable after every case above. */
static uint32_t ptr_last(limits l) {
    (void)l;
    return ringworker_emit_row(1, (const uint8_t *)"last", 4);
}

typedef struct {
    const char *name;
    uint32_t (*run)(limits);
} bad_case;

static const bad_case CASES[] = {
    {"ptr_null_with_len", ptr_null_with_len},
    {"ptr_null_empty", ptr_null_empty},
    {"ptr_over_max_row", ptr_over_max_row},
    {"ptr_after_too_large", ptr_after_too_large},
    {"ptr_huge_len", ptr_huge_len},
    {"stream_above_max", stream_above_max},
    {"stream_above_u16", stream_above_u16},
    {"stream_max_u32", stream_max_u32},
    {"bytes_null", bytes_null},
    {"bytes_scalar", bytes_scalar},
    {"bytes_misaligned", bytes_misaligned},
    {"bytes_given_a_string", bytes_given_a_string},
    {"bytes_float_array", bytes_float_array},
    {"bytes_size_over_capacity", bytes_size_over_capacity},
    {"bytes_over_max_row", bytes_over_max_row},
    {"bytes_marked_linear", bytes_marked_linear},
    {"bytes_persistent_rc0", bytes_persistent_rc0},
    {"bytes_shared_mt", bytes_shared_mt},
    {"string_null", string_null},
    {"string_scalar", string_scalar},
    {"string_given_bytes", string_given_bytes},
    {"string_without_nul", string_without_nul},
    {"string_size_zero", string_size_zero},
    {"string_size_over_capacity", string_size_over_capacity},
    {"string_bad_utf8", string_bad_utf8},
    {"string_over_max_row", string_over_max_row},
    {"string_empty", string_empty},
    {"string_multibyte_and_nul", string_multibyte_and_nul},
    {"diag_level_3", diag_level_3},
    {"diag_level_max_null_text", diag_level_max_null_text},
    {"diag_null_text", diag_null_text},
    {"diag_bad_utf8", diag_bad_utf8},
    {"diag_over_max_record", diag_over_max_record},
    {"diag_null_empty", diag_null_empty},
    {"ptr_last", ptr_last},
};

#define CASE_COUNT (sizeof CASES / sizeof CASES[0])

size_t driver_case_count(void) { return CASE_COUNT; }

const char *driver_case_name(size_t i) { return i < CASE_COUNT ? CASES[i].name : NULL; }

/* Runs every case in order; statuses[i] is case i's (statuses has room for
 * driver_case_count()). */
void driver_bad_arguments(size_t max_row, size_t max_record, uint32_t *statuses) {
    limits l = {max_row, max_record};
    for (size_t i = 0; i < CASE_COUNT; i++) statuses[i] = CASES[i].run(l);
}

/* ---- Outside a request: every function, with good and bad arguments. ---- */

#define OUTSIDE_CALLS 10

size_t driver_outside_count(void) { return OUTSIDE_CALLS; }

void driver_outside(uint32_t *out) {
    lean_sarray_object *bytes = byte_array_of("abc", 3);
    lean_string_object *string = alloc_string("abc", 3, 4);
    out[0] = ringworker_emit_row(0, (const uint8_t *)"abc", 3);
    out[1] = ringworker_emit_row(0, NULL, 5);
    out[2] = ringworker_emit_row(UINT32_MAX, NULL, 0);
    out[3] = ringworker_emit_row_bytes(0, bytes);
    out[4] = ringworker_emit_row_bytes(0, lean_box(1));
    out[5] = ringworker_emit_row_string(0, string);
    out[6] = ringworker_emit_progress(1, 2);
    out[7] = ringworker_emit_diagnostic(0, (const uint8_t *)"abc", 3);
    out[8] = ringworker_emit_diagnostic(99, NULL, 1);
    out[9] = ringworker_check_cancelled();
    free(bytes);
    free(string);
}

/* ---- What the compiler made of the header and the mirrored layouts. ---- */

size_t driver_status_constants(uint32_t *out) {
    static const uint32_t constants[] = {
        RINGWORKER_OK,          RINGWORKER_NO_REQUEST,  RINGWORKER_NULL_POINTER,
        RINGWORKER_ROW_TOO_LARGE, RINGWORKER_UNKNOWN_STREAM, RINGWORKER_CANCELLED,
        RINGWORKER_BAD_OBJECT,  RINGWORKER_RING_CLOSED, RINGWORKER_BAD_UTF8,
        RINGWORKER_INTERNAL,    RINGWORKER_BAD_LEVEL,
    };
    memcpy(out, constants, sizeof constants);
    return sizeof constants / sizeof constants[0];
}

/* The bytes of a header with distinct field values, as this compiler lays
 * out the bit-fields. */
void driver_header_bytes(uint8_t out[8]) {
    lean_object o;
    memset(&o, 0, sizeof o);
    o.m_rc = 0x01020304;
    o.m_cs_sz = 0x1234;
    o.m_other = 0xAB;
    o.m_tag = 0xCD;
    memcpy(out, &o, sizeof o);
}

/* sizeof and offsetof of the mirrored structs, in the order the Rust side
 * lists them. */
size_t driver_layout(size_t *out) {
    out[0] = sizeof(lean_object);
    out[1] = offsetof(lean_sarray_object, m_size);
    out[2] = offsetof(lean_sarray_object, m_capacity);
    out[3] = offsetof(lean_sarray_object, m_data);
    out[4] = sizeof(lean_sarray_object);
    out[5] = offsetof(lean_string_object, m_size);
    out[6] = offsetof(lean_string_object, m_capacity);
    out[7] = offsetof(lean_string_object, m_length);
    out[8] = offsetof(lean_string_object, m_data);
    out[9] = sizeof(lean_string_object);
    return 10;
}
