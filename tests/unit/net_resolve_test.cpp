// SPDX-License-Identifier: MIT
// net::resolve without a network: IP literals never reach the resolver,
// "localhost" comes from the hosts file.
#include "net/resolve.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <string>

namespace godislock::net {
namespace {

using namespace std::chrono_literals;
using util::Clock;
using util::Deadline;
using util::ErrorKind;

// A deadline already in the past: a call that needed a lookup would time
// out at once, so an answer proves that none was made.
Deadline expired() { return Deadline::at(Clock::now() - 1s); }

uint16_t port_of(const Address& a) {
  if (a.family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_port);
}

bool is_loopback(const Address& a) {
  if (a.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a.storage);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (a.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a.storage);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) != 0;
  }
  return false;
}

TEST(NetResolve, Ipv4LiteralNeedsNoLookup) {
  auto r = resolve("127.0.0.1", 6379, expired());
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const Address& a = r->front();
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.length, sizeof(sockaddr_in));
  EXPECT_EQ(port_of(a), 6379);
  EXPECT_EQ(a.to_string(), "127.0.0.1:6379");
}

TEST(NetResolve, Ipv6LiteralNeedsNoLookup) {
  auto r = resolve("::1", 7000, expired());
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const Address& a = r->front();
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.length, sizeof(sockaddr_in6));
  EXPECT_EQ(port_of(a), 7000);
  EXPECT_EQ(a.to_string(), "[::1]:7000");

  auto full = resolve("2001:db8::42", 1, expired());
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->front().to_string(), "[2001:db8::42]:1");
}

TEST(NetResolve, ParseIpLiteralRefusesNames) {
  EXPECT_TRUE(parse_ip_literal("10.1.2.3", 1).has_value());
  EXPECT_TRUE(parse_ip_literal("fe80::1", 1).has_value());
  EXPECT_FALSE(parse_ip_literal("localhost", 1).has_value());
  EXPECT_FALSE(parse_ip_literal("[::1]", 1).has_value());
  EXPECT_FALSE(parse_ip_literal("", 1).has_value());
  EXPECT_FALSE(parse_ip_literal("1.2.3.4.example", 1).has_value());
}

TEST(NetResolve, LocalhostResolvesToLoopback) {
  auto start = Clock::now();
  auto r = resolve("localhost", 6380, Deadline::after(5s));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_FALSE(r->empty());
  for (const Address& a : *r) {
    EXPECT_TRUE(is_loopback(a)) << a.to_string();
    EXPECT_EQ(port_of(a), 6380) << a.to_string();
  }
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(NetResolve, UnixAddress) {
  auto a = unix_address("/tmp/godislock-test.sock");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->family(), AF_UNIX);
  EXPECT_EQ(a->to_string(), "/tmp/godislock-test.sock");

  auto too_long = unix_address("/" + std::string(200, 'x'));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().kind, ErrorKind::io);
  EXPECT_EQ(too_long.error().message, "socket path too long");
}

}  // namespace
}  // namespace godislock::net
