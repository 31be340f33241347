// SPDX-License-Identifier: MIT
// Deadlines and elapsed time for the integration tests.
#pragma once

#include "util/deadline.hpp"

#include <chrono>

namespace godislock::test {

// The deadline of a call that should answer at once on a healthy loopback
// server: generous, so that a slow machine does not fail the test.
inline util::Deadline soon() {
  return util::Deadline::after(std::chrono::seconds(5));
}

// Milliseconds since `t`.
inline std::chrono::milliseconds since(util::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      util::Clock::now() - t);
}

}  // namespace godislock::test
