// SPDX-License-Identifier: MIT
#include "util/assert.hpp"
#include "util/fd.hpp"

#include <unistd.h>

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

void assertion_failed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "godislock: internal error: %s:%d: assertion '%s'\n",
               file, line, expr);
  std::abort();
}

}  // namespace godislock::util
