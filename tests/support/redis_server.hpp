// SPDX-License-Identifier: MIT
#pragma once

#include "config/url.hpp"
#include "redis/resp.hpp"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace godislock::test {

// A private redis-server for one test: a new temp dir, a free loopback port
// chosen here, a unix socket, no persistence. Started by the constructor
// (waits until it answers PING), killed by PID and its directory removed by
// the destructor. If redis-server is missing, ok() is false and the caller
// skips (or fails when GODISLOCK_REQUIRE_REDIS=1; see start_or_skip).
class RedisServer {
 public:
  // A TLS-only server (plaintext only on its unix socket): its port speaks
  // TLS with `cert`.crt/.key from tls_certs() and the test CA, and
  // --tls-auth-clients `auth_clients` (yes, optional or no).
  struct Tls {
    std::string cert = "server";
    std::string auth_clients = "no";
  };

  explicit RedisServer(std::vector<std::string> extra_args = {});
  explicit RedisServer(Tls tls, std::vector<std::string> extra_args = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool ok() const { return m_pid > 0; }
  int port() const { return m_port; }
  const std::string& socket_path() const { return m_socket; }
  const std::string& dir() const { return m_dir; }
  pid_t pid() const { return m_pid; }
  std::string url() const;
  // For a TLS server: rediss://127.0.0.1:PORT, trusting the test CA.
  config::Endpoint endpoint() const;

  // Runs a command with redis-cli-like semantics through our own
  // connection; returns the reply flattened to text ("(nil)", "(integer) N",
  // "(error) ...", array items joined by '\n').
  std::string cli(const std::vector<std::string>& argv) const;

  // SIGKILLs the server and starts a new empty one on the same port.
  void restart_empty();
  // SIGSTOP / SIGCONT the server process.
  void pause();
  void resume();

 private:
  void start();
  // How start() and cli() reach the server: over the unix socket when the
  // port speaks TLS.
  config::Endpoint admin_endpoint() const;
  std::vector<std::string> m_extra;
  std::optional<Tls> m_tls;
  std::string m_dir;
  std::string m_socket;
  int m_port = 0;
  pid_t m_pid = -1;
};

// The directory of the tests' throwaway TLS material, made once per
// process by tests/support/make_tls_certs.sh (see there for the files) and
// removed at exit; "" when it could not be made (openssl missing).
const std::string& tls_certs();

// A reply as redis-cli prints it, flattened: "(nil)", "(integer) N",
// "(error) ...", array items joined by '\n'.
std::string flatten(const redis::Reply& r);

}  // namespace godislock::test

// In a gtest body: starts `server` or skips the test when redis-server is
// not installed (a failure instead under GODISLOCK_REQUIRE_REDIS=1).
#define GODISLOCK_REQUIRE_SERVER(server)                       \
  do {                                                         \
    if (!(server).ok()) {                                      \
      if (std::getenv("GODISLOCK_REQUIRE_REDIS") != nullptr) { \
        FAIL() << "redis-server could not be started";         \
      }                                                        \
      GTEST_SKIP() << "redis-server not available";            \
    }                                                          \
  } while (false)
