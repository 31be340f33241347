// SPDX-License-Identifier: MIT
#include "util/fd.hpp"

#include <unistd.h>

#include <cerrno>

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

}  // namespace godislock::util
