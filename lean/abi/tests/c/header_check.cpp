// Compiles include/ringworker_lean.h as C++ (C++17, -Wall -Wextra -Werror
// -pedantic, see build.rs) and calls one of its functions: without the
// header's `extern "C"` block the call would name a C++-mangled symbol and
// the abi-probe worker, which links this file, would not link.
#include "ringworker_lean.h"

#include <cstdint>

static_assert(RINGWORKER_OK == 0u, "RINGWORKER_OK");
static_assert(RINGWORKER_BAD_LEVEL == 10u, "RINGWORKER_BAD_LEVEL");
static_assert(sizeof(RINGWORKER_INTERNAL) == sizeof(unsigned), "unsigned literals");

extern "C" std::uint32_t driver_cxx_check_cancelled(void) noexcept {
    return ringworker_check_cancelled();
}
