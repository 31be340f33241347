// SPDX-License-Identifier: MIT
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace godislock::test {

// Private etcd members for one test: one member or a cluster of several on
// free loopback ports (client and peer), each with its own --data-dir in a
// new temp dir. The constructor starts every member and waits until each
// reports a leader; the destructor SIGKILLs them by PID and removes the
// dir. Members can be paused (SIGSTOP), resumed, killed and restarted on
// their data. Never touches a system etcd: ports are chosen here, traffic
// stays on 127.0.0.1. If etcd is not installed, ok() is false (see
// GODISLOCK_REQUIRE_ETCD_SERVER). Not thread-safe.
class EtcdCluster {
 public:
  static constexpr const char* k_root_password = "root-pw";

  explicit EtcdCluster(int members = 1);
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Whether the etcd and etcdctl programs are on PATH.
  static bool installed();

  bool ok() const { return m_ok; }
  size_t size() const { return m_members.size(); }
  const std::string& dir() const { return m_dir; }

  // "http://127.0.0.1:PORT" of member i's client URL.
  std::string endpoint(size_t i) const;
  std::vector<std::string> endpoints() const;
  int client_port(size_t i) const { return m_members[i].client_port; }
  pid_t pid(size_t i) const { return m_members[i].pid; }

  // SIGKILL member i and reap it.
  void kill(size_t i);
  // Start member i again on its data dir and ports; waits until it is
  // healthy. Returns false if it did not come up.
  bool restart(size_t i);
  void pause(size_t i);
  void resume(size_t i);

  // Index of the member that is leader now (asked of the live members).
  std::optional<size_t> leader();

  // Turns authentication on: a root user (k_root_password) with the root
  // role, and `user` whose role may read and write only keys under
  // `prefix`. Later etcdctl() calls run as root.
  bool enable_auth(const std::string& user, const std::string& password,
                   const std::string& prefix);

  // Runs etcdctl against every live member's endpoint with `args`
  // (space-separated, no shell quoting needed for simple words); returns
  // its stdout, or nullopt if it failed. `input`, if not empty, is its
  // standard input (one line; no single quotes).
  std::optional<std::string> etcdctl(const std::string& args,
                                     const std::string& input = "") const;

  // Waits until member i answers a status request with a leader known.
  bool wait_healthy(size_t i, std::chrono::milliseconds limit);

 private:
  struct Member {
    std::string name;
    std::string data_dir;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = -1;
  };

  bool start_all();
  void spawn(size_t i, bool initial);
  void kill_all();

  std::string m_dir;
  std::string m_token;
  std::vector<Member> m_members;
  bool m_ok = false;
  bool m_auth = false;
};

}  // namespace godislock::test

// In a gtest body: skips the test when etcd is not installed (a failure
// instead under GODISLOCK_REQUIRE_ETCD=1); fails when it is installed but
// `cluster` did not start.
#define GODISLOCK_REQUIRE_ETCD_SERVER(cluster)                                \
  do {                                                                        \
    if (!(cluster).ok()) {                                                    \
      if (::godislock::test::EtcdCluster::installed() ||                      \
          std::getenv("GODISLOCK_REQUIRE_ETCD") != nullptr) {                 \
        FAIL() << "etcd could not be started (logs in " << (cluster).dir()    \
               << ")";                                                        \
      }                                                                       \
      GTEST_SKIP() << "etcd not installed (Debian: etcd-server etcd-client)"; \
    }                                                                         \
  } while (false)
