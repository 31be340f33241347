// SPDX-License-Identifier: MIT
// redis::Connection and the Redis backend over TLS against a real
// redis-server: replies larger than a TLS record (bytes left inside the
// session, where poll cannot see them), pipelined replies, the
// subscriber's idle waits and their interruption, and
// acquire/refresh/release through a backend and its clone.
#include "backend/redis_backend.hpp"
#include "redis/connection.hpp"
#include "support/redis_server.hpp"
#include "support/time.hpp"
#include "util/fd.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace godislock::redis {
namespace {

using namespace std::chrono_literals;
using test::RedisServer;
using test::soon;
using test::tls_certs;
using util::ErrorKind;

class RedisTlsTest : public testing::Test {
 protected:
  void SetUp() override {
    if (tls_certs().empty()) {
      GTEST_SKIP() << "openssl could not make certificates";
    }
    GODISLOCK_REQUIRE_SERVER(server);
  }

  config::Endpoint endpoint() const {
    config::Endpoint ep = server.endpoint();
    ep.host = "localhost";
    return ep;
  }

  RedisServer server{RedisServer::Tls{}};
};

// 1 MiB of a pattern that shows a lost, doubled or reordered chunk.
std::string big_value() {
  std::string v;
  v.reserve(1 << 20);
  for (int i = 0; v.size() < (1u << 20); ++i) {
    v += fmt::format("{:08d}", i);
  }
  v.resize(1 << 20);
  return v;
}

TEST_F(RedisTlsTest, LargeValuesBothWays) {
  auto c = Connection::open(endpoint(), soon());
  ASSERT_TRUE(c) << c.error().message;
  const std::string v = big_value();
  auto set = c->command({"SET", "big", v}, soon());
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->str, "OK");
  auto get = c->command({"GET", "big"}, soon());
  ASSERT_TRUE(get) << get.error().message;
  EXPECT_EQ(get->str.size(), v.size());
  EXPECT_TRUE(get->str == v);
}

TEST_F(RedisTlsTest, PipelinedRepliesAreReadFromTheSession) {
  auto c = Connection::open(endpoint(), soon());
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->command({"SET", "k", "v"}, soon()));
  // Three small replies arrive in one TLS record or a few: the second and
  // third wait decrypted inside the session after the first is parsed.
  std::string batch;
  for (int i = 0; i < 3; ++i) {
    batch += encode_command({"GET", "k"});
  }
  batch += encode_command({"GET", "big"});
  ASSERT_TRUE(c->send_encoded(batch, soon()));
  for (int i = 0; i < 3; ++i) {
    auto r = c->read_reply(soon());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->str, "v");
  }
  auto nil = c->read_reply(soon());
  ASSERT_TRUE(nil) << nil.error().message;
  EXPECT_EQ(nil->type, Reply::Type::nil);
  // And after a reply of many records, the next command still works.
  ASSERT_TRUE(c->command({"SET", "big", big_value()}, soon()));
  ASSERT_TRUE(c->send_encoded(
      encode_command({"GET", "big"}) + encode_command({"PING"}), soon()));
  auto big = c->read_reply(soon());
  ASSERT_TRUE(big) << big.error().message;
  EXPECT_EQ(big->str.size(), 1u << 20);
  auto pong = c->read_reply(soon());
  ASSERT_TRUE(pong) << pong.error().message;
  EXPECT_EQ(pong->str, "PONG");
}

TEST_F(RedisTlsTest, SubscriberIdlesAndIsInterrupted) {
  backend::Settings s;
  s.endpoint = endpoint();
  s.prefix = "t:";
  s.name = "job";
  auto b = backend::open_redis(s, soon());
  ASSERT_TRUE(b) << b.error().message;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  util::Fd rd(fds[0]);
  util::Fd wr(fds[1]);
  (*b)->set_interrupt_fd(rd.get());
  auto w = (*b)->watch("aaaa", /*fair=*/false, soon());
  ASSERT_TRUE(w) << w.error().message;
  // Nothing arrives: an idle wait ends at its deadline, the subscription
  // intact.
  auto idle = (*w)->wait(util::Deadline::after(300ms));
  ASSERT_TRUE(idle) << idle.error().message;
  EXPECT_FALSE(idle->arrived);
  // A release announcement wakes it.
  EXPECT_EQ(server.cli({"PUBLISH", "t:{job}:released", "x"}), "(integer) 1");
  auto woke = (*w)->wait(soon());
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_TRUE(woke->arrived);
  // A signal (the interrupt fd readable) cuts a long wait short.
  ASSERT_EQ(::write(wr.get(), "x", 1), 1);
  auto cut = (*w)->wait(util::Deadline::after(1h));
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().kind, ErrorKind::interrupted);
  // Still subscribed: once the signal is taken, the next message arrives.
  char byte;
  ASSERT_EQ(::read(rd.get(), &byte, 1), 1);
  EXPECT_EQ(server.cli({"PUBLISH", "t:{job}:released", "y"}), "(integer) 1");
  auto again = (*w)->wait(soon());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->arrived);
}

TEST_F(RedisTlsTest, AcquireRefreshReleaseThroughTheBackendAndItsClone) {
  backend::Settings s;
  s.endpoint = endpoint();
  s.prefix = "t:";
  s.name = "job";
  auto b = backend::open_redis(s, soon());
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ((*b)->describe(),
            fmt::format("rediss://localhost:{}", server.port()));
  const std::string token = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  auto a = (*b)->acquire(token, 5000ms, backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, backend::Outcome::acquired);
  EXPECT_EQ(server.cli({"GET", "t:{job}"}), token);
  // The refresher's clone: its own TLS connection, the same context.
  auto refresher = (*b)->clone();
  auto r = refresher->refresh(token, 60000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  auto ttl = server.cli({"PTTL", "t:{job}"});
  EXPECT_GT(std::stoll(ttl.substr(ttl.find(' ') + 1)), 5000);
  auto rel = (*b)->release(token, soon());
  ASSERT_TRUE(rel) << rel.error().message;
  EXPECT_TRUE(*rel);
  EXPECT_EQ(server.cli({"GET", "t:{job}"}), "(nil)");
}

TEST_F(RedisTlsTest, AuthOverTls) {
  RedisServer locked(RedisServer::Tls{}, {"--requirepass", "s3cret"});
  GODISLOCK_REQUIRE_SERVER(locked);
  config::Endpoint ep = locked.endpoint();
  ep.password = "s3cret";
  auto c = Connection::open(ep, soon());
  ASSERT_TRUE(c) << c.error().message;
  auto r = c->command({"PING"}, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->str, "PONG");
  ep.password = "wrong";
  auto bad = Connection::open(ep, soon());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::auth);
}

}  // namespace
}  // namespace godislock::redis
