// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <utility>

namespace godislock::util {

// Owns a file descriptor and closes it on destruction. Move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : m_fd(fd) {}
  Fd(Fd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset(std::exchange(o.m_fd, -1));
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  void reset(int fd = -1);
  int release() { return std::exchange(m_fd, -1); }

 private:
  int m_fd = -1;
};

// Writes all of [data, data+len) to fd, retrying after EINTR and short
// writes. Returns false (errno set) when the fd is closed or broken.
bool write_all(int fd, const char* data, size_t len);

}  // namespace godislock::util
