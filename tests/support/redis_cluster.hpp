// SPDX-License-Identifier: MIT
#pragma once

#include "config/url.hpp"

#include <sys/types.h>

#include <string>
#include <vector>

namespace godislock::test {

// A private Redis Cluster for one test: `masters` masters with `replicas`
// replicas each (redis-server --cluster-enabled yes on free loopback ports,
// one temp dir, no persistence, cluster-node-timeout 1 s so that a failover
// after a kill takes seconds), joined by redis-cli --cluster create. The
// constructor returns once every node reports cluster_state:ok and every
// replica is in sync; the destructor kills every node by PID and removes
// the directory. ok() is false when that failed (redis-server or redis-cli
// missing): use GODISLOCK_REQUIRE_SERVER.
class RedisCluster {
 public:
  explicit RedisCluster(int masters = 3, int replicas = 1);
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  bool ok() const { return m_ok; }
  // Why the cluster could not be made (for the test's failure message).
  const std::string& why() const { return m_why; }
  // redis-cluster://127.0.0.1:P1,127.0.0.1:P2,... (every node a seed), or
  // with the given nodes only.
  std::string url() const;
  std::string url(const std::vector<int>& nodes) const;
  config::Endpoint endpoint() const;
  size_t size() const { return m_ports.size(); }
  int port(size_t node) const { return m_ports[node]; }
  pid_t pid(size_t node) const { return m_pids[node]; }
  const std::string& dir() const { return m_dir; }

  // A command on one node, the reply flattened as RedisServer::cli does.
  std::string cli(size_t node, const std::vector<std::string>& argv) const;
  // A command on the master of `key`'s slot (found by CLUSTER NODES on
  // every call, so that it is right after a failover or a reshard).
  std::string cli_key(const std::string& key,
                      const std::vector<std::string>& argv) const;

  // The node (index) that masters `slot` as the live nodes agree, or -1.
  int master_of(int slot) const;
  // A live replica of node `master`, or -1.
  int replica_of(size_t master) const;
  // The node IDs.
  std::string node_id(size_t node) const;

  // Moves `slot` with its keys from its master to node `to` (CLUSTER
  // SETSLOT IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE on
  // every master), as redis-cli --cluster reshard does. With
  // `keys_only`, stops once the keys have moved, the slot still migrating
  // (the source answers ASK); finish with finish_migration.
  bool move_slot(int slot, size_t to, bool keys_only = false);
  bool finish_migration(int slot, size_t to);
  // CLUSTER FAILOVER on `replica`; returns once it is the master and every
  // node agrees.
  bool failover(size_t replica);
  // CLUSTER REPLICATE on `replica`: it becomes a replica of `master`;
  // returns once it replicates it, in sync, and every node agrees.
  bool replicate(size_t replica, size_t master);
  // SIGKILLs node `node`; waits until another node has taken over its
  // slots (when it was a master) and the cluster is ok again.
  bool kill_master(size_t node);
  // Waits until every live node reports cluster_state:ok and agrees on
  // who masters each slot.
  bool wait_converged(int timeout_ms = 20000) const;

 private:
  bool start_node(size_t i);
  // MIGRATEs every key of `slot` from node `from` to node `to`.
  bool migrate_keys(int slot, size_t from, size_t to);
  bool create();
  bool alive(size_t node) const { return m_pids[node] > 0; }

  std::string m_dir;
  std::vector<int> m_ports;
  std::vector<pid_t> m_pids;
  bool m_ok = false;
  std::string m_why;
};

}  // namespace godislock::test
