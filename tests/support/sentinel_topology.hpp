// SPDX-License-Identifier: MIT
#pragma once

#include "config/url.hpp"
#include "redis/resp.hpp"
#include "support/redis_server.hpp"
#include "util/result.hpp"

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace godislock::test {

// A private Redis Sentinel deployment for one test: a master, one replica
// and three sentinels, each on a free loopback port in temp dirs of their
// own, the sentinels with written configs (down-after-milliseconds 1000,
// failover-timeout 5000) that already name each other, so that they agree
// at once. Started by the constructor (it returns once every sentinel
// knows the replica and the other two), killed by PID by the destructor.
// ok() is false when something did not start (see
// GODISLOCK_REQUIRE_SERVER).
class SentinelTopology {
 public:
  explicit SentinelTopology(std::string master_name = "mymaster");
  ~SentinelTopology();
  SentinelTopology(const SentinelTopology&) = delete;
  SentinelTopology& operator=(const SentinelTopology&) = delete;

  bool ok() const { return m_ok; }
  const std::string& master_name() const { return m_name; }
  // The current master and replica (swapped by failover()).
  RedisServer& master() { return *m_master; }
  RedisServer& replica() { return *m_replica; }
  const std::vector<int>& sentinel_ports() const { return m_ports; }
  // redis-sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/NAME
  std::string url() const;
  config::Endpoint endpoint() const;

  // A command to sentinel `i` (0..2).
  util::Result<redis::Reply> sentinel_command(
      size_t i, const std::vector<std::string>& argv) const;
  // The port every sentinel names as the master, or 0 while they disagree.
  int agreed_master_port() const;

  // SENTINEL FAILOVER, then waits until every sentinel names the replica;
  // master() and replica() swap. False if that did not happen in time.
  bool failover();
  // SIGKILLs the master and waits until the sentinels promote the replica
  // (the old master stays dead; replica() is then that dead server).
  bool kill_master();

 private:
  bool start_sentinels();
  bool wait_until(int seconds, const std::function<bool()>& done) const;

  std::string m_name;
  std::string m_dir;
  std::unique_ptr<RedisServer> m_master, m_replica;
  std::vector<int> m_ports;
  std::vector<pid_t> m_pids;
  bool m_ok = false;
};

}  // namespace godislock::test
