// SPDX-License-Identifier: MIT
#include "config/duration.hpp"

#include <gtest/gtest.h>

using godislock::config::parse_duration;
using std::chrono::milliseconds;

TEST(Duration, ParsesUnitsAndBareSeconds) {
  std::string why;
  EXPECT_EQ(parse_duration("250ms", &why), milliseconds(250));
  EXPECT_EQ(parse_duration("30s", &why), milliseconds(30000));
  EXPECT_EQ(parse_duration("1h30m", &why), milliseconds(5400000));
  EXPECT_EQ(parse_duration("0.5", &why), milliseconds(500));
}
