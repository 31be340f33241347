// SPDX-License-Identifier: MIT
#pragma once

#include "config/url.hpp"
#include "net/resolve.hpp"
#include "net/tls.hpp"
#include "redis/connection.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace godislock::redis {

// --- Interface ---

class SwitchWatch;

// The master of a group that Redis Sentinel monitors (a redis-sentinel://
// endpoint), found as the Redis docs' guide for Sentinel clients says: ask
// each sentinel in turn (SENTINEL get-master-addr-by-name), connect to the
// address named, check with ROLE that it is the master, and ask again on
// every reconnect. A sentinel that answers moves to the front.
//
// It also remembers failovers: once a failover is signalled (+switch-master,
// a master found at a new address, a READONLY reply) the old master is not
// trusted again in this run, since it may go on answering as a master, and
// accepting writes that are later discarded, for seconds after it was
// replaced. It becomes trusted again only when a majority of the sentinels
// name it (a later failover back to it); likewise a sentinel naming another
// master than the one in use is believed only once most sentinels do (it
// may be one that missed the failover). Connections made before the latest
// failover signal are stale (generation()).
//
// Shared by every connection of a run (the backend, its clones on other
// threads, its watches): thread-safe.
class SentinelGroup : public std::enable_shared_from_this<SentinelGroup> {
 public:
  // Resolves each sentinel's host once (within `deadline`), for every
  // later connection. `tls` (null without TLS) serves the sentinels and the
  // master alike.
  // Errors: as redis::resolve, when no sentinel's host resolves.
  static util::Result<std::shared_ptr<SentinelGroup>> create(
      const config::Endpoint& ep, std::shared_ptr<const net::TlsContext> tls,
      util::Deadline deadline);

  // A connection to the current master, with AUTH and SELECT as the
  // endpoint asks. Retries (a replica not promoted yet, a master named but
  // unreachable) until `deadline`.
  // Errors: config (no sentinel knows the master's name), auth, io/timeout
  // (no sentinel answered; the master named is unreachable, or not a
  // master), interrupted (`interrupt_fd` became readable).
  util::Result<Connection> connect_master(int interrupt_fd,
                                          util::Deadline deadline);

  // A failover was signalled: the master at `address` ("ip:port") is not
  // trusted any more, and every connection made before is stale.
  void distrust(const std::string& address, const std::string& why);
  // The number of failover signals so far.
  uint64_t generation() const;
  // What the latest failover signal was ("" when none).
  std::string last_failover() const;
  // "ip:port" of the master of the latest connect_master ("" before).
  std::string current_master() const;

  // A connection to the first sentinel that answers, subscribed to
  // +switch-master. Errors: as connect_master's, for the sentinels.
  util::Result<SwitchWatch> watch_switches(int interrupt_fd,
                                           util::Deadline deadline);

  const std::string& master_name() const { return m_master; }

 private:
  struct Sentinel {
    config::Endpoint endpoint;  // redis://host:port with the sentinel login
    std::vector<net::Address> addresses;
  };
  struct Named {
    std::string host;
    uint16_t port = 0;
    std::string by;  // the sentinel that named it
    std::string address() const;
  };

  SentinelGroup(config::Endpoint ep, std::shared_ptr<const net::TlsContext> tls)
      : m_endpoint(std::move(ep)),
        m_master(m_endpoint.sentinel->master),
        m_tls(std::move(tls)) {}

  std::vector<Sentinel> sentinels_in_order() const;
  void answered(const std::string& sentinel);
  util::Result<Connection> open_sentinel(const Sentinel& s, int interrupt_fd,
                                         util::Deadline deadline) const;
  util::Result<std::optional<Named>> ask_one(const Sentinel& s,
                                             int interrupt_fd,
                                             util::Deadline deadline) const;
  bool majority_names(const std::string& address, int interrupt_fd,
                      util::Deadline deadline) const;
  util::Result<Named> ask_sentinels(int interrupt_fd, util::Deadline deadline);
  util::Result<Connection> open_master(const Named& m, int interrupt_fd,
                                       util::Deadline deadline);
  bool is_trusted(const Named& m) const;
  void note_master(const std::string& address);

  const config::Endpoint m_endpoint;
  const std::string m_master;
  const std::shared_ptr<const net::TlsContext> m_tls;
  mutable std::mutex m_mutex;
  std::vector<Sentinel> m_sentinels;   // the one that answered last first
  std::set<std::string> m_distrusted;  // old masters, "ip:port"
  std::string m_current;               // the master last connected to
  uint64_t m_generation = 0;
  std::string m_last_failover;

  friend class SwitchWatch;
};

// One sentinel's +switch-master announcements for the group's master, on a
// connection of its own. Each announcement is passed to the group
// (distrust) before wait() returns it. Not thread-safe; move-only.
class SwitchWatch {
 public:
  // Waits for an announcement or `until`: its description ("failover of
  // master 'M' from IP:PORT to IP:PORT"), or "" when `until` came first.
  // When the sentinel already named another master than the group's
  // current one as the watch began, the first wait returns that at once.
  // Errors: io (the connection is gone: open another), interrupted.
  util::Result<std::string> wait(util::Deadline until);
  // The connection's descriptor, for a caller that polls several.
  int fd() const { return m_conn.fd(); }

 private:
  friend class SentinelGroup;
  SwitchWatch(std::shared_ptr<SentinelGroup> group, Connection conn,
              std::string pending)
      : m_group(std::move(group)),
        m_conn(std::move(conn)),
        m_pending(std::move(pending)) {}

  std::shared_ptr<SentinelGroup> m_group;
  Connection m_conn;
  std::string m_pending;
};

}  // namespace godislock::redis
