// SPDX-License-Identifier: MIT
#include "lock/acquirer.hpp"

#include "util/log.hpp"

#include <algorithm>
#include <memory>
#include <thread>

namespace godislock::lock {

using backend::Attempt;
using backend::Outcome;
using util::Clock;
using util::Deadline;
using util::Error;
using util::ErrorKind;
using util::Result;

namespace {

constexpr Millis k_attempt_grace{1000};

bool is_transient(const Error& e) {
  return e.kind == ErrorKind::io || e.kind == ErrorKind::timeout ||
         e.kind == ErrorKind::busy;
}

// Retries an operation through a transient outage, with backoff, for at most
// `tolerance` from the first failure, and not past `stop`. Stops early on
// interruption or a non-transient error.
template <typename F>
auto with_retries(F&& op, Millis tolerance, Deadline stop)
    -> decltype(op(Deadline::never())) {
  auto outage_end = Deadline::after(tolerance);
  auto give_up = outage_end.min(stop);
  Millis backoff{20};
  for (;;) {
    auto r = op(outage_end);
    if (r.ok() || !is_transient(r.error())) {
      return r;
    }
    auto left = give_up.remaining();
    if (left <= Millis(1)) {
      return r;
    }
    auto pause = std::min<util::Clock::duration>(backoff, left / 2);
    GODISLOCK_DEBUG("{}; retrying in {} ms", r.error().message,
                    std::chrono::duration_cast<Millis>(pause).count());
    std::this_thread::sleep_for(pause);
    backoff = std::min(backoff * 2, Millis(500));
  }
}

// Runs `op` again after each interruption by a signal that the request's
// on_interrupt() does not want to end the wait for.
template <typename F>
auto resuming(const AcquireRequest& request, F&& op) -> decltype(op()) {
  for (;;) {
    auto r = op();
    if (r.ok() || r.error().kind != ErrorKind::interrupted ||
        !request.on_interrupt || request.on_interrupt()) {
      return r;
    }
  }
}

}  // namespace

Result<AcquireResult> acquire(backend::Backend& backend,
                              const AcquireRequest& request,
                              bool* maybe_holding) {
  AcquireResult result;
  *maybe_holding = false;

  // One attempt, retried with the same token through a lost reply: if the
  // first try did take the key, the script recognises our token. A finite
  // wait bounds attempts too (a hung server must not stretch --wait); the
  // caller then releases by token, as the key may be ours.
  const Deadline attempt_stop =
      request.single_try ? Deadline::never() : request.wait;
  using Mode = backend::Backend::Mode;
  Mode mode = request.fair ? Mode::try_ : Mode::race;
  Clock::time_point last_started{};  // of the latest attempt
  auto attempt = [&]() -> Result<Attempt> {
    return resuming(request, [&] {
      return with_retries(
          [&](Deadline d) -> Result<Attempt> {
            result.attempts++;
            auto started = Clock::now();
            last_started = started;
            // An attempt begun just before the wait ends still gets a fair
            // chance to complete (at most k_attempt_grace more).
            auto bound = d.min(Deadline::at(
                std::max(attempt_stop.when(),
                         (Deadline::after(k_attempt_grace)).when())));
            auto a = backend.acquire(request.token, request.ttl, mode, bound);
            // A reply tells the whole truth: the key is ours or it is not.
            // Without one (lost, timed out, interrupted after sending), the
            // script may have run: assume it did until a reply says
            // otherwise. In the queue, our token must leave it when we give
            // up.
            *maybe_holding = !a.ok() || mode == Mode::queue;
            if (a && a->state == Outcome::acquired) {
              result.acquired_at = started;
            }
            return a;
          },
          request.outage_tolerance, attempt_stop);
    });
  };

  // The attempt's outcome is the wait's, unless it found the lock taken.
  auto finish = [&](const Attempt& a) -> std::optional<AcquireResult> {
    if (a.state == Outcome::held || a.state == Outcome::queued) {
      if (request.on_blocked) {
        request.on_blocked(a);
      }
      return std::nullopt;
    }
    result.outcome = a.state;
    result.fence = a.fence;
    result.slot = a.slot;
    result.detail = a.detail;
    result.detail_key = a.detail_key;
    return result;
  };

  auto a = attempt();
  if (!a) {
    return a.error();
  }
  if (auto done = finish(*a)) {
    return *done;
  }
  if (request.single_try || request.wait.expired()) {
    result.outcome = Outcome::timed_out;
    return result;
  }

  // Sleeps end at `until`, or earlier for a progress tick.
  auto next_tick = [&](Deadline until) {
    if (!request.on_tick || request.tick <= Millis(0)) {
      return until;
    }
    return Deadline::after(request.tick).min(until);
  };

  std::shared_ptr<backend::ReleaseWatch> watch;
  for (;;) {
    if (!watch) {
      auto w = resuming(request, [&] {
        return with_retries(
            [&](Deadline d) {
              return backend.watch(request.token, request.fair,
                                   d.min(request.wait));
            },
            request.outage_tolerance, request.wait);
      });
      if (!w) {
        // Our wait ran out while the subscription could not be restored:
        // the lock was held all along, so that is a timeout.
        if (is_transient(w.error()) && request.wait.expired()) {
          result.outcome = Outcome::timed_out;
          return result;
        }
        return w.error();
      }
      watch = std::move(w.value());
      result.watch = watch;
      GODISLOCK_DEBUG("subscribed to release announcements");
      // Try again now, joining the queue when fair: a release may have
      // happened before the subscription was confirmed, and it would never
      // be announced to us.
      if (request.fair) {
        mode = Mode::queue;
      }
      a = attempt();
      if (!a) {
        return a.error();
      }
      if (auto done = finish(*a)) {
        return *done;
      }
    }
    if (request.wait.expired()) {
      result.outcome = Outcome::timed_out;
      return result;
    }
    // Sleep until a release is announced, the holder's lease runs out (a
    // crashed holder announces nothing; +1 ms so the key is surely gone),
    // our place in the queue needs renewing, or our wait ends.
    Millis sleep = backend::k_queue_lease / 3;
    if (a->state == Outcome::held) {
      sleep = request.fair ? std::min(sleep, a->holder_ttl + Millis(1))
                           : a->holder_ttl + Millis(1);
      GODISLOCK_DEBUG("lock held for {} ms more; waiting for its release",
                      a->holder_ttl.count());
    } else if (a->head_lapses) {
      // The waiter ahead has no subscriber: it is resubscribing, or dead.
      sleep = std::min(sleep, *a->head_lapses + Millis(1));
      GODISLOCK_DEBUG(
          "lock free but an earlier waiter goes first; it loses "
          "its place in {} ms unless it comes back",
          a->head_lapses->count());
    } else {
      GODISLOCK_DEBUG("lock free but an earlier waiter goes first; waiting");
    }
    auto until = Deadline::after(sleep).min(request.wait);
    auto sleep_on = [&] {
      return resuming(request, [&] { return watch->wait(next_tick(until)); });
    };
    auto woke = sleep_on();
    while (woke && !*woke && Clock::now() < until.when()) {
      if (request.on_tick) {
        request.on_tick();
      }
      woke = sleep_on();
    }
    if (!woke) {
      if (woke.error().kind == ErrorKind::interrupted) {
        return woke.error();
      }
      GODISLOCK_DEBUG("subscription lost ({}); subscribing again",
                      woke.error().message);
      watch.reset();
      result.watch.reset();
      continue;  // resubscribe, then attempt
    }
    if (*woke && woke->granted_fence) {
      // Handed to us by its releaser, after our latest attempt was
      // processed: the lease counts from that attempt's start. When that
      // is too long ago to leave the command a useful lease, one more
      // attempt (it finds the lock ours) renews it first.
      result.wakeups++;
      *maybe_holding = true;
      if (Clock::now() - last_started <= request.handover_max_age) {
        result.outcome = Outcome::acquired;
        result.fence = *woke->granted_fence;
        result.slot = 1;
        result.acquired_at = last_started;
        result.handed_over = true;
        return result;
      }
      GODISLOCK_DEBUG(
          "lock handed over, but our latest attempt is too old "
          "to count the lease from; renewing it");
    } else if (*woke) {
      result.wakeups++;
    } else if (request.wait.expired()) {
      result.outcome = Outcome::timed_out;
      return result;
    }
    a = attempt();
    if (!a) {
      return a.error();
    }
    if (auto done = finish(*a)) {
      return *done;
    }
  }
}

}  // namespace godislock::lock
