// SPDX-License-Identifier: MIT
// The typed calls and replies of the Redis backend's scripts, without a
// server: arguments in the order the scripts read them, replies decoded
// with every element's type checked.
#include "backend/redis_scripts.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace godislock::backend {
namespace {

using redis::Reply;
using util::ErrorKind;

Reply integer(long long v) {
  Reply r;
  r.type = Reply::Type::integer;
  r.integer = v;
  return r;
}

Reply text(const std::string& s) {
  Reply r;
  r.type = Reply::Type::string;
  r.str = s;
  return r;
}

Reply array(std::vector<Reply> elements) {
  Reply r;
  r.type = Reply::Type::array;
  r.elements = std::move(elements);
  return r;
}

const RedisKeys k_keys = redis_keys("t:", "job");

TEST(RedisScripts, AcquireCallPutsKeysAndArgumentsInTheScriptsOrder) {
  Holder h{"host", "42", "user", std::string(300, 'c')};
  AcquireArgs a{"tok", Millis(1500), Backend::Mode::queue, 3, false, &h, 7};
  ScriptCall call = acquire_call(k_keys, a);
  EXPECT_STREQ(call.script->name, "acquire");
  EXPECT_EQ(call.keys, (std::vector<std::string>{"t:{job}", "t:{job}:fence",
                                                 "t:{job}:queue"}));
  ASSERT_EQ(call.args.size(), 12u);
  EXPECT_EQ(call.args[0], "tok");
  EXPECT_EQ(call.args[1], "1500");
  EXPECT_EQ(call.args[2], "queue");
  EXPECT_EQ(call.args[4], "3");
  EXPECT_EQ(call.args[5], "0");
  EXPECT_EQ(call.args[9].size(), k_holder_cmd_cap);
  EXPECT_EQ(call.args[11], "7");
}

TEST(RedisScripts, AcquireRepliesDecode) {
  auto got =
      decode_acquire(array({integer(1), integer(42), integer(3)}), k_keys);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->state, Outcome::acquired);
  EXPECT_EQ(got->fence, 42u);
  EXPECT_EQ(got->slot, 3u);
  got = decode_acquire(array({integer(0), integer(-2), integer(250)}), k_keys);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->state, Outcome::queued);
  EXPECT_EQ(got->head_lapses, Millis(250));
  got = decode_acquire(
      array({integer(-1), text("list"), text("t:{job}:queue")}), k_keys);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->state, Outcome::wrong_type);
  EXPECT_EQ(got->detail_key, "t:{job}:queue");
}

// A reply of the wrong shape is a protocol error naming the element, never
// a value guessed from it (a string read as fence 0, say).
TEST(RedisScripts, MalformedRepliesAreProtocolErrors) {
  auto got = decode_acquire(array({integer(1), text("42")}), k_keys);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::protocol);
  EXPECT_EQ(got.error().message,
            "acquire script: reply element 2 is not an integer");
  EXPECT_FALSE(decode_acquire(integer(1), k_keys));
  EXPECT_FALSE(decode_acquire(array({integer(0)}), k_keys));
  EXPECT_FALSE(decode_token_check(text("1"), "refresh"));
  EXPECT_FALSE(decode_token_check(array({integer(1)}), "release"));
  auto st = decode_status(array({text("exclusive"), integer(1), integer(9),
                                 integer(0), array({integer(100)})}));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().kind, ErrorKind::protocol);
}

TEST(RedisScripts, TokenCheckAndForeignKeys) {
  EXPECT_EQ(decode_token_check(integer(1), "refresh").value(), true);
  EXPECT_EQ(decode_token_check(integer(0), "refresh").value(), false);
  auto foreign = decode_token_check(
      array({integer(-1), text("hash"), text("t:{job}:limit")}), "release");
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().kind, ErrorKind::foreign);
  EXPECT_EQ(foreign.error().message,
            "key 't:{job}:limit' holds a hash, not a lock");
}

TEST(RedisScripts, StatusRepliesDecode) {
  auto st = decode_status(
      array({text("limit"), integer(3), integer(77), integer(2),
             array({text("1500"), text("h"), text("1"), text("u"), text("c"),
                    integer(20), integer(76), integer(2)})}));
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->kind, LockStatus::Kind::counted);
  EXPECT_EQ(st->limit, 3u);
  EXPECT_EQ(st->queued, 2u);
  ASSERT_EQ(st->holders.size(), 1u);
  EXPECT_EQ(st->holders[0].ttl, Millis(1500));
  EXPECT_EQ(st->holders[0].slot, 2u);
  auto foreign =
      decode_status(array({text("foreign"), text("no-ttl"), text("t:{job}")}));
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->kind, LockStatus::Kind::foreign);
}

}  // namespace
}  // namespace godislock::backend
