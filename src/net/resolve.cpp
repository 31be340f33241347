// SPDX-License-Identifier: MIT
#include "net/resolve.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/un.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace godislock::net {

using util::Deadline;
using util::Error;
using util::ErrorKind;

namespace {

// What the resolver thread hands back. Shared between the caller and the
// thread, so that a thread the caller stopped waiting for still has it to
// write into.
struct Lookup {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  int rc = 0;
  int saved_errno = 0;  // for EAI_SYSTEM
  std::vector<Address> addresses;
};

void run_lookup(const std::shared_ptr<Lookup>& lookup, const std::string& host,
                const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  int saved_errno = errno;
  std::vector<Address> addresses;
  if (rc == 0) {
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) {
        continue;
      }
      Address a;
      std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
      a.length = ai->ai_addrlen;
      addresses.push_back(a);
    }
    ::freeaddrinfo(res);
  }
  std::lock_guard<std::mutex> lock(lookup->mutex);
  lookup->rc = rc;
  lookup->saved_errno = saved_errno;
  lookup->addresses = std::move(addresses);
  lookup->done = true;
  lookup->done_cv.notify_all();
}

// "2s", "1500ms": the time a lookup was given, to the nearest 10 ms (the
// caller made the deadline from a round figure a moment ago).
std::string describe_budget(std::chrono::steady_clock::duration d) {
  using std::chrono::microseconds;
  long long us = std::chrono::duration_cast<microseconds>(d).count();
  long long ms = (us + 5000) / 10000 * 10;
  if (ms % 1000 == 0) {
    return fmt::format("{}s", ms / 1000);
  }
  return fmt::format("{}ms", ms);
}

}  // namespace

std::string Address::to_string() const {
  char text[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return fmt::format("{}:{}", text, ntohs(in->sin_port));
  }
  if (family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return fmt::format("[{}]:{}", text, ntohs(in6->sin6_port));
  }
  if (family() == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(&storage);
    return std::string(sun->sun_path);
  }
  return fmt::format("(address family {})", family());
}

std::optional<Address> parse_ip_literal(const std::string& host,
                                        uint16_t port) {
  Address a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
  if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    a.length = sizeof(sockaddr_in);
    return a;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    a.length = sizeof(sockaddr_in6);
    return a;
  }
  return std::nullopt;
}

// getaddrinfo(3) takes no deadline: with a DNS server that never answers,
// glibc gives up only after `timeout` x `attempts` of resolv.conf (5 s x 2
// by default). So the lookup runs on a thread of its own, and the caller
// waits for it on a condition variable until the deadline.
//
// Why not getaddrinfo_a(3) with gai_suspend(3)? It would wait the same way,
// but gai_cancel(3) cannot stop a lookup that has started (it returns
// EAI_NOTCANCELED), so its request block and strings must be left alive for
// glibc's helper thread just the same, and that helper thread stays around
// idle for a while after a lookup that did finish. Our own thread is joined
// when it answers in time, so a caller that forks afterwards (to run a
// command) is single-threaded again; only when the deadline comes first is
// it detached and abandoned, still holding the shared Lookup it writes to,
// while the caller gives up.
util::Result<std::vector<Address>> resolve(const std::string& host,
                                           uint16_t port, Deadline deadline) {
  if (auto literal = parse_ip_literal(host, port)) {
    return std::vector<Address>{*literal};
  }
  auto budget = deadline.remaining();
  auto lookup = std::make_shared<Lookup>();
  std::thread worker;
  {
    // A process-directed signal goes to any thread that does not block it;
    // the resolver thread blocks them all, so that signals keep reaching
    // the caller's threads (and a signalfd) as before.
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      worker = std::thread(run_lookup, lookup, host, std::to_string(port));
    } catch (const std::system_error& e) {
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
      return Error{ErrorKind::io,
                   fmt::format("cannot resolve host '{}': no thread for the "
                               "lookup: {}",
                               host, e.what())};
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  std::unique_lock<std::mutex> lock(lookup->mutex);
  auto is_done = [&lookup] { return lookup->done; };
  bool done = true;
  if (deadline.is_never()) {
    lookup->done_cv.wait(lock, is_done);
  } else {
    done = lookup->done_cv.wait_until(lock, deadline.when(), is_done);
  }
  if (!done) {
    lock.unlock();
    worker.detach();
    return Error{ErrorKind::timeout,
                 fmt::format("cannot resolve host '{}' within {} (DNS did "
                             "not answer)",
                             host, describe_budget(budget))};
  }
  int rc = lookup->rc;
  int saved_errno = lookup->saved_errno;
  std::vector<Address> addresses = std::move(lookup->addresses);
  lock.unlock();
  worker.join();
  if (rc != 0) {
    std::string why =
        rc == EAI_SYSTEM ? std::strerror(saved_errno) : ::gai_strerror(rc);
    return Error{ErrorKind::io,
                 fmt::format("cannot resolve host '{}': {}", host, why)};
  }
  if (addresses.empty()) {
    return Error{ErrorKind::io,
                 fmt::format("cannot resolve host '{}': no address", host)};
  }
  return addresses;
}

util::Result<Address> unix_address(const std::string& path) {
  Address a;
  auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage);
  if (path.size() >= sizeof sun->sun_path) {
    return Error{ErrorKind::io, "socket path too long"};
  }
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.c_str(), path.size() + 1);
  a.length = sizeof(sockaddr_un);
  return a;
}

}  // namespace godislock::net
