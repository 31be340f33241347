// SPDX-License-Identifier: MIT
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

TEST(RedisServerFixture, StartsAndAnswers) {
  godislock::test::RedisServer server;
  GODISLOCK_REQUIRE_SERVER(server);
  EXPECT_EQ(server.cli({"PING"}), "PONG");
  EXPECT_EQ(server.cli({"SET", "k", "v"}), "OK");
  EXPECT_EQ(server.cli({"GET", "k"}), "v");
}
