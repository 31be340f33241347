// SPDX-License-Identifier: MIT
#include "lock/acquirer.hpp"

#include "util/log.hpp"

#include <algorithm>
#include <memory>
#include <optional>
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
//
// The last attempt has only what is left of the outage: when it runs out of
// time, the failure an earlier attempt saw in full (a reset, a refusal) says
// more about the server than "no reply in time" does, and is reported.
template <typename F>
auto with_retries(F&& op, Millis tolerance, Deadline stop)
    -> decltype(op(Deadline::never())) {
  auto outage_end = Deadline::after(tolerance);
  auto give_up = outage_end.min(stop);
  Millis backoff{20};
  std::optional<Error> seen;
  for (;;) {
    auto r = op(outage_end);
    if (r.ok() || !is_transient(r.error())) {
      return r;
    }
    if (r.error().kind != ErrorKind::timeout) {
      seen = r.error();
    }
    auto left = give_up.remaining();
    if (left <= Millis(1)) {
      if (r.error().kind == ErrorKind::timeout && seen) {
        return *std::move(seen);
      }
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

// One acquisition: what it has learnt between attempts, each step a method.
class Waiter {
 public:
  Waiter(backend::Backend& backend, const AcquireRequest& request,
         bool* maybe_holding)
      : m_backend(backend),
        m_request(request),
        m_maybe_holding(maybe_holding),
        // A finite wait bounds attempts too (a hung server must not
        // stretch --wait); the caller then releases by token.
        m_attempt_stop(request.single_try ? Deadline::never() : request.wait),
        m_mode(request.fair ? Mode::try_ : Mode::race) {
    *m_maybe_holding = false;
  }

  Result<AcquireResult> run();

 private:
  using Mode = backend::Backend::Mode;

  Result<Attempt> attempt();
  std::optional<AcquireResult> finish(const Attempt& a);
  AcquireResult timed_out();
  Result<std::optional<AcquireResult>> subscribe_and_attempt();
  Millis sleep_time() const;
  Result<backend::Wakeup> sleep(Deadline until);
  std::optional<AcquireResult> take_hand_over(uint64_t fence);

  backend::Backend& m_backend;
  const AcquireRequest& m_request;
  bool* m_maybe_holding;
  const Deadline m_attempt_stop;
  Mode m_mode;
  AcquireResult m_result;
  Attempt m_last;                      // the latest attempt's answer
  Clock::time_point m_last_started{};  // and when it started
  std::shared_ptr<backend::ReleaseWatch> m_watch;
};

// One attempt, retried with the same token through a lost reply: if the
// first try did take the key, the script recognises our token.
Result<Attempt> Waiter::attempt() {
  auto a = resuming(m_request, [&] {
    return with_retries(
        [&](Deadline d) -> Result<Attempt> {
          m_result.attempts++;
          auto started = Clock::now();
          m_last_started = started;
          // An attempt begun just before the wait ends still gets a fair
          // chance to complete (at most k_attempt_grace more).
          auto bound = d.min(Deadline::at(std::max(
              m_attempt_stop.when(), Deadline::after(k_attempt_grace).when())));
          auto r =
              m_backend.acquire(m_request.token, m_request.ttl, m_mode, bound);
          // A reply tells the whole truth: the key is ours or it is not.
          // Without one (lost, timed out, interrupted after sending), the
          // script may have run: assume it did until a reply says
          // otherwise. In the queue, our token must leave it when we give
          // up.
          *m_maybe_holding = !r.ok() || m_mode == Mode::queue;
          if (r && r->state == Outcome::acquired) {
            m_result.acquired_at = started;
          }
          return r;
        },
        m_request.outage_tolerance, m_attempt_stop);
  });
  if (a) {
    m_last = *a;
  }
  return a;
}

// The attempt's outcome is the wait's, unless it found the lock taken.
std::optional<AcquireResult> Waiter::finish(const Attempt& a) {
  if (a.state == Outcome::held || a.state == Outcome::queued) {
    if (m_request.on_blocked) {
      m_request.on_blocked(a);
    }
    return std::nullopt;
  }
  m_result.outcome = a.state;
  m_result.fence = a.fence;
  m_result.slot = a.slot;
  m_result.detail = a.detail;
  m_result.detail_key = a.detail_key;
  return m_result;
}

AcquireResult Waiter::timed_out() {
  m_result.outcome = Outcome::timed_out;
  // Why the latest attempt did not take it, when the backend said (a
  // lock given back for want of replicas).
  m_result.detail = m_last.detail;
  return m_result;
}

// Subscribes, then tries again, joining the queue when fair: a release may
// have happened before the subscription was confirmed, and it would never
// be announced to us. Returns the outcome when that settles the wait.
Result<std::optional<AcquireResult>> Waiter::subscribe_and_attempt() {
  auto w = resuming(m_request, [&] {
    return with_retries(
        [&](Deadline d) {
          return m_backend.watch(m_request.token, m_request.fair,
                                 d.min(m_request.wait));
        },
        m_request.outage_tolerance, m_request.wait);
  });
  if (!w) {
    // Our wait ran out while the subscription could not be restored: the
    // lock was held all along, so that is a timeout.
    if (is_transient(w.error()) && m_request.wait.expired()) {
      return std::optional<AcquireResult>(timed_out());
    }
    return w.error();
  }
  m_watch = std::move(w.value());
  m_result.watch = m_watch;
  GODISLOCK_DEBUG("subscribed to release announcements");
  if (m_request.fair) {
    m_mode = Mode::queue;
  }
  auto a = attempt();
  if (!a) {
    return a.error();
  }
  return finish(*a);
}

// How long to sleep on the subscription: until the holder's lease runs out
// (a crashed holder announces nothing; +1 ms so the key is surely gone),
// the waiter ahead loses its place, or our place in the queue needs
// renewing; a release wakes us before.
Millis Waiter::sleep_time() const {
  Millis sleep = backend::k_queue_lease / 3;
  if (m_last.state == Outcome::held) {
    GODISLOCK_DEBUG("lock held for {} ms more; waiting for its release",
                    m_last.holder_ttl.count());
    Millis expiry = m_last.holder_ttl + Millis(1);
    return m_request.fair ? std::min(sleep, expiry) : expiry;
  }
  if (m_last.holders > 0) {
    // A queue behind a known holder (etcd: keys in create-revision order);
    // the watch wakes us when the one ahead goes.
    GODISLOCK_DEBUG("lock held; queued behind it, waiting for our turn");
    return sleep;
  }
  if (m_last.head_lapses) {
    // The waiter ahead has no subscriber: it is resubscribing, or dead.
    GODISLOCK_DEBUG(
        "lock free but an earlier waiter goes first; it loses "
        "its place in {} ms unless it comes back",
        m_last.head_lapses->count());
    return std::min(sleep, *m_last.head_lapses + Millis(1));
  }
  GODISLOCK_DEBUG("lock free but an earlier waiter goes first; waiting");
  return sleep;
}

// Sleeps on the subscription until a message or `until`, cut into progress
// ticks when the request asks for them.
Result<backend::Wakeup> Waiter::sleep(Deadline until) {
  auto slice = [&] {
    if (!m_request.on_tick || m_request.tick <= Millis(0)) {
      return until;
    }
    return Deadline::after(m_request.tick).min(until);
  };
  auto sleep_on = [&] {
    return resuming(m_request, [&] { return m_watch->wait(slice()); });
  };
  auto woke = sleep_on();
  while (woke && !*woke && Clock::now() < until.when()) {
    if (m_request.on_tick) {
      m_request.on_tick();
    }
    woke = sleep_on();
  }
  return woke;
}

// Handed to us by its releaser, after our latest attempt was processed:
// the lease counts from that attempt's start. When that is too long ago to
// leave the command a useful lease, one more attempt (it finds the lock
// ours) renews it first: nullopt.
std::optional<AcquireResult> Waiter::take_hand_over(uint64_t fence) {
  *m_maybe_holding = true;
  if (Clock::now() - m_last_started > m_request.handover_max_age) {
    GODISLOCK_DEBUG(
        "lock handed over, but our latest attempt is too old "
        "to count the lease from; renewing it");
    return std::nullopt;
  }
  m_result.outcome = Outcome::acquired;
  m_result.fence = fence;
  m_result.slot = 1;
  m_result.acquired_at = m_last_started;
  m_result.handed_over = true;
  return m_result;
}

Result<AcquireResult> Waiter::run() {
  auto a = attempt();
  if (!a) {
    return a.error();
  }
  if (auto done = finish(*a)) {
    return *done;
  }
  if (m_request.single_try || m_request.wait.expired()) {
    return timed_out();
  }
  for (;;) {
    if (!m_watch) {
      auto settled = subscribe_and_attempt();
      if (!settled) {
        return settled.error();
      }
      if (*settled) {
        return **settled;
      }
    }
    if (m_request.wait.expired()) {
      return timed_out();
    }
    auto woke = sleep(Deadline::after(sleep_time()).min(m_request.wait));
    if (!woke) {
      if (woke.error().kind == ErrorKind::interrupted) {
        return woke.error();
      }
      GODISLOCK_DEBUG("subscription lost ({}); subscribing again",
                      woke.error().message);
      m_watch.reset();
      m_result.watch.reset();
      continue;  // resubscribe, then attempt
    }
    if (*woke) {
      m_result.wakeups++;
      if (woke->granted_fence) {
        if (auto done = take_hand_over(*woke->granted_fence)) {
          return *done;
        }
      }
    } else if (m_request.wait.expired()) {
      return timed_out();
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

}  // namespace

Result<AcquireResult> acquire(backend::Backend& backend,
                              const AcquireRequest& request,
                              bool* maybe_holding) {
  return Waiter(backend, request, maybe_holding).run();
}

}  // namespace godislock::lock
