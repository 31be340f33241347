// SPDX-License-Identifier: MIT
#include "config/duration.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using godislock::config::format_duration;
using godislock::config::k_max_duration;
using godislock::config::parse_duration;
using std::chrono::milliseconds;

// Parses text that must be valid; fails the test (with the reason) if not.
milliseconds parse_ok(const std::string& text) {
  std::string why;
  auto d = parse_duration(text, &why);
  EXPECT_TRUE(d.has_value()) << "'" << text << "' rejected: " << why;
  return d.value_or(milliseconds(-1));
}

// Parses text that must be rejected; returns the reason ("" if accepted).
std::string parse_bad(const std::string& text) {
  std::string why;
  auto d = parse_duration(text, &why);
  EXPECT_FALSE(d.has_value()) << "'" << text << "' accepted as "
                              << d.value_or(milliseconds(0)).count() << " ms";
  EXPECT_FALSE(why.empty()) << "no reason given for '" << text << "'";
  return why;
}

TEST(Duration, ParsesUnitsAndBareSeconds) {
  std::string why;
  EXPECT_EQ(parse_duration("250ms", &why), milliseconds(250));
  EXPECT_EQ(parse_duration("30s", &why), milliseconds(30000));
  EXPECT_EQ(parse_duration("1h30m", &why), milliseconds(5400000));
  EXPECT_EQ(parse_duration("0.5", &why), milliseconds(500));
}

TEST(Duration, EveryUnit) {
  EXPECT_EQ(parse_ok("1ms"), milliseconds(1));
  EXPECT_EQ(parse_ok("7ms"), milliseconds(7));
  EXPECT_EQ(parse_ok("1s"), milliseconds(1000));
  EXPECT_EQ(parse_ok("1m"), milliseconds(60000));
  EXPECT_EQ(parse_ok("5m"), milliseconds(300000));
  EXPECT_EQ(parse_ok("1h"), milliseconds(3600000));
  EXPECT_EQ(parse_ok("24h"), milliseconds(86400000));
}

TEST(Duration, Composites) {
  EXPECT_EQ(parse_ok("1h30m"), milliseconds(5400000));
  EXPECT_EQ(parse_ok("1m30.5s"), milliseconds(90500));
  EXPECT_EQ(parse_ok("1h1m1s1ms"), milliseconds(3661001));
  EXPECT_EQ(parse_ok("2m500ms"), milliseconds(120500));
  EXPECT_EQ(parse_ok("1.5h"), milliseconds(5400000));
}

TEST(Duration, BareNumbersAreSeconds) {
  EXPECT_EQ(parse_ok("0"), milliseconds(0));
  EXPECT_EQ(parse_ok("5"), milliseconds(5000));
  EXPECT_EQ(parse_ok("0.5"), milliseconds(500));
  EXPECT_EQ(parse_ok("2.25"), milliseconds(2250));
  EXPECT_EQ(parse_ok(".5"), milliseconds(500));
  EXPECT_EQ(parse_ok("0.001"), milliseconds(1));
}

TEST(Duration, FractionsOfAMillisecondRoundHalfUp) {
  EXPECT_EQ(parse_ok("1.5ms"), milliseconds(2));
  EXPECT_EQ(parse_ok("2.5ms"), milliseconds(3));
  EXPECT_EQ(parse_ok("2.49ms"), milliseconds(2));
  EXPECT_EQ(parse_ok("0.4ms"), milliseconds(0));
  EXPECT_EQ(parse_ok("0.0004"), milliseconds(0));
  EXPECT_EQ(parse_ok("0.0005"), milliseconds(1));
  EXPECT_EQ(parse_ok("1.0005s"), milliseconds(1001));
}

TEST(Duration, Zero) {
  EXPECT_EQ(parse_ok("0"), milliseconds(0));
  EXPECT_EQ(parse_ok("0s"), milliseconds(0));
  EXPECT_EQ(parse_ok("0ms"), milliseconds(0));
  EXPECT_EQ(parse_ok("0h0m"), milliseconds(0));
  EXPECT_EQ(parse_ok("0.0"), milliseconds(0));
}

TEST(Duration, RoundsToNearestMillisecond) {
  EXPECT_EQ(parse_ok("0.4ms"), milliseconds(0));
  EXPECT_EQ(parse_ok("0.6ms"), milliseconds(1));
  EXPECT_EQ(parse_ok("1.4ms"), milliseconds(1));
  EXPECT_EQ(parse_ok("1.5ms"), milliseconds(2));
  EXPECT_EQ(parse_ok("1.9999ms"), milliseconds(2));
  EXPECT_EQ(parse_ok("1.0004s"), milliseconds(1000));
  EXPECT_EQ(parse_ok("1.0006s"), milliseconds(1001));
  EXPECT_EQ(parse_ok("0.0014"), milliseconds(1));
  EXPECT_EQ(parse_ok("0.0016"), milliseconds(2));
  EXPECT_EQ(parse_ok("0.0001"), milliseconds(0));
}

TEST(Duration, LargestAcceptedValue) {
  EXPECT_EQ(parse_ok("100000h"), k_max_duration);
  parse_bad("100000h1ms");
  parse_bad("100001h");
}

TEST(Duration, RejectsEmpty) {
  std::string why = parse_bad("");
  EXPECT_NE(why.find("empty"), std::string::npos) << why;
}

TEST(Duration, RejectsNegative) {
  std::string why = parse_bad("-1s");
  EXPECT_NE(why.find("negative"), std::string::npos) << why;
  parse_bad("-0");
}

TEST(Duration, RejectsUnknownUnit) {
  std::string why = parse_bad("30x");
  EXPECT_NE(why.find("unit"), std::string::npos) << why;
  parse_bad("5sec");
  parse_bad("5 s");
  parse_bad("1d");
  parse_bad("5S");
}

TEST(Duration, RejectsMissingUnitAfterFirstComponent) {
  std::string why = parse_bad("1h30");
  EXPECT_NE(why.find("missing unit"), std::string::npos) << why;
  parse_bad("1m30.5");
}

TEST(Duration, RejectsUnitWithoutNumber) {
  parse_bad("s");
  parse_bad("ms");
  parse_bad("h1");
  parse_bad("1hm");
}

TEST(Duration, RejectsMalformedNumbers) {
  parse_bad("1..5s");
  parse_bad(".");
  parse_bad("..");
  parse_bad(".s");
  parse_bad("1.2.3");
  parse_bad(" 5s");
  parse_bad("5s ");
  parse_bad("+5s");
}

TEST(Duration, RejectsOverflow) {
  std::string why = parse_bad("99999999999999999h");
  EXPECT_NE(why.find("range"), std::string::npos) << why;
  parse_bad("99999999999999999999999999999999ms");
  parse_bad("9999999999999s");
}

TEST(Duration, RejectsExponentNotation) {
  parse_bad("1e3");
  parse_bad("1E3");
  parse_bad("1e3s");
}

TEST(Duration, AcceptsNullReasonPointer) {
  EXPECT_FALSE(parse_duration("30x", nullptr).has_value());
  EXPECT_EQ(parse_duration("30s", nullptr), milliseconds(30000));
}

TEST(Duration, FormatsCanonically) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(milliseconds(1000)), "1s");
  EXPECT_EQ(format_duration(milliseconds(30000)), "30s");
  EXPECT_EQ(format_duration(milliseconds(60000)), "1m");
  EXPECT_EQ(format_duration(milliseconds(5400000)), "1h30m");
  EXPECT_EQ(format_duration(milliseconds(90500)), "1m30s500ms");
  EXPECT_EQ(format_duration(milliseconds(3600001)), "1h1ms");
  EXPECT_EQ(format_duration(k_max_duration), "100000h");
}

TEST(Duration, FormatRoundTrips) {
  std::vector<long long> values = {0,
                                   1,
                                   2,
                                   999,
                                   1000,
                                   1001,
                                   1500,
                                   59999,
                                   60000,
                                   60001,
                                   90500,
                                   3599999,
                                   3600000,
                                   3661001,
                                   5400000,
                                   86400000,
                                   k_max_duration.count()};
  // Plus a deterministic spread of values across the whole range.
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 500; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    values.push_back(static_cast<long long>(
        x % static_cast<uint64_t>(k_max_duration.count())));
  }
  for (long long v : values) {
    std::string text = format_duration(milliseconds(v));
    std::string why;
    auto back = parse_duration(text, &why);
    ASSERT_TRUE(back.has_value()) << v << " -> '" << text << "': " << why;
    EXPECT_EQ(back->count(), v) << "'" << text << "'";
  }
}

TEST(Duration, ParseThenFormatIsCanonical) {
  EXPECT_EQ(format_duration(parse_ok("90m")), "1h30m");
  EXPECT_EQ(format_duration(parse_ok("1.5")), "1s500ms");
  EXPECT_EQ(format_duration(parse_ok("3600s")), "1h");
  EXPECT_EQ(format_duration(parse_ok("1000ms")), "1s");
}

}  // namespace
