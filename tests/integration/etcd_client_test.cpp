// SPDX-License-Identifier: MIT
// The etcd client against real etcd members started by EtcdCluster.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
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

Client make_client(std::vector<std::string> endpoints, std::string user = "",
                   std::string password = "") {
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

// A loopback port with nothing listening on it (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A child process (a non-etcd server) killed and reaped at scope exit.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    m_pid = ::fork();
    if (m_pid == 0) {
      std::vector<char*> args;
      for (auto& a : argv) {
        args.push_back(a.data());
      }
      args.push_back(nullptr);
      std::freopen("/dev/null", "w", stderr);
      std::freopen("/dev/null", "w", stdout);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

 private:
  pid_t m_pid = -1;
};

// Waits (bounded) until something accepts connections on the port.
bool wait_listening(int port) {
  for (int i = 0; i < 200; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::close(fd);
    if (rc == 0) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(25));
  }
  return false;
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
    t.compare.push_back(
        Compare::create_revision(key, Compare::Result::equal, 0));
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
  t.compare.push_back(
      Compare::create_revision("c/k", Compare::Result::equal, 0));
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

TEST_F(EtcdClientTest, DeadlineHonouredWhenTheServerIsStopped) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  Client c = make_client(m_etcd.endpoints());
  ASSERT_TRUE(c.put(put_req("k", "v"), soon()).ok());  // connection open
  m_etcd.pause(0);
  RangeRequest r;
  r.key = "k";
  auto got = c.range(r, Deadline::after(milliseconds(300)));
  m_etcd.resume(0);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::timeout) << got.error().message;
  EXPECT_NE(got.error().message.find(m_etcd.endpoint(0).substr(7)),
            std::string::npos)
      << got.error().message;
  // The next call works again (on a new connection).
  auto again = c.range(r, soon());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->kvs.size(), 1u);
}

TEST_F(EtcdClientTest, InterruptFdCutsACallShort) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ClientOptions o;
  o.endpoints = m_etcd.endpoints();
  o.interrupt_fd = fds[0];
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  m_etcd.pause(0);  // the call would block until its deadline
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(::write(fds[1], "x", 1), 1);
  });
  RangeRequest r;
  r.key = "k";
  auto got = c->range(r, Deadline::never());
  writer.join();
  m_etcd.resume(0);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::interrupted) << got.error().message;
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_F(EtcdClientTest, UnreachableEndpointIsAnIoErrorNamingIt) {
  int port = closed_port();
  Client c = make_client({fmt::format("127.0.0.1:{}", port)});
  RangeRequest r;
  r.key = "k";
  auto got = c.range(r, soon());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::io) << got.error().message;
  EXPECT_NE(got.error().message.find(std::to_string(port)), std::string::npos)
      << got.error().message;
}

TEST_F(EtcdClientTest, FailsOverToTheSecondEndpointWhenTheFirstIsDown) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  std::string dead = fmt::format("http://127.0.0.1:{}", closed_port());
  Client c = make_client({dead, m_etcd.endpoint(0)});
  auto p = c.put(put_req("k", "v"), soon());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ("http://" + c.current_endpoint(), m_etcd.endpoint(0));
  // Later calls start at the endpoint that answered.
  RangeRequest r;
  r.key = "k";
  ASSERT_TRUE(c.range(r, soon()).ok());
  EXPECT_EQ(c.stats().requests, 3u);  // one refused, two answered
}

TEST(EtcdClientConfigTest, RejectsBadEndpoints) {
  for (const char* bad : {"ftp://127.0.0.1:2379", "redis://x:1", "",
                          "127.0.0.1:2379/path", "https://"}) {
    ClientOptions o;
    o.endpoints = {bad};
    auto c = Client::create(o);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.error().kind, ErrorKind::config);
  }
  // https:// is TLS (etcds:// URLs).
  ClientOptions tls;
  tls.endpoints = {"https://127.0.0.1:2379"};
  EXPECT_TRUE(Client::create(tls).ok());
  auto none = Client::create(ClientOptions{});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().kind, ErrorKind::config);
}

TEST(EtcdClientProtocolTest, PlainHttpServerIsAProtocolError) {
  int port = closed_port();
  std::string dir = std::filesystem::temp_directory_path() /
                    fmt::format("godislock-http-{}", port);
  std::filesystem::create_directories(dir);
  Child server({"python3", "-m", "http.server", std::to_string(port), "--bind",
                "127.0.0.1", "--directory", dir});
  if (!wait_listening(port)) {
    GTEST_SKIP() << "python3 -m http.server did not start";
  }
  Client c = make_client({fmt::format("127.0.0.1:{}", port)});
  RangeRequest r;
  r.key = "k";
  auto got = c.range(r, soon());
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::protocol) << got.error().message;
  EXPECT_NE(got.error().message.find(std::to_string(port)), std::string::npos)
      << got.error().message;
}

TEST(EtcdClientProtocolTest, RedisServerIsAProtocolError) {
  int port = closed_port();
  Child server({"redis-server", "--port", std::to_string(port), "--bind",
                "127.0.0.1", "--save", "", "--appendonly", "no"});
  if (!wait_listening(port)) {
    GTEST_SKIP() << "redis-server did not start";
  }
  Client c = make_client({fmt::format("127.0.0.1:{}", port)});
  auto got = c.lease_grant(seconds(5), soon());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::protocol) << got.error().message;
}

class EtcdAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
    ASSERT_TRUE(m_etcd.enable_auth("alice", "alice-pw", "godislock/"));
  }
  EtcdCluster m_etcd{1};
};

TEST_F(EtcdAuthTest, RightCredentialsWorkInsideThePrefix) {
  Client c = make_client(m_etcd.endpoints(), "alice", "alice-pw");
  auto p = c.put(put_req("godislock/a", "v"), soon());
  ASSERT_TRUE(p.ok()) << p.error().message;
  RangeRequest r;
  r.key = "godislock/a";
  auto got = c.range(r, soon());
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->kvs.size(), 1u);
}

TEST_F(EtcdAuthTest, OutsideThePrefixIsPermissionDenied) {
  Client c = make_client(m_etcd.endpoints(), "alice", "alice-pw");
  auto p = c.put(put_req("other/a", "v"), soon());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind, ErrorKind::auth) << p.error().message;
  EXPECT_NE(p.error().message.find("permission denied"), std::string::npos)
      << p.error().message;
}

TEST_F(EtcdAuthTest, WrongPasswordIsAnAuthErrorWithoutThePassword) {
  Client c = make_client(m_etcd.endpoints(), "alice", "wrong-secret");
  auto p = c.put(put_req("godislock/a", "v"), soon());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().kind, ErrorKind::auth) << p.error().message;
  EXPECT_NE(p.error().message.find("alice"), std::string::npos);
  EXPECT_EQ(p.error().message.find("wrong-secret"), std::string::npos);
}

TEST_F(EtcdAuthTest, NoCredentialsIsAnAuthError) {
  Client c = make_client(m_etcd.endpoints());
  RangeRequest r;
  r.key = "godislock/a";
  auto got = c.range(r, soon());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().kind, ErrorKind::auth) << got.error().message;
}

TEST_F(EtcdAuthTest, InvalidatedTokenIsRenewedOnce) {
  Client c = make_client(m_etcd.endpoints(), "alice", "alice-pw");
  ASSERT_TRUE(c.put(put_req("godislock/a", "1"), soon()).ok());
  // Setting a user's password (here to the same one) invalidates the
  // user's simple tokens, as their expiry (--auth-token-ttl) would.
  ASSERT_TRUE(
      m_etcd.etcdctl("user passwd alice --interactive=false", "alice-pw"));
  auto p = c.put(put_req("godislock/a", "2"), Deadline::after(seconds(10)));
  ASSERT_TRUE(p.ok()) << p.error().message;
  // authenticate, put, put refused (invalid token), authenticate, put.
  EXPECT_EQ(c.stats().requests, 5u);
}

class EtcdClusterTest : public ::testing::Test {
 protected:
  EtcdCluster m_etcd{3};
};

TEST_F(EtcdClusterTest, CallsContinueWhenTheLeaderIsKilled) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  ClientOptions o;
  o.endpoints = m_etcd.endpoints();
  o.attempt_timeout = seconds(2);
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  auto leader = m_etcd.leader();
  ASSERT_TRUE(leader.has_value());
  // Start on the leader, so that killing it breaks the kept connection.
  ClientOptions lo = o;
  lo.endpoints = {m_etcd.endpoint(*leader)};
  for (size_t i = 0; i < m_etcd.size(); ++i) {
    if (i != *leader) {
      lo.endpoints.push_back(m_etcd.endpoint(i));
    }
  }
  auto lc = Client::create(lo);
  ASSERT_TRUE(lc.ok());
  ASSERT_TRUE(lc->put(put_req("k", "before"), soon()).ok());

  m_etcd.kill(*leader);
  // While the others elect a new leader, a member may answer "no leader"
  // (unavailable) or time out an attempt; the client moves on until its
  // deadline.
  auto p = lc->put(put_req("k", "after"), Deadline::after(seconds(20)));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_NE("http://" + lc->current_endpoint(), m_etcd.endpoint(*leader));
  RangeRequest r;
  r.key = "k";
  auto got = lc->range(r, soon());
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "after");

  // The killed member comes back on its data and catches up.
  ASSERT_TRUE(m_etcd.restart(*leader));
  Client back = make_client({m_etcd.endpoint(*leader)});
  auto seen = back.range(r, Deadline::after(seconds(10)));
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  ASSERT_EQ(seen->kvs.size(), 1u);
  EXPECT_EQ(seen->kvs[0].value, "after");
}

TEST_F(EtcdClusterTest, AttemptTimeoutSkipsAStoppedMember) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  auto leader = m_etcd.leader();
  ASSERT_TRUE(leader.has_value());
  size_t stopped = (*leader + 1) % m_etcd.size();  // a follower
  ClientOptions o;
  o.endpoints = {m_etcd.endpoint(stopped)};
  for (size_t i = 0; i < m_etcd.size(); ++i) {
    if (i != stopped) {
      o.endpoints.push_back(m_etcd.endpoint(i));
    }
  }
  o.attempt_timeout = milliseconds(500);
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  m_etcd.pause(stopped);
  auto p = c->put(put_req("k", "v"), Deadline::after(seconds(10)));
  m_etcd.resume(stopped);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_NE("http://" + c->current_endpoint(), m_etcd.endpoint(stopped));
}

// The waiter's liveness checks of its watch stream's member: status_at()
// (no lease to renew) and lease_keep_alive_at() ask that member only, and
// leave the endpoint the next call starts at alone; a stopped member fails
// them within the attempt timeout.
TEST_F(EtcdClusterTest, StatusAtAndKeepAliveAtAskTheNamedMemberOnly) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  size_t n = m_etcd.size();
  std::string last = m_etcd.endpoint(n - 1).substr(7);  // no "http://"
  ClientOptions o;
  o.attempt_timeout = milliseconds(500);
  o.endpoints = m_etcd.endpoints();
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  auto g = c->lease_grant(seconds(30), soon());
  ASSERT_TRUE(g.ok()) << g.error().message;
  std::string first = c->current_endpoint();
  ASSERT_NE(first, last);
  auto st = c->status_at(last, soon());
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto k = c->lease_keep_alive_at(last, g->id, soon());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->id, g->id);
  EXPECT_GT(k->ttl_s, 0);
  EXPECT_EQ(c->current_endpoint(), first);
  auto unknown = c->status_at("127.0.0.1:1", soon());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, ErrorKind::config);
  m_etcd.pause(n - 1);
  auto stopped = c->status_at(last, Deadline::after(seconds(10)));
  auto not_renewed =
      c->lease_keep_alive_at(last, g->id, Deadline::after(seconds(10)));
  m_etcd.resume(n - 1);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.error().kind, ErrorKind::timeout)
      << stopped.error().message;
  ASSERT_FALSE(not_renewed.ok());
  EXPECT_EQ(not_renewed.error().kind, ErrorKind::timeout)
      << not_renewed.error().message;
  EXPECT_EQ(c->current_endpoint(), first);
}

// A member left without a leader (here: its two peers stopped, as a member
// cut off from them by the network is) ends a watch stream on it with "no
// leader": the gateway passes the stream's hasleader header on as gRPC
// metadata, and etcd cancels such streams after three election timeouts
// without a leader. Without the header the stream would stay open and
// silent. A keep-alive on that member fails too.
TEST_F(EtcdClusterTest, AWatchEndsWhenItsMemberHasNoLeader) {
  GODISLOCK_REQUIRE_ETCD_SERVER(m_etcd);
  ClientOptions o;
  o.attempt_timeout = milliseconds(500);
  o.endpoints = {m_etcd.endpoint(0)};
  auto c = Client::create(o);
  ASSERT_TRUE(c.ok());
  auto g = c->lease_grant(seconds(60), soon());
  ASSERT_TRUE(g.ok()) << g.error().message;
  WatchRequest w;
  w.key = "cut/";
  w.range_end = prefix_end("cut/");
  auto watch = c->watch(w, soon());
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  m_etcd.pause(1);
  m_etcd.pause(2);
  // Bounded generously: an election timeout (1 s by default) to notice,
  // three more to cancel, on a loaded machine.
  auto ended = watch->next(Deadline::after(seconds(60)));
  auto k = c->lease_keep_alive_at(watch->endpoint(), g->id,
                                  Deadline::after(seconds(10)));
  m_etcd.resume(1);
  m_etcd.resume(2);
  ASSERT_FALSE(ended.ok()) << "the stream reported an event";
  EXPECT_EQ(ended.error().kind, ErrorKind::busy) << ended.error().message;
  EXPECT_NE(ended.error().message.find("no leader"), std::string::npos)
      << ended.error().message;
  ASSERT_FALSE(k.ok());
  EXPECT_TRUE(k.error().kind == ErrorKind::timeout ||
              k.error().kind == ErrorKind::busy)
      << k.error().message;
}

}  // namespace
}  // namespace godislock::etcd
