// SPDX-License-Identifier: MIT
// refresher::Refresher against a real redis-server: it keeps a short lease
// alive, reports a lost key through the wake fd, gives up before the lease
// can expire when the server stops answering, and stops promptly.
#include "refresher/refresher.hpp"

#include "backend/redis_backend.hpp"
#include "lock/validity.hpp"
#include "support/backend_fixture.hpp"
#include "support/time.hpp"
#include "util/fd.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <thread>

namespace godislock::refresher {
namespace {

using namespace std::chrono_literals;
using backend::Backend;
using lock::Millis;
using test::ResumeOnExit;
using test::since;
using test::soon;
using test::wait_until;
using util::Clock;
using util::Deadline;

constexpr char k_lock[] = "t:{job}";
constexpr char k_token[] = "0123456789abcdef0123456789abcdef";

Millis between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<Millis>(to - from);
}

bool readable_within(int fd, Millis limit) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

// The ids of this process's threads.
std::set<std::string> thread_ids() {
  std::set<std::string> ids;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/self/task", ec)) {
    ids.insert(e.path().filename().string());
  }
  return ids;
}

// Whether thread `tid` of this process sleeps (state S in its stat line,
// the field after the parenthesised name).
bool is_asleep(const std::string& tid) {
  std::ifstream f("/proc/self/task/" + tid + "/stat");
  std::string stat{std::istreambuf_iterator<char>(f), {}};
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         stat[paren + 2] == 'S';
}

class RefresherTest : public test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) {
      return;
    }
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
    m_wake_rd.reset(fds[0]);
    m_wake_wr.reset(fds[1]);
  }

  // Takes the lock for k_token with `ttl` and returns a refresher for it
  // (not started) on a clone of the backend, as app::run does.
  std::unique_ptr<Refresher> lease(Millis ttl) {
    auto started = Clock::now();
    m_backend = hold(k_token, ttl);
    if (m_backend == nullptr) {
      return nullptr;
    }
    lock::LeaseTiming timing;
    EXPECT_TRUE(lock::make_timing(ttl, lock::default_kill_after(ttl), &timing));
    m_lease = std::make_unique<lock::LeaseClock>(timing, started);
    return std::make_unique<Refresher>(m_backend->clone(), k_token, *m_lease,
                                       m_wake_wr.get());
  }

  int wake_fd() const { return m_wake_rd.get(); }

  // Waits until `r` has made at least `n` refreshes (or lost the lease).
  static bool refreshed(const Refresher& r, int n) {
    return wait_until([&] { return r.refreshes() >= n || r.is_lost(); },
                      10000ms);
  }

 private:
  std::unique_ptr<Backend> m_backend;
  std::unique_ptr<lock::LeaseClock> m_lease;
  util::Fd m_wake_rd;
  util::Fd m_wake_wr;
};

TEST_F(RefresherTest, KeepsAShortLeaseAlive) {
  auto r = lease(600ms);  // refresh every 200 ms
  ASSERT_NE(r, nullptr);
  r->start();
  // Five refreshes, a fixed 200 ms apart: a TTL and more has passed.
  ASSERT_TRUE(refreshed(*r, 5));
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token);
  EXPECT_FALSE(r->is_lost()) << r->lost_reason();
  EXPECT_EQ(r->lost_reason(), "");
  EXPECT_FALSE(readable_within(wake_fd(), 0ms));
  r->stop();
}

TEST_F(RefresherTest, DeletedKeyIsReportedThroughTheWakeFd) {
  auto r = lease(600ms);
  ASSERT_NE(r, nullptr);
  r->start();
  ASSERT_TRUE(refreshed(*r, 1));
  ASSERT_EQ(server.cli({"DEL", k_lock}), "(integer) 1");
  auto deleted_at = Clock::now();
  // The next refresh (within one 200 ms interval) finds the key gone.
  ASSERT_TRUE(readable_within(wake_fd(), 3000ms));
  EXPECT_LT(since(deleted_at), 1500ms);
  EXPECT_TRUE(r->is_lost());
  EXPECT_NE(r->lost_reason().find("token"), std::string::npos)
      << r->lost_reason();
  EXPECT_GE(r->lost_at(), deleted_at);
  EXPECT_LT(between(deleted_at, r->lost_at()), 1500ms);
  // Reported once: exactly one byte.
  char buf[8];
  EXPECT_EQ(::read(wake_fd(), buf, sizeof buf), 1);
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");  // not re-created
  r->stop();
}

TEST_F(RefresherTest, KeyTakenOverIsReportedAndLeftAlone) {
  auto r = lease(600ms);
  ASSERT_NE(r, nullptr);
  r->start();
  ASSERT_TRUE(refreshed(*r, 1));
  ASSERT_EQ(server.cli({"SET", k_lock, "someone-else", "PX", "5000"}), "OK");
  ASSERT_TRUE(readable_within(wake_fd(), 3000ms));
  EXPECT_TRUE(r->is_lost());
  EXPECT_NE(r->lost_reason().find("token"), std::string::npos)
      << r->lost_reason();
  EXPECT_EQ(server.cli({"GET", k_lock}), "someone-else");
  r->stop();
}

TEST_F(RefresherTest, GivesUpBeforeTheLeaseCanExpireWhenTheServerStops) {
  const Millis ttl = 600ms;
  auto r = lease(ttl);
  ASSERT_NE(r, nullptr);
  r->start();
  ASSERT_TRUE(refreshed(*r, 1));
  ASSERT_FALSE(r->is_lost()) << r->lost_reason();
  ResumeOnExit resume{server};
  // Every refresh so far started before this moment, and the key's TTL runs
  // from the server's handling of the last one: the lease ends no earlier
  // than paused_at - interval + ttl, and surely not before paused_at.
  server.pause();
  auto paused_at = Clock::now();
  ASSERT_TRUE(readable_within(wake_fd(), 5000ms));
  ASSERT_TRUE(r->is_lost());
  EXPECT_FALSE(r->lost_reason().empty());
  EXPECT_LT(between(paused_at, r->lost_at()), ttl) << r->lost_reason();
  auto stop_start = Clock::now();
  r->stop();
  EXPECT_LT(since(stop_start), 1000ms);
}

TEST_F(RefresherTest, RidesOutADroppedConnection) {
  auto r = lease(900ms);  // refresh every 300 ms, give up after ~578 ms
  ASSERT_NE(r, nullptr);
  r->start();
  ASSERT_TRUE(refreshed(*r, 1));
  int before = r->refreshes();
  // Drops the refresher's connection (and the test backend's); the next
  // refresh fails with io, and the retry reconnects.
  std::string killed = server.cli({"CLIENT", "KILL", "TYPE", "normal"});
  EXPECT_NE(killed, "(integer) 0");
  // Two more refreshes: the lease outlived the next one's failure by
  // more than an interval.
  ASSERT_TRUE(refreshed(*r, before + 2));
  EXPECT_FALSE(r->is_lost()) << r->lost_reason();
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token);
  r->stop();
}

TEST_F(RefresherTest, StopJoinsPromptly) {
  auto r = lease(30000ms);  // next refresh 10 s away
  ASSERT_NE(r, nullptr);
  auto before = thread_ids();
  r->start();
  // Stopped once its thread is up and asleep, waiting for the refresh.
  EXPECT_TRUE(wait_until(
      [&] {
        for (const auto& tid : thread_ids()) {
          if (before.count(tid) == 0 && is_asleep(tid)) {
            return true;
          }
        }
        return false;
      },
      5000ms));
  auto start = Clock::now();
  r->stop();
  EXPECT_LT(since(start), 1000ms);
  EXPECT_EQ(r->refreshes(), 0);
  EXPECT_FALSE(r->is_lost());
  r->stop();  // a second stop is harmless
  // Stopping does not release.
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token);
}

TEST_F(RefresherTest, DestructorStopsTheThread) {
  auto r = lease(30000ms);
  ASSERT_NE(r, nullptr);
  r->start();
  auto start = Clock::now();
  r.reset();
  EXPECT_LT(since(start), 1000ms);
}

}  // namespace
}  // namespace godislock::refresher
