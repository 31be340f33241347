// SPDX-License-Identifier: MIT
#include "util/assert.hpp"
#include "util/fd.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace godislock::util {

void Fd::reset(int fd) {
  if (m_fd >= 0) {
    // close(2) must not be retried on EINTR on Linux: the fd is gone.
    ::close(m_fd);
  }
  m_fd = fd;
}

bool write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void assertion_failed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "godislock: internal error: %s:%d: assertion '%s'\n",
               file, line, expr);
  std::abort();
}

}  // namespace godislock::util
