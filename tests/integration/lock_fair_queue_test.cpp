// SPDX-License-Identifier: MIT
// The FIFO queue of fair waiters (the default; --no-fair races) against a
// real redis-server: arrival order is acquisition order, a release wakes the
// head only, dead or vanished waiters are skipped, a live head is never
// overtaken by a fair newcomer (a racer may), a waiter that gives up leaves
// the queue, and nothing of the queue outlives a run.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/redis_backend.hpp"
#include "backend/scripts/release_lua.hpp"
#include "lock/acquirer.hpp"
#include "redis/connection.hpp"
#include "support/backend_fixture.hpp"
#include "support/redis_server.hpp"
#include "support/time.hpp"

namespace godislock::lock {
namespace {

using namespace std::chrono_literals;
using backend::Attempt;
using backend::Backend;
using test::as_integer;
using test::calls_of;
using test::since;
using test::soon;
using test::wait_until;
using util::Clock;
using util::Deadline;
using util::ErrorKind;
using Outcome = backend::Outcome;

constexpr char k_lock[] = "t:{job}";
constexpr char k_fence[] = "t:{job}:fence";
constexpr char k_queue[] = "t:{job}:queue";
constexpr char k_holder[] = "1111111111111111111111111111111a";

std::string waiter_key(const std::string& token) {
  return std::string(k_lock) + ":waiter:" + token;
}

std::string wake_channel(const std::string& token) {
  return backend::redis_wake_channel(backend::redis_keys("t:", "job"), token);
}

// A fair waiter on a thread of its own with a backend of its own.
struct Waiter {
  int index = 0;
  std::string token;
  std::unique_ptr<Backend> backend;
  util::Result<AcquireResult> result = util::Error{ErrorKind::io, "not run"};
  bool maybe_holding = false;
  std::atomic<bool> acquired{false};
  std::thread thread;
};

class FairQueueTest : public test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    m_gate = m_gate_promise.get_future().share();
  }

  void TearDown() override {
    // However the test ended: let every waiter run and finish, and free the
    // lock if the holder still has it, so that no thread is left behind.
    open_gate();
    if (m_holder != nullptr) {
      (void)m_holder->release(k_holder, soon());
    }
    for (auto& w : m_waiters) {
      if (w->thread.joinable()) {
        w->thread.join();
      }
    }
  }

  // A backend for the lock, exclusive unless `shared`.
  std::unique_ptr<Backend> open(bool shared = false) const {
    backend::Settings s = settings();
    s.shared = shared;
    return BackendTest::open(s);
  }

  // Takes the lock for k_holder in race mode, outside the code under test.
  bool hold(Millis ttl) {
    m_holder = BackendTest::hold(k_holder, ttl);
    return m_holder != nullptr;
  }

  bool release_holder() {
    auto r = m_holder->release(k_holder, soon());
    return r && *r;
  }

  static std::string token(int i) {
    return fmt::format("{:032x}", 0xfa170000u + static_cast<unsigned>(i));
  }

  // Starts a fair waiter (wait: 20 s, so that a broken test ends). Once it
  // holds the lock it records its index in m_order, waits for the gate,
  // holds `hold` more, then releases.
  Waiter& start_waiter(Millis hold = 0ms) {
    auto w = std::make_unique<Waiter>();
    w->index = static_cast<int>(m_waiters.size());
    w->token = token(w->index);
    w->backend = open();
    Waiter& ref = *w;
    m_waiters.push_back(std::move(w));
    if (ref.backend == nullptr) {
      return ref;
    }
    ref.thread = std::thread([this, &ref, hold] {
      AcquireRequest req;
      req.token = ref.token;
      req.ttl = 10000ms;
      req.wait = Deadline::after(20s);
      req.fair = true;
      req.handover_max_age = m_handover_max_age;
      ref.result = acquire(*ref.backend, req, &ref.maybe_holding);
      if (!ref.result || ref.result->outcome != Outcome::acquired) {
        if (ref.maybe_holding) {
          (void)ref.backend->release(ref.token, soon());
        }
        return;
      }
      {
        std::lock_guard<std::mutex> guard(m_mutex);
        m_order.push_back(ref.index);
      }
      ref.acquired = true;
      m_acquired++;
      m_gate.wait();
      std::this_thread::sleep_for(hold);
      (void)ref.backend->release(ref.token, soon());
    });
    return ref;
  }

  void open_gate() {
    if (!m_gate_open) {
      m_gate_open = true;
      m_gate_promise.set_value();
    }
  }

  void join_all() {
    for (auto& w : m_waiters) {
      if (w->thread.joinable()) {
        w->thread.join();
      }
    }
  }

  std::vector<int> order() {
    std::lock_guard<std::mutex> guard(m_mutex);
    return m_order;
  }

  long long queue_length() const {
    return as_integer(server.cli({"LLEN", k_queue}));
  }

  bool queue_length_is(long long n, Millis limit = 5000ms) const {
    return wait_until([&] { return queue_length() == n; }, limit);
  }

  // Every key under `pattern`, by SCAN.
  std::vector<std::string> scan(const std::string& pattern) const {
    std::vector<std::string> keys;
    std::string cursor = "0";
    do {
      std::string flat =
          server.cli({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      size_t start = 0;
      bool first = true;
      while (start <= flat.size()) {
        size_t end = flat.find('\n', start);
        if (end == std::string::npos) {
          end = flat.size();
        }
        std::string item = flat.substr(start, end - start);
        if (first) {
          cursor = item;
          first = false;
        } else if (!item.empty()) {
          keys.push_back(item);
        }
        start = end + 1;
      }
    } while (cursor != "0" && cursor.rfind("(", 0) != 0);
    return keys;
  }

  // A raw connection subscribed to `token`'s wake-up channel: the token
  // looks alive to the scripts.
  std::optional<redis::Connection> subscribe_as(const std::string& token) {
    auto c = redis::Connection::open(server.endpoint(), soon());
    EXPECT_TRUE(c) << c.error().message;
    if (!c) {
      return std::nullopt;
    }
    auto r = c->command({"SUBSCRIBE", wake_channel(token)}, soon());
    EXPECT_TRUE(r && r->type == redis::Reply::Type::array &&
                !r->elements.empty() && r->elements[0].str == "subscribe");
    return std::move(c.value());
  }

  std::unique_ptr<Backend> m_holder;
  std::vector<std::unique_ptr<Waiter>> m_waiters;
  std::promise<void> m_gate_promise;
  std::shared_future<void> m_gate;
  bool m_gate_open = false;
  std::mutex m_mutex;
  std::vector<int> m_order;
  std::atomic<int> m_acquired{0};
  Millis m_handover_max_age{0};  // given to every waiter started
};

TEST_F(FairQueueTest, WaitersAcquireInArrivalOrder) {
  ASSERT_TRUE(hold(30000ms));
  open_gate();
  constexpr int k_waiters = 6;
  for (int i = 0; i < k_waiters; ++i) {
    start_waiter(20ms);
    ASSERT_TRUE(queue_length_is(i + 1))
        << "waiter " << i << " not queued; LLEN " << queue_length();
  }
  ASSERT_TRUE(release_holder());
  join_all();
  std::vector<int> expected;
  for (int i = 0; i < k_waiters; ++i) {
    expected.push_back(i);
  }
  EXPECT_EQ(order(), expected);
  for (auto& w : m_waiters) {
    ASSERT_TRUE(w->result) << w->result.error().message;
    EXPECT_EQ(w->result->outcome, Outcome::acquired) << "waiter " << w->index;
    EXPECT_GE(w->result->wakeups, 1) << "waiter " << w->index;
  }
  EXPECT_EQ(queue_length(), 0);
}

TEST_F(FairQueueTest, ReleaseWakesOnlyTheHead) {
  ASSERT_TRUE(hold(30000ms));
  constexpr int k_waiters = 10;
  for (int i = 0; i < k_waiters; ++i) {
    start_waiter();
    ASSERT_TRUE(queue_length_is(i + 1))
        << "waiter " << i << " not queued; LLEN " << queue_length();
  }
  // Cache the release script so that the release is one EVALSHA (not a
  // NOSCRIPT EVALSHA and an EVAL).
  ASSERT_EQ(server.cli({"SCRIPT", "LOAD", backend::scripts::k_release_source}),
            backend::scripts::k_release_sha1);
  ASSERT_EQ(server.cli({"CONFIG", "RESETSTAT"}), "OK");
  ASSERT_TRUE(release_holder());
  ASSERT_TRUE(wait_until([&] { return m_acquired.load() >= 1; }, 5000ms));
  // Give woken waiters, if any, time to come back and try.
  std::this_thread::sleep_for(300ms);
  std::string info = server.cli({"INFO", "commandstats"});
  long long scripts = calls_of(info, "evalsha") + calls_of(info, "eval");
  // The release and the head's acquire; one more allowed.
  EXPECT_LE(scripts, 3) << info;
  EXPECT_GE(scripts, 2) << info;
  EXPECT_EQ(m_acquired.load(), 1);
  EXPECT_EQ(queue_length(), k_waiters - 1);
  EXPECT_EQ(server.cli({"GET", k_lock}), token(0));
  for (auto& w : m_waiters) {
    EXPECT_EQ(w->acquired.load(), w->index == 0) << "waiter " << w->index;
  }
  // Let the chain run to its end: still in order.
  open_gate();
  join_all();
  std::vector<int> expected;
  for (int i = 0; i < k_waiters; ++i) {
    expected.push_back(i);
  }
  EXPECT_EQ(order(), expected);
}

TEST_F(FairQueueTest, DeadWaiterAheadIsSkippedByTheRelease) {
  ASSERT_TRUE(hold(30000ms));
  open_gate();
  Waiter& w = start_waiter();
  ASSERT_TRUE(queue_length_is(1));
  // A waiter whose process died: lease key still there, nobody on its wake
  // channel. Put ahead of the real waiter after it queued, so that only
  // the release can skip it.
  const std::string dead = "deadtoken";
  ASSERT_EQ(server.cli({"LPUSH", k_queue, dead}), "(integer) 2");
  ASSERT_EQ(server.cli({"SET", waiter_key(dead), "1", "PX", "60000"}), "OK");
  ASSERT_EQ(server.cli({"PUBSUB", "NUMSUB", wake_channel(dead)}),
            wake_channel(dead) + "\n(integer) 0");
  auto released_at = Clock::now();
  ASSERT_TRUE(release_holder());
  ASSERT_TRUE(wait_until([&] { return w.acquired.load(); }, 3000ms))
      << "the real waiter was not woken past the dead one";
  EXPECT_LT(since(released_at), 3000ms);
  join_all();
  ASSERT_TRUE(w.result) << w.result.error().message;
  EXPECT_EQ(w.result->outcome, Outcome::acquired);
  EXPECT_GE(w.result->wakeups, 1);
  EXPECT_EQ(server.cli({"LPOS", k_queue, dead}), "(nil)");
  EXPECT_EQ(server.cli({"EXISTS", waiter_key(dead)}), "(integer) 0");
  EXPECT_EQ(queue_length(), 0);
}

TEST_F(FairQueueTest, VanishedWaiterAheadIsSkippedByTheRelease) {
  ASSERT_TRUE(hold(30000ms));
  open_gate();
  Waiter& w = start_waiter();
  ASSERT_TRUE(queue_length_is(1));
  // A waiter whose host vanished: its connection still looks subscribed,
  // but its lease key expired.
  const std::string gone = "faketoken";
  auto sub = subscribe_as(gone);
  ASSERT_TRUE(sub);
  ASSERT_EQ(server.cli({"LPUSH", k_queue, gone}), "(integer) 2");
  ASSERT_EQ(server.cli({"EXISTS", waiter_key(gone)}), "(integer) 0");
  auto released_at = Clock::now();
  ASSERT_TRUE(release_holder());
  ASSERT_TRUE(wait_until([&] { return w.acquired.load(); }, 3000ms))
      << "the real waiter was not woken past the vanished one";
  EXPECT_LT(since(released_at), 3000ms);
  join_all();
  ASSERT_TRUE(w.result) << w.result.error().message;
  EXPECT_EQ(w.result->outcome, Outcome::acquired);
  EXPECT_GE(w.result->wakeups, 1);
  EXPECT_EQ(server.cli({"LPOS", k_queue, gone}), "(nil)");
  EXPECT_EQ(queue_length(), 0);
  // It was skipped, not woken.
  auto msg = sub->read_reply(Deadline::after(200ms), /*idle_ok=*/true);
  EXPECT_FALSE(msg) << "the vanished waiter was sent a wake-up";
}

TEST_F(FairQueueTest, DeadOrVanishedHeadBlocksAFreeLockForTheGraceAtMost) {
  // Both left in the queue of a free lock: `dead` has a lease but no
  // subscriber (killed, or resubscribing: it keeps its place for the grace
  // only), `gone` has a subscriber but no lease (its host vanished).
  const std::string dead = "deadtoken";
  const std::string gone = "faketoken";
  auto sub = subscribe_as(gone);
  ASSERT_TRUE(sub);
  ASSERT_EQ(server.cli({"RPUSH", k_queue, dead, gone}), "(integer) 2");
  ASSERT_EQ(server.cli({"SET", waiter_key(dead), "1", "PX", "60000"}), "OK");
  auto b = open();
  ASSERT_NE(b, nullptr);
  AcquireRequest req;
  req.token = token(0);
  req.ttl = 5000ms;
  req.single_try = true;
  bool maybe_holding = true;
  auto r = acquire(*b, req, &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::timed_out);
  // Its place now lapses within the grace.
  auto left = std::stoll(server.cli({"PTTL", waiter_key(dead)}).substr(10));
  EXPECT_GT(left, 0);
  EXPECT_LE(left, backend::k_queue_grace.count());

  // A newcomer that waits gets the lock once the grace is over: it sleeps
  // exactly that long (no release will come), then drops both.
  req.single_try = false;
  req.wait = Deadline::after(10s);
  auto start = Clock::now();
  r = acquire(*b, req, &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::acquired);
  EXPECT_LT(since(start), 5000ms);
  EXPECT_EQ(server.cli({"GET", k_lock}), token(0));
  EXPECT_EQ(server.cli({"EXISTS", k_queue, waiter_key(dead)}), "(integer) 0");
}

TEST_F(FairQueueTest, AWaiterWhoseSubscriptionDroppedKeepsItsPlace) {
  // The head's subscription is gone for a moment (CLIENT KILL TYPE pubsub,
  // a reset connection): a newcomer must not take its place; once it has
  // resubscribed and tried again, it goes first.
  const std::string head = "headtoken";
  ASSERT_EQ(server.cli({"RPUSH", k_queue, head}), "(integer) 1");
  ASSERT_EQ(server.cli({"SET", waiter_key(head), "1", "PX", "60000"}), "OK");
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(token(1), 5000ms, backend::Backend::Mode::queue,
                      Deadline::after(5s));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, backend::Outcome::queued);
  ASSERT_TRUE(a->head_lapses.has_value());
  EXPECT_LE(*a->head_lapses, backend::k_queue_grace);
  // The head comes back: subscribed again, it renews its place and takes
  // the lock ahead of the newcomer queued behind it.
  auto sub = subscribe_as(head);
  ASSERT_TRUE(sub);
  auto h = b->acquire(head, 5000ms, backend::Backend::Mode::queue,
                      Deadline::after(5s));
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->state, backend::Outcome::acquired);
  EXPECT_EQ(server.cli({"LRANGE", k_queue, "0", "-1"}), token(1));
}

TEST_F(FairQueueTest, LiveHeadBlocksAFairNewcomerButNotARacer) {
  // The lock is free, but a live waiter (subscribed, lease fresh) is first
  // in line: it is about to take the lock.
  const std::string live = "livetoken";
  auto sub = subscribe_as(live);
  ASSERT_TRUE(sub);
  ASSERT_EQ(server.cli({"RPUSH", k_queue, live}), "(integer) 1");
  ASSERT_EQ(server.cli({"SET", waiter_key(live), "1", "PX", "60000"}), "OK");
  auto b = open();
  ASSERT_NE(b, nullptr);
  AcquireRequest req;
  req.token = token(0);
  req.ttl = 5000ms;
  req.single_try = true;
  bool maybe_holding = true;
  auto start = Clock::now();
  auto r = acquire(*b, req, &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::timed_out) << "jumped the queue";
  EXPECT_EQ(r->attempts, 1);
  EXPECT_LT(since(start), 1000ms);
  EXPECT_FALSE(maybe_holding);  // a first try never joins the queue
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
  EXPECT_EQ(server.cli({"LRANGE", k_queue, "0", "-1"}), live);

  // --no-fair ignores the queue.
  auto racer = open();
  ASSERT_NE(racer, nullptr);
  AcquireRequest race = req;
  race.token = token(1);
  race.fair = false;
  r = acquire(*racer, race, &maybe_holding);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::acquired);
  EXPECT_FALSE(maybe_holding);
  EXPECT_EQ(server.cli({"GET", k_lock}), token(1));
  EXPECT_EQ(server.cli({"LRANGE", k_queue, "0", "-1"}), live);
}

TEST_F(FairQueueTest, WaiterWhoseWaitRunsOutLeavesTheQueue) {
  ASSERT_TRUE(hold(30000ms));
  auto b = open();
  ASSERT_NE(b, nullptr);
  AcquireRequest req;
  req.token = token(0);
  req.ttl = 5000ms;
  req.wait = Deadline::after(300ms);
  bool maybe_holding = false;
  auto start = Clock::now();
  auto r = acquire(*b, req, &maybe_holding);
  auto took = since(start);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->outcome, Outcome::timed_out);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3000ms);
  // Still queued: a release by token is owed, as the app does.
  EXPECT_TRUE(maybe_holding);
  EXPECT_EQ(queue_length(), 1);
  auto released = b->release(req.token, soon());
  ASSERT_TRUE(released) << released.error().message;
  EXPECT_FALSE(*released);  // the lock was not ours
  EXPECT_EQ(queue_length(), 0);
  EXPECT_EQ(server.cli({"EXISTS", k_queue}), "(integer) 0");
  EXPECT_TRUE(scan(std::string(k_lock) + ":waiter:*").empty());
  EXPECT_EQ(server.cli({"GET", k_lock}), k_holder);
}

TEST_F(FairQueueTest, QueueKeysExpireAndAreGoneWhenIdle) {
  ASSERT_TRUE(hold(30000ms));
  open_gate();
  for (int i = 0; i < 3; ++i) {
    start_waiter(10ms);
    ASSERT_TRUE(queue_length_is(i + 1));
  }
  // While queued, nothing lives forever should every waiter vanish.
  long long queue_ttl = as_integer(server.cli({"PTTL", k_queue}));
  EXPECT_GT(queue_ttl, 0);
  EXPECT_LE(queue_ttl, backend::k_queue_lease.count());
  for (auto& w : m_waiters) {
    long long lease = as_integer(server.cli({"PTTL", waiter_key(w->token)}));
    EXPECT_GT(lease, 0) << "waiter " << w->index;
    EXPECT_LE(lease, backend::k_queue_lease.count()) << "waiter " << w->index;
  }
  ASSERT_TRUE(release_holder());
  join_all();
  for (auto& w : m_waiters) {
    ASSERT_TRUE(w->result) << w->result.error().message;
    EXPECT_EQ(w->result->outcome, Outcome::acquired);
  }
  std::vector<std::string> left = scan(std::string(k_lock) + "*");
  EXPECT_EQ(left, std::vector<std::string>{k_fence});
  EXPECT_GT(as_integer(server.cli({"PTTL", k_fence})), 0);
}

TEST_F(FairQueueTest, ReleaseHandsTheLockStraightToTheHead) {
  m_handover_max_age = 10000ms;
  ASSERT_TRUE(hold(30000ms));
  const std::string holder_fence = server.cli({"GET", k_fence});
  constexpr int k_waiters = 3;
  for (int i = 0; i < k_waiters; ++i) {
    start_waiter();
    ASSERT_TRUE(queue_length_is(i + 1));
  }
  ASSERT_EQ(server.cli({"SCRIPT", "LOAD", backend::scripts::k_release_source}),
            backend::scripts::k_release_sha1);
  ASSERT_EQ(server.cli({"CONFIG", "RESETSTAT"}), "OK");
  auto released_at = Clock::now();
  ASSERT_TRUE(release_holder());
  ASSERT_TRUE(wait_until([&] { return m_acquired.load() >= 1; }, 5000ms));
  std::this_thread::sleep_for(300ms);
  // The release was the only script: the head made no attempt of its own.
  std::string info = server.cli({"INFO", "commandstats"});
  EXPECT_EQ(calls_of(info, "evalsha") + calls_of(info, "eval"), 1) << info;
  EXPECT_EQ(m_acquired.load(), 1);
  Waiter& head = *m_waiters[0];
  ASSERT_TRUE(head.result) << head.result.error().message;
  EXPECT_EQ(head.result->outcome, Outcome::acquired);
  EXPECT_TRUE(head.result->handed_over);
  EXPECT_EQ(head.result->slot, 1u);
  // Its lease counts from its latest attempt, made before the release.
  EXPECT_LE(head.result->acquired_at, released_at);
  // The server's records match what the message said.
  const std::string holder_key = std::string(k_lock) + ":holder:" + head.token;
  EXPECT_EQ(server.cli({"GET", k_lock}), head.token);
  EXPECT_EQ(server.cli({"GET", k_fence}), std::to_string(head.result->fence));
  EXPECT_GT(head.result->fence, std::stoull(holder_fence));
  EXPECT_EQ(server.cli({"HGET", holder_key, "fence"}),
            std::to_string(head.result->fence));
  EXPECT_EQ(server.cli({"HGET", holder_key, "slot"}), "1");
  EXPECT_NE(server.cli({"HGET", holder_key, "since"}), "(nil)");
  long long ttl = as_integer(server.cli({"PTTL", k_lock}));
  EXPECT_GT(ttl, 9000);  // the waiter's own TTL (10 s)
  EXPECT_LE(ttl, 10000);
  EXPECT_LE(as_integer(server.cli({"PTTL", holder_key})), 10000);
  EXPECT_EQ(server.cli({"EXISTS", waiter_key(head.token)}), "(integer) 0");
  EXPECT_EQ(queue_length(), k_waiters - 1);
  // The rest follow in order, each handed over by the one before.
  open_gate();
  join_all();
  EXPECT_EQ(order(), (std::vector<int>{0, 1, 2}));
  for (auto& w : m_waiters) {
    ASSERT_TRUE(w->result) << w->result.error().message;
    EXPECT_TRUE(w->result->handed_over) << "waiter " << w->index;
  }
  EXPECT_EQ(queue_length(), 0);
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
}

TEST_F(FairQueueTest, AHandOverLongAfterTheLatestAttemptIsRenewedFirst) {
  // With no room to count the lease from an old attempt, the waiter makes
  // one more attempt, which finds the lock its own and renews it.
  m_handover_max_age = 0ms;
  ASSERT_TRUE(hold(30000ms));
  open_gate();
  Waiter& w = start_waiter();
  ASSERT_TRUE(queue_length_is(1));
  auto released_at = Clock::now();
  ASSERT_TRUE(release_holder());
  join_all();
  ASSERT_TRUE(w.result) << w.result.error().message;
  EXPECT_EQ(w.result->outcome, Outcome::acquired);
  EXPECT_FALSE(w.result->handed_over);
  EXPECT_EQ(w.result->attempts, 3);  // try, queue, renew
  EXPECT_GE(w.result->acquired_at, released_at);
  EXPECT_GT(w.result->fence, 0u);
}

// A hand-over whose message is read after a later attempt of the waiter
// answered (their replies travel on two connections) must not count: the
// lock may be somebody else's by then.
TEST_F(FairQueueTest, AStaleHandOverIsOnlyAWakeup) {
  ASSERT_TRUE(hold(30000ms));
  auto w = open();
  ASSERT_NE(w, nullptr);
  const std::string tok = token(7);
  auto watch = w->watch(tok, /*fair=*/true, soon());
  ASSERT_TRUE(watch) << watch.error().message;
  auto a = w->acquire(tok, 10000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a && a->state == Outcome::held);
  ASSERT_TRUE(release_holder());  // handed to tok; message not read yet
  EXPECT_EQ(server.cli({"GET", k_lock}), tok);
  // Somebody deletes the key and another takes the lock before the
  // waiter's next attempt, which finds it held.
  ASSERT_EQ(server.cli({"DEL", k_lock}), "(integer) 1");
  auto other = open();
  ASSERT_NE(other, nullptr);
  auto o = other->acquire(token(8), 10000ms, Backend::Mode::race, soon());
  ASSERT_TRUE(o && o->state == Outcome::acquired);
  a = w->acquire(tok, 10000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a && a->state == Outcome::held);
  auto woke = (*watch)->wait(Deadline::after(5s));
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_TRUE(woke->arrived);
  EXPECT_FALSE(woke->granted_fence) << "a stale hand-over was taken";
  (void)other->release(token(8), soon());
  (void)w->release(tok, soon());
}

// A message published on the master also reaches its replicas. A waiter
// subscribed on a replica (one with a stale view: a failover it has not
// heard of yet) must never hear 'granted' from a release that, finding no
// subscriber on the master, did not hand the lock over: it would run its
// command without the lock. It is only woken.
TEST_F(FairQueueTest, NoGrantIsAnnouncedWithoutTheHandOver) {
  test::RedisServer replica(
      {"--replicaof", "127.0.0.1", std::to_string(server.port())});
  ASSERT_TRUE(replica.ok());
  ASSERT_TRUE(wait_until(
      [&] {
        return replica.cli({"INFO", "replication"})
                   .find("master_link_status:up") != std::string::npos;
      },
      10000ms));
  ASSERT_TRUE(hold(30000ms));
  auto w = open();
  ASSERT_NE(w, nullptr);
  const std::string tok = token(7);
  auto sub = redis::Connection::open(replica.endpoint(), soon());
  ASSERT_TRUE(sub) << sub.error().message;
  auto confirmed = sub->command({"SUBSCRIBE", wake_channel(tok)}, soon());
  ASSERT_TRUE(confirmed && !confirmed->is_error());
  auto a = w->acquire(tok, 10000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a && a->state == Outcome::held);
  ASSERT_TRUE(release_holder());
  // Not handed over: the waiter has no subscriber on the master.
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
  std::vector<std::string> heard;
  for (;;) {
    auto m = sub->read_reply(Deadline::after(2s), /*idle_ok=*/true);
    if (!m) {
      break;
    }
    ASSERT_EQ(m->elements.size(), 3u);
    heard.push_back(m->elements[2].str);
  }
  // The wake-up reached the replica; no grant did.
  EXPECT_EQ(heard, std::vector<std::string>{"1"});
  (void)w->release(tok, soon());
}

TEST_F(FairQueueTest, ASharedWaiterIsWokenNotHandedTheExclusiveLock) {
  ASSERT_TRUE(hold(30000ms));
  auto reader = open(/*shared=*/true);
  ASSERT_NE(reader, nullptr);
  const std::string tok = token(9);
  auto watch = reader->watch(tok, /*fair=*/true, soon());
  ASSERT_TRUE(watch) << watch.error().message;
  auto a = reader->acquire(tok, 10000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a && a->state == Outcome::held);
  ASSERT_TRUE(release_holder());
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
  auto woke = (*watch)->wait(Deadline::after(5s));
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_TRUE(woke->arrived);
  EXPECT_FALSE(woke->granted_fence);
  a = reader->acquire(tok, 10000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, Outcome::acquired);
  EXPECT_EQ(a->slot, 0u);  // a shared hold
  (void)reader->release(tok, soon());
}

TEST_F(FairQueueTest, AnOlderWaitersStringLeaseIsWokenNotHandedTo) {
  // A waiter of an older godislock keeps a string lease: it cannot be
  // handed the lock (no TTL known), so the release frees it and wakes it.
  ASSERT_TRUE(hold(30000ms));
  const std::string old_waiter = "oldtoken";
  auto sub = subscribe_as(old_waiter);
  ASSERT_TRUE(sub);
  ASSERT_EQ(server.cli({"RPUSH", k_queue, old_waiter}), "(integer) 1");
  ASSERT_EQ(server.cli({"SET", waiter_key(old_waiter), "1", "PX", "60000"}),
            "OK");
  ASSERT_TRUE(release_holder());
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
  auto msg = sub->read_reply(Deadline::after(2s), /*idle_ok=*/true);
  ASSERT_TRUE(msg) << msg.error().message;
  ASSERT_EQ(msg->elements.size(), 3u);
  EXPECT_EQ(msg->elements[2].str, "1");
  EXPECT_EQ(queue_length(), 1);  // still first, until it comes back
}

}  // namespace
}  // namespace godislock::lock
