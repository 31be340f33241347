// SPDX-License-Identifier: MIT
#include "net/socket.hpp"

#include <fmt/format.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

namespace godislock::net {

using util::Deadline;
using util::Error;
using util::ErrorKind;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Waits for a non-blocking connect(2) to finish, then reads SO_ERROR
// (hiredis net.c redisContextWaitReady).
util::Status finish_connect(int fd, Deadline deadline) {
  for (;;) {
    pollfd p{fd, POLLOUT, 0};
    int n = ::poll(&p, 1, deadline.poll_timeout_ms());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return Error{ErrorKind::io, errno_text(errno)};
    }
    if (n == 0) {
      if (deadline.expired()) {
        return Error{ErrorKind::timeout, "connection timed out"};
      }
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
      err = errno;
    }
    if (err != 0) {
      return Error{ErrorKind::io, errno_text(err)};
    }
    return util::ok_status();
  }
}

util::Result<util::Fd> connect_one(const Address& addr, Deadline deadline) {
  util::Fd fd(
      ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return Error{ErrorKind::io, "socket: " + errno_text(errno)};
  }
  if (addr.family() != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd.get(), addr.get(), addr.length) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      return Error{ErrorKind::io, errno_text(errno)};
    }
    GODISLOCK_TRY(finish_connect(fd.get(), deadline));
  }
  return fd;
}

// Go's net.Dialer spreads its timeout the same way (partialDeadline).
constexpr std::chrono::seconds k_min_share{2};

}  // namespace

util::Result<util::Fd> connect(const std::vector<Address>& addresses,
                               Deadline deadline) {
  if (addresses.empty()) {
    return Error{ErrorKind::io, "no address"};
  }
  if (addresses.size() == 1) {
    return connect_one(addresses.front(), deadline);
  }
  std::string failures;
  bool all_timed_out = true;
  for (size_t i = 0; i < addresses.size(); ++i) {
    auto left = deadline.remaining();
    auto share = left / static_cast<long>(addresses.size() - i);
    share = std::max<util::Clock::duration>(
        share, std::min<util::Clock::duration>(left, k_min_share));
    auto fd = connect_one(addresses[i], deadline.min(Deadline::after(share)));
    if (fd) {
      return std::move(fd.value());
    }
    all_timed_out = all_timed_out && fd.error().kind == ErrorKind::timeout;
    failures += fmt::format("{}{}: {}", failures.empty() ? "" : ", ",
                            addresses[i].to_string(), fd.error().message);
    if (deadline.expired()) {
      break;
    }
  }
  return Error{all_timed_out ? ErrorKind::timeout : ErrorKind::io, failures};
}

}  // namespace godislock::net
