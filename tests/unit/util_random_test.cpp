// SPDX-License-Identifier: MIT
#include "util/random.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

using godislock::util::random_token;

// True when s is 32 lowercase hex digits (std::regex trips a GCC 12
// -Wmaybe-uninitialized false positive in the sanitizer build).
bool is_token(const std::string& s) {
  return s.size() == 32 &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST(RandomToken, Is32LowercaseHexDigits) {
  auto t = random_token();
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->size(), 32u);
  EXPECT_TRUE(is_token(*t)) << *t;
}

TEST(RandomToken, TwoCallsDiffer) {
  auto a = random_token();
  auto b = random_token();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
}

TEST(RandomToken, ManyCallsAreDistinctAndUseAllDigits) {
  std::set<std::string> seen;
  std::set<char> digits;
  for (int i = 0; i < 200; ++i) {
    auto t = random_token();
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(is_token(*t)) << *t;
    seen.insert(*t);
    digits.insert(t->begin(), t->end());
  }
  EXPECT_EQ(seen.size(), 200u);
  // 6400 random hex digits: each of the 16 appears (p(miss) ~ 1e-177).
  EXPECT_EQ(digits.size(), 16u);
}

}  // namespace
