// SPDX-License-Identifier: MIT
#include "backend/cluster_backend.hpp"

#include "backend/redis_backend.hpp"
#include "backend/redis_scripts.hpp"
#include "redis/cluster.hpp"
#include "redis/connection.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace godislock::backend {

using redis::Cluster;
using redis::Connection;
using redis::Reply;
using util::Deadline;
using util::Error;
using util::ErrorKind;
using util::Result;

namespace {

// Set by a watch whose shard subscription ended, read by its backend: the
// slot map is stale (the slot moved, or its master failed over).
using StaleFlag = std::shared_ptr<bool>;

// A shard subscription (SSUBSCRIBE) on the master of the lock's slot.
//
// A hand-over ('granted SEQ FENCE', release.lua) is acted on as on one
// server: the waiter starts its command on the message alone. A shard
// message reaches every node of the slot's shard, replicas included, so a
// waiter whose map a failover had made stale could hear one on the old
// master as it became a replica; but the script announces a hand-over only
// after counting a subscriber of that waiter's own channel on the master it
// runs on (PUBSUB SHARDNUMSUB, this node only), and a waiter has one
// subscription: a 'granted' heard anywhere is a hand-over made on a master.
// (Before the script counted, a waiter subscribed on the demoted master ran
// its command while the script deleted the key: tests/fault/run --scenario
// cluster-failover, Redis 7.0.15.)
class ClusterWatch final : public ReleaseWatch {
 public:
  // `latest_seq`: as for RedisWatch, null where no hand-over can come.
  ClusterWatch(Connection conn, StaleFlag stale,
               std::shared_ptr<const uint64_t> latest_seq)
      : m_conn(std::move(conn)),
        m_stale(std::move(stale)),
        m_latest_seq(std::move(latest_seq)) {}

  Result<Wakeup> wait(Deadline until) override {
    auto reply = m_conn.read_reply(until, /*idle_ok=*/true);
    if (!reply) {
      if (reply.error().kind == ErrorKind::timeout && !m_conn.is_broken()) {
        return Wakeup{};  // no announcement before `until`
      }
      if (reply.error().kind != ErrorKind::interrupted) {
        *m_stale = true;  // the node may be gone
      }
      return reply.error();
    }
    if (reply->type != Reply::Type::array || reply->elements.size() != 3) {
      return Error{ErrorKind::protocol, "unexpected message on subscription"};
    }
    const std::string& kind = reply->elements[0].str;
    if (kind == "smessage") {
      Wakeup w;
      w.arrived = true;
      if (m_latest_seq) {
        w.granted_fence = parse_grant(reply->elements[2].str, *m_latest_seq);
      }
      return w;
    }
    if (kind == "sunsubscribe") {
      // The node no longer serves the slot and dropped us, leaving the
      // connection open: what was published since is lost, so the waiter
      // subscribes again where the slot is now and attempts once more.
      *m_stale = true;
      return Error{ErrorKind::io,
                   "shard subscription ended (the lock's slot moved or its "
                   "master failed over)"};
    }
    return Error{ErrorKind::protocol, "unexpected message on subscription"};
  }

 private:
  Connection m_conn;
  StaleFlag m_stale;
  std::shared_ptr<const uint64_t> m_latest_seq;
};

class ClusterBackend final : public Backend {
 public:
  ClusterBackend(Settings settings, std::unique_ptr<Cluster> cluster)
      : m_settings(std::move(settings)),
        m_keys(redis_keys(m_settings.prefix, m_settings.name)),
        m_slot(redis::key_slot(m_keys.lock)),
        m_cluster(std::move(cluster)) {}

  Result<Attempt> acquire(const std::string& token, Millis ttl, Mode mode,
                          Deadline deadline) override {
    auto r = eval(acquire_call(m_keys, m_settings, token, ttl, mode,
                               m_queue_seq.get(), /*sharded=*/true),
                  m_slot, deadline);
    if (!r) {
      return r.error();
    }
    return decode_acquire(*r, m_keys);
  }

  Result<bool> refresh(const std::string& token, Millis ttl,
                       Deadline deadline) override {
    auto r = eval(
        refresh_call(m_keys, token, ttl, m_settings.limit, m_settings.shared),
        m_slot, deadline);
    if (!r) {
      return r.error();
    }
    return decode_token_check(*r, "refresh");
  }

  Result<bool> release(const std::string& token, Deadline deadline) override {
    // The PING in front: see RedisBackend::release.
    auto r = eval(release_call(m_keys, token, m_settings.limit,
                               m_settings.shared, /*sharded=*/true),
                  m_slot, deadline, /*ping_first=*/true);
    if (!r) {
      return r.error();
    }
    return decode_token_check(*r, "release");
  }

  Result<LockStatus> status(const std::string& name,
                            Deadline deadline) override {
    if (auto problem = cluster_name_problem(m_settings.prefix, name)) {
      return Error{ErrorKind::config, *problem};
    }
    return look(redis_keys(m_settings.prefix, name), "look", deadline);
  }

  Result<LockStatus> break_lock(Deadline deadline) override {
    return look(m_keys, "break", deadline);
  }

  // SCAN on every master: each holds the locks of its slots.
  Result<std::vector<std::string>> list_names(Deadline deadline) override {
    sync_stale();
    auto masters = m_cluster->masters(deadline);
    if (!masters) {
      return masters.error();
    }
    std::set<std::string> names;
    for (const auto& node : *masters) {
      auto c = m_cluster->connection(node, deadline);
      if (!c) {
        return c.error();
      }
      GODISLOCK_TRY(scan_lock_names(**c, m_settings.prefix, node.name(), names,
                                    deadline));
    }
    return std::vector<std::string>(names.begin(), names.end());
  }

  Result<std::unique_ptr<ReleaseWatch>> watch(const std::string& token,
                                              bool fair,
                                              Deadline deadline) override {
    sync_stale();
    std::string channel =
        fair ? redis_wake_channel(m_keys, token) : m_keys.channel;
    uint16_t slot = redis::key_slot(channel);
    for (int hop = 0; hop <= Cluster::k_max_redirects; ++hop) {
      auto opened = m_cluster->open_master(slot, deadline);
      if (!opened) {
        return opened.error();
      }
      Connection& c = opened->first;
      // A replica serves SSUBSCRIBE for its master's slots, and a map
      // learnt from a node that has not heard of a failover yet names the
      // old master, now a replica: a waiter subscribed there would not be
      // counted by the scripts (they count subscribers on the master), and
      // would lose its place in the queue. A read of the lock's key in the
      // same write tells: a replica answers it with MOVED.
      auto r = where_served(c, channel, deadline);
      if (!r) {
        m_cluster->mark_stale();
        return r.error();
      }
      if (r->is_error()) {
        if (auto redirect = redis::parse_redirect(r->str);
            redirect && !redirect->ask) {
          // A map older than the node's: subscribe where it says.
          m_cluster->moved(*redirect);
          continue;
        }
        return server_error(
            fmt::format("SSUBSCRIBE {} on {}", channel, opened->second.name()),
            r->str);
      }
      // The confirmation ["ssubscribe", channel, 1] comes before any
      // message.
      if (r->type != Reply::Type::array || r->elements.empty() ||
          r->elements[0].str != "ssubscribe") {
        return Error{ErrorKind::protocol, "SSUBSCRIBE: unexpected reply"};
      }
      return std::unique_ptr<ReleaseWatch>(std::make_unique<ClusterWatch>(
          std::move(c), m_stale,
          // Only a fair waiter for the exclusive lock is ever handed it.
          fair && m_settings.limit == 1 && !m_settings.shared
              ? std::shared_ptr<const uint64_t>(m_queue_seq)
              : nullptr));
    }
    return Error{ErrorKind::busy,
                 fmt::format("SSUBSCRIBE {}: too many redirections", channel)};
  }

  void set_interrupt_fd(int fd) override { m_cluster->set_interrupt_fd(fd); }

  std::unique_ptr<Backend> clone() const override {
    return std::make_unique<ClusterBackend>(m_settings, m_cluster->copy());
  }

  std::string describe() const override { return m_cluster->describe(); }

 private:
  // PTTL of the lock's key, then SSUBSCRIBE `channel`, in one write: the
  // first reply when it is an error (MOVED from a replica), else the
  // second.
  Result<Reply> where_served(Connection& c, const std::string& channel,
                             Deadline deadline) {
    GODISLOCK_TRY(
        c.send_encoded(redis::encode_command({"PTTL", m_keys.lock}) +
                           redis::encode_command({"SSUBSCRIBE", channel}),
                       deadline));
    auto probe = c.read_reply(deadline);
    if (!probe || probe->is_error()) {
      return probe;
    }
    return c.read_reply(deadline);
  }

  // A watch saw the map go stale: learn it again before the next command.
  void sync_stale() {
    if (*m_stale) {
      *m_stale = false;
      m_cluster->mark_stale();
    }
  }

  // Runs a script by EVALSHA on the master of `slot`, falling back to EVAL
  // when that node does not have it: after a restart or a failover (Redis
  // 7 does not replicate SCRIPT LOAD, so a promoted replica never saw it).
  // Server errors become Errors.
  Result<Reply> eval(const ScriptCall& call, uint16_t slot, Deadline deadline,
                     bool ping_first = false) {
    sync_stale();
    std::vector<std::string> argv = evalsha_argv(call);
    auto r =
        m_cluster->command(slot, argv, deadline, Cluster::Options{ping_first});
    if (r && is_noscript(*r)) {
      evalsha_to_eval(argv, *call.script);
      r = m_cluster->command(slot, argv, deadline);
    }
    if (!r) {
      return r.error();
    }
    if (r->is_error()) {
      return script_error(*call.script, r->str);
    }
    return r;
  }

  Result<LockStatus> look(const RedisKeys& keys, const char* what,
                          Deadline deadline) {
    auto r = eval(status_call(keys, what, /*sharded=*/true),
                  redis::key_slot(keys.lock), deadline);
    if (!r) {
      return r.error();
    }
    return decode_status(*r);
  }

  Settings m_settings;
  RedisKeys m_keys;
  uint16_t m_slot;  // every key and channel of the lock is in it
  std::unique_ptr<Cluster> m_cluster;
  StaleFlag m_stale = std::make_shared<bool>(false);
  // The number of the latest queue-mode attempt (see RedisWatch).
  std::shared_ptr<uint64_t> m_queue_seq = std::make_shared<uint64_t>(0);
};

}  // namespace

std::optional<std::string> cluster_name_problem(const std::string& prefix,
                                                const std::string& name) {
  std::string lock = redis_keys(prefix, name).lock;
  auto open = lock.find('{');
  if (lock[open + 1] != '}') {
    return std::nullopt;
  }
  return fmt::format(
      "on a Redis Cluster the keys of lock '{}' under prefix '{}' would not "
      "share a hash slot (their hash tag, between the first '{{' and the next "
      "'}}', is empty); choose a name that does not start with '}}' and a "
      "prefix without '{{}}'",
      name, prefix);
}

Result<std::unique_ptr<Backend>> open_cluster(const Settings& settings,
                                              Deadline deadline) {
  if (settings.replicas != 0) {
    // WAIT on a cluster counts the replicas of one shard; routing it after
    // each step is not built, and silently ignoring --replicas would
    // promise what is not checked.
    return Error{ErrorKind::config,
                 "--replicas is not supported with a Redis Cluster "
                 "(redis-cluster://)"};
  }
  if (!settings.name.empty()) {
    if (auto problem = cluster_name_problem(settings.prefix, settings.name)) {
      return Error{ErrorKind::config, *problem};
    }
  }
  auto tls = redis::tls_context(settings.endpoint);
  if (!tls) {
    return tls.error();
  }
  if (tls.value() && !tls.value()->warning().empty()) {
    GODISLOCK_WARN("{}", tls.value()->warning());
  }
  auto cluster =
      std::make_unique<Cluster>(settings.endpoint, std::move(tls.value()));
  GODISLOCK_TRY(cluster->discover(deadline));
  return std::unique_ptr<Backend>(
      std::make_unique<ClusterBackend>(settings, std::move(cluster)));
}

}  // namespace godislock::backend
