// SPDX-License-Identifier: MIT
// Keys of a lock's layout that hold a type godislock never gives them, made
// foreign one at a time, against a real redis-server: acquire, refresh,
// release, status and break_lock (release --force) report the key and its
// type, and the script writes nothing (every key under the prefix keeps its
// type, value and TTL). Also: a newcomer does not overtake a live waiter
// queued behind more dead waiters than one attempt drops.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/redis_backend.hpp"
#include "support/backend_fixture.hpp"
#include "support/redis_server.hpp"
#include "support/time.hpp"

namespace godislock::backend {
namespace {

using namespace std::chrono_literals;
using test::soon;
using util::ErrorKind;
using Mode = Backend::Mode;

constexpr char k_lock[] = "t:{job}";
constexpr char k_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char k_b[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

std::string key(const std::string& suffix) {
  return std::string(k_lock) + suffix;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

// One key as a script could have changed it.
struct KeyState {
  std::string type;
  std::string value;  // sorted where the order is the server's own
  long long pttl = 0;
};

class ForeignKeysTest : public test::BackendTest {
 protected:
  std::unique_ptr<Backend> open(unsigned limit = 1, bool shared = false) {
    Settings s = settings();
    s.limit = limit;
    s.shared = shared;
    s.holder = Holder{"host", "42", "user", "cmd"};
    return BackendTest::open(s);
  }

  // Every key of the test server with its type, value and TTL.
  std::map<std::string, KeyState> snapshot() const {
    std::map<std::string, KeyState> out;
    for (const auto& k : lines(server.cli({"KEYS", "*"}))) {
      KeyState st;
      st.type = server.cli({"TYPE", k});
      std::vector<std::string> v;
      if (st.type == "string") {
        v = {server.cli({"GET", k})};
      } else if (st.type == "list") {
        v = lines(server.cli({"LRANGE", k, "0", "-1"}));
      } else if (st.type == "hash") {
        v = lines(server.cli({"HGETALL", k}));
      } else if (st.type == "zset") {
        v = lines(server.cli({"ZRANGE", k, "0", "-1", "WITHSCORES"}));
      } else if (st.type == "set") {
        v = lines(server.cli({"SMEMBERS", k}));
        std::sort(v.begin(), v.end());
      }
      for (const auto& s : v) {
        st.value += s + "\n";
      }
      st.pttl = std::stoll(server.cli({"PTTL", k}).substr(10));
      out[k] = st;
    }
    return out;
  }

  // Nothing was written between `before` and now: the same keys with the
  // same types and values, and no TTL set or extended (a TTL only runs
  // down by itself).
  void expect_unchanged(const std::map<std::string, KeyState>& before) const {
    auto after = snapshot();
    std::vector<std::string> names_before, names_after;
    for (const auto& [k, _] : before) {
      names_before.push_back(k);
    }
    for (const auto& [k, _] : after) {
      names_after.push_back(k);
    }
    ASSERT_EQ(names_before, names_after);
    for (const auto& [k, b] : before) {
      const KeyState& a = after.at(k);
      EXPECT_EQ(a.type, b.type) << k;
      EXPECT_EQ(a.value, b.value) << k;
      if (b.pttl == -1) {
        EXPECT_EQ(a.pttl, -1) << k;
      } else {
        EXPECT_LE(a.pttl, b.pttl) << k;
        EXPECT_NE(a.pttl, -1) << k;
      }
    }
  }

  // Makes `k` a foreign key of type `type` (without a TTL, except where
  // the layout wants one there: then `px`).
  void make_foreign(const std::string& k, const std::string& type,
                    const char* px = nullptr) {
    server.cli({"DEL", k});
    if (type == "list") {
      ASSERT_EQ(server.cli({"RPUSH", k, "x"}), "(integer) 1");
    } else if (type == "hash") {
      ASSERT_EQ(server.cli({"HSET", k, "f", "v"}), "(integer) 1");
    } else if (type == "string") {
      ASSERT_EQ(server.cli({"SET", k, "x"}), "OK");
    } else {
      FAIL() << type;
    }
    if (px != nullptr) {
      ASSERT_EQ(server.cli({"PEXPIRE", k, px}), "(integer) 1");
    }
  }

  static void expect_foreign(const util::Result<bool>& r, const std::string& k,
                             const std::string& type) {
    ASSERT_FALSE(r) << "no error: " << r.value();
    EXPECT_EQ(r.error().kind, ErrorKind::foreign) << r.error().message;
    EXPECT_EQ(r.error().message,
              "key '" + k + "' holds a " + type + ", not a lock");
  }

  static void expect_wrong_type(const util::Result<Attempt>& a,
                                const std::string& k, const std::string& type) {
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a.value().state, Outcome::wrong_type);
    EXPECT_EQ(a.value().detail_key, k);
    EXPECT_EQ(a.value().detail, type);
  }

  static void expect_foreign_status(const util::Result<LockStatus>& st,
                                    const std::string& k,
                                    const std::string& type) {
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(st.value().kind, LockStatus::Kind::foreign);
    EXPECT_EQ(st.value().foreign_key, k);
    EXPECT_EQ(st.value().foreign_detail, type);
  }

  // Holds the exclusive lock with `token` on a backend of its own.
  std::unique_ptr<Backend> hold(const std::string& token, unsigned limit = 1,
                                bool shared = false) {
    auto b = open(limit, shared);
    if (b == nullptr) {
      return nullptr;
    }
    auto a = b->acquire(token, 30000ms, Mode::queue, soon());
    EXPECT_TRUE(a && a->state == Outcome::acquired);
    return b;
  }
};

// --- acquire ---

TEST_F(ForeignKeysTest, AcquireOfAFreeLockWithAForeignKey) {
  // Each key the acquisition of a free lock reads or writes, in turn, in
  // the modes that read or write it (the queue and our lease are left to
  // fair waiters).
  struct Case {
    std::string key, type;
    std::vector<Mode> modes;
  };
  const std::vector<Mode> all = {Mode::race, Mode::try_, Mode::queue};
  for (const Case& c :
       {Case{key(""), "list", all}, Case{key(":fence"), "list", all},
        Case{key(":fence"), "hash", all},
        Case{key(":holder:") + k_a, "list", all},
        Case{key(":holder:") + k_a, "string", all},
        Case{key(":waiter:") + k_a, "list", {Mode::queue}},
        Case{key(":queue"), "string", {Mode::try_, Mode::queue}},
        Case{key(":limit"), "hash", all},
        Case{key(":readers"), "string", all}}) {
    SCOPED_TRACE(c.key + " as a " + c.type);
    server.cli({"FLUSHALL"});
    make_foreign(c.key, c.type);
    auto before = snapshot();
    for (Mode mode : c.modes) {
      auto b = open();
      ASSERT_NE(b, nullptr);
      expect_wrong_type(b->acquire(k_a, 5000ms, mode, soon()), c.key, c.type);
      expect_unchanged(before);
    }
  }
}

TEST_F(ForeignKeysTest, AcquireOfAHeldLockWithAForeignHolderRecord) {
  // The holder's record is read to tell the waiter who is in the way.
  auto holder = hold(k_b);
  ASSERT_NE(holder, nullptr);
  make_foreign(key(":holder:") + k_b, "list", "30000");
  auto before = snapshot();
  for (Mode mode : {Mode::race, Mode::try_, Mode::queue}) {
    auto b = open();
    ASSERT_NE(b, nullptr);
    expect_wrong_type(b->acquire(k_a, 5000ms, mode, soon()),
                      key(":holder:") + k_b, "list");
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, QueueingWithAForeignLease) {
  // Our own lease is written when we join the queue of a held lock.
  auto holder = hold(k_b);
  ASSERT_NE(holder, nullptr);
  make_foreign(key(":waiter:") + k_a, "list", "30000");
  auto before = snapshot();
  auto b = open();
  ASSERT_NE(b, nullptr);
  expect_wrong_type(b->acquire(k_a, 5000ms, Mode::queue, soon()),
                    key(":waiter:") + k_a, "list");
  expect_unchanged(before);
}

TEST_F(ForeignKeysTest, AcquireBehindAForeignLeaseThatWouldBeShortened) {
  // A queued waiter without a subscriber keeps its place for the grace
  // only: its lease would be shortened, but it is not a lease.
  ASSERT_EQ(server.cli({"RPUSH", key(":queue"), k_b}), "(integer) 1");
  ASSERT_EQ(server.cli({"PEXPIRE", key(":queue"), "60000"}), "(integer) 1");
  make_foreign(key(":waiter:") + k_b, "list", "60000");
  auto before = snapshot();
  for (Mode mode : {Mode::try_, Mode::queue}) {
    auto b = open();
    ASSERT_NE(b, nullptr);
    expect_wrong_type(b->acquire(k_a, 5000ms, mode, soon()),
                      key(":waiter:") + k_b, "list");
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, AcquireOfACountedLockWithAForeignKey) {
  struct Case {
    std::string key, type;
  };
  for (const Case& c :
       {Case{key(":slot:2"), "hash"}, Case{key(":slot:3"), "list"},
        Case{key(":limit"), "list"}, Case{key(":fence"), "list"},
        Case{key(":holder:") + k_a, "string"}}) {
    SCOPED_TRACE(c.key + " as a " + c.type);
    server.cli({"FLUSHALL"});
    // Slot 1 held by somebody else, so that every slot is looked at.
    auto other = hold(k_b, 3);
    ASSERT_NE(other, nullptr);
    make_foreign(c.key, c.type, "30000");
    auto before = snapshot();
    auto b = open(3);
    ASSERT_NE(b, nullptr);
    expect_wrong_type(b->acquire(k_a, 5000ms, Mode::race, soon()), c.key,
                      c.type);
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, SharedAcquireWithAForeignKey) {
  for (const std::string& k :
       {key(":readers"), key(":fence"), key(":holder:") + k_a}) {
    SCOPED_TRACE(k);
    server.cli({"FLUSHALL"});
    auto other = hold(k_b, 1, true);
    ASSERT_NE(other, nullptr);
    make_foreign(k, "list", "30000");
    auto before = snapshot();
    auto b = open(1, true);
    ASSERT_NE(b, nullptr);
    expect_wrong_type(b->acquire(k_a, 5000ms, Mode::race, soon()), k, "list");
    expect_unchanged(before);
  }
}

// --- refresh ---

TEST_F(ForeignKeysTest, RefreshWithAForeignKeyBesideTheHold) {
  // The hold is there, but extending it would touch a foreign key.
  struct Case {
    unsigned limit;
    bool shared;
    std::string key;
  };
  for (const Case& c :
       {Case{1, false, key(":fence")}, Case{1, false, key(":holder:") + k_a},
        Case{3, false, key(":limit")}, Case{1, true, key(":fence")},
        Case{1, true, key(":holder:") + k_a}}) {
    SCOPED_TRACE(c.key + (c.shared ? " shared" : "") + " limit " +
                 std::to_string(c.limit));
    server.cli({"FLUSHALL"});
    auto b = hold(k_a, c.limit, c.shared);
    ASSERT_NE(b, nullptr);
    make_foreign(c.key, "list", "30000");
    auto before = snapshot();
    expect_foreign(b->refresh(k_a, 60000ms, soon()), c.key, "list");
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, RefreshWhereTheHoldsKeyIsForeign) {
  // The key that held our token holds another type: the hold is lost, and
  // the key is left alone.
  for (bool shared : {false, true}) {
    SCOPED_TRACE(shared ? "shared" : "exclusive");
    server.cli({"FLUSHALL"});
    auto b = hold(k_a, 1, shared);
    ASSERT_NE(b, nullptr);
    make_foreign(shared ? key(":readers") : key(""), "list", "30000");
    auto before = snapshot();
    auto r = b->refresh(k_a, 60000ms, soon());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(*r);
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, RefreshLeavesAForeignSlotOfAnotherHolderAlone) {
  auto other = hold(k_b, 3);
  ASSERT_NE(other, nullptr);
  auto b = hold(k_a, 3);  // slot 2
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(server.cli({"GET", key(":slot:2")}), k_a);
  make_foreign(key(""), "hash", "30000");  // slot 1
  auto before = snapshot().at(key(""));
  auto r = b->refresh(k_a, 60000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  auto after = snapshot().at(key(""));
  EXPECT_EQ(after.type, "hash");
  EXPECT_EQ(after.value, before.value);
  EXPECT_LE(after.pttl, before.pttl);
}

// --- release ---

TEST_F(ForeignKeysTest, ReleaseOfOurHoldWithAForeignKey) {
  struct Case {
    std::string key, type;
  };
  for (const Case& c :
       {Case{key(":holder:") + k_a, "list"},
        Case{key(":holder:") + k_a, "string"}, Case{key(":queue"), "string"}}) {
    SCOPED_TRACE(c.key + " as a " + c.type);
    server.cli({"FLUSHALL"});
    auto b = hold(k_a);
    ASSERT_NE(b, nullptr);
    make_foreign(c.key, c.type, "30000");
    auto before = snapshot();
    expect_foreign(b->release(k_a, soon()), c.key, c.type);
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, ReleaseOfAQueueWithAForeignKey) {
  // A subscribed waiter for the exclusive lock is queued: the release
  // would hand the lock over to it.
  struct Case {
    std::string key, type;
  };
  for (const Case& c :
       {Case{key(":fence"), "list"}, Case{key(":holder:") + k_b, "list"},
        Case{key(":waiter:") + k_b, "list"}}) {
    SCOPED_TRACE(c.key + " as a " + c.type);
    server.cli({"FLUSHALL"});
    auto b = hold(k_a);
    ASSERT_NE(b, nullptr);
    auto waiter = open();
    ASSERT_NE(waiter, nullptr);
    auto watch = waiter->watch(k_b, true, soon());
    ASSERT_TRUE(watch) << watch.error().message;
    auto queued = waiter->acquire(k_b, 5000ms, Mode::queue, soon());
    ASSERT_TRUE(queued && queued->state == Outcome::held);
    make_foreign(c.key, c.type, "30000");
    auto before = snapshot();
    expect_foreign(b->release(k_a, soon()), c.key, c.type);
    expect_unchanged(before);
    // The waiter was not told it holds the lock.
    auto woke = (*watch)->wait(util::Deadline::after(0ms));
    ASSERT_TRUE(woke) << woke.error().message;
    EXPECT_FALSE(woke->granted_fence);
  }
}

TEST_F(ForeignKeysTest, ReleaseOfACountedOrSharedHoldWithAForeignKey) {
  {
    auto b = hold(k_a, 2);
    ASSERT_NE(b, nullptr);
    make_foreign(key(":limit"), "list", "30000");
    auto before = snapshot();
    expect_foreign(b->release(k_a, soon()), key(":limit"), "list");
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, ReleaseWhereTheHoldsKeyIsForeign) {
  // The key that held our token holds another type: nothing of ours is
  // there to release (0), and nothing at all is written.
  for (bool shared : {false, true}) {
    SCOPED_TRACE(shared ? "shared" : "exclusive");
    server.cli({"FLUSHALL"});
    auto b = hold(k_a, 1, shared);
    ASSERT_NE(b, nullptr);
    make_foreign(shared ? key(":readers") : key(""), "hash", "30000");
    auto before = snapshot();
    auto r = b->release(k_a, soon());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(*r);
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, GivingUpWithAForeignLeaseOrQueue) {
  // A waiter that gives up drops its lease and leaves the queue.
  for (const std::string& k : {key(":waiter:") + k_a, key(":queue")}) {
    SCOPED_TRACE(k);
    server.cli({"FLUSHALL"});
    auto holder = hold(k_b);
    ASSERT_NE(holder, nullptr);
    auto b = open();
    ASSERT_NE(b, nullptr);
    auto queued = b->acquire(k_a, 5000ms, Mode::queue, soon());
    ASSERT_TRUE(queued && queued->state == Outcome::held);
    make_foreign(k, k == key(":queue") ? "string" : "list", "30000");
    auto before = snapshot();
    expect_foreign(b->release(k_a, soon()), k,
                   k == key(":queue") ? "string" : "list");
    expect_unchanged(before);
  }
}

// --- status and break_lock ---

TEST_F(ForeignKeysTest, StatusAndBreakWithAForeignKey) {
  struct Case {
    std::string key, type;
  };
  for (const Case& c :
       {Case{key(":fence"), "list"}, Case{key(":queue"), "string"},
        Case{key(":holder:") + k_a, "list"}, Case{key(":limit"), "hash"},
        Case{key(""), "list"}}) {
    SCOPED_TRACE(c.key + " as a " + c.type);
    server.cli({"FLUSHALL"});
    auto b = hold(k_a);
    ASSERT_NE(b, nullptr);
    make_foreign(c.key, c.type, "30000");
    auto before = snapshot();
    expect_foreign_status(b->status("job", soon()), c.key, c.type);
    expect_unchanged(before);
    expect_foreign_status(b->break_lock(soon()), c.key, c.type);
    expect_unchanged(before);
  }
}

TEST_F(ForeignKeysTest, BreakingACountedLockWithAForeignHolderRecord) {
  // The second holder's record is foreign: the first hold must not be
  // broken before it is found.
  auto one = hold(k_a, 2);
  ASSERT_NE(one, nullptr);
  auto two = hold(k_b, 2);
  ASSERT_NE(two, nullptr);
  make_foreign(key(":holder:") + k_b, "string", "30000");
  auto before = snapshot();
  expect_foreign_status(one->break_lock(soon()), key(":holder:") + k_b,
                        "string");
  expect_unchanged(before);
}

TEST_F(ForeignKeysTest, BreakingWithAForeignLeaseInTheQueue) {
  // Breaking wakes the queue; a waiter without a subscriber would have its
  // lease shortened, but it is not a lease.
  auto b = hold(k_a);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(server.cli({"RPUSH", key(":queue"), k_b}), "(integer) 1");
  ASSERT_EQ(server.cli({"PEXPIRE", key(":queue"), "60000"}), "(integer) 1");
  make_foreign(key(":waiter:") + k_b, "list", "60000");
  auto before = snapshot();
  expect_foreign_status(b->break_lock(soon()), key(":waiter:") + k_b, "list");
  expect_unchanged(before);
}

// --- the queue's dead heads ---

TEST_F(ForeignKeysTest, NoQueueJumpingPastTheDeadWaitersCap) {
  // More dead waiters at the head (their leases gone) than one attempt
  // drops, then a live, subscribed waiter: a newcomer must not get the
  // free lock ahead of it, however often it tries.
  std::vector<std::string> argv = {"RPUSH", key(":queue")};
  for (int i = 0; i < 150; ++i) {
    argv.push_back("dead" + std::to_string(i));
  }
  argv.push_back(k_b);
  ASSERT_EQ(server.cli(argv), "(integer) 151");
  // The live waiter: a lease as its own attempt writes it, and subscribed.
  ASSERT_EQ(server.cli({"HSET", key(":waiter:") + k_b, "ttl", "5000", "seq",
                        "1", "excl", "1"}),
            "(integer) 3");
  ASSERT_EQ(server.cli({"PEXPIRE", key(":waiter:") + k_b, "60000"}),
            "(integer) 1");
  auto live = open();
  ASSERT_NE(live, nullptr);
  auto watch = live->watch(k_b, true, soon());
  ASSERT_TRUE(watch) << watch.error().message;
  auto newcomer = open();
  ASSERT_NE(newcomer, nullptr);
  for (Mode mode : {Mode::try_, Mode::queue, Mode::queue}) {
    auto a = newcomer->acquire(k_a, 5000ms, mode, soon());
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->state, Outcome::queued);
    EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
  }
  // The dead ones are gone now and the live waiter is first: it gets it.
  EXPECT_EQ(server.cli({"LINDEX", key(":queue"), "0"}), k_b);
  auto got = live->acquire(k_b, 5000ms, Mode::queue, soon());
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->state, Outcome::acquired);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_b);
}

}  // namespace
}  // namespace godislock::backend
