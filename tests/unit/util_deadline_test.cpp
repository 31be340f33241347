// SPDX-License-Identifier: MIT
#include "util/deadline.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace {

using godislock::util::Clock;
using godislock::util::Deadline;
using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Deadline, NeverIsNeverExpired) {
  Deadline d = Deadline::never();
  EXPECT_TRUE(d.is_never());
  EXPECT_FALSE(d.expired());
  EXPECT_EQ(d.when(), Clock::time_point::max());
  EXPECT_GE(d.remaining(), hours(24));
  EXPECT_EQ(d.poll_timeout_ms(), -1);
}

TEST(Deadline, AfterIsInTheFuture) {
  auto before = Clock::now();
  Deadline d = Deadline::after(seconds(10));
  auto after = Clock::now();
  EXPECT_FALSE(d.is_never());
  EXPECT_FALSE(d.expired());
  EXPECT_GE(d.when(), before + seconds(10));
  EXPECT_LE(d.when(), after + seconds(10));
  EXPECT_LE(d.remaining(), seconds(10));
  EXPECT_GT(d.remaining(), seconds(5));
}

TEST(Deadline, AtUsesTheGivenTimePoint) {
  auto t = Clock::now() + seconds(3);
  EXPECT_EQ(Deadline::at(t).when(), t);
}

TEST(Deadline, ExpiresAfterItsTime) {
  Deadline d = Deadline::after(milliseconds(20));
  EXPECT_FALSE(d.expired());
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_TRUE(d.expired());
  EXPECT_TRUE(Deadline::after(Clock::duration::zero()).expired());
  EXPECT_TRUE(Deadline::after(-seconds(1)).expired());
  EXPECT_TRUE(Deadline::at(Clock::now()).expired());
}

TEST(Deadline, RemainingClampsToZero) {
  Deadline past = Deadline::at(Clock::now() - seconds(5));
  EXPECT_EQ(past.remaining(), Clock::duration::zero());
  EXPECT_EQ(past.poll_timeout_ms(), 0);
}

// Checks that poll_timeout_ms() never undershoots the time left (rounds
// up) and overshoots it by less than a millisecond plus scheduling slack.
void expect_rounded_up(Clock::duration d, int upper_ms) {
  Deadline dl = Deadline::after(d);
  int ms = dl.poll_timeout_ms();
  auto left_after = dl.when() - Clock::now();  // <= the time left at the call
  EXPECT_LE(ms, upper_ms);
  if (left_after > Clock::duration::zero()) {
    EXPECT_GE(milliseconds(ms), left_after) << "rounded down";
    EXPECT_GE(ms, 1);
  }
}

TEST(Deadline, PollTimeoutRoundsUp) {
  // Any positive time left gives at least 1 ms: a poll never returns early
  // and spins.
  expect_rounded_up(microseconds(1), 1);
  expect_rounded_up(microseconds(1500), 2);
  expect_rounded_up(microseconds(100001), 101);
  expect_rounded_up(seconds(10), 10000);
}

TEST(Deadline, PollTimeoutIsCappedAtOneHour) {
  Deadline d = Deadline::after(hours(1000));
  EXPECT_EQ(d.poll_timeout_ms(), 3600 * 1000);
}

TEST(Deadline, MinPicksTheEarlier) {
  Deadline soon = Deadline::after(seconds(1));
  Deadline later = Deadline::after(seconds(100));
  EXPECT_EQ(soon.min(later).when(), soon.when());
  EXPECT_EQ(later.min(soon).when(), soon.when());
  EXPECT_EQ(Deadline::never().min(soon).when(), soon.when());
  EXPECT_EQ(soon.min(Deadline::never()).when(), soon.when());
  EXPECT_TRUE(Deadline::never().min(Deadline::never()).is_never());
  EXPECT_FALSE(Deadline::never().min(soon).is_never());
}

}  // namespace
