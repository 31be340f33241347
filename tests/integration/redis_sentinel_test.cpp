// SPDX-License-Identifier: MIT
// Redis Sentinel against real processes (support/sentinel_topology): the
// master found through the sentinels, failover announcements, the old
// master never trusted again, and the backend's --replicas (WAIT).
#include "redis/sentinel.hpp"

#include "backend/backend.hpp"
#include "support/backend_fixture.hpp"
#include "support/sentinel_topology.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace godislock::redis {
namespace {

using namespace std::chrono_literals;
using test::RedisServer;
using test::SentinelTopology;
using util::Deadline;
using util::ErrorKind;

constexpr char k_token[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

std::shared_ptr<SentinelGroup> group_for(const config::Endpoint& ep) {
  auto g = SentinelGroup::create(ep, nullptr, Deadline::after(2s));
  EXPECT_TRUE(g) << (g ? "" : g.error().message);
  return g ? g.value() : nullptr;
}

std::string port_of(const std::string& address) {
  return address.substr(address.rfind(':') + 1);
}

backend::Settings settings_for(const config::Endpoint& ep) {
  backend::Settings s;
  s.endpoint = ep;
  s.prefix = "t:";
  s.name = "job";
  return s;
}

TEST(Sentinel, FindsTheMasterAndFollowsAFailover) {
  SentinelTopology topo;
  GODISLOCK_REQUIRE_SERVER(topo);
  auto group = group_for(topo.endpoint());
  ASSERT_TRUE(group);
  auto c = group->connect_master(-1, Deadline::after(5s));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(port_of(group->current_master()),
            std::to_string(topo.master().port()));
  auto watch = group->watch_switches(-1, Deadline::after(5s));
  ASSERT_TRUE(watch) << watch.error().message;
  int old_port = topo.master().port();
  ASSERT_TRUE(topo.failover());
  auto said = watch->wait(Deadline::after(20s));
  ASSERT_TRUE(said) << said.error().message;
  EXPECT_NE(said->find(std::to_string(old_port) +
                       " to 127.0.0.1:" + std::to_string(topo.master().port())),
            std::string::npos)
      << *said;
  EXPECT_GE(group->generation(), 1u);
  EXPECT_FALSE(group->last_failover().empty());
  // The old master still answers as a master for a while; it is never
  // used again.
  auto again = group->connect_master(-1, Deadline::after(5s));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(port_of(group->current_master()),
            std::to_string(topo.master().port()));
}

TEST(Sentinel, UnknownMasterNameIsAConfigurationError) {
  SentinelTopology topo;
  GODISLOCK_REQUIRE_SERVER(topo);
  config::Endpoint ep = topo.endpoint();
  ep.sentinel->master = "nosuch";
  auto group = group_for(ep);
  ASSERT_TRUE(group);
  auto c = group->connect_master(-1, Deadline::after(2s));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::config);
  EXPECT_NE(c.error().message.find("no sentinel knows master 'nosuch'"),
            std::string::npos)
      << c.error().message;
}

TEST(Sentinel, BackendFollowsTheMasterAfterAFailover) {
  SentinelTopology topo;
  GODISLOCK_REQUIRE_SERVER(topo);
  auto b = backend::open(settings_for(topo.endpoint()), Deadline::after(5s));
  ASSERT_TRUE(b) << b.error().message;
  auto a = b.value()->acquire(k_token, 30s, backend::Backend::Mode::race,
                              Deadline::after(5s));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, backend::Outcome::acquired);
  EXPECT_EQ(topo.master().cli({"GET", "t:{job}"}), k_token);
  ASSERT_TRUE(b.value()->can_fail_over());
  auto fw = b.value()->watch_failover(-1, Deadline::after(5s));
  ASSERT_TRUE(fw) << fw.error().message;
  ASSERT_TRUE(fw.value());
  // SENTINEL FAILOVER does not wait for the replica to catch up.
  auto until = util::Clock::now() + 10s;
  while (topo.replica().cli({"GET", "t:{job}"}) != k_token &&
         util::Clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(topo.failover());
  auto said = fw.value()->wait(Deadline::after(20s));
  ASSERT_TRUE(said) << said.error().message;
  EXPECT_FALSE(said->empty());
  // The key was replicated: the refresh on the new master finds it ours.
  auto r = b.value()->refresh(k_token, 30s, Deadline::after(5s));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  auto released = b.value()->release(k_token, Deadline::after(5s));
  ASSERT_TRUE(released) << released.error().message;
  EXPECT_TRUE(*released);
  EXPECT_EQ(topo.master().cli({"EXISTS", "t:{job}"}), "(integer) 0");
}

TEST(Sentinel, ReadonlyFromADemotedMasterMeansFindItAgain) {
  SentinelTopology topo;
  GODISLOCK_REQUIRE_SERVER(topo);
  auto b = backend::open(settings_for(topo.endpoint()), Deadline::after(5s));
  ASSERT_TRUE(b) << b.error().message;
  RedisServer& old_master = topo.master();
  ASSERT_TRUE(topo.failover());
  // No failover watch here: the backend's connection still leads to the
  // old master, which the sentinels turn into a replica.
  auto until = util::Clock::now() + 30s;
  while (old_master.cli({"ROLE"}).rfind("slave", 0) != 0 &&
         util::Clock::now() < until) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(old_master.cli({"ROLE"}).rfind("slave", 0), 0u);
  // Redis either answers the script with READONLY or closes the
  // connection as it turns into a replica: either way the call fails
  // with an error the waiter retries at once, and the next call finds the
  // new master.
  auto a = b.value()->acquire(k_token, 30s, backend::Backend::Mode::race,
                              Deadline::after(5s));
  ASSERT_FALSE(a);
  EXPECT_TRUE(a.error().kind == ErrorKind::busy ||
              a.error().kind == ErrorKind::io)
      << a.error().message;
  a = b.value()->acquire(k_token, 30s, backend::Backend::Mode::race,
                         Deadline::after(5s));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, backend::Outcome::acquired);
  EXPECT_EQ(topo.master().cli({"GET", "t:{job}"}), k_token);
  EXPECT_FALSE(b.value()->last_failover().empty());
}

TEST(Sentinel, ReplicasShortfallGivesTheLockBackAndFailsTheRefresh) {
  SentinelTopology topo;
  GODISLOCK_REQUIRE_SERVER(topo);
  backend::Settings s = settings_for(topo.endpoint());
  s.replicas = 1;
  // Long enough for a live replica to acknowledge on a loaded machine
  // (100 ms was not, once in CI), short enough for the test.
  s.replica_timeout = 1000ms;
  auto b = backend::open(s, Deadline::after(5s));
  ASSERT_TRUE(b) << b.error().message;
  auto a = b.value()->acquire(k_token, 30s, backend::Backend::Mode::race,
                              Deadline::after(5s));
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ(a->state, backend::Outcome::acquired);
  {
    test::ResumeOnExit resume(topo.replica());
    topo.replica().pause();
    auto r = b.value()->refresh(k_token, 30s, Deadline::after(5s));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::busy);
    EXPECT_NE(r.error().message.find("only 0 of 1 replica acknowledged the "
                                     "refresh within 1000 ms"),
              std::string::npos)
        << r.error().message;
    auto released = b.value()->release(k_token, Deadline::after(5s));
    ASSERT_TRUE(released);
    auto again = b.value()->acquire(k_token, 30s, backend::Backend::Mode::race,
                                    Deadline::after(5s));
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->state, backend::Outcome::held);
    EXPECT_EQ(again->holder_ttl, 1000ms);
    EXPECT_NE(again->detail.find("acquisition"), std::string::npos);
    EXPECT_EQ(topo.master().cli({"EXISTS", "t:{job}"}), "(integer) 0");
  }
}

}  // namespace
}  // namespace godislock::redis
