// SPDX-License-Identifier: MIT
#include "util/number.hpp"

#include <gtest/gtest.h>

namespace {

using godislock::util::parse_unsigned;

TEST(ParseUnsigned, TakesDecimalDigits) {
  EXPECT_EQ(parse_unsigned("0"), 0u);
  EXPECT_EQ(parse_unsigned("42"), 42u);
  EXPECT_EQ(parse_unsigned("18446744073709551615"), 18446744073709551615u);
}

// strtoull and scanf's %llu read "-1" as 2^64-1 and skip blanks: a fence or
// a sequence number must be exactly digits.
TEST(ParseUnsigned, RefusesSignsBlanksJunkAndOverflow) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1a", "0x10",
                          "18446744073709551616", "1.0", "-0"}) {
    EXPECT_FALSE(parse_unsigned(bad).has_value()) << "'" << bad << "'";
  }
}

}  // namespace
