// SPDX-License-Identifier: MIT
// net::connect over several addresses, and redis::Connection opened on
// addresses resolved beforehand, against a real redis-server.
#include "net/socket.hpp"

#include "net/resolve.hpp"
#include "redis/connection.hpp"
#include "support/redis_server.hpp"
#include "support/time.hpp"
#include "util/fd.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

namespace godislock::net {
namespace {

using test::soon;
using util::ErrorKind;

// A loopback port that refuses connections: bound, not listening, and kept
// bound so that nobody else takes it meanwhile.
class RefusingPort {
 public:
  RefusingPort() : m_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(m_fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(m_fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      m_port = ntohs(a.sin_port);
    }
  }
  uint16_t port() const { return m_port; }

 private:
  util::Fd m_fd;
  uint16_t m_port = 0;
};

Address loopback(uint16_t port) {
  auto a = parse_ip_literal("127.0.0.1", port);
  return a.value();
}

TEST(NetSocket, TriesEachAddressInOrder) {
  test::RedisServer server;
  GODISLOCK_REQUIRE_SERVER(server);
  RefusingPort refusing;
  ASSERT_NE(refusing.port(), 0);
  std::vector<Address> addresses{
      loopback(refusing.port()),
      loopback(static_cast<uint16_t>(server.port()))};
  auto fd = connect(addresses, soon());
  ASSERT_TRUE(fd) << fd.error().message;
  EXPECT_TRUE(fd->valid());
}

TEST(NetSocket, NamesEveryAddressWhenAllFail) {
  RefusingPort a;
  RefusingPort b;
  ASSERT_NE(a.port(), 0);
  ASSERT_NE(b.port(), 0);
  auto fd = connect({loopback(a.port()), loopback(b.port())}, soon());
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().kind, ErrorKind::io);
  EXPECT_EQ(fd.error().message,
            "127.0.0.1:" + std::to_string(a.port()) +
                ": Connection refused, 127.0.0.1:" + std::to_string(b.port()) +
                ": Connection refused");
}

TEST(NetSocket, OneAddressKeepsThePlainError) {
  RefusingPort a;
  ASSERT_NE(a.port(), 0);
  auto fd = connect({loopback(a.port())}, soon());
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().message, "Connection refused");
}

TEST(NetSocket, ConnectionOpensOnResolvedAddresses) {
  test::RedisServer server;
  GODISLOCK_REQUIRE_SERVER(server);
  // The endpoint names a host that cannot be resolved: the connection must
  // use the addresses it is given and never look the name up.
  config::Endpoint ep = server.endpoint();
  ep.host = "unresolvable.invalid";
  auto c = redis::Connection::open(
      ep, {loopback(static_cast<uint16_t>(server.port()))}, soon());
  ASSERT_TRUE(c) << c.error().message;
  auto r = c->command({"PING"}, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->str, "PONG");
}

TEST(NetSocket, ResolveNamesTheEndpoint) {
  config::Endpoint ep;
  ep.kind = config::Endpoint::Kind::unix_socket;
  ep.path = "/" + std::string(200, 'x');
  auto r = redis::resolve(ep, soon());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "cannot connect to unix://" + ep.path + ": socket path too long");
}

}  // namespace
}  // namespace godislock::net
