// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <chrono>

namespace godislock::util {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// A point on the monotonic clock after which a blocking call gives up.
// Copyable value type; thread-safe as any value.
class Deadline {
 public:
  static Deadline never() { return Deadline(Clock::time_point::max()); }
  static Deadline after(Clock::duration d) {
    return Deadline(Clock::now() + d);
  }
  static Deadline at(Clock::time_point t) { return Deadline(t); }

  bool is_never() const { return m_at == Clock::time_point::max(); }
  bool expired() const { return !is_never() && Clock::now() >= m_at; }
  Clock::time_point when() const { return m_at; }

  // Time left, clamped at zero; a large value for never().
  Clock::duration remaining() const {
    if (is_never()) {
      return std::chrono::hours(24 * 365);
    }
    auto left = m_at - Clock::now();
    return std::max(left, Clock::duration::zero());
  }

  // Milliseconds left for poll(2): rounded up so that a poll never returns
  // early and spins; -1 (infinite) for never().
  int poll_timeout_ms() const {
    if (is_never()) {
      return -1;
    }
    auto left = remaining();
    auto ms = std::chrono::ceil<Millis>(left).count();
    return static_cast<int>(std::min<long long>(ms, 1000LL * 3600));
  }

  Deadline min(Deadline other) const {
    return Deadline(std::min(m_at, other.m_at));
  }

 private:
  explicit Deadline(Clock::time_point t) : m_at(t) {}
  Clock::time_point m_at;
};

}  // namespace godislock::util
