// SPDX-License-Identifier: MIT
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace godislock::util {

enum class LogLevel { quiet, normal, verbose };

void set_log_level(LogLevel level);
LogLevel log_level();

// Writes one line "godislock: <kind>: <text>" to stderr with one write(2),
// so that lines from the refresher thread never interleave. Thread-safe.
void log_line(std::string_view kind, std::string_view text);

// A live status line on a terminal ("\r" + text, no newline), redrawn by
// each call; log_line clears it first so that lines never mix with it, and
// an empty text clears it for good. Thread-safe.
void status_line(std::string_view text);

}  // namespace godislock::util

// Formats only when the level is on (like ccache's LOG macro).
#define GODISLOCK_DEBUG(...)                                          \
  do {                                                                \
    if (::godislock::util::log_level() ==                             \
        ::godislock::util::LogLevel::verbose) {                       \
      ::godislock::util::log_line("debug", fmt::format(__VA_ARGS__)); \
    }                                                                 \
  } while (false)

#define GODISLOCK_WARN(...)                                             \
  do {                                                                  \
    if (::godislock::util::log_level() !=                               \
        ::godislock::util::LogLevel::quiet) {                           \
      ::godislock::util::log_line("warning", fmt::format(__VA_ARGS__)); \
    }                                                                   \
  } while (false)

// Errors are printed even with --quiet: they explain the exit code.
#define GODISLOCK_ERROR(...) \
  ::godislock::util::log_line("error", fmt::format(__VA_ARGS__))
