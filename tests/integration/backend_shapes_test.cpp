// SPDX-License-Identifier: MIT
// Counted locks (--limit N), shared holders (--shared) and the holder record,
// against a real redis-server: places, fences and slots per holder, refresh
// and release per holder, expiry of one holder, shape mismatches, and what a
// blocked attempt learns about who is in the way.
#include "backend/redis_backend.hpp"

#include "support/backend_fixture.hpp"
#include "support/time.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>

namespace godislock::backend {
namespace {

using namespace std::chrono_literals;
using test::as_integer;
using test::soon;
using test::wait_until;
using util::Deadline;
using Mode = Backend::Mode;
using State = backend::Outcome;

constexpr char k_lock[] = "t:{job}";

std::string token(char c) { return std::string(32, c); }

class ShapesTest : public test::BackendTest {
 protected:
  std::unique_ptr<Backend> open(unsigned limit, bool shared,
                                const std::string& host = "h") const {
    Settings s = settings();
    s.limit = limit;
    s.shared = shared;
    s.holder = Holder{host, "42", "u", "cmd " + host};
    return BackendTest::open(s);
  }

  Attempt take(Backend& b, char t, std::chrono::milliseconds ttl = 5000ms,
               Mode mode = Mode::try_) {
    auto a = b.acquire(token(t), ttl, mode, soon());
    EXPECT_TRUE(a) << a.error().message;
    return a ? *a : Attempt{};
  }

  long long pttl(const std::string& key) const {
    return as_integer(server.cli({"PTTL", key}));
  }

  // Waits until `key` has expired (EXISTS makes Redis expire it on access).
  bool expired(const std::string& key) const {
    return wait_until(
        [&] {
          return server.cli({"EXISTS", key}) == "(integer) 0";
        },
        5000ms);
  }
};

TEST_F(ShapesTest, CountedLockGivesEachHolderItsOwnSlotAndFence) {
  auto b = open(3, false);
  ASSERT_NE(b, nullptr);
  std::set<unsigned> slots;
  std::set<uint64_t> fences;
  for (char t : {'a', 'b', 'c'}) {
    auto a = take(*b, t);
    ASSERT_EQ(a.state, State::acquired) << t;
    slots.insert(a.slot);
    fences.insert(a.fence);
  }
  EXPECT_EQ(slots, (std::set<unsigned>{1, 2, 3}));
  EXPECT_EQ(fences.size(), 3u);
  EXPECT_EQ(server.cli({"GET", k_lock}), token('a'));
  EXPECT_EQ(server.cli({"GET", std::string(k_lock) + ":slot:3"}), token('c'));
  EXPECT_EQ(server.cli({"GET", std::string(k_lock) + ":limit"}), "3");

  // Full: the fourth learns how long until a place may free up, and who
  // holds one of them.
  auto full = take(*b, 'd');
  EXPECT_EQ(full.state, State::held);
  EXPECT_GT(full.holder_ttl.count(), 0);
  EXPECT_LE(full.holder_ttl.count(), 5000);
  EXPECT_EQ(full.holders, 3u);
  EXPECT_EQ(full.holder_host, "h");
  EXPECT_EQ(full.holder_pid, "42");
  EXPECT_EQ(full.holder_cmd, "cmd h");

  // Releasing slot 2 lets the fourth in, on slot 2.
  auto r = b->release(token('b'), soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  auto d = take(*b, 'd');
  ASSERT_EQ(d.state, State::acquired);
  EXPECT_EQ(d.slot, 2u);
  EXPECT_GT(d.fence, *fences.rbegin());
}

TEST_F(ShapesTest, RetryAfterALostReplyGetsTheSameSlotAndFence) {
  auto b = open(3, false);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(take(*b, 'a').state, State::acquired);
  auto first = take(*b, 'b');
  ASSERT_EQ(first.state, State::acquired);
  ASSERT_EQ(take(*b, 'c').state, State::acquired);
  auto again = take(*b, 'b');
  ASSERT_EQ(again.state, State::acquired);
  EXPECT_EQ(again.slot, first.slot);
  EXPECT_EQ(again.fence, first.fence);
}

TEST_F(ShapesTest, RefreshAndReleaseTouchOnlyTheirOwnSlot) {
  auto b = open(2, false);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(take(*b, 'a', 300ms).state, State::acquired);
  ASSERT_EQ(take(*b, 'b', 300ms).state, State::acquired);
  auto ok = b->refresh(token('b'), 5000ms, soon());
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(*ok);
  EXPECT_GT(pttl(std::string(k_lock) + ":slot:2"), 1000);
  EXPECT_LE(pttl(k_lock), 300);
  // The limit key lives as long as the longest hold.
  EXPECT_GT(pttl(std::string(k_lock) + ":limit"), 1000);

  // Slot 1 expires on its own: its holder's refresh then fails, the other
  // holder is untouched.
  ASSERT_TRUE(expired(k_lock));
  auto lost = b->refresh(token('a'), 5000ms, soon());
  ASSERT_TRUE(lost) << lost.error().message;
  EXPECT_FALSE(*lost);
  auto gone = b->release(token('a'), soon());
  ASSERT_TRUE(gone);
  EXPECT_FALSE(*gone);
  EXPECT_EQ(server.cli({"GET", std::string(k_lock) + ":slot:2"}), token('b'));

  // The last holder leaving frees the lock's shape too.
  auto r = b->release(token('b'), soon());
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
  EXPECT_EQ(server.cli({"EXISTS", std::string(k_lock) + ":limit"}),
            "(integer) 0");
  EXPECT_EQ(server.cli({"EXISTS", std::string(k_lock) + ":slot:2"}),
            "(integer) 0");
}

TEST_F(ShapesTest, SharedHoldersOverlapButNeverAnExclusiveOne) {
  auto shared = open(1, true);
  auto exclusive = open(1, false);
  ASSERT_NE(shared, nullptr);
  ASSERT_NE(exclusive, nullptr);
  auto r1 = take(*shared, 'a', 2000ms);
  auto r2 = take(*shared, 'b', 4000ms);
  ASSERT_EQ(r1.state, State::acquired);
  ASSERT_EQ(r2.state, State::acquired);
  EXPECT_EQ(r1.slot, 0u);
  EXPECT_GT(r2.fence, r1.fence);

  // The exclusive one waits for the last shared lease to run out.
  auto w = take(*exclusive, 'w');
  EXPECT_EQ(w.state, State::held);
  EXPECT_GT(w.holder_ttl.count(), 2000);
  EXPECT_LE(w.holder_ttl.count(), 4000);
  EXPECT_EQ(w.holders, 2u);

  ASSERT_TRUE(shared->release(token('a'), soon()).ok());
  EXPECT_EQ(take(*exclusive, 'w').state, State::held);
  auto r = shared->release(token('b'), soon());
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
  EXPECT_EQ(server.cli({"EXISTS", std::string(k_lock) + ":readers"}),
            "(integer) 0");
  ASSERT_EQ(take(*exclusive, 'w').state, State::acquired);

  // And a shared one waits for the exclusive holder.
  auto s = take(*shared, 'c');
  EXPECT_EQ(s.state, State::held);
  EXPECT_EQ(s.holders, 1u);
  ASSERT_TRUE(exclusive->release(token('w'), soon()).ok());
  EXPECT_EQ(take(*shared, 'c').state, State::acquired);
}

TEST_F(ShapesTest, AnExpiredSharedHoldIsLostAndNoLongerBlocks) {
  auto shared = open(1, true);
  auto exclusive = open(1, false);
  ASSERT_NE(shared, nullptr);
  ASSERT_NE(exclusive, nullptr);
  ASSERT_EQ(take(*shared, 'a', 200ms).state, State::acquired);
  auto ok = shared->refresh(token('a'), 200ms, soon());
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
  ASSERT_TRUE(expired(std::string(k_lock) + ":readers"));
  auto lost = shared->refresh(token('a'), 5000ms, soon());
  ASSERT_TRUE(lost);
  EXPECT_FALSE(*lost);
  EXPECT_EQ(take(*exclusive, 'w').state, State::acquired);
}

TEST_F(ShapesTest, AWriterQueuedBehindReadersIsNotOvertakenByNewReaders) {
  auto shared = open(1, true);
  auto exclusive = open(1, false);
  ASSERT_NE(shared, nullptr);
  ASSERT_NE(exclusive, nullptr);
  ASSERT_EQ(take(*shared, 'a').state, State::acquired);
  // The writer joins the queue (its wake channel must have a subscriber
  // for it to count as alive).
  auto watch = exclusive->watch(token('w'), true, soon());
  ASSERT_TRUE(watch) << watch.error().message;
  EXPECT_EQ(take(*exclusive, 'w', 5000ms, Mode::queue).state, State::held);
  // A newcomer reader may not overtake it.
  EXPECT_NE(take(*shared, 'b', 5000ms, Mode::try_).state, State::acquired);
  ASSERT_TRUE(shared->release(token('a'), soon()).ok());
  EXPECT_EQ(take(*exclusive, 'w', 5000ms, Mode::queue).state, State::acquired);
}

TEST_F(ShapesTest, UsersMustAgreeOnTheShape) {
  auto counted = open(3, false);
  ASSERT_NE(counted, nullptr);
  ASSERT_EQ(take(*counted, 'a').state, State::acquired);
  for (auto [limit, shared] :
       {std::pair{1u, false}, std::pair{2u, false}, std::pair{1u, true}}) {
    auto other = open(limit, shared);
    ASSERT_NE(other, nullptr);
    auto a = take(*other, 'x');
    EXPECT_EQ(a.state, State::mismatch) << limit << shared;
    EXPECT_EQ(a.detail, "limit:3");
  }
  ASSERT_TRUE(counted->release(token('a'), soon()).ok());

  auto exclusive = open(1, false);
  ASSERT_EQ(take(*exclusive, 'e').state, State::acquired);
  auto c = take(*counted, 'x');
  EXPECT_EQ(c.state, State::mismatch);
  EXPECT_EQ(c.detail, "exclusive");
  ASSERT_TRUE(exclusive->release(token('e'), soon()).ok());

  auto shared = open(1, true);
  ASSERT_EQ(take(*shared, 's').state, State::acquired);
  auto d = take(*counted, 'x');
  EXPECT_EQ(d.state, State::mismatch);
  EXPECT_EQ(d.detail, "shared");
  // Nothing of the holders was touched.
  EXPECT_EQ(server.cli({"ZCARD", std::string(k_lock) + ":readers"}),
            "(integer) 1");
}

TEST_F(ShapesTest, TheHolderRecordLivesAndDiesWithTheHold) {
  auto b = open(1, false, "web-1");
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(take(*b, 'a', 3000ms).state, State::acquired);
  std::string rec = std::string(k_lock) + ":holder:" + token('a');
  EXPECT_EQ(server.cli({"HGET", rec, "host"}), "web-1");
  EXPECT_EQ(server.cli({"HGET", rec, "cmd"}), "cmd web-1");
  EXPECT_EQ(server.cli({"HGET", rec, "slot"}), "1");
  EXPECT_GT(pttl(rec), 0);
  EXPECT_LE(pttl(rec), 3000);
  ASSERT_TRUE(b->refresh(token('a'), 9000ms, soon()).ok());
  EXPECT_GT(pttl(rec), 3000);
  ASSERT_TRUE(b->release(token('a'), soon()).ok());
  EXPECT_EQ(server.cli({"EXISTS", rec}), "(integer) 0");
}

}  // namespace
}  // namespace godislock::backend
