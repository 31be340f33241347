// SPDX-License-Identifier: MIT
#include "support/etcd_server.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "etcd/client.hpp"
#include "support/process.hpp"

namespace godislock::test {

namespace {

using std::chrono::milliseconds;

bool on_path(const char* name) {
  return std::system(
             fmt::format("command -v {} >/dev/null 2>&1", name).c_str()) == 0;
}

}  // namespace

bool EtcdCluster::installed() { return on_path("etcd") && on_path("etcdctl"); }

EtcdCluster::EtcdCluster(int members) {
  char tmpl[] = "/tmp/godislock-etcd.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr || !installed()) {
    return;
  }
  m_dir = tmpl;
  std::random_device rd;
  m_token = fmt::format("godislock-test-{:x}", rd());
  m_members.resize(static_cast<size_t>(members));
  for (size_t i = 0; i < m_members.size(); ++i) {
    m_members[i].name = fmt::format("m{}", i);
    m_members[i].data_dir = fmt::format("{}/m{}.data", m_dir, i);
  }
  for (int attempt = 0; attempt < 3 && !m_ok; ++attempt) {
    m_ok = start_all();
  }
}

EtcdCluster::~EtcdCluster() {
  kill_all();
  // Kept after a failed start, for its logs.
  if (!m_dir.empty() && m_ok) {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
}

std::string EtcdCluster::endpoint(size_t i) const {
  return fmt::format("http://127.0.0.1:{}", m_members[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < m_members.size(); ++i) {
    out.push_back(endpoint(i));
  }
  return out;
}

bool EtcdCluster::start_all() {
  kill_all();
  for (auto& m : m_members) {
    std::error_code ec;
    std::filesystem::remove_all(m.data_dir, ec);
    m.client_port = free_loopback_port();
    m.peer_port = free_loopback_port();
  }
  for (size_t i = 0; i < m_members.size(); ++i) {
    spawn(i, true);
  }
  for (size_t i = 0; i < m_members.size(); ++i) {
    if (!wait_healthy(i, milliseconds(20000))) {
      kill_all();
      return false;
    }
  }
  return true;
}

void EtcdCluster::spawn(size_t i, bool initial) {
  Member& m = m_members[i];
  std::string cluster;
  for (const auto& other : m_members) {
    cluster +=
        fmt::format("{}{}=http://127.0.0.1:{}", cluster.empty() ? "" : ",",
                    other.name, other.peer_port);
  }
  std::string client = fmt::format("http://127.0.0.1:{}", m.client_port);
  std::string peer = fmt::format("http://127.0.0.1:{}", m.peer_port);
  std::vector<std::string> args = {
      "etcd",
      "--name=" + m.name,
      "--data-dir=" + m.data_dir,
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=" + cluster,
      "--initial-cluster-token=" + m_token,
      std::string("--initial-cluster-state=") + (initial ? "new" : "existing"),
      "--logger=zap"};
  std::string log = fmt::format("{}/{}.log", m_dir, m.name);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // A crashed test binary must not leave etcd behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execvp("etcd", argv.data());
    ::_exit(127);
  }
  m.pid = pid;
}

bool EtcdCluster::wait_healthy(size_t i, milliseconds limit) {
  etcd::ClientOptions opts;
  opts.endpoints = {endpoint(i)};
  if (m_auth) {
    opts.user = "root";
    opts.password = k_root_password;
  }
  auto client = etcd::Client::create(opts);
  if (!client.ok()) {
    return false;
  }
  auto until = util::Deadline::after(limit);
  while (!until.expired()) {
    int st = 0;
    if (m_members[i].pid <= 0 ||
        ::waitpid(m_members[i].pid, &st, WNOHANG) == m_members[i].pid) {
      m_members[i].pid = -1;  // exited: port taken, bad flag
      return false;
    }
    auto s =
        client->status(util::Deadline::after(milliseconds(500)).min(until));
    if (s.ok() && s->leader != 0) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

void EtcdCluster::kill(size_t i) {
  Member& m = m_members[i];
  if (m.pid > 0) {
    ::kill(m.pid, SIGKILL);
    ::waitpid(m.pid, nullptr, 0);
    m.pid = -1;
  }
}

void EtcdCluster::kill_all() {
  for (size_t i = 0; i < m_members.size(); ++i) {
    kill(i);
  }
}

bool EtcdCluster::restart(size_t i) {
  kill(i);
  spawn(i, false);
  return wait_healthy(i, milliseconds(20000));
}

// SIGSTOP is delivered asynchronously: kill(2) may return while etcd's
// threads still run and answer one more request. Wait until /proc shows
// the process stopped ("T"), so that a test's next call really meets a
// stopped server.
void EtcdCluster::pause(size_t i) {
  pid_t pid = m_members[i].pid;
  ::kill(pid, SIGSTOP);
  std::string path = fmt::format("/proc/{}/stat", pid);
  for (int k = 0; k < 400; ++k) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    if (close != std::string::npos && close + 2 < stat.size() &&
        stat[close + 2] == 'T') {
      return;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}
void EtcdCluster::resume(size_t i) { ::kill(m_members[i].pid, SIGCONT); }

std::optional<size_t> EtcdCluster::leader() {
  for (size_t i = 0; i < m_members.size(); ++i) {
    if (m_members[i].pid <= 0) {
      continue;
    }
    etcd::ClientOptions opts;
    opts.endpoints = {endpoint(i)};
    auto client = etcd::Client::create(opts);
    if (!client.ok()) {
      continue;
    }
    auto s = client->status(util::Deadline::after(milliseconds(1000)));
    if (!s.ok() || s->leader == 0) {
      continue;
    }
    if (s->leader == s->header.member_id) {
      return i;
    }
  }
  return std::nullopt;
}

std::optional<std::string> EtcdCluster::etcdctl(
    const std::string& args, const std::string& input) const {
  std::string eps;
  for (size_t i = 0; i < m_members.size(); ++i) {
    if (m_members[i].pid > 0) {
      eps += (eps.empty() ? "" : ",") + endpoint(i);
    }
  }
  std::string cmd = fmt::format(
      "{}ETCDCTL_API=3 etcdctl --endpoints={} --dial-timeout=2s "
      "--command-timeout=5s {} {} 2>>{}/etcdctl.log",
      input.empty() ? "" : fmt::format("printf '%s\\n' '{}' | ", input), eps,
      m_auth ? fmt::format("--user=root:{}", k_root_password) : "", args,
      m_dir);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  int st = ::pclose(p);
  if (st != 0) {
    return std::nullopt;
  }
  return out;
}

bool EtcdCluster::enable_auth(const std::string& user,
                              const std::string& password,
                              const std::string& prefix) {
  const char* role = "godislock-test";
  bool ok = etcdctl(fmt::format("user add root:{}", k_root_password)) &&
            etcdctl("user grant-role root root") &&
            etcdctl(fmt::format("role add {}", role)) &&
            etcdctl(fmt::format("role grant-permission {} --prefix=true "
                                "readwrite {}",
                                role, prefix)) &&
            etcdctl(fmt::format("user add {}:{}", user, password)) &&
            etcdctl(fmt::format("user grant-role {} {}", user, role)) &&
            etcdctl("auth enable");
  if (ok) {
    m_auth = true;
  }
  return ok;
}

}  // namespace godislock::test
