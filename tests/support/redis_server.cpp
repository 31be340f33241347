// SPDX-License-Identifier: MIT
#include "support/redis_server.hpp"

#include "redis/connection.hpp"
#include "support/process.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace godislock::test {

std::string flatten(const redis::Reply& r) {
  switch (r.type) {
    case redis::Reply::Type::nil:
      return "(nil)";
    case redis::Reply::Type::integer:
      return fmt::format("(integer) {}", r.integer);
    case redis::Reply::Type::error:
      return "(error) " + r.str;
    case redis::Reply::Type::array: {
      std::string out;
      for (size_t i = 0; i < r.elements.size(); ++i) {
        if (i != 0) {
          out += "\n";
        }
        out += flatten(r.elements[i]);
      }
      return out;
    }
    default:
      return r.str;
  }
}

RedisServer::RedisServer(Tls tls, std::vector<std::string> extra_args)
    : m_extra(std::move(extra_args)), m_tls(std::move(tls)) {
  if (tls_certs().empty()) {
    return;
  }
  char tmpl[] = "/tmp/godislock-redis.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    return;
  }
  m_dir = tmpl;
  m_socket = m_dir + "/redis.sock";
  m_port = free_loopback_port();
  start();
}

RedisServer::RedisServer(std::vector<std::string> extra_args)
    : m_extra(std::move(extra_args)) {
  char tmpl[] = "/tmp/godislock-redis.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    return;
  }
  m_dir = tmpl;
  m_socket = m_dir + "/redis.sock";
  m_port = free_loopback_port();
  start();
}

void RedisServer::start() {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<std::string> args = {
        "redis-server", "--port",    std::to_string(m_port),
        "--bind",       "127.0.0.1", "--unixsocket",
        m_socket,       "--save",    "",
        "--appendonly", "no",        "--dir",
        m_dir,          "--logfile", m_dir + "/redis.log"};
    if (m_tls) {
      const std::string& d = tls_certs();
      args[2] = "0";  // no plaintext port
      args.insert(args.end(),
                  {"--tls-port", std::to_string(m_port), "--tls-cert-file",
                   d + "/" + m_tls->cert + ".crt", "--tls-key-file",
                   d + "/" + m_tls->cert + ".key", "--tls-ca-cert-file",
                   d + "/ca.crt", "--tls-auth-clients", m_tls->auth_clients});
    }
    args.insert(args.end(), m_extra.begin(), m_extra.end());
    pid_t pid = spawn(args);
    if (pid < 0) {
      return;
    }
    m_pid = pid;
    for (int i = 0; i < 200; ++i) {
      int st;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        m_pid = -1;  // exited: port taken or redis-server missing
        break;
      }
      auto c = redis::Connection::open(
          admin_endpoint(),
          util::Deadline::after(std::chrono::milliseconds(200)));
      if (c) {
        auto r = c->command({"PING"},
                            util::Deadline::after(std::chrono::seconds(1)));
        // A server started with --requirepass answers NOAUTH: it is up.
        if (r && (r->str == "PONG" || r->str.rfind("NOAUTH", 0) == 0)) {
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
      m_pid = -1;
    }
    m_port = free_loopback_port();
  }
}

RedisServer::~RedisServer() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGCONT);
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
  if (!m_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
}

std::string RedisServer::url() const {
  return fmt::format("redis://127.0.0.1:{}", m_port);
}

config::Endpoint RedisServer::endpoint() const {
  config::Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = static_cast<uint16_t>(m_port);
  if (m_tls) {
    ep.tls.enabled = true;
    ep.tls.ca_file = tls_certs() + "/ca.crt";
  }
  return ep;
}

config::Endpoint RedisServer::admin_endpoint() const {
  if (!m_tls) {
    return endpoint();
  }
  config::Endpoint ep;
  ep.kind = config::Endpoint::Kind::unix_socket;
  ep.path = m_socket;
  return ep;
}

namespace {

// Removes the certificates' directory at exit.
struct CertDir {
  std::string path;
  ~CertDir() {
    if (!path.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  }
};

}  // namespace

const std::string& tls_certs() {
  static CertDir dir = [] {
    char tmpl[] = "/tmp/godislock-certs.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      return CertDir{};
    }
    std::string cmd =
        fmt::format("sh '{}/make_tls_certs.sh' '{}' >'{}/make.log' 2>&1",
                    GODISLOCK_TEST_SUPPORT_DIR, tmpl, tmpl);
    if (std::system(cmd.c_str()) != 0) {
      std::error_code ec;
      std::filesystem::remove_all(tmpl, ec);
      return CertDir{};
    }
    return CertDir{tmpl};
  }();
  return dir.path;
}

std::string RedisServer::cli(const std::vector<std::string>& argv) const {
  auto c = redis::Connection::open(
      admin_endpoint(), util::Deadline::after(std::chrono::seconds(2)));
  if (!c) {
    return "(connect error) " + c.error().message;
  }
  auto r = c->command(argv, util::Deadline::after(std::chrono::seconds(2)));
  if (!r) {
    return "(io error) " + r.error().message;
  }
  return flatten(*r);
}

void RedisServer::restart_empty() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
    m_pid = -1;
  }
  int port = m_port;
  start();
  (void)port;
}

void RedisServer::pause() { ::kill(m_pid, SIGSTOP); }
void RedisServer::resume() { ::kill(m_pid, SIGCONT); }

}  // namespace godislock::test
