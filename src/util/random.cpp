// SPDX-License-Identifier: MIT
#include "util/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace godislock::util {

Result<std::string> random_token() {
  unsigned char buf[16];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = ::getrandom(buf + got, sizeof buf - got, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Error{ErrorKind::io,
                   std::string("getrandom: ") + std::strerror(errno)};
    }
    got += static_cast<size_t>(n);
  }
  static const char k_hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (unsigned char b : buf) {
    out.push_back(k_hex[b >> 4]);
    out.push_back(k_hex[b & 15]);
  }
  return out;
}

}  // namespace godislock::util
