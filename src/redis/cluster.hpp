// SPDX-License-Identifier: MIT
#pragma once

// The client side of a Redis Cluster: which master serves a key's slot,
// learnt from the nodes (CLUSTER SHARDS, or CLUSTER SLOTS on servers before
// 7.0) and corrected by their redirections, and a connection per node.
// Nothing here knows about locks.

#include "config/url.hpp"
#include "net/resolve.hpp"
#include "net/tls.hpp"
#include "redis/connection.hpp"
#include "redis/resp.hpp"
#include "util/deadline.hpp"
#include "util/result.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace godislock::redis {

// --- Interface ---

constexpr uint16_t k_cluster_slots = 16384;

// The slot of `key` as Redis Cluster computes it: CRC16 (XMODEM) of the
// key's hash tag (the text between its first '{' and the next '}', when
// not empty) or of the whole key, modulo 16384.
uint16_t key_slot(std::string_view key);

// A node as the cluster announces it.
struct ClusterNode {
  std::string host;  // its endpoint: an address, or a name when announced
  uint16_t port = 0;
  // "host:port" ("[v6]:port"), the node's identity in this client.
  std::string name() const;
};

// Which master serves each slot. A plain value type.
struct SlotMap {
  struct Range {
    uint16_t first = 0;
    uint16_t last = 0;
    ClusterNode master;
  };
  std::vector<Range> ranges;  // sorted by first slot, not overlapping
  // Every node named, masters and replicas: where to ask next time.
  std::vector<ClusterNode> nodes;

  // The master of `slot`, or nullopt when no node serves it.
  std::optional<ClusterNode> master_of(uint16_t slot) const;
  // Every node that masters a slot, each once, in slot order.
  std::vector<ClusterNode> masters() const;
  // Makes `node` the master of `slot` alone (after a MOVED).
  void move_slot(uint16_t slot, const ClusterNode& node);
};

// A CLUSTER SHARDS reply (Redis 7) as a map: each shard's master (the node
// with role master, preferring a healthy one) serves its slots. `tls`
// picks each node's tls-port. `asked` stands in for a node whose endpoint
// is unknown ("?" or empty).
// Errors: protocol (not the shape CLUSTER SHARDS replies with).
util::Result<SlotMap> parse_cluster_shards(const Reply& r, bool tls,
                                           const ClusterNode& asked);
// The same from a CLUSTER SLOTS reply (Redis 3 to 6; deprecated in 7).
util::Result<SlotMap> parse_cluster_slots(const Reply& r,
                                          const ClusterNode& asked);

// A redirection: "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381".
struct Redirect {
  bool ask = false;  // false: MOVED
  uint16_t slot = 0;
  ClusterNode to;
};
// The redirection in a server error's text, or nullopt for another error.
std::optional<Redirect> parse_redirect(std::string_view error);

// One client's view of a cluster: the seed nodes of `ep` (its
// cluster_seeds; user, password and TLS apply to every node), the slot map
// and one open connection per node in use. Commands go to the master of
// their slot and follow the cluster's redirections, bounded by their
// deadline. Not thread-safe: give each thread its own (copy()).
class Cluster {
 public:
  // `tls`: from tls_context(ep), shared by every node (null without TLS).
  Cluster(config::Endpoint ep, std::shared_ptr<const net::TlsContext> tls);

  // Learns the slot map from the first node that answers, trying the known
  // nodes (none yet: the seeds) and then the seeds. Errors: io/timeout
  // (no node reachable), auth, protocol or config (a node that is not in
  // cluster mode, or a cluster whose slots are not all served); the
  // message names the nodes tried.
  util::Status discover(util::Deadline deadline);
  // Asks for discover() before the next command (after a sign that the
  // map is stale, e.g. a shard subscription ended).
  void mark_stale() { m_stale = true; }

  // How a command is sent.
  struct Options {
    // A PING in the same write ahead of the command, its reply dropped
    // (see RedisBackend::release for why).
    bool ping_first = false;
  };
  // Sends `argv` to the master of `slot` and returns its reply, which may
  // be a server error. On the way: MOVED updates the map and sends again;
  // ASK sends ASKING and the command once to the node named; TRYAGAIN,
  // CLUSTERDOWN and a script's "non local key" error (a key the script
  // computed, caught mid-migration) send again after a pause that
  // doubles; a master that refuses connections sends the map to be learnt
  // again and the command after a pause. At most k_max_redirects redirections
  // in a row (nodes that keep sending us on disagree about the slot), and never
  // past `deadline` (then the last error, of kind busy or io). A lock's scripts
  // name several keys, so while its slot migrates with some of them on
  // each side, the nodes answer ASK and TRYAGAIN in turn until the
  // migration ends or the deadline comes. A command whose
  // connection broke after it was sent is not sent again: the caller
  // cannot know whether it ran (io error).
  util::Result<Reply> command(uint16_t slot,
                              const std::vector<std::string>& argv,
                              util::Deadline deadline, Options options);
  util::Result<Reply> command(uint16_t slot,
                              const std::vector<std::string>& argv,
                              util::Deadline deadline) {
    return command(slot, argv, deadline, Options{});
  }

  // A new connection of its own to the master of `slot` (for a
  // subscription), with the node it reached.
  util::Result<std::pair<Connection, ClusterNode>> open_master(
      uint16_t slot, util::Deadline deadline);
  // The connection to `node`, opened when needed and kept.
  util::Result<Connection*> connection(const ClusterNode& node,
                                       util::Deadline deadline);
  // Every master, from the map (discovered when needed).
  util::Result<std::vector<ClusterNode>> masters(util::Deadline deadline);
  // Records a MOVED from outside command() (a subscription's).
  void moved(const Redirect& r) { m_map.move_slot(r.slot, r.to); }

  // Makes blocking calls fail with ErrorKind::interrupted while `fd` is
  // readable (-1: never); applies to every connection, current and later.
  void set_interrupt_fd(int fd);

  // A new client for the same cluster with this one's map, no connection
  // (they open on first use) and no interrupt fd.
  std::unique_ptr<Cluster> copy() const;
  // "redis-cluster://..." safe to print.
  std::string describe() const { return m_endpoint.redacted(); }

  static constexpr int k_max_redirects = 16;

 private:
  // What an error reply to a command calls for.
  enum class Next {
    answer,      // it is the answer (the caller's to judge)
    redirected,  // MOVED or ASK: at once to the node named
    later,       // TRYAGAIN, CLUSTERDOWN: again after a pause
  };
  // The node to send the next try at `slot` to: the ASK target, else the
  // slot's master (the map learnt again first when stale).
  util::Result<ClusterNode> route(uint16_t slot,
                                  const std::optional<ClusterNode>& ask_to,
                                  util::Deadline deadline);
  // Follows a redirection in the map or `ask_to`; `last` says why.
  Next on_error_reply(const std::string& error, const ClusterNode& node,
                      std::optional<ClusterNode>* ask_to,
                      std::optional<util::Error>* last);
  util::Result<SlotMap> ask_map(const ClusterNode& node,
                                util::Deadline deadline);
  util::Result<Connection> open(const ClusterNode& node,
                                util::Deadline deadline);
  util::Status ensure_map(util::Deadline deadline);
  void drop(const std::string& name) { m_connections.erase(name); }

  config::Endpoint m_endpoint;
  std::shared_ptr<const net::TlsContext> m_tls;
  SlotMap m_map;
  bool m_stale = true;                              // no map yet
  std::map<std::string, Connection> m_connections;  // by node name
  std::map<std::string, std::vector<net::Address>> m_addresses;
  int m_interrupt_fd = -1;
};

}  // namespace godislock::redis
