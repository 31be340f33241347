// SPDX-License-Identifier: MIT
#pragma once

#include "backend/backend.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace godislock::lock {

using Millis = std::chrono::milliseconds;

struct AcquireRequest {
  std::string token;
  Millis ttl{30000};
  util::Deadline wait = util::Deadline::never();  // give up after this
  bool single_try = false;                        // --nonblock / --wait 0
  // How long a broken connection may stay broken before we give up.
  Millis outage_tolerance{5000};
};

struct AcquireResult {
  enum class Outcome { acquired, timed_out, no_expiry, wrong_type };
  Outcome outcome = Outcome::timed_out;
  uint64_t fence = 0;
  // Start of the attempt that took the lock: validity counts from here,
  // because the server may have set the key's TTL at any moment after it.
  util::Clock::time_point acquired_at{};
  std::string detail;  // wrong_type: the key's type
  int attempts = 0;
  int wakeups = 0;  // release announcements received
  // True once any attempt's reply was lost: the key may hold our token, so
  // a caller that gives up must release by token.
  bool maybe_holding = false;
};

// Takes the lock, waiting by subscription, never by polling: after a failed
// attempt it subscribes to the release channel, tries once more (so that a
// release between the attempt and the subscription is not lost), then sleeps
// on the subscription for at most the holder's remaining TTL (a crashed
// holder publishes nothing) or the time left to wait. Errors: the backend's,
// once an outage lasted longer than outage_tolerance, or interrupted.
// `maybe_holding` in the result (and on error, through *maybe_holding) tells
// whether a release by token is owed.
util::Result<AcquireResult> acquire(backend::Backend& backend,
                                    const AcquireRequest& request,
                                    bool* maybe_holding);

}  // namespace godislock::lock
