// SPDX-License-Identifier: MIT
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace godislock::util {

// The decimal digits of `text`, all of it, as an unsigned number: no sign,
// no blanks, no overflow (strtoull and %llu take "-1" as its complement).
inline std::optional<uint64_t> parse_unsigned(std::string_view text) {
  uint64_t value = 0;
  if (text.empty() || text[0] < '0' || text[0] > '9') {
    return std::nullopt;
  }
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace godislock::util
