// SPDX-License-Identifier: MIT
// The Redis backend and its Lua contracts (src/backend/scripts/*.lua) against a
// real redis-server: acquire/refresh/release, fences, foreign keys, script
// cache loss, release announcements and reconnection.
#include "backend/redis_backend.hpp"

#include "backend/scripts/acquire_lua.hpp"
#include "backend/scripts/refresh_lua.hpp"
#include "backend/scripts/release_lua.hpp"
#include "redis/connection.hpp"
#include "support/backend_fixture.hpp"
#include "support/time.hpp"
#include "util/fd.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace godislock::backend {
namespace {

using namespace std::chrono_literals;
using test::as_integer;
using test::soon;
using util::Clock;
using util::Deadline;
using util::ErrorKind;

constexpr char k_lock[] = "t:{job}";
constexpr char k_fence[] = "t:{job}:fence";
constexpr char k_token_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char k_token_b[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

class RedisBackendTest : public test::BackendTest {
 protected:
  long long pttl(const std::string& key) const {
    return as_integer(server.cli({"PTTL", key}));
  }

  // The server clock in microseconds (what the acquire script reads).
  uint64_t server_micros() const {
    std::string t = server.cli({"TIME"});  // "secs\nmicros"
    auto nl = t.find('\n');
    return std::stoull(t.substr(0, nl)) * 1000000 +
           std::stoull(t.substr(nl + 1));
  }
};

TEST(RedisKeysTest, LayoutCarriesTheHashTag) {
  RedisKeys k = redis_keys("p:", "n");
  EXPECT_EQ(k.lock, "p:{n}");
  EXPECT_EQ(k.fence, "p:{n}:fence");
  EXPECT_EQ(k.channel, "p:{n}:released");
  RedisKeys d = redis_keys("godislock:", "cmd:ls:0123");
  EXPECT_EQ(d.lock, "godislock:{cmd:ls:0123}");
  EXPECT_EQ(d.channel, "godislock:{cmd:ls:0123}:released");
}

TEST_F(RedisBackendTest, AcquireFreeLock) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(k_token_a, 500ms,
                      ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, Outcome::acquired);
  EXPECT_GT(a->fence, 0u);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token_a);
  long long ttl = pttl(k_lock);
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 500);
  // The fence issued is stored, with the same TTL.
  EXPECT_EQ(server.cli({"GET", k_fence}), std::to_string(a->fence));
  long long fttl = pttl(k_fence);
  EXPECT_GT(fttl, 0);
  EXPECT_LE(fttl, 500);
}

TEST_F(RedisBackendTest, AcquireOverUnixSocket) {
  Settings s = settings();
  s.endpoint = config::Endpoint{};
  s.endpoint.kind = config::Endpoint::Kind::unix_socket;
  s.endpoint.path = server.socket_path();
  auto b = open_redis(s, soon());
  ASSERT_TRUE(b) << b.error().message;
  auto a = (*b)->acquire(k_token_a, 5000ms,
                         ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, Outcome::acquired);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token_a);
}

TEST_F(RedisBackendTest, HeldLockReportsTheHolderTtl) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto mine = b->acquire(k_token_a, 10000ms,
                         ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(mine) << mine.error().message;
  ASSERT_EQ(mine->state, Outcome::acquired);
  auto other = b->acquire(k_token_b, 10000ms,
                          ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_EQ(other->state, Outcome::held);
  EXPECT_GT(other->holder_ttl, 5000ms);
  EXPECT_LE(other->holder_ttl, 10000ms);
  EXPECT_EQ(other->fence, 0u);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token_a);
}

TEST_F(RedisBackendTest, RetryWithTheSameTokenKeepsTheFenceAndExtends) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto first = b->acquire(k_token_a, 5000ms,
                          ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_EQ(first->state, Outcome::acquired);
  // Let "time pass" on the lease: both keys near their end.
  ASSERT_EQ(server.cli({"PEXPIRE", k_lock, "300"}), "(integer) 1");
  ASSERT_EQ(server.cli({"PEXPIRE", k_fence, "300"}), "(integer) 1");
  // The reply to `first` was lost; the retry uses the same token.
  auto retry = b->acquire(k_token_a, 5000ms,
                          ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(retry) << retry.error().message;
  EXPECT_EQ(retry->state, Outcome::acquired);
  EXPECT_EQ(retry->fence, first->fence);
  EXPECT_GT(pttl(k_lock), 1000);
  EXPECT_GT(pttl(k_fence), 1000);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token_a);
}

TEST_F(RedisBackendTest, FencesStrictlyRiseOverCycles) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    std::string token = fmt::format("{:032x}", i + 1);
    auto a = b->acquire(token, 5000ms,
                        ::godislock::backend::Backend::Mode::race, soon());
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_EQ(a->state, Outcome::acquired) << "cycle " << i;
    EXPECT_GT(a->fence, last) << "cycle " << i;
    last = a->fence;
    auto r = b->release(token, soon());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE(*r) << "cycle " << i;
  }
}

TEST_F(RedisBackendTest, FenceRisesAcrossAnEmptyRestart) {
  uint64_t before = 0;
  {
    auto b = open();
    ASSERT_NE(b, nullptr);
    auto a = b->acquire(k_token_a, 5000ms,
                        ::godislock::backend::Backend::Mode::race, soon());
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_EQ(a->state, Outcome::acquired);
    before = a->fence;
  }
  server.restart_empty();
  ASSERT_TRUE(server.ok());
  ASSERT_EQ(server.cli({"EXISTS", k_fence}), "(integer) 0");
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(k_token_b, 5000ms,
                      ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ(a->state, Outcome::acquired);
  EXPECT_GT(a->fence, before);
}

TEST_F(RedisBackendTest, FenceFollowsAStoredFenceAheadOfTheClock) {
  // A fence issued by a server whose clock was ahead (one hour here).
  uint64_t ahead = server_micros() + 3600ULL * 1000000;
  ASSERT_EQ(server.cli({"SET", k_fence, std::to_string(ahead)}), "OK");
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(k_token_a, 5000ms,
                      ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ(a->state, Outcome::acquired);
  EXPECT_EQ(a->fence, ahead + 1);
  EXPECT_EQ(server.cli({"GET", k_fence}), std::to_string(ahead + 1));
  ASSERT_TRUE(b->release(k_token_a, soon()).ok());
  auto next = b->acquire(k_token_b, 5000ms,
                         ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next->fence, ahead + 2);
}

TEST_F(RedisBackendTest, RefreshWithOurTokenResetsTheTtl) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->acquire(k_token_a, 5000ms,
                         ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  ASSERT_EQ(server.cli({"PEXPIRE", k_lock, "200"}), "(integer) 1");
  ASSERT_EQ(server.cli({"PEXPIRE", k_fence, "200"}), "(integer) 1");
  auto r = b->refresh(k_token_a, 5000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  long long ttl = pttl(k_lock);
  EXPECT_GT(ttl, 1000);
  EXPECT_LE(ttl, 5000);
  EXPECT_GT(pttl(k_fence), 1000);
}

TEST_F(RedisBackendTest, RefreshWithAnotherTokenChangesNothing) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->acquire(k_token_a, 3000ms,
                         ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  auto r = b->refresh(k_token_b, 60000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(*r);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token_a);
  EXPECT_LE(pttl(k_lock), 3000);
  EXPECT_LE(pttl(k_fence), 3000);
}

TEST_F(RedisBackendTest, RefreshAfterTheKeyWasDeletedIsFalse) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->acquire(k_token_a, 3000ms,
                         ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  ASSERT_EQ(server.cli({"DEL", k_lock}), "(integer) 1");
  auto r = b->refresh(k_token_a, 3000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(*r);
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");  // not re-created
}

TEST_F(RedisBackendTest, ReleaseDeletesAndAnnounces) {
  auto holder = open();
  auto waiter = open();
  ASSERT_NE(holder, nullptr);
  ASSERT_NE(waiter, nullptr);
  ASSERT_TRUE(holder
                  ->acquire(k_token_a, 5000ms,
                            ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  auto w = waiter->watch("w", /*fair=*/false, soon());
  ASSERT_TRUE(w) << w.error().message;
  auto r = holder->release(k_token_a, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
  // The fence key stays, left to expire, so the next fence keeps rising.
  EXPECT_EQ(server.cli({"EXISTS", k_fence}), "(integer) 1");
  auto woke = (*w)->wait(Deadline::after(5s));
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_TRUE(*woke);
}

TEST_F(RedisBackendTest, ReleaseWithAnotherTokenLeavesTheKey) {
  auto holder = open();
  auto waiter = open();
  ASSERT_NE(holder, nullptr);
  ASSERT_NE(waiter, nullptr);
  ASSERT_TRUE(holder
                  ->acquire(k_token_a, 5000ms,
                            ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  auto w = waiter->watch("w", /*fair=*/false, soon());
  ASSERT_TRUE(w) << w.error().message;
  auto r = holder->release(k_token_b, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(*r);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token_a);
  // Nothing was announced.
  auto woke = (*w)->wait(Deadline::after(200ms));
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_FALSE(*woke);
}

// ReleaseWatch::wait promises false "at `until`" and an error only when the
// subscription is gone, so a watch must stay usable after a wait that ran
// out of time (the acquirer waits in slices bounded by the holder's TTL).
TEST_F(RedisBackendTest, WatchStaysUsableAfterATimedOutWait) {
  auto holder = open();
  auto waiter = open();
  ASSERT_NE(holder, nullptr);
  ASSERT_NE(waiter, nullptr);
  auto w = waiter->watch("w", /*fair=*/false, soon());
  ASSERT_TRUE(w) << w.error().message;
  auto quiet = (*w)->wait(Deadline::after(100ms));
  ASSERT_TRUE(quiet) << quiet.error().message;
  EXPECT_FALSE(*quiet);
  ASSERT_TRUE(holder
                  ->acquire(k_token_a, 5000ms,
                            ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  auto r = holder->release(k_token_a, soon());
  ASSERT_TRUE(r && *r);
  auto woke = (*w)->wait(Deadline::after(5s));
  ASSERT_TRUE(woke) << "a timed-out wait broke the subscription: "
                    << woke.error().message;
  EXPECT_TRUE(*woke);
}

TEST_F(RedisBackendTest, WatchStaysUsableAfterAnInterruptedIdleWait) {
  auto holder = open();
  auto waiter = open();
  ASSERT_NE(holder, nullptr);
  ASSERT_NE(waiter, nullptr);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  util::Fd read_end(fds[0]);
  util::Fd write_end(fds[1]);
  waiter->set_interrupt_fd(read_end.get());
  auto w = waiter->watch("w", /*fair=*/false, soon());
  ASSERT_TRUE(w) << w.error().message;
  char byte = 'x';
  ASSERT_EQ(::write(write_end.get(), &byte, 1), 1);
  auto cut = (*w)->wait(Deadline::after(5s));
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().kind, ErrorKind::interrupted);
  ASSERT_EQ(::read(read_end.get(), &byte, 1), 1);  // signal taken
  ASSERT_TRUE(holder
                  ->acquire(k_token_a, 5000ms,
                            ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  auto r = holder->release(k_token_a, soon());
  ASSERT_TRUE(r && *r);
  auto woke = (*w)->wait(Deadline::after(5s));
  ASSERT_TRUE(woke) << woke.error().message;
  EXPECT_TRUE(*woke);
}

TEST_F(RedisBackendTest, KeyWithoutExpiryIsReportedAndUntouched) {
  ASSERT_EQ(server.cli({"SET", k_lock, "foreign"}), "OK");
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(k_token_a, 5000ms,
                      ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, Outcome::no_expiry);
  auto refreshed = b->refresh(k_token_a, 5000ms, soon());
  ASSERT_TRUE(refreshed) << refreshed.error().message;
  EXPECT_FALSE(*refreshed);
  auto released = b->release(k_token_a, soon());
  ASSERT_TRUE(released) << released.error().message;
  EXPECT_FALSE(*released);
  EXPECT_EQ(server.cli({"GET", k_lock}), "foreign");
  EXPECT_EQ(pttl(k_lock), -1);
  EXPECT_EQ(server.cli({"EXISTS", k_fence}), "(integer) 0");
}

TEST_F(RedisBackendTest, KeyOfAnotherTypeIsReportedAndUntouched) {
  ASSERT_EQ(server.cli({"HSET", k_lock, "f", "v"}), "(integer) 1");
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(k_token_a, 5000ms,
                      ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->state, Outcome::wrong_type);
  EXPECT_EQ(a->detail, "hash");
  auto refreshed = b->refresh(k_token_a, 5000ms, soon());
  ASSERT_TRUE(refreshed) << refreshed.error().message;
  EXPECT_FALSE(*refreshed);
  auto released = b->release(k_token_a, soon());
  ASSERT_TRUE(released) << released.error().message;
  EXPECT_FALSE(*released);
  EXPECT_EQ(server.cli({"TYPE", k_lock}), "hash");
  EXPECT_EQ(server.cli({"HGET", k_lock, "f"}), "v");
  EXPECT_EQ(pttl(k_lock), -1);
  EXPECT_EQ(server.cli({"EXISTS", k_fence}), "(integer) 0");
}

TEST_F(RedisBackendTest, ScriptsSurviveAScriptFlush) {
  const std::string acquire_sha = scripts::k_acquire_sha1;
  const std::string refresh_sha = scripts::k_refresh_sha1;
  const std::string release_sha = scripts::k_release_sha1;
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto a = b->acquire(k_token_a, 5000ms,
                      ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_EQ(a->state, Outcome::acquired);
  EXPECT_EQ(server.cli({"SCRIPT", "EXISTS", acquire_sha}), "(integer) 1");

  ASSERT_EQ(server.cli({"SCRIPT", "FLUSH"}), "OK");
  ASSERT_EQ(server.cli({"SCRIPT", "EXISTS", refresh_sha}), "(integer) 0");
  auto r = b->refresh(k_token_a, 5000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  // The fallback sent the source, which the server caches again.
  EXPECT_EQ(server.cli({"SCRIPT", "EXISTS", refresh_sha}), "(integer) 1");

  ASSERT_EQ(server.cli({"SCRIPT", "FLUSH"}), "OK");
  auto rel = b->release(k_token_a, soon());
  ASSERT_TRUE(rel) << rel.error().message;
  EXPECT_TRUE(*rel);
  EXPECT_EQ(server.cli({"EXISTS", k_lock}), "(integer) 0");
  EXPECT_EQ(server.cli({"SCRIPT", "EXISTS", release_sha}), "(integer) 1");

  ASSERT_EQ(server.cli({"SCRIPT", "FLUSH"}), "OK");
  auto fresh = open(settings("other"));
  ASSERT_NE(fresh, nullptr);
  auto got = fresh->acquire(k_token_b, 5000ms,
                            ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->state, Outcome::acquired);
  EXPECT_EQ(server.cli({"GET", "t:{other}"}), k_token_b);
}

TEST_F(RedisBackendTest, ScriptShaMatchesTheSource) {
  // EVALSHA only works if the embedded SHA1 is the source's.
  auto c = redis::Connection::open(server.endpoint(), soon());
  ASSERT_TRUE(c) << c.error().message;
  for (auto [source, sha] :
       {std::pair{scripts::k_acquire_source, scripts::k_acquire_sha1},
        std::pair{scripts::k_refresh_source, scripts::k_refresh_sha1},
        std::pair{scripts::k_release_source, scripts::k_release_sha1}}) {
    auto r = c->command({"SCRIPT", "LOAD", source}, soon());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->str, sha);
  }
}

TEST_F(RedisBackendTest, RawEvalOfTheAcquireScript) {
  auto c = redis::Connection::open(server.endpoint(), soon());
  ASSERT_TRUE(c) << c.error().message;
  auto eval = [&](const std::string& token) {
    return c->command({"EVAL", scripts::k_acquire_source, "3", k_lock, k_fence,
                       std::string(k_lock) + ":queue", token, "4000", "race",
                       "60000", "1", "0", "hostA", "4242", "alice", "sleep 5"},
                      soon());
  };
  auto got = eval(k_token_a);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->type, redis::Reply::Type::array);
  ASSERT_EQ(got->elements.size(), 3u);
  EXPECT_EQ(got->elements[0].integer, 1);
  EXPECT_GT(got->elements[1].integer, 0);
  EXPECT_EQ(got->elements[2].integer, 1);  // slot

  // {0, wait, count, host, pid, cmd, age}: who holds it, from the holder
  // record beside the lock.
  auto held = eval(k_token_b);
  ASSERT_TRUE(held) << held.error().message;
  ASSERT_EQ(held->elements.size(), 7u);
  EXPECT_EQ(held->elements[0].integer, 0);
  EXPECT_GT(held->elements[1].integer, 0);
  EXPECT_LE(held->elements[1].integer, 4000);
  EXPECT_EQ(held->elements[2].integer, 1);
  EXPECT_EQ(held->elements[3].str, "hostA");
  EXPECT_EQ(held->elements[4].str, "4242");
  EXPECT_EQ(held->elements[5].str, "sleep 5");
  EXPECT_GE(held->elements[6].integer, 0);
  EXPECT_EQ(server.cli(
                {"HGET", std::string(k_lock) + ":holder:" + k_token_a, "user"}),
            "alice");

  ASSERT_EQ(server.cli({"DEL", k_lock}), "(integer) 1");
  ASSERT_EQ(server.cli({"SET", k_lock, "x"}), "OK");
  auto no_ttl = eval(k_token_b);
  ASSERT_TRUE(no_ttl) << no_ttl.error().message;
  EXPECT_EQ(no_ttl->elements[0].integer, 0);
  EXPECT_EQ(no_ttl->elements[1].integer, -1);

  ASSERT_EQ(server.cli({"DEL", k_lock}), "(integer) 1");
  ASSERT_EQ(server.cli({"RPUSH", k_lock, "x"}), "(integer) 1");
  auto list = eval(k_token_b);
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_EQ(list->elements[0].integer, -1);
  EXPECT_EQ(list->elements[1].str, "list");
  EXPECT_EQ(list->elements[2].str, k_lock);
}

TEST_F(RedisBackendTest, ReconnectsOnTheCallAfterARestart) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->acquire(k_token_a, 5000ms,
                         ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  server.restart_empty();
  ASSERT_TRUE(server.ok());
  // Observed and documented behaviour: the backend does not probe its old
  // connection, so the first call after the restart runs on the dead socket
  // and fails with io ("connection closed by server" / reset); it marks the
  // connection broken, and the next call reconnects (and, the script cache
  // being empty, falls back to EVAL).
  auto first = b->acquire(k_token_a, 5000ms,
                          ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_FALSE(first) << "the first call after a restart succeeded";
  EXPECT_EQ(first.error().kind, ErrorKind::io) << first.error().message;
  auto second = b->acquire(k_token_a, 5000ms,
                           ::godislock::backend::Backend::Mode::race, soon());
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->state, Outcome::acquired);
  EXPECT_EQ(server.cli({"GET", k_lock}), k_token_a);
}

TEST_F(RedisBackendTest, WatchReportsALostSubscriptionAsAnError) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  auto w = b->watch("w", /*fair=*/false, soon());
  ASSERT_TRUE(w) << w.error().message;
  server.restart_empty();
  ASSERT_TRUE(server.ok());
  auto start = Clock::now();
  auto woke = (*w)->wait(Deadline::after(3s));
  // An error (not "false at the deadline") tells the caller to subscribe
  // again, and it comes at once, not at the deadline.
  ASSERT_FALSE(woke);
  EXPECT_EQ(woke.error().kind, ErrorKind::io) << woke.error().message;
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_F(RedisBackendTest, InterruptFdCutsAWatchShort) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  util::Fd read_end(fds[0]);
  util::Fd write_end(fds[1]);
  b->set_interrupt_fd(read_end.get());
  auto w = b->watch("w", /*fair=*/false, soon());
  ASSERT_TRUE(w) << w.error().message;
  char byte = 'x';
  ASSERT_EQ(::write(write_end.get(), &byte, 1), 1);
  auto start = Clock::now();
  auto woke = (*w)->wait(Deadline::after(10s));
  ASSERT_FALSE(woke);
  EXPECT_EQ(woke.error().kind, ErrorKind::interrupted);
  EXPECT_LT(Clock::now() - start, 2s);
}

// The cli's own connection is counted too, the same on every call.
long long connected_clients(const test::RedisServer& server) {
  return test::info_field(server, "clients", "connected_clients");
}

TEST_F(RedisBackendTest, CloneIsIndependentAndConnectsLazily) {
  auto b = open();
  ASSERT_NE(b, nullptr);
  long long before = connected_clients(server);
  ASSERT_GT(before, 0);
  std::unique_ptr<Backend> c = b->clone();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(connected_clients(server), before);  // no connection yet
  ASSERT_TRUE(b->acquire(k_token_a, 5000ms,
                         ::godislock::backend::Backend::Mode::race, soon())
                  .ok());
  auto r = c->refresh(k_token_a, 5000ms, soon());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(connected_clients(server), before + 1);
  EXPECT_EQ(c->describe(), b->describe());
  EXPECT_NE(b->describe().find(std::to_string(server.port())),
            std::string::npos);
}

TEST_F(RedisBackendTest, DescribeHidesThePassword) {
  Settings s = settings();
  s.endpoint.password = "hunter2-pw";
  s.endpoint.password_in_url = true;
  auto b = open_redis(s, soon());
  // The server has no password; what matters here is the text.
  std::string text = b ? (*b)->describe() : b.error().message;
  EXPECT_EQ(text.find("hunter2-pw"), std::string::npos) << text;
}

}  // namespace
}  // namespace godislock::backend
