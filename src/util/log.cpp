// SPDX-License-Identifier: MIT
#include "util/log.hpp"

#include "util/fd.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

namespace godislock::util {

namespace {
std::atomic<LogLevel> g_level{LogLevel::normal};
}

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(std::string_view kind, std::string_view text) {
  std::string line;
  line.reserve(text.size() + kind.size() + 16);
  line.append("godislock: ").append(kind).append(": ").append(text);
  // One line, one write: control characters from server replies must not
  // forge extra lines in a log.
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
  line.push_back('\n');
  // stderr closed or broken: nothing better to do than drop the line.
  (void)write_all(STDERR_FILENO, line.data(), line.size());
}

}  // namespace godislock::util
