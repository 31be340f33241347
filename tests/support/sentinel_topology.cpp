// SPDX-License-Identifier: MIT
#include "support/sentinel_topology.hpp"

#include "redis/connection.hpp"
#include "support/process.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace godislock::test {

namespace {

using namespace std::chrono_literals;

// A sentinel's run id: 40 hex digits, fixed per sentinel number.
std::string sentinel_id(size_t i) { return fmt::format("{:040x}", i + 1); }

// Without persistence, and with the full sync at once (the default waits
// 5 s for more replicas to join a diskless sync).
std::vector<std::string> server_args() {
  return {"--repl-diskless-sync-delay", "0"};
}

}  // namespace

SentinelTopology::SentinelTopology(std::string master_name)
    : m_name(std::move(master_name)) {
  m_master = std::make_unique<RedisServer>(server_args());
  if (!m_master->ok()) {
    return;
  }
  auto args = server_args();
  args.insert(args.end(),
              {"--replicaof", "127.0.0.1", std::to_string(m_master->port())});
  m_replica = std::make_unique<RedisServer>(args);
  if (!m_replica->ok()) {
    return;
  }
  bool synced = wait_until(10, [&] {
    return m_replica->cli({"INFO", "replication"})
               .find("master_link_status:up") != std::string::npos;
  });
  char tmpl[] = "/tmp/godislock-sentinel.XXXXXX";
  if (!synced || ::mkdtemp(tmpl) == nullptr) {
    return;
  }
  m_dir = tmpl;
  m_ok = start_sentinels() && wait_until(15, [&] {
           for (size_t i = 0; i < m_ports.size(); ++i) {
             auto r = sentinel_command(i, {"SENTINEL", "master", m_name});
             if (!r || r->type != redis::Reply::Type::array) {
               return false;
             }
             std::string slaves, others;
             for (size_t k = 0; k + 1 < r->elements.size(); k += 2) {
               if (r->elements[k].str == "num-slaves") {
                 slaves = r->elements[k + 1].str;
               }
               if (r->elements[k].str == "num-other-sentinels") {
                 others = r->elements[k + 1].str;
               }
             }
             if (slaves != "1" || others != "2") {
               return false;
             }
           }
           return agreed_master_port() == m_master->port();
         });
}

bool SentinelTopology::start_sentinels() {
  for (int i = 0; i < 3; ++i) {
    m_ports.push_back(free_loopback_port());
  }
  for (size_t i = 0; i < m_ports.size(); ++i) {
    std::string conf = fmt::format("{}/sentinel{}.conf", m_dir, i);
    {
      std::ofstream out(conf);
      // What a sentinel writes into its own config once it has met the
      // others: given up front, they need no hello messages to agree.
      out << fmt::format("sentinel myid {}\n", sentinel_id(i))
          << fmt::format("sentinel monitor {} 127.0.0.1 {} 2\n", m_name,
                         m_master->port())
          << fmt::format("sentinel down-after-milliseconds {} 1000\n", m_name)
          << fmt::format("sentinel failover-timeout {} 5000\n", m_name)
          << fmt::format("sentinel known-replica {} 127.0.0.1 {}\n", m_name,
                         m_replica->port());
      for (size_t k = 0; k < m_ports.size(); ++k) {
        if (k != i) {
          out << fmt::format("sentinel known-sentinel {} 127.0.0.1 {} {}\n",
                             m_name, m_ports[k], sentinel_id(k));
        }
      }
    }
    std::vector<std::string> args = {
        "redis-server",
        conf,
        "--sentinel",
        "--port",
        std::to_string(m_ports[i]),
        "--bind",
        "127.0.0.1",
        "--dir",
        m_dir,
        "--logfile",
        fmt::format("{}/sentinel{}.log", m_dir, i)};
    pid_t pid = spawn(args);
    if (pid < 0) {
      return false;
    }
    m_pids.push_back(pid);
  }
  return wait_until(10, [&] {
    for (size_t i = 0; i < m_ports.size(); ++i) {
      auto r = sentinel_command(i, {"PING"});
      if (!r || r->str != "PONG") {
        return false;
      }
    }
    return true;
  });
}

SentinelTopology::~SentinelTopology() {
  for (pid_t pid : m_pids) {
    ::kill(pid, SIGKILL);
  }
  for (pid_t pid : m_pids) {
    ::waitpid(pid, nullptr, 0);
  }
  if (!m_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
}

std::string SentinelTopology::url() const {
  return fmt::format(
      "redis-sentinel://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/{}", m_ports[0],
      m_ports[1], m_ports[2], m_name);
}

config::Endpoint SentinelTopology::endpoint() const {
  return config::parse_url(url(), nullptr).value();
}

util::Result<redis::Reply> SentinelTopology::sentinel_command(
    size_t i, const std::vector<std::string>& argv) const {
  config::Endpoint ep;
  ep.port = static_cast<uint16_t>(m_ports.at(i));
  auto c = redis::Connection::open(ep, util::Deadline::after(1s));
  if (!c) {
    return c.error();
  }
  return c->command(argv, util::Deadline::after(2s));
}

int SentinelTopology::agreed_master_port() const {
  int agreed = 0;
  for (size_t i = 0; i < m_ports.size(); ++i) {
    auto r =
        sentinel_command(i, {"SENTINEL", "get-master-addr-by-name", m_name});
    if (!r || r->elements.size() != 2) {
      return 0;
    }
    int port = std::stoi(r->elements[1].str);
    if (agreed != 0 && port != agreed) {
      return 0;
    }
    agreed = port;
  }
  return agreed;
}

bool SentinelTopology::wait_until(int seconds,
                                  const std::function<bool()>& done) const {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

bool SentinelTopology::failover() {
  auto r = sentinel_command(0, {"SENTINEL", "failover", m_name});
  if (!r || r->str != "OK") {
    return false;
  }
  int want = m_replica->port();
  if (!wait_until(30, [&] { return agreed_master_port() == want; })) {
    return false;
  }
  std::swap(m_master, m_replica);
  return true;
}

bool SentinelTopology::kill_master() {
  // Not reaped here: the destructor of RedisServer does, and a pid reaped
  // early could be reused by the time it kills it again. A zombie holds
  // no socket: the sentinels see the master gone at once.
  ::kill(m_master->pid(), SIGKILL);
  int want = m_replica->port();
  if (!wait_until(30, [&] { return agreed_master_port() == want; })) {
    return false;
  }
  std::swap(m_master, m_replica);
  return true;
}

}  // namespace godislock::test
