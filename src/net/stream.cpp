// SPDX-License-Identifier: MIT
#include "net/stream.hpp"

#include "net/tls.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace godislock::net {

using util::Error;
using util::ErrorKind;

Stream::Stream(util::Fd fd) : m_fd(std::move(fd)) {}

Stream::Stream(util::Fd fd, std::unique_ptr<TlsSession> tls)
    : m_fd(std::move(fd)), m_tls(std::move(tls)) {}

Stream::Stream(Stream&&) noexcept = default;

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    // The old session goes before its fd.
    m_tls = std::move(o.m_tls);
    m_fd = std::move(o.m_fd);
  }
  return *this;
}

Stream::~Stream() = default;

util::Result<IoStep> Stream::read(char* buf, size_t len) {
  if (m_tls) {
    return m_tls->read(buf, len);
  }
  for (;;) {
    ssize_t n = ::recv(m_fd.get(), buf, len, 0);
    if (n > 0) {
      return IoStep{IoStep::State::done, static_cast<size_t>(n)};
    }
    if (n == 0) {
      return IoStep{IoStep::State::closed, 0};
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return IoStep{IoStep::State::want_read, 0};
    }
    return Error{ErrorKind::io, std::string("recv: ") + std::strerror(errno)};
  }
}

util::Result<IoStep> Stream::write(const char* buf, size_t len) {
  if (m_tls) {
    return m_tls->write(buf, len);
  }
  for (;;) {
    // MSG_NOSIGNAL: a peer that closed gives EPIPE here instead of a
    // SIGPIPE that would kill a process that does not ignore it.
    ssize_t n = ::send(m_fd.get(), buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
      return IoStep{IoStep::State::done, static_cast<size_t>(n)};
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return IoStep{IoStep::State::want_write, 0};
    }
    return Error{ErrorKind::io, std::string("send: ") + std::strerror(errno)};
  }
}

}  // namespace godislock::net
