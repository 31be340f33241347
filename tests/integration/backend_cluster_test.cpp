// SPDX-License-Identifier: MIT
// The Redis backend on a real Redis Cluster (3 masters, 3 replicas, made
// by tests/support/redis_cluster): routing by slot, shard channels,
// redirections during a reshard, failover and the loss of a master.
#include "backend/backend.hpp"
#include "backend/cluster_backend.hpp"
#include "backend/redis_backend.hpp"
#include "backend/scripts/release_lua.hpp"
#include "lock/acquirer.hpp"
#include "redis/cluster.hpp"
#include "support/backend_fixture.hpp"
#include "support/process.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include "support/time.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace godislock::test {
namespace {

using namespace std::chrono_literals;
using backend::Backend;
using backend::Outcome;
using util::Deadline;
using Millis = std::chrono::milliseconds;

#define GODISLOCK_REQUIRE_CLUSTER(cluster)                                    \
  do {                                                                        \
    if (!(cluster).ok()) {                                                    \
      if (std::getenv("GODISLOCK_REQUIRE_REDIS") != nullptr) {                \
        FAIL() << "the Redis Cluster could not be made: " << (cluster).why(); \
      }                                                                       \
      GTEST_SKIP() << "redis-server or redis-cli not available";              \
    }                                                                         \
  } while (false)

std::string token(int i) {
  return fmt::format("{:032x}", 0xc1u + static_cast<unsigned>(i));
}

backend::Settings settings_for(const RedisCluster& c, const std::string& name) {
  backend::Settings s;
  s.endpoint = c.endpoint();
  s.prefix = "t:";
  s.name = name;
  return s;
}

std::unique_ptr<Backend> open_on(const RedisCluster& c,
                                 const std::string& name) {
  auto b = backend::open(settings_for(c, name), soon());
  EXPECT_TRUE(b) << b.error().message;
  return b ? std::move(b.value()) : nullptr;
}

int master_of_lock(const RedisCluster& c, const std::string& name) {
  return c.master_of(redis::key_slot("t:{" + name + "}"));
}

// A lock name whose slot another master serves than those of `taken`.
std::string name_on_new_master(const RedisCluster& c, std::set<int>* taken) {
  for (int i = 0;; ++i) {
    std::string name = fmt::format("lock-{}", i);
    int m = master_of_lock(c, name);
    if (m >= 0 && taken->insert(m).second) {
      return name;
    }
  }
}

// A fair waiter for lock `name` in a thread of its own.
struct Waiter {
  std::unique_ptr<Backend> backend;
  std::string token;
  std::optional<util::Result<lock::AcquireResult>> result;
  bool maybe_holding = false;
  std::atomic<bool> done{false};
  std::thread thread;
  // As `godislock run` sets it for its TTL (0: every hand-over is taken by
  // one more attempt).
  Millis handover_max_age{10000};

  void start(Millis wait) {
    thread = std::thread([this, wait] {
      lock::AcquireRequest req;
      req.token = token;
      req.ttl = 30000ms;
      req.wait = Deadline::after(wait);
      req.fair = true;
      req.outage_tolerance = 15000ms;
      req.handover_max_age = handover_max_age;
      result = lock::acquire(*backend, req, &maybe_holding);
      done = true;
    });
  }
  bool acquired() const {
    return result && result->ok() &&
           result->value().outcome == Outcome::acquired;
  }
  ~Waiter() {
    if (thread.joinable()) {
      thread.join();
    }
  }
};

// Clients of node `node` subscribed to shard channel `channel`.
long long shard_subscribers(const RedisCluster& c, size_t node,
                            const std::string& channel) {
  std::string flat = c.cli(node, {"PUBSUB", "SHARDNUMSUB", channel});
  auto nl = flat.find('\n');
  return nl == std::string::npos ? -1 : as_integer(flat.substr(nl + 1));
}

// Waits until the lock's queue (on its master) holds `n` tokens and each
// queued waiter is subscribed, i.e. asleep on its shard channel.
bool queued(const RedisCluster& c, const std::string& name, long long n) {
  return wait_until(
      [&] {
        return c.cli_key("t:{" + name + "}",
                         {"LLEN", "t:{" + name + "}:queue"}) ==
               fmt::format("(integer) {}", n);
      },
      30000ms);
}

// A holder of lock `name` (token 0, `ttl`) and one waiter (token 1) queued
// behind it; the holder, or null after a failed assertion.
std::unique_ptr<Backend> held_with_a_waiter(const RedisCluster& c,
                                            const std::string& name, Millis ttl,
                                            Waiter* w, Millis wait) {
  auto holder = open_on(c, name);
  if (holder == nullptr) {
    return nullptr;
  }
  auto a = holder->acquire(token(0), ttl, Backend::Mode::queue, soon());
  EXPECT_TRUE(a && a->state == Outcome::acquired);
  w->backend = open_on(c, name);
  if (!a || a->state != Outcome::acquired || w->backend == nullptr) {
    return nullptr;
  }
  w->token = token(1);
  w->start(wait);
  EXPECT_TRUE(queued(c, name, 1));
  return holder;
}

// --------------------------------------------------------------------------
// One cluster for the tests that leave its topology alone.

class ClusterTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { s_cluster = new RedisCluster(); }
  static void TearDownTestSuite() {
    delete s_cluster;
    s_cluster = nullptr;
  }
  void SetUp() override { GODISLOCK_REQUIRE_CLUSTER(*s_cluster); }
  const RedisCluster& cluster() const { return *s_cluster; }

  static RedisCluster* s_cluster;
};

RedisCluster* ClusterTest::s_cluster = nullptr;

TEST_F(ClusterTest, HarnessMakesThreeMastersWithAReplicaEach) {
  std::set<int> masters;
  for (int slot : {0, 5000, 10000, 16383}) {
    masters.insert(cluster().master_of(slot));
  }
  EXPECT_EQ(masters.size(), 3u);
  for (int m : masters) {
    ASSERT_GE(m, 0);
    EXPECT_GE(cluster().replica_of(static_cast<size_t>(m)), 0);
  }
}

// Our CRC16 agrees with the server's for keys of every shape.
TEST_F(ClusterTest, KeySlotAgreesWithTheServer) {
  for (const std::string& key : std::vector<std::string>{
           "t:{job}", "t:{a{b}c}:fence", "t:{}x}", "{", "}{", "foo{}{bar}",
           "naïve-ünï", "\xe6\x97\xa5\xe6\x9c\xac", "", "x{y}",
           std::string("nul\0byte", 8)}) {
    EXPECT_EQ(cluster().cli(0, {"CLUSTER", "KEYSLOT", key}),
              fmt::format("(integer) {}", redis::key_slot(key)))
        << key;
  }
}

// Locks whose slots three different masters serve, taken, refreshed,
// listed and released together: each lives on its own master only.
TEST_F(ClusterTest, LocksOnDifferentMastersAreIndependent) {
  std::set<int> taken;
  std::vector<std::string> names;
  std::vector<std::unique_ptr<Backend>> backends;
  for (int i = 0; i < 3; ++i) {
    names.push_back(name_on_new_master(cluster(), &taken));
    backends.push_back(open_on(cluster(), names.back()));
    ASSERT_NE(backends.back(), nullptr);
  }
  for (int i = 0; i < 3; ++i) {
    auto a =
        backends[i]->acquire(token(i), 30000ms, Backend::Mode::queue, soon());
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->state, Outcome::acquired);
    auto m = static_cast<size_t>(master_of_lock(cluster(), names[i]));
    EXPECT_EQ(cluster().cli(m, {"GET", "t:{" + names[i] + "}"}), token(i));
  }
  auto listed = backends[0]->list_names(soon());
  ASSERT_TRUE(listed) << listed.error().message;
  for (const auto& n : names) {
    EXPECT_NE(std::find(listed->begin(), listed->end(), n), listed->end()) << n;
  }
  for (int i = 0; i < 3; ++i) {
    auto r = backends[i]->refresh(token(i), 30000ms, soon());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(*r);
    auto st = backends[(i + 1) % 3]->status(names[i], soon());
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(st->kind, backend::LockStatus::Kind::exclusive);
    auto rel = backends[i]->release(token(i), soon());
    ASSERT_TRUE(rel) << rel.error().message;
    EXPECT_TRUE(*rel);
  }
}

// Many waiters on locks of all three masters at once, each served.
TEST_F(ClusterTest, WaitersOnEveryMasterAreHandedTheirLocks) {
  std::set<int> taken;
  std::vector<std::string> names;
  std::vector<std::unique_ptr<Backend>> holders;
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 0; i < 3; ++i) {
    names.push_back(name_on_new_master(cluster(), &taken));
    holders.push_back(open_on(cluster(), names.back()));
    ASSERT_NE(holders.back(), nullptr);
    auto a =
        holders[i]->acquire(token(i), 60000ms, Backend::Mode::queue, soon());
    ASSERT_TRUE(a && a->state == Outcome::acquired);
    for (int k = 0; k < 2; ++k) {
      auto w = std::make_unique<Waiter>();
      w->backend = open_on(cluster(), names[i]);
      ASSERT_NE(w->backend, nullptr);
      w->token = token(10 + i * 2 + k);
      waiters.push_back(std::move(w));
    }
  }
  for (auto& w : waiters) {
    w->start(30000ms);
  }
  for (const auto& n : names) {
    ASSERT_TRUE(queued(cluster(), n, 2)) << n;
  }
  // The holders' leases are a minute long: a waiter that gets its lock
  // now was woken by the release (a shard message), not by an expiry.
  for (int i = 0; i < 3; ++i) {
    auto r = holders[i]->release(token(i), soon());
    ASSERT_TRUE(r && *r);
  }
  for (size_t k = 0; k < waiters.size(); k += 2) {
    // One of the two gets it; its release hands it to the other.
    ASSERT_TRUE(wait_until(
        [&] { return waiters[k]->done || waiters[k + 1]->done; }, 20000ms));
    Waiter& first = waiters[k]->done ? *waiters[k] : *waiters[k + 1];
    Waiter& second = waiters[k]->done ? *waiters[k + 1] : *waiters[k];
    first.thread.join();
    ASSERT_TRUE(first.acquired());
    EXPECT_GT((*first.result)->wakeups + ((*first.result)->handed_over ? 1 : 0),
              0);
    auto r = first.backend->release(first.token, soon());
    ASSERT_TRUE(r && *r);
    second.thread.join();
    ASSERT_TRUE(second.acquired());
    auto r2 = second.backend->release(second.token, soon());
    ASSERT_TRUE(r2 && *r2);
  }
}

// A release hands the lock straight to the queue's head, over its shard
// channel: the head starts on the message alone, without an attempt of its
// own (one script call on the owning master, the release's), as on a
// single server.
TEST_F(ClusterTest, ReleaseHandsTheLockStraightToTheHead) {
  std::set<int> taken;
  const std::string name = name_on_new_master(cluster(), &taken);
  const int master = master_of_lock(cluster(), name);
  auto holder = open_on(cluster(), name);
  ASSERT_NE(holder, nullptr);
  auto a = holder->acquire(token(40), 60000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a && a->state == Outcome::acquired);
  Waiter w;
  w.backend = open_on(cluster(), name);
  ASSERT_NE(w.backend, nullptr);
  w.token = token(41);
  w.start(30000ms);
  ASSERT_TRUE(queued(cluster(), name, 1));
  const std::string wake = "t:{" + name + "}:wake:" + w.token;
  ASSERT_TRUE(wait_until(
      [&] { return shard_subscribers(cluster(), master, wake) == 1; },
      15000ms));
  const auto node = static_cast<size_t>(master);
  ASSERT_EQ(cluster().cli(
                node, {"SCRIPT", "LOAD", backend::scripts::k_release_source}),
            backend::scripts::k_release_sha1);
  ASSERT_EQ(cluster().cli(node, {"CONFIG", "RESETSTAT"}), "OK");
  auto r = holder->release(token(40), soon());
  ASSERT_TRUE(r && *r);
  ASSERT_TRUE(wait_until([&] { return w.done.load(); }, 20000ms));
  w.thread.join();
  ASSERT_TRUE(w.acquired());
  EXPECT_TRUE((*w.result)->handed_over);
  std::string info = cluster().cli(node, {"INFO", "commandstats"});
  EXPECT_EQ(calls_of(info, "evalsha") + calls_of(info, "eval"), 1) << info;
  auto gone = w.backend->release(w.token, soon());
  ASSERT_TRUE(gone && *gone);
}

// EVALSHA after SCRIPT FLUSH on the lock's master falls back to EVAL.
TEST_F(ClusterTest, ScriptsFlushedOnTheMasterAreSentAgain) {
  std::set<int> taken;
  std::string name = name_on_new_master(cluster(), &taken);
  auto b = open_on(cluster(), name);
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(token(1), 30000ms, Backend::Mode::race, soon());
  ASSERT_TRUE(a && a->state == Outcome::acquired);
  auto m = static_cast<size_t>(master_of_lock(cluster(), name));
  EXPECT_EQ(cluster().cli(m, {"SCRIPT", "FLUSH"}), "OK");
  auto r = b->release(token(1), soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
}

TEST_F(ClusterTest, ANameWhoseKeysWouldSplitIsRefused) {
  auto b = backend::open(settings_for(cluster(), "}job"), soon());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().kind, util::ErrorKind::config);
  EXPECT_NE(b.error().message.find("hash slot"), std::string::npos)
      << b.error().message;
}

// Any node answers for the rest: one live seed among dead ones is enough.
TEST_F(ClusterTest, OneLiveSeedIsEnough) {
  int dead = free_loopback_port();
  backend::Settings s = settings_for(cluster(), "seeds");
  std::string why;
  s.endpoint = *config::parse_url(
      fmt::format("redis-cluster://127.0.0.1:{},127.0.0.1:{}", dead,
                  cluster().port(3)),
      &why);
  auto b = backend::open(s, soon());
  ASSERT_TRUE(b) << b.error().message;
  auto a = (*b)->acquire(token(2), 5000ms, Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, Outcome::acquired);
  ASSERT_TRUE((*b)->release(token(2), soon()));
}

// --------------------------------------------------------------------------
// Bad input: seeds that are not a cluster.

TEST(ClusterSeeds, ASeedThatIsNotAClusterNodeIsNamed) {
  RedisServer plain;
  GODISLOCK_REQUIRE_SERVER(plain);
  backend::Settings s;
  std::string why;
  s.endpoint = *config::parse_url(
      fmt::format("redis-cluster://127.0.0.1:{}", plain.port()), &why);
  s.name = "x";
  auto b = backend::open(s, soon());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().kind, util::ErrorKind::config);
  EXPECT_NE(b.error().message.find(fmt::format(
                "127.0.0.1:{} is not a Redis Cluster node", plain.port())),
            std::string::npos)
      << b.error().message;
}

TEST(ClusterSeeds, AllSeedsDownIsUnavailable) {
  backend::Settings s;
  std::string why;
  int a = free_loopback_port();
  int b2 = free_loopback_port();
  s.endpoint = *config::parse_url(
      fmt::format("redis-cluster://127.0.0.1:{},127.0.0.1:{}", a, b2), &why);
  s.name = "x";
  auto b = backend::open(s, soon());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().kind, util::ErrorKind::io) << b.error().message;
  EXPECT_NE(b.error().message.find("no node of redis-cluster://"),
            std::string::npos)
      << b.error().message;
  EXPECT_NE(b.error().message.find(std::to_string(b2)), std::string::npos)
      << b.error().message;
}

// --------------------------------------------------------------------------
// A cluster of its own for each test that changes the topology.

// A master other than node `from`.
size_t another_master(const RedisCluster& c, int from) {
  for (size_t i = 0; i < c.size(); ++i) {
    if (static_cast<int>(i) != from && c.replica_of(i) >= 0) {
      return i;
    }
  }
  return 0;
}

class ClusterTopologyTest : public testing::Test {
 protected:
  void SetUp() override { GODISLOCK_REQUIRE_CLUSTER(cluster); }
  RedisCluster cluster;
};

// The slot of a held lock moves to another master (keys migrated, as
// redis-cli --cluster reshard does): refresh and release follow MOVED.
TEST_F(ClusterTopologyTest, ReshardWhileHeld) {
  auto b = open_on(cluster, "moving");
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(token(1), 30000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a && a->state == Outcome::acquired);
  int slot = redis::key_slot("t:{moving}");
  int from = cluster.master_of(slot);
  size_t to = another_master(cluster, from);
  ASSERT_TRUE(cluster.move_slot(slot, to));
  ASSERT_EQ(cluster.master_of(slot), static_cast<int>(to));
  EXPECT_EQ(cluster.cli(to, {"GET", "t:{moving}"}), token(1));
  auto r = b->refresh(token(1), 30000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  auto rel = b->release(token(1), soon());
  ASSERT_TRUE(rel) << rel.error().message;
  EXPECT_TRUE(*rel);
  EXPECT_EQ(cluster.cli(to, {"EXISTS", "t:{moving}"}), "(integer) 0");
}

// Mid-migration: the lock's keys moved, the slot not yet. The source
// answers ASK, and ASKING with the command goes to the target (which has
// not seen the scripts: NOSCRIPT, then EVAL, ASKed again). An attempt
// that names a key neither side has (the queue) gets ASK and TRYAGAIN in
// turn, with pauses, until the migration ends within its deadline.
TEST_F(ClusterTopologyTest, AskAndTryAgainDuringAMigration) {
  auto b = open_on(cluster, "asked");
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(token(1), 30000ms, Backend::Mode::race, soon());
  ASSERT_TRUE(a && a->state == Outcome::acquired);
  int slot = redis::key_slot("t:{asked}");
  int from = cluster.master_of(slot);
  size_t to = another_master(cluster, from);
  ASSERT_TRUE(cluster.move_slot(slot, to, /*keys_only=*/true));
  EXPECT_EQ(cluster.cli(static_cast<size_t>(from), {"EXISTS", "t:{asked}"})
                .rfind("(error) ASK ", 0),
            0u);
  auto r = b->refresh(token(1), 30000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  // Another attempt waits out the migration.
  auto other = open_on(cluster, "asked");
  ASSERT_NE(other, nullptr);
  std::optional<util::Result<backend::Attempt>> second;
  std::atomic<bool> done{false};
  std::thread t([&] {
    second = other->acquire(token(2), 30000ms, Backend::Mode::race,
                            Deadline::after(20s));
    done = true;
  });
  // It cannot finish while the queue key is on neither side.
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(done.load());
  ASSERT_TRUE(cluster.finish_migration(slot, to));
  t.join();
  ASSERT_TRUE(second && *second) << second->error().message;
  EXPECT_EQ((*second)->state, Outcome::held);
  auto rel = b->release(token(1), soon());
  ASSERT_TRUE(rel) << rel.error().message;
  EXPECT_TRUE(*rel);
}

// Waiters asleep on the shard channel of a slot that moves get
// sunsubscribe, subscribe again on the new master and are still served
// by the release.
TEST_F(ClusterTopologyTest, ReshardWithQueuedWaiters) {
  auto holder = open_on(cluster, "busy");
  ASSERT_NE(holder, nullptr);
  auto a = holder->acquire(token(0), 60000ms, Backend::Mode::queue, soon());
  ASSERT_TRUE(a && a->state == Outcome::acquired);
  std::vector<std::unique_ptr<Waiter>> waiters;
  for (int i = 1; i <= 2; ++i) {
    auto w = std::make_unique<Waiter>();
    w->backend = open_on(cluster, "busy");
    ASSERT_NE(w->backend, nullptr);
    w->token = token(i);
    w->start(40000ms);
    waiters.push_back(std::move(w));
    // One at a time, so that the queue's order is the vector's: the
    // release below goes to the first, and its release to the second.
    ASSERT_TRUE(queued(cluster, "busy", i));
  }
  int slot = redis::key_slot("t:{busy}");
  int from = cluster.master_of(slot);
  size_t to = another_master(cluster, from);
  ASSERT_TRUE(cluster.move_slot(slot, to));
  // Both subscribed again, on the new master.
  ASSERT_TRUE(wait_until(
      [&] {
        return shard_subscribers(cluster, to, "t:{busy}:wake:" + token(1)) ==
                   1 &&
               shard_subscribers(cluster, to, "t:{busy}:wake:" + token(2)) == 1;
      },
      15000ms))
      << cluster.cli(to, {"PUBSUB", "SHARDCHANNELS"});
  auto r = holder->release(token(0), soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  for (auto& w : waiters) {
    ASSERT_TRUE(wait_until([&] { return w->done.load(); }, 20000ms));
    w->thread.join();
    ASSERT_TRUE(w->acquired());
    auto gone = w->backend->release(w->token, soon());
    ASSERT_TRUE(gone && *gone);
  }
}

// CLUSTER FAILOVER of the lock's master: the promoted replica has the key
// (replicated) but not the scripts (Redis 7 does not replicate SCRIPT
// LOAD); refresh and release follow MOVED and send the scripts again; a
// waiter subscribed on the old master is dropped and comes back.
TEST_F(ClusterTopologyTest, FailoverOfTheOwningMaster) {
  Waiter w;
  auto holder = held_with_a_waiter(cluster, "fo", 60000ms, &w, 40000ms);
  ASSERT_NE(holder, nullptr);
  int slot = redis::key_slot("t:{fo}");
  auto old_master = static_cast<size_t>(cluster.master_of(slot));
  int replica = cluster.replica_of(old_master);
  ASSERT_GE(replica, 0);
  ASSERT_TRUE(cluster.failover(static_cast<size_t>(replica)));
  ASSERT_EQ(cluster.master_of(slot), replica);
  auto r = holder->refresh(token(0), 60000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  // The waiter is subscribed on the new master before the release.
  ASSERT_TRUE(wait_until(
      [&] {
        return shard_subscribers(cluster, static_cast<size_t>(replica),
                                 "t:{fo}:wake:" + token(1)) == 1;
      },
      15000ms));
  auto rel = holder->release(token(0), soon());
  ASSERT_TRUE(rel) << rel.error().message;
  EXPECT_TRUE(*rel);
  ASSERT_TRUE(wait_until([&] { return w.done.load(); }, 20000ms));
  w.thread.join();
  ASSERT_TRUE(w.acquired());
  ASSERT_TRUE(w.backend->release(w.token, soon()));
}

// Redis 7.0 (fixed in 7.4) keeps the shard subscriptions of a replica that
// is moved to another primary, where they hear nothing again: a waiter
// subscribed there would be deaf. godislock's waiters never subscribe on a
// replica (a read of the lock's key in the same write answers MOVED
// there), a demoted master drops its subscribers (sunsubscribe), and every
// sleep is bounded by the holder's TTL anyway. Here the lock's master is
// demoted by a failover and then moved under another primary while a
// waiter waits: nothing of the waiter's stays on it, and when the holder
// vanishes without a release (no message at all), the waiter takes the
// lock at the bound of its sleep, the holder's TTL.
TEST_F(ClusterTopologyTest, DemotedMasterMovedToAnotherPrimary) {
  Waiter w;
  auto holder = held_with_a_waiter(cluster, "moved", 15000ms, &w, 60000ms);
  ASSERT_NE(holder, nullptr);
  const std::string wake = "t:{moved}:wake:" + token(1);
  int slot = redis::key_slot("t:{moved}");
  auto old_master = static_cast<size_t>(cluster.master_of(slot));
  ASSERT_TRUE(wait_until(
      [&] { return shard_subscribers(cluster, old_master, wake) == 1; },
      15000ms));
  int replica = cluster.replica_of(old_master);
  ASSERT_GE(replica, 0);
  ASSERT_TRUE(cluster.failover(static_cast<size_t>(replica)));
  ASSERT_EQ(cluster.master_of(slot), replica);
  // Subscribed again on the new master; the old one, now its replica,
  // is moved under another primary.
  ASSERT_TRUE(wait_until(
      [&] {
        return shard_subscribers(cluster, static_cast<size_t>(replica), wake) ==
               1;
      },
      15000ms));
  size_t other = another_master(cluster, replica);
  ASSERT_TRUE(cluster.replicate(old_master, other));
  EXPECT_EQ(shard_subscribers(cluster, old_master, wake), 0);
  EXPECT_FALSE(w.done.load());
  // The holder is gone without a word: its key lapses with its TTL.
  holder.reset();
  ASSERT_TRUE(wait_until([&] { return w.done.load(); }, 40000ms));
  w.thread.join();
  ASSERT_TRUE(w.acquired());
  EXPECT_FALSE((*w.result)->handed_over);
  auto gone = w.backend->release(w.token, soon());
  ASSERT_TRUE(gone && *gone);
}

// SIGKILL of the lock's master after the key reached its replica: once
// the replica took over, refresh finds the lock still ours.
TEST_F(ClusterTopologyTest, KilledMasterWithTheKeyReplicated) {
  auto holder = open_on(cluster, "killed");
  ASSERT_NE(holder, nullptr);
  auto a = holder->acquire(token(0), 60000ms, Backend::Mode::race, soon());
  ASSERT_TRUE(a && a->state == Outcome::acquired);
  int slot = redis::key_slot("t:{killed}");
  auto master = static_cast<size_t>(cluster.master_of(slot));
  int replica = cluster.replica_of(master);
  ASSERT_GE(replica, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return cluster.cli(static_cast<size_t>(replica), {"DBSIZE"}) !=
               "(integer) 0";
      },
      5000ms));
  ASSERT_TRUE(cluster.kill_master(master));
  // Refresh retries within its deadline while the replica takes over.
  auto r = holder->refresh(token(0), 60000ms, Deadline::after(20s));
  if (!r) {
    // The first call may fail on the connection that died with the master.
    r = holder->refresh(token(0), 60000ms, Deadline::after(20s));
  }
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  ASSERT_TRUE(holder->release(token(0), soon()));
}

// SIGKILL of the lock's master before the key reached its replica (the
// replica was stopped): the promoted replica has no key, and refresh
// says the lock is not ours any more — a lost lock, not an error.
TEST_F(ClusterTopologyTest, KilledMasterThatLostTheKey) {
  auto holder = open_on(cluster, "lost");
  ASSERT_NE(holder, nullptr);
  int slot = redis::key_slot("t:{lost}");
  auto master = static_cast<size_t>(cluster.master_of(slot));
  int replica = cluster.replica_of(master);
  ASSERT_GE(replica, 0);
  // The replica stopped and its link cut: the master's next writes reach
  // no replica (a stopped process still has its socket buffered).
  ::kill(cluster.pid(static_cast<size_t>(replica)), SIGSTOP);
  EXPECT_NE(cluster.cli(master, {"CLIENT", "KILL", "TYPE", "replica"}),
            "(integer) 0");
  auto a = holder->acquire(token(0), 60000ms, Backend::Mode::race, soon());
  ::kill(cluster.pid(master), SIGKILL);
  ::kill(cluster.pid(static_cast<size_t>(replica)), SIGCONT);
  ASSERT_TRUE(a && a->state == Outcome::acquired);
  ASSERT_TRUE(cluster.kill_master(master));
  ASSERT_EQ(cluster.master_of(slot), replica);
  auto r = holder->refresh(token(0), 60000ms, Deadline::after(20s));
  if (!r) {
    r = holder->refresh(token(0), 60000ms, Deadline::after(20s));
  }
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(*r);
}

}  // namespace
}  // namespace godislock::test
