// SPDX-License-Identifier: MIT
// What the integration tests share: a fixture with a private redis-server
// and backends for a lock on it, a guard that resumes a stopped server, and
// small helpers that read the server's state or wait for it.
#pragma once

#include "backend/backend.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace godislock::test {

// --- Interface ---

// A GoogleTest fixture owning a private redis-server, started for each
// test (which is skipped when redis-server cannot start, or fails under
// GODISLOCK_REQUIRE_REDIS=1), and opening backends for the lock "job"
// under the prefix "t:" (key t:{job}) on it. A derived fixture that
// overrides SetUp() calls BackendTest::SetUp() first and returns if
// IsSkipped() or HasFatalFailure(). Not thread-safe (as gtest fixtures).
class BackendTest : public testing::Test {
 protected:
  void SetUp() override;

  // Settings for lock `name` on the server, over TCP.
  backend::Settings settings(const std::string& name = "job") const;
  // A backend for `s`, or nullptr (and a test failure) if it cannot open.
  std::unique_ptr<backend::Backend> open(const backend::Settings& s) const;
  std::unique_ptr<backend::Backend> open() const;
  // Takes the lock for `token` with `ttl` (race mode), outside the code
  // under test; returns the backend holding it, or nullptr (and a test
  // failure) if the lock could not be taken.
  std::unique_ptr<backend::Backend> hold(const std::string& token,
                                         std::chrono::milliseconds ttl) const;

  RedisServer server;
};

// Resumes a SIGSTOPped server however the scope ends.
class ResumeOnExit {
 public:
  explicit ResumeOnExit(RedisServer& server) : m_server(server) {}
  ~ResumeOnExit() { m_server.resume(); }
  ResumeOnExit(const ResumeOnExit&) = delete;
  ResumeOnExit& operator=(const ResumeOnExit&) = delete;

 private:
  RedisServer& m_server;
};

// "(integer) N" (a RedisServer::cli() reply) -> N; LLONG_MIN for any other
// reply.
long long as_integer(const std::string& flat);

// The number of calls of `command` in the text of INFO commandstats (0 when
// it was never called).
long long calls_of(const std::string& info, const std::string& command);

// The numeric FIELD of INFO SECTION ("FIELD:N" in its text); -1 when it
// is absent.
long long info_field(const RedisServer& server, const std::string& section,
                     const std::string& field);

// Clients subscribed to `channel` (PUBSUB NUMSUB); -1 if the server's
// reply is not understood.
long long subscribers(const RedisServer& server, const std::string& channel);

// Calls `done` every few milliseconds until it returns true (then returns
// true) or `limit` has passed (then returns its last answer): a bounded wait
// for a condition, in place of a sleep.
bool wait_until(const std::function<bool()>& done,
                std::chrono::milliseconds limit);

}  // namespace godislock::test
