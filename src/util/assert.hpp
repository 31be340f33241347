// SPDX-License-Identifier: MIT
#pragma once

// An assertion that stays on in release builds: a broken invariant in a lock
// tool must not be silently ignored.
#define GODISLOCK_ASSERT(cond)                                         \
  do {                                                                 \
    if (!(cond)) {                                                     \
      ::godislock::util::assertion_failed(__FILE__, __LINE__, #cond);  \
    }                                                                  \
  } while (false)

namespace godislock::util {
[[noreturn]] void assertion_failed(const char* file, int line,
                                   const char* expr);
}  // namespace godislock::util
