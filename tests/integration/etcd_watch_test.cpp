// SPDX-License-Identifier: MIT
// Watch streams, and etcd's concurrency.Mutex recipe done by hand with the
// client, against real etcd members started by EtcdCluster.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "etcd/client.hpp"
#include "support/etcd_server.hpp"

namespace godislock::etcd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::EtcdCluster;
using util::Deadline;
using util::ErrorKind;

Deadline soon() { return Deadline::after(seconds(5)); }

Client make_client(const EtcdCluster& etcd, int interrupt_fd = -1) {
  ClientOptions o;
  o.endpoints = etcd.endpoints();
  o.interrupt_fd = interrupt_fd;
  auto c = Client::create(o);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return std::move(*c);
}

PutRequest put_req(std::string key, std::string value, int64_t lease = 0) {
  PutRequest p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return p;
}

class EtcdWatchTest : public ::testing::Test {
 protected:
  EtcdCluster m_etcd{1};
};

TEST_F(EtcdWatchTest, ReportsPutAndDeleteWithPrevKv) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd);
  WatchRequest w;
  w.key = "w/";
  w.range_end = prefix_end("w/");
  w.prev_kv = true;
  auto watch = c.watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;

  ASSERT_TRUE(c.put(put_req("w/a", "1"), soon()).ok());
  ASSERT_TRUE(c.put(put_req("w/a", "2"), soon()).ok());
  DeleteRangeRequest d;
  d.key = "w/a";
  ASSERT_TRUE(c.delete_range(d, soon()).ok());

  std::vector<Event> events;
  while (events.size() < 3) {
    auto r = watch->next(soon());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_FALSE(r->canceled);
    events.insert(events.end(), r->events.begin(), r->events.end());
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, Event::Type::put);
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_FALSE(events[0].has_prev_kv);
  EXPECT_EQ(events[1].type, Event::Type::put);
  ASSERT_TRUE(events[1].has_prev_kv);
  EXPECT_EQ(events[1].prev_kv.value, "1");
  EXPECT_EQ(events[2].type, Event::Type::del);
  EXPECT_EQ(events[2].kv.key, "w/a");
  ASSERT_TRUE(events[2].has_prev_kv);
  EXPECT_EQ(events[2].prev_kv.value, "2");
}

TEST_F(EtcdWatchTest, StartRevisionReplaysAndNoPutFiltersPuts) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd);
  auto p = c.put(put_req("f/k", "1"), soon());
  ASSERT_TRUE(p.ok()) << p.error().message;
  DeleteRangeRequest d;
  d.key = "f/k";
  auto del = c.delete_range(d, soon());
  ASSERT_TRUE(del.ok()) << del.error().message;

  // Both changes happened before the watch; start_revision replays them,
  // and NOPUT leaves only the delete.
  WatchRequest w;
  w.key = "f/k";
  w.start_revision = p->header.revision;
  w.no_put = true;
  auto watch = c.watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  auto r = watch->next(soon());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].type, Event::Type::del);
  EXPECT_EQ(r->events[0].kv.mod_revision, del->header.revision);
}

TEST_F(EtcdWatchTest, CompactedStartRevisionIsReportedAsCanceled) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd);
  auto first = c.put(put_req("c/k", "1"), soon());
  ASSERT_TRUE(first.ok());
  int64_t last = 0;
  for (int i = 0; i < 3; ++i) {
    auto p = c.put(put_req("c/k", std::to_string(i)), soon());
    ASSERT_TRUE(p.ok());
    last = p->header.revision;
  }
  ASSERT_TRUE(m_etcd.etcdctl(fmt::format("compaction {}", last)));

  WatchRequest w;
  w.key = "c/k";
  w.start_revision = first->header.revision;
  auto watch = c.watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  auto r = watch->next(soon());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->canceled);
  EXPECT_EQ(r->compact_revision, last);
  // The stream is over.
  auto after = watch->next(soon());
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().kind, ErrorKind::io);
}

TEST_F(EtcdWatchTest, LeaseExpiryDeletesTheKeyAndWakesTheWatcher) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd);
  // etcd raises TTLs below its minimum (1.5 election timeouts) to it.
  auto g = c.lease_grant(seconds(1), soon());
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_TRUE(c.put(put_req("l/k", "x", g->id), soon()).ok());
  WatchRequest w;
  w.key = "l/k";
  auto watch = c.watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  // No keep-alive is sent: the lease runs out and etcd deletes the key.
  auto r = watch->next(Deadline::after(seconds(15)));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].type, Event::Type::del);
  EXPECT_EQ(r->events[0].kv.key, "l/k");
  auto ttl = c.lease_time_to_live(g->id, false, soon());
  ASSERT_TRUE(ttl.ok()) << ttl.error().message;
  EXPECT_EQ(ttl->ttl_s, -1);
}

TEST_F(EtcdWatchTest, InterruptFdWakesABlockedWatcher) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Client c = make_client(m_etcd, fds[0]);
  WatchRequest w;
  w.key = "quiet";
  auto watch = c.watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(::write(fds[1], "x", 1), 1);
  });
  auto r = watch->next(Deadline::never());
  writer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::interrupted) << r.error().message;
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_F(EtcdWatchTest, NextHonoursItsDeadlineAndTheStreamGoesOn) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd);
  WatchRequest w;
  w.key = "t/k";
  auto watch = c.watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  auto idle = watch->next(Deadline::after(milliseconds(200)));
  ASSERT_FALSE(idle.ok());
  EXPECT_EQ(idle.error().kind, ErrorKind::timeout);
  // The stream survives a timed-out wait.
  ASSERT_TRUE(c.put(put_req("t/k", "v"), soon()).ok());
  auto r = watch->next(soon());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].kv.value, "v");
}

TEST_F(EtcdWatchTest, StoppedServerTimesTheWaitOut) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd);
  WatchRequest w;
  w.key = "s/k";
  auto watch = c.watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  m_etcd.pause(0);
  auto r = watch->next(Deadline::after(milliseconds(300)));
  m_etcd.resume(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::timeout);
}

// --- etcd's concurrency.Mutex recipe, by hand ---

// One lock session: a lease and the key PREFIX/<lease id in hex>.
struct Session {
  Client client;
  int64_t lease = 0;
  std::string key;
  int64_t my_rev = 0;
};

constexpr const char* k_prefix = "locks/job/";

Session open_session(const EtcdCluster& etcd) {
  Session s{make_client(etcd), 0, {}, 0};
  auto g = s.client.lease_grant(seconds(30), soon());
  EXPECT_TRUE(g.ok()) << g.error().message;
  s.lease = g->id;
  s.key = fmt::format("{}{:x}", k_prefix, g->id);
  return s;
}

// Creates the session's key unless it exists, and reads the owner (the
// key with the lowest create revision) in the same transaction. Returns
// whether we own the lock.
bool try_acquire(Session& s) {
  TxnRequest t;
  t.compare.push_back(
      Compare::create_revision(s.key, Compare::Result::equal, 0));
  t.success.emplace_back(put_req(s.key, "", s.lease));
  RangeRequest get;
  get.key = s.key;
  t.failure.emplace_back(get);
  RangeRequest owner;
  owner.key = k_prefix;
  owner.range_end = prefix_end(k_prefix);
  owner.sort_target = SortTarget::create;
  owner.sort_order = SortOrder::ascend;
  owner.limit = 1;
  t.success.emplace_back(owner);
  t.failure.emplace_back(owner);
  auto r = s.client.txn(t, soon());
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (r->succeeded) {
    s.my_rev = r->header.revision;
  } else {
    s.my_rev =
        std::get<RangeResponse>(r->responses[0]).kvs.at(0).create_revision;
  }
  const auto& own = std::get<RangeResponse>(r->responses[1]);
  return !own.kvs.empty() && own.kvs[0].create_revision == s.my_rev;
}

// The waiter's step: find the newest key created before ours and open a
// watch for its deletion from the revision of that read, so that a delete
// between the read and the watch is not missed.
struct Ahead {
  std::string key;
  Watch watch;
};

std::optional<Ahead> watch_ahead(Session& s) {
  RangeRequest r;
  r.key = k_prefix;
  r.range_end = prefix_end(k_prefix);
  r.max_create_revision = s.my_rev - 1;
  r.sort_target = SortTarget::create;
  r.sort_order = SortOrder::descend;
  r.limit = 1;
  auto got = s.client.range(r, soon());
  EXPECT_TRUE(got.ok()) << got.error().message;
  if (got->kvs.empty()) {
    return std::nullopt;
  }
  WatchRequest w;
  w.key = got->kvs[0].key;
  w.start_revision = got->header.revision + 1;
  w.no_put = true;
  auto watch = s.client.watch(w, soon());
  EXPECT_TRUE(watch.ok()) << watch.error().message;
  return Ahead{got->kvs[0].key, std::move(*watch)};
}

TEST_F(EtcdWatchTest, MutexRecipeHandsTheLockOverInCreateRevisionOrder) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Session a = open_session(m_etcd);
  Session b = open_session(m_etcd);

  ASSERT_TRUE(try_acquire(a));
  ASSERT_FALSE(try_acquire(b));
  EXPECT_LT(a.my_rev, b.my_rev);
  // Trying again keeps B's place (its key and create revision).
  int64_t b_rev = b.my_rev;
  ASSERT_FALSE(try_acquire(b));
  EXPECT_EQ(b.my_rev, b_rev);

  auto ahead = watch_ahead(b);
  ASSERT_TRUE(ahead.has_value());
  EXPECT_EQ(ahead->key, a.key);
  // Nothing wakes B while A holds the lock.
  auto idle = ahead->watch.next(Deadline::after(milliseconds(200)));
  ASSERT_FALSE(idle.ok());
  EXPECT_EQ(idle.error().kind, ErrorKind::timeout);

  // A releases; B, blocked on its watch, is woken by the delete.
  DeleteRangeRequest release;
  release.key = a.key;
  ASSERT_TRUE(a.client.delete_range(release, soon()).ok());
  auto woken = ahead->watch.next(soon());
  ASSERT_TRUE(woken.ok()) << woken.error().message;
  ASSERT_EQ(woken->events.size(), 1u);
  EXPECT_EQ(woken->events[0].type, Event::Type::del);
  EXPECT_EQ(woken->events[0].kv.key, a.key);

  // B re-checks (its lease may have run out meanwhile) and owns the lock.
  EXPECT_TRUE(try_acquire(b));
  EXPECT_EQ(b.my_rev, b_rev);
  auto ttl = b.client.lease_time_to_live(b.lease, true, soon());
  ASSERT_TRUE(ttl.ok()) << ttl.error().message;
  ASSERT_EQ(ttl->keys.size(), 1u);
  EXPECT_EQ(ttl->keys[0], b.key);
}

TEST_F(EtcdWatchTest, MutexRecipeHolderLeaseRevokedWakesTheWaiter) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Session a = open_session(m_etcd);
  Session b = open_session(m_etcd);
  ASSERT_TRUE(try_acquire(a));
  ASSERT_FALSE(try_acquire(b));
  auto ahead = watch_ahead(b);
  ASSERT_TRUE(ahead.has_value());
  // The holder's lease ends (a crashed holder's lease expires the same
  // way, later): etcd deletes its key.
  ASSERT_TRUE(a.client.lease_revoke(a.lease, soon()).ok());
  auto woken = ahead->watch.next(soon());
  ASSERT_TRUE(woken.ok()) << woken.error().message;
  ASSERT_EQ(woken->events.size(), 1u);
  EXPECT_EQ(woken->events[0].kv.key, a.key);
  EXPECT_TRUE(try_acquire(b));
}

}  // namespace
}  // namespace godislock::etcd
