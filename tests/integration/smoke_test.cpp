// SPDX-License-Identifier: MIT
// The shared test fixtures themselves (tests/support/).
#include "support/backend_fixture.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <string>

namespace godislock::test {
namespace {

TEST(RedisServerFixture, StartsAndAnswers) {
  RedisServer server;
  GODISLOCK_REQUIRE_SERVER(server);
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"SET", "k", "v"}), "OK");
  EXPECT_EQ(server.cli({"GET", "k"}), "v");
}

using BackendFixture = BackendTest;

TEST_F(BackendFixture, HoldTakesTheLockOnTheServer) {
  const std::string token(32, 'a');
  auto b = hold(token, std::chrono::milliseconds(5000));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(server.cli({"GET", "t:{job}"}), token);
  long long ttl = as_integer(server.cli({"PTTL", "t:{job}"}));
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 5000);
  EXPECT_EQ(as_integer(server.cli({"GET", "t:{job}"})), LLONG_MIN);
  EXPECT_GE(info_field(server, "clients", "connected_clients"), 1);
  EXPECT_EQ(info_field(server, "clients", "no_such_field"), -1);
}

TEST_F(BackendFixture, ResumeOnExitResumesAStoppedServer) {
  {
    ResumeOnExit resume{server};
    server.pause();
  }
  EXPECT_EQ(server.cli({"PING"}), "PONG");
}

}  // namespace
}  // namespace godislock::test
