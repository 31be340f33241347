// SPDX-License-Identifier: MIT
#include "lock/validity.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using godislock::lock::default_kill_after;
using godislock::lock::drift_for;
using godislock::lock::LeaseTiming;
using godislock::lock::make_timing;
using godislock::lock::max_kill_after;
using godislock::lock::Millis;
using godislock::lock::min_ttl_for;

TEST(Validity, ThirtySecondsWithFiveSecondGrace) {
  LeaseTiming t;
  ASSERT_TRUE(make_timing(Millis(30000), Millis(5000), &t));
  EXPECT_EQ(t.ttl, Millis(30000));
  EXPECT_EQ(t.refresh_interval, Millis(10000));
  EXPECT_EQ(t.drift, Millis(302));
  EXPECT_EQ(t.kill_after, Millis(5000));
  EXPECT_EQ(t.give_up_after, Millis(30000 - 302 - 5000 - 302));
  EXPECT_EQ(t.give_up_after, Millis(24396));
}

TEST(Validity, ThreeSecondsWithDefaultGrace) {
  Millis ttl(3000);
  Millis kill_after = default_kill_after(ttl);
  EXPECT_EQ(kill_after, Millis(1000));
  LeaseTiming t;
  ASSERT_TRUE(make_timing(ttl, kill_after, &t));
  EXPECT_EQ(t.refresh_interval, Millis(1000));
  EXPECT_EQ(t.drift, Millis(32));
  EXPECT_EQ(t.kill_after, Millis(1000));
  EXPECT_EQ(t.give_up_after, Millis(3000 - 32 - 1000 - 32));
  EXPECT_GT(t.give_up_after, t.refresh_interval);
}

TEST(Validity, RefusesGraceThatDoesNotFit) {
  LeaseTiming t;
  // 30000 - 302 - 20000 - 302 = 9396, not more than the 10 s interval.
  EXPECT_FALSE(make_timing(Millis(30000), Millis(20000), &t));
  EXPECT_EQ(t.give_up_after, Millis(9396));
  EXPECT_FALSE(make_timing(Millis(30000), Millis(30000), &t));
  EXPECT_FALSE(make_timing(Millis(3000), Millis(2000), &t));
}

TEST(Validity, ThreeMillisecondFloorDoesNotFit) {
  LeaseTiming t;
  Millis ttl(3);
  EXPECT_EQ(default_kill_after(ttl), Millis(1));
  EXPECT_FALSE(make_timing(ttl, default_kill_after(ttl), &t));
  EXPECT_EQ(t.refresh_interval, Millis(1));  // never below 1 ms
  EXPECT_EQ(t.drift, Millis(2));
  EXPECT_FALSE(make_timing(ttl, Millis(0), &t));
  EXPECT_LT(max_kill_after(ttl), Millis(0));  // even 0 does not fit
}

TEST(Validity, DriftIsOnePercentPlusTwoMilliseconds) {
  EXPECT_EQ(drift_for(Millis(30000)), Millis(302));
  EXPECT_EQ(drift_for(Millis(3000)), Millis(32));
  EXPECT_EQ(drift_for(Millis(99)), Millis(2));
  EXPECT_EQ(drift_for(Millis(100)), Millis(3));
}

TEST(Validity, DefaultKillAfter) {
  EXPECT_EQ(default_kill_after(Millis(30000)), Millis(5000));
  EXPECT_EQ(default_kill_after(Millis(15000)), Millis(5000));
  EXPECT_EQ(default_kill_after(Millis(3600000)), Millis(5000));
  EXPECT_EQ(default_kill_after(Millis(9000)), Millis(3000));
  EXPECT_EQ(default_kill_after(Millis(3000)), Millis(1000));
  EXPECT_EQ(default_kill_after(Millis(100)), Millis(33));
}

TEST(Validity, DefaultKillAfterFitsUsualTtls) {
  for (long long ms :
       {100LL, 1000LL, 3000LL, 10000LL, 30000LL, 60000LL, 3600000LL}) {
    LeaseTiming t;
    EXPECT_TRUE(make_timing(Millis(ms), default_kill_after(Millis(ms)), &t))
        << ms << " ms";
  }
}

TEST(Validity, MaxKillAfterFitsExactly) {
  for (long long ms :
       {7LL, 10LL, 50LL, 100LL, 999LL, 1000LL, 3000LL, 30000LL, 86400000LL}) {
    Millis ttl(ms);
    Millis k = max_kill_after(ttl);
    LeaseTiming t;
    EXPECT_TRUE(make_timing(ttl, k, &t))
        << "ttl " << ms << " ms, max_kill_after " << k.count();
    EXPECT_FALSE(make_timing(ttl, k + Millis(1), &t))
        << "ttl " << ms << " ms, max_kill_after+1 " << k.count() + 1;
  }
}

TEST(Validity, MaxKillAfterFitsExactlyAcrossARange) {
  // Every TTL for which some grace fits (from 7 ms up: below that even
  // --kill-after 0 leaves no time for a refresh).
  for (long long ms = 7; ms <= 20000; ++ms) {
    Millis ttl(ms);
    Millis k = max_kill_after(ttl);
    LeaseTiming t;
    ASSERT_TRUE(make_timing(ttl, k, &t)) << "ttl " << ms;
    ASSERT_FALSE(make_timing(ttl, k + Millis(1), &t)) << "ttl " << ms;
  }
}

TEST(Validity, NothingFitsBelowSevenMilliseconds) {
  for (long long ms = 1; ms <= 6; ++ms) {
    LeaseTiming t;
    EXPECT_FALSE(make_timing(Millis(ms), Millis(0), &t)) << "ttl " << ms;
    EXPECT_LT(max_kill_after(Millis(ms)), Millis(0)) << "ttl " << ms;
  }
  EXPECT_EQ(max_kill_after(Millis(7)), Millis(0));
}

TEST(Validity, MinTtlForIsTheSmallestThatFits) {
  for (long long k :
       {0LL, 1LL, 2LL, 3LL, 4LL, 10LL, 100LL, 1000LL, 5000LL, 60000LL}) {
    Millis ttl = min_ttl_for(Millis(k));
    LeaseTiming t;
    EXPECT_TRUE(make_timing(ttl, Millis(k), &t)) << "kill_after " << k;
    for (long long smaller = 3; smaller < ttl.count(); ++smaller) {
      ASSERT_FALSE(make_timing(Millis(smaller), Millis(k), &t))
          << "kill_after " << k << ": ttl " << smaller << " fits too";
    }
  }
  EXPECT_EQ(min_ttl_for(Millis(0)), Millis(7));  // as the man page says
  EXPECT_EQ(min_ttl_for(Millis(5000)), Millis(7738));
}

TEST(Validity, MinTtlForAgreesWithMaxKillAfter) {
  for (long long ms = 7; ms <= 5000; ++ms) {
    Millis k = max_kill_after(Millis(ms));
    ASSERT_LE(min_ttl_for(k), Millis(ms)) << "ttl " << ms;
  }
}

TEST(Validity, DefaultKillAfterFitsEveryTtlFromSevenMilliseconds) {
  // --help, README and the man page: with the default --kill-after the
  // smallest accepted TTL is 7ms. Every larger TTL must then work too.
  LeaseTiming t;
  EXPECT_TRUE(make_timing(Millis(7), default_kill_after(Millis(7)), &t));
  EXPECT_FALSE(make_timing(Millis(6), default_kill_after(Millis(6)), &t));
  EXPECT_EQ(default_kill_after(Millis(12)), Millis(3));  // cut to fit
  std::string refused;
  for (long long ms = 7; ms <= 100000; ++ms) {
    if (!make_timing(Millis(ms), default_kill_after(Millis(ms)), &t)) {
      refused += " " + std::to_string(ms);
    }
  }
  EXPECT_EQ(refused, "") << "TTLs (ms) refused with the default kill-after";
}

}  // namespace
