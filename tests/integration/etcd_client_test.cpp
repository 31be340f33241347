// SPDX-License-Identifier: MIT
// The etcd client against real etcd members started by EtcdCluster.
#include "etcd/client.hpp"
#include "support/etcd_server.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace godislock::etcd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::EtcdCluster;
using util::Deadline;
using util::ErrorKind;

Deadline soon() { return Deadline::after(seconds(5)); }

Client make_client(std::vector<std::string> endpoints,
                   std::string user = "", std::string password = "") {
  ClientOptions o;
  o.endpoints = std::move(endpoints);
  o.user = std::move(user);
  o.password = std::move(password);
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

class EtcdClientTest : public ::testing::Test {
 protected:
  EtcdCluster m_etcd{1};
};

TEST_F(EtcdClientTest, PutThenRangeRoundTripsBinaryKeysAndValues) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  std::string key("bin/\x00\xff\x01k", 8);
  std::string value("v\x00\xfe\n\"", 5);
  auto p = c.put(put_req(key, value), soon());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_GT(p->header.revision, 1);

  RangeRequest r;
  r.key = key;
  auto got = c.range(r, soon());
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].key, key);
  EXPECT_EQ(got->kvs[0].value, value);
  EXPECT_EQ(got->kvs[0].create_revision, p->header.revision);
  EXPECT_EQ(got->kvs[0].version, 1);
  EXPECT_EQ(got->count, 1);
}

TEST_F(EtcdClientTest, RangeOverPrefixWithLimitSortCountAndMaxCreateRevision) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  std::vector<int64_t> revs;
  for (const char* k : {"p/b", "p/a", "p/c"}) {
    auto p = c.put(put_req(k, "x"), soon());
    ASSERT_TRUE(p.ok()) << p.error().message;
    revs.push_back(p->header.revision);
  }
  ASSERT_TRUE(c.put(put_req("q/outside", "x"), soon()).ok());

  RangeRequest r;
  r.key = "p/";
  r.range_end = prefix_end("p/");
  EXPECT_EQ(r.range_end, "p0");
  auto all = c.range(r, soon());
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->kvs.size(), 3u);
  EXPECT_EQ(all->kvs[0].key, "p/a");  // by key by default

  // The mutex recipe's "who is ahead of me": the newest key created before
  // a revision.
  r.sort_target = SortTarget::create;
  r.sort_order = SortOrder::descend;
  r.limit = 1;
  r.max_create_revision = revs[2] - 1;
  auto ahead = c.range(r, soon());
  ASSERT_TRUE(ahead.ok()) << ahead.error().message;
  ASSERT_EQ(ahead->kvs.size(), 1u);
  EXPECT_EQ(ahead->kvs[0].key, "p/a");
  // count is taken over the whole range, before limit and the
  // create-revision filter.
  EXPECT_EQ(ahead->count, 3);

  RangeRequest count;
  count.key = "p/";
  count.range_end = prefix_end("p/");
  count.count_only = true;
  auto n = c.range(count, soon());
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->count, 3);
  EXPECT_TRUE(n->kvs.empty());

  RangeRequest missing;
  missing.key = "nope";
  auto none = c.range(missing, soon());
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->kvs.empty());
  EXPECT_EQ(none->count, 0);
}

TEST_F(EtcdClientTest, TxnComparesCreateRevisionValueAndVersion) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  auto create_if_absent = [](const std::string& key, const std::string& v) {
    TxnRequest t;
    t.compare.push_back(Compare::create_revision(key, Compare::Result::equal, 0));
    t.success.emplace_back(put_req(key, v));
    RangeRequest get;
    get.key = key;
    t.failure.emplace_back(get);
    return t;
  };
  auto first = c.txn(create_if_absent("lock/k", "one"), soon());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->succeeded);
  ASSERT_EQ(first->responses.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<PutResponse>(first->responses[0]));

  auto second = c.txn(create_if_absent("lock/k", "two"), soon());
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(second->succeeded);
  ASSERT_EQ(second->responses.size(), 1u);
  const auto& held = std::get<RangeResponse>(second->responses[0]);
  ASSERT_EQ(held.kvs.size(), 1u);
  EXPECT_EQ(held.kvs[0].value, "one");

  // Delete only if the value is still ours and it has the version we saw.
  TxnRequest release;
  release.compare.push_back(
      Compare::value_is("lock/k", Compare::Result::equal, "one"));
  release.compare.push_back(
      Compare::version("lock/k", Compare::Result::equal, 1));
  DeleteRangeRequest del;
  del.key = "lock/k";
  del.prev_kv = true;
  release.success.emplace_back(del);
  auto rel = c.txn(release, soon());
  ASSERT_TRUE(rel.ok()) << rel.error().message;
  EXPECT_TRUE(rel->succeeded);
  const auto& d = std::get<DeleteRangeResponse>(rel->responses[0]);
  EXPECT_EQ(d.deleted, 1);
  ASSERT_EQ(d.prev_kvs.size(), 1u);
  EXPECT_EQ(d.prev_kvs[0].value, "one");

  auto again = c.txn(release, soon());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->succeeded);
}

TEST_F(EtcdClientTest, DeleteRangeOverPrefix) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  for (const char* k : {"d/1", "d/2", "e/1"}) {
    ASSERT_TRUE(c.put(put_req(k, "x"), soon()).ok());
  }
  DeleteRangeRequest del;
  del.key = "d/";
  del.range_end = prefix_end("d/");
  auto r = c.delete_range(del, soon());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deleted, 2);
  RangeRequest rest;
  rest.key = std::string(1, '\0');
  rest.range_end = std::string(1, '\0');
  auto left = c.range(rest, soon());
  ASSERT_TRUE(left.ok()) << left.error().message;
  ASSERT_EQ(left->kvs.size(), 1u);
  EXPECT_EQ(left->kvs[0].key, "e/1");
}

TEST_F(EtcdClientTest, LeaseGrantKeepAliveTimeToLiveRevoke) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  auto g = c.lease_grant(seconds(30), soon());
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_NE(g->id, 0);
  EXPECT_EQ(g->ttl_s, 30);
  ASSERT_TRUE(c.put(put_req("leased/a", "x", g->id), soon()).ok());

  auto ka = c.lease_keep_alive(g->id, soon());
  ASSERT_TRUE(ka.ok()) << ka.error().message;
  EXPECT_EQ(ka->id, g->id);
  EXPECT_EQ(ka->ttl_s, 30);

  auto ttl = c.lease_time_to_live(g->id, true, soon());
  ASSERT_TRUE(ttl.ok()) << ttl.error().message;
  EXPECT_EQ(ttl->granted_ttl_s, 30);
  EXPECT_GT(ttl->ttl_s, 0);
  ASSERT_EQ(ttl->keys.size(), 1u);
  EXPECT_EQ(ttl->keys[0], "leased/a");

  auto rv = c.lease_revoke(g->id, soon());
  ASSERT_TRUE(rv.ok()) << rv.error().message;
  RangeRequest r;
  r.key = "leased/a";
  auto gone = c.range(r, soon());
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_TRUE(gone->kvs.empty());

  // A gone lease: keep-alive says TTL 0, time-to-live says -1, revoke
  // fails as a server error.
  auto ka2 = c.lease_keep_alive(g->id, soon());
  ASSERT_TRUE(ka2.ok()) << ka2.error().message;
  EXPECT_LE(ka2->ttl_s, 0);
  auto ttl2 = c.lease_time_to_live(g->id, false, soon());
  ASSERT_TRUE(ttl2.ok()) << ttl2.error().message;
  EXPECT_EQ(ttl2->ttl_s, -1);
  auto rv2 = c.lease_revoke(g->id, soon());
  ASSERT_FALSE(rv2.ok());
  EXPECT_EQ(rv2.error().kind, ErrorKind::server);
  EXPECT_NE(rv2.error().message.find("lease not found"), std::string::npos)
      << rv2.error().message;
}

TEST_F(EtcdClientTest, ConnectionIsReusedAcrossCalls) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  // A lock cycle's calls: grant, create txn, range, keep-alive, delete,
  // revoke.
  auto g = c.lease_grant(seconds(10), soon());
  ASSERT_TRUE(g.ok()) << g.error().message;
  TxnRequest t;
  t.compare.push_back(Compare::create_revision("c/k", Compare::Result::equal, 0));
  t.success.emplace_back(put_req("c/k", "x", g->id));
  ASSERT_TRUE(c.txn(t, soon()).ok());
  RangeRequest r;
  r.key = "c/";
  r.range_end = prefix_end("c/");
  ASSERT_TRUE(c.range(r, soon()).ok());
  ASSERT_TRUE(c.lease_keep_alive(g->id, soon()).ok());
  DeleteRangeRequest d;
  d.key = "c/k";
  ASSERT_TRUE(c.delete_range(d, soon()).ok());
  ASSERT_TRUE(c.lease_revoke(g->id, soon()).ok());
  EXPECT_EQ(c.stats().requests, 6u);
  EXPECT_EQ(c.stats().connections, 1u);
}

TEST_F(EtcdClientTest, StatusNamesTheLeader) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  auto s = c.status(soon());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->leader, s->header.member_id);
  EXPECT_EQ(s->version.rfind("3.", 0), 0u) << s->version;
}

}  // namespace
}  // namespace godislock::etcd
