// SPDX-License-Identifier: MIT
#pragma once

#include "util/deadline.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>

namespace godislock::lock {

using Millis = std::chrono::milliseconds;

// The timing of a lease, all derived from the TTL and the kill grace.
// Validity counts from the *start* of the last successful acquire or
// refresh: the server may have (re)set the TTL at any moment after it.
struct LeaseTiming {
  Millis ttl;
  Millis refresh_interval;  // ttl / 3
  Millis drift;             // clock drift allowance: 1% of ttl + 2 ms
  Millis kill_after;        // grace between --kill-signal and SIGKILL
  // From a successful start, when the lease must be given up (child
  // signalled) so that SIGKILL lands before the lease can expire:
  // ttl - drift - kill_after - drift (a second drift for delivery of
  // SIGKILL and reaping).
  Millis give_up_after;
};

inline Millis drift_for(Millis ttl) { return ttl / 100 + Millis(2); }

// The largest --kill-after that fits a TTL, or a negative value when even
// 0 does not fit (for error messages).
inline Millis max_kill_after(Millis ttl) {
  return ttl - 2 * drift_for(ttl) - std::max(ttl / 3, Millis(1)) - Millis(1);
}

// Default grace: the smaller of 5 s and a third of the TTL, cut to what
// fits for the tiniest TTLs (a third does not fit at 12 ms).
inline Millis default_kill_after(Millis ttl) {
  Millis d = std::min(Millis(5000), ttl / 3);
  Millis fit = max_kill_after(ttl);
  return fit >= Millis(0) ? std::min(d, fit) : d;
}

// Returns false when kill_after leaves no time for a refresh to succeed
// before the lease must be given up (give_up_after <= refresh_interval).
inline bool make_timing(Millis ttl, Millis kill_after, LeaseTiming* out) {
  LeaseTiming t;
  t.ttl = ttl;
  t.refresh_interval = std::max(ttl / 3, Millis(1));
  t.drift = drift_for(ttl);
  t.kill_after = kill_after;
  t.give_up_after = ttl - t.drift - kill_after - t.drift;
  *out = t;
  return t.give_up_after > t.refresh_interval;
}

// The smallest TTL into which kill_after fits (for error messages).
inline Millis min_ttl_for(Millis kill_after) {
  Millis ttl(3);
  LeaseTiming t;
  while (!make_timing(ttl, kill_after, &t)) {
    ttl += Millis(1);
  }
  return ttl;
}

// The one clock of a held lease: the start of the last successful acquire
// or refresh, and what follows from it. The refresher moves it forward; the
// supervisor reads it to enforce the lease on its own, so it is lock-free
// (a stalled or starved refresher thread must never block the reader).
class LeaseClock {
 public:
  LeaseClock(const LeaseTiming& timing, util::Clock::time_point start)
      : m_timing(timing), m_start(start.time_since_epoch().count()) {}

  const LeaseTiming& timing() const { return m_timing; }

  // A refresh that started at `started` succeeded. Never moves backwards.
  void renewed(util::Clock::time_point started) {
    auto want = started.time_since_epoch().count();
    auto have = m_start.load(std::memory_order_acquire);
    while (have < want && !m_start.compare_exchange_weak(
                              have, want, std::memory_order_acq_rel)) {
    }
  }

  util::Clock::time_point last_start() const {
    return util::Clock::time_point(
        util::Clock::duration(m_start.load(std::memory_order_acquire)));
  }
  // When the command must get --kill-signal unless a refresh succeeds first.
  util::Clock::time_point give_up_at() const {
    return last_start() + m_timing.give_up_after;
  }
  // Until when the lease is provably ours.
  util::Clock::time_point valid_until() const {
    return last_start() + m_timing.ttl - m_timing.drift;
  }

 private:
  const LeaseTiming m_timing;
  std::atomic<util::Clock::rep> m_start;
};

}  // namespace godislock::lock
