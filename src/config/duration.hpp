// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace godislock::config {

// The largest duration accepted anywhere (about 11 years): larger values are
// typos, and keeping well inside 64-bit milliseconds rules out overflow.
constexpr std::chrono::milliseconds k_max_duration{100000LL * 3600 * 1000};

// Parses "250ms", "30s", "5m", "1h30m", "1.5s" or a bare number of seconds
// ("0.5"). Units: ms, s, m, h. The result is rounded to the nearest
// millisecond. Returns nullopt and sets *why for a malformed, negative or
// too large value.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::string* why);

// Formats a duration the way parse_duration reads it back: "1h30m", "250ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace godislock::config
