// SPDX-License-Identifier: MIT
#pragma once

#include "backend/backend.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace godislock::lock {

using Millis = std::chrono::milliseconds;

struct AcquireRequest {
  std::string token;
  Millis ttl{30000};
  util::Deadline wait = util::Deadline::never();  // give up after this
  bool single_try = false;                        // --nonblock / --wait 0
  // FIFO: the lock goes to the waiter that waited longest, and a release
  // wakes that one waiter only. false: --no-fair, every waiter races.
  bool fair = true;
  // How long a broken connection may stay broken before we give up.
  Millis outage_tolerance{5000};
  // A lock handed straight to us by its releaser (see backend::Wakeup) is
  // used at once when our latest attempt started at most this long ago
  // (its lease counts from there); older, one more attempt renews it.
  Millis handover_max_age{0};
  // Called after each attempt that found the lock taken (for messages).
  std::function<void(const backend::Attempt&)> on_blocked;
  // Called when a signal interrupted an attempt or the wait: true ends the
  // wait (the error is then ErrorKind::interrupted), false carries on where
  // it was (the subscription and the place in the queue are kept). Unset:
  // every interruption ends the wait.
  std::function<bool()> on_interrupt;
  // Called every `tick` while asleep waiting (for a live progress line; it
  // costs no request). Zero: never.
  std::function<void()> on_tick;
  Millis tick{0};
};

struct AcquireResult {
  // acquired, timed_out, no_expiry, wrong_type or mismatch.
  backend::Outcome outcome = backend::Outcome::timed_out;
  uint64_t fence = 0;
  unsigned slot = 0;  // 1..limit, 0 when shared
  // Start of the attempt that took the lock: validity counts from here,
  // because the server may have set the key's TTL at any moment after it.
  util::Clock::time_point acquired_at{};
  // wrong_type: the key's type (detail) and name (detail_key); mismatch:
  // the shape the lock is in use as (see backend::Attempt); timed_out: why
  // the latest attempt did not take it, when the backend said.
  std::string detail;
  std::string detail_key;
  int attempts = 0;
  int wakeups = 0;           // release announcements received
  bool handed_over = false;  // by the releaser, without an attempt of ours
  // The subscription, when there was one: left open for the caller to drop
  // once its command has started (closing it wakes the server, which then
  // competes for the CPU with starting the command).
  std::shared_ptr<backend::ReleaseWatch> watch;
};

// Takes the lock, waiting by subscription, never by polling: after a failed
// attempt it subscribes (fair: to its own wake-up channel; race: to every
// release), tries once more (joining the queue when fair; and so that a
// release between the attempt and the subscription is not lost), then
// sleeps on the subscription for at most the holder's remaining TTL (a
// crashed holder publishes nothing), a third of the queue lease (to keep
// its place), or the time left to wait. A fair waiter of an exclusive lock
// may be handed the lock by its releaser while asleep, which saves it an
// attempt (acquired_at is then the start of its latest attempt). Errors:
// the backend's, once an outage lasted longer than outage_tolerance, or
// interrupted.
// *maybe_holding tells whether a release by token is owed when the lock was
// not acquired: the key may be ours (a reply was lost), or the token is
// queued and must leave the queue at once.
util::Result<AcquireResult> acquire(backend::Backend& backend,
                                    const AcquireRequest& request,
                                    bool* maybe_holding);

}  // namespace godislock::lock
