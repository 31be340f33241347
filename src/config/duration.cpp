// SPDX-License-Identifier: MIT
#include "config/duration.hpp"

#include <fmt/format.h>

namespace godislock::config {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::string* why) {
  auto fail =
      [&](const char* reason) -> std::optional<std::chrono::milliseconds> {
    if (why != nullptr) {
      *why = reason;
    }
    return std::nullopt;
  };
  if (text.empty()) {
    return fail("empty duration");
  }
  if (text[0] == '-') {
    return fail("negative duration");
  }
  // Sum in long double milliseconds; each component is bounded below, so the
  // sum cannot overflow before the range check.
  long double total_ms = 0;
  size_t i = 0;
  bool bare = true;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && is_digit(text[i])) {
      ++i;
    }
    size_t int_digits = i - start;
    size_t frac_digits = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      size_t fs = i;
      while (i < text.size() && is_digit(text[i])) {
        ++i;
      }
      frac_digits = i - fs;
    }
    if (int_digits + frac_digits == 0) {
      return fail("expected a number");
    }
    if (int_digits > 15) {
      return fail("out of range");
    }
    long double number = std::strtold(
        std::string(text.substr(start, i - start)).c_str(), nullptr);
    size_t us = i;
    while (i < text.size() && !is_digit(text[i]) && text[i] != '.') {
      ++i;
    }
    std::string_view unit = text.substr(us, i - us);
    long double scale;
    if (unit.empty()) {
      if (!bare || i != text.size() || start != 0) {
        return fail("missing unit (use ms, s, m or h)");
      }
      scale = 1000;  // a bare number means seconds, like flock -w
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60 * 1000;
    } else if (unit == "h") {
      scale = 3600 * 1000;
    } else {
      return fail("unknown unit (use ms, s, m or h)");
    }
    bare = false;
    total_ms += number * scale;
    if (total_ms > static_cast<long double>(k_max_duration.count())) {
      return fail("out of range");
    }
  }
  // Rounded half up by hand (total_ms is non-negative and bounded): llround
  // was our only use of libm, and loading it cost every run tens of
  // microseconds.
  long double ms = static_cast<double>(total_ms);
  return std::chrono::milliseconds(static_cast<long long>(ms + 0.5L));
}

std::string format_duration(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms == 0) {
    return "0s";
  }
  std::string out;
  long long h = ms / 3600000;
  ms %= 3600000;
  long long m = ms / 60000;
  ms %= 60000;
  long long s = ms / 1000;
  ms %= 1000;
  if (h != 0) {
    out += fmt::format("{}h", h);
  }
  if (m != 0) {
    out += fmt::format("{}m", m);
  }
  if (s != 0) {
    out += fmt::format("{}s", s);
  }
  if (ms != 0) {
    out += fmt::format("{}ms", ms);
  }
  return out;
}

}  // namespace godislock::config
