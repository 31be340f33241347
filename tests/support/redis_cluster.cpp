// SPDX-License-Identifier: MIT
#include "support/redis_cluster.hpp"

#include "redis/connection.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace godislock::test {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) {
    if (!item.empty()) {
      out.push_back(item);
    }
  }
  return out;
}

bool has_flag(const std::string& flags, const std::string& flag) {
  for (const auto& f : split(flags, ',')) {
    if (f == flag) {
      return true;
    }
  }
  return false;
}

// One line of CLUSTER NODES.
struct NodeLine {
  std::string id;
  int port = 0;
  std::string flags;
  std::string master_id;
  std::vector<std::pair<int, int>> slots;  // served ranges
};

std::vector<NodeLine> parse_nodes(const std::string& text) {
  std::vector<NodeLine> out;
  for (const auto& line : split(text, '\n')) {
    auto f = split(line, ' ');
    if (f.size() < 8) {
      continue;
    }
    NodeLine n;
    n.id = f[0];
    auto colon = f[1].find(':');
    auto at = f[1].find('@');
    if (colon == std::string::npos) {
      continue;
    }
    n.port = std::atoi(f[1].substr(colon + 1, at - colon - 1).c_str());
    n.flags = f[2];
    n.master_id = f[3];
    for (size_t i = 8; i < f.size(); ++i) {
      if (f[i][0] == '[') {
        continue;  // a migration in progress
      }
      auto dash = f[i].find('-');
      int first = std::atoi(f[i].substr(0, dash).c_str());
      int last = dash == std::string::npos
                     ? first
                     : std::atoi(f[i].substr(dash + 1).c_str());
      n.slots.emplace_back(first, last);
    }
    out.push_back(n);
  }
  return out;
}

bool wait_for(const std::function<bool()>& done, milliseconds limit) {
  auto end = Clock::now() + limit;
  for (;;) {
    if (done()) {
      return true;
    }
    if (Clock::now() >= end) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

}  // namespace

RedisCluster::RedisCluster(int masters, int replicas) {
  char tmpl[] = "/tmp/godislock-cluster.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    return;
  }
  m_dir = tmpl;
  size_t n = static_cast<size_t>(masters * (1 + replicas));
  m_ports.assign(n, 0);
  m_pids.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    if (!start_node(i)) {
      m_why = "redis-server did not start";
      return;
    }
  }
  std::string cmd = "redis-cli --cluster create";
  for (int p : m_ports) {
    cmd += fmt::format(" 127.0.0.1:{}", p);
  }
  cmd +=
      fmt::format(" --cluster-replicas {} --cluster-yes >'{}/create.log' 2>&1",
                  replicas, m_dir);
  if (std::system(cmd.c_str()) != 0) {
    m_why = "redis-cli --cluster create failed";
    return;
  }
  m_ok = wait_converged();
  if (!m_ok) {
    m_why = "the nodes did not agree in time; node 0 says:\n" +
            cli(0, {"CLUSTER", "NODES"}) + "\n" + cli(0, {"CLUSTER", "INFO"});
  }
}

RedisCluster::~RedisCluster() {
  for (pid_t pid : m_pids) {
    if (pid > 0) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  if (!m_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
}

bool RedisCluster::start_node(size_t i) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = free_loopback_port();
    std::string dir = fmt::format("{}/{}", m_dir, port);
    std::filesystem::create_directories(dir);
    std::vector<std::string> args = {
        "redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
        "--cluster-enabled", "yes", "--cluster-config-file",
        dir + "/nodes.conf",
        // A failed master is replaced within seconds, and a replica may
        // always take over (the tests kill masters on purpose).
        "--cluster-node-timeout", "1000", "--cluster-replica-validity-factor",
        "0", "--save", "", "--appendonly", "no", "--dir", dir, "--logfile",
        dir + "/redis.log"};
    pid_t pid = spawn(args);
    if (pid < 0) {
      return false;
    }
    m_pids[i] = pid;
    m_ports[i] = port;
    bool up = wait_for(
        [&] {
          int st;
          if (::waitpid(pid, &st, WNOHANG) == pid) {
            m_pids[i] = -1;
            return true;  // exited: port taken or redis-server missing
          }
          return cli(i, {"PING"}) == "PONG";
        },
        milliseconds(5000));
    if (up && m_pids[i] > 0) {
      return true;
    }
    if (m_pids[i] > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      m_pids[i] = -1;
    }
  }
  return false;
}

std::string RedisCluster::url() const {
  std::vector<int> all;
  for (size_t i = 0; i < size(); ++i) {
    all.push_back(static_cast<int>(i));
  }
  return url(all);
}

std::string RedisCluster::url(const std::vector<int>& nodes) const {
  std::string out = "redis-cluster://";
  for (size_t i = 0; i < nodes.size(); ++i) {
    out += fmt::format("{}127.0.0.1:{}", i == 0 ? "" : ",",
                       m_ports[static_cast<size_t>(nodes[i])]);
  }
  return out;
}

config::Endpoint RedisCluster::endpoint() const {
  std::string why;
  return *config::parse_url(url(), &why);
}

std::string RedisCluster::cli(size_t node,
                              const std::vector<std::string>& argv) const {
  config::Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = static_cast<uint16_t>(m_ports[node]);
  auto c = redis::Connection::open(
      ep, util::Deadline::after(std::chrono::seconds(2)));
  if (!c) {
    return "(connect error) " + c.error().message;
  }
  auto r = c->command(argv, util::Deadline::after(std::chrono::seconds(5)));
  if (!r) {
    return "(io error) " + r.error().message;
  }
  return flatten(*r);
}

std::string RedisCluster::node_id(size_t node) const {
  return cli(node, {"CLUSTER", "MYID"});
}

int RedisCluster::master_of(int slot) const {
  for (size_t i = 0; i < size(); ++i) {
    if (!alive(i)) {
      continue;
    }
    for (const auto& n : parse_nodes(cli(i, {"CLUSTER", "NODES"}))) {
      if (!has_flag(n.flags, "master") || has_flag(n.flags, "fail")) {
        continue;
      }
      for (auto [first, last] : n.slots) {
        if (first <= slot && slot <= last) {
          for (size_t k = 0; k < size(); ++k) {
            if (m_ports[k] == n.port) {
              return static_cast<int>(k);
            }
          }
        }
      }
    }
    break;
  }
  return -1;
}

int RedisCluster::replica_of(size_t master) const {
  std::string id = node_id(master);
  for (size_t i = 0; i < size(); ++i) {
    if (i == master || !alive(i)) {
      continue;
    }
    for (const auto& n : parse_nodes(cli(i, {"CLUSTER", "NODES"}))) {
      if (has_flag(n.flags, "myself") && has_flag(n.flags, "slave") &&
          n.master_id == id) {
        return static_cast<int>(i);
      }
    }
  }
  return -1;
}

std::string RedisCluster::cli_key(const std::string& key,
                                  const std::vector<std::string>& argv) const {
  for (size_t i = 0; i < size(); ++i) {
    if (!alive(i)) {
      continue;
    }
    std::string slot = cli(i, {"CLUSTER", "KEYSLOT", key});
    int owner = master_of(std::atoi(slot.substr(slot.find(' ') + 1).c_str()));
    if (owner < 0) {
      return "(error) no master for the key's slot";
    }
    return cli(static_cast<size_t>(owner), argv);
  }
  return "(error) no live node";
}

bool RedisCluster::wait_converged(int timeout_ms) const {
  return wait_for(
      [&] {
        std::set<std::string> views;
        for (size_t i = 0; i < size(); ++i) {
          if (!alive(i)) {
            continue;
          }
          if (cli(i, {"CLUSTER", "INFO"}).find("cluster_state:ok") ==
              std::string::npos) {
            return false;
          }
          std::set<std::string> view;  // lines come in any order
          for (const auto& n : parse_nodes(cli(i, {"CLUSTER", "NODES"}))) {
            if (has_flag(n.flags, "myself") && has_flag(n.flags, "slave") &&
                cli(i, {"INFO", "replication"}).find("master_link_status:up") ==
                    std::string::npos) {
              return false;
            }
            if (n.slots.empty()) {
              continue;
            }
            if (has_flag(n.flags, "fail") || has_flag(n.flags, "fail?")) {
              return false;
            }
            std::string line = fmt::format("{}:", n.port);
            for (auto [first, last] : n.slots) {
              line += fmt::format("{}-{},", first, last);
            }
            view.insert(line);
          }
          std::string joined;
          for (const auto& line : view) {
            joined += line + ";";
          }
          views.insert(joined);
        }
        return views.size() == 1;
      },
      milliseconds(timeout_ms));
}

bool RedisCluster::move_slot(int slot, size_t to, bool keys_only) {
  int from = master_of(slot);
  if (from < 0 || static_cast<size_t>(from) == to) {
    return false;
  }
  auto f = static_cast<size_t>(from);
  std::string s = std::to_string(slot);
  if (cli(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(f)}) != "OK" ||
      cli(f, {"CLUSTER", "SETSLOT", s, "MIGRATING", node_id(to)}) != "OK") {
    return false;
  }
  return keys_only ? migrate_keys(slot, f, to) : finish_migration(slot, to);
}

bool RedisCluster::migrate_keys(int slot, size_t from, size_t to) {
  std::string s = std::to_string(slot);
  for (;;) {
    auto keys = split(cli(from, {"CLUSTER", "GETKEYSINSLOT", s, "100"}), '\n');
    if (keys.empty()) {
      return true;
    }
    std::vector<std::string> argv = {
        "MIGRATE", "127.0.0.1", std::to_string(m_ports[to]), "", "0",
        "5000",    "KEYS"};
    argv.insert(argv.end(), keys.begin(), keys.end());
    if (cli(from, argv) != "OK") {
      return false;
    }
  }
}

bool RedisCluster::finish_migration(int slot, size_t to) {
  std::string s = std::to_string(slot);
  std::string to_id = node_id(to);
  // The source still has the slot in its own line until SETSLOT NODE.
  int from = master_of(slot);
  if (from < 0) {
    return false;
  }
  auto f = static_cast<size_t>(from);
  if (!migrate_keys(slot, f, to)) {
    return false;
  }
  // The target first, then the source, then everyone (as redis-cli does).
  if (cli(to, {"CLUSTER", "SETSLOT", s, "NODE", to_id}) != "OK" ||
      cli(f, {"CLUSTER", "SETSLOT", s, "NODE", to_id}) != "OK") {
    return false;
  }
  for (size_t i = 0; i < size(); ++i) {
    if (alive(i) && i != to && i != f &&
        cli(i, {"ROLE"}).rfind("master", 0) == 0) {
      cli(i, {"CLUSTER", "SETSLOT", s, "NODE", to_id});
    }
  }
  return wait_converged();
}

bool RedisCluster::failover(size_t replica) {
  if (cli(replica, {"CLUSTER", "FAILOVER"}) != "OK") {
    return false;
  }
  return wait_for(
             [&] { return cli(replica, {"ROLE"}).rfind("master", 0) == 0; },
             milliseconds(20000)) &&
         wait_converged();
}

bool RedisCluster::replicate(size_t replica, size_t master) {
  if (cli(replica, {"CLUSTER", "REPLICATE", node_id(master)}) != "OK") {
    return false;
  }
  // ROLE on a replica: slave, its master's host and port, link state...
  const std::string synced =
      fmt::format("slave\n127.0.0.1\n(integer) {}\nconnected", port(master));
  return wait_for([&] { return cli(replica, {"ROLE"}).rfind(synced, 0) == 0; },
                  milliseconds(20000)) &&
         wait_converged();
}

bool RedisCluster::kill_master(size_t node) {
  if (!alive(node)) {
    return false;
  }
  ::kill(m_pids[node], SIGKILL);
  ::waitpid(m_pids[node], nullptr, 0);
  m_pids[node] = -1;
  return wait_converged();
}

}  // namespace godislock::test
