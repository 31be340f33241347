// SPDX-License-Identifier: MIT
#include "redis/cluster.hpp"

#include "util/log.hpp"
#include "util/number.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

namespace godislock::redis {

using util::Deadline;
using util::Error;
using util::ErrorKind;
using util::Millis;
using util::Result;
using util::Status;

namespace {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum
// the Redis Cluster specification names for key slots.
uint16_t crc16(std::string_view data) {
  uint16_t crc = 0;
  for (char c : data) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<unsigned char>(c) << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

// What Redis (7.0) answers when a script's command names a key that is not
// served here, e.g. one of a migrating slot that has left or not arrived.
constexpr std::string_view k_script_non_local =
    "ERR Script attempted to access a non local key in a cluster node";

bool starts_with(std::string_view text, std::string_view head) {
  return text.substr(0, head.size()) == head;
}

// A map reply's value for `field` ([k1, v1, k2, v2, ...]), or null.
const Reply* field(const Reply& map, std::string_view name) {
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].str == name) {
      return &map.elements[i + 1];
    }
  }
  return nullptr;
}

// An announced endpoint: "?" or "" when the node does not know its own.
std::string endpoint_or(const std::string& announced,
                        const ClusterNode& asked) {
  return announced.empty() || announced == "?" ? asked.host : announced;
}

std::optional<uint16_t> slot_number(const Reply& r) {
  if (r.type != Reply::Type::integer || r.integer < 0 ||
      r.integer >= k_cluster_slots) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(r.integer);
}

void add_node(std::vector<ClusterNode>* nodes, const ClusterNode& node) {
  for (const auto& n : *nodes) {
    if (n.name() == node.name()) {
      return;
    }
  }
  nodes->push_back(node);
}

void sort_ranges(SlotMap* map) {
  std::sort(map->ranges.begin(), map->ranges.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
}

// A node of a CLUSTER SHARDS shard, and whether it masters it healthily.
struct ShardNode {
  ClusterNode node;
  bool master = false;
  bool healthy = false;
};

std::optional<ShardNode> shard_node(const Reply& n, bool tls,
                                    const ClusterNode& asked) {
  const Reply* ip = field(n, "ip");
  const Reply* endpoint = field(n, "endpoint");
  const Reply* port = field(n, tls ? "tls-port" : "port");
  if (port == nullptr && tls) {
    port = field(n, "port");
  }
  if (port == nullptr || port->type != Reply::Type::integer ||
      port->integer <= 0 || port->integer > 65535) {
    return std::nullopt;
  }
  ShardNode s;
  s.node.host = endpoint_or(
      endpoint != nullptr ? endpoint->str : (ip != nullptr ? ip->str : ""),
      asked);
  s.node.port = static_cast<uint16_t>(port->integer);
  const Reply* role = field(n, "role");
  const Reply* health = field(n, "health");
  s.master = role != nullptr && role->str == "master";
  s.healthy = health == nullptr || health->str == "online";
  return s;
}

Error malformed(const char* what) {
  return Error{ErrorKind::protocol, fmt::format("{}: malformed reply", what)};
}

// Sleeps `pause` or until `deadline`, whichever is first; false when the
// deadline leaves no time for another try.
bool pause_within(Millis* pause, Deadline deadline) {
  auto left = deadline.remaining();
  if (left <= Millis(1)) {
    return false;
  }
  std::this_thread::sleep_for(std::min<util::Clock::duration>(*pause, left));
  *pause = std::min(*pause * 2, Millis(200));
  return !deadline.expired();
}

}  // namespace

uint16_t key_slot(std::string_view key) {
  auto open = key.find('{');
  if (open != std::string_view::npos) {
    auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<uint16_t>(crc16(key) % k_cluster_slots);
}

std::string ClusterNode::name() const {
  return host.find(':') != std::string::npos
             ? fmt::format("[{}]:{}", host, port)
             : fmt::format("{}:{}", host, port);
}

std::optional<ClusterNode> SlotMap::master_of(uint16_t slot) const {
  for (const auto& r : ranges) {
    if (r.first <= slot && slot <= r.last) {
      return r.master;
    }
  }
  return std::nullopt;
}

std::vector<ClusterNode> SlotMap::masters() const {
  std::vector<ClusterNode> out;
  for (const auto& r : ranges) {
    add_node(&out, r.master);
  }
  return out;
}

void SlotMap::move_slot(uint16_t slot, const ClusterNode& node) {
  std::vector<Range> next;
  for (const auto& r : ranges) {
    if (slot < r.first || slot > r.last) {
      next.push_back(r);
      continue;
    }
    if (r.first < slot) {
      next.push_back({r.first, static_cast<uint16_t>(slot - 1), r.master});
    }
    if (slot < r.last) {
      next.push_back({static_cast<uint16_t>(slot + 1), r.last, r.master});
    }
  }
  next.push_back({slot, slot, node});
  ranges = std::move(next);
  sort_ranges(this);
  add_node(&nodes, node);
}

Result<SlotMap> parse_cluster_shards(const Reply& r, bool tls,
                                     const ClusterNode& asked) {
  if (r.type != Reply::Type::array) {
    return malformed("CLUSTER SHARDS");
  }
  SlotMap map;
  for (const Reply& shard : r.elements) {
    const Reply* slots = field(shard, "slots");
    const Reply* nodes = field(shard, "nodes");
    if (slots == nullptr || nodes == nullptr ||
        slots->type != Reply::Type::array ||
        nodes->type != Reply::Type::array || slots->elements.size() % 2 != 0) {
      return malformed("CLUSTER SHARDS");
    }
    std::optional<ShardNode> master;
    for (const Reply& n : nodes->elements) {
      auto s = shard_node(n, tls, asked);
      if (!s) {
        return malformed("CLUSTER SHARDS");
      }
      add_node(&map.nodes, s->node);
      if (s->master && (!master || (!master->healthy && s->healthy))) {
        master = s;
      }
    }
    if (!master) {
      continue;  // a shard without a master serves nothing now
    }
    for (size_t i = 0; i < slots->elements.size(); i += 2) {
      auto first = slot_number(slots->elements[i]);
      auto last = slot_number(slots->elements[i + 1]);
      if (!first || !last || *first > *last) {
        return malformed("CLUSTER SHARDS");
      }
      map.ranges.push_back({*first, *last, master->node});
    }
  }
  sort_ranges(&map);
  return map;
}

Result<SlotMap> parse_cluster_slots(const Reply& r, const ClusterNode& asked) {
  if (r.type != Reply::Type::array) {
    return malformed("CLUSTER SLOTS");
  }
  SlotMap map;
  for (const Reply& range : r.elements) {
    if (range.type != Reply::Type::array || range.elements.size() < 3) {
      return malformed("CLUSTER SLOTS");
    }
    auto first = slot_number(range.elements[0]);
    auto last = slot_number(range.elements[1]);
    if (!first || !last || *first > *last) {
      return malformed("CLUSTER SLOTS");
    }
    for (size_t i = 2; i < range.elements.size(); ++i) {
      const Reply& n = range.elements[i];
      if (n.type != Reply::Type::array || n.elements.size() < 2 ||
          n.elements[1].type != Reply::Type::integer ||
          n.elements[1].integer <= 0 || n.elements[1].integer > 65535) {
        return malformed("CLUSTER SLOTS");
      }
      ClusterNode node{endpoint_or(n.elements[0].str, asked),
                       static_cast<uint16_t>(n.elements[1].integer)};
      add_node(&map.nodes, node);
      if (i == 2) {
        map.ranges.push_back({*first, *last, node});
      }
    }
  }
  sort_ranges(&map);
  return map;
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (starts_with(error, "MOVED ")) {
    error.remove_prefix(6);
  } else if (starts_with(error, "ASK ")) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  auto space = error.find(' ');
  auto colon = error.rfind(':');
  if (space == std::string_view::npos || colon == std::string_view::npos ||
      colon < space) {
    return std::nullopt;
  }
  auto slot = util::parse_unsigned(error.substr(0, space));
  auto port = util::parse_unsigned(error.substr(colon + 1));
  if (!slot || *slot >= k_cluster_slots || !port || *port == 0 ||
      *port > 65535) {
    return std::nullopt;
  }
  r.slot = static_cast<uint16_t>(*slot);
  std::string_view host = error.substr(space + 1, colon - space - 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return std::nullopt;
  }
  r.to = ClusterNode{std::string(host), static_cast<uint16_t>(*port)};
  return r;
}

Cluster::Cluster(config::Endpoint ep,
                 std::shared_ptr<const net::TlsContext> tls)
    : m_endpoint(std::move(ep)), m_tls(std::move(tls)) {}

std::unique_ptr<Cluster> Cluster::copy() const {
  auto c = std::make_unique<Cluster>(m_endpoint, m_tls);
  c->m_map = m_map;
  c->m_stale = m_stale;
  c->m_addresses = m_addresses;
  // Not the interrupt fd: the copy is for another thread, which sets its
  // own (a signal for the main thread must not cut a refresh short).
  return c;
}

void Cluster::set_interrupt_fd(int fd) {
  m_interrupt_fd = fd;
  for (auto& [name, conn] : m_connections) {
    conn.set_interrupt_fd(fd);
  }
}

Result<Connection> Cluster::open(const ClusterNode& node, Deadline deadline) {
  config::Endpoint ep = m_endpoint;
  ep.cluster_seeds.clear();
  ep.host = node.host;
  ep.port = node.port;
  auto known = m_addresses.find(node.name());
  if (known == m_addresses.end()) {
    // Nodes announce addresses, resolved without a lookup; a seed or an
    // announced host name is looked up once and kept.
    auto addresses = resolve(ep, deadline);
    if (!addresses) {
      return addresses.error();
    }
    known = m_addresses.emplace(node.name(), std::move(*addresses)).first;
  }
  auto c = Connection::open(ep, known->second, m_tls, deadline);
  if (c) {
    c->set_interrupt_fd(m_interrupt_fd);
  }
  return c;
}

Result<Connection*> Cluster::connection(const ClusterNode& node,
                                        Deadline deadline) {
  auto it = m_connections.find(node.name());
  if (it != m_connections.end() && !it->second.is_broken()) {
    return &it->second;
  }
  if (it != m_connections.end()) {
    m_connections.erase(it);
  }
  auto c = open(node, deadline);
  if (!c) {
    return c.error();
  }
  return &m_connections.emplace(node.name(), std::move(*c)).first->second;
}

Result<SlotMap> Cluster::ask_map(const ClusterNode& node, Deadline deadline) {
  auto c = connection(node, deadline);
  if (!c) {
    return c.error();
  }
  auto r = (*c)->command({"CLUSTER", "SHARDS"}, deadline);
  bool shards = true;
  if (r && r->is_error() &&
      r->str.find("nknown subcommand") != std::string::npos) {
    // Before Redis 7.0.
    shards = false;
    r = (*c)->command({"CLUSTER", "SLOTS"}, deadline);
  }
  if (!r) {
    drop(node.name());
    return r.error();
  }
  if (r->is_error()) {
    if (r->str.find("cluster support disabled") != std::string::npos) {
      return Error{ErrorKind::config,
                   fmt::format("{} is not a Redis Cluster node (cluster "
                               "support disabled; use redis:// for a single "
                               "server)",
                               node.name())};
    }
    ErrorKind kind = starts_with(r->str, "NOAUTH") ||
                             starts_with(r->str, "NOPERM") ||
                             starts_with(r->str, "WRONGPASS")
                         ? ErrorKind::auth
                         : ErrorKind::server;
    return Error{kind, fmt::format("{}: CLUSTER {}: {}", node.name(),
                                   shards ? "SHARDS" : "SLOTS", r->str)};
  }
  auto map = shards ? parse_cluster_shards(*r, m_endpoint.tls.enabled, node)
                    : parse_cluster_slots(*r, node);
  if (map && map->ranges.empty()) {
    return Error{
        ErrorKind::busy,
        fmt::format("{}: the cluster serves no slot yet", node.name())};
  }
  return map;
}

Status Cluster::discover(Deadline deadline) {
  std::vector<ClusterNode> candidates = m_map.nodes;
  for (const auto& seed : m_endpoint.cluster_seeds) {
    add_node(&candidates, ClusterNode{seed.host, seed.port});
  }
  // The first map of a process comes from a seed picked at random, as
  // go-redis does: many processes started at once (cron on every host)
  // spread their CLUSTER SHARDS over the seeds instead of all asking the
  // first. The failures are still reported in the URL's order.
  size_t start = 0;
  if (m_map.nodes.empty() && candidates.size() > 1) {
    std::random_device rd;
    start = std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rd);
  }
  std::optional<Error> worst;
  std::vector<std::string> failures(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    size_t at = (start + i) % candidates.size();
    const ClusterNode& node = candidates[at];
    // A node that does not answer must leave time for the others.
    auto one = deadline.min(Deadline::after(std::chrono::seconds(1)));
    auto map = ask_map(node, one);
    if (map) {
      m_map = std::move(*map);
      m_stale = false;
      GODISLOCK_DEBUG("cluster map from {}: {} slot ranges, {} masters",
                      node.name(), m_map.ranges.size(), m_map.masters().size());
      return util::ok_status();
    }
    const Error& e = map.error();
    if (e.kind == ErrorKind::interrupted) {
      return e;
    }
    failures[at] = e.message;
    // The most telling error wins the exit code: a node that is not a
    // cluster node or refused our password, over one that is down.
    if (!worst || e.kind == ErrorKind::config ||
        (e.kind == ErrorKind::auth && worst->kind != ErrorKind::config)) {
      worst = e;
    }
    if (deadline.expired()) {
      break;
    }
  }
  std::string tried;
  for (const auto& f : failures) {
    if (!f.empty()) {
      tried += (tried.empty() ? "" : "; ") + f;
    }
  }
  ErrorKind kind = worst ? worst->kind : ErrorKind::io;
  return Error{kind,
               fmt::format("no node of {} gave the cluster's slot map: {}",
                           m_endpoint.redacted(), tried)};
}

Status Cluster::ensure_map(Deadline deadline) {
  if (!m_stale) {
    return util::ok_status();
  }
  return discover(deadline);
}

namespace {

// Errors after which the cluster may recover within the deadline: a node
// down or failing over, a slot without a master for now.
bool transient(const Error& e) {
  return e.kind == ErrorKind::io || e.kind == ErrorKind::timeout ||
         e.kind == ErrorKind::busy;
}

// Sends `bytes` (the command, after ASKING or PING when `extra`) in one
// write and reads the command's reply.
Result<Reply> send_and_read(Connection& conn, const std::string& bytes,
                            bool extra, Deadline deadline) {
  GODISLOCK_TRY(conn.send_encoded(bytes, deadline));
  if (extra) {
    auto first = conn.read_reply(deadline);
    if (!first) {
      return first.error();
    }
  }
  return conn.read_reply(deadline);
}

}  // namespace

Result<ClusterNode> Cluster::route(uint16_t slot,
                                   const std::optional<ClusterNode>& ask_to,
                                   Deadline deadline) {
  if (ask_to) {
    return *ask_to;
  }
  GODISLOCK_TRY(ensure_map(deadline));
  if (auto node = m_map.master_of(slot)) {
    return *node;
  }
  m_stale = true;
  return Error{ErrorKind::busy,
               fmt::format("no node of the cluster serves slot {}", slot)};
}

Cluster::Next Cluster::on_error_reply(const std::string& error,
                                      const ClusterNode& node,
                                      std::optional<ClusterNode>* ask_to,
                                      std::optional<Error>* last) {
  if (auto redirect = parse_redirect(error)) {
    GODISLOCK_DEBUG("{} from {}", error, node.name());
    if (redirect->ask) {
      *ask_to = redirect->to;
    } else {
      m_map.move_slot(redirect->slot, redirect->to);
      ask_to->reset();
    }
    *last = Error{ErrorKind::busy, error};
    return Next::redirected;
  }
  if (starts_with(error, "TRYAGAIN") || starts_with(error, "CLUSTERDOWN") ||
      starts_with(error, k_script_non_local)) {
    // A multi-key command caught mid-migration, or a failing cluster; or
    // a script whose own command on keys it computes (not in KEYS) found
    // some missing in a migrating slot. Sending a script again is as safe
    // as after a lost reply: the scripts recognise a retry of a token.
    GODISLOCK_DEBUG("{} from {}; trying again", error, node.name());
    m_stale = m_stale || starts_with(error, "CLUSTERDOWN");
    ask_to->reset();
    *last = Error{ErrorKind::busy, fmt::format("{}: {}", node.name(), error)};
    return Next::later;
  }
  return Next::answer;
}

Result<Reply> Cluster::command(uint16_t slot,
                               const std::vector<std::string>& argv,
                               Deadline deadline, Options options) {
  std::optional<ClusterNode> ask_to;
  Millis pause{10};
  std::optional<Error> last;
  // Redirections since the last pause: nodes that keep sending us on
  // without a pause between disagree about the slot.
  int hops = 0;
  auto pause_again = [&](Error why) {
    last = std::move(why);
    hops = 0;
    return pause_within(&pause, deadline);
  };
  while (hops <= k_max_redirects) {
    auto node = route(slot, ask_to, deadline);
    if (!node) {
      // Down or failing over: the map may come back within the deadline.
      if (!transient(node.error()) || !pause_again(node.error())) {
        return node.error();
      }
      continue;
    }
    auto c = connection(*node, deadline);
    if (!c) {
      if (c.error().kind != ErrorKind::io &&
          c.error().kind != ErrorKind::timeout) {
        return c.error();
      }
      // Nothing was sent: the master may be down until a replica takes
      // over, which the map will show.
      GODISLOCK_DEBUG("{}; asking the cluster for its map again",
                      c.error().message);
      m_stale = true;
      ask_to.reset();
      if (!pause_again(c.error())) {
        return *last;
      }
      continue;
    }
    bool extra = ask_to || options.ping_first;
    std::string bytes =
        extra ? encode_command({ask_to ? "ASKING" : "PING"}) : std::string();
    bytes += encode_command(argv);
    auto r = send_and_read(**c, bytes, extra, deadline);
    if (!r) {
      // It may have run: the caller decides whether to send it again.
      drop(node->name());
      m_stale = true;
      return r.error();
    }
    if (!r->is_error()) {
      return r;
    }
    switch (on_error_reply(r->str, *node, &ask_to, &last)) {
      case Next::answer:
        return r;
      case Next::redirected:
        ++hops;
        break;
      case Next::later:
        if (!pause_again(*last)) {
          return *last;
        }
        break;
    }
  }
  return Error{ErrorKind::busy,
               fmt::format("slot {}: more than {} redirections in a row ({})",
                           slot, k_max_redirects, last ? last->message : "")};
}

Result<std::pair<Connection, ClusterNode>> Cluster::open_master(
    uint16_t slot, Deadline deadline) {
  Millis pause{10};
  for (;;) {
    GODISLOCK_TRY(ensure_map(deadline));
    auto node = m_map.master_of(slot);
    if (!node) {
      m_stale = true;
      return Error{ErrorKind::busy,
                   fmt::format("no node of the cluster serves slot {}", slot)};
    }
    auto c = open(*node, deadline);
    if (c) {
      return std::make_pair(std::move(*c), *node);
    }
    m_stale = true;
    if ((c.error().kind != ErrorKind::io &&
         c.error().kind != ErrorKind::timeout) ||
        !pause_within(&pause, deadline)) {
      return c.error();
    }
  }
}

Result<std::vector<ClusterNode>> Cluster::masters(Deadline deadline) {
  GODISLOCK_TRY(ensure_map(deadline));
  return m_map.masters();
}

}  // namespace godislock::redis
