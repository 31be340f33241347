// SPDX-License-Identifier: MIT
#include "util/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace {

using godislock::util::Error;
using godislock::util::ErrorKind;
using godislock::util::ok_status;
using godislock::util::Result;
using godislock::util::Status;
using godislock::util::Unit;

Result<int> half(int x) {
  if (x % 2 != 0) {
    return Error{ErrorKind::config, "odd: " + std::to_string(x)};
  }
  return x / 2;
}

Status check_positive(int x) {
  if (x <= 0) {
    return Error{ErrorKind::io, "not positive"};
  }
  return ok_status();
}

int g_steps = 0;

// Uses GODISLOCK_TRY on a Status and on a Result<int>.
Result<std::string> pipeline(int x) {
  g_steps = 0;
  GODISLOCK_TRY(check_positive(x));
  ++g_steps;
  GODISLOCK_TRY(half(x));
  ++g_steps;
  return std::string("ok ") + std::to_string(x);
}

int g_calls = 0;
Status counted() {
  ++g_calls;
  return ok_status();
}

Status try_once() {
  GODISLOCK_TRY(counted());
  return ok_status();
}

TEST(Result, HoldsAValue) {
  Result<int> r = 42;
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  *r = 7;
  EXPECT_EQ(r.value(), 7);
  const Result<int>& cr = r;
  EXPECT_EQ(cr.value(), 7);
}

TEST(Result, HoldsAnError) {
  Result<int> r = Error{ErrorKind::timeout, "too slow"};
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().kind, ErrorKind::timeout);
  EXPECT_EQ(r.error().message, "too slow");
}

TEST(Result, ArrowAccessesMembers) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
  r->push_back('d');
  EXPECT_EQ(*r, "abcd");
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r.value());
  EXPECT_EQ(*p, 5);
}

TEST(Result, StatusOkAndError) {
  Status s = ok_status();
  EXPECT_TRUE(s.ok());
  Status e = Error{ErrorKind::auth, "denied"};
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.error().kind, ErrorKind::auth);
  Status u = Unit{};
  EXPECT_TRUE(u.ok());
}

TEST(Result, TryPassesSuccessOn) {
  auto r = pipeline(4);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "ok 4");
  EXPECT_EQ(g_steps, 2);
}

TEST(Result, TryReturnsTheFirstError) {
  auto r = pipeline(-2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::io);
  EXPECT_EQ(r.error().message, "not positive");
  EXPECT_EQ(g_steps, 0);

  auto r2 = pipeline(3);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().kind, ErrorKind::config);
  EXPECT_EQ(r2.error().message, "odd: 3");
  EXPECT_EQ(g_steps, 1);
}

TEST(Result, TryEvaluatesItsExpressionOnce) {
  g_calls = 0;
  EXPECT_TRUE(try_once().ok());
  EXPECT_EQ(g_calls, 1);
}

TEST(Result, TryWorksAsASingleStatement) {
  // The macro is one statement, so it nests in an unbraced-if safe way.
  auto f = [](bool fail) -> Status {
    if (fail) {
      GODISLOCK_TRY(Status(Error{ErrorKind::busy, "b"}));
    } else {
      GODISLOCK_TRY(ok_status());
    }
    return Error{ErrorKind::server, "reached the end"};
  };
  EXPECT_EQ(f(true).error().kind, ErrorKind::busy);
  EXPECT_EQ(f(false).error().kind, ErrorKind::server);
}

}  // namespace
