// SPDX-License-Identifier: MIT
// lock::acquire against a real redis-server: first-try acquisition, single
// tries and finite waits, waking on a release announcement or on the
// holder's expiry, foreign keys, a killed subscription, outages and
// interruption.
#include "lock/acquirer.hpp"

#include "backend/redis_backend.hpp"
#include "backend/scripts/acquire_lua.hpp"
#include "support/backend_fixture.hpp"
#include "support/time.hpp"
#include "util/fd.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace godislock::lock {
namespace {

using namespace std::chrono_literals;
using backend::Attempt;
using backend::Backend;
using test::ResumeOnExit;
using test::since;
using test::soon;
using test::wait_until;
using util::Clock;
using util::Deadline;
using util::ErrorKind;
using Outcome = backend::Outcome;

constexpr char k_lock[] = "t:{job}";
constexpr char k_channel[] = "t:{job}:released";
constexpr char k_holder[] = "1111111111111111111111111111111a";
constexpr char k_waiter[] = "2222222222222222222222222222222b";

// These tests cover race mode (--no-fair: every release is announced on
// the release channel); lock_fair_queue_test.cpp covers the FIFO queue.
AcquireRequest request(Millis ttl, Deadline wait) {
  AcquireRequest r;
  r.token = k_waiter;
  r.ttl = ttl;
  r.wait = wait;
  r.fair = false;
  return r;
}

// Counts the acquirer's progress ticks: a tick comes only while it sleeps
// waiting, after its latest attempt was answered.
struct Ticks {
  // Makes `req` tick every 10 ms into this counter.
  void watch(AcquireRequest& req) {
    req.tick = 10ms;
    req.on_tick = [this] { count++; };
  }
  // Waits until a tick comes after this call: since the call, the acquirer
  // has slept waiting, its latest attempt answered.
  bool wait_next(Millis limit) {
    int seen = count.load();
    return wait_until([&] { return count.load() > seen; }, limit);
  }
  std::atomic<int> count{0};
};

class AcquirerTest : public test::BackendTest {
 protected:
  // Takes the lock for k_holder, outside the code under test.
  std::unique_ptr<Backend> hold(Millis ttl) const {
    return BackendTest::hold(k_holder, ttl);
  }

  long long subscribers() const { return test::subscribers(server, k_channel); }

  bool wait_for_subscribers(long long n, Millis limit) const {
    return wait_until([&] { return subscribers() == n; }, limit);
  }
};

TEST_F(AcquirerTest, FreeLockOnTheFirstAttempt) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  bool maybe_holding = true;
  auto before = Clock::now();
  auto r = acquire(*b, request(5000ms, Deadline::never()), &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::acquired);
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(r->wakeups, 0);
  EXPECT_GT(r->fence, 0u);
  EXPECT_GE(r->acquired_at, before);
  EXPECT_LE(r->acquired_at, Clock::now());
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_waiter);
}

TEST_F(AcquirerTest, SingleTryOnAHeldLockTimesOutAtOnce) {
  auto holder = hold(10000ms);
  ASSERT_NE(holder, nullptr);
  auto b = open();
  ASSERT_NE(b, nullptr);
  AcquireRequest req = request(5000ms, Deadline::never());
  req.single_try = true;
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, req, &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::timed_out);
  EXPECT_EQ(r->attempts, 1);
  EXPECT_LT(since(start), 1000ms);
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(subscribers(), 0);  // a single try never subscribes
  EXPECT_EQ(server.cli({"GET", k_lock}), k_holder);
}

TEST_F(AcquirerTest, FiniteWaitOnAHeldLockTimesOut) {
  auto holder = hold(10000ms);
  ASSERT_NE(holder, nullptr);
  auto b = open();
  ASSERT_NE(b, nullptr);
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, request(5000ms, Deadline::after(300ms)), &maybe_holding);
  auto took = since(start);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::timed_out);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 5000ms);
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_holder);
}

TEST_F(AcquirerTest, WaiterWakesOnRelease) {
  auto holder = hold(10000ms);
  ASSERT_NE(holder, nullptr);
  auto b = open();
  ASSERT_NE(b, nullptr);
  Ticks ticks;
  AcquireRequest req = request(5000ms, Deadline::after(10s));
  ticks.watch(req);
  bool released = false;
  std::thread releaser([&] {
    // Release only once the waiter sleeps on its subscription, so that the
    // wake-up is the announcement and not the attempt that follows the
    // subscription.
    if (!ticks.wait_next(5000ms)) {
      return;
    }
    auto r = holder->release(k_holder, soon());
    released = r && *r;
  });
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, req, &maybe_holding);
  auto took = since(start);
  releaser.join();
  ASSERT_TRUE(released);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::acquired);
  EXPECT_GE(r->wakeups, 1);
  EXPECT_LT(took, 5000ms);  // far less than the holder's 10 s TTL
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_waiter);
}

TEST_F(AcquirerTest, WaiterWakesWhenTheHolderExpires) {
  // A crashed holder: short TTL, never released, nothing published.
  auto holder = hold(300ms);
  ASSERT_NE(holder, nullptr);
  auto b = open();
  ASSERT_NE(b, nullptr);
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, request(5000ms, Deadline::after(10s)), &maybe_holding);
  auto took = since(start);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::acquired);
  EXPECT_EQ(r->wakeups, 0);
  EXPECT_GE(r->attempts, 2);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 3000ms);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_waiter);
}

TEST_F(AcquirerTest, KeyWithoutExpiryEndsTheWaitAtOnce) {
  ASSERT_EQ(server.cli({"SET", k_lock, "foreign"}), "OK");
  auto b = open();
  ASSERT_NE(b, nullptr);
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, request(5000ms, Deadline::after(10s)), &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::no_expiry);
  EXPECT_LT(since(start), 2000ms);
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(server.cli({"GET", k_lock}), "foreign");
  EXPECT_EQ(server.cli({"PTTL", k_lock}), "(integer) -1");
}

TEST_F(AcquirerTest, KeyOfAnotherTypeEndsTheWaitAtOnce) {
  ASSERT_EQ(server.cli({"SADD", k_lock, "m"}), "(integer) 1");
  auto b = open();
  ASSERT_NE(b, nullptr);
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, request(5000ms, Deadline::after(10s)), &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::wrong_type);
  EXPECT_EQ(r->detail, "set");
  EXPECT_LT(since(start), 2000ms);
  EXPECT_EQ(server.cli({"TYPE", k_lock}), "set");
}

TEST_F(AcquirerTest, SubscriptionIsRenewedAfterClientKill) {
  auto holder = hold(10000ms);
  ASSERT_NE(holder, nullptr);
  auto b = open();
  ASSERT_NE(b, nullptr);
  Ticks ticks;
  AcquireRequest req = request(5000ms, Deadline::after(8s));
  ticks.watch(req);
  util::Result<AcquireResult> r = util::Error{ErrorKind::io, "not run"};
  bool maybe_holding = true;
  auto start = Clock::now();
  std::thread waiter([&] { r = acquire(*b, req, &maybe_holding); });
  bool subscribed = wait_for_subscribers(1, 5000ms);
  std::string killed = server.cli({"CLIENT", "KILL", "TYPE", "pubsub"});
  // The waiter notices and subscribes again on a new connection, tries
  // again, and sleeps on the new subscription.
  bool resubscribed = wait_for_subscribers(1, 5000ms);
  bool asleep = ticks.wait_next(5000ms);
  auto released = holder->release(k_holder, soon());
  waiter.join();
  auto took = since(start);
  ASSERT_TRUE(subscribed);
  EXPECT_EQ(killed, "(integer) 1");
  EXPECT_TRUE(resubscribed);
  EXPECT_TRUE(asleep);
  ASSERT_TRUE(released && *released);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::acquired);
  EXPECT_LT(took, 5000ms);  // the holder's TTL (10 s) did not have to pass
  EXPECT_EQ(server.cli({"GET", k_lock}), k_waiter);
}

TEST_F(AcquirerTest, ReadableInterruptFdEndsTheWait) {
  auto holder = hold(10000ms);
  ASSERT_NE(holder, nullptr);
  auto b = open();
  ASSERT_NE(b, nullptr);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  util::Fd read_end(fds[0]);
  util::Fd write_end(fds[1]);
  b->set_interrupt_fd(read_end.get());
  Ticks ticks;
  AcquireRequest req = request(5000ms, Deadline::never());
  ticks.watch(req);
  // Interrupts the waiter once it sleeps on its subscription (its last
  // attempt answered), or after 5 s, so that the test ends either way.
  std::thread poker([&] {
    ticks.wait_next(5000ms);
    char byte = 's';
    [[maybe_unused]] ssize_t n = ::write(write_end.get(), &byte, 1);
  });
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, req, &maybe_holding);
  auto took = since(start);
  poker.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::interrupted) << r.error().message;
  EXPECT_LT(took, 3000ms);
  // The last attempt was answered "held": nothing of ours is on the server.
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_holder);
}

TEST_F(AcquirerTest, InterruptedBeforeTheReplyAssumesTheKeyWasTaken) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  util::Fd read_end(fds[0]);
  util::Fd write_end(fds[1]);
  char byte = 's';
  ASSERT_EQ(::write(write_end.get(), &byte, 1), 1);
  b->set_interrupt_fd(read_end.get());
  // Cache the script, or the server would answer EVALSHA with NOSCRIPT and
  // the EVAL fallback would never be sent.
  ASSERT_EQ(server.cli({"SCRIPT", "LOAD", backend::scripts::k_acquire_source}),
            backend::scripts::k_acquire_sha1);
  bool maybe_holding = false;
  {
    // The script is sent, but the stopped server cannot answer before the
    // interruption is seen.
    ResumeOnExit resume{server};
    server.pause();
    auto r = acquire(*b, request(5000ms, Deadline::never()), &maybe_holding);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::interrupted) << r.error().message;
  }
  EXPECT_TRUE(maybe_holding);
  // And indeed the script ran once the server went on: a release by token
  // is owed.
  std::string value;
  wait_until(
      [&] {
        value = server.cli({"GET", k_lock});
        return value == k_waiter;
      },
      5000ms);
  EXPECT_EQ(value, k_waiter);
}

TEST_F(AcquirerTest, RetriesThroughABrokenConnection) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  // Drop the backend's connection (the cli's own is skipped by default).
  ASSERT_EQ(server.cli({"CLIENT", "KILL", "TYPE", "normal"}), "(integer) 1");
  bool maybe_holding = true;
  auto r = acquire(*b, request(5000ms, Deadline::after(5s)), &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::acquired);
  EXPECT_EQ(r->attempts, 2);  // one on the dead connection, one reconnected
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_waiter);
}

TEST_F(AcquirerTest, OutageLongerThanTheToleranceIsAnError) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  ResumeOnExit resume{server};
  server.pause();
  AcquireRequest req = request(5000ms, Deadline::after(10s));
  req.outage_tolerance = 300ms;
  bool maybe_holding = false;
  auto start = Clock::now();
  auto r = acquire(*b, req, &maybe_holding);
  auto took = since(start);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().kind == ErrorKind::timeout ||
              r.error().kind == ErrorKind::io)
      << r.error().message;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3000ms);
  EXPECT_TRUE(maybe_holding);  // the script was sent; no answer came
}

// The caller's wait deadline (--wait) must hold even when the server stops
// answering while we wait: the outage tolerance bounds how long a broken
// connection is retried, not how long past the wait we may stay.
TEST_F(AcquirerTest, WaitDeadlineHoldsWhenTheServerHangsWhileWaiting) {
  auto holder = hold(10000ms);
  ASSERT_NE(holder, nullptr);
  auto b = open();
  ASSERT_NE(b, nullptr);
  AcquireRequest req = request(5000ms, Deadline::after(1000ms));
  req.outage_tolerance = 5000ms;  // the default --connect-timeout
  util::Result<AcquireResult> r = util::Error{ErrorKind::io, "not run"};
  bool maybe_holding = true;
  auto start = Clock::now();
  std::thread waiter([&] { r = acquire(*b, req, &maybe_holding); });
  bool subscribed = wait_for_subscribers(1, 900ms);
  {
    ResumeOnExit resume{server};
    // Drop the subscription, then hang the server: resubscribing connects
    // (the kernel completes the handshake) but gets no confirmation.
    std::string killed = server.cli({"CLIENT", "KILL", "TYPE", "pubsub"});
    server.pause();
    waiter.join();
    EXPECT_EQ(killed, "(integer) 1");
  }
  auto took = since(start);
  ASSERT_TRUE(subscribed);
  if (r) {
    EXPECT_EQ(r->outcome, Outcome::timed_out);
  }
  EXPECT_LT(took, 3000ms) << "BUG: the 1 s wait took " << took.count()
                          << " ms: watch() was retried after the wait "
                             "ended, for the whole outage tolerance";
}

}  // namespace
}  // namespace godislock::lock
