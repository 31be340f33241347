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
std::atomic<bool> g_status_shown{false};
constexpr std::string_view k_clear_line = "\r\033[K";

void sanitize(std::string& s, size_t from) {
  for (size_t i = from; i < s.size(); ++i) {
    char& c = s[i];
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = '?';
    }
  }
}
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void log_line(std::string_view kind, std::string_view text) {
  std::string line;
  line.reserve(text.size() + kind.size() + 24);
  if (g_status_shown.exchange(false)) {
    line.append(k_clear_line);
  }
  size_t from = line.size();
  line.append("godislock: ").append(kind).append(": ").append(text);
  // One line, one write: control characters from server replies must not
  // forge extra lines in a log.
  sanitize(line, from);
  line.push_back('\n');
  // stderr closed or broken: nothing better to do than drop the line.
  (void)write_all(STDERR_FILENO, line.data(), line.size());
}

void status_line(std::string_view text) {
  if (text.empty() && !g_status_shown) {
    return;
  }
  std::string line(k_clear_line);
  size_t from = line.size();
  line.append(text);
  sanitize(line, from);
  g_status_shown = !text.empty();
  (void)write_all(STDERR_FILENO, line.data(), line.size());
}

}  // namespace godislock::util
